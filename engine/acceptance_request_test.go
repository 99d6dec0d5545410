package engine_test

// Requests and their errors, from outside (Engine.Request) and from a
// handler (Context.Request), same loop and cross loop.
//
// request.go Context.Request: "calls then on this agent's loop with the
// reply, or with an error: ErrTimeout after timeout, ErrNoReply when the
// target handled the request without replying, ErrTerminated when it
// terminated first, a *PanicError when it panicked, ErrStopped when the
// engine stopped." Engine.Request: "A deadline returns an error matching
// both ErrTimeout and context.DeadlineExceeded. See Context.Request for the
// other errors. Every pending request is answered when the engine stops."

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
)

// reqServer answers by command.
type reqServer struct {
	mu      sync.Mutex
	handles []engine.ReplyHandle
	second  chan error // the result of a second Reply
}

func (s *reqServer) agent() engine.Agent {
	return &accFunc{recv: func(c *engine.Context, m engine.Message) {
		switch string(m.Payload) {
		case "reply":
			_ = c.Reply([]byte("ok"))
		case "twice":
			_ = c.Reply([]byte("one"))
			s.second <- c.Reply([]byte("two"))
		case "panic":
			panic("boom")
		case "hold":
			h, err := c.ReplyLater()
			if err != nil {
				panic(err)
			}
			s.mu.Lock()
			s.handles = append(s.handles, h)
			s.mu.Unlock()
		case "noreply":
		}
	}}
}

func (s *reqServer) handle(t *testing.T) engine.ReplyHandle {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.handles) == 0 {
		t.Fatal("no ReplyHandle taken")
	}
	return s.handles[len(s.handles)-1]
}

// accWaitQueued waits until n messages of type typ wait in mailboxes.
func accWaitQueued(t *testing.T, e *engine.Engine, typ string, n int64) {
	t.Helper()
	deadline := time.Now().Add(accTimeout)
	for time.Now().Before(deadline) {
		accIdle(t, e)
		for _, ts := range e.Stats().Types {
			if ts.Type == typ && ts.Queued >= n {
				return
			}
		}
		runtime.Gosched()
	}
	t.Fatalf("%d messages of %q never queued", n, typ)
}

type reqOutcome struct {
	reply []byte
	err   error
}

func newReqEngine(t *testing.T) (*engine.Engine, *reqServer) {
	t.Helper()
	e := accNew(t, engine.WithLoops(2))
	s := &reqServer{second: make(chan error, 4)}
	accRegister(t, e, "srv", s.agent, engine.Restarts(100, time.Minute))
	return e, s
}

func checkReqErr(t *testing.T, cmd string, o reqOutcome) {
	t.Helper()
	switch cmd {
	case "reply":
		if o.err != nil || string(o.reply) != "ok" {
			t.Errorf("reply: %q, %v", o.reply, o.err)
		}
	case "noreply":
		accIs(t, "noreply", o.err, engine.ErrNoReply)
	case "panic":
		var pe *engine.PanicError
		if !errors.As(o.err, &pe) || !errors.Is(o.err, engine.ErrPanicked) || pe.Value != "boom" {
			t.Errorf("panic: err = %v, want a *PanicError carrying \"boom\"", o.err)
		}
	case "terminated":
		accIs(t, "terminated", o.err, engine.ErrTerminated)
	case "timeout":
		accIs(t, "timeout", o.err, engine.ErrTimeout)
	}
}

