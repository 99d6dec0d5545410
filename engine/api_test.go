package engine_test

// Tests of the API's shape: each verb takes a Ref, its ID form an AgentID,
// alike from outside and inside; outside timers; what a Message says of
// itself; what Use and ParseCron refuse.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/enginetest"
)

// apiEcho answers requests with their payload and reports every message,
// with what it says of itself, on out.
type apiEcho struct{ out chan<- string }

func (a apiEcho) Receive(c *engine.Context, m engine.Message) {
	if m.IsRequest() {
		_ = c.Reply(m.Payload)
		return
	}
	kind := "send"
	if m.IsTimer() {
		kind = "timer"
	}
	a.out <- kind + " " + string(m.Payload)
}

func TestAPISendAndRequestByRefAndByID(t *testing.T) {
	e := ctEngine(t, engine.WithLoops(2))
	out := make(chan string, 16)
	if err := e.Register("echo", func() engine.Agent { return apiEcho{out} }); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	id := engine.AgentID{Type: "echo", Key: "1"}
	ref, err := e.Spawn(id)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sends := []struct {
		name string
		send func() error
	}{
		{"Ref.Send", func() error { return ref.Send([]byte("a")) }},
		{"Engine.Send", func() error { return e.Send(ref, []byte("b")) }},
		{"Engine.SendID", func() error { return e.SendID(id, []byte("c")) }},
		{"Ref.SendContext", func() error { return ref.SendContext(ctx, []byte("d")) }},
		{"Engine.SendContext", func() error { return e.SendContext(ctx, ref, []byte("e")) }},
		{"Engine.SendIDContext", func() error { return e.SendIDContext(ctx, id, []byte("f")) }},
	}
	for _, s := range sends {
		if err := s.send(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	for _, want := range []string{"a", "b", "c", "d", "e", "f"} {
		if got := ctRecv(t, out, "send "+want); got != "send "+want {
			t.Errorf("got %q, want %q (in order)", got, "send "+want)
		}
	}
	requests := []struct {
		name string
		req  func(p []byte) ([]byte, error)
	}{
		{"Ref.Request", func(p []byte) ([]byte, error) { return ref.Request(ctx, p) }},
		{"Engine.Request", func(p []byte) ([]byte, error) { return e.Request(ctx, ref, p) }},
		{"Engine.RequestID", func(p []byte) ([]byte, error) { return e.RequestID(ctx, id, p) }},
	}
	for _, r := range requests {
		got, err := r.req([]byte(r.name))
		if err != nil || string(got) != r.name {
			t.Errorf("%s = %q, %v", r.name, got, err)
		}
	}
	var zero engine.Ref
	if err := e.Send(zero, nil); !errors.Is(err, engine.ErrUnknownAgent) {
		t.Errorf("Engine.Send to the zero Ref: %v", err)
	}
	if _, err := e.Request(ctx, zero, nil); !errors.Is(err, engine.ErrUnknownAgent) {
		t.Errorf("Engine.Request to the zero Ref: %v", err)
	}
	if _, err := zero.Request(ctx, nil); !errors.Is(err, engine.ErrUnknownAgent) {
		t.Errorf("Ref.Request on the zero Ref: %v", err)
	}
}

// Engine.After and Engine.Every arm timers for an agent from outside,
// counted from the call; their ticks, and only theirs, report IsTimer.
func TestAPIOutsideTimers(t *testing.T) {
	h := enginetest.New(t, engine.WithLoops(1))
	out := make(chan string, 64)
	if err := h.Engine.Register("echo", func() engine.Agent { return apiEcho{out} }); err != nil {
		t.Fatal(err)
	}
	h.Start()
	id := engine.AgentID{Type: "echo", Key: "1"}
	if _, err := h.Engine.After(90*time.Second, id, []byte("after")); err != nil {
		t.Fatal(err)
	}
	every, err := h.Engine.Every(time.Minute, id, []byte("every"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Engine.SendID(id, []byte("direct")); err != nil {
		t.Fatal(err)
	}
	h.Advance(3 * time.Minute)
	if !every.Stop() {
		t.Error("Stop of a running Every reported false")
	}
	h.Advance(3 * time.Minute)
	close(out)
	var got []string
	for s := range out {
		got = append(got, s)
	}
	want := "send direct|timer every|timer after|timer every|timer every"
	if strings.Join(got, "|") != want {
		t.Errorf("deliveries %q, want %q", strings.Join(got, "|"), want)
	}
	for _, d := range []time.Duration{0, -time.Second} {
		if _, err := h.Engine.After(d, id, nil); !errors.Is(err, engine.ErrInvalidDuration) {
			t.Errorf("After(%v): %v", d, err)
		}
		if _, err := h.Engine.Every(d, id, nil); !errors.Is(err, engine.ErrInvalidDuration) {
			t.Errorf("Every(%v): %v", d, err)
		}
	}
	if _, err := h.Engine.After(time.Second, engine.AgentID{Type: "nope", Key: "1"}, nil); !errors.Is(err, engine.ErrUnknownType) {
		t.Errorf("After for an unknown type: %v", err)
	}
}

type misspelt struct{}

func (misspelt) OnDeadletter(engine.DeadLetter) {} // not OnDeadLetter

func TestAPIUseRefusesNonObservers(t *testing.T) {
	e := ctEngine(t)
	good := make(ctTerminations, 1)
	err := e.Use(good, misspelt{})
	if !errors.Is(err, engine.ErrInvalidArgument) || !strings.Contains(err.Error(), "misspelt") {
		t.Fatalf("Use(misspelt): %v, want ErrInvalidArgument naming the type", err)
	}
	if err := e.Use(nil); !errors.Is(err, engine.ErrInvalidArgument) {
		t.Errorf("Use(nil): %v", err)
	}
	// Nothing of the refused call was installed.
	if err := e.Register("bad", func() engine.Agent { return &ctFailingInit{errInitBoom} }); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Spawn(engine.AgentID{Type: "bad", Key: "1"}); err != nil {
		t.Fatal(err)
	}
	ctIdle(t, e)
	if len(good) != 0 {
		t.Error("a plugin of a refused Use call was installed")
	}
}

func TestAPIParseCronReturnsTheSchedule(t *testing.T) {
	s, err := engine.ParseCron("TZ=UTC 30 9 * * *")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	if got, want := s.Next(from), time.Date(2026, 12, 2, 9, 30, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Next(%v) = %v, want %v", from, got, want)
	}
	every, err := engine.ParseCron("@every 250ms")
	if err != nil {
		t.Fatal(err)
	}
	if got := every.Next(from).Sub(from); got != 250*time.Millisecond {
		t.Errorf("@every 250ms: next is %v later", got)
	}
	if s, err := engine.ParseCron("61 * * * *"); !errors.Is(err, engine.ErrInvalidSchedule) || s != nil {
		t.Errorf("ParseCron(bad) = %v, %v", s, err)
	}
}
