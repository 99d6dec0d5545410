package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentloop/agentloop/engine"
)

// Errors of the cluster, besides the engine's own, which cross the wire
// unchanged (errors.Is matches the engine's sentinels on the requester's
// node).
var (
	// ErrOwnerLost is the error of a request whose owner node was declared
	// lost, or left, before it answered.
	ErrOwnerLost = errors.New("cluster: owner node lost")
	// ErrNotJoined is the error of a call on a node that has not joined or
	// has closed.
	ErrNotJoined = errors.New("cluster: node not joined")
	// ErrRemotePanic is what a requester sees for a request whose remote
	// handler panicked (the engine's *PanicError does not cross the wire).
	ErrRemotePanic = errors.New("cluster: remote handler panicked")
	// ErrInvalidConfig is the error of a Config that cannot work.
	ErrInvalidConfig = errors.New("cluster: invalid config")
	// ErrSlowConsumer is the reason of a dead letter for a send that never
	// reached its owner's engine: dropped on the way, because the owner's
	// connection (or the NATS server's buffer for it) was full.
	ErrSlowConsumer = errors.New("cluster: dropped by a slow consumer")
)

// Config configures a Node.
type Config struct {
	// Name names the node: unique in the cluster, a valid NATS subject
	// token (no '.', '*', '>' or space), at most MaxNameLen bytes.
	Name string
	// URL is the NATS server's, as nats.Connect takes it.
	URL string
	// Prefix starts every subject the node uses; default "agentloop".
	Prefix string
	// Heartbeat is how often the node announces itself; default 500 ms.
	Heartbeat time.Duration
	// LostAfter is how long without a heartbeat makes a member lost;
	// default 3 s. It must exceed Heartbeat.
	LostAfter time.Duration
	// LocalTypes are the agent types every node owns for itself: their
	// IDs never leave the node.
	LocalTypes []string
	// Figures, when set, gives the figures each heartbeat carries (see
	// Figures); called on the heartbeat goroutine.
	Figures func() Figures
	// Weighted makes the listed agent types placed by headroom (see
	// Weights) instead of by plain rendezvous hashing.
	Weighted map[string]Weights
	// OnEvent, when set, hears every membership change, on the node's own
	// goroutine: it must not block.
	OnEvent func(Event)
	// Drain bounds each wait of a graceful leave (the members'
	// acknowledgements, the engine going idle, the last sends'
	// confirmations); a new owner waits twice as long for a leaver's
	// handoff before it takes the leaver's agents without their state.
	// Default 5 s.
	Drain time.Duration
	// BlockFor bounds how long a send from another node waits for room in
	// a Block mailbox; then it is refused (ErrMailboxFull, a DeadLetter on
	// the sending node). While it waits, the frames behind it to this node
	// wait too, in the NATS client's buffer (PendingLimit). Default 1 s.
	BlockFor time.Duration
	// PendingLimit bounds the frames the NATS client buffers for each of
	// the node's subscriptions; past it NATS drops them (slow consumer):
	// the sends among them are reported to their senders as dead letters
	// with ErrSlowConsumer. Default nats.DefaultSubPendingMsgsLimit.
	PendingLimit int
	// MaxHandoff bounds the snapshot a leaving node hands to each member;
	// default 64 MiB. A larger one is not handed off: its agents are
	// re-created without their state.
	MaxHandoff int
	// JetStream makes the sends to agents on other nodes durable: they go
	// through a JetStream work-queue stream, and a lost owner's agents are
	// not re-homed but wait for it (see the package documentation). Every
	// node of a cluster must set it alike; the NATS server must have
	// JetStream enabled.
	JetStream bool
	// Stream names the JetStream stream; default the prefix upper-cased,
	// with '.' as '_', and "_SENDS" (AGENTLOOP_SENDS).
	Stream string
}

// EventKind tells a membership event's kind.
type EventKind uint8

// The membership events.
const (
	MemberJoined EventKind = 1 + iota // a node was heard from for the first time
	MemberLeft                        // a node left gracefully
	MemberLost                        // a node stopped heartbeating for LostAfter
)

