package engine_test

// The engine's log, from outside: records are caught by a slog.Handler of
// the test's own, and every interval is stepped on the manual clock.

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/enginetest"
)

// logRec is one record as the handler saw it.
type logRec struct {
	level slog.Level
	msg   string
	attrs map[string]slog.Value
}

// recorder is a slog.Handler that keeps every record.
type recorder struct {
	mu   sync.Mutex
	recs []logRec
}

func (h *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *recorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recorder) WithGroup(string) slog.Handler            { return h }

func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	rec := logRec{level: r.Level, msg: r.Message, attrs: map[string]slog.Value{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value
		return true
	})
	h.mu.Lock()
	h.recs = append(h.recs, rec)
	h.mu.Unlock()
	return nil
}

// with returns the records whose message is msg.
func (h *recorder) with(msg string) []logRec {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []logRec
	for _, r := range h.recs {
		if r.msg == msg {
			out = append(out, r)
		}
	}
	return out
}

func (h *recorder) all() []logRec {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]logRec(nil), h.recs...)
}

// logHarness is an engine on the manual clock that logs to a recorder.
func logHarness(t *testing.T, opts ...engine.Option) (*enginetest.Harness, *recorder) {
	t.Helper()
	rec := &recorder{}
	h := enginetest.New(t, append([]engine.Option{engine.WithLoops(2), engine.WithLogger(slog.New(rec))}, opts...)...)
	return h, rec
}

func str(r logRec, key string) string {
	if v, ok := r.attrs[key]; ok {
		return v.String()
	}
	return ""
}

func num(r logRec, key string) int64 {
	v, ok := r.attrs[key]
	if !ok {
		return -1
	}
	switch v.Kind() {
	case slog.KindInt64:
		return v.Int64()
	case slog.KindUint64:
		return int64(v.Uint64())
	}
	return -1
}

func TestWithLoggerOptions(t *testing.T) {
	cases := []struct {
		name string
		opt  engine.Option
		want error
	}{
		{"nil logger", engine.WithLogger(nil), engine.ErrInvalidOption},
		{"burst 0", engine.WithLogLimit(0, time.Second), engine.ErrInvalidOption},
		{"interval below 1ms", engine.WithLogLimit(1, time.Microsecond), engine.ErrInvalidDuration},
		{"discard", engine.WithLogger(slog.New(slog.DiscardHandler)), nil},
		{"limit", engine.WithLogLimit(1, time.Millisecond), nil},
	}
	for _, c := range cases {
		_, err := engine.New(c.opt)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: New = %v, want %v", c.name, err, c.want)
		}
	}
}

