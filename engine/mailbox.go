package engine

// mailbox is an agent's queue of messages: a power-of-two ring of Message
// values, allocated on the first push and grown as needed (the type's bound
// is enforced by loop.push and, for Reject and Block, by the senders'
// reservations in admit; not here). It is owned by the agent's loop.
//
// It is written out for Message rather than taken from internal/ring
// because it is the hottest structure of the engine: the specialised code
// moves a Message with plain stores, and lets senders fill the slot in
// place (push returns it) instead of copying a temporary.
type mailbox struct {
	buf  []Message
	head int32
	n    int32
}

const mailboxMinCap = 8

func (mb *mailbox) len() int { return int(mb.n) }

// push appends a slot and returns it for the caller to fill: every field
// of it, since a slot taken during a run is cleared only when the run
// ends (take).
func (mb *mailbox) push() *Message {
	if int(mb.n) == len(mb.buf) {
		mb.grow()
	}
	p := &mb.buf[(mb.head+mb.n)&int32(len(mb.buf)-1)]
	mb.n++
	return p
}

// pop removes the front message into *out; false when empty. The slot is
// cleared so the mailbox keeps no payload alive.
func (mb *mailbox) pop(out *Message) bool {
	if mb.n == 0 {
		return false
	}
	p := &mb.buf[mb.head]
	*out = *p
	*p = Message{}
	mb.head = (mb.head + 1) & int32(len(mb.buf)-1)
	mb.n--
	return true
}

// tryPush is push without growing: nil when the buffer is full. Small
// enough to be inlined into the fast paths of a send.
func (mb *mailbox) tryPush() *Message {
	if int(mb.n) == len(mb.buf) {
		return nil
	}
	p := &mb.buf[(mb.head+mb.n)&int32(len(mb.buf)-1)]
	mb.n++
	return p
}

// take removes the front message and returns its slot, left as it is:
// the caller reads the slot before anything may push again (a push can
// reuse it), and clears the slots it took with clearTaken. It is the
// delivery loop's pop, which saves a copy and clears a run's slots at once.
func (mb *mailbox) take() *Message {
	p := &mb.buf[mb.head]
	mb.head = (mb.head + 1) & int32(len(mb.buf)-1)
	mb.n--
	return p
}

// clearTaken clears the slots of the last k messages taken from buf
// (the mailbox's buffer when they were taken) that have not been reused
// since, so that the mailbox keeps no payload alive. Nothing is left to
// clear when the buffer has since been replaced (grown, or released).
func (mb *mailbox) clearTaken(buf []Message, k int) {
	if k == 0 || len(mb.buf) != len(buf) || &mb.buf[0] != &buf[0] {
		return
	}
	// The free slots are the len(buf)-n ones just before head; those
	// taken are the k just before head. Clear the overlap.
	k = min(k, len(buf)-int(mb.n))
	end := int(mb.head)
	if start := end - k; start >= 0 {
		clear(buf[start:end])
	} else {
		clear(buf[:end])
		clear(buf[len(buf)+start:])
	}
}

// front returns the oldest message in place, or nil when empty.
func (mb *mailbox) front() *Message {
	if mb.n == 0 {
		return nil
	}
	return &mb.buf[mb.head]
}

// release drops the buffer: an idle agent holds no mailbox memory.
func (mb *mailbox) release() {
	mb.buf, mb.head, mb.n = nil, 0, 0
}

func (mb *mailbox) grow() {
	c := 2 * len(mb.buf)
	if c == 0 {
		c = mailboxMinCap
	}
	buf := make([]Message, c)
	if mb.n > 0 {
		k := copy(buf, mb.buf[mb.head:])
		if k < int(mb.n) {
			copy(buf[k:], mb.buf[:int(mb.n)-k])
		}
	}
	mb.buf, mb.head = buf, 0
}
