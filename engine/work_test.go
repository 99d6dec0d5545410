package engine

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentloop/agentloop/pool"
)

// goAgent starts blocking work on each message and records the results on
// its loop.
type goAgent struct {
	work    func(m Message) func(context.Context) ([]byte, error)
	results chan string
	errs    chan error
	goroute chan uint64 // the goroutine then ran on
	recvG   chan uint64 // the goroutine Receive ran on: the agent's loop
	submit  chan error  // Go's own result
}

func (g *goAgent) Receive(c *Context, m Message) {
	if g.recvG != nil {
		g.recvG <- goid()
	}
	err := c.Go(g.work(m), func(c *Context, res []byte, err error) {
		if g.goroute != nil {
			g.goroute <- goid()
		}
		if err != nil {
			g.errs <- err
			return
		}
		g.results <- string(res) + "@" + c.ID().Key
	})
	if g.submit != nil {
		g.submit <- err
	}
}

func TestContextGo(t *testing.T) {
	e := startedEngine(t, WithLoops(1))
	g := &goAgent{
		work: func(m Message) func(context.Context) ([]byte, error) {
			return func(context.Context) ([]byte, error) {
				if string(m.Payload) == "panic" {
					panic("boom")
				}
				time.Sleep(time.Millisecond) // blocking work, off the loop
				return append([]byte("done:"), m.Payload...), nil
			}
		},
		results: make(chan string, 4), errs: make(chan error, 4), goroute: make(chan uint64, 4),
		recvG: make(chan uint64, 4),
	}
	mustRegister(t, e, "g", func() Agent { return g })
	r := mustSpawn(t, e, AgentID{Type: "g", Key: "1"})
	_ = r.Send([]byte("x"))
	if got := wait(t, g.results, "the result"); got != "done:x@1" {
		t.Fatalf("then got %q", got)
	}
	if want, got := wait(t, g.recvG, "Receive's goroutine"), wait(t, g.goroute, "then's goroutine"); got != want {
		t.Fatalf("then ran on goroutine %d, not the loop's %d (where Receive ran)", got, want)
	}
	_ = r.Send([]byte("panic"))
	wait(t, g.recvG, "Receive's goroutine")
	err := wait(t, g.errs, "the panic")
	var pe *pool.PanicError
	if !errors.Is(err, pool.ErrPanic) || !errors.As(err, &pe) || pe.Value != "boom" {
		t.Fatalf("then got %v, want a *pool.PanicError for boom", err)
	}
}

// A handler that calls Go while the pool and its queue are full gets
// ErrOverloaded at once: the loop never waits for a worker.
func TestContextGoOverloaded(t *testing.T) {
	e := startedEngine(t, WithLoops(1), WithWorkers(2, 1))
	release := make(chan struct{})
	var started atomic.Int32
	g := &goAgent{
		work: func(Message) func(context.Context) ([]byte, error) {
			return func(context.Context) ([]byte, error) { started.Add(1); <-release; return []byte("ok"), nil }
		},
		results: make(chan string, 8), errs: make(chan error, 8), submit: make(chan error, 8),
	}
	mustRegister(t, e, "g", func() Agent { return g })
	r := mustSpawn(t, e, AgentID{Type: "g", Key: "1"})
	for range 3 { // two run, one waits in the queue
		_ = r.Send(nil)
		if err := wait(t, g.submit, "Go"); err != nil {
			t.Fatalf("Go under capacity: %v", err)
		}
	}
	_ = r.Send(nil)
	if err := wait(t, g.submit, "Go"); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("Go over capacity: %v, want ErrOverloaded", err)
	}
	// The loop is not blocked: another agent of the loop still runs.
	done := make(chan struct{})
	mustRegister(t, e, "other", recvAgent(func(*Context, Message) { close(done) }))
	if err := e.SendID(AgentID{Type: "other", Key: "1"}, nil); err != nil {
		t.Fatal(err)
	}
	wait(t, done, "the loop to run while the pool is saturated")
	close(release)
	for range 3 {
		if got := wait(t, g.results, "a result"); got != "ok@1" {
			t.Fatalf("result %q", got)
		}
	}
}

// Stop waits for running work and delivers its result before the agents
// terminate; after Stop has begun, Go is refused.
func TestStopWaitsForWork(t *testing.T) {
	e := startedEngine(t, WithLoops(1))
	release := make(chan struct{})
	running := make(chan struct{})
	g := &goAgent{
		work: func(Message) func(context.Context) ([]byte, error) {
			return func(context.Context) ([]byte, error) { close(running); <-release; return []byte("late"), nil }
		},
		results: make(chan string, 1), errs: make(chan error, 1),
	}
	mustRegister(t, e, "g", func() Agent { return g })
	r := mustSpawn(t, e, AgentID{Type: "g", Key: "1"})
	_ = r.Send(nil)
	wait(t, running, "the work to start")
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		stopped <- e.Stop(ctx)
	}()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while work was running", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	if err := wait(t, stopped, "Stop"); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-g.results:
		if got != "late@1" {
			t.Fatalf("result %q", got)
		}
	default:
		t.Fatal("the result of work that finished during Stop was not delivered")
	}
}

// Stop's deadline bounds the wait for work that never ends.
func TestStopDeadlineWithStuckWork(t *testing.T) {
	e := startedEngine(t, WithLoops(1))
	release := make(chan struct{})
	defer close(release)
	running := make(chan struct{})
	g := &goAgent{
		work: func(Message) func(context.Context) ([]byte, error) {
			return func(context.Context) ([]byte, error) { close(running); <-release; return nil, nil }
		},
		results: make(chan string, 1), errs: make(chan error, 1),
	}
	mustRegister(t, e, "g", func() Agent { return g })
	r := mustSpawn(t, e, AgentID{Type: "g", Key: "1"})
	_ = r.Send(nil)
	wait(t, running, "the work to start")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := e.Stop(ctx)
	var se *StopError
	if !errors.As(err, &se) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want a *StopError for the deadline", err)
	}
}

func TestWithWorkersRange(t *testing.T) {
	for _, c := range [][2]int{{0, 0}, {-1, 1}, {1, -1}} {
		if _, err := New(WithWorkers(c[0], c[1])); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("WithWorkers(%d, %d): %v", c[0], c[1], err)
		}
	}
}
