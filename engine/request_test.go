package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/enginetest"
)

// server answers requests according to the payload's first word. What it
// sees go wrong inside the agent it reports on faults, where the test
// reads it; a panic there would be swallowed by supervision.
type server struct {
	held   *engine.ReplyHandle
	mu     *sync.Mutex
	holds  chan<- struct{} // one token per request taken with ReplyLater
	faults chan<- string
}

func (s *server) fault(format string, args ...any) {
	select {
	case s.faults <- fmt.Sprintf(format, args...):
	default:
	}
}

func (s *server) Receive(c *engine.Context, m engine.Message) {
	switch cmd := string(m.Payload); {
	case strings.HasPrefix(cmd, "echo "):
		if err := c.Reply(bytes.ToUpper(m.Payload[5:])); err != nil {
			s.fault("echo: %v", err)
		}
	case cmd == "twice":
		if err := c.Reply([]byte("one")); err != nil {
			s.fault("first reply: %v", err)
		}
		if err := c.Reply([]byte("two")); !errors.Is(err, engine.ErrAlreadyReplied) {
			s.fault("second reply: %s", errString(err))
		}
		if _, err := c.ReplyLater(); !errors.Is(err, engine.ErrAlreadyReplied) {
			s.fault("ReplyLater after Reply: %s", errString(err))
		}
	case cmd == "ignore":
	case cmd == "panic":
		panic("boom")
	case cmd == "hold":
		h, err := c.ReplyLater()
		if err != nil {
			s.fault("hold: %v", err)
			return
		}
		s.mu.Lock()
		*s.held = h
		s.mu.Unlock()
		s.holds <- struct{}{}
	case cmd == "release":
		s.mu.Lock()
		h := *s.held
		s.mu.Unlock()
		if err := h.Reply([]byte("released")); err != nil {
			s.fault("release: %v", err)
		}
	case cmd == "notify":
		if err := c.Reply(nil); !errors.Is(err, engine.ErrNoRequest) {
			s.fault("reply without request: %s", errString(err))
		}
		if _, err := c.ReplyLater(); !errors.Is(err, engine.ErrNoRequest) {
			s.fault("ReplyLater without request: %s", errString(err))
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// serverEngine is a started engine running the server type, with what the
// server reports.
type serverEngine struct {
	*engine.Engine
	holds  <-chan struct{}
	faults <-chan string
	held   func() engine.ReplyHandle
}

func newServerEngine(t *testing.T) serverEngine {
	t.Helper()
	e, err := engine.New(engine.WithLoops(2))
	if err != nil {
		t.Fatal(err)
	}
	var held engine.ReplyHandle
	var mu sync.Mutex
	holds := make(chan struct{}, 16)
	faults := make(chan string, 16)
	if err := e.Register("srv", func() engine.Agent {
		return &server{held: &held, mu: &mu, holds: holds, faults: faults}
	}, engine.Restarts(100, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	return serverEngine{e, holds, faults, func() engine.ReplyHandle {
		mu.Lock()
		defer mu.Unlock()
		return held
	}}
}

// noFaults fails the test with whatever the server reported.
func (se serverEngine) noFaults(t *testing.T) {
	t.Helper()
	for {
		select {
		case f := <-se.faults:
			t.Errorf("server: %s", f)
		default:
			return
		}
	}
}

// waitHold waits until the server has taken a request with ReplyLater.
func (se serverEngine) waitHold(t *testing.T) {
	t.Helper()
	select {
	case <-se.holds:
	case <-time.After(10 * time.Second):
		t.Fatal("the server never took the request")
	}
}

func stop(t *testing.T, e interface {
	Stop(context.Context, ...engine.StopOption) error
}) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

var srv = engine.AgentID{Type: "srv", Key: "1"}

func TestRequestOutcomes(t *testing.T) {
	e := newServerEngine(t)
	defer stop(t, e)
	defer e.noFaults(t)
	ctx := context.Background()
	cases := []struct {
		payload string
		reply   string
		err     error
	}{
		{"echo hi", "HI", nil},
		{"twice", "one", nil},
		{"ignore", "", engine.ErrNoReply},
		{"panic", "", engine.ErrPanicked},
		{"echo after", "AFTER", nil},
	}
	for _, c := range cases {
		got, err := e.RequestID(ctx, srv, []byte(c.payload))
		if !errors.Is(err, c.err) || string(got) != c.reply {
			t.Errorf("Request(%q) = %q, %v; want %q, %v", c.payload, got, err, c.reply, c.err)
		}
	}
	// Reply and ReplyLater outside a request fail with ErrNoRequest (the
	// server reports a fault otherwise); a request after the notification
	// proves it was handled.
	if err := e.SendID(srv, []byte("notify")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RequestID(ctx, srv, []byte("echo x")); err != nil {
		t.Fatal(err)
	}
	_, err := e.RequestID(ctx, srv, []byte("panic"))
	var pe *engine.PanicError
	if !errors.As(err, &pe) || pe.Value != "boom" || len(pe.Stack) == 0 {
		t.Errorf("panic request error %v does not carry the panic", err)
	}
}

func TestRequestReplyLater(t *testing.T) {
	e := newServerEngine(t)
	defer stop(t, e)
	defer e.noFaults(t)
	done := make(chan string, 1)
	go func() {
		got, err := e.RequestID(context.Background(), srv, []byte("hold"))
		done <- string(got) + " " + errString(err)
	}()
	// The server holds the request until a later message releases it.
	e.waitHold(t)
	if err := e.SendID(srv, []byte("release")); err != nil {
		t.Fatal(err)
	}
	if got := <-done; got != "released nil" {
		t.Fatalf("held request = %q", got)
	}
	if err := e.held().Reply([]byte("again")); !errors.Is(err, engine.ErrAlreadyReplied) {
		t.Fatalf("second answer through the handle: %v", err)
	}
}

func TestRequestDeadlineAndCancel(t *testing.T) {
	e := newServerEngine(t)
	defer stop(t, e)
	defer e.noFaults(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := e.RequestID(ctx, srv, []byte("hold"))
		errc <- err
	}()
	e.waitHold(t)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) || errors.Is(err, engine.ErrTimeout) {
		t.Fatalf("cancelled while held: %v", err)
	}
	// The late reply is refused: the requester has gone.
	if err := e.held().Reply([]byte("late")); !errors.Is(err, engine.ErrAlreadyReplied) {
		t.Fatalf("late reply: %v", err)
	}
	// A deadline that has passed, before the call or during it, is a timeout.
	past, cancelPast := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancelPast()
	if _, err := e.RequestID(past, srv, []byte("echo x")); !errors.Is(err, engine.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expired deadline: %v", err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer dcancel()
	if _, err := e.RequestID(dctx, srv, []byte("hold")); !errors.Is(err, engine.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline while held: %v", err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if _, err := e.RequestID(cctx, srv, []byte("echo x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before the call: %v", err)
	}
}

func TestRequestAnsweredAtStop(t *testing.T) {
	e := newServerEngine(t)
	errc := make(chan error, 1)
	go func() {
		_, err := e.RequestID(context.Background(), srv, []byte("hold"))
		errc <- err
	}()
	e.waitHold(t)
	stop(t, e)
	err := <-errc
	if !errors.Is(err, engine.ErrTerminated) && !errors.Is(err, engine.ErrStopped) {
		t.Fatalf("pending request at Stop: %v", err)
	}
	if _, err := e.RequestID(context.Background(), srv, nil); !errors.Is(err, engine.ErrStopped) {
		t.Fatalf("request after Stop: %v", err)
	}
}

func TestRequestBadInput(t *testing.T) {
	e := newServerEngine(t)
	defer stop(t, e)
	if _, err := e.RequestID(context.Background(), engine.AgentID{Type: "nope", Key: "1"}, nil); !errors.Is(err, engine.ErrUnknownType) {
		t.Errorf("unknown type: %v", err)
	}
	if _, err := e.Cron("* * *", srv, nil); !errors.Is(err, engine.ErrInvalidSchedule) || !strings.Contains(err.Error(), "* * *") {
		t.Errorf("bad cron: %v", err)
	}
	if _, err := engine.ParseCron("*/5 * * * *"); err != nil {
		t.Errorf("good cron refused: %v", err)
	}
	if _, err := engine.ParseCron("0 */5 * * * *"); err != nil {
		t.Errorf("cron with seconds refused: %v", err)
	}
}

// asker requests its peer on "go" and records what its callbacks saw.
type asker struct {
	peer    engine.AgentID
	timeout time.Duration
	out     chan<- string
}

func (a *asker) Receive(c *engine.Context, m engine.Message) {
	switch {
	case string(m.Payload) == "go":
		peer := a.peer
		if peer.Key == "" { // agents a and b ask each other
			peer = engine.AgentID{Type: c.ID().Type, Key: map[string]string{"a": "b", "b": "a"}[c.ID().Key]}
		}
		err := c.RequestID(peer, []byte("question from "+c.ID().Key), a.timeout, func(c *engine.Context, reply []byte, err error) {
			a.out <- c.ID().Key + " got " + string(reply) + " " + errString(err)
		})
		if err != nil {
			a.out <- "request error " + err.Error()
		}
	case m.IsRequest() && strings.HasPrefix(string(m.Payload), "question"):
		if a.timeout > time.Hour { // the "silent" peer keeps the request
			_, _ = c.ReplyLater()
			return
		}
		_ = c.Reply([]byte("answer from " + c.ID().Key))
	}
}

func TestAgentsRequestingEachOtherDoNotDeadlock(t *testing.T) {
	e, err := engine.New(engine.WithLoops(2))
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan string, 2)
	a, b := engine.AgentID{Type: "ask", Key: "a"}, engine.AgentID{Type: "ask", Key: "b"}
	if err := e.Register("ask", func() engine.Agent { return &asker{timeout: time.Minute, out: out} }); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	defer stop(t, e)
	// Each asks the other at the same time, from different loops.
	if _, err := e.Spawn(a, engine.OnLoop(0)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Spawn(b, engine.OnLoop(1)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []engine.AgentID{a, b} {
		if err := e.SendID(id, []byte("go")); err != nil {
			t.Fatal(err)
		}
	}
	got := []string{<-out, <-out}
	want := map[string]bool{"a got answer from b nil": true, "b got answer from a nil": true}
	for _, g := range got {
		if !want[g] {
			t.Errorf("callback saw %q", g)
		}
	}
}

func TestAgentRequestTimesOutOnTheClock(t *testing.T) {
	h := enginetest.New(t, engine.WithLoops(2))
	out := make(chan string, 4)
	askerID := engine.AgentID{Type: "asker", Key: "a"}
	silent := engine.AgentID{Type: "silent", Key: "s"}
	if err := h.Engine.Register("asker", func() engine.Agent { return &asker{peer: silent, timeout: 30 * time.Second, out: out} }); err != nil {
		t.Fatal(err)
	}
	if err := h.Engine.Register("silent", func() engine.Agent { return &asker{timeout: 2 * time.Hour, out: out} }); err != nil {
		t.Fatal(err)
	}
	h.Start()
	if err := h.Engine.SendID(askerID, []byte("go")); err != nil {
		t.Fatal(err)
	}
	h.Advance(29 * time.Second)
	select {
	case s := <-out:
		t.Fatalf("callback before the timeout: %q", s)
	default:
	}
	h.Advance(time.Second)
	select {
	case s := <-out:
		if !strings.Contains(s, "engine: request timed out") {
			t.Fatalf("callback saw %q, want a timeout", s)
		}
	default:
		t.Fatal("no callback at the timeout")
	}
}
