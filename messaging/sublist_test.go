package messaging

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func TestSublistMatch(t *testing.T) {
	cases := []struct {
		pattern, topic string
		want           bool
	}{
		{"a.b.c", "a.b.c", true},
		{"a.b.c", "a.b", false},
		{"a.b.c", "a.b.c.d", false},
		{"a.b.c", "a.b.x", false},
		{"a.*.c", "a.b.c", true},
		{"a.*.c", "a.xyz.c", true},
		{"a.*.c", "a.c", false},
		{"a.*.c", "a.b.b.c", false},
		{"a.*", "a.b", true},
		{"a.*", "a", false},
		{"a.*", "a.b.c", false},
		{"*", "a", true},
		{"*", "a.b", false},
		{"*.*", "a.b", true},
		{"a.>", "a.b", true},
		{"a.>", "a.b.c.d", true},
		{"a.>", "a", false},
		{"a.>", "b.c", false},
		{">", "a", true},
		{">", "a.b.c", true},
		{"*.>", "a", false},
		{"*.>", "a.b", true},
		{"a.*.>", "a.b.c", true},
		{"a.*.>", "a.b", false},
		{"*.b.*", "a.b.c", true},
		{"*.b.*", "a.c.c", false},
		{"telemetry.*.temp", "telemetry.dev-42.temp", true},
		{"telemetry.*.temp", "telemetry.dev-42.hum", false},
	}
	for _, tc := range cases {
		if got := refMatch(tc.pattern, tc.topic); got != tc.want {
			t.Fatalf("refMatch(%q, %q) = %v: the table is wrong", tc.pattern, tc.topic, got)
		}
		var s Sublist[int]
		if err := s.Insert(tc.pattern, 1); err != nil {
			t.Fatal(err)
		}
		got := s.Match(tc.topic)
		if (len(got) == 1) != tc.want || len(got) > 1 {
			t.Errorf("pattern %q, topic %q: Match = %v, want match %v", tc.pattern, tc.topic, got, tc.want)
		}
	}
}

