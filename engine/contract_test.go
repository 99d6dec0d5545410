package engine_test

// Regression tests for documented promises that once broke, each seen
// from outside through the public API.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/enginetest"
	"github.com/agentloop/agentloop/lifecycle"
	"github.com/agentloop/agentloop/pool"
)

// ctWait bounds every wait of these tests: only a hang reaches it.
const ctWait = 10 * time.Second

// ctAgent adapts a function to engine.Agent.
type ctAgent func(c *engine.Context, m engine.Message)

func (f ctAgent) Receive(c *engine.Context, m engine.Message) { f(c, m) }

// ctEngine returns a new engine, stopped when the test ends.
func ctEngine(t *testing.T, opts ...engine.Option) *engine.Engine {
	t.Helper()
	e, err := engine.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ctWait)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return e
}

func ctIdle(t *testing.T, e *engine.Engine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ctWait)
	defer cancel()
	if err := e.WaitIdle(ctx); err != nil {
		t.Fatalf("WaitIdle: %v", err)
	}
}

func ctRecv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(ctWait):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// ctRunning is a plugin that reports each agent reaching Running.
type ctRunning chan engine.AgentID

func (s ctRunning) OnTransition(id engine.AgentID, _, to lifecycle.State) {
	if to == lifecycle.Running {
		s <- id
	}
}