func TestAcceptanceRequestEngineErrors(t *testing.T) {
	for _, cmd := range []string{"reply", "noreply", "panic", "terminated"} {
		t.Run(cmd, func(t *testing.T) {
			e, _ := newReqEngine(t)
			id := engine.AgentID{Type: "srv", Key: "1"}
			accSpawn(t, e, id)
			accStart(t, e)
			accIdle(t, e)
			payload := cmd
			if cmd == "terminated" {
				if err := e.Pause(id); err != nil {
					t.Fatal(err)
				}
				payload = "reply"
			}
			done := make(chan reqOutcome, 1)
			go func() {
				r, err := e.RequestID(accCtx(t), id, []byte(payload))
				done <- reqOutcome{r, err}
			}()
			if cmd == "terminated" {
				accWaitQueued(t, e, "srv", 1)
				if err := e.Terminate(id); err != nil {
					t.Fatal(err)
				}
			}
			checkReqErr(t, cmd, accRecv(t, done, "request outcome"))
		})
	}
	t.Run("deadline", func(t *testing.T) {
		e, s := newReqEngine(t)
		id := engine.AgentID{Type: "srv", Key: "1"}
		accStart(t, e)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		_, err := e.RequestID(ctx, id, []byte("hold"))
		accIs(t, "deadline", err, engine.ErrTimeout)
		accIs(t, "deadline", err, context.DeadlineExceeded)
		accIdle(t, e)
		// ErrAlreadyReplied: "an answer after it timed out or was cancelled".
		accIs(t, "ReplyHandle.Reply after the deadline", s.handle(t).Reply(nil), engine.ErrAlreadyReplied)
	})
	t.Run("cancel", func(t *testing.T) {
		e, s := newReqEngine(t)
		id := engine.AgentID{Type: "srv", Key: "1"}
		accStart(t, e)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := e.RequestID(ctx, id, []byte("hold"))
			done <- err
		}()
		accWaitHandle(t, e, s)
		cancel()
		accIs(t, "cancelled request", accRecv(t, done, "request"), context.Canceled)
		accIs(t, "ReplyHandle.Reply after cancel", s.handle(t).Reply(nil), engine.ErrAlreadyReplied)
	})
	t.Run("ReplyLater", func(t *testing.T) {
		e, s := newReqEngine(t)
		id := engine.AgentID{Type: "srv", Key: "1"}
		accStart(t, e)
		done := make(chan reqOutcome, 1)
		go func() {
			r, err := e.RequestID(accCtx(t), id, []byte("hold"))
			done <- reqOutcome{r, err}
		}()
		accWaitHandle(t, e, s)
		h := s.handle(t)
		go func() { _ = h.Reply([]byte("later")) }() // "Safe from any goroutine"
		if o := accRecv(t, done, "request"); o.err != nil || string(o.reply) != "later" {
			t.Errorf("ReplyLater answer: %q %v", o.reply, o.err)
		}
		accIs(t, "second ReplyHandle.Reply", h.Reply(nil), engine.ErrAlreadyReplied)
	})
	t.Run("ReplyLater then terminate", func(t *testing.T) {
		// ReplyLater: "If the agent terminates first the requester gets
		// ErrTerminated."
		e, s := newReqEngine(t)
		id := engine.AgentID{Type: "srv", Key: "1"}
		accStart(t, e)
		done := make(chan error, 1)
		go func() {
			_, err := e.RequestID(accCtx(t), id, []byte("hold"))
			done <- err
		}()
		accWaitHandle(t, e, s)
		if err := e.Terminate(id); err != nil {
			t.Fatal(err)
		}
		accIs(t, "held request of a terminated agent", accRecv(t, done, "request"), engine.ErrTerminated)
	})
	t.Run("second Reply", func(t *testing.T) {
		e, s := newReqEngine(t)
		accStart(t, e)
		if _, err := e.RequestID(accCtx(t), engine.AgentID{Type: "srv", Key: "1"}, []byte("twice")); err != nil {
			t.Fatal(err)
		}
		accIs(t, "second Context.Reply", accRecv(t, s.second, "second reply"), engine.ErrAlreadyReplied)
	})
}

// accWaitHandle waits until the server has taken a ReplyHandle.
func accWaitHandle(t *testing.T, e *engine.Engine, s *reqServer) {
	t.Helper()
	deadline := time.Now().Add(accTimeout)
	for time.Now().Before(deadline) {
		accIdle(t, e)
		s.mu.Lock()
		n := len(s.handles)
		s.mu.Unlock()
		if n > 0 {
			return
		}
		runtime.Gosched()
	}
	t.Fatal("the server never took a ReplyHandle")
}