func TestSublistInsertRemove(t *testing.T) {
	var s Sublist[int] // the zero value works
	if got := s.Match("a"); got != nil || s.Count() != 0 {
		t.Fatalf("empty list: Match = %v, Count = %d", got, s.Count())
	}
	if err := s.Remove("a", 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Remove on an empty list = %v, want ErrNotFound", err)
	}
	for _, p := range []string{"", "a..b", "a*", "a.>.b", "a b"} {
		if err := s.Insert(p, 1); !errors.Is(err, ErrInvalidPattern) {
			t.Errorf("Insert(%q) = %v, want ErrInvalidPattern", p, err)
		}
		if err := s.Remove(p, 1); !errors.Is(err, ErrInvalidPattern) {
			t.Errorf("Remove(%q) = %v, want ErrInvalidPattern", p, err)
		}
	}
	steps := []struct {
		op      string // "+" insert, "-" remove
		pattern string
		v       int
		err     error
		count   int
		match   []int // Match("a.b.c") afterwards, sorted
	}{
		{"+", "a.b.c", 1, nil, 1, []int{1}},
		{"+", "a.*.c", 2, nil, 2, []int{1, 2}},
		{"+", "a.>", 3, nil, 3, []int{1, 2, 3}},
		{"+", "a.b", 4, nil, 4, []int{1, 2, 3}},
		{"+", "a.b.c", 1, nil, 5, []int{1, 1, 2, 3}}, // a multiset
		{"-", "a.b.c", 1, nil, 4, []int{1, 2, 3}},
		{"-", "a.b.c", 2, ErrNotFound, 4, []int{1, 2, 3}}, // wrong value
		{"-", "a.*.*", 2, ErrNotFound, 4, []int{1, 2, 3}}, // wrong pattern
		{"-", "a.*.c", 2, nil, 3, []int{1, 3}},
		{"-", "a.>", 3, nil, 2, []int{1}},
		{"-", "a.b.c", 1, nil, 1, nil},
		{"-", "a.b.c", 1, ErrNotFound, 1, nil},
		{"-", "a.b", 4, nil, 0, nil},
	}
	for i, st := range steps {
		var err error
		if st.op == "+" {
			err = s.Insert(st.pattern, st.v)
		} else {
			err = s.Remove(st.pattern, st.v)
		}
		if !errors.Is(err, st.err) || (err == nil) != (st.err == nil) {
			t.Fatalf("step %d: %s%q %d = %v, want %v", i, st.op, st.pattern, st.v, err, st.err)
		}
		if err := s.verify(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := sorted(s.Match("a.b.c")); s.Count() != st.count || !slices.Equal(got, st.match) {
			t.Fatalf("step %d: Count = %d, Match = %v; want %d, %v", i, s.Count(), got, st.count, st.match)
		}
	}
	if sn := s.snap.Load(); sn.root != nil {
		t.Errorf("trie not pruned to nil once empty")
	}
}

func TestSublistOrder(t *testing.T) {
	var s Sublist[int]
	for i := range 10 {
		if err := s.Insert("a.b", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Remove("a.b", 4); err != nil {
		t.Fatal(err)
	}
	if got, want := s.Match("a.b"), []int{0, 1, 2, 3, 5, 6, 7, 8, 9}; !slices.Equal(got, want) {
		t.Errorf("Match = %v, want insertion order %v", got, want)
	}
}

// TestSublistAgainstReference runs random inserts and removes on a small
// alphabet, checks the trie after each change and every Match against the
// reference after every fourth.
func TestSublistAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	toks := []string{"a", "b", "c", "dd"}
	gen := func(wild bool) string {
		n := 1 + rng.IntN(4)
		s := ""
		for i := range n {
			if i > 0 {
				s += "."
			}
			switch r := rng.IntN(8); {
			case wild && r == 0:
				s += "*"
			case wild && r == 1 && i == n-1:
				s += ">"
			default:
				s += toks[rng.IntN(len(toks))]
			}
		}
		return s
	}
	var topics []string
	for range 60 {
		topics = append(topics, gen(false))
	}
	var s Sublist[int]
	var ref refList
	for i := range 400 {
		if len(ref.pairs) > 0 && rng.IntN(3) == 0 {
			p := ref.pairs[rng.IntN(len(ref.pairs))]
			if err := s.Remove(p.pattern, p.v); err != nil {
				t.Fatal(err)
			}
			ref.remove(p.pattern, p.v)
		} else {
			p, v := gen(true), rng.IntN(20)
			if err := s.Insert(p, v); err != nil {
				t.Fatal(err)
			}
			ref.insert(p, v)
		}
		if err := s.verify(); err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
		if i%4 != 0 {
			continue
		}
		for _, topic := range topics {
			if got, want := sorted(s.Match(topic)), ref.match(topic); !slices.Equal(got, want) {
				t.Fatalf("change %d: Match(%q) = %v, want %v", i, topic, got, want)
			}
		}
	}
}

func TestSublistMatchIsReadOnlySnapshot(t *testing.T) {
	var s Sublist[int]
	_ = s.Insert("a.b", 1)
	_ = s.Insert("a.b", 2)
	r := s.Match("a.b")
	if cap(r) != len(r) {
		t.Fatalf("Match result has spare capacity %d > %d: an append would write into the trie", cap(r), len(r))
	}
	_ = append(r, 99)
	_ = s.Insert("a.b", 3)
	if got := s.Match("a.b"); !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("Match = %v after appending to an earlier result", got)
	}
	if !slices.Equal(r, []int{1, 2}) {
		t.Fatalf("earlier result changed to %v by a later Insert", r)
	}
}

func TestSublistCache(t *testing.T) {
	var s Sublist[int]
	_ = s.Insert("a.*", 1)
	_ = s.Insert("a.>", 3) // beside "a.*": "a.b" matches both, so it is cached
	g := s.gen()
	// The first miss only remembers the topic; the second caches it.
	for i, want := range []int{0, 1, 1} {
		if got := sorted(s.Match("a.b")); !slices.Equal(got, []int{1, 3}) || s.cached() != want {
			t.Fatalf("Match #%d = %v with %d cached, want [1 3] with %d", i+1, got, s.cached(), want)
		}
	}
	for range 3 {
		if s.Match("a..b"); s.cached() != 1 {
			t.Fatalf("an invalid topic was cached")
		}
	}
	_ = s.Insert("a.b", 2)
	if s.gen() != g+1 || s.cached() != 0 {
		t.Fatalf("after Insert: gen %d -> %d, %d entries still valid", g, s.gen(), s.cached())
	}
	// A topic whose entry went stale is cached again on its first miss.
	if got := sorted(s.Match("a.b")); !slices.Equal(got, []int{1, 2, 3}) || s.cached() != 1 {
		t.Fatalf("Match after Insert = %v with %d cached", got, s.cached())
	}
	_ = s.Remove("a.*", 1)
	if got := sorted(s.Match("a.b")); !slices.Equal(got, []int{2, 3}) {
		t.Fatalf("Match after Remove = %v", got)
	}
	// A failed Remove changes nothing, so it keeps the cache.
	g = s.gen()
	if err := s.Remove("a.*", 1); !errors.Is(err, ErrNotFound) || s.gen() != g || s.cached() != 1 {
		t.Fatalf("failed Remove: %v, gen %d -> %d, cached %d", err, g, s.gen(), s.cached())
	}
}

// TestSublistMatchTopicApart: on a list where no topic can match two
// patterns (exact ones, and wildcards under distinct literal prefixes, as
// the W10 gateway subscribes), MatchTopic is right, allocates nothing and
// caches nothing, however many distinct topics it sees; a pattern that lets
// a topic match two brings the cache back, and removing it sends it away.
func TestSublistMatchTopicApart(t *testing.T) {
	var s Sublist[int]
	for i, p := range []string{"telemetry.*.*", "features.*", "aggregates.*", "alerts.>", "a.b.c", "a.b.d", "x"} {
		if err := s.Insert(p, i); err != nil {
			t.Fatal(err)
		}
	}
	var tp Topic
	match := func(topic string) []int {
		t.Helper()
		if err := tp.Parse(topic); err != nil {
			t.Fatal(err)
		}
		return s.MatchTopic(&tp)
	}
	cases := []struct {
		topic string
		want  []int
	}{
		{"telemetry.dev-1.s0", []int{0}}, {"telemetry.dev-1", nil}, {"features.dev-9", []int{1}},
		{"aggregates.3", []int{2}}, {"alerts.dev-1.anomaly", []int{3}}, {"alerts", nil},
		{"a.b.c", []int{4}}, {"a.b.d", []int{5}}, {"a.b", nil}, {"x", []int{6}}, {"y", nil},
	}
	for range 3 { // twice would be enough to cache
		for _, tc := range cases {
			if got := match(tc.topic); !slices.Equal(got, tc.want) {
				t.Fatalf("MatchTopic(%q) = %v, want %v", tc.topic, got, tc.want)
			}
		}
	}
	topics := make([]string, 4*cacheSize)
	for i := range topics {
		topics[i] = fmt.Sprintf("telemetry.dev-%d.s%d", i/4, i%4)
	}
	i := 0
	if n := testing.AllocsPerRun(len(topics)-1, func() {
		if got := match(topics[i%len(topics)]); len(got) != 1 {
			t.Fatalf("MatchTopic(%q) = %v", topics[i%len(topics)], got)
		}
		i++
	}); n != 0 {
		t.Errorf("MatchTopic allocates %v times", n)
	}
	if n := s.cached(); n != 0 {
		t.Errorf("%d topics cached on a list whose topics match one pattern at most", n)
	}
	_ = s.Insert("telemetry.>", 9)
	for range 2 {
		if got := sorted(match("telemetry.dev-1.s0")); !slices.Equal(got, []int{0, 9}) {
			t.Fatalf("MatchTopic = %v, want [0 9]", got)
		}
	}
	if n := s.cached(); n != 1 {
		t.Errorf("%d topics cached with overlapping patterns, want 1", n)
	}
	_ = s.Remove("telemetry.>", 9)
	for range 2 {
		if got := match("telemetry.dev-1.s0"); !slices.Equal(got, []int{0}) {
			t.Fatalf("MatchTopic = %v, want [0]", got)
		}
	}
	if n := s.cached(); n != 0 {
		t.Errorf("%d topics cached after the overlapping pattern left", n)
	}
}

// TestSublistCacheBounded: many distinct topics and subscription churn never
// grow the cache past its size, and a hot set survives a stream of cold
// topics.
func TestSublistCacheBounded(t *testing.T) {
	var s Sublist[int]
	_ = s.Insert("t.>", 1)
	hot := make([]string, 64)
	for i := range hot {
		hot[i] = fmt.Sprintf("t.hot.%d", i)
	}
	for i := range 20 * cacheSize {
		s.Match(fmt.Sprintf("t.cold.%d", i))
		s.Match(hot[i%len(hot)])
		if i%997 == 0 {
			_ = s.Insert("t.x", i)
		}
		if i%61 != 0 {
			continue
		}
		if n := s.cached(); n > cacheSize {
			t.Fatalf("cache holds %d entries, more than %d", n, cacheSize)
		}
	}
	// Cold topics are seen once, so they are never admitted and never evict
	// a hot one; and the churn's invalidations readmit hot topics at once.
	sn := s.snap.Load()
	for _, topic := range hot {
		if _, ok, _ := sn.cache.get(hashString(topic), sn.gen, topic); !ok {
			t.Errorf("hot topic %q not cached", topic)
		}
	}
	if n := s.cached(); n != len(hot) {
		t.Errorf("%d topics cached, want the %d hot ones", n, len(hot))
	}
}

// TestSublistCacheEviction: with more hot topics than the cache holds, it
// stays bounded and still serves most of them.
func TestSublistCacheEviction(t *testing.T) {
	var s Sublist[int]
	_ = s.Insert("t.>", 1)
	_ = s.Insert("t.*", 2) // a topic matches both: matches are cached
	topics := make([]string, 2*cacheSize)
	for i := range topics {
		topics[i] = fmt.Sprintf("t.%d", i)
	}
	for range 3 {
		for _, topic := range topics {
			if got := s.Match(topic); len(got) != 2 {
				t.Fatalf("Match(%q) = %v", topic, got)
			}
		}
	}
	if n := s.cached(); n > cacheSize || n < cacheSize/2 {
		t.Errorf("%d topics cached, want between %d and %d", n, cacheSize/2, cacheSize)
	}
}

func TestSublistMatchAllocs(t *testing.T) {
	var s Sublist[*int]
	for i := range 10 {
		_ = s.Insert("a.*.c", new(int))
		_ = s.Insert("a.>", new(int))
		_ = s.Insert(fmt.Sprintf("a.b%d.c", i), new(int))
	}
	s.Match("a.b1.c")
	if n := testing.AllocsPerRun(1000, func() { s.Match("a.b1.c") }); n != 0 {
		t.Errorf("cached Match allocates %v times", n)
	}
	if n := testing.AllocsPerRun(1000, func() { s.Match("x.y") }); n != 0 {
		t.Errorf("cached Match of a topic without subscribers allocates %v times", n)
	}
	// Topics seen once are not cached, and matching them allocates nothing
	// when they match a single pattern.
	topics := make([]string, 1000)
	for i := range topics {
		topics[i] = fmt.Sprintf("a.x%d.d", i)
	}
	i := 0
	if n := testing.AllocsPerRun(len(topics)-1, func() { s.Match(topics[i]); i++ }); n != 0 {
		t.Errorf("Match of topics seen once allocates %v times", n)
	}
}

// TestSublistRace hammers one list from several goroutines; run with -race.
func TestSublistRace(t *testing.T) {
	var s Sublist[int]
	const writers, readers, rounds = 4, 4, 300
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				p := fmt.Sprintf("r.%d.*", i%7)
				v := w*rounds + i
				if err := s.Insert(p, v); err != nil {
					t.Error(err)
					return
				}
				if err := s.Remove(p, v); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	// A value that stays subscribed must be matched by every reader, every
	// time, whatever the writers do.
	_ = s.Insert("r.>", -1)
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds * 2 {
				got := s.Match(fmt.Sprintf("r.%d.x", i%9))
				if !slices.Contains(got, -1) {
					t.Errorf("Match lost the permanent value: %v", got)
					return
				}
			}
		}()
	}
	wg.Wait()
	if s.Count() != 1 {
		t.Errorf("Count = %d after every writer removed its values, want 1", s.Count())
	}
	if err := s.verify(); err != nil {
		t.Error(err)
	}
}
