package messaging

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestBusPublish(t *testing.T) {
	var b Bus // the zero value works
	payload := []byte("21.5C")
	type call struct {
		name, topic string
		payload     []byte
	}
	var calls []call
	sub := func(pattern, name string) {
		t.Helper()
		if _, err := b.Subscribe(pattern, func(topic string, p []byte) {
			calls = append(calls, call{name, topic, p})
		}); err != nil {
			t.Fatal(err)
		}
	}
	sub("telemetry.dev-42.temp", "exact")
	sub("telemetry.*.temp", "one")
	sub("telemetry.>", "rest")
	sub("telemetry.*.hum", "other")
	sub("telemetry", "short")
	if b.Count() != 5 {
		t.Fatalf("Count = %d, want 5", b.Count())
	}
	n, err := b.Publish("telemetry.dev-42.temp", payload)
	if err != nil || n != 3 || len(calls) != 3 {
		t.Fatalf("Publish = %d, %v with %d calls; want 3, nil, 3", n, err, len(calls))
	}
	names := map[string]bool{}
	for _, c := range calls {
		names[c.name] = true
		if c.topic != "telemetry.dev-42.temp" {
			t.Errorf("%s got topic %q", c.name, c.topic)
		}
		// Zero-copy: every subscriber sees the publisher's backing array.
		if &c.payload[0] != &payload[0] || len(c.payload) != len(payload) || cap(c.payload) != cap(payload) {
			t.Errorf("%s got a different slice than the one published", c.name)
		}
	}
	if !names["exact"] || !names["one"] || !names["rest"] {
		t.Errorf("delivered to %v", names)
	}
	if n, err := b.Publish("nobody.listens", payload); n != 0 || err != nil {
		t.Errorf("Publish to a topic without subscribers = %d, %v", n, err)
	}
}

func TestBusErrors(t *testing.T) {
	b := NewBus()
	for _, topic := range []string{"", "a..b", "a.*", "a.>", "a b", strings.Repeat("x", MaxTopicLen+1)} {
		if n, err := b.Publish(topic, nil); !errors.Is(err, ErrInvalidTopic) || n != 0 {
			t.Errorf("Publish(%q) on an empty bus = %d, %v; want ErrInvalidTopic", topic, n, err)
		}
	}
	if _, err := b.Subscribe("a.>", func(string, []byte) {}); err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"", "a..b", "a.*", "a.>", "a. b"} {
		if n, err := b.Publish(topic, nil); !errors.Is(err, ErrInvalidTopic) || n != 0 {
			t.Errorf("Publish(%q) = %d, %v; want ErrInvalidTopic", topic, n, err)
		}
	}
	for _, p := range []string{"", "a..b", "a*", "a.>.b", "a b"} {
		if s, err := b.Subscribe(p, func(string, []byte) {}); !errors.Is(err, ErrInvalidPattern) || s != nil {
			t.Errorf("Subscribe(%q) = %v, %v; want nil, ErrInvalidPattern", p, s, err)
		}
		if s, err := SubscribeWeak(b, p, new(testOwner), (*testOwner).handle); !errors.Is(err, ErrInvalidPattern) || s != nil {
			t.Errorf("SubscribeWeak(%q) = %v, %v; want nil, ErrInvalidPattern", p, s, err)
		}
	}
	if _, err := b.Subscribe("a", nil); !errors.Is(err, ErrNilHandler) {
		t.Errorf("Subscribe with a nil handler = %v, want ErrNilHandler", err)
	}
	if _, err := SubscribeWeak(b, "a", new(testOwner), nil); !errors.Is(err, ErrNilHandler) {
		t.Errorf("SubscribeWeak with a nil handler = %v, want ErrNilHandler", err)
	}
	if _, err := SubscribeWeak(b, "a", (*testOwner)(nil), (*testOwner).handle); !errors.Is(err, ErrNilOwner) {
		t.Errorf("SubscribeWeak with a nil owner = %v, want ErrNilOwner", err)
	}
	if b.Count() != 1 {
		t.Errorf("Count = %d after refused subscriptions, want 1", b.Count())
	}
}

