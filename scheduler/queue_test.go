package scheduler

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func mustNew[T any](t testing.TB, cfg Config) *Queue[T] {
	t.Helper()
	q, err := New[T](cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return q
}

func check[T any](t *testing.T, q *Queue[T], what string) {
	t.Helper()
	if err := q.verify(); err != nil {
		t.Fatalf("%s: verify: %v", what, err)
	}
}

func TestConfigValidate(t *testing.T) {
	def := DefaultConfig()
	with := func(f func(*Config)) Config {
		c := def
		f(&c)
		return c
	}
	cases := []struct {
		name string
		cfg  Config
		want []error // nil: valid
	}{
		{"default", def, nil},
		{"priority only", with(func(c *Config) { c.Coefficients = Coefficients{Priority: 1} }), nil},
		{"unnormalised sum", with(func(c *Config) { c.Coefficients = Coefficients{3, 1, 1} }), nil},
		{"one bucket, alpha 1", with(func(c *Config) { c.Buckets, c.Alpha = 1, 1 }), nil},
		{"64 buckets, minimal epoch and wait", with(func(c *Config) { c.Buckets, c.EpochPicks, c.MaxWait = 64, 1, 1 }), nil},
		{"negative priority coefficient", with(func(c *Config) { c.Coefficients.Priority = -0.1 }), []error{ErrCoefficient}},
		{"NaN cpu coefficient", with(func(c *Config) { c.Coefficients.CPU = math.NaN() }), []error{ErrCoefficient}},
		{"infinite mem coefficient", with(func(c *Config) { c.Coefficients.Mem = math.Inf(1) }), []error{ErrCoefficient}},
		{"sum overflows", with(func(c *Config) { c.Coefficients = Coefficients{math.MaxFloat64, math.MaxFloat64, 0} }), []error{ErrNoWeight}},
		{"zero coefficients", with(func(c *Config) { c.Coefficients = Coefficients{} }), []error{ErrNoWeight}},
		{"zero buckets", with(func(c *Config) { c.Buckets = 0 }), []error{ErrBuckets}},
		{"65 buckets", with(func(c *Config) { c.Buckets = 65 }), []error{ErrBuckets}},
		{"zero epoch", with(func(c *Config) { c.EpochPicks = 0 }), []error{ErrEpochPicks}},
		{"zero max wait", with(func(c *Config) { c.MaxWait = 0 }), []error{ErrMaxWait}},
		{"negative max wait", with(func(c *Config) { c.MaxWait = -3 }), []error{ErrMaxWait}},
		{"zero alpha", with(func(c *Config) { c.Alpha = 0 }), []error{ErrAlpha}},
		{"alpha above 1", with(func(c *Config) { c.Alpha = 1.5 }), []error{ErrAlpha}},
		{"NaN alpha", with(func(c *Config) { c.Alpha = math.NaN() }), []error{ErrAlpha}},
		{"zero config", Config{}, []error{ErrNoWeight, ErrBuckets, ErrEpochPicks, ErrMaxWait, ErrAlpha}},
	}
	all := []error{ErrCoefficient, ErrNoWeight, ErrBuckets, ErrEpochPicks, ErrMaxWait, ErrAlpha}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			_, nerr := New[int](tc.cfg)
			if (err == nil) != (nerr == nil) {
				t.Fatalf("Validate = %v but New = %v", err, nerr)
			}
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %v", tc.want)
			}
			for _, s := range all {
				wanted := false
				for _, w := range tc.want {
					wanted = wanted || w == s
				}
				if errors.Is(err, s) != wanted {
					t.Errorf("errors.Is(%v, %v) = %v, want %v", err, s, !wanted, wanted)
				}
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "scheduler: ") {
					t.Errorf("error line %q lacks the package prefix", line)
				}
			}
		})
	}
}

