package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/agentloop/agentloop/engine"
)

// Owner returns the member that owns id in this node's view: this node
// for a local-only type, else the member with the highest rendezvous score
// (see the package documentation).
func (n *Node) Owner(id engine.AgentID) string {
	if n.local[id.Type] {
		return n.cfg.Name
	}
	return n.ownerIn(*n.view.Load(), *n.placeFigs.Load(), id)
}

// ownerIn is the owner of id among members, weighted by figs for a
// weighted type.
func (n *Node) ownerIn(members []string, figs map[string]Figures, id engine.AgentID) string {
	if len(n.cfg.Weighted) > 0 {
		if w, ok := n.cfg.Weighted[id.Type]; ok {
			return weightedOwner(members, figs, w, id)
		}
	}
	return owner(members, id)
}

// Weights are the coefficients of a weighted type's placement, α, β and
// γ: a member's headroom for the type is
//
//	CPU·CPUIdle + Mem·MemFree + Net·NetFree
//
// of the Figures it had when it joined (Config.Figures at Join, carried by
// every heartbeat, so that every node computes the same). Each is in
// [0, 1] and CPU + Mem + Net = 1. An ID of the type is owned by weighted
// rendezvous hashing: every member with headroom h > 0 scores the ID
// -h / ln(u), u the member's hash of the ID in (0, 1), and the highest
// owns it. A member thus owns a share of the type's IDs in proportion to
// its headroom (TestWeightedPlacementFollowsHeadroom), and, as the
// weights of a member do not change while it is a member, when one leaves
// only the IDs it owned move. When no member has headroom the type is
// placed as an unweighted one. The figures are those at join, not live
// ones: placement by live figures would move agents as the figures move.
type Weights struct{ CPU, Mem, Net float64 }

func validWeights(m map[string]Weights) bool {
	for _, w := range m {
		for _, c := range [...]float64{w.CPU, w.Mem, w.Net} {
			if !(c >= 0 && c <= 1) {
				return false
			}
		}
		if s := w.CPU + w.Mem + w.Net; s < 1-1e-9 || s > 1+1e-9 {
			return false
		}
	}
	return true
}

// Headroom returns f's headroom under w (see Weights).
func (w Weights) Headroom(f Figures) float64 {
	f = clampFigures(f)
	return w.CPU*f.CPUIdle + w.Mem*f.MemFree + w.Net*f.NetFree
}

// weightedOwner is weighted rendezvous hashing (see Weights).
func weightedOwner(members []string, figs map[string]Figures, w Weights, id engine.AgentID) string {
	best, bestScore := "", 0.0
	for _, m := range members {
		h := w.Headroom(figs[m])
		if h <= 0 {
			continue
		}
		u := (float64(score(m, id)>>11) + 0.5) / (1 << 53) // in (0, 1)
		if s := -h / math.Log(u); best == "" || s > bestScore || (s == bestScore && m < best) {
			best, bestScore = m, s
		}
	}
	if best == "" {
		return owner(members, id)
	}
	return best
}

// WeightedOwnerOf returns the member of members that owns id of a type
// placed with w, given each member's figures at join: the rule every node
// applies (see Weights).
func WeightedOwnerOf(members []string, figures map[string]Figures, w Weights, id engine.AgentID) string {
	return weightedOwner(members, figures, w, id)
}

// owner is rendezvous (highest random weight) hashing: every member scores
// the ID, the highest score owns it. When a member leaves, only the IDs it
// owned move, each to the member that scored second.
func owner(members []string, id engine.AgentID) string {
	best, bestScore := "", uint64(0)
	for _, m := range members {
		if s := score(m, id); best == "" || s > bestScore || (s == bestScore && m < best) {
			best, bestScore = m, s
		}
	}
	return best
}

// score is FNV-1a over member, type and key with separators, finished by
// a 64-bit mixer so that close names spread. It allocates nothing.
func score(member string, id engine.AgentID) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(member); i++ {
		h = (h ^ uint64(member[i])) * prime
	}
	h = (h ^ 0xff) * prime
	for i := 0; i < len(id.Type); i++ {
		h = (h ^ uint64(id.Type[i])) * prime
	}
	h = (h ^ 0xfe) * prime
	for i := 0; i < len(id.Key); i++ {
		h = (h ^ uint64(id.Key[i])) * prime
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	return h ^ h>>33
}

// Owns implements engine.Cluster. An ID this node has just taken over
// from a leaving node is not owned yet, until the leaver's handoff has
// arrived: sends to it are held until then.
func (n *Node) Owns(id engine.AgentID) bool {
	if n.local[id.Type] {
		return true
	}
	if n.ownerIn(*n.view.Load(), *n.placeFigs.Load(), id) != n.cfg.Name {
		return false
	}
	return n.awaitN.Load() == 0 || !n.awaited(id)
}

