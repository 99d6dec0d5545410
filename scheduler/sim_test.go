package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// The simulations below drive a Queue the way an engine loop does: pop an
// entity, handle up to a quantum of its messages, report the run with
// Account, push it back while it has a backlog. Time is counted in picks and
// handler time is invented, so every run is deterministic.

type simEntity struct {
	id    int
	cost  int64 // handler nanoseconds per message
	size  int64 // bytes per queued message
	limit int   // mailbox bound; 0: unbounded. Arrivals beyond it are dropped.
	// endless entities always have a full quantum waiting (saturation).
	endless bool

	inbox []uint64 // arrival pick of each queued message
	entry Entry[*simEntity]

	pushPick uint64 // picks when last pushed
	pushLen  int    // Len when last pushed

	picks     int    // times served
	handled   int    // messages handled
	waitSum   uint64 // sum of message waits, in picks
	waitMax   uint64
	entryMax  uint64 // longest wait of the entity in the queue, in picks
	entryMin  uint64
	violation string
}

type sim struct {
	t       *testing.T
	q       *Queue[*simEntity]
	es      []*simEntity
	quantum int
}

func newSim(t *testing.T, cfg Config, quantum int) *sim {
	t.Helper()
	return &sim{t: t, q: mustNew[*simEntity](t, cfg), quantum: quantum}
}

func (s *sim) add(prio int, cost, size int64) *simEntity {
	s.t.Helper()
	x := &simEntity{id: len(s.es), cost: cost, size: size, entryMin: ^uint64(0)}
	x.entry.Value = x
	setPriority(s.t, &x.entry, prio)
	s.es = append(s.es, x)
	return x
}

func (s *sim) addEndless(prio int, cost, size int64) *simEntity {
	x := s.add(prio, cost, size)
	x.endless = true
	s.push(x)
	return x
}

func (s *sim) backlog(x *simEntity) int {
	if x.endless {
		return s.quantum
	}
	return len(x.inbox)
}

func (s *sim) push(x *simEntity) {
	if x.entry.queued {
		return
	}
	x.pushPick, x.pushLen = s.q.picks, s.q.Len()
	s.q.Push(&x.entry)
}

// deliver queues one message for x and makes x runnable.
func (s *sim) deliver(x *simEntity) {
	if x.limit > 0 && len(x.inbox) >= x.limit {
		return
	}
	x.inbox = append(x.inbox, s.q.picks)
	s.push(x)
}

// pick serves the next entity; it returns false when none is runnable.
func (s *sim) pick() bool {
	now := s.q.picks
	e, ok := s.q.Pop()
	if !ok {
		return false
	}
	x := e.Value
	wait := now - x.pushPick
	x.entryMax, x.entryMin = max(x.entryMax, wait), min(x.entryMin, wait)
	if bound := uint64(s.q.cfg.WaitBound(x.pushLen)); wait > bound && x.violation == "" {
		x.violation = "waited beyond WaitBound"
		s.t.Errorf("entity %d waited %d picks behind %d entries: bound %d", x.id, wait, x.pushLen, bound)
	}
	n := min(s.quantum, s.backlog(x))
	if !x.endless {
		for _, at := range x.inbox[:n] {
			w := now - at
			x.waitSum += w
			x.waitMax = max(x.waitMax, w)
		}
		x.inbox = append(x.inbox[:0], x.inbox[n:]...)
	}
	x.picks++
	x.handled += n
	left := s.backlog(x)
	s.q.Account(e, int64(n)*x.cost, n, int64(left)*x.size)
	if left > 0 {
		s.push(x)
	}
	return true
}

func (s *sim) run(picks int) {
	for range picks {
		if !s.pick() {
			s.t.Fatal("nothing runnable in a saturated simulation")
		}
	}
}

func setPriority[T any](t testing.TB, e *Entry[T], p int) {
	t.Helper()
	if err := e.SetPriority(p); err != nil {
		t.Fatal(err)
	}
}

func share(a, b int) float64 { return float64(a) / float64(a+b) }

