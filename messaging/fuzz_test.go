package messaging

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// refValid is the reference validator: split on '.', check each token. It
// allows the "*" and ">" tokens (">" last only) if wild.
func refValid(s string, wild bool) bool {
	if s == "" || len(s) > MaxTopicLen || strings.IndexFunc(s, unicode.IsSpace) >= 0 {
		return false
	}
	toks := strings.Split(s, ".")
	if len(toks) > MaxTokens {
		return false
	}
	for i, tok := range toks {
		switch {
		case tok == "":
			return false
		case wild && tok == "*":
		case wild && tok == ">":
			if i != len(toks)-1 {
				return false
			}
		case strings.ContainsAny(tok, "*>"):
			return false
		}
	}
	return true
}

// FuzzMatch checks Sublist, and the validators, against the reference
// matcher and validator on random patterns and a random topic: it inserts
// the three patterns (the same value under the first and third, to exercise
// the multiset), matches, removes the second, and matches again. The seed
// corpus is in testdata/fuzz/FuzzMatch.
func FuzzMatch(f *testing.F) {
	f.Add("a.b.c", "a.*.c", "a.>", "a.b.c")
	f.Add("*", ">", "*.*", "x")
	f.Add("a.*", "*.b", "a.b", "a.b")
	f.Fuzz(func(t *testing.T, p1, p2, p3, topic string) {
		for _, wide := range []bool{false, true} {
			fuzzMatch(t, p1, p2, p3, topic, wide)
		}
	})
}

// fuzzMatch is one run of FuzzMatch. wide first subscribes five literal
// patterns beside the root and beside p1's first token, so that those
// levels are looked up by hash rather than compared one by one.
func fuzzMatch(t *testing.T, p1, p2, p3, topic string, wide bool) {
	var s Sublist[int]
	var ref refList
	if wide {
		var prefixes []string
		if first, _, _ := strings.Cut(p1, "."); refValid(p1, true) && first != "*" && first != ">" {
			prefixes = append(prefixes, first+".")
		}
		for _, pre := range append(prefixes, "") {
			for i := range 5 {
				p := fmt.Sprintf("%sz%d", pre, i)
				if err := s.Insert(p, 7); err != nil {
					t.Fatalf("Insert(%q): %v", p, err)
				}
				ref.insert(p, 7)
			}
		}
	}
	for i, p := range []string{p1, p2, p3} {
		v := i % 2 // p1 and p3 share a value
		err := s.Insert(p, v)
		if want := refValid(p, true); (err == nil) != want {
			t.Fatalf("Insert(%q) = %v, reference validity %v", p, err, want)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidPattern) {
				t.Fatalf("Insert(%q) = %v, want ErrInvalidPattern", p, err)
			}
			continue
		}
		ref.insert(p, v)
	}
	if err := s.verify(); err != nil {
		t.Fatal(err)
	}
	valid := refValid(topic, false)
	if err := ValidateTopic(topic); (err == nil) != valid {
		t.Fatalf("ValidateTopic(%q) = %v, reference validity %v", topic, err, valid)
	}
	check := func(when string) {
		t.Helper()
		var want []int
		if valid {
			want = ref.match(topic)
		}
		// Three times: the first misses, the second fills the cache and
		// the third reads it.
		for _, pass := range []string{"miss", "fill", "cached"} {
			if got := sorted(s.Match(topic)); !slices.Equal(got, want) {
				t.Fatalf("%s, %s: Match(%q) = %v, want %v (patterns %q)", when, pass, topic, got, want, ref.pairs)
			}
		}
		// One parsed Topic, matched twice: the second match reads the
		// hashes the first recorded.
		var tp Topic
		if err := tp.Parse(topic); (err == nil) != valid {
			t.Fatalf("Topic.Parse(%q) = %v, reference validity %v", topic, err, valid)
		}
		for _, pass := range []string{"first", "again"} {
			if got := sorted(s.MatchTopic(&tp)); !slices.Equal(got, want) {
				t.Fatalf("%s, MatchTopic %s: %q = %v, want %v (patterns %q)", when, pass, topic, got, want, ref.pairs)
			}
		}
	}
	check("after insert")
	if refValid(p2, true) {
		if err := s.Remove(p2, 1); err != nil {
			t.Fatalf("Remove(%q) = %v", p2, err)
		}
		ref.remove(p2, 1)
		if err := s.verify(); err != nil {
			t.Fatal(err)
		}
		check("after remove")
	}
}
