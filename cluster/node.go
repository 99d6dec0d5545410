package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

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
	// OnEvent, when set, hears every membership change, on the node's own
	// goroutine: it must not block.
	OnEvent func(Event)
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

// Stats are a node's counters.
type Stats struct {
	SentFrames, ReceivedFrames uint64
	Corrupt                    uint64 // frames dropped because they did not decode
	Nacked                     uint64 // sends the owner refused (reported to OnDeadLetter)
	RemoteDelivered            uint64 // sends from other nodes accepted by this engine
	RemoteRefused              uint64 // sends from other nodes this engine refused
}

// DeadLetter is a send that another node refused, reported on the node
// that made it.
type DeadLetter struct {
	From, To engine.AgentID
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

	view atomic.Pointer[[]string] // live members, sorted, this node included

	nc   *nats.Conn
	e    *engine.Engine
	subs []*nats.Subscription
	seq  atomic.Uint64

	mu       sync.Mutex
	lastSeen map[string]time.Time
	figures  map[string]Figures
	pending  map[uint64]*pendingReq
	closed   bool

	onDead func(DeadLetter)

	stopHB chan struct{}
	hbDone chan struct{}

	sent, received, corrupt, nacked, delivered, refused atomic.Uint64
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
	switch {
	case !validToken(cfg.Name):
		return nil, fmt.Errorf("%w: node name %q", ErrInvalidConfig, cfg.Name)
	case cfg.Heartbeat < 0 || cfg.LostAfter <= cfg.Heartbeat:
		return nil, fmt.Errorf("%w: heartbeat %v, lost after %v", ErrInvalidConfig, cfg.Heartbeat, cfg.LostAfter)
	}
	n := &Node{
		cfg:      cfg,
		local:    map[string]bool{},
		subjNode: cfg.Prefix + ".node." + cfg.Name,
		subjHB:   cfg.Prefix + ".hb",
		subjPub:  cfg.Prefix + ".pub.",
		lastSeen: map[string]time.Time{},
		figures:  map[string]Figures{},
		pending:  map[uint64]*pendingReq{},
	}
	for _, t := range cfg.LocalTypes {
		n.local[t] = true
	}
	n.view.Store(&[]string{cfg.Name})
	return n, nil
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
			slog.Warn("cluster: NATS error", "node", n.cfg.Name, "err", err)
		}))
	if err != nil {
		return fmt.Errorf("cluster: node %s: connect: %w", n.cfg.Name, err)
	}
	n.nc, n.e = nc, e
	for subj, h := range map[string]nats.MsgHandler{
		n.subjNode:                            n.onFrame,
		n.subjHB:                              n.onFrame,
		n.subjPub + ">":                       n.onFrame,
		n.cfg.Prefix + ".reply." + n.cfg.Name: n.onFrame,
	} {
		s, err := nc.Subscribe(subj, h)
		if err != nil {
			nc.Close()
			return fmt.Errorf("cluster: node %s: subscribe %s: %w", n.cfg.Name, subj, err)
		}
		n.subs = append(n.subs, s)
	}
	if err := nc.Flush(); err != nil {
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
	pend := n.pending
	n.pending = map[uint64]*pendingReq{}
	n.mu.Unlock()
	close(n.stopHB)
	<-n.hbDone
	n.nc.Close()
	for _, p := range pend {
		p.timer.Stop()
		p.done(nil, fmt.Errorf("%w: %s", ErrNotJoined, n.cfg.Name))
	}
}

// Leave announces a graceful leave and then closes: the other nodes drop
// this one from their members at once instead of after LostAfter.
func (n *Node) Leave() error {
	if err := n.publish(n.subjHB, &Frame{Kind: KindLeave}); err != nil {
		return err
	}
	if err := n.nc.Flush(); err != nil {
		return fmt.Errorf("cluster: node %s: leave: %w", n.cfg.Name, err)
	}
	n.Close()
	return nil
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Members returns the live members this node knows of, itself included,
// sorted.
func (n *Node) Members() []string { return slices.Clone(*n.view.Load()) }

// MemberFigures returns the figures of each other live member's last
// heartbeat.
func (n *Node) MemberFigures() map[string]Figures {
	n.mu.Lock()
	defer n.mu.Unlock()
	return maps.Clone(n.figures)
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	return Stats{
		SentFrames: n.sent.Load(), ReceivedFrames: n.received.Load(), Corrupt: n.corrupt.Load(),
		Nacked: n.nacked.Load(), RemoteDelivered: n.delivered.Load(), RemoteRefused: n.refused.Load(),
	}
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
		_ = n.publish(n.subjHB, &Frame{Kind: KindHeartbeat, Payload: appendFigures(nil, fig)})
		n.expire(time.Now())
		select {
		case <-t.C:
		case <-n.stopHB:
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
			delete(n.lastSeen, name)
			lost = append(lost, name)
		}
	}
	n.mu.Unlock()
	for _, name := range lost {
		n.memberGone(MemberLost, name)
	}
}