func TestAcceptanceRequestContextErrors(t *testing.T) {
	for _, where := range []string{"same", "cross"} {
		for _, cmd := range []string{"reply", "noreply", "panic", "terminated", "timeout", "second Reply"} {
			t.Run(where+"/"+cmd, func(t *testing.T) {
				e, s := newReqEngine(t)
				sid := engine.AgentID{Type: "srv", Key: "1"}
				sloop := 0
				if where == "cross" {
					sloop = 1
				}
				sref := accSpawn(t, e, sid, engine.OnLoop(sloop))
				done := make(chan reqOutcome, 1)
				timeout := accTimeout
				if cmd == "timeout" {
					timeout = 30 * time.Millisecond
				}
				payload := map[string]string{"terminated": "reply", "timeout": "hold", "second Reply": "twice"}[cmd]
				if payload == "" {
					payload = cmd
				}
				accRegister(t, e, "req", accRecvOnly(func(c *engine.Context, m engine.Message) {
					err := c.Request(sref, []byte(payload), timeout, func(c *engine.Context, reply []byte, err error) {
						done <- reqOutcome{reply, err}
					})
					if err != nil {
						done <- reqOutcome{nil, err}
					}
				}))
				rid := engine.AgentID{Type: "req", Key: "1"}
				accSpawn(t, e, rid, engine.OnLoop(0))
				accStart(t, e)
				accIdle(t, e)
				if cmd == "terminated" {
					if err := e.Pause(sid); err != nil {
						t.Fatal(err)
					}
				}
				if err := e.SendID(rid, nil); err != nil {
					t.Fatal(err)
				}
				if cmd == "terminated" {
					accWaitQueued(t, e, "srv", 1)
					if err := e.Terminate(sid); err != nil {
						t.Fatal(err)
					}
				}
				o := accRecv(t, done, "callback")
				if cmd == "second Reply" {
					if o.err != nil || string(o.reply) != "one" {
						t.Errorf("first reply: %q %v", o.reply, o.err)
					}
					accIs(t, "second Context.Reply", accRecv(t, s.second, "second reply"), engine.ErrAlreadyReplied)
					return
				}
				checkReqErr(t, cmd, o)
				if cmd == "timeout" {
					accIdle(t, e)
					accIs(t, "ReplyHandle.Reply after the timeout", s.handle(t).Reply(nil), engine.ErrAlreadyReplied)
				}
			})
		}
	}
}

// Engine.Request: "Every pending request is answered when the engine
// stops": a request queued to a paused agent is delivered by a graceful
// Stop, and fails with ErrStopped under Immediate.
func TestAcceptanceRequestPendingAtStop(t *testing.T) {
	for _, immediate := range []bool{false, true} {
		name := "graceful"
		if immediate {
			name = "immediate"
		}
		t.Run(name, func(t *testing.T) {
			e, _ := newReqEngine(t)
			id := engine.AgentID{Type: "srv", Key: "1"}
			accSpawn(t, e, id)
			accStart(t, e)
			accIdle(t, e)
			if err := e.Pause(id); err != nil {
				t.Fatal(err)
			}
			done := make(chan reqOutcome, 1)
			go func() {
				r, err := e.RequestID(context.Background(), id, []byte("reply"))
				done <- reqOutcome{r, err}
			}()
			accWaitQueued(t, e, "srv", 1)
			if immediate {
				accStop(t, e, engine.Immediate())
			} else {
				accStop(t, e)
			}
			o := accRecv(t, done, "request at Stop")
			if immediate {
				accIs(t, "request at Immediate Stop", o.err, engine.ErrStopped)
			} else if o.err != nil || string(o.reply) != "ok" {
				t.Errorf("request at graceful Stop: %q %v", o.reply, o.err)
			}
		})
	}
}

