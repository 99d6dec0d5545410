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
	// over says that a topic may match two or more patterns of this
	// subtree: the values of one match may then come in several slices,
	// and a Sublist joins (and caches) them. Without it a match is one
	// slice or none, found with a walk that allocates nothing. It holds
	// when some node below has two ways on for one token ('*' beside
	// literals, or '>' beside either), which covers every topic that can
	// reach two value slices. overLits counts the children in lits whose
	// over holds, so that a copy of the path keeps it without a scan.
	over     bool
	overLits int32
}

// setOver sets n.over from n's own ways on and its children's.
func (n *node[T]) setOver() {
	hasRest := len(n.rest) > 0
	n.over = hasRest && (n.one != nil || n.lits != nil) ||
		n.one != nil && n.lits != nil ||
		n.one != nil && n.one.over ||
		n.overLits > 0
}

// overOf reports n.over for a possibly empty subtree, as a count.
func overOf[T comparable](n *node[T]) int32 {
	if n != nil && n.over {
		return 1
	}
	return 0
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
		next := child.insert(toks[1:], v)
		c.overLits += overOf(next) - overOf(child)
		c.lits = c.lits.set(h, t, next)
	}
	c.setOver()
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
			old, _ := n.lits.get(h, t)
			var child *node[T]
			if child, ok = old.remove(toks[1:], v); !ok {
				break
			}
			c.overLits += overOf(child) - overOf(old)
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
	c.setOver()
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

// match appends to parts the value slices of every pattern that matches
// tokens i and on of the topic t. Each pattern is one path of the trie and a
// topic reaches a given path at most once, so no slice is appended twice. A
// token is hashed only where a node has more literal children than a match
// compares one by one (child).
func (n *node[T]) match(t *Topic, i int, parts [][]T) [][]T {
	for ; i < t.n; i++ {
		if n == nil {
			return parts
		}
		if len(n.rest) > 0 {
			parts = append(parts, n.rest) // ">" takes tokens i and on, one or more
		}
		if n.one != nil {
			parts = n.one.match(t, i+1, parts)
		}
		if n.lits == nil {
			return parts
		}
		n = n.child(t, i)
	}
	if n != nil && len(n.subs) > 0 {
		parts = append(parts, n.subs)
	}
	return parts
}

// scanLits is the most literal children a match compares one by one
// instead of hashing the token: below it, comparing strings (mostly
// lengths) is cheaper than hashing one.
const scanLits = 4

// child returns n's literal child for token i of t, or nil. n.lits must
// not be nil.
func (n *node[T]) child(t *Topic, i int) *node[T] {
	m, tok := n.lits, t.token(i)
	if len(m.slots) <= scanLits {
		// If every slot is a leaf, they are all the keys there are.
		flat := true
		for j := range m.slots {
			s := &m.slots[j]
			if s.sub != nil {
				flat = false
				break
			}
			if s.key == tok {
				return s.val
			}
		}
		if flat {
			return nil
		}
	}
	c, _ := m.get(t.hash(i), tok)
	return c
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
