package messaging_test

import (
	"errors"
	"testing"

	"github.com/agentloop/agentloop/messaging"
)

// doc.go: the NATS wildcard table, and "Bus.Publish calls every matching
// handler ... and returns how many returned normally. A handler that panics
// is recovered ... and does not stop delivery to the others."
func TestAcceptanceMessagingBus(t *testing.T) {
	cases := []struct {
		pattern string
		match   []string
		miss    []string
	}{
		{"a.b.c", []string{"a.b.c"}, []string{"a.b", "a.b.c.d"}},
		{"a.*.c", []string{"a.b.c", "a.x.c"}, []string{"a.c", "a.b.b.c"}},
		{"a.>", []string{"a.b", "a.b.c"}, []string{"a"}},
		{">", []string{"a", "a.b.c"}, nil},
	}
	for _, tc := range cases {
		var bus messaging.Bus
		n := 0
		sub, err := bus.Subscribe(tc.pattern, func(string, []byte) { n++ })
		if err != nil {
			t.Fatal(err)
		}
		for _, topic := range tc.match {
			if d, err := bus.Publish(topic, nil); d != 1 || err != nil {
				t.Errorf("%q on %q: %d, %v", tc.pattern, topic, d, err)
			}
		}
		for _, topic := range tc.miss {
			if d, _ := bus.Publish(topic, nil); d != 0 {
				t.Errorf("%q matched %q", tc.pattern, topic)
			}
		}
		if err := sub.Unsubscribe(); err != nil {
			t.Error(err)
		}
		_ = sub.Unsubscribe() // idempotent
		if d, _ := bus.Publish(tc.match[0], nil); d != 0 || bus.Count() != 0 {
			t.Errorf("delivered after Unsubscribe")
		}
	}
	var bus messaging.Bus
	got := 0
	_, _ = bus.Subscribe("p", func(string, []byte) { panic("boom") })
	_, _ = bus.Subscribe("p", func(string, []byte) { got++ })
	if d, err := bus.Publish("p", nil); d != 1 || err != nil || got != 1 || bus.Panics() != 1 {
		t.Errorf("with a panicking handler: delivered %d err %v got %d panics %d", d, err, got, bus.Panics())
	}
}

// Every error the package documents, with errors.Is.
func TestAcceptanceMessagingErrors(t *testing.T) {
	for _, topic := range []string{"", "a..b", "a b", "a.*", "a.>"} {
		if err := messaging.ValidateTopic(topic); !errors.Is(err, messaging.ErrInvalidTopic) {
			t.Errorf("ValidateTopic(%q) = %v", topic, err)
		}
		var bus messaging.Bus
		if _, err := bus.Publish(topic, nil); !errors.Is(err, messaging.ErrInvalidTopic) {
			t.Errorf("Publish(%q) = %v", topic, err)
		}
	}
	for _, p := range []string{"", "a..b", "a*", "b>c", "a.>.b", "a b"} {
		if err := messaging.ValidatePattern(p); !errors.Is(err, messaging.ErrInvalidPattern) {
			t.Errorf("ValidatePattern(%q) = %v", p, err)
		}
	}
	var bus messaging.Bus
	if _, err := bus.Subscribe("a", nil); !errors.Is(err, messaging.ErrNilHandler) {
		t.Errorf("nil handler: %v", err)
	}
	type owner struct{}
	if _, err := messaging.SubscribeWeak[owner](&bus, "a", nil, func(*owner, string, []byte) {}); !errors.Is(err, messaging.ErrNilOwner) {
		t.Errorf("nil owner: %v", err)
	}
	var sl messaging.Sublist[int]
	if err := sl.Remove("a", 1); !errors.Is(err, messaging.ErrNotFound) {
		t.Errorf("Sublist.Remove missing: %v", err)
	}
}