// A panic is logged with the agent, its type, the loop, the hook and the
// value; 10 000 panics of one type within an interval give DefaultLogBurst
// records, then one record with the count of the rest once the interval
// is over; another type keeps its own budget.
func TestLogPanicsAreRateLimited(t *testing.T) {
	h, rec := logHarness(t)
	e := h.Engine
	const n = 10000
	accRegister(t, e, "crash", accRecvOnly(func(*engine.Context, engine.Message) { panic("boom") }),
		engine.Restarts(n, time.Hour), engine.Mailbox(n, engine.DropNewest))
	accRegister(t, e, "other", accRecvOnly(func(*engine.Context, engine.Message) { panic("other") }))
	h.Start()
	r := accSpawn(t, e, engine.AgentID{Type: "crash", Key: "1"}, engine.OnLoop(0))
	for range n {
		if err := r.Send(nil); err != nil {
			t.Fatal(err)
		}
	}
	h.Settle()
	if err := e.SendID(engine.AgentID{Type: "other", Key: "1"}, nil); err != nil {
		t.Fatal(err)
	}
	h.Settle()
	if got := e.Stats().Panics; got != n+1 {
		t.Fatalf("Stats().Panics = %d, want %d", got, n+1)
	}
	var crash, other []logRec
	for _, r := range rec.with("engine: agent panicked") {
		switch str(r, "type") {
		case "crash":
			crash = append(crash, r)
		case "other":
			other = append(other, r)
		}
	}
	if len(crash) != engine.DefaultLogBurst || len(other) != 1 {
		t.Fatalf("panic records: %d of crash, %d of other; want %d and 1", len(crash), len(other), engine.DefaultLogBurst)
	}
	r0 := crash[0]
	if r0.level != slog.LevelError || str(r0, "agent") != "crash/1" || num(r0, "loop") != 0 ||
		str(r0, "hook") != "Receive" || str(r0, "panic") != "boom" || !strings.Contains(str(r0, "stack"), "goroutine") {
		t.Errorf("panic record %+v", r0)
	}
	if s := rec.with("engine: records suppressed"); len(s) != 0 {
		t.Fatalf("suppression reported before the interval ended: %+v", s)
	}
	h.Advance(engine.DefaultLogInterval)
	s := rec.with("engine: records suppressed")
	if len(s) != 1 || str(s[0], "type") != "crash" || str(s[0], "kind") != "panic" ||
		num(s[0], "suppressed") != n-engine.DefaultLogBurst {
		t.Fatalf("suppression records %+v, want one for crash counting %d", s, n-engine.DefaultLogBurst)
	}
	if total := len(rec.all()); total > 2*engine.DefaultLogBurst {
		t.Fatalf("%d records for %d panics", total, n+1)
	}
	// A new interval has a new budget.
	_ = r.Send(nil)
	h.Settle()
	if got := len(rec.with("engine: agent panicked")); got != engine.DefaultLogBurst+2 {
		t.Fatalf("%d panic records after the interval, want %d", got, engine.DefaultLogBurst+2)
	}
}

// Init failures are logged with their cause, and a spent restart budget
// with the restarts and the window.
func TestLogInitFailureAndRestartBudget(t *testing.T) {
	h, rec := logHarness(t)
	e := h.Engine
	errDB := errors.New("no database")
	if err := e.Register("broken", func() engine.Agent {
		return &accFunc{init: func(*engine.Context) error { return errDB }}
	}); err != nil {
		t.Fatal(err)
	}
	accRegister(t, e, "fragile", accRecvOnly(func(*engine.Context, engine.Message) { panic("again") }),
		engine.Restarts(2, time.Minute))
	h.Start()
	accSpawn(t, e, engine.AgentID{Type: "broken", Key: "1"})
	r := accSpawn(t, e, engine.AgentID{Type: "fragile", Key: "1"})
	for range 3 {
		_ = r.Send(nil)
	}
	h.Settle()
	in := rec.with("engine: agent init failed")
	if len(in) != 1 || str(in[0], "agent") != "broken/1" || str(in[0], "cause") != errDB.Error() {
		t.Fatalf("init records %+v", in)
	}
	b := rec.with("engine: agent restart budget exhausted")
	if len(b) != 1 || str(b[0], "agent") != "fragile/1" || num(b[0], "restarts") != 2 ||
		b[0].attrs["window"].Duration() != time.Minute || !strings.Contains(str(b[0], "cause"), "again") {
		t.Fatalf("budget records %+v", b)
	}
}