// Every request gets its own answer, exactly once: a handler that answers
// twice, or takes a ReplyHandle after answering, is refused with
// ErrAlreadyReplied, and its second payload never reaches a later request
// (the outside request objects are recycled).
func TestContractReplyExactlyOnce(t *testing.T) {
	e := ctEngine(t, engine.WithLoops(2))
	var faults atomic.Int64
	var firstFault atomic.Value
	fault := func(s string) {
		if faults.Add(1) == 1 {
			firstFault.Store(s)
		}
	}
	if err := e.Register("dup", func() engine.Agent {
		return ctAgent(func(c *engine.Context, m engine.Message) {
			if err := c.Reply(m.Payload); err != nil {
				fault("first reply: " + err.Error())
			}
			if err := c.Reply([]byte("stale")); !errors.Is(err, engine.ErrAlreadyReplied) {
				fault(fmt.Sprintf("second reply: %v", err))
			}
			if _, err := c.ReplyLater(); !errors.Is(err, engine.ErrAlreadyReplied) {
				fault(fmt.Sprintf("ReplyLater after Reply: %v", err))
			}
		})
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	const workers, each = 4, 500
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := engine.AgentID{Type: "dup", Key: strconv.Itoa(w % 2)}
			for i := range each {
				want := fmt.Sprintf("w%d-%d", w, i)
				got, err := e.RequestID(context.Background(), id, []byte(want))
				if err != nil || string(got) != want {
					errc <- fmt.Errorf("request %s answered %q, %v", want, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if n := faults.Load(); n > 0 {
		t.Errorf("%d faults inside the handler, the first: %v", n, firstFault.Load())
	}
}

// Outside senders to a full Block mailbox give up when their ctx ends:
// Engine.Request (a deadline is ErrTimeout), Ref.SendContext and
// Engine.SendContext; what they gave up on is not delivered and holds no
// place in the mailbox.
func TestContractBlockedSendHonoursCtx(t *testing.T) {
	e := ctEngine(t, engine.WithLoops(1))
	running := make(ctRunning, 4)
	e.Use(running)
	got := make(chan string, 8)
	if err := e.Register("blk", func() engine.Agent {
		return ctAgent(func(c *engine.Context, m engine.Message) { got <- string(m.Payload) })
	}, engine.Mailbox(1, engine.Block)); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	id := engine.AgentID{Type: "blk", Key: "1"}
	ref, err := e.Spawn(id)
	if err != nil {
		t.Fatal(err)
	}
	ctRecv(t, running, "the agent to run")
	if err := e.Pause(id); err != nil {
		t.Fatal(err)
	}
	if err := ref.Send([]byte("first")); err != nil { // fills the mailbox
		t.Fatal(err)
	}

	short := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 20*time.Millisecond)
	}
	results := make(chan error, 1)
	calls := []struct {
		name string
		call func(ctx context.Context) error
		want []error
	}{
		{"Engine.Request", func(ctx context.Context) error {
			_, err := e.RequestID(ctx, id, []byte("request"))
			return err
		}, []error{engine.ErrTimeout, context.DeadlineExceeded}},
		{"Ref.SendContext", func(ctx context.Context) error { return ref.SendContext(ctx, []byte("ref")) },
			[]error{engine.ErrMailboxFull, context.DeadlineExceeded}},
		{"Engine.SendContext", func(ctx context.Context) error { return e.SendIDContext(ctx, id, []byte("id")) },
			[]error{engine.ErrMailboxFull, context.DeadlineExceeded}},
	}
	for _, c := range calls {
		ctx, cancel := short()
		go func() { results <- c.call(ctx) }()
		err := ctRecv(t, results, c.name+" to give up at its deadline")
		cancel()
		for _, w := range c.want {
			if !errors.Is(err, w) {
				t.Errorf("%s: %v, want it to match %v", c.name, err, w)
			}
		}
	}
	// A ctx that ended before the call is honoured as well.
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	cancel()
	if _, err := e.RequestID(expired, id, nil); !errors.Is(err, engine.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Request with an expired ctx: %v", err)
	}

	if err := e.Resume(id); err != nil {
		t.Fatal(err)
	}
	if err := ref.Send([]byte("last")); err != nil { // waits for the place "first" frees
		t.Fatal(err)
	}
	ctIdle(t, e)
	close(got)
	var seen []string
	for s := range got {
		seen = append(seen, s)
	}
	if fmt.Sprint(seen) != "[first last]" {
		t.Errorf("delivered %q, want only [first last]", seen)
	}
}

// Context.Terminate takes effect after the handler returns: OnTerminate
// never runs inside the handler that called it, the handler may go on
// using its Context, and new sends to the agent are refused from the call
// on.
func TestContractTerminateAfterHandler(t *testing.T) {
	e := ctEngine(t, engine.WithLoops(1))
	type report struct {
		hookRanInside bool
		selfSend      error
		state         lifecycle.State
	}
	reports := make(chan report, 1)
	hooks := make(chan struct{}, 4)
	if err := e.Register("quitter", func() engine.Agent {
		q := &ctQuitter{hooks: hooks}
		q.receive = func(c *engine.Context, m engine.Message) {
			c.Terminate()
			reports <- report{
				hookRanInside: q.terminated,
				selfSend:      c.Send(c.Self(), nil),
				state:         c.Self().State(),
			}
		}
		return q
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	if err := e.SendID(engine.AgentID{Type: "quitter", Key: "1"}, nil); err != nil {
		t.Fatal(err)
	}
	r := ctRecv(t, reports, "the handler")
	ctRecv(t, hooks, "OnTerminate")
	if r.hookRanInside {
		t.Error("OnTerminate ran inside the handler that called Terminate")
	}
	if r.state == lifecycle.Terminated {
		t.Error("the agent was Terminated while its handler still ran")
	}
	if !errors.Is(r.selfSend, engine.ErrTerminated) {
		t.Errorf("send after Terminate: %v, want ErrTerminated", r.selfSend)
	}
	ctIdle(t, e)
	if n := len(hooks); n != 0 {
		t.Errorf("OnTerminate ran %d more times", n)
	}
}

type ctQuitter struct {
	receive    func(c *engine.Context, m engine.Message)
	terminated bool
	hooks      chan<- struct{}
}

func (q *ctQuitter) Receive(c *engine.Context, m engine.Message) { q.receive(c, m) }
func (q *ctQuitter) OnTerminate(*engine.Context) {
	q.terminated = true
	q.hooks <- struct{}{}
}

// A pooled payload goes back to its pool after its last delivery even when
// the handler panics on it.
func TestContractPanicReleasesBuffer(t *testing.T) {
	e := ctEngine(t, engine.WithLoops(2))
	if err := e.Register("crash", func() engine.Agent {
		return ctAgent(func(*engine.Context, engine.Message) { panic("boom") })
	}, engine.Restarts(1000, time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := e.Register("calm", func() engine.Agent {
		return ctAgent(func(*engine.Context, engine.Message) {})
	}); err != nil {
		t.Fatal(err)
	}
	for i, typ := range []string{"crash", "calm"} {
		if _, err := e.Spawn(engine.AgentID{Type: typ, Key: "1"}, engine.OnLoop(i)); err != nil {
			t.Fatal(err)
		}
		if err := e.SubscribeAgent("t", engine.AgentID{Type: typ, Key: "1"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	var bufs pool.Buffers
	const n = 50
	for range n {
		b := bufs.Get(64)
		if err := e.PublishBuffer("t", b); err != nil {
			t.Fatal(err)
		}
	}
	ctIdle(t, e)
	if st := bufs.Stats(); st.Live != 0 || st.Returns != n {
		t.Errorf("after %d publishes to a panicking and a calm agent: %d buffers live, %d returned", n, st.Live, st.Returns)
	}
	if p := e.Stats().Panics; p != n {
		t.Errorf("%d panics, want %d", p, n)
	}
}

// The harness delivers every tick of an Every timer, however the loops
// and the race detector schedule the engine's goroutines.
func TestContractHarnessFiresEveryTick(t *testing.T) {
	h := enginetest.New(t, engine.WithLoops(2))
	const agents = 4
	var ticks [agents]atomic.Int64
	if err := h.Engine.Register("tick", func() engine.Agent {
		return ctAgent(func(c *engine.Context, m engine.Message) {
			if string(m.Payload) == "start" {
				if _, err := c.Every(7*time.Millisecond, []byte("tick")); err != nil {
					panic(err)
				}
				return
			}
			k, _ := strconv.Atoi(c.ID().Key)
			ticks[k].Add(1)
		})
	}); err != nil {
		t.Fatal(err)
	}
	h.Start()
	for k := range agents {
		if err := h.Engine.SendID(engine.AgentID{Type: "tick", Key: strconv.Itoa(k)}, []byte("start")); err != nil {
			t.Fatal(err)
		}
	}
	h.Settle()
	h.Advance(7 * time.Second)
	for k := range agents {
		if n := ticks[k].Load(); n != 1000 {
			t.Errorf("agent %d: %d ticks of Every(7ms) in 7s, want 1000", k, n)
		}
	}
}

// ctDeadLetters records the reason of every dead letter.
type ctDeadLetters struct {
	mu      sync.Mutex
	reasons []error
}

func (d *ctDeadLetters) OnDeadLetter(dl engine.DeadLetter) {
	d.mu.Lock()
	d.reasons = append(d.reasons, dl.Reason)
	d.mu.Unlock()
}

func (d *ctDeadLetters) all() []error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]error(nil), d.reasons...)
}

type ctFailingInit struct{ err error }

func (f *ctFailingInit) Init(*engine.Context) error              { return f.err }
func (f *ctFailingInit) Receive(*engine.Context, engine.Message) {}

var errInitBoom = errors.New("no sensor attached")

// The messages of an agent whose Init failed are dead-lettered with a
// reason that matches ErrInitFailed and wraps Init's error, also those
// that reach it after Init ran.
func TestContractInitFailureDeadLetters(t *testing.T) {
	e := ctEngine(t, engine.WithLoops(1))
	dl := &ctDeadLetters{}
	e.Use(dl)
	if err := e.Register("bad", func() engine.Agent { return &ctFailingInit{errInitBoom} }); err != nil {
		t.Fatal(err)
	}
	id := engine.AgentID{Type: "bad", Key: "1"}
	if _, err := e.Spawn(id); err != nil {
		t.Fatal(err)
	}
	const n = 3
	for range n { // queued behind Init, which runs at Start
		if err := e.SendID(id, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	ctIdle(t, e)
	reasons := dl.all()
	if len(reasons) != n {
		t.Fatalf("%d dead letters, want %d", len(reasons), n)
	}
	for _, r := range reasons {
		if !errors.Is(r, engine.ErrInitFailed) || !errors.Is(r, errInitBoom) {
			t.Errorf("dead letter reason %v: want ErrInitFailed wrapping the Init error", r)
		}
	}
}

// ctTerminations records what TerminationObservers see.
type ctTerminations chan error

func (ts ctTerminations) OnTerminated(_ engine.AgentID, reason error) { ts <- reason }

// An Init failure is reported with its cause to TerminationObservers.
func TestContractInitFailureReported(t *testing.T) {
	e := ctEngine(t, engine.WithLoops(1))
	ts := make(ctTerminations, 4)
	e.Use(ts)
	if err := e.Register("bad", func() engine.Agent { return &ctFailingInit{errInitBoom} }); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Spawn(engine.AgentID{Type: "bad", Key: "1"}); err != nil {
		t.Fatal(err)
	}
	r := ctRecv(t, ts, "the termination")
	if !errors.Is(r, engine.ErrInitFailed) || !errors.Is(r, errInitBoom) {
		t.Errorf("termination reason %v: want ErrInitFailed wrapping the Init error", r)
	}
}

// Sends from a handler to a small DropNewest mailbox on another loop take
// memory proportional to the bounds (mailbox, inbox), not to the number of
// messages sent, and every message is delivered or dead-lettered.
func TestContractCrossLoopSendBounded(t *testing.T) {
	e := ctEngine(t, engine.WithLoops(2))
	var delivered atomic.Int64
	if err := e.Register("sink", func() engine.Agent {
		return ctAgent(func(*engine.Context, engine.Message) { delivered.Add(1) })
	}, engine.Mailbox(64, engine.DropNewest)); err != nil {
		t.Fatal(err)
	}
	sink, err := e.Spawn(engine.AgentID{Type: "sink", Key: "1"}, engine.OnLoop(1))
	if err != nil {
		t.Fatal(err)
	}
	const n = 300_000
	var sendErrs atomic.Int64
	if err := e.Register("flood", func() engine.Agent {
		return ctAgent(func(c *engine.Context, m engine.Message) {
			for range n {
				if c.Send(sink, m.Payload) != nil {
					sendErrs.Add(1)
				}
			}
		})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Spawn(engine.AgentID{Type: "flood", Key: "1"}, engine.OnLoop(0)); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	ctIdle(t, e)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := e.SendID(engine.AgentID{Type: "flood", Key: "1"}, make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	ctIdle(t, e)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	st := e.Stats()
	t.Logf("%d sent: %d delivered, %d dead letters, %d refused; %d KiB allocated", n, delivered.Load(), st.DeadLetters, sendErrs.Load(), alloc>>10)
	if got := delivered.Load() + int64(st.DeadLetters) + sendErrs.Load(); got != n {
		t.Errorf("delivered + dead-lettered + refused = %d, want %d", got, n)
	}
	// 300 000 envelopes queued would take more than 30 MiB.
	if alloc > 16<<20 {
		t.Errorf("%d MiB allocated while sending: the sender's queue grew with the messages", alloc>>20)
	}
}

// A Stop whose ctx ends returns then, even while another Stop is waiting
// for a stuck handler; a Stop called on a loop returns ErrStopInLoop at
// once.
func TestContractStopOwnDeadline(t *testing.T) {
	e, err := engine.New(engine.WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	if err := e.Register("stuck", func() engine.Agent {
		return ctAgent(func(*engine.Context, engine.Message) {
			close(entered)
			<-release
		})
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	if err := e.SendID(engine.AgentID{Type: "stuck", Key: "1"}, nil); err != nil {
		t.Fatal(err)
	}
	ctRecv(t, entered, "the handler")
	first := make(chan error, 1)
	go func() { first <- e.Stop(context.Background()) }()
	// Wait until the first Stop has begun: Register is refused from then on.
	deadline := time.Now().Add(ctWait)
	for i := 0; !errors.Is(e.Register("probe"+strconv.Itoa(i), func() engine.Agent { return nil }), engine.ErrStopped); i++ {
		if time.Now().After(deadline) {
			t.Fatal("the first Stop never began")
		}
		runtime.Gosched()
	}
	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() { second <- e.Stop(ctx) }()
	cancel()
	err = ctRecv(t, second, "the second Stop to return at its ctx's end")
	var se *engine.StopError
	if !errors.As(err, &se) || !errors.Is(err, context.Canceled) {
		t.Errorf("second Stop: %v, want a *StopError wrapping context.Canceled", err)
	}
	close(release)
	if err := ctRecv(t, first, "the first Stop"); err != nil {
		t.Errorf("first Stop: %v", err)
	}
}

func TestContractStopInHandler(t *testing.T) {
	e := ctEngine(t, engine.WithLoops(1))
	errc := make(chan error, 2)
	if err := e.Register("stopper", func() engine.Agent {
		return ctAgent(func(c *engine.Context, m engine.Message) {
			errc <- c.Engine().Stop(context.Background())
			if err := c.Go(func(context.Context) ([]byte, error) { return nil, nil }, func(c *engine.Context, _ []byte, _ error) {
				errc <- c.Engine().Stop(context.Background())
			}); err != nil {
				errc <- err
			}
		})
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	if err := e.SendID(engine.AgentID{Type: "stopper", Key: "1"}, nil); err != nil {
		t.Fatal(err)
	}
	for _, where := range []string{"a handler", "a Go callback"} {
		if err := ctRecv(t, errc, "Stop in "+where); !errors.Is(err, engine.ErrStopInLoop) {
			t.Errorf("Stop in %s: %v, want ErrStopInLoop", where, err)
		}
	}
	if err := e.SendID(engine.AgentID{Type: "stopper", Key: "2"}, nil); errors.Is(err, engine.ErrStopped) {
		t.Error("a refused Stop stopped the engine")
	}
	ctRecv(t, errc, "the second agent")
	ctRecv(t, errc, "the second agent's callback")
}

// WaitIdle does not return while Context.Go work runs or its result is on
// its way: the engine is idle only after the callback has run.
func TestContractWaitIdleWaitsForGo(t *testing.T) {
	e := ctEngine(t, engine.WithLoops(1))
	started, release := make(chan struct{}), make(chan struct{})
	var callbackRan atomic.Bool
	if err := e.Register("worker", func() engine.Agent {
		return ctAgent(func(c *engine.Context, m engine.Message) {
			err := c.Go(func(context.Context) ([]byte, error) {
				close(started)
				<-release
				return nil, nil
			}, func(*engine.Context, []byte, error) { callbackRan.Store(true) })
			if err != nil {
				panic(err)
			}
		})
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	if err := e.SendID(engine.AgentID{Type: "worker", Key: "1"}, nil); err != nil {
		t.Fatal(err)
	}
	ctRecv(t, started, "the work to start")
	// While the work blocks the engine is not idle: WaitIdle runs to its
	// deadline. (Its length only bounds the test; any length would do.)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err := e.WaitIdle(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitIdle while Go work runs: %v, want the deadline", err)
	}
	close(release)
	ctIdle(t, e)
	if !callbackRan.Load() {
		t.Error("WaitIdle returned before the Go callback ran")
	}
}
