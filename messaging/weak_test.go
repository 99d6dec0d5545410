package messaging

import (
	"runtime"
	"testing"
	"time"
	"weak"
)

// A testOwner is the owner of weak subscriptions in tests. It holds a
// pointer and more than 16 bytes, so the tiny allocator never batches it
// with a live object.
type testOwner struct {
	name string
	got  []string
}

func (o *testOwner) handle(topic string, _ []byte) { o.got = append(o.got, topic) }

// ignore is a handler safe to call from several goroutines at once.
func (o *testOwner) ignore(string, []byte) {}

// waitFor runs the collector until cond holds, or fails after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.GC()
		runtime.Gosched() // let the cleanup goroutines run
	}
}

// subscribeWeakOwners subscribes n fresh owners and returns only their
// subscriptions: nothing on the caller's stack points at an owner.
//
//go:noinline
func subscribeWeakOwners(t *testing.T, b *Bus, pattern string, n int) []*Subscription {
	subs := make([]*Subscription, n)
	for i := range subs {
		s, err := SubscribeWeak(b, pattern, &testOwner{name: "owner"}, (*testOwner).handle)
		if err != nil {
			t.Fatal(err)
		}
		subs[i] = s
	}
	return subs
}

func TestSubscribeWeakDelivers(t *testing.T) {
	var b Bus
	o := &testOwner{name: "kept"}
	s, err := SubscribeWeak(&b, "w.*", o, func(owner *testOwner, topic string, p []byte) {
		if owner != o {
			t.Errorf("handler got owner %p, want %p", owner, o)
		}
		owner.handle(topic, p)
	})
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC() // o is live: nothing happens
	if n, _ := b.Publish("w.x", nil); n != 1 || len(o.got) != 1 || b.Count() != 1 {
		t.Fatalf("Publish = %d, owner got %v, Count = %d", n, o.got, b.Count())
	}
	for range 2 {
		if err := s.Unsubscribe(); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := b.Publish("w.x", nil); n != 0 || b.Count() != 0 {
		t.Fatalf("after Unsubscribe: Publish = %d, Count = %d", n, b.Count())
	}
	runtime.KeepAlive(o)
}

// TestSubscribeWeakCollected: subscriptions disappear once their owners are
// collected, without Unsubscribe, and are pruned in batches.
func TestSubscribeWeakCollected(t *testing.T) {
	var b Bus
	strong, _ := b.Subscribe("w.>", func(string, []byte) {})
	const n = 200
	subs := subscribeWeakOwners(t, &b, "w.*", n)
	if b.Count() != n+1 {
		t.Fatalf("Count = %d, want %d", b.Count(), n+1)
	}
	if d, _ := b.Publish("w.x", nil); d != n+1 {
		t.Fatalf("Publish reached %d, want %d", d, n+1)
	}
	gen := b.subs.gen()
	waitFor(t, "the weak subscriptions to go", func() bool { return b.Count() == 1 })
	// Delivery skips them whether or not they are pruned yet.
	if d, _ := b.Publish("w.x", nil); d != 1 {
		t.Fatalf("Publish reached %d after the owners died, want 1", d)
	}
	// A Subscribe sweeps up any stragglers below the batch threshold.
	s, _ := b.Subscribe("w.y", func(string, []byte) {})
	_ = s.Unsubscribe()
	if b.subs.Count() != 1 {
		t.Fatalf("Sublist still holds %d subscriptions, want 1", b.subs.Count())
	}
	// 200 removals, plus the Subscribe and Unsubscribe just made, in far
	// fewer generations than one per removal.
	if g := b.subs.gen() - gen; g > n/4 {
		t.Errorf("pruning took %d generations for %d subscriptions: not batched", g, n)
	}
	for _, s := range subs {
		if err := s.Unsubscribe(); err != nil {
			t.Errorf("Unsubscribe of a pruned subscription = %v", err)
		}
	}
	if err := b.subs.verify(); err != nil {
		t.Fatal(err)
	}
	_ = strong.Unsubscribe()
	if b.Count() != 0 || b.dead.Load() != 0 {
		t.Errorf("Count = %d, dead = %d at the end", b.Count(), b.dead.Load())
	}
}

// TestSubscribeWeakAlone: a bus holding only weak subscriptions empties to
// zero on its own.
// Count only ever goes down meanwhile, even while batches are reaped.
func TestSubscribeWeakAlone(t *testing.T) {
	var b Bus
	const n = 300
	subscribeWeakOwners(t, &b, "solo", n)
	last := b.Count()
	waitFor(t, "the Sublist to empty", func() bool {
		for range 100 {
			c := b.Count()
			if c > last {
				t.Fatalf("Count went up from %d to %d", last, c)
			}
			last = c
			runtime.Gosched()
		}
		return b.subs.Count() == 0
	})
	if b.Count() != 0 || last != 0 {
		t.Errorf("Count = %d", b.Count())
	}
}

// TestSubscribeWeakDroppedBus: weak subscriptions do not keep their bus
// alive when their owners outlive it.
func TestSubscribeWeakDroppedBus(t *testing.T) {
	owner := &testOwner{name: "outlives the bus"}
	wb := dropBus(t, owner)
	waitFor(t, "the dropped bus to be collected", func() bool { return wb.Value() == nil })
	runtime.KeepAlive(owner)
}

//go:noinline
func dropBus(t *testing.T, owner *testOwner) weak.Pointer[Bus] {
	b := new(Bus)
	if _, err := SubscribeWeak(b, "a", owner, (*testOwner).ignore); err != nil {
		t.Fatal(err)
	}
	return weak.Make(b)
}