// agent.go BatchReceiver: "Requests are not batched: a request reaches the
// agent alone, through Receive, so that Context.Reply knows which request
// it answers." Order between plain messages and requests is kept.
func TestAcceptanceRequestBatchReceiverGetsRequestsAlone(t *testing.T) {
	e := accNew(t, engine.WithLoops(2))
	var log accLog
	entered := make(chan struct{}, 1)
	gate := make(chan struct{})
	accRegister(t, e, "b", func() engine.Agent { return &accBatcher{log: &log, entered: entered, gate: gate} }, engine.Batch(8))
	id := engine.AgentID{Type: "b", Key: "1"}
	r := accSpawn(t, e, id)
	accStart(t, e)
	if err := r.Send([]byte("hold")); err != nil {
		t.Fatal(err)
	}
	accRecv(t, entered, "hold")
	for _, p := range []string{"a", "b"} {
		if err := r.Send([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan reqOutcome, 1)
	go func() {
		rep, err := e.RequestID(accCtx(t), id, []byte("q"))
		done <- reqOutcome{rep, err}
	}()
	// Send the last two only once the request waits in the (held) loop's
	// inbox behind a and b.
	deadline := time.Now().Add(accTimeout)
	for inboxLen(e) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached the inbox")
		}
		runtime.Gosched()
	}
	for _, p := range []string{"c", "d"} {
		if err := r.Send([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	close(gate)
	if o := accRecv(t, done, "request"); o.err != nil || string(o.reply) != "Q" {
		t.Errorf("request to a batch receiver: %q %v", o.reply, o.err)
	}
	accIdle(t, e)
	want := []string{"batch [hold]", "batch [a b]", "receive q", "batch [c d]"}
	if got := log.get(); !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
}

type accBatcher struct {
	log     *accLog
	entered chan struct{}
	gate    chan struct{}
}

func (b *accBatcher) Receive(c *engine.Context, m engine.Message) {
	b.log.add("receive " + string(m.Payload))
	if m.IsRequest() {
		_ = c.Reply([]byte("Q"))
	}
}

func (b *accBatcher) ReceiveBatch(c *engine.Context, msgs []engine.Message) {
	s := "batch ["
	for i, m := range msgs {
		if m.IsRequest() {
			s += "REQUEST "
		}
		if i > 0 {
			s += " "
		}
		s += string(m.Payload)
	}
	b.log.add(s + "]")
	if len(msgs) == 1 && string(msgs[0].Payload) == "hold" {
		b.entered <- struct{}{}
		accGateWait(b.gate)
	}
}

func inboxLen(e *engine.Engine) int {
	n := 0
	for _, l := range e.Stats().Loops {
		n += l.Inbox
	}
	return n
}

// Engine.Request: "Every pending request is answered when the engine
// stops", the request inside a handler that never returns included, with
// a context that never ends, for requesters beyond the engine's table of
// requests in flight as well as within it.
func TestAcceptanceRequestAnsweredByStopFromAStuckHandler(t *testing.T) {
	const waiters = 300 // more than the engine's table holds
	e := accNew(t, engine.WithLoops(1))
	gate := make(chan struct{})
	defer close(gate)
	held := make(chan struct{}, 1)
	accRegister(t, e, "stuck", accRecvOnly(func(c *engine.Context, m engine.Message) {
		if m.IsRequest() && string(m.Payload) == "hold" {
			held <- struct{}{}
			// Held past the test's own wait for the answers below (the
			// bound only keeps a broken engine from holding the loop for
			// ever): the answers must come while the handler is stuck.
			select {
			case <-gate:
			case <-time.After(3 * accTimeout):
			}
		}
	}))
	accStart(t, e)
	id := engine.AgentID{Type: "stuck", Key: "1"}
	if _, err := e.Spawn(id); err != nil {
		t.Fatal(err)
	}
	// The loop is parked when the held request arrives: the request must
	// wake it rather than, say, have its requester run the handler.
	if err := e.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, waiters+1)
	go func() {
		_, err := e.RequestID(context.Background(), id, []byte("hold"))
		errs <- err
	}()
	accRecv(t, held, "the held request")
	for i := 0; i < waiters; i++ {
		go func() {
			_, err := e.RequestID(context.Background(), id, []byte("queued"))
			errs <- err
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var se *engine.StopError
	if err := e.Stop(ctx); !errors.As(err, &se) {
		t.Fatalf("Stop beside a stuck handler = %v, want a *StopError", err)
	}
	for i := 0; i < waiters+1; i++ {
		err := accRecv(t, errs, "a request's answer")
		if !errors.Is(err, engine.ErrStopped) {
			t.Fatalf("request %d: %v, want ErrStopped", i, err)
		}
	}
}