func TestBusPanic(t *testing.T) {
	type report struct {
		topic string
		v     any
		stack string
	}
	var reports []report
	b := NewBus(WithOnPanic(func(topic string, v any, stack []byte) {
		reports = append(reports, report{topic, v, string(stack)})
	}))
	var ran []int
	handlers := []Handler{
		func(string, []byte) { ran = append(ran, 0) },
		func(string, []byte) { ran = append(ran, 1); panicHere("boom") },
		func(string, []byte) { ran = append(ran, 2); panic(nil) },
		func(string, []byte) { ran = append(ran, 3) },
		func(string, []byte) { ran = append(ran, 4); panicHere("last") },
	}
	for _, h := range handlers {
		if _, err := b.Subscribe("p", h); err != nil {
			t.Fatal(err)
		}
	}
	n, err := b.Publish("p", nil)
	if err != nil || n != 2 {
		t.Fatalf("Publish = %d, %v; want 2 handlers returning normally", n, err)
	}
	if fmt.Sprint(ran) != "[0 1 2 3 4]" {
		t.Fatalf("handlers ran %v, want all five in order", ran)
	}
	if b.Panics() != 3 || len(reports) != 3 {
		t.Fatalf("Panics = %d with %d reports, want 3", b.Panics(), len(reports))
	}
	if r := reports[0]; r.topic != "p" || r.v != "boom" || !strings.Contains(r.stack, "panicHere") {
		t.Errorf("report = %q, %v, stack without panicHere:\n%s", r.topic, r.v, r.stack)
	}
	var pn *runtime.PanicNilError
	if err, ok := reports[1].v.(error); !ok || !errors.As(err, &pn) {
		t.Errorf("panic(nil) reported as %v, want *runtime.PanicNilError", reports[1].v)
	}
	// Without an observer panics are still survived and counted.
	var quiet Bus
	_, _ = quiet.Subscribe("p", func(string, []byte) { panic("x") })
	if n, err := quiet.Publish("p", nil); n != 0 || err != nil || quiet.Panics() != 1 {
		t.Errorf("Publish = %d, %v, Panics = %d", n, err, quiet.Panics())
	}
}

//go:noinline
func panicHere(v string) { panic(v) }

func TestBusUnsubscribe(t *testing.T) {
	var b Bus
	var got []string
	var second *Subscription
	first, _ := b.Subscribe("u", func(string, []byte) {
		got = append(got, "first")
		// A handler may unsubscribe others, and itself, mid-publish: a
		// subscription removed before its turn is skipped.
		if err := second.Unsubscribe(); err != nil {
			t.Error(err)
		}
	})
	second, _ = b.Subscribe("u", func(string, []byte) { got = append(got, "second") })
	third, _ := b.Subscribe("u", func(string, []byte) { got = append(got, "third") })
	if n, _ := b.Publish("u", nil); n != 2 || fmt.Sprint(got) != "[first third]" {
		t.Fatalf("Publish = %d, ran %v; want 2, [first third]", n, got)
	}
	if b.Count() != 2 {
		t.Fatalf("Count = %d, want 2", b.Count())
	}
	for range 2 {
		if err := third.Unsubscribe(); err != nil {
			t.Fatalf("Unsubscribe = %v", err)
		}
	}
	if err := first.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.Publish("u", nil); n != 0 || b.Count() != 0 || b.subs.Count() != 0 {
		t.Fatalf("after Unsubscribe: Publish = %d, Count = %d", n, b.Count())
	}
	if err := (*Subscription)(nil).Unsubscribe(); err != nil {
		t.Errorf("nil Unsubscribe = %v", err)
	}
	if first.Pattern() != "u" {
		t.Errorf("Pattern = %q", first.Pattern())
	}
}

