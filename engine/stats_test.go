package engine

import (
	"slices"
	"testing"
	"time"
)

// loopType returns the counts of type typ on loop li.
func loopType(s Stats, li int, typ string) Counts {
	for _, ts := range s.Loops[li].Types {
		if ts.Type == typ {
			return ts.Counts
		}
	}
	return Counts{}
}

// plus adds two Counts field by field, as the totals of Stats should.
func plus(a, b Counts) Counts {
	return Counts{
		Received:  a.Received + b.Received,
		Processed: a.Processed + b.Processed,
		Dropped:   a.Dropped + b.Dropped,
		Queued:    a.Queued + b.Queued,
		Restarts:  a.Restarts + b.Restarts,
	}
}

// TestStatsCounts drives known traffic through three types on two loops
// and checks every counter per loop and per type, while running and after
// Stop, and that the totals add up.
func TestStatsCounts(t *testing.T) {
	e := startedEngine(t, WithLoops(2))
	s := newSink()
	mustRegister(t, e, "a", func() Agent { return s })
	mustRegister(t, e, "b", func() Agent { return s }, Mailbox(3, DropNewest))
	log := &crashLog{done: make(chan struct{})}
	mustRegister(t, e, "c", log.factory(), Restarts(5, time.Minute))

	a0 := mustSpawn(t, e, AgentID{"a", "0"}, OnLoop(0))
	a1 := mustSpawn(t, e, AgentID{"a", "1"}, OnLoop(1))
	b0 := mustSpawn(t, e, AgentID{"b", "0"}, OnLoop(1))
	c0 := mustSpawn(t, e, AgentID{"c", "0"}, OnLoop(0))
	if n := e.Stats().Agents; n != 4 {
		t.Fatalf("Stats().Agents = %d, want 4", n)
	}
	for i := 0; i < 10; i++ {
		if err := a0.Send(seq(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 4; i++ {
		if err := a1.Send(seq(i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"boom", "last"} {
		if err := c0.Send([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	pauseRunning(t, e, b0)
	for i := 0; i < 5; i++ {
		if err := b0.Send(seq(i)); err != nil {
			t.Fatal(err)
		}
	}
	wait(t, log.done, "c after its restart")

	// While b is paused: 3 queued, 2 dropped. Counters are published when
	// a loop parks, so wait for them.
	wantB := Counts{Received: 5, Dropped: 2, Queued: 3}
	eventually(t, "b's counters while paused", func() bool { return loopType(e.Stats(), 1, "b") == wantB }, waitTimeout)
	if q := e.Stats().Loops[1].Queued; q != 3 {
		t.Errorf("loop 1 Queued while b is paused = %d, want 3", q)
	}
	if err := e.Resume(b0.ID()); err != nil {
		t.Fatal(err)
	}
	stop(t, e)

	st := e.Stats()
	want := map[[2]any]Counts{
		{0, "a"}: {Received: 10, Processed: 10},
		{0, "b"}: {},
		{0, "c"}: {Received: 2, Processed: 2, Restarts: 1},
		{1, "a"}: {Received: 4, Processed: 4},
		{1, "b"}: {Received: 5, Processed: 3, Dropped: 2},
		{1, "c"}: {},
	}
	for k, w := range want {
		if got := loopType(st, k[0].(int), k[1].(string)); got != w {
			t.Errorf("loop %d type %s: %+v, want %+v", k[0], k[1], got, w)
		}
	}
	wantTypes := map[string]Counts{
		"a": {Received: 14, Processed: 14},
		"b": {Received: 5, Processed: 3, Dropped: 2},
		"c": {Received: 2, Processed: 2, Restarts: 1},
	}
	for typ, w := range wantTypes {
		if got := typeStats(st, typ); got != w {
			t.Errorf("type %s totals: %+v, want %+v", typ, got, w)
		}
	}
	// Internal consistency: loops are in order, types sorted, and every
	// total is the sum of its parts (the probe type included).
	var sum Counts
	for i, ls := range st.Loops {
		if ls.Loop != i {
			t.Errorf("Loops[%d].Loop = %d", i, ls.Loop)
		}
		names := make([]string, len(ls.Types))
		var loopSum Counts
		for j, ts := range ls.Types {
			names[j] = ts.Type
			loopSum = plus(loopSum, ts.Counts)
		}
		if !slices.IsSorted(names) {
			t.Errorf("loop %d types not sorted: %v", i, names)
		}
		if loopSum != ls.Counts {
			t.Errorf("loop %d counts %+v, sum of its types %+v", i, ls.Counts, loopSum)
		}
		sum = plus(sum, ls.Counts)
		if ls.Inbox != 0 || ls.Runnable != 0 || ls.Timers != 0 {
			t.Errorf("loop %d after Stop: inbox %d, runnable %d, timers %d", i, ls.Inbox, ls.Runnable, ls.Timers)
		}
		if ls.Turns == 0 || ls.Parks == 0 {
			t.Errorf("loop %d: %d turns, %d parks", i, ls.Turns, ls.Parks)
		}
	}
	if sum != st.Counts {
		t.Errorf("engine counts %+v, sum of loops %+v", st.Counts, sum)
	}
	var typeSum Counts
	for _, ts := range st.Types {
		typeSum = plus(typeSum, ts.Counts)
	}
	if typeSum != st.Counts {
		t.Errorf("engine counts %+v, sum of types %+v", st.Counts, typeSum)
	}
	if st.DeadLetters != 2 || st.Panics != 1 || st.Agents != 0 || st.Queued != 0 {
		t.Errorf("DeadLetters %d, Panics %d, Agents %d, Queued %d; want 2, 1, 0, 0", st.DeadLetters, st.Panics, st.Agents, st.Queued)
	}
	if got := s.got(b0.ID()); !slices.Equal(got, strs(0, 1, 2)) {
		t.Errorf("b delivered %q, want 0 1 2", got)
	}
}

// TestStatsBeforeStart: a fresh engine reports zeros and one entry per
// loop and registered type.
func TestStatsBeforeStart(t *testing.T) {
	e := newEngine(t, WithLoops(3))
	mustRegister(t, e, "z", recvAgent(nil))
	mustRegister(t, e, "y", recvAgent(nil))
	st := e.Stats()
	if len(st.Loops) != 3 || len(st.Types) != 2 || st.Types[0].Type != "y" || st.Types[1].Type != "z" {
		t.Fatalf("Stats shape: %d loops, types %+v", len(st.Loops), st.Types)
	}
	if st.Counts != (Counts{}) || st.DeadLetters != 0 || st.Panics != 0 || st.Agents != 0 {
		t.Fatalf("fresh engine stats: %+v", st)
	}
	for _, ls := range st.Loops {
		if len(ls.Types) != 2 || ls.Turns != 0 {
			t.Fatalf("loop %d: %d types, %d turns", ls.Loop, len(ls.Types), ls.Turns)
		}
	}
}