func TestSetPriority(t *testing.T) {
	var e Entry[int]
	if e.Priority() != DefaultPriority {
		t.Fatalf("zero Entry priority = %d, want %d", e.Priority(), DefaultPriority)
	}
	for _, p := range []int{0, 1, 49, 50, 99, 100} {
		if err := e.SetPriority(p); err != nil || e.Priority() != p {
			t.Fatalf("SetPriority(%d) = %v, Priority = %d", p, err, e.Priority())
		}
	}
	for _, p := range []int{-1, 101, math.MinInt, math.MaxInt} {
		err := e.SetPriority(p)
		if !errors.Is(err, ErrPriority) {
			t.Fatalf("SetPriority(%d) = %v, want ErrPriority", p, err)
		}
		if e.Priority() != 100 {
			t.Fatalf("failed SetPriority(%d) changed the priority to %d", p, e.Priority())
		}
	}
}

func TestZeroQueue(t *testing.T) {
	var q Queue[string]
	check(t, &q, "zero")
	if e, ok := q.Pop(); ok || e != nil || q.Len() != 0 {
		t.Fatalf("Pop on zero queue = %v, %v", e, ok)
	}
	var a, b Entry[string]
	a.Value, b.Value = "a", "b"
	q.Remove(&a) // not queued: no-op
	q.Forget(&a) // not bound: no-op
	check(t, &q, "remove unbound")
	if err := b.SetPriority(90); err != nil {
		t.Fatal(err)
	}
	q.Push(&a)
	q.Push(&b)
	q.Push(&a) // already queued: no-op
	check(t, &q, "push")
	if q.cfg != DefaultConfig() {
		t.Fatalf("zero queue took config %+v on first use, want DefaultConfig", q.cfg)
	}
	if q.Len() != 2 {
		t.Fatalf("Len = %d, want 2", q.Len())
	}
	if e, _ := q.Pop(); e != &b {
		t.Fatalf("Pop = %q, want b (priority 90)", e.Value)
	}
	if e, _ := q.Pop(); e != &a {
		t.Fatalf("Pop = %q, want a", e.Value)
	}
	check(t, &q, "pop")
}

// Entries of one weight are served round robin: FIFO within the bucket.
func TestRoundRobinWithinBucket(t *testing.T) {
	q := mustNew[int](t, DefaultConfig())
	es := make([]Entry[int], 5)
	for i := range es {
		es[i].Value = i
		q.Push(&es[i])
	}
	var got []int
	for range 3 * len(es) {
		e, _ := q.Pop()
		got = append(got, e.Value)
		q.Push(e)
		check(t, q, "cycle")
	}
	for i, v := range got {
		if v != i%len(es) {
			t.Fatalf("order %v, want round robin 0..4", got)
		}
	}
}

func TestRemoveAndForget(t *testing.T) {
	q := mustNew[int](t, DefaultConfig())
	es := make([]Entry[int], 4)
	for i := range es {
		es[i].Value = i
		q.Account(&es[i], 100, 1, int64(100*(i+1)))
		q.Push(&es[i])
	}
	// Remove from the middle, the head and the tail of the one bucket.
	for _, i := range []int{2, 0, 3} {
		q.Remove(&es[i])
		check(t, q, "remove")
		if es[i].queued {
			t.Fatalf("entry %d still queued after Remove", i)
		}
		q.Remove(&es[i]) // idempotent
	}
	if e, _ := q.Pop(); e != &es[1] || q.Len() != 0 {
		t.Fatalf("Pop = %v, Len %d; want entry 1 and empty", e.Value, q.Len())
	}
	if q.bytes != 1000 {
		t.Fatalf("loop bytes %d after Remove, want 1000 (Remove keeps accounting)", q.bytes)
	}
	q.Push(&es[3])
	q.Forget(&es[3])
	q.Forget(&es[0])
	check(t, q, "forget")
	if q.bytes != 500 || es[3].owner != nil || es[3].queued || es[3].Value != 3 {
		t.Fatalf("after Forget: loop bytes %d (want 500), owner %p, queued %v, value %d",
			q.bytes, es[3].owner, es[3].queued, es[3].Value)
	}
	// A forgotten entry can move to another queue.
	other := mustNew[int](t, DefaultConfig())
	other.Push(&es[3])
	check(t, other, "other")
	other.Remove(&es[1]) // not in other: no-op
	check(t, q, "foreign remove")
}