// Dead letters are summarised once per interval in which their count
// changed, by reason, on the engine's clock; never one record per message.
func TestLogDeadLetterSummary(t *testing.T) {
	h, rec := logHarness(t)
	e := h.Engine
	gate, held := make(chan struct{}), make(chan struct{}, 1)
	accRegister(t, e, "slow", accRecvOnly(func(*engine.Context, engine.Message) {
		held <- struct{}{}
		accGateWait(gate)
	}), engine.Mailbox(1, engine.DropNewest))
	accRegister(t, e, "idle", accRecvOnly(func(*engine.Context, engine.Message) {}))
	h.Start()
	r := accSpawn(t, e, engine.AgentID{Type: "slow", Key: "1"}, engine.OnLoop(0))
	_ = r.Send(nil)
	accRecv(t, held, "the handler to hold the loop")
	// Arriving while the handler waits: one is queued, 99 are dropped.
	for range 100 {
		_ = r.Send(nil)
	}
	close(gate)
	h.Settle()
	if d := rec.with("engine: dead letters"); len(d) != 0 {
		t.Fatalf("summary before the interval ended: %+v", d)
	}
	h.Advance(engine.DefaultLogInterval)
	d := rec.with("engine: dead letters")
	if len(d) != 1 || num(d[0], "total") != 99 || num(d[0], "mailbox_full") != 99 || num(d[0], "terminated") != -1 {
		t.Fatalf("summaries %+v, want one of 99 mailbox_full", d)
	}
	if d[0].level != slog.LevelWarn || d[0].attrs["interval"].Duration() != engine.DefaultLogInterval {
		t.Errorf("summary %+v", d[0])
	}
	// Nothing new: no record.
	h.Advance(3 * engine.DefaultLogInterval)
	if got := len(rec.with("engine: dead letters")); got != 1 {
		t.Fatalf("%d summaries after intervals without dead letters, want 1", got)
	}
	// A paused agent's queue is dead-lettered when it terminates.
	id := engine.AgentID{Type: "idle", Key: "1"}
	q := accSpawn(t, e, id)
	h.Settle()
	if err := e.Pause(id); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_ = q.Send(nil)
	}
	if err := e.Terminate(id); err != nil {
		t.Fatal(err)
	}
	h.Settle()
	h.Advance(engine.DefaultLogInterval)
	d = rec.with("engine: dead letters")
	if len(d) != 2 || num(d[1], "total") != 2 || num(d[1], "terminated") != 2 || num(d[1], "mailbox_full") != -1 {
		t.Fatalf("summaries %+v, want a second one of 2 terminated", d)
	}
	if got := e.Stats().DeadLetters; got != 101 {
		t.Errorf("Stats().DeadLetters = %d, want 101", got)
	}
}

// A Stop that hits its deadline logs what it left, and the dead letters of
// the stop are in a last summary that Stop writes before it returns.
func TestLogStop(t *testing.T) {
	rec := &recorder{}
	e := accNew(t, engine.WithLoops(1), engine.WithLogger(slog.New(rec)))
	gate, running := make(chan struct{}), make(chan struct{})
	defer close(gate)
	accRegister(t, e, "worker", accRecvOnly(func(c *engine.Context, _ engine.Message) {
		// Work that ignores its context holds Stop until the deadline.
		_ = c.Go(func(context.Context) ([]byte, error) {
			close(running)
			accGateWait(gate)
			return nil, nil
		}, func(*engine.Context, []byte, error) {})
	}))
	accRegister(t, e, "idle", accRecvOnly(func(*engine.Context, engine.Message) {}))
	accStart(t, e)
	id := engine.AgentID{Type: "idle", Key: "1"}
	q := accSpawn(t, e, id)
	accIdle(t, e)
	if err := e.Pause(id); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_ = q.Send(nil)
	}
	if err := e.SendID(engine.AgentID{Type: "worker", Key: "1"}, nil); err != nil {
		t.Fatal(err)
	}
	accRecv(t, running, "the work to start")
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // past the deadline: Stop dead-letters what is queued
	err := e.Stop(ctx)
	var se *engine.StopError
	if !errors.As(err, &se) || se.Queued != 3 {
		t.Fatalf("Stop = %v, want a *StopError that dropped 3", err)
	}
	s := rec.with("engine: stop deadline exceeded")
	if len(s) != 1 || num(s[0], "dropped") != 3 || num(s[0], "agents") != int64(se.Agents) ||
		!strings.Contains(str(s[0], "cause"), context.Canceled.Error()) || s[0].level != slog.LevelWarn {
		t.Fatalf("stop records %+v for %v", s, se)
	}
	d := rec.with("engine: dead letters")
	if len(d) != 1 || num(d[0], "stopped") != 3 || num(d[0], "total") != 3 {
		t.Fatalf("dead-letter summaries at Stop %+v, want 3 stopped", d)
	}
}
