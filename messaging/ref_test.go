package messaging

import (
	"slices"
	"strings"
)

// refMatch is the reference matcher the trie is checked against: split both
// on '.' and compare token by token. pattern and topic must be valid.
func refMatch(pattern, topic string) bool {
	pt, tt := strings.Split(pattern, "."), strings.Split(topic, ".")
	for i, p := range pt {
		if p == ">" {
			return len(tt) > i
		}
		if i >= len(tt) || p != "*" && p != tt[i] {
			return false
		}
	}
	return len(pt) == len(tt)
}

// A refList is the reference Sublist: a plain list of pairs.
type refList struct {
	pairs []refPair
}

type refPair struct {
	pattern string
	v       int
}

func (r *refList) insert(p string, v int) { r.pairs = append(r.pairs, refPair{p, v}) }

func (r *refList) remove(p string, v int) bool {
	for i, q := range r.pairs {
		if q == (refPair{p, v}) {
			r.pairs = slices.Delete(r.pairs, i, i+1)
			return true
		}
	}
	return false
}

// match returns the values matching topic, sorted.
func (r *refList) match(topic string) []int {
	var out []int
	for _, q := range r.pairs {
		if refMatch(q.pattern, topic) {
			out = append(out, q.v)
		}
	}
	slices.Sort(out)
	return out
}

// sorted returns a sorted copy of s, for comparing a Match with the
// reference (order across patterns is unspecified).
func sorted(s []int) []int {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