func TestMisusePanics(t *testing.T) {
	q1, q2 := mustNew[int](t, DefaultConfig()), mustNew[int](t, DefaultConfig())
	var queued, bound Entry[int]
	q1.Push(&queued)
	q1.Account(&bound, 1, 1, 1)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"push queued entry into another queue", func() { q2.Push(&queued) }},
		{"push bound entry into another queue", func() { q2.Push(&bound) }},
		{"account bound entry in another queue", func() { q2.Account(&bound, 1, 1, 1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, ok := r.(string); !ok || !strings.HasPrefix(s, "scheduler: ") {
					t.Fatalf("recover() = %v, want a scheduler panic", r)
				}
			}()
			tc.f()
		})
	}
	check(t, q1, "q1")
	check(t, q2, "q2")
}

// TestWeightFormula checks weights against the formula computed by hand.
func TestWeightFormula(t *testing.T) {
	type report struct {
		nanos, bytes int64 // nanos < 0: no Account call
	}
	cases := []struct {
		name    string
		coef    Coefficients
		alpha   float64
		prio    [2]int
		epochs  [][2]report // per closed epoch, for entries a and b
		pending [2]report   // reported in the open epoch: ignored by the cpu term
		want    [2]float64
	}{
		{
			name: "nothing reported", coef: Coefficients{0.6, 0.2, 0.2}, alpha: 0.25,
			prio: [2]int{80, 20},
			want: [2]float64{0.6*0.8 + 0.4, 0.6*0.2 + 0.4},
		},
		{
			name: "one epoch, alpha 1", coef: Coefficients{0.6, 0.2, 0.2}, alpha: 1,
			prio:   [2]int{80, 20},
			epochs: [][2]report{{{300, 100}, {100, 300}}},
			// a: cpu share .75, mem share .25; b: the converse.
			want: [2]float64{0.48 + 0.2*0.25 + 0.2*0.75, 0.12 + 0.2*0.75 + 0.2*0.25},
		},
		{
			name: "EWMA over two epochs", coef: Coefficients{0.6, 0.2, 0.2}, alpha: 0.5,
			prio:   [2]int{50, 50},
			epochs: [][2]report{{{100, 0}, {0, 0}}, {{0, 0}, {100, 0}}},
			// loop: .5·100 then .5·100+.5·50 = 75; a: 50 → 25; b: 0 → 50.
			// Shares 1/3 and 2/3, quantised to quarters: .25 and .75.
			want: [2]float64{0.3 + 0.2*(1-0.25) + 0.2, 0.3 + 0.2*(1-0.75) + 0.2},
		},
		{
			name: "idle entry decays with the loop", coef: Coefficients{0.6, 0.2, 0.2}, alpha: 0.5,
			prio:   [2]int{50, 50},
			epochs: [][2]report{{{100, 0}, {100, 0}}, {{-1, 0}, {100, 0}}, {{-1, 0}, {100, 0}}},
			// a is not accounted after the first epoch (its EWMA is rolled
			// lazily over two epochs): 50, 25, 12.5; b: 50, 75, 87.5; loop 100.
			// Shares .125 (within the hysteresis of 0) and .875 (rounds to 1).
			want: [2]float64{0.3 + 0.2 + 0.2, 0.3 + 0 + 0.2}, // cpu headroom 1 and 0
		},
		{
			name: "open epoch does not count", coef: Coefficients{0.6, 0.2, 0.2}, alpha: 1,
			prio:    [2]int{50, 50},
			epochs:  [][2]report{{{100, 0}, {100, 0}}},
			pending: [2]report{{1e9, 0}, {0, 0}},
			want:    [2]float64{0.3 + 0.1 + 0.2, 0.3 + 0.1 + 0.2},
		},
		{
			name: "unnormalised coefficients", coef: Coefficients{2, 1, 0}, alpha: 1,
			prio:   [2]int{100, 0},
			epochs: [][2]report{{{900, 7}, {100, 7}}},
			// Shares .9 and .1 quantise to 1 and 0.
			want: [2]float64{2 + 0, 0 + 1},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Coefficients, cfg.Alpha, cfg.EpochPicks = tc.coef, tc.alpha, 1<<30
			q := mustNew[int](t, cfg)
			var es [2]Entry[int]
			for i := range es {
				if err := es[i].SetPriority(tc.prio[i]); err != nil {
					t.Fatal(err)
				}
			}
			for _, ep := range tc.epochs {
				for i := range es {
					if ep[i].nanos >= 0 {
						q.Account(&es[i], ep[i].nanos, 1, ep[i].bytes)
					}
				}
				q.closeEpoch()
			}
			for i := range es {
				if tc.pending[i] != (report{}) {
					q.Account(&es[i], tc.pending[i].nanos, 1, tc.pending[i].bytes)
				}
				q.Push(&es[i])
				check(t, q, "push")
				if got := es[i].Weight(); math.Abs(got-tc.want[i]) > 1e-12 {
					t.Errorf("entry %d: weight %.15f, want %.15f", i, got, tc.want[i])
				}
				b := int(tc.want[i] / tc.coef.Sum() * float64(cfg.Buckets))
				if got := int(es[i].bucket); got != min(b, cfg.Buckets-1) {
					t.Errorf("entry %d: bucket %d, want %d", i, got, b)
				}
			}
		})
	}
}