// Under overload, the messages of priority-100 entities wait fewer picks
// than those of priority-10 entities with the same load.
func TestPriorityWaitsLessUnderOverload(t *testing.T) {
	withCoef := func(c Coefficients) Config {
		cfg := DefaultConfig()
		cfg.Coefficients = c
		return cfg
	}
	small := DefaultConfig()
	small.Buckets, small.MaxWait, small.EpochPicks = 16, 32, 64
	cases := []struct {
		name     string
		cfg      Config
		minRatio float64 // mean wait of priority 10 / mean wait of priority 100
		maxRatio float64
	}{
		{"default", DefaultConfig(), 4, 1e9},
		{"16 buckets, short wait", small, 2, 1e9},
		{"priority only", withCoef(Coefficients{Priority: 1}), 4, 1e9},
		// Control: without the priority term both groups are served alike.
		{"control: no priority term", withCoef(Coefficients{CPU: 1, Mem: 1}), 0.5, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, tc.cfg, 4)
			var hi, lo []*simEntity
			for range 8 {
				x := s.add(100, 2_000, 256)
				x.limit = 512
				hi = append(hi, x)
				y := s.add(10, 2_000, 256)
				y.limit = 512
				lo = append(lo, y)
			}
			r := rand.New(rand.NewPCG(7, 11))
			// Capacity is 4 messages per pick; 6 arrive per pick on average.
			for range 40_000 {
				for range 6 {
					if r.IntN(2) == 0 {
						s.deliver(hi[r.IntN(len(hi))])
					} else {
						s.deliver(lo[r.IntN(len(lo))])
					}
				}
				s.pick()
			}
			mean := func(xs []*simEntity) float64 {
				var sum uint64
				var n int
				for _, x := range xs {
					sum += x.waitSum
					n += x.handled
				}
				return float64(sum) / float64(n)
			}
			mh, ml := mean(hi), mean(lo)
			ratio := ml / mh
			t.Logf("mean message wait: priority 100 %.1f picks, priority 10 %.1f picks (ratio %.1f); aged picks %d of %d",
				mh, ml, ratio, s.q.Stats().AgedPicks, s.q.Stats().Picks)
			if ratio < tc.minRatio || ratio > tc.maxRatio {
				t.Fatalf("wait ratio %.2f, want %.1f..%.1f", ratio, tc.minRatio, tc.maxRatio)
			}
			if err := s.q.verify(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// An entity that burns the loop (100× the handler time per message) cannot
// starve a light entity of the same priority: the CPU term sinks it, and the
// light one's share of picks rises above the even split it gets when only
// priorities count.
func TestHogCannotStarveLight(t *testing.T) {
	priorityOnly := DefaultConfig()
	priorityOnly.Coefficients = Coefficients{Priority: 1}
	cases := []struct {
		name     string
		cfg      Config
		min, max float64 // the light entity's share of picks
	}{
		{"default", DefaultConfig(), 0.75, 1},
		{"cpu only", func() Config { c := DefaultConfig(); c.Coefficients = Coefficients{CPU: 1}; return c }(), 0.75, 1},
		{"alpha 0.5, short epochs", func() Config { c := DefaultConfig(); c.Alpha, c.EpochPicks = 0.5, 16; return c }(), 0.75, 1},
		{"alpha 0.05, long epochs", func() Config { c := DefaultConfig(); c.Alpha, c.EpochPicks = 0.05, 512; return c }(), 0.75, 1},
		{"control: priority only", priorityOnly, 0.45, 0.55},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, tc.cfg, 16)
			hog := s.addEndless(50, 100_000, 64)
			light := s.addEndless(50, 1_000, 64)
			s.run(20_000)
			sh := share(light.picks, hog.picks)
			st := s.q.Stats()
			t.Logf("light share of picks %.3f (hog %d picks, longest wait %d); aged picks %d", sh, hog.picks, hog.entryMax, st.AgedPicks)
			if sh < tc.min || sh > tc.max {
				t.Fatalf("light share %.3f, want %.2f..%.2f", sh, tc.min, tc.max)
			}
			if hog.picks == 0 {
				t.Fatal("the hog itself starved")
			}
		})
	}
}

// Two entities of equal priority and load get shares of picks within 10%
// of each other, whatever else runs on the loop.
func TestEqualShares(t *testing.T) {
	odd := DefaultConfig()
	odd.EpochPicks, odd.Alpha = 7, 1
	fine := DefaultConfig()
	fine.Buckets = 64
	cases := []struct {
		name   string
		cfg    Config
		prio   int
		cost   int64
		jitter bool // handler time varies ±50% per run
		others func(s *sim)
	}{
		{name: "alone", cfg: DefaultConfig(), prio: 50, cost: 1_000},
		{name: "odd epoch, alpha 1", cfg: odd, prio: 50, cost: 1_000},
		{name: "jittered cost", cfg: DefaultConfig(), prio: 50, cost: 10_000, jitter: true},
		{name: "jittered cost, 64 buckets", cfg: fine, prio: 70, cost: 10_000, jitter: true},
		{name: "beside a heavier hog", cfg: DefaultConfig(), prio: 50, cost: 1_000, others: func(s *sim) {
			s.addEndless(60, 50_000, 1024)
		}},
		{name: "low priority among light ones", cfg: DefaultConfig(), prio: 0, cost: 1_000, others: func(s *sim) {
			for range 10 {
				s.addEndless(100, 1_000, 64)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, tc.cfg, 8)
			a := s.addEndless(tc.prio, tc.cost, 128)
			if tc.others != nil {
				tc.others(s)
			}
			b := s.addEndless(tc.prio, tc.cost, 128)
			r := rand.New(rand.NewPCG(3, 5))
			if tc.jitter {
				for range 60_000 {
					for _, x := range []*simEntity{a, b} {
						x.cost = tc.cost/2 + r.Int64N(tc.cost)
					}
					s.pick()
				}
			} else {
				s.run(60_000)
			}
			diff := float64(max(a.picks, b.picks)-min(a.picks, b.picks)) / float64(max(a.picks, b.picks))
			t.Logf("picks %d and %d of %d (difference %.1f%%)", a.picks, b.picks, s.q.picks, 100*diff)
			if a.picks == 0 || diff > 0.10 {
				t.Fatalf("picks %d and %d differ by %.1f%%, want ≤ 10%%", a.picks, b.picks, 100*diff)
			}
		})
	}
}