// Send implements engine.Cluster: one frame to the owner's subject, kept
// until the owner confirms it. A refusal on the owner, or the owner's loss
// before it confirmed, comes back as a DeadLetter (OnDeadLetter).
func (n *Node) Send(ctx context.Context, from, to engine.AgentID, payload []byte) error {
	n.route.RLock()
	if n.nc == nil || n.shut.Load() {
		n.route.RUnlock()
		return fmt.Errorf("%w: send to %s", ErrNotJoined, to)
	}
	switch dst := n.Owner(to); dst {
	case n.cfg.Name: // taken over from a leaver: held for its handoff
		held := n.holdLocal(&heldItem{from: from, to: to, payload: payload})
		n.route.RUnlock()
		if held {
			return nil
		}
		return n.e.DeliverRemote(ctx, to, payload)
	case "":
		n.route.RUnlock()
		return fmt.Errorf("%w: send to %s: no member left", ErrNotJoined, to)
	default:
		err := n.sendTracked(ctx, dst, &Frame{Kind: KindSend, From: wireID(from), To: wireID(to), Payload: payload})
		n.route.RUnlock()
		return err
	}
}

// Request implements engine.Cluster: a request frame to the owner, the
// reply matched by sequence number on this node's reply subject. It fails
// with ErrOwnerLost when the owner is declared lost or leaves first, and
// with engine.ErrTimeout (and context.DeadlineExceeded) after timeout.
func (n *Node) Request(from, to engine.AgentID, payload []byte, timeout time.Duration, done func([]byte, error)) error {
	n.route.RLock()
	defer n.route.RUnlock()
	if n.nc == nil || n.shut.Load() {
		return fmt.Errorf("%w: request to %s", ErrNotJoined, to)
	}
	dst := n.Owner(to)
	switch dst {
	case n.cfg.Name:
		if n.holdLocal(&heldItem{from: from, to: to, payload: payload, done: done}) {
			return nil
		}
		return n.e.RequestRemote(from, to, payload, done)
	case "":
		return fmt.Errorf("%w: request to %s: no member left", ErrNotJoined, to)
	}
	seq := n.seq.Add(1)
	p := &pendingReq{node: dst, done: done}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return fmt.Errorf("%w: request to %s", ErrNotJoined, to)
	}
	if _, ok := n.parked[dst]; ok {
		n.mu.Unlock()
		return fmt.Errorf("%w: request to %s: %s is down", ErrOwnerLost, to, dst)
	}
	n.pending[seq] = p
	toInc := n.incs[dst]
	if timeout > 0 {
		p.timer = time.AfterFunc(timeout, func() { n.expireRequest(seq, to) })
	} else {
		p.timer = time.AfterFunc(time.Duration(1<<62), func() {})
	}
	n.mu.Unlock()
	f := Frame{Kind: KindRequest, Seq: seq, ToInc: toInc, From: wireID(from), To: wireID(to), Reply: n.cfg.Prefix + ".reply." + n.cfg.Name, Payload: payload}
	if err := n.publish(n.cfg.Prefix+".node."+dst, &f); err != nil {
		n.mu.Lock()
		delete(n.pending, seq)
		n.mu.Unlock()
		p.timer.Stop()
		return err
	}
	return nil
}

func (n *Node) expireRequest(seq uint64, to engine.AgentID) {
	n.mu.Lock()
	p := n.pending[seq]
	delete(n.pending, seq)
	n.mu.Unlock()
	if p != nil {
		// As on one node: the deadline passed (errors.Is matches both).
		p.done(nil, fmt.Errorf("%w: request to %s: %w", engine.ErrTimeout, to, context.DeadlineExceeded))
	}
}

// Publish implements engine.Cluster: one frame on prefix.pub.<topic>,
// which every other node subscribes to.
func (n *Node) Publish(from engine.AgentID, topic string, payload []byte) error {
	if n.nc == nil {
		return nil // not joined: there is no one else to tell
	}
	return n.publish(n.subjPub+topic, &Frame{Kind: KindPublish, From: wireID(from), To: ID{Key: topic}, Payload: payload})
}

// The error codes of reply and nack frames: an engine sentinel the
// requester's errors.Is matches, with the owner's error text.
var codes = []error{
	nil, engine.ErrTimeout, engine.ErrNoReply, engine.ErrTerminated, engine.ErrMailboxFull,
	engine.ErrUnknownAgent, engine.ErrUnknownType, engine.ErrStopped, ErrRemotePanic,
	engine.ErrInvalidID, ErrOwnerLost, engine.ErrInitFailed, ErrSlowConsumer,
}

const codeOther = 255

// remoteError is an error from another node: its text, and the sentinel
// its code names.
type remoteError struct {
	sentinel error
	text     string
}

func (e *remoteError) Error() string { return e.text }
func (e *remoteError) Unwrap() error { return e.sentinel }

func encodeErr(err error) (uint8, []byte) {
	var pe *engine.PanicError
	if errors.As(err, &pe) {
		return 8, []byte(err.Error())
	}
	for i, s := range codes[1:] {
		if errors.Is(err, s) {
			return uint8(i + 1), []byte(err.Error())
		}
	}
	return codeOther, []byte(err.Error())
}

func decodeErr(code uint8, text []byte) error {
	if int(code) < len(codes) && code != 0 {
		return &remoteError{codes[code], string(text)}
	}
	return &remoteError{nil, string(text)}
}

// OwnerOf returns the member of members that owns id by rendezvous
// hashing, the rule every node applies to its own view ("" for no
// members). Local-only types are not its concern.
func OwnerOf(members []string, id engine.AgentID) string { return owner(members, id) }