// Weights change once per epoch, not per Push.
func TestWeightFrozenWithinEpoch(t *testing.T) {
	cfg := DefaultConfig()
	cfg.EpochPicks = 1 << 30
	q := mustNew[int](t, cfg)
	var a, b Entry[int]
	q.Account(&a, 100, 1, 0)
	q.Account(&b, 100, 1, 0)
	q.closeEpoch()
	q.Push(&a)
	w := a.Weight()
	e, _ := q.Pop()
	q.Account(e, 1e9, 1, 1e9) // a hogs everything now
	q.Push(&a)
	if a.Weight() != w {
		t.Fatalf("weight changed within the epoch: %v → %v", w, a.Weight())
	}
	if err := a.SetPriority(0); err != nil {
		t.Fatal(err)
	}
	if a.Weight() != w || !a.queued {
		t.Fatalf("SetPriority moved a queued entry")
	}
	q.Remove(&a)
	q.Push(&a)
	if got, want := a.Weight(), w-0.3-0.2; math.Abs(got-want) > 1e-12 {
		t.Fatalf("after SetPriority(0) and re-push: weight %v, want %v (priority term gone, backlog counted)", got, want)
	}
	st := q.Stats()
	if st.Reweighs != 2 {
		t.Fatalf("Reweighs = %d, want 2 (first push, then after SetPriority)", st.Reweighs)
	}
}

// model is a slow, obviously correct reference for Queue: it recomputes the
// EWMAs eagerly at every epoch and finds the next entry by scanning.
type model struct {
	cfg      Config
	es       []modelEntry
	picks    uint64
	lastAged bool
	until    int
	seq      uint64
	ewma     float64
	cur      int64
	bytes    int64
}

type modelEntry struct {
	queued  bool
	seq     uint64 // push order
	enq     uint64 // picks at push
	ahead   int    // Len at push
	bound   bool   // owned by the queue
	weighed bool   // weight valid for the open epoch and priority
	ewma    float64
	cur     int64
	bytes   int64
	levels  [2]uint8 // quantised cpu and mem shares
}

func (m *model) closeEpoch() {
	a := m.cfg.Alpha
	m.ewma = a*float64(m.cur) + (1-a)*m.ewma
	m.cur = 0
	for i := range m.es {
		e := &m.es[i]
		e.ewma = a*float64(e.cur) + (1-a)*e.ewma
		e.cur = 0
		e.weighed = false
	}
	m.until = m.cfg.EpochPicks
}

func (m *model) weight(e *modelEntry, prio int) float64 {
	var cpu, mem float64
	if m.ewma > 0 {
		cpu = min(e.ewma/m.ewma, 1)
	}
	if m.bytes > 0 {
		mem = float64(e.bytes) / float64(m.bytes)
	}
	cpu, mem = quantize(cpu, &e.levels[0]), quantize(mem, &e.levels[1])
	c := m.cfg.Coefficients
	return c.Priority*float64(prio)/100 + c.CPU*(1-cpu) + c.Mem*(1-mem)
}

