package messaging

// A node is one level of the subscription trie, in the manner of
// nats-server's sublist: literal tokens lead to children, "*" has its own
// child, and a pattern ending in ">" stores its values on the node of the
// prefix before it (">" is always last, so it needs no child).
//
// Nodes are immutable once published in a snapshot. A writer copies the
// nodes on the path it changes and shares the rest (see [hamt]). The value
// slices follow one extra rule so that an insert can append without copying:
// only the newest snapshot ever appends to a backing array, and removals
// always build a fresh array. An older snapshot's slice is therefore never
// longer than the newest one over the same array, and the elements it can see
// are never written again.
type node[T comparable] struct {
	lits *hamt[*node[T]] // children by literal token
	one  *node[T]        // child for "*"
	rest []T             // values of the pattern <prefix>.>
	subs []T             // values of the pattern ending at this node
}

func (n *node[T]) empty() bool {
	return n.lits == nil && n.one == nil && len(n.rest) == 0 && len(n.subs) == 0
}

// insert returns a copy of the subtree rooted at n (nil: empty) in which the
// pattern toks holds v once more.
func (n *node[T]) insert(toks []string, v T) *node[T] {
	c := &node[T]{}
	if n != nil {
		*c = *n
	}
	if len(toks) == 0 {
		c.subs = append(c.subs, v)
		return c
	}
	switch t := toks[0]; t {
	case wildRest:
		c.rest = append(c.rest, v)
	case wildOne:
		c.one = c.one.insert(toks[1:], v)
	default:
		h := hashString(t)
		child, _ := c.lits.get(h, t)
		c.lits = c.lits.set(h, t, child.insert(toks[1:], v))
	}
	return c
}

// remove returns a copy of the subtree rooted at n in which the pattern toks
// holds v once less, and whether v was there. It returns nil for a subtree
// left empty, so empty nodes are pruned on the way back up, as nats prunes
// its levels on Remove. When v is not there it returns n itself.
func (n *node[T]) remove(toks []string, v T) (*node[T], bool) {
	if n == nil {
		return nil, false
	}
	c := *n
	var ok bool
	if len(toks) == 0 {
		c.subs, ok = without(n.subs, v)
	} else {
		switch t := toks[0]; t {
		case wildRest:
			c.rest, ok = without(n.rest, v)
		case wildOne:
			c.one, ok = n.one.remove(toks[1:], v)
		default:
			h := hashString(t)
			child, _ := n.lits.get(h, t)
			if child, ok = child.remove(toks[1:], v); !ok {
				break
			}
			if child == nil {
				c.lits, _ = c.lits.delete(h, t)
			} else {
				c.lits = c.lits.set(h, t, child)
			}
		}
	}
	if !ok {
		return n, false
	}
	if c.empty() {
		return nil, true
	}
	out := c // only the result escapes: a miss allocates nothing
	return &out, true
}

// without returns a fresh copy of s without its first v, in the same order.
// It never writes to s: older snapshots may be reading it.
func without[T comparable](s []T, v T) ([]T, bool) {
	for i := range s {
		if s[i] == v {
			if len(s) == 1 {
				return nil, true
			}
			out := make([]T, 0, len(s)-1)
			return append(append(out, s[:i]...), s[i+1:]...), true
		}
	}
	return s, false
}

// match appends to parts the value slices of every pattern that matches the
// topic toks. Each pattern is one path of the trie and a topic reaches a
// given path at most once, so no slice is appended twice.
func (n *node[T]) match(toks []string, parts [][]T) [][]T {
	for i, t := range toks {
		if n == nil {
			return parts
		}
		if len(n.rest) > 0 {
			parts = append(parts, n.rest) // ">" takes toks[i:], one or more
		}
		if n.one != nil {
			parts = n.one.match(toks[i+1:], parts)
		}
		n, _ = n.lits.get(hashString(t), t)
	}
	if n != nil && len(n.subs) > 0 {
		parts = append(parts, n.subs)
	}
	return parts
}

// join returns the concatenation of parts. A single part is returned as is,
// with its capacity cut to its length so that a caller's append copies
// instead of writing into an array the trie may still append to.
func join[T any](parts [][]T) []T {
	switch len(parts) {
	case 0:
		return nil
	case 1:
		p := parts[0]
		return p[:len(p):len(p)]
	}
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]T, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
