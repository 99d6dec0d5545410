package cluster_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/agentloop/agentloop/cluster"
	"github.com/agentloop/agentloop/engine"
)

// TestChaosKillRestartUnderLoad: while n1 sends steadily to agents spread
// over the cluster, n2 and n3 crash and restart under the same names
// (once before the crash is even noticed), and leave and rejoin. Every
// send n1's SendID accepted is delivered exactly once or reported as a
// dead letter, a send both delivered and reported was handled only by an
// incarnation that crashed, and n1's counters add up.
func TestChaosKillRestartUnderLoad(t *testing.T) {
	url := natsServer(t)
	var mu sync.Mutex
	handledBy := map[string][]string{} // payload -> incarnations that handled it
	dead := map[string]error{}
	crashed := map[string]bool{} // incarnations closed without a leave
	n1events := make(chan cluster.Event, 256)
	nodes := map[string]*member{} // the test goroutine's only
	var n1 *member                // never restarted: the load's sender

	// A running node must never be declared lost here (its sends would be
	// reported lost although delivered), and a restart "at once" must come
	// before the crash is noticed: see lostAfter.
	start := func(name string, gen int) *member {
		inc := name + "#" + strconv.Itoa(gen)
		ev := make(chan cluster.Event, 256)
		n, err := cluster.New(cluster.Config{Name: name, URL: url, Heartbeat: 20 * time.Millisecond, LostAfter: lostAfter, Drain: wait,
			OnEvent: func(e cluster.Event) {
				if name == "n1" {
					n1events <- e
				}
				select {
				case ev <- e:
				default:
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		if name == "n1" {
			n.OnDeadLetter(func(d cluster.DeadLetter) {
				mu.Lock()
				defer mu.Unlock()
				if _, dup := dead[string(d.Payload)]; dup {
					t.Errorf("%s dead-lettered twice", d.Payload)
				}
				dead[string(d.Payload)] = d.Reason
			})
		}
		e, err := engine.New(engine.WithLoops(1), engine.WithCluster(n))
		if err != nil {
			t.Fatal(err)
		}
		register(t, e, "sink", func(c *engine.Context, m engine.Message) {
			mu.Lock()
			handledBy[string(m.Payload)] = append(handledBy[string(m.Payload)], inc)
			mu.Unlock()
		})
		return joined(t, n, e, ev)
	}
	// n1sees waits until n1's view has want members.
	n1sees := func(want int) {
		t.Helper()
		deadline := time.After(wait)
		for len(n1.node.Members()) != want {
			select {
			case <-n1events:
			case <-deadline:
				t.Fatalf("n1 sees %v, want %d members", n1.node.Members(), want)
			}
		}
	}
	gens := map[string]int{}
	for _, name := range three {
		nodes[name] = start(name, 0)
	}
	for _, name := range three {
		waitMembers(t, nodes[name], 3)
	}
	n1 = nodes["n1"]

	stop, stopped := make(chan struct{}), make(chan struct{})
	var accepted []string
	go func() { // the load: n1 to 60 agents, paced
		defer close(stopped)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for range 20 {
				p := "m" + strconv.Itoa(i)
				if n1.e.SendID(engine.AgentID{Type: "sink", Key: "s" + strconv.Itoa(i%60)}, []byte(p)) == nil {
					accepted = append(accepted, p)
				}
				i++
			}
		}
	}()
	restart := func(name string) {
		gens[name]++
		nodes[name] = start(name, gens[name])
	}
	crash := func(name string) {
		mu.Lock()
		crashed[name+"#"+strconv.Itoa(gens[name])] = true
		mu.Unlock()
		nodes[name].node.Close()
	}
	for round, name := range []string{"n2", "n3", "n2", "n3"} {
		switch round {
		case 0, 1: // crash, noticed, restart
			crash(name)
			n1sees(2)
			restart(name)
			n1sees(3)
		case 2: // crash and restart at once: the new incarnation replaces the old
			crash(name)
			restart(name)
			waitMembers(t, nodes[name], 3)
			n1sees(3)
		case 3: // graceful leave under load, then rejoin
			if err := nodes[name].node.Leave(); err != nil {
				t.Fatal(err)
			}
			n1sees(2)
			restart(name)
			n1sees(3)
		}
	}
	close(stop)
	<-stopped
	eventually(t, "n1's sends settled", func() bool { return n1.node.Stats().InFlight == 0 })
	for _, name := range three { // and none held for a handoff, in no engine yet
		eventually(t, name+"'s held sends released", func() bool { return nodes[name].node.Stats().Held == 0 })
	}
	for _, name := range three {
		if err := nodes[name].e.WaitIdle(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	st := n1.node.Stats()
	if st.Sent != st.Confirmed+st.Nacked+st.Lost+st.Dropped {
		t.Fatalf("n1's counters %+v do not add up", st)
	}
	if uint64(len(dead)) != st.Nacked+st.Lost+st.Dropped+st.HeldRefused {
		t.Fatalf("%d dead letters, n1's counters %+v", len(dead), st)
	}
	both := 0
	for _, p := range accepted {
		by := handledBy[p]
		reason, isDead := dead[p]
		switch {
		case len(by) > 1:
			t.Fatalf("%s handled by %v", p, by)
		case len(by) == 0 && !isDead:
			t.Fatalf("%s accepted, neither delivered nor dead-lettered", p)
		case isDead && !errors.Is(reason, cluster.ErrOwnerLost):
			t.Fatalf("%s dead-lettered: %v", p, reason)
		case isDead && len(by) == 1:
			if !crashed[by[0]] {
				t.Fatalf("%s dead-lettered (%v) and handled by %s, which did not crash", p, reason, by[0])
			}
			both++
		}
	}
	t.Logf("accepted %d; n1 carried %d: %d confirmed, %d lost (%d of them handled by the crashed incarnation), %d refused; %d dead letters",
		len(accepted), st.Sent, st.Confirmed, st.Lost, both, st.Nacked+st.Dropped, len(dead))
	if st.Lost == 0 {
		t.Fatal("no send was in flight to a crashed node: the load did not meet the crashes")
	}
}