func (m *model) len() int {
	n := 0
	for _, e := range m.es {
		if e.queued {
			n++
		}
	}
	return n
}

func TestRandomOpsAgainstModel(t *testing.T) {
	cases := []struct {
		name string
		cfg  func(r *rand.Rand) Config
	}{
		{"default", func(*rand.Rand) Config { return DefaultConfig() }},
		{"small", func(*rand.Rand) Config {
			return Config{Coefficients: Coefficients{0.6, 0.2, 0.2}, Buckets: 4, EpochPicks: 3, MaxWait: 2, Alpha: 0.5}
		}},
		{"one bucket", func(*rand.Rand) Config {
			return Config{Coefficients: Coefficients{1, 1, 1}, Buckets: 1, EpochPicks: 7, MaxWait: 5, Alpha: 1}
		}},
		{"random", func(r *rand.Rand) Config {
			return Config{
				Coefficients: Coefficients{r.Float64() * 2, r.Float64(), r.Float64()},
				Buckets:      1 + r.IntN(MaxBuckets),
				EpochPicks:   1 + r.IntN(40),
				MaxWait:      1 + r.IntN(30),
				Alpha:        0.05 + 0.95*r.Float64(),
			}
		}},
	}
	for _, tc := range cases {
		for seed := uint64(1); seed <= 4; seed++ {
			r := rand.New(rand.NewPCG(seed, 0xda7a))
			cfg := tc.cfg(r)
			t.Run(tc.name, func(t *testing.T) { runModel(t, r, cfg, 4000) })
		}
	}
}

func runModel(t *testing.T, r *rand.Rand, cfg Config, steps int) {
	q := mustNew[int](t, cfg)
	const n = 24
	es := make([]Entry[int], n)
	m := &model{cfg: cfg, es: make([]modelEntry, n), until: cfg.EpochPicks}
	for i := range es {
		es[i].Value = i
		if err := es[i].SetPriority(r.IntN(101)); err != nil {
			t.Fatal(err)
		}
	}
	for step := range steps {
		i := r.IntN(n)
		e, me := &es[i], &m.es[i]
		var op string
		switch k := r.IntN(100); {
		case k < 35:
			op = "push"
			wasQueued := me.queued
			q.Push(e)
			if !wasQueued {
				if !me.weighed {
					want := m.weight(me, e.Priority())
					if got := e.Weight(); math.Abs(got-want) > 1e-9*cfg.Coefficients.Sum() {
						t.Fatalf("step %d: entry %d weight %.12f, model %.12f", step, i, got, want)
					}
					if b := want * float64(cfg.Buckets) / cfg.Coefficients.Sum(); math.Abs(float64(e.bucket)-min(b, float64(cfg.Buckets-1))) > 1 {
						t.Fatalf("step %d: entry %d bucket %d for weight %v", step, i, e.bucket, want)
					}
					me.weighed = true
				}
				me.ahead = m.len()
				me.queued, me.bound = true, true
				me.seq, me.enq = m.seq, m.picks
				m.seq++
			}
		case k < 70:
			op = "pop"
			got, ok := q.Pop()
			if ok != (m.len() > 0) {
				t.Fatalf("step %d: Pop ok = %v with %d in model", step, ok, m.len())
			}
			if !ok {
				break
			}
			// The model's choice: the oldest of the heaviest bucket, or the
			// oldest overall if it is aged and the last pick was not.
			head, oldest := -1, -1
			for j := range m.es {
				if !m.es[j].queued {
					continue
				}
				if oldest < 0 || m.es[j].seq < m.es[oldest].seq {
					oldest = j
				}
				if head < 0 || es[j].bucket > es[head].bucket ||
					es[j].bucket == es[head].bucket && m.es[j].seq < m.es[head].seq {
					head = j
				}
			}
			want := head
			aged := oldest != head && !m.lastAged && m.picks-m.es[oldest].enq >= uint64(cfg.MaxWait)
			if aged {
				want = oldest
			}
			m.lastAged = aged
			if got.Value != want {
				t.Fatalf("step %d: Pop = %d, model wants %d (head %d, oldest %d, aged %v)", step, got.Value, want, head, oldest, aged)
			}
			w := &m.es[want]
			if wait := m.picks - w.enq; wait > uint64(cfg.WaitBound(w.ahead)) {
				t.Fatalf("step %d: entry %d waited %d picks, bound %d", step, want, wait, cfg.WaitBound(w.ahead))
			}
			w.queued = false
			m.picks++
			if m.until--; m.until == 0 {
				m.closeEpoch()
			}
		case k < 78:
			op = "remove"
			q.Remove(e)
			me.queued = false
		case k < 90:
			op = "account"
			nanos := r.Int64N(10_000) - 100 // sometimes negative: counts as 0
			bytes := r.Int64N(1 << 16)
			if r.IntN(4) == 0 {
				bytes = 0
			}
			q.Account(e, nanos, r.IntN(64), bytes)
			me.bound = true
			me.cur += max(nanos, 0)
			m.cur += max(nanos, 0)
			m.bytes += bytes - me.bytes
			me.bytes = bytes
		case k < 94:
			op = "epoch"
			q.closeEpoch()
			m.closeEpoch()
		case k < 97:
			op = "priority"
			if err := e.SetPriority(r.IntN(101)); err != nil {
				t.Fatal(err)
			}
			me.weighed = false
		default:
			op = "forget"
			q.Forget(e)
			if me.bound {
				m.bytes -= me.bytes
				*me = modelEntry{}
			}
		}
		if err := q.verify(); err != nil {
			t.Fatalf("step %d (%s %d): verify: %v", step, op, i, err)
		}
		if q.Len() != m.len() || q.bytes != m.bytes {
			t.Fatalf("step %d (%s): Len %d bytes %d, model %d and %d", step, op, q.Len(), q.bytes, m.len(), m.bytes)
		}
		if q.ewma != m.ewma {
			t.Fatalf("step %d (%s): loop EWMA %v, model %v", step, op, q.ewma, m.ewma)
		}
	}
	if st := q.Stats(); st.Picks != m.picks || st.AgedPicks == 0 && cfg.MaxWait < 10 && cfg.Buckets > 1 {
		t.Fatalf("stats %+v, model picks %d", st, m.picks)
	}
}