// A priority-0 entity among many priority-100 ones, all saturating the
// loop, is served within the documented bound, MaxWait + 2·queued picks.
func TestStarvationBound(t *testing.T) {
	cases := []struct {
		maxWait, heavy int
	}{
		{128, 63},  // default MaxWait: heavy ones never age
		{8, 63},    // every heavy one ages too: alternation decides
		{1, 200},   // MaxWait 1
		{512, 15},  // long MaxWait, few heavy
		{32, 1000}, // many more entries than MaxWait
	}
	for _, tc := range cases {
		cfg := DefaultConfig()
		cfg.MaxWait = tc.maxWait
		t.Run(fmt.Sprintf("MaxWait=%d/heavy=%d", tc.maxWait, tc.heavy), func(t *testing.T) {
			s := newSim(t, cfg, 4)
			low := s.addEndless(0, 1_000, 64)
			for range tc.heavy {
				s.addEndless(100, 1_000, 64)
			}
			s.run(50_000)
			bound := cfg.WaitBound(tc.heavy) // the most entries ahead of a push
			st := s.q.Stats()
			t.Logf("MaxWait %d, %d heavy: priority 0 served %d times, wait %d..%d picks, bound %d; longest wait of any %d; aged picks %d of %d",
				tc.maxWait, tc.heavy, low.picks, low.entryMin, low.entryMax, bound, st.LongestWait, st.AgedPicks, st.Picks)
			if low.picks < 50_000/(bound+1) {
				t.Fatalf("priority 0 served %d times in 50000 picks, want ≥ %d", low.picks, 50_000/(bound+1))
			}
			if low.entryMax > uint64(bound) || st.LongestWait > uint64(bound) {
				t.Fatalf("longest wait %d (any entry %d) exceeds the bound %d", low.entryMax, st.LongestWait, bound)
			}
			// It is served by aging, never by weight: it waits at least MaxWait.
			if low.entryMin < uint64(tc.maxWait) {
				t.Fatalf("priority 0 waited only %d picks, less than MaxWait %d", low.entryMin, tc.maxWait)
			}
		})
	}
}

// The bound is reached: k light entries and then x are queued at once, and
// a heavy entry that is always runnable takes every pick the aging rule
// leaves it. The light ones age first and are served one every other pick;
// x is served after exactly MaxWait + 2k picks.
func TestStarvationBoundTight(t *testing.T) {
	for _, tc := range []struct{ maxWait, k int }{{1, 0}, {1, 5}, {16, 10}, {128, 63}} {
		cfg := DefaultConfig()
		cfg.MaxWait = tc.maxWait
		q := mustNew[int](t, cfg)
		light := make([]Entry[int], tc.k)
		var x, heavy Entry[int]
		for i := range light {
			light[i].Value = i
			setPriority(t, &light[i], 0)
			q.Push(&light[i])
		}
		x.Value = -1
		setPriority(t, &x, 0)
		pushedBehind := q.Len()
		q.Push(&x)
		heavy.Value = -2
		setPriority(t, &heavy, 100)
		q.Push(&heavy)
		for wait := 0; ; wait++ {
			e, _ := q.Pop()
			if e == &x {
				bound := cfg.WaitBound(pushedBehind)
				if wait != bound {
					t.Errorf("MaxWait %d, %d ahead: x waited %d picks, want exactly the bound %d", tc.maxWait, tc.k, wait, bound)
				}
				break
			}
			if e == &heavy {
				q.Push(e)
			}
			if wait > 10*cfg.WaitBound(pushedBehind) {
				t.Fatalf("MaxWait %d, %d ahead: x not served after %d picks", tc.maxWait, tc.k, wait)
			}
		}
		check(t, q, "tight")
	}
}