func (k EventKind) String() string {
	switch k {
	case MemberJoined:
		return "joined"
	case MemberLeft:
		return "left"
	case MemberLost:
		return "lost"
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Event is a membership change seen by one node.
type Event struct {
	Kind    EventKind
	Node    string
	Members []string // the live members after the change, sorted
}

// Stats are a node's counters. Of the sends this node carried to other
// nodes (Sent), each is at any time in exactly one of Confirmed, Nacked,
// Lost, Dropped and InFlight: Sent = Confirmed + Nacked + Lost + Dropped +
// InFlight, and once the cluster is quiet InFlight is 0. The sends this
// node holds for a leaver's handoff (Held) are in no engine yet: the
// cluster is quiet once InFlight and Held are 0 on every node.
type Stats struct {
	SentFrames, ReceivedFrames uint64
	Corrupt                    uint64 // frames dropped because they did not decode

	Sent      uint64 // sends to agents owned by other nodes, handed to NATS
	Confirmed uint64 // of those, taken by the owner's engine (acknowledged)
	Nacked    uint64 // refused by the owner (a full mailbox, an unknown type...): dead letters
	Lost      uint64 // not confirmed when the owner was lost, or restarted: dead letters
	Dropped   uint64 // dropped on the way by a slow consumer (ErrSlowConsumer): dead letters
	InFlight  uint64 // neither confirmed nor reported yet

	RemoteDelivered uint64 // sends from other nodes taken by this engine
	RemoteRefused   uint64 // sends from other nodes this engine refused
	HeldRefused     uint64 // sends held for a handoff that this engine then refused: dead letters
	Held            uint64 // sends and requests held for a leaver's handoff, not handed to the engine yet
	SlowConsumer    uint64 // frames NATS dropped on this node's subscriptions

	HandedOff       uint64 // agents (with state) this node handed to others on leaving
	HandoffRestored uint64 // agents re-created here from a leaver's handoff
	HandoffSkipped  uint64 // agents of a handoff not re-created here (see engine.Restore)
}

// DeadLetter is a send that was not delivered, reported on the node that
// made it: refused by its owner, lost with its owner, or dropped on the
// way. Reason matches the engine's sentinels, ErrOwnerLost or
// ErrSlowConsumer through errors.Is. Payload aliases no buffer of the
// caller's.
type DeadLetter struct {
	From, To engine.AgentID
	Payload  []byte
	Reason   error
}

// Node joins one engine to the cluster. Make it with New, pass it to
// engine.New with engine.WithCluster, then Join.
type Node struct {
	cfg      Config
	local    map[string]bool
	subjNode string // prefix.node.<name>: frames for this node
	subjHB   string
	subjPub  string // prefix.pub.
	subjJS   string // prefix.js.: the stream's subjects, one per owner node

	view atomic.Pointer[[]string] // the members placement is over, sorted, this node included
	live atomic.Pointer[[]string] // the live ones among them
	// placeFigs is joinFigs as of the view (weighted placement reads it
	// without the lock); replaced, never modified.
	placeFigs atomic.Pointer[map[string]Figures]
	joined    Figures // this node's figures at Join

	nc   *nats.Conn
	e    *engine.Engine
	subs []*nats.Subscription

	js       jetstream.JetStream // with Config.JetStream
	cons     jetstream.Consumer
	iter     jetstream.MessagesContext
	consDone chan struct{}
	seq      atomic.Uint64
	inc      uint32 // this incarnation's, in every frame

	// route orders routing decisions against membership changes: a send
	// chooses its owner and publishes under the read lock, a leave changes
	// the view under the write lock.
	route   sync.RWMutex
	leaving atomic.Bool
	shut    atomic.Bool  // closed
	awaitN  atomic.Int32 // len(awaiting), read by Owns without the lock

	blockCtxs sync.Pool // *blockCtx

	outMu sync.Mutex
	out   map[string]*outbox
	inMu  sync.Mutex
	in    map[string]*inbound

	mu       sync.Mutex
	lastSeen map[string]time.Time
	figures  map[string]Figures
	joinFigs map[string]Figures // each member's figures at its join, this node's included
	pending  map[uint64]*pendingReq
	closed   bool
	incs     map[string]uint32    // each member's incarnation
	gone     map[string]uint32    // incarnations that left: their heartbeats are ignored
	awaiting map[string]*awaiting // leavers whose handoff is awaited
	parked   map[string]Figures   // with JetStream: lost members that still own their IDs
	leaveAck chan string

	onDead func(DeadLetter)

	stopHB chan struct{}
	hbDone chan struct{}
	hbOnce sync.Once

	sent, received, corrupt, nacked, delivered, refused  atomic.Uint64
	tracked, confirmed, lost, dropped, heldRefused, slow atomic.Uint64
	handedOff, restored, skipped, held                   atomic.Uint64
}

type pendingReq struct {
	node  string
	done  func([]byte, error)
	timer *time.Timer
}

// New checks cfg and returns a node that owns every ID until it joins.
func New(cfg Config) (*Node, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "agentloop"
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 500 * time.Millisecond
	}
	if cfg.LostAfter == 0 {
		cfg.LostAfter = 3 * time.Second
	}
	if cfg.Drain == 0 {
		cfg.Drain = 5 * time.Second
	}
	if cfg.MaxHandoff == 0 {
		cfg.MaxHandoff = 64 << 20
	}
	if cfg.BlockFor == 0 {
		cfg.BlockFor = time.Second
	}
	if cfg.Stream == "" {
		cfg.Stream = streamName(cfg.Prefix)
	}
	if cfg.PendingLimit == 0 {
		cfg.PendingLimit = nats.DefaultSubPendingMsgsLimit
	}
	switch {
	case !validToken(cfg.Name):
		return nil, fmt.Errorf("%w: node name %q", ErrInvalidConfig, cfg.Name)
	case cfg.Heartbeat < 0 || cfg.LostAfter <= cfg.Heartbeat:
		return nil, fmt.Errorf("%w: heartbeat %v, lost after %v", ErrInvalidConfig, cfg.Heartbeat, cfg.LostAfter)
	case !validWeights(cfg.Weighted):
		return nil, fmt.Errorf("%w: weighted placement coefficients %v: want each in [0, 1], summing to 1", ErrInvalidConfig, cfg.Weighted)
	case cfg.JetStream && !validToken(cfg.Stream):
		return nil, fmt.Errorf("%w: stream name %q", ErrInvalidConfig, cfg.Stream)
	case cfg.Drain < 0 || cfg.MaxHandoff < 0 || cfg.BlockFor < 0 || cfg.PendingLimit < 0:
		return nil, fmt.Errorf("%w: drain %v, block for %v, max handoff %d, pending limit %d",
			ErrInvalidConfig, cfg.Drain, cfg.BlockFor, cfg.MaxHandoff, cfg.PendingLimit)
	}
	n := &Node{
		cfg:      cfg,
		local:    map[string]bool{},
		subjNode: cfg.Prefix + ".node." + cfg.Name,
		subjHB:   cfg.Prefix + ".hb",
		subjPub:  cfg.Prefix + ".pub.",
		subjJS:   cfg.Prefix + ".js.",
		lastSeen: map[string]time.Time{},
		figures:  map[string]Figures{},
		joinFigs: map[string]Figures{},
		pending:  map[uint64]*pendingReq{},
		incs:     map[string]uint32{},
		gone:     map[string]uint32{},
		awaiting: map[string]*awaiting{},
		parked:   map[string]Figures{},
		out:      map[string]*outbox{},
		in:       map[string]*inbound{},
		inc:      newIncarnation(),
		leaveAck: make(chan string, 1024),
	}
	for _, t := range cfg.LocalTypes {
		n.local[t] = true
	}
	n.view.Store(&[]string{cfg.Name})
	n.live.Store(&[]string{cfg.Name})
	n.placeFigs.Store(&map[string]Figures{})
	return n, nil
}

// newIncarnation returns a nonzero number that tells this node apart from
// an earlier one of the same name.
func newIncarnation() uint32 {
	for {
		if v := uint32(rand.Uint64()); v != 0 {
			return v
		}
	}
}

func validToken(s string) bool {
	if s == "" || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == '.' || c == '*' || c == '>' || c == 0x7f {
			return false
		}
	}
	return true
}

