package engine_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/enginetest"
)

// server answers requests according to the payload's first word.
type server struct {
	held *engine.ReplyHandle
	mu   *sync.Mutex
}

func (s *server) Receive(c *engine.Context, m engine.Message) {
	switch cmd := string(m.Payload); {
	case strings.HasPrefix(cmd, "echo "):
		if err := c.Reply(bytes.ToUpper(m.Payload[5:])); err != nil {
			panic(err)
		}
	case cmd == "twice":
		_ = c.Reply([]byte("one"))
		if err := c.Reply([]byte("two")); !errors.Is(err, engine.ErrAlreadyReplied) {
			panic("second reply: " + errString(err))
		}
	case cmd == "ignore":
	case cmd == "panic":
		panic("boom")
	case cmd == "hold":
		h, err := c.ReplyLater()
		if err != nil {
			panic(err)
		}
		s.mu.Lock()
		*s.held = h
		s.mu.Unlock()
	case cmd == "release":
		s.mu.Lock()
		h := *s.held
		s.mu.Unlock()
		if err := h.Reply([]byte("released")); err != nil {
			panic(err)
		}
	case cmd == "notify":
		if err := c.Reply(nil); !errors.Is(err, engine.ErrNoRequest) {
			panic("reply without request: " + errString(err))
		}
		if _, err := c.ReplyLater(); !errors.Is(err, engine.ErrNoRequest) {
			panic("ReplyLater without request: " + errString(err))
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

func newServerEngine(t *testing.T) (*engine.Engine, func() engine.ReplyHandle) {
	t.Helper()
	e, err := engine.New(engine.WithLoops(2))
	if err != nil {
		t.Fatal(err)
	}
	var held engine.ReplyHandle
	var mu sync.Mutex
	if err := e.Register("srv", func() engine.Agent { return &server{held: &held, mu: &mu} }, engine.WithRestarts(100, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	return e, func() engine.ReplyHandle {
		mu.Lock()
		defer mu.Unlock()
		return held
	}
}

func stop(t *testing.T, e *engine.Engine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

var srv = engine.AgentID{Type: "srv", Key: "1"}

func TestRequestOutcomes(t *testing.T) {
	e, _ := newServerEngine(t)
	defer stop(t, e)
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
	}
	for _, c := range cases {
		got, err := e.Request(ctx, srv, []byte(c.payload))
		if !errors.Is(err, c.err) || string(got) != c.reply {
			t.Errorf("Request(%q) = %q, %v; want %q, %v", c.payload, got, err, c.reply, c.err)
		}
	}
	// Reply and ReplyLater outside a request fail (the server panics if
	// they do not); a request after the notification proves it was handled.
	before := e.Stats().Panics
	if err := e.Send(srv, []byte("notify")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Request(ctx, srv, []byte("echo x")); err != nil {
		t.Fatal(err)
	}
	if after := e.Stats().Panics; after != before {
		t.Errorf("Reply outside a request did not fail with ErrNoRequest")
	}
	_, err := e.Request(ctx, srv, []byte("panic"))
	var pe *engine.PanicError
	if !errors.As(err, &pe) || pe.Value != "boom" || len(pe.Stack) == 0 {
		t.Errorf("panic request error %v does not carry the panic", err)
	}
}

func TestRequestReplyLater(t *testing.T) {
	e, _ := newServerEngine(t)
	defer stop(t, e)
	ctx := context.Background()
	done := make(chan string)
	go func() {
		got, err := e.Request(ctx, srv, []byte("hold"))
		done <- string(got) + errString(err)
	}()
	// The server holds the request until a later message releases it.
	// Retry the release until the held request is in place.
	for {
		if err := e.Send(srv, []byte("release")); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-done:
			if got != "releasednil" {
				t.Fatalf("held request = %q", got)
			}
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestRequestDeadlineAndCancel(t *testing.T) {
	e, held := newServerEngine(t)
	defer stop(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := e.Request(ctx, srv, []byte("hold"))
	if !errors.Is(err, engine.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	// The late reply is refused: the requester has gone.
	for held() == (engine.ReplyHandle{}) {
		time.Sleep(time.Millisecond) // the server has not taken the request yet
	}
	if err := held().Reply([]byte("late")); !errors.Is(err, engine.ErrAlreadyReplied) {
		t.Fatalf("late reply: %v", err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if _, err := e.Request(cctx, srv, []byte("echo x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestRequestAnsweredAtStop(t *testing.T) {
	e, _ := newServerEngine(t)
	errc := make(chan error, 1)
	go func() {
		_, err := e.Request(context.Background(), srv, []byte("hold"))
		errc <- err
	}()
	// Wait until the server holds the request: the agent exists and has
	// handled one message.
	for e.Stats().Processed < 1 {
		time.Sleep(time.Millisecond)
	}
	stop(t, e)
	err := <-errc
	if !errors.Is(err, engine.ErrTerminated) && !errors.Is(err, engine.ErrStopped) {
		t.Fatalf("pending request at Stop: %v", err)
	}
	if _, err := e.Request(context.Background(), srv, nil); !errors.Is(err, engine.ErrStopped) {
		t.Fatalf("request after Stop: %v", err)
	}
}

func TestRequestBadInput(t *testing.T) {
	e, _ := newServerEngine(t)
	defer stop(t, e)
	if _, err := e.Request(context.Background(), engine.AgentID{Type: "nope", Key: "1"}, nil); !errors.Is(err, engine.ErrUnknownType) {
		t.Errorf("unknown type: %v", err)
	}
	if _, err := e.Cron("* * *", srv, nil); !errors.Is(err, engine.ErrInvalidSchedule) || !strings.Contains(err.Error(), "* * *") {
		t.Errorf("bad cron: %v", err)
	}
	if err := engine.ParseCron("*/5 * * * *"); err != nil {
		t.Errorf("good cron refused: %v", err)
	}
	if err := engine.ParseCron("0 */5 * * * *"); err != nil {
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
		if err := e.Send(id, []byte("go")); err != nil {
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
	if err := h.Engine.Send(askerID, []byte("go")); err != nil {
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
