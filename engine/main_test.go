package engine

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/agentloop/agentloop/lifecycle"
)

func TestMain(m *testing.M) {
	// IgnoreCurrent: the goroutines that exist before any test are those
	// of ants' package-level default pool, started by its init.
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

// waitTimeout bounds every wait in these tests. It is generous: it only
// turns a hang (a lost message, a lost wake-up) into a failure.
const waitTimeout = 10 * time.Second

// newEngine returns a new engine and makes sure it is stopped (immediately,
// with a deadline) when the test ends, even if the test fails halfway.
func newEngine(t testing.TB, opts ...Option) *Engine {
	t.Helper()
	e, err := New(opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		_ = e.Stop(ctx, Immediate())
	})
	return e
}

// startedEngine is newEngine plus Start.
func startedEngine(t testing.TB, opts ...Option) *Engine {
	t.Helper()
	e := newEngine(t, opts...)
	if err := e.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return e
}

// mustRegister registers a type or fails the test.
func mustRegister(t testing.TB, e *Engine, name string, f func() Agent, opts ...RegisterOption) {
	t.Helper()
	if err := e.Register(name, f, opts...); err != nil {
		t.Fatalf("Register(%q): %v", name, err)
	}
}

// mustSpawn spawns an agent or fails the test.
func mustSpawn(t testing.TB, e *Engine, id AgentID, opts ...SpawnOption) Ref {
	t.Helper()
	r, err := e.Spawn(id, opts...)
	if err != nil {
		t.Fatalf("Spawn(%v): %v", id, err)
	}
	return r
}

// stop stops e gracefully and fails the test on an error.
func stop(t testing.TB, e *Engine, opts ...StopOption) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := e.Stop(ctx, opts...); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

// wait receives from ch or fails the test after waitTimeout.
func wait[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// eventually polls cond until it holds or timeout passes. It is only for
// observing state that has no signal of its own, such as State() after
// Pause or Lookup after termination; never a substitute for a signal.
func eventually(t testing.TB, what string, cond func() bool, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for i := 0; !cond(); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		if i < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(100 * time.Microsecond)
		}
	}
}

// waitState waits until the agent r refers to is in state s.
func waitState(t testing.TB, r Ref, s lifecycle.State) {
	t.Helper()
	eventually(t, r.ID().String()+" is "+s.String(), func() bool { return r.State() == s }, waitTimeout)
}

// pauseRunning waits for r's agent to run and pauses it.
func pauseRunning(t testing.TB, e *Engine, r Ref) {
	t.Helper()
	waitState(t, r, lifecycle.Running)
	if err := e.Pause(r.ID()); err != nil {
		t.Fatalf("Pause(%v): %v", r.ID(), err)
	}
}

// goid returns the current goroutine's id, so tests can check which
// goroutine ran a hook.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	n, _ := strconv.ParseUint(string(b), 10, 64)
	return n
}

// fn is an agent made of optional functions; a nil function is a no-op.
// Every hook interface is implemented, so the engine always calls them.
type fn struct {
	recv      func(c *Context, m Message)
	init      func(c *Context) error
	onPause   func(c *Context)
	onResume  func(c *Context)
	terminate func(c *Context)
}

func (a *fn) Receive(c *Context, m Message) {
	if a.recv != nil {
		a.recv(c, m)
	}
}

func (a *fn) Init(c *Context) error {
	if a.init != nil {
		return a.init(c)
	}
	return nil
}

func (a *fn) OnPause(c *Context) {
	if a.onPause != nil {
		a.onPause(c)
	}
}

func (a *fn) OnResume(c *Context) {
	if a.onResume != nil {
		a.onResume(c)
	}
}

func (a *fn) OnTerminate(c *Context) {
	if a.terminate != nil {
		a.terminate(c)
	}
}

// recvAgent returns a factory of agents that only receive.
func recvAgent(recv func(c *Context, m Message)) func() Agent {
	return func() Agent { return &fn{recv: recv} }
}

// sink counts and records what agents receive, from any loop.
type sink struct {
	mu   sync.Mutex
	msgs map[AgentID][]string
	n    atomic.Int64
}

func newSink() *sink { return &sink{msgs: map[AgentID][]string{}} }

func (s *sink) Receive(c *Context, m Message) {
	s.mu.Lock()
	s.msgs[c.ID()] = append(s.msgs[c.ID()], string(m.Payload))
	s.mu.Unlock()
	s.n.Add(1)
}

func (s *sink) got(id AgentID) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs[id]...)
}

// recorder is a plugin that records transitions, dead letters and panics.
type recorder struct {
	mu          sync.Mutex
	transitions map[AgentID][][2]lifecycle.State
	dead        []DeadLetter
	panics      []recordedPanic
	deadN       atomic.Int64
	deadCh      chan DeadLetter // optional: every dead letter is also sent here
	terminated  chan AgentID    // optional: every move to Terminated is sent here
}

type recordedPanic struct {
	id    AgentID
	value any
	stack []byte
}

func newRecorder() *recorder {
	return &recorder{transitions: map[AgentID][][2]lifecycle.State{}}
}

func (r *recorder) OnTransition(id AgentID, from, to lifecycle.State) {
	r.mu.Lock()
	r.transitions[id] = append(r.transitions[id], [2]lifecycle.State{from, to})
	r.mu.Unlock()
	if to == lifecycle.Terminated && r.terminated != nil {
		r.terminated <- id
	}
}

