package engine_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
)

// classify is the test's own reading of a dead letter's reason, the
// sentinels in the order DeadLetterReason documents them.
func classify(err error) engine.DeadLetterReason {
	for _, c := range []struct {
		target error
		r      engine.DeadLetterReason
	}{
		{engine.ErrMailboxFull, engine.ReasonMailboxFull},
		{engine.ErrTerminated, engine.ReasonTerminated},
		{engine.ErrStopped, engine.ReasonStopped},
		{engine.ErrInitFailed, engine.ReasonInitFailed},
		{engine.ErrPanicked, engine.ReasonPanicked},
	} {
		if errors.Is(err, c.target) {
			return c.r
		}
	}
	return engine.ReasonOther
}

// TestDeadLetterStatsByReason makes dead letters of every engine reason
// and checks the counts per type and reason against what was made, against
// what a plugin saw, and their total against Stats().DeadLetters, while
// running and after Stop.
func TestDeadLetterStatsByReason(t *testing.T) {
	e := accNew(t, engine.WithLoops(2))
	o := accObserve(e)
	nop := accRecvOnly(func(*engine.Context, engine.Message) {})
	accRegister(t, e, "full", nop, engine.Mailbox(2, engine.DropNewest))
	accRegister(t, e, "ended", nop)
	accRegister(t, e, "panicky", accRecvOnly(func(*engine.Context, engine.Message) { panic("boom") }),
		engine.Restarts(0, time.Minute))
	accRegister(t, e, "initfail", func() engine.Agent {
		return &accFunc{init: func(*engine.Context) error { return errors.New("no config") }}
	})
	accRegister(t, e, "quiet", nop)

	// Sent before Start: they reach an agent whose Init then fails.
	bad := accSpawn(t, e, engine.AgentID{Type: "initfail", Key: "0"})
	for i := 0; i < 3; i++ {
		if err := bad.Send([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	accStart(t, e)
	full := accSpawn(t, e, engine.AgentID{Type: "full", Key: "0"}, engine.OnLoop(0))
	ended := accSpawn(t, e, engine.AgentID{Type: "ended", Key: "0"}, engine.OnLoop(1))
	panicky := accSpawn(t, e, engine.AgentID{Type: "panicky", Key: "0"}, engine.OnLoop(1))
	accIdle(t, e)
	for _, r := range []engine.Ref{full, ended, panicky} {
		if err := e.Pause(r.ID()); err != nil {
			t.Fatal(err)
		}
	}
	send := func(r engine.Ref, n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if err := r.Send([]byte("x")); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(full, 5)    // 2 queued, 3 dropped
	send(ended, 2)   // dead-lettered by the Terminate of a paused agent
	send(panicky, 3) // the first panics, the other two are left
	if err := e.Terminate(ended.ID()); err != nil {
		t.Fatal(err)
	}
	if err := e.Resume(panicky.ID()); err != nil {
		t.Fatal(err)
	}
	accIdle(t, e)

	check := func(when string, want map[string]engine.DeadLetterCounts) {
		t.Helper()
		ds := e.DeadLetterStats()
		if len(ds.Types) != 5 {
			t.Fatalf("%s: %d types, want every registered type (5): %+v", when, len(ds.Types), ds.Types)
		}
		var seen engine.DeadLetterCounts
		perType := map[string]engine.DeadLetterCounts{}
		for _, d := range o.allDead() {
			c := perType[d.To.Type]
			c[classify(d.Reason)]++
			perType[d.To.Type] = c
			seen[classify(d.Reason)]++
		}
		for i, td := range ds.Types {
			if i > 0 && ds.Types[i-1].Type >= td.Type {
				t.Errorf("%s: types not sorted: %q before %q", when, ds.Types[i-1].Type, td.Type)
			}
			if td.DeadLetterCounts != want[td.Type] {
				t.Errorf("%s: %s: counts %v, want %v", when, td.Type, td.DeadLetterCounts, want[td.Type])
			}
			if td.DeadLetterCounts != perType[td.Type] {
				t.Errorf("%s: %s: counts %v, the plugin saw %v", when, td.Type, td.DeadLetterCounts, perType[td.Type])
			}
		}
		if ds.DeadLetterCounts != seen {
			t.Errorf("%s: totals %v, the plugin saw %v", when, ds.DeadLetterCounts, seen)
		}
		if got, want := ds.Total(), e.Stats().DeadLetters; got != want {
			t.Errorf("%s: Total() = %d, Stats().DeadLetters = %d", when, got, want)
		}
	}
	counts := func(kv ...any) engine.DeadLetterCounts {
		var c engine.DeadLetterCounts
		for i := 0; i < len(kv); i += 2 {
			c[kv[i].(engine.DeadLetterReason)] = uint64(kv[i+1].(int))
		}
		return c
	}
	want := map[string]engine.DeadLetterCounts{
		"full":     counts(engine.ReasonMailboxFull, 3),
		"ended":    counts(engine.ReasonTerminated, 2),
		"panicky":  counts(engine.ReasonPanicked, 2),
		"initfail": counts(engine.ReasonInitFailed, 3),
	}
	check("running", want)

	// Stop leaves the paused agent's two messages behind.
	accStop(t, e, engine.Immediate())
	want["full"] = counts(engine.ReasonMailboxFull, 3, engine.ReasonStopped, 2)
	check("stopped", want)
}

func TestDeadLetterReasonString(t *testing.T) {
	names := map[string]bool{}
	for r := engine.DeadLetterReason(0); int(r) < engine.NumDeadLetterReasons; r++ {
		s := r.String()
		if s == "" || names[s] {
			t.Errorf("reason %d: name %q empty or repeated", r, s)
		}
		names[s] = true
	}
	if got := engine.ReasonMailboxFull.String(); got != "mailbox_full" {
		t.Errorf("ReasonMailboxFull = %q", got)
	}
	if got := engine.DeadLetterReason(200).String(); got != "DeadLetterReason(200)" {
		t.Errorf("out of range: %q", got)
	}
}

// TestSurveyLargestMailboxes queues known numbers of messages in paused
// agents on two loops and checks the top mailboxes, their order, loops and
// bytes, and the per-type figures.
func TestSurveyLargestMailboxes(t *testing.T) {
	e := accNew(t, engine.WithLoops(2))
	nop := accRecvOnly(func(*engine.Context, engine.Message) {})
	accRegister(t, e, "q", nop, engine.Mailbox(100, engine.DropNewest), engine.Priority(70))
	accRegister(t, e, "w", nop, engine.Priority(20))
	accRegister(t, e, "unused", nop)

	// Before Start: the types, nothing scanned.
	s, err := e.Survey(accCtx(t), 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Mailboxes) != 0 || len(s.Types) != 3 || s.Types[0].Agents != 0 {
		t.Fatalf("before Start: %+v", s)
	}
	accStart(t, e)

	const n = 12
	refs := make([]engine.Ref, n)
	for i := range refs {
		refs[i] = accSpawn(t, e, engine.AgentID{Type: "q", Key: fmt.Sprintf("k%02d", i)}, engine.OnLoop(i%2))
	}
	var ws []engine.Ref
	for i := 0; i < 3; i++ {
		ws = append(ws, accSpawn(t, e, engine.AgentID{Type: "w", Key: fmt.Sprint(i)}, engine.OnLoop(i%2)))
	}
	accIdle(t, e)
	for _, r := range refs {
		if err := e.Pause(r.ID()); err != nil {
			t.Fatal(err)
		}
	}
	// k00..k09 get i+1 messages of i+1 bytes; k10 and k11 as many as k09,
	// so that the third place is decided by the ID.
	total := 0
	for i, r := range refs {
		k := min(i, 9) + 1
		for j := 0; j < k; j++ {
			if err := r.Send(make([]byte, k)); err != nil {
				t.Fatal(err)
			}
		}
		total += k
	}
	for _, w := range ws {
		for j := 0; j < 5; j++ {
			if err := w.Send([]byte("w")); err != nil {
				t.Fatal(err)
			}
		}
	}
	accIdle(t, e)

	s, err = e.Survey(accCtx(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	wantKeys := []string{"k09", "k10", "k11", "k08"}
	if len(s.Mailboxes) != len(wantKeys) {
		t.Fatalf("%d mailboxes, want %d: %+v", len(s.Mailboxes), len(wantKeys), s.Mailboxes)
	}
	for i, m := range s.Mailboxes {
		idx := 0
		fmt.Sscanf(m.ID.Key, "k%d", &idx)
		k := min(idx, 9) + 1
		if m.ID.Key != wantKeys[i] || m.ID.Type != "q" || m.Queued != k || m.Bytes != int64(k*k) || m.Loop != idx%2 || m.Weight != 0 {
			t.Errorf("mailbox %d: %+v, want %s with %d messages, %d bytes, on loop %d, no weight", i, m, wantKeys[i], k, k*k, idx%2)
		}
	}

	byType := map[string]engine.TypeSurvey{}
	for _, ts := range s.Types {
		byType[ts.Type] = ts
	}
	q, w := byType["q"], byType["w"]
	if q.Agents != n || q.Queued != total || q.Priority != 70 || q.Capacity != 100 || q.Overflow != engine.DropNewest || q.Weighted != 0 {
		t.Errorf("q: %+v, want %d agents, %d queued, priority 70, capacity 100, DropNewest, none weighted", q, n, total)
	}
	if w.Agents != 3 || w.Queued != 0 || w.Priority != 20 || w.Capacity != engine.DefaultMailboxSize || w.Weighted != 3 {
		t.Errorf("w: %+v, want 3 agents, all weighted, none queued, priority 20", w)
	}
	if !(0 < w.MinWeight && w.MinWeight <= w.MeanWeight && w.MeanWeight <= w.MaxWeight && w.MaxWeight <= 1) {
		t.Errorf("w weights min %v mean %v max %v: want 0 < min <= mean <= max <= 1", w.MinWeight, w.MeanWeight, w.MaxWeight)
	}
	if u := byType["unused"]; u.Agents != 0 || u.Weighted != 0 {
		t.Errorf("unused: %+v", u)
	}

	// top 0: the types only.
	if s, err := e.Survey(accCtx(t), 0); err != nil || len(s.Mailboxes) != 0 || len(s.Types) != 3 {
		t.Errorf("Survey(0) = %+v, %v", s, err)
	}
}

// TestSurveyErrors: bad top, a call from a handler, a context that ends,
// and after Stop.
func TestSurveyErrors(t *testing.T) {
	e := accNew(t, engine.WithLoops(1))
	for _, top := range []int{-1, engine.MaxSurveyTop + 1} {
		if _, err := e.Survey(accCtx(t), top); !errors.Is(err, engine.ErrInvalidArgument) {
			t.Errorf("Survey(%d) = %v, want ErrInvalidArgument", top, err)
		}
	}
	inLoop := make(chan error, 1)
	gate := make(chan struct{})
	accRegister(t, e, "a", accRecvOnly(func(c *engine.Context, m engine.Message) {
		if string(m.Payload) == "survey" {
			_, err := e.Survey(context.Background(), 1)
			inLoop <- err
			return
		}
		accGateWait(gate)
	}))
	accStart(t, e)
	r := accSpawn(t, e, engine.AgentID{Type: "a", Key: "0"})
	if err := r.Send([]byte("survey")); err != nil {
		t.Fatal(err)
	}
	accIs(t, "Survey from a handler", accRecv(t, inLoop, "the handler's Survey"), engine.ErrInLoop)

	// A loop held in a handler cannot scan: the context decides.
	if err := r.Send([]byte("hold")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.Survey(ctx, 1)
	accIs(t, "Survey with an ended context", err, context.Canceled)
	close(gate)

	accStop(t, e)
	_, err = e.Survey(accCtx(t), 1)
	accIs(t, "Survey after Stop", err, engine.ErrStopped)
}

// TestPoolStats counts the record pool of a Pooled type: every Spawn is a
// hit or a miss, every finalised agent a put; types not pooled are absent.
func TestPoolStats(t *testing.T) {
	e := accNew(t, engine.WithLoops(1))
	nop := accRecvOnly(func(*engine.Context, engine.Message) {})
	accRegister(t, e, "pooled", nop, engine.Pooled())
	accRegister(t, e, "plain", nop)
	accStart(t, e)
	const cycles = 20
	for i := 0; i < cycles; i++ {
		id := engine.AgentID{Type: "pooled", Key: "x"}
		accSpawn(t, e, id)
		accSpawn(t, e, engine.AgentID{Type: "plain", Key: fmt.Sprint(i)})
		if err := e.Terminate(id); err != nil {
			t.Fatal(err)
		}
		accIdle(t, e)
	}
	ps := e.PoolStats()
	if len(ps) != 1 || ps[0].Type != "pooled" {
		t.Fatalf("PoolStats = %+v, want the pooled type only", ps)
	}
	if got := ps[0].Hits + ps[0].Misses; got != cycles || ps[0].Puts != cycles || ps[0].Misses == 0 {
		t.Errorf("PoolStats = %+v, want hits+misses = puts = %d, at least the first a miss", ps[0], cycles)
	}
}