// OnDeadLetter sets the function told of each send another node refused.
// Call it before Join.
func (n *Node) OnDeadLetter(f func(DeadLetter)) { n.onDead = f }

// Join connects to NATS, subscribes and starts heartbeating, for engine
// e, which must have been made WithCluster(n). Membership builds up as
// heartbeats arrive: wait for MemberJoined events (or Members) before
// relying on placement.
func (n *Node) Join(e *engine.Engine) error {
	nc, err := nats.Connect(n.cfg.URL, nats.NoEcho(), nats.Name(n.cfg.Name),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				n.countSlow()
			}
			slog.Warn("cluster: NATS error", "node", n.cfg.Name, "err", err)
		}))
	if err != nil {
		return fmt.Errorf("cluster: node %s: connect: %w", n.cfg.Name, err)
	}
	n.nc, n.e = nc, e
	if n.cfg.Figures != nil {
		n.joined = n.cfg.Figures()
	}
	n.mu.Lock()
	n.joinFigs[n.cfg.Name] = clampFigures(n.joined)
	n.rebuildLocked()
	n.mu.Unlock()
	if n.cfg.JetStream {
		// Before the subscriptions: their goroutines read n.js.
		if err := n.joinStream(); err != nil {
			nc.Close()
			return fmt.Errorf("cluster: node %s: jetstream: %w", n.cfg.Name, err)
		}
	}
	for subj, h := range map[string]nats.MsgHandler{
		n.subjNode:                            n.onFrame,
		n.subjHB:                              n.onFrame,
		n.subjPub + ">":                       n.onFrame,
		n.cfg.Prefix + ".reply." + n.cfg.Name: n.onFrame,
	} {
		s, err := nc.Subscribe(subj, h)
		if err == nil {
			err = s.SetPendingLimits(n.cfg.PendingLimit, nats.DefaultSubPendingBytesLimit)
		}
		if err != nil {
			n.stopStream()
			nc.Close()
			return fmt.Errorf("cluster: node %s: subscribe %s: %w", n.cfg.Name, subj, err)
		}
		n.subs = append(n.subs, s)
	}
	if err := nc.Flush(); err != nil {
		n.stopStream()
		nc.Close()
		return fmt.Errorf("cluster: node %s: %w", n.cfg.Name, err)
	}
	n.stopHB, n.hbDone = make(chan struct{}), make(chan struct{})
	go n.heartbeat()
	return nil
}

