package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/enginetest"
	"github.com/agentloop/agentloop/messaging"
)

type nopAgent struct{}

func (nopAgent) Receive(*engine.Context, engine.Message) {}

// subscribedAgent returns an engine (not started) with one agent
// subscribed to n patterns, and the patterns.
func subscribedAgent(tb testing.TB, n int) (*engine.Engine, engine.AgentID, []string) {
	tb.Helper()
	e, err := engine.New(engine.WithLoops(1))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Stop(ctx, engine.Immediate())
	})
	if err := e.Register("sub", func() engine.Agent { return nopAgent{} }); err != nil {
		tb.Fatal(err)
	}
	id := engine.AgentID{Type: "sub", Key: "1"}
	pats := make([]string, n)
	for i := range pats {
		pats[i] = fmt.Sprintf("dev.%d.temp", i)
		if err := e.SubscribeAgent(pats[i], id); err != nil {
			tb.Fatal(err)
		}
	}
	return e, id, pats
}

// unsubscribeBytes is the heap allocated by unsubscribing k random ones of
// an agent's n subscriptions, per unsubscribe: the work done, counted
// without a clock. The less of two tries is taken, since anything else
// running can only add to it.
func unsubscribeBytes(t *testing.T, n, k int) float64 {
	t.Helper()
	best := -1.0
	for try := range 2 {
		e, id, pats := subscribedAgent(t, n)
		order := rand.New(rand.NewPCG(uint64(try), 1)).Perm(n)[:k]
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for _, i := range order {
			if err := e.UnsubscribeAgent(pats[i], id); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		if b := float64(after.TotalAlloc-before.TotalAlloc) / float64(k); best < 0 || b < best {
			best = b
		}
	}
	return best
}

// Unsubscribing one of an agent's subscriptions costs about the same with
// 16 000 of them as with 2 000: the agent's own index is O(1), and only the
// subscription trie's O(log n) path copy remains. (Kept as a slice, it was
// scanned and copied whole on every unsubscribe: eight times the work for
// eight times the subscriptions, 6.85 s to remove 20 000 of 40 000.)
func TestUnsubscribeAgentCostDoesNotGrowWithSubscriptions(t *testing.T) {
	const k = 1000
	small, large := unsubscribeBytes(t, 2000, k), unsubscribeBytes(t, 16000, k)
	t.Logf("bytes allocated per unsubscribe: %.0f with 2000 subscriptions, %.0f with 16000", small, large)
	if large > 2*small {
		t.Errorf("an unsubscribe allocates %.0f bytes among 16000 subscriptions, %.1f times as much as among 2000 (%.0f): it grows with the agent's subscriptions",
			large, large/small, small)
	}
}

// rendezvous counts the messages each agent receives; safe to read after
// the engine settled.
type rendezvous struct {
	mu  sync.Mutex
	got map[string]int // topic → deliveries
}

func (r *rendezvous) Receive(_ *engine.Context, m engine.Message) {
	r.mu.Lock()
	r.got[m.Topic]++
	r.mu.Unlock()
}

func (r *rendezvous) take() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got
	r.got = map[string]int{}
	return got
}

type deadCount struct {
	mu sync.Mutex
	n  int
}

func (d *deadCount) OnDeadLetter(engine.DeadLetter) { d.mu.Lock(); d.n++; d.mu.Unlock() }

// An agent's subscriptions are a multiset, with few of them or many:
// subscribing to a pattern three times delivers each message three times
// and takes three unsubscribes, a fourth is ErrNotFound, and terminating
// the agent drops whatever is left.
func TestUnsubscribeAgentCountsEachSubscription(t *testing.T) {
	for _, others := range []int{2, 40} { // below and above the slice's size
		t.Run(fmt.Sprintf("others=%d", others), func(t *testing.T) {
			h := enginetest.New(t, engine.WithLoops(1))
			var dead deadCount
			h.Engine.Use(&dead)
			rec := &rendezvous{got: map[string]int{}}
			if err := h.Engine.Register("r", func() engine.Agent { return rec }); err != nil {
				t.Fatal(err)
			}
			h.Start()
			id := engine.AgentID{Type: "r", Key: "1"}
			sub := func(p string) {
				t.Helper()
				if err := h.Engine.SubscribeAgent(p, id); err != nil {
					t.Fatal(err)
				}
			}
			for i := range others {
				sub(fmt.Sprintf("other.%d", i))
			}
			sub("dup.x")
			sub("dup.*")
			sub("dup.x")
			sub("dup.x")
			publish := func() map[string]int {
				t.Helper()
				for _, topic := range []string{"dup.x", "other.0", "other.1"} {
					if err := h.Engine.Publish(topic, nil); err != nil {
						t.Fatal(err)
					}
				}
				h.Settle()
				return rec.take()
			}
			check := func(want int) {
				t.Helper()
				got := publish()
				if got["dup.x"] != want || got["other.0"] != 1 || got["other.1"] != 1 {
					t.Fatalf("deliveries %v, want dup.x %d (with dup.*), other.0 and other.1 once", got, want)
				}
			}
			check(4)
			for want := 3; want >= 1; want-- {
				if err := h.Engine.UnsubscribeAgent("dup.x", id); err != nil {
					t.Fatal(err)
				}
				check(want)
			}
			if err := h.Engine.UnsubscribeAgent("dup.x", id); !errors.Is(err, messaging.ErrNotFound) {
				t.Fatalf("fourth unsubscribe from dup.x: %v, want ErrNotFound", err)
			}
			if err := h.Engine.UnsubscribeAgent("never", id); !errors.Is(err, messaging.ErrNotFound) {
				t.Fatalf("unsubscribe from a pattern never subscribed: %v, want ErrNotFound", err)
			}
			sub("dup.x") // one more to drop at termination
			if err := h.Engine.Terminate(id); err != nil {
				t.Fatal(err)
			}
			h.Settle()
			if got := publish(); len(got) != 0 {
				t.Fatalf("deliveries after termination: %v", got)
			}
			dead.mu.Lock()
			defer dead.mu.Unlock()
			if dead.n != 0 {
				t.Errorf("%d dead letters: a subscription outlived its agent", dead.n)
			}
			if _, err := h.Engine.Lookup(id); err == nil {
				t.Errorf("the publishes after termination brought the agent back")
			}
		})
	}
}

// BenchmarkUnsubscribeAgent removes one of an agent's n subscriptions, in
// random order, and subscribes it again (so that the agent keeps n): the
// cost per operation must not grow with n.
func BenchmarkUnsubscribeAgent(b *testing.B) {
	for _, n := range []int{1000, 4000, 16000, 40000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			e, id, pats := subscribedAgent(b, n)
			order := rand.New(rand.NewPCG(1, 2)).Perm(n)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p := pats[order[i%n]]
				i++
				if err := e.UnsubscribeAgent(p, id); err != nil {
					b.Fatal(err)
				}
				if err := e.SubscribeAgent(p, id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
