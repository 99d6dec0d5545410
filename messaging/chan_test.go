package messaging_test

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/agentloop/agentloop/messaging"
)

// A fixture owns channel subscriptions in these tests. It holds a pointer
// and more than 16 bytes, so the tiny allocator never batches it with a live
// object.
type fixture struct {
	name string
	_    [4]int64
}

// collect runs the collector until cond holds, or fails after a deadline.
func collect(t *testing.T, what string, cond func() bool) {
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

// SubscribeChan: "every message published to a topic pattern matches is
// copied into a Delivery and sent on ch without blocking. When ch has no
// room ... the message is left out for this subscriber and counted in
// Subscription.Dropped".
func TestSubscribeChan(t *testing.T) {
	var b messaging.Bus
	owner := &fixture{name: "dashboard"}
	ch := make(chan messaging.Delivery, 2)
	sub, err := messaging.SubscribeChan(&b, "telemetry.*.temp", owner, ch)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte("21.5")
	for _, topic := range []string{"telemetry.dev-1.temp", "telemetry.dev-1.hum", "alerts.dev-1"} {
		if _, err := b.Publish(topic, payload); err != nil {
			t.Fatal(err)
		}
	}
	payload[0] = '9' // the publisher breaks its promise: the copy must not see it
	if len(ch) != 1 {
		t.Fatalf("%d deliveries queued, want 1 (only telemetry.dev-1.temp matches)", len(ch))
	}
	d := <-ch
	if d.Topic != "telemetry.dev-1.temp" || string(d.Payload) != "21.5" {
		t.Fatalf("Delivery = %q %q, want telemetry.dev-1.temp 21.5", d.Topic, d.Payload)
	}

	// Two fit; the third is left out and counted, and Publish does not wait.
	for range 3 {
		if n, err := b.Publish("telemetry.dev-2.temp", payload); n != 1 || err != nil {
			t.Fatalf("Publish = %d, %v; want 1, nil", n, err)
		}
	}
	if len(ch) != 2 || sub.Dropped() != 1 {
		t.Fatalf("%d queued, %d dropped; want 2 and 1", len(ch), sub.Dropped())
	}

	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	<-ch
	<-ch
	if n, _ := b.Publish("telemetry.dev-3.temp", payload); n != 0 || len(ch) != 0 || b.Count() != 0 {
		t.Fatalf("after Unsubscribe: delivered %d, %d queued, Count %d", n, len(ch), b.Count())
	}
	runtime.KeepAlive(owner)
}

// An unbuffered channel takes a message only when a receiver waits on it.
func TestSubscribeChanUnbuffered(t *testing.T) {
	var b messaging.Bus
	owner := &fixture{name: "bridge"}
	ch := make(chan messaging.Delivery)
	sub, err := messaging.SubscribeChan(&b, "a.>", owner, ch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish("a.b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if sub.Dropped() != 1 {
		t.Fatalf("Dropped = %d with no receiver, want 1", sub.Dropped())
	}
	got := make(chan messaging.Delivery)
	go func() { got <- <-ch }()
	// Publish until the receiver has taken one; each attempt without a
	// receiver waiting is left out, never blocks.
	deadline := time.Now().Add(10 * time.Second)
	for sent := false; !sent; {
		if time.Now().After(deadline) {
			t.Fatal("the waiting receiver never got a message")
		}
		if _, err := b.Publish("a.c", []byte("y")); err != nil {
			t.Fatal(err)
		}
		select {
		case d := <-got:
			if d.Topic != "a.c" || string(d.Payload) != "y" {
				t.Fatalf("Delivery = %q %q", d.Topic, d.Payload)
			}
			sent = true
		default:
			runtime.Gosched()
		}
	}
	runtime.KeepAlive(owner)
}

// The bus holds the owner of a channel subscription weakly: once it is
// collected, the subscription ends and nothing more is sent.
func TestSubscribeChanOwnerCollected(t *testing.T) {
	var b messaging.Bus
	ch := make(chan messaging.Delivery, 4)
	sub := subscribeChanOwner(t, &b, ch)
	if n, _ := b.Publish("w.x", nil); n != 1 || len(ch) != 1 {
		t.Fatalf("before collection: delivered %d, %d queued", n, len(ch))
	}
	<-ch
	collect(t, "the channel subscription to end", func() bool { return b.Count() == 0 })
	if n, _ := b.Publish("w.x", nil); n != 0 || len(ch) != 0 {
		t.Fatalf("after collection: delivered %d, %d queued", n, len(ch))
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatalf("Unsubscribe of a collected subscription = %v", err)
	}
}

// subscribeChanOwner subscribes ch with a fresh owner that nothing else
// references.
//
//go:noinline
func subscribeChanOwner(t *testing.T, b *messaging.Bus, ch chan messaging.Delivery) *messaging.Subscription {
	s, err := messaging.SubscribeChan(b, "w.*", &fixture{name: "forgotten"}, ch)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSubscribeChanErrors(t *testing.T) {
	var b messaging.Bus
	ch := make(chan messaging.Delivery, 1)
	cases := []struct {
		name    string
		pattern string
		owner   *fixture
		ch      chan messaging.Delivery
		want    error
	}{
		{"nil channel", "a", &fixture{}, nil, messaging.ErrNilChan},
		{"nil owner", "a", nil, ch, messaging.ErrNilOwner},
		{"bad pattern", "a.>.b", &fixture{}, ch, messaging.ErrInvalidPattern},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := messaging.SubscribeChan(&b, tc.pattern, tc.owner, tc.ch)
			if !errors.Is(err, tc.want) || s != nil {
				t.Fatalf("SubscribeChan = %v, %v; want nil, %v", s, err, tc.want)
			}
		})
	}
	if b.Count() != 0 {
		t.Fatalf("Count = %d after refused subscriptions", b.Count())
	}
}