// heard records a heartbeat from name, a join when it is new.
func (n *Node) heard(name string, fig Figures) {
	n.mu.Lock()
	_, known := n.lastSeen[name]
	n.lastSeen[name] = time.Now()
	n.figures[name] = fig
	var members []string
	if !known {
		members = n.rebuildLocked()
	}
	n.mu.Unlock()
	if !known {
		n.event(Event{Kind: MemberJoined, Node: name, Members: members})
	}
}

func (n *Node) memberGone(kind EventKind, name string) {
	n.mu.Lock()
	delete(n.lastSeen, name)
	delete(n.figures, name)
	members := n.rebuildLocked()
	var failed []*pendingReq
	for seq, p := range n.pending {
		if p.node == name {
			delete(n.pending, seq)
			failed = append(failed, p)
		}
	}
	n.mu.Unlock()
	for _, p := range failed {
		p.timer.Stop()
		p.done(nil, fmt.Errorf("%w: %s %s", ErrOwnerLost, name, kind))
	}
	n.event(Event{Kind: kind, Node: name, Members: members})
}

// rebuildLocked publishes a new view from lastSeen and returns it.
func (n *Node) rebuildLocked() []string {
	v := []string{n.cfg.Name}
	for name := range n.lastSeen {
		v = append(v, name)
	}
	slices.Sort(v)
	n.view.Store(&v)
	return slices.Clone(v)
}

func (n *Node) event(ev Event) {
	slog.Debug("cluster: membership", "node", n.cfg.Name, "event", ev.Kind.String(), "member", ev.Node, "members", len(ev.Members))
	if n.cfg.OnEvent != nil {
		n.cfg.OnEvent(ev)
	}
}

// publish stamps f and sends it on subj.
func (n *Node) publish(subj string, f *Frame) error {
	f.Node, f.Timestamp = n.cfg.Name, time.Now().UnixNano()
	if f.Seq == 0 {
		f.Seq = n.seq.Add(1)
	}
	b, err := AppendFrame(nil, f)
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
func (n *Node) onFrame(m *nats.Msg) {
	f, err := DecodeFrame(m.Data)
	if err != nil {
		n.corrupt.Add(1)
		slog.Warn("cluster: frame dropped", "node", n.cfg.Name, "subject", m.Subject, "err", err)
		return
	}
	n.received.Add(1)
	if f.Node == n.cfg.Name {
		return
	}
	switch f.Kind {
	case KindHeartbeat:
		fig, err := decodeFigures(f.Payload)
		if err != nil {
			n.corrupt.Add(1)
			return
		}
		n.heard(f.Node, fig)
	case KindLeave:
		n.memberGone(MemberLeft, f.Node)
	case KindSend:
		n.onSend(&f)
	case KindNack:
		n.nacked.Add(1)
		if n.onDead != nil {
			n.onDead(DeadLetter{From: agentID(f.To), To: agentID(f.From), Reason: decodeErr(f.Code, f.Payload)})
		}
	case KindRequest:
		n.onRequest(&f)
	case KindReply:
		n.onReply(&f)
	case KindPublish:
		_ = n.e.PublishLocal(f.To.Key, f.Payload)
	}
}

func agentID(id ID) engine.AgentID { return engine.AgentID{Type: id.Type, Key: id.Key} }
func wireID(id engine.AgentID) ID  { return ID{Type: id.Type, Key: id.Key} }

// onSend delivers a send to its local agent, or reports the refusal back
// to the sender's node.
func (n *Node) onSend(f *Frame) {
	to := agentID(f.To)
	err := n.e.DeliverRemote(context.Background(), to, f.Payload)
	if err == nil {
		n.delivered.Add(1)
		return
	}
	n.refused.Add(1)
	code, text := encodeErr(err)
	_ = n.publish(n.cfg.Prefix+".node."+f.Node, &Frame{Kind: KindNack, Code: code, From: f.To, To: f.From, Payload: text})
}

func (n *Node) onRequest(f *Frame) {
	reply, seq := f.Reply, f.Seq
	done := func(p []byte, err error) {
		rf := Frame{Kind: KindReply, Seq: seq, To: f.From, Payload: p}
		if err != nil {
			rf.Code, rf.Payload = encodeErr(err)
		}
		_ = n.publish(reply, &rf)
	}
	if err := n.e.RequestRemote(agentID(f.From), agentID(f.To), f.Payload, done); err != nil {
		done(nil, err)
	}
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