func TestZeroAllocs(t *testing.T) {
	q := mustNew[int](t, DefaultConfig())
	es := make([]Entry[int], 64)
	for i := range es {
		if err := es[i].SetPriority(i); err != nil {
			t.Fatal(err)
		}
		q.Push(&es[i])
	}
	cases := []struct {
		name string
		f    func()
	}{
		{"Pop+Push", func() {
			e, _ := q.Pop()
			q.Push(e)
		}},
		{"Remove+Push", func() {
			e := &es[7]
			q.Remove(e)
			q.Push(e)
		}},
		{"Pop+Account+Push", func() {
			e, _ := q.Pop()
			q.Account(e, 1000, 8, 512)
			q.Push(e)
		}},
		{"epoch+reweigh", func() {
			q.closeEpoch()
			e, _ := q.Pop()
			q.Push(e) // recomputes the weight
		}},
		{"Forget+Push", func() {
			e := &es[9]
			q.Forget(e)
			q.Push(e)
		}},
	}
	for _, tc := range cases {
		if n := testing.AllocsPerRun(1000, tc.f); n != 0 {
			t.Errorf("%s: %v allocs per run, want 0", tc.name, n)
		}
	}
	check(t, q, "after alloc runs")
}

func TestQuantizeHysteresis(t *testing.T) {
	var level uint8
	steps := []struct {
		share, want float64
	}{
		{0, 0},
		{0.17, 0},    // within half a step plus the band of 0
		{0.18, 0.25}, // past it: round to the nearest quarter
		{0.5, 0.5},   // a jump goes straight to its step
		{0.55, 0.5},  // noise around a step keeps it
		{0.33, 0.5},  // still inside the band below
		{0.3, 0.25},  // past it
		{0.999, 1},   // a hog
		{0.85, 1},    // stays
		{0.0001, 0},  // a light entry
	}
	for i, s := range steps {
		if got := quantize(s.share, &level); got != s.want {
			t.Fatalf("step %d: quantize(%v) = %v, want %v", i, s.share, got, s.want)
		}
	}
}