// Close stops heartbeating and disconnects, without a leave: the other
// nodes declare this one lost after LostAfter. Requests still waiting
// fail with ErrNotJoined. Stop the engine after Close.
func (n *Node) Close() {
	n.mu.Lock()
	if n.closed || n.nc == nil {
		n.mu.Unlock()
		return
	}
	n.closed = true
	n.shut.Store(true)
	pend := n.pending
	n.pending = map[uint64]*pendingReq{}
	n.mu.Unlock()
	n.stopHeartbeat()
	n.stopStream()
	n.countSlow()
	n.nc.Close()
	for _, p := range pend {
		p.timer.Stop()
		p.done(nil, fmt.Errorf("%w: %s", ErrNotJoined, n.cfg.Name))
	}
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Members returns the live members this node knows of, itself included,
// sorted. With Config.JetStream, placement is also over the lost members
// that did not leave (see the package documentation).
func (n *Node) Members() []string { return slices.Clone(*n.live.Load()) }

// MemberFigures returns the figures of each other live member's last
// heartbeat.
func (n *Node) MemberFigures() map[string]Figures {
	n.mu.Lock()
	defer n.mu.Unlock()
	return maps.Clone(n.figures)
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	n.countSlow()
	// The send counters change under outMu: read together they add up.
	n.outMu.Lock()
	st := Stats{
		Sent: n.tracked.Load(), Confirmed: n.confirmed.Load(), Nacked: n.nacked.Load(),
		Lost: n.lost.Load(), Dropped: n.dropped.Load(), InFlight: n.inFlightLocked(),
	}
	n.outMu.Unlock()
	st.SentFrames, st.ReceivedFrames, st.Corrupt = n.sent.Load(), n.received.Load(), n.corrupt.Load()
	st.RemoteDelivered, st.RemoteRefused = n.delivered.Load(), n.refused.Load()
	st.HeldRefused, st.Held, st.SlowConsumer = n.heldRefused.Load(), n.held.Load(), n.slow.Load()
	st.HandedOff, st.HandoffRestored, st.HandoffSkipped = n.handedOff.Load(), n.restored.Load(), n.skipped.Load()
	return st
}

func (n *Node) heartbeat() {
	defer close(n.hbDone)
	t := time.NewTicker(n.cfg.Heartbeat)
	defer t.Stop()
	for {
		var fig Figures
		if n.cfg.Figures != nil {
			fig = n.cfg.Figures()
		}
		_ = n.publish(n.subjHB, &Frame{Kind: KindHeartbeat, Payload: appendHeartbeat(nil, fig, n.joined)})
		n.flushAcks()
		n.probe()
		if !n.leaving.Load() {
			// A leaver ignores the members' heartbeats: it must not
			// declare them lost while it drains.
			n.expire(time.Now())
		}
		select {
		case <-t.C:
		case <-n.stopHB:
			return
		}
	}
}

// stopHeartbeat stops the heartbeat goroutine and waits for it; once.
func (n *Node) stopHeartbeat() {
	n.hbOnce.Do(func() {
		close(n.stopHB)
		<-n.hbDone
	})
}

// countSlow records how many messages NATS dropped on the node's
// subscriptions (slow consumer).
func (n *Node) countSlow() {
	var total uint64
	for _, s := range n.subs {
		if d, err := s.Dropped(); err == nil && d > 0 {
			total += uint64(d)
		}
	}
	for {
		old := n.slow.Load()
		if total <= old || n.slow.CompareAndSwap(old, total) {
			return
		}
	}
}

// expire declares lost every member not heard from for LostAfter.
func (n *Node) expire(now time.Time) {
	n.mu.Lock()
	var lost []string
	for name, t := range n.lastSeen {
		if now.Sub(t) > n.cfg.LostAfter {
			lost = append(lost, name)
		}
	}
	n.mu.Unlock()
	for _, name := range lost {
		n.memberGone(MemberLost, name, false)
	}
}

// heard records a heartbeat from name's incarnation inc, a join when it
// is new. A known name with another incarnation restarted: the earlier one
// is lost first.
func (n *Node) heard(name string, inc uint32, fig, joined Figures) {
	n.mu.Lock()
	if n.gone[name] == inc || n.leaving.Load() || n.closed {
		n.mu.Unlock()
		return // a leaver's last heartbeats; or this node is leaving
	}
	old, known := n.incs[name]
	if known && old == inc {
		n.lastSeen[name] = time.Now()
		n.figures[name] = fig
		n.mu.Unlock()
		return
	}
	if _, waiting := n.awaiting[name]; waiting && !known {
		// A node back under the name of a leaver whose handoff has not
		// come yet joins at a heartbeat after it: until then what this
		// node sent the leaver is not settled, and the settling (by the
		// leaver's name) must not reach the sends to its successor.
		n.mu.Unlock()
		return
	}
	n.mu.Unlock()
	if known {
		n.memberGone(MemberLost, name, true)
	}
	n.route.Lock() // a join moves IDs: no send is choosing an owner
	n.mu.Lock()
	_, waiting := n.awaiting[name]
	if _, again := n.incs[name]; again || waiting || n.gone[name] == inc || n.closed || n.leaving.Load() {
		n.mu.Unlock()
		n.route.Unlock()
		return
	}
	n.incs[name] = inc
	delete(n.parked, name)
	n.lastSeen[name] = time.Now()
	n.figures[name] = fig
	n.joinFigs[name] = joined
	members := n.rebuildLocked()
	n.mu.Unlock()
	n.addressed(name, inc)
	n.route.Unlock()
	n.event(Event{Kind: MemberJoined, Node: name, Members: members})
}

// memberGone drops a member that was lost (or restarted): the requests
// waiting on it fail, and a handoff awaited from it is given up. The sends
// waiting on a lost member fail; those waiting on a restarted one are
// settled by the new incarnation, as lost: it nacks those that reach it
// (they are addressed to the earlier incarnation, see onSend), and its
// first acknowledgement says which it never saw (a probe at the next
// heartbeat makes sure it sends one).
func (n *Node) memberGone(kind EventKind, name string, restarted bool) {
	n.route.Lock()
	n.mu.Lock()
	if _, ok := n.incs[name]; !ok {
		n.mu.Unlock()
		n.route.Unlock()
		return
	}
	if n.js != nil && kind == MemberLost {
		n.parked[name] = n.joinFigs[name] // its IDs wait for it
	}
	delete(n.lastSeen, name)
	delete(n.figures, name)
	delete(n.incs, name)
	delete(n.joinFigs, name)
	members := n.rebuildLocked()
	failed := n.takePendingLocked(name)
	n.mu.Unlock()
	n.route.Unlock()
	n.inMu.Lock()
	delete(n.in, name)
	n.inMu.Unlock()
	n.failRequests(failed, fmt.Errorf("%w: %s %s", ErrOwnerLost, name, kind))
	if !restarted && n.js == nil {
		n.failOutbox(name, fmt.Errorf("%w: %s %s before confirming it", ErrOwnerLost, name, kind))
	}
	n.release(name)
	n.event(Event{Kind: kind, Node: name, Members: members})
}

func (n *Node) takePendingLocked(name string) []*pendingReq {
	var failed []*pendingReq
	for seq, p := range n.pending {
		if p.node == name {
			delete(n.pending, seq)
			failed = append(failed, p)
		}
	}
	return failed
}

func (n *Node) failRequests(ps []*pendingReq, err error) {
	for _, p := range ps {
		p.timer.Stop()
		p.done(nil, err)
	}
}

// rebuildLocked publishes a new view from lastSeen (and parked) and
// returns the live members; a leaving node is not in its own view.
func (n *Node) rebuildLocked() []string {
	var v []string
	if !n.leaving.Load() {
		v = append(v, n.cfg.Name)
	}
	for name := range n.lastSeen {
		v = append(v, name)
	}
	slices.Sort(v)
	live := v
	figs := maps.Clone(n.joinFigs)
	if len(n.parked) > 0 {
		v = slices.Clone(v)
		for name, f := range n.parked {
			v = append(v, name)
			figs[name] = f
		}
		slices.Sort(v)
	}
	n.placeFigs.Store(&figs)
	n.view.Store(&v)
	n.live.Store(&live)
	return slices.Clone(live)
}

func (n *Node) event(ev Event) {
	slog.Debug("cluster: membership", "node", n.cfg.Name, "event", ev.Kind.String(), "member", ev.Node, "members", len(ev.Members))
	if n.cfg.OnEvent != nil {
		n.cfg.OnEvent(ev)
	}
}

// encode stamps f and encodes it.
func (n *Node) encode(f *Frame) ([]byte, error) {
	f.Node, f.Inc, f.Timestamp = n.cfg.Name, n.inc, time.Now().UnixNano()
	if f.Seq == 0 {
		f.Seq = n.seq.Add(1)
	}
	return AppendFrame(nil, f)
}

// publish stamps f and sends it on subj.
func (n *Node) publish(subj string, f *Frame) error {
	b, err := n.encode(f)
	if err != nil {
		return err
	}
	if err := n.nc.Publish(subj, b); err != nil {
		return fmt.Errorf("cluster: node %s: publish %s: %w", n.cfg.Name, subj, err)
	}
	n.sent.Add(1)
	return nil
}

// onFrame handles every frame that arrives, on the subscription's
// goroutine (one per subscription, so frames of one subject are handled in
// the order they arrived).
func (n *Node) onFrame(m *nats.Msg) { n.handle(m.Subject, m.Data) }

// handle handles a frame that arrived on subj.
func (n *Node) handle(subj string, data []byte) {
	f, err := DecodeFrame(data)
	if err != nil {
		n.corrupt.Add(1)
		slog.Warn("cluster: frame dropped", "node", n.cfg.Name, "subject", subj, "err", err)
		return
	}
	n.received.Add(1)
	if f.Node == n.cfg.Name {
		return
	}
	switch f.Kind {
	case KindHeartbeat:
		fig, joined, err := decodeHeartbeat(f.Payload)
		if err != nil {
			n.corrupt.Add(1)
			return
		}
		n.heard(f.Node, f.Inc, fig, joined)
	case KindLeave:
		n.onLeave(&f)
	case KindSend:
		n.onSend(&f)
	case KindNack:
		if n.addressedHere(&f) {
			n.onNack(&f)
		} // else for an earlier incarnation of this node, whose sends these are not
	case KindAck:
		n.onAck(&f)
	case KindRequest:
		if !n.addressedHere(&f) {
			n.answer(&f, nil, fmt.Errorf("%w: request to %s: sent to its incarnation %08x, this is %08x", ErrOwnerLost, f.To, f.ToInc, n.inc))
		} else if !n.holdRemote(&f) {
			n.onRequest(&f)
		}
	case KindReply:
		if n.addressedHere(&f) {
			n.onReply(&f)
		} // else to an earlier incarnation's request, whose number this one may reuse
	case KindPublish:
		_ = n.e.PublishLocal(f.To.Key, f.Payload)
	case KindHandoff:
		n.onHandoff(&f)
	}
}

// addressedHere reports whether f was addressed to this incarnation of
// the node, or to any.
func (n *Node) addressedHere(f *Frame) bool { return f.ToInc == 0 || f.ToInc == n.inc }

func agentID(id ID) engine.AgentID { return engine.AgentID{Type: id.Type, Key: id.Key} }
func wireID(id engine.AgentID) ID  { return ID{Type: id.Type, Key: id.Key} }

// onSend delivers a send to its local agent, or reports the refusal back
// to the sender's node; frames missing before it are reported lost.
//
// A send addressed to another incarnation of this node is not delivered:
// its sender may have declared that incarnation lost, and reported the
// send lost, before it heard of this one. It takes its Seq like any send
// and is nacked as lost (ErrOwnerLost), which settles it on its sender
// unless the loss already did.
func (n *Node) onSend(f *Frame) {
	if first, last := n.seen(f); first <= last {
		n.nack(f.Node, f.Inc, first, last, fmt.Errorf("%w: %d sends from %s missing before %d", ErrSlowConsumer, last-first+1, f.Node, f.Seq))
	}
	defer n.processed(f)
	if f.To.Type == "" {
		return // a probe: it only shows the gaps before it
	}
	if !n.addressedHere(f) {
		n.nack(f.Node, f.Inc, f.Seq, f.Seq, fmt.Errorf("%w: send to %s: sent to its incarnation %08x, this is %08x", ErrOwnerLost, f.To, f.ToInc, n.inc))
		return
	}
	if n.holdRemote(f) {
		return
	}
	n.deliver(f)
}

// deliver hands a send frame to the engine and nacks a refusal.
func (n *Node) deliver(f *Frame) {
	ctx := n.deliverCtx()
	err := n.e.DeliverRemote(ctx, agentID(f.To), f.Payload)
	n.doneCtx(ctx)
	if err == nil {
		n.delivered.Add(1)
		return
	}
	n.refused.Add(1)
	n.nack(f.Node, f.Inc, f.Seq, f.Seq, err)
}

func (n *Node) onRequest(f *Frame) {
	reply, seq, from, inc := f.Reply, f.Seq, f.From, f.Inc
	done := func(p []byte, err error) {
		n.answer(&Frame{Reply: reply, Seq: seq, From: from, Inc: inc}, p, err)
	}
	if err := n.e.RequestRemote(agentID(f.From), agentID(f.To), f.Payload, done); err != nil {
		done(nil, err)
	}
}

// answer replies to the request f with p, or err, addressed to the
// requesting incarnation.
func (n *Node) answer(f *Frame, p []byte, err error) {
	rf := Frame{Kind: KindReply, Seq: f.Seq, ToInc: f.Inc, To: f.From, Payload: p}
	if err != nil {
		rf.Code, rf.Payload = encodeErr(err)
	}
	_ = n.publish(f.Reply, &rf)
}

func (n *Node) onReply(f *Frame) {
	n.mu.Lock()
	p := n.pending[f.Seq]
	delete(n.pending, f.Seq)
	n.mu.Unlock()
	if p == nil {
		return // timed out, or the owner was declared lost first
	}
	p.timer.Stop()
	if f.Code != 0 {
		p.done(nil, decodeErr(f.Code, f.Payload))
		return
	}
	p.done(f.Payload, nil)
}
