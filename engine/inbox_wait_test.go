package engine

// Outside posters that find a loop's inbox full park until the loop frees
// room (post.go). These tests lengthen spillWait so far that no post can
// spill during them: every parked poster must then be woken by its loop
// (or by the sweep of a stopped one), and a lost wake-up shows as a
// poster that never returns.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// noSpill makes every outside post wait for room for as long as a test can
// run, and restores spillWait at the end. The engine of the test must be
// created after it, so that its goroutines see the new value.
func noSpill(t *testing.T) {
	t.Helper()
	old := spillWait
	spillWait = time.Hour
	t.Cleanup(func() { spillWait = old })
}

// waitAll waits for wg or fails the test after waitTimeout: a poster
// parked for ever is a lost wake-up.
func waitAll(t *testing.T, wg *sync.WaitGroup, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	wait(t, done, what)
}

func TestPostParkedOnFullInboxIsWokenByTheLoop(t *testing.T) {
	noSpill(t)
	const producers, n = 32, 300
	e := startedEngine(t, WithLoops(2), WithInboxSize(2))
	s := newSink()
	mustRegister(t, e, "sink", func() Agent { return s }, Mailbox(producers*n, DropNewest))
	id := AgentID{Type: "sink", Key: "1"}
	r := mustSpawn(t, e, id, OnLoop(1))
	l := e.loops[1]
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				if err := r.Send([]byte(fmt.Sprintf("%d:%d", p, i))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	waitAll(t, &wg, "the producers (a parked post was never woken)")
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := e.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	got := s.got(id)
	if len(got) != producers*n {
		t.Fatalf("delivered %d messages, want %d", len(got), producers*n)
	}
	next := make([]int, producers)
	for _, m := range got {
		ps, is, _ := strings.Cut(m, ":")
		p, _ := strconv.Atoi(ps)
		i, _ := strconv.Atoi(is)
		if i != next[p] {
			t.Fatalf("producer %d: got message %d, want %d (order lost)", p, i, next[p])
		}
		next[p]++
	}
	if spilled := l.spilled.Load(); spilled != 0 {
		t.Errorf("%d posts spilled: a post waited out spillWait", spilled)
	}
	if w := l.roomWaiters.Load(); w != 0 {
		t.Errorf("roomWaiters = %d after every post returned", w)
	}
}

// A poster parked on the full inbox of a loop that stops is woken too,
// and what it pushed is dead-lettered: nothing accepted is lost.
func TestPostParkedOnFullInboxIsWokenByStop(t *testing.T) {
	noSpill(t)
	const producers, n = 8, 50
	e := startedEngine(t, WithLoops(1), WithInboxSize(2))
	rec := newRecorder()
	if err := e.Use(rec); err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	gate := make(chan struct{})
	var delivered atomic.Int64
	mustRegister(t, e, "rcv", recvAgent(func(c *Context, m Message) {
		if string(m.Payload) == "block" {
			close(entered)
			<-gate
			return
		}
		delivered.Add(1)
	}), Mailbox(producers*n, DropNewest))
	r := mustSpawn(t, e, AgentID{Type: "rcv", Key: "1"})
	if err := r.Send([]byte("block")); err != nil {
		t.Fatal(err)
	}
	wait(t, entered, "the receiver to hold its loop")
	l := e.loops[0]
	var wg sync.WaitGroup
	var accepted sync.Map
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				pl := fmt.Sprintf("%d:%d", p, i)
				if r.Send([]byte(pl)) == nil {
					accepted.Store(pl, true)
				}
			}
		}()
	}
	// The loop is held: the inbox fills and every producer parks on it.
	eventually(t, "every producer parked", func() bool { return int(l.roomWaiters.Load()) == producers }, waitTimeout)
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		stopped <- e.Stop(ctx, Immediate())
	}()
	eventually(t, "Stop to refuse sends", func() bool { return e.state.Load() >= stateStopping }, waitTimeout)
	close(gate)
	waitAll(t, &wg, "the producers after Stop (a parked post was never woken)")
	if err := wait(t, stopped, "Stop"); err != nil {
		t.Fatal(err)
	}
	got := int(delivered.Load())
	var acceptedN int
	accepted.Range(func(k, _ any) bool {
		acceptedN++
		return true
	})
	if dead := int(rec.deadN.Load()); got+dead != acceptedN {
		t.Errorf("accepted %d sends, delivered %d and dead-lettered %d", acceptedN, got, dead)
	}
	if spilled := l.spilled.Load(); spilled != 0 {
		t.Errorf("%d posts spilled: a post waited out spillWait", spilled)
	}
}

// A loop that finds only a slot a producer has reserved and not yet
// published (its thread may have lost its core) parks after a few turns
// instead of spinning until the producer runs again; the producer's
// wake-up after publishing brings it back.
func TestLoopParksOnUnpublishedSlot(t *testing.T) {
	e := startedEngine(t, WithLoops(1))
	s := newSink()
	mustRegister(t, e, "sink", func() Agent { return s })
	r := mustSpawn(t, e, AgentID{Type: "sink", Key: "1"})
	settleLoop(t, e, 0)
	l := e.loops[0]
	slot, pos, ok := l.inbox.TryReserve()
	if !ok {
		t.Fatal("TryReserve on an idle loop's inbox failed")
	}
	parks := l.stats.parks.Load()
	l.wake() // as if a post had just woken it: it must find nothing to do
	eventually(t, "the loop to park beside the unpublished slot", func() bool {
		return l.stats.parks.Load() > parks && l.sleeping.Load() == 1
	}, waitTimeout)
	slot.pack(&envelope{a: r.a, gen: r.gen, op: opMsg, msg: Message{Payload: []byte("late")}})
	l.inbox.Publish(pos)
	l.wake()
	eventually(t, "the published message to arrive", func() bool { return s.n.Load() == 1 }, waitTimeout)
	if got := s.got(r.ID()); len(got) != 1 || got[0] != "late" {
		t.Fatalf("got %q, want [late]", got)
	}
}

// An envelope that reached the spill after the loop's quit took it for the
// last time (a post that waited out spillWait while the loop was exiting)
// is dead-lettered by the sweep after sealing, not lost.
func TestSweepDeadLettersALateSpill(t *testing.T) {
	e := startedEngine(t, WithLoops(1))
	rec := newRecorder()
	if err := e.Use(rec); err != nil {
		t.Fatal(err)
	}
	mustRegister(t, e, "sink", func() Agent { return newSink() })
	r := mustSpawn(t, e, AgentID{Type: "sink", Key: "1"})
	l := e.loops[0]
	stop(t, e)
	if n := rec.deadN.Load(); n != 0 {
		t.Fatalf("%d dead letters before the late spill", n)
	}
	// What a trySpill that ran between the loop's quit and Stop's sealing
	// leaves behind; Stop's sweep after sealing is the last to look.
	l.spillMu.Lock()
	l.spill = append(l.spill, envelope{a: r.a, gen: r.gen, op: opMsg, msg: Message{Payload: []byte("late")}})
	l.spilled.Add(1)
	l.spillMu.Unlock()
	l.sweep()
	if n := rec.deadN.Load(); n != 1 {
		t.Fatalf("%d dead letters after sweeping a late spill, want 1", n)
	}
}