// TestBusReentrant: handlers may publish, subscribe and unsubscribe; the bus
// holds no lock while calling them.
func TestBusReentrant(t *testing.T) {
	var b Bus
	var inner atomic.Int32
	_, _ = b.Subscribe("in", func(string, []byte) { inner.Add(1) })
	_, _ = b.Subscribe("out", func(_ string, p []byte) {
		if _, err := b.Publish("in", p); err != nil {
			t.Error(err)
		}
		s, err := b.Subscribe("in", func(string, []byte) {})
		if err != nil {
			t.Error(err)
			return
		}
		if err := s.Unsubscribe(); err != nil {
			t.Error(err)
		}
	})
	if n, err := b.Publish("out", nil); n != 1 || err != nil || inner.Load() != 1 {
		t.Fatalf("Publish = %d, %v, inner deliveries %d", n, err, inner.Load())
	}
}

func TestBusPublishAllocs(t *testing.T) {
	var b Bus
	var sink int
	for range 10 {
		_, _ = b.Subscribe("a.b.c", func(_ string, p []byte) { sink += len(p) })
		_, _ = b.Subscribe("a.*.c", func(_ string, p []byte) { sink += len(p) })
	}
	o := new(testOwner)
	_, _ = SubscribeWeak(&b, "a.>", o, (*testOwner).handle)
	payload := make([]byte, 64)
	_, _ = b.Publish("a.b.c", payload)
	if n := testing.AllocsPerRun(1000, func() { _, _ = b.Publish("a.b.c", payload) }); n != 0 {
		t.Errorf("Publish of a cached topic allocates %v times", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _, _ = b.Publish("x.y", payload) }); n != 0 {
		t.Errorf("Publish of a cached topic without subscribers allocates %v times", n)
	}
	// A stream of topics seen once (10 000 devices reporting in turn) is
	// not cached, and publishing it allocates nothing either.
	topics := make([]string, 1000)
	for i := range topics {
		topics[i] = fmt.Sprintf("a.dev-%d.c", i)
	}
	i := 0
	if n := testing.AllocsPerRun(len(topics)-1, func() { _, _ = b.Publish(topics[i], payload); i++ }); n != 0 {
		t.Errorf("Publish of topics seen once allocates %v times", n)
	}
	if n := b.subs.cached(); n != 2 {
		t.Errorf("%d topics cached, want a.b.c and x.y", n)
	}
	runtime.KeepAlive(o)
}

// TestBusRace publishes, subscribes and unsubscribes from several goroutines
// at once; run with -race. A subscription that stays gets every message.
func TestBusRace(t *testing.T) {
	var b Bus
	var kept atomic.Int64
	_, _ = b.Subscribe("race.>", func(string, []byte) { kept.Add(1) })
	const churners, publishers, rounds = 3, 3, 200
	var wg sync.WaitGroup
	for c := range churners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				pattern := fmt.Sprintf("race.%d.*", (c+i)%5)
				s, err := b.Subscribe(pattern, func(string, []byte) {})
				if err != nil {
					t.Error(err)
					return
				}
				o := &testOwner{}
				w, err := SubscribeWeak(&b, pattern, o, (*testOwner).ignore)
				if err != nil {
					t.Error(err)
					return
				}
				if err := s.Unsubscribe(); err != nil {
					t.Error(err)
				}
				if i%2 == 0 {
					_ = w.Unsubscribe() // the others are left to the collector
				}
			}
		}()
	}
	payload := []byte("x")
	for range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				if _, err := b.Publish(fmt.Sprintf("race.%d.t", i%5), payload); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if got := kept.Load(); got != publishers*rounds {
		t.Errorf("the permanent subscription got %d messages, want %d", got, publishers*rounds)
	}
	if err := b.subs.verify(); err != nil {
		t.Error(err)
	}
}