func (r *recorder) OnDeadLetter(d DeadLetter) {
	r.mu.Lock()
	r.dead = append(r.dead, d)
	r.mu.Unlock()
	r.deadN.Add(1)
	if r.deadCh != nil {
		r.deadCh <- d
	}
}

func (r *recorder) OnPanic(id AgentID, value any, stack []byte) {
	r.mu.Lock()
	r.panics = append(r.panics, recordedPanic{id, value, stack})
	r.mu.Unlock()
}

func (r *recorder) transitionsOf(id AgentID) [][2]lifecycle.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][2]lifecycle.State(nil), r.transitions[id]...)
}

func (r *recorder) deadLetters() []DeadLetter {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]DeadLetter(nil), r.dead...)
}

func (r *recorder) panicked() []recordedPanic {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedPanic(nil), r.panics...)
}

// countTo counts transitions of id into state to.
func (r *recorder) countTo(id AgentID, to lifecycle.State) int {
	n := 0
	for _, tr := range r.transitionsOf(id) {
		if tr[1] == to {
			n++
		}
	}
	return n
}

// payloads returns the payloads of dead letters to id as strings.
func payloads(ds []DeadLetter, id AgentID) []string {
	var out []string
	for _, d := range ds {
		if d.To == id {
			out = append(out, string(d.Message.Payload))
		}
	}
	return out
}

// checkErr checks that err matches target with errors.Is and that its
// message names every one of the offending values.
func checkErr(t testing.TB, what string, err, target error, mentions ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: got nil error, want %v", what, target)
		return
	}
	if !errors.Is(err, target) {
		t.Errorf("%s: error %q does not match %v", what, err, target)
	}
	for _, s := range mentions {
		if !bytes.Contains([]byte(err.Error()), []byte(s)) {
			t.Errorf("%s: error %q does not mention %q", what, err, s)
		}
	}
}

// seq encodes a message number as a payload.
func seq(n int) []byte { return strconv.AppendInt(nil, int64(n), 10) }

// strs turns ints into their decimal strings.
func strs(ns ...int) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = strconv.Itoa(n)
	}
	return out
}

// rangeStrs returns the decimal strings of lo..hi-1.
func rangeStrs(lo, hi int) []string {
	var out []string
	for i := lo; i < hi; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

// settleLoop returns once loop idx has moved everything posted to it from
// this goroutine before the call into mailboxes: it sends a probe to a
// helper agent on that loop and waits for it. Inbox order per producer is
// FIFO, so the probe is dispatched after the earlier posts.
func settleLoop(t testing.TB, e *Engine, idx int) {
	t.Helper()
	id := AgentID{Type: probeType, Key: strconv.Itoa(idx)}
	r, err := e.Lookup(id)
	if err != nil {
		if err := registerProbe(e); err != nil {
			t.Fatalf("register probe: %v", err)
		}
		r, err = e.Spawn(id, OnLoop(idx))
		if err != nil && !errors.Is(err, ErrAgentExists) {
			t.Fatalf("spawn probe: %v", err)
		}
	}
	done := make(chan struct{})
	probes.Store(r, done)
	if err := r.Send(nil); err != nil {
		t.Fatalf("probe send: %v", err)
	}
	wait(t, done, "probe on loop "+strconv.Itoa(idx))
}

const probeType = "test-probe"

// probes maps a probe agent's Ref to the channel its next message closes.
var probes sync.Map

func registerProbe(e *Engine) error {
	err := e.Register(probeType, recvAgent(func(c *Context, _ Message) {
		if ch, ok := probes.LoadAndDelete(c.Self()); ok {
			close(ch.(chan struct{}))
		}
	}))
	if errors.Is(err, ErrDuplicateType) {
		return nil
	}
	return err
}

// waitBlocked waits until some goroutine is blocked inside fn, a function
// named as stack traces name it ("engine.Ref.Send"), waiting on a channel
// or a condition; it fails the test if done delivers first, that is if the
// call returned instead of waiting. No API shows a caller waiting inside
// the engine (a sender held back by a full Block mailbox); the runtime's
// goroutine dump does, without reading the engine's internals.
func waitBlocked(t testing.TB, fn string, done <-chan error) {
	t.Helper()
	eventually(t, "a goroutine waits in "+fn, func() bool {
		select {
		case err := <-done:
			t.Fatalf("%s returned %v instead of waiting", fn, err)
		default:
		}
		return blockedIn(fn)
	}, waitTimeout)
}

// blockedIn reports whether some goroutine with fn on its stack is waiting
// on a channel, a select or a sync.Cond (not running, runnable, asleep or
// queued for a mutex).
func blockedIn(fn string) bool {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, fn+"(") {
			continue
		}
		// The header reads "goroutine 7 [select]:" or "[chan receive, 2 minutes]:".
		head, _, _ := strings.Cut(g, "\n")
		_, state, _ := strings.Cut(head, " [")
		state, _, _ = strings.Cut(state, "]")
		state, _, _ = strings.Cut(state, ",")
		switch state {
		case "select", "chan receive", "chan send", "sync.Cond.Wait":
			return true
		}
	}
	return false
}

// engineGoroutines returns the stacks of goroutines running a loop or a
// Stop helper right now (no retry, unlike goleak), leaving out those whose
// first line is in skip.
func engineGoroutines(skip []string) []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "engine.(*loop).run(") && !strings.Contains(g, "engine.waitCtx.func") {
			continue
		}
		head, _, _ := strings.Cut(g, " [")
		if !slices.ContainsFunc(skip, func(s string) bool { return strings.HasPrefix(s, head+" [") }) {
			out = append(out, g)
		}
	}
	return out
}
