package cluster

// This file: the graceful leave. The leaver tells every member, which
// stop routing to it and say so; it lets its engine drain, snapshots its
// agents and hands the snapshot to every member, each of which restores
// the agents it now owns. Until a member has the leaver's handoff it holds
// the sends and requests for the agents it takes over, so that none of
// them reaches a fresh agent that the handoff would then not replace.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/agentloop/agentloop/engine"
)

// awaiting is a leaver whose handoff this node waits for.
type awaiting struct {
	leaver    string
	before    []string // the view with the leaver: who owned what
	figs      map[string]Figures
	held      []*heldItem
	snap      []byte
	tooBig    bool
	releasing bool
	timer     *time.Timer
}

// heldItem is a send or request held for a handoff: a frame from another
// node, or a call of this node's engine.
type heldItem struct {
	frame    *Frame // from another node (send or request)
	from, to engine.AgentID
	payload  []byte
	done     func([]byte, error) // a local request's
}

// awaited reports whether id was the leaver's of a handoff not yet
// arrived.
func (n *Node) awaited(id engine.AgentID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.awaitingForLocked(id) != nil
}

func (n *Node) awaitingForLocked(id engine.AgentID) *awaiting {
	for _, a := range n.awaiting {
		if n.ownerIn(a.before, a.figs, id) == a.leaver {
			return a
		}
	}
	return nil
}

// holdLocal holds it when its target awaits a handoff.
func (n *Node) holdLocal(it *heldItem) bool {
	if n.awaitN.Load() == 0 {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	a := n.awaitingForLocked(it.to)
	if a == nil {
		return false
	}
	a.held = append(a.held, it)
	n.held.Add(1)
	return true
}

// holdRemote holds a frame from another node when its target awaits a
// handoff (f's payload is the message's own: nothing else uses it).
func (n *Node) holdRemote(f *Frame) bool {
	if n.awaitN.Load() == 0 || n.local[f.To.Type] {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	a := n.awaitingForLocked(agentID(f.To))
	if a == nil {
		return false
	}
	c := *f
	a.held = append(a.held, &heldItem{frame: &c})
	n.held.Add(1)
	return true
}

// release stops waiting for name's handoff and hands what was held to the
// engine, in the order it arrived; what arrives meanwhile is held behind
// it, so that the order per sender holds.
func (n *Node) release(name string) {
	n.mu.Lock()
	a := n.awaiting[name]
	if a == nil || a.releasing {
		n.mu.Unlock()
		return
	}
	a.releasing = true
	a.timer.Stop()
	n.mu.Unlock()
	for {
		n.mu.Lock()
		items := a.held
		a.held = nil
		if len(items) == 0 {
			delete(n.awaiting, name)
			n.awaitN.Add(-1)
			n.mu.Unlock()
			return
		}
		n.mu.Unlock()
		for _, it := range items {
			n.releaseItem(it)
			n.held.Add(^uint64(0))
		}
	}
}

func (n *Node) releaseItem(it *heldItem) {
	switch {
	case it.frame != nil && it.frame.Kind == KindSend:
		n.deliver(it.frame)
	case it.frame != nil:
		n.onRequest(it.frame)
	case it.done != nil:
		if err := n.e.RequestRemote(it.from, it.to, it.payload, it.done); err != nil {
			it.done(nil, err)
		}
	default:
		if err := n.e.DeliverRemote(context.Background(), it.to, it.payload); err != nil {
			n.heldRefused.Add(1)
			if n.onDead != nil {
				n.onDead(DeadLetter{From: it.from, To: it.to, Payload: it.payload, Reason: err})
			}
		}
	}
}

// onLeave handles a member's leave (Code 0): it is dropped from the view
// at once, this node acknowledges (Code 1, after every send it routed to
// the leaver), and holds what it now owns of the leaver's until the
// handoff. A Code 1 is a member's acknowledgement of this node's leave.
func (n *Node) onLeave(f *Frame) {
	if f.Code == 1 {
		select {
		case n.leaveAck <- f.Node:
		default:
		}
		return
	}
	n.route.Lock()
	n.mu.Lock()
	n.gone[f.Node] = f.Inc
	_, known := n.incs[f.Node]
	var members []string
	var failed []*pendingReq
	if known {
		before, figs := *n.view.Load(), *n.placeFigs.Load()
		delete(n.lastSeen, f.Node)
		delete(n.figures, f.Node)
		delete(n.incs, f.Node)
		delete(n.joinFigs, f.Node)
		members = n.rebuildLocked()
		failed = n.takePendingLocked(f.Node)
		if _, dup := n.awaiting[f.Node]; !dup && !n.leaving.Load() {
			name := f.Node
			n.awaiting[name] = &awaiting{leaver: name, before: before, figs: figs,
				timer: time.AfterFunc(2*n.cfg.Drain, func() { n.handoffTimedOut(name) })}
			n.awaitN.Add(1)
		}
	}
	n.mu.Unlock()
	n.route.Unlock()
	_ = n.publish(n.cfg.Prefix+".node."+f.Node, &Frame{Kind: KindLeave, Code: 1})
	if known {
		n.failRequests(failed, fmt.Errorf("%w: %s left", ErrOwnerLost, f.Node))
		n.event(Event{Kind: MemberLeft, Node: f.Node, Members: members})
	}
}

func (n *Node) handoffTimedOut(name string) {
	slog.Warn("cluster: handoff not received in time: its agents start without their state", "node", n.cfg.Name, "leaver", name)
	n.failOutbox(name, fmt.Errorf("%w: %s left before confirming it", ErrOwnerLost, name))
	n.release(name)
}

// onHandoff collects a leaver's snapshot; at its last chunk it restores
// the agents this node owns now, settles what it sent to the leaver and
// releases what it held.
func (n *Node) onHandoff(f *Frame) {
	n.mu.Lock()
	a := n.awaiting[f.Node]
	if a == nil || a.releasing {
		n.mu.Unlock()
		return
	}
	if len(a.snap)+len(f.Payload) > n.cfg.MaxHandoff {
		a.tooBig, a.snap = true, nil
	} else if !a.tooBig {
		a.snap = append(a.snap, f.Payload...)
	}
	last, snap, tooBig := f.Code == 1, a.snap, a.tooBig
	n.mu.Unlock()
	if !last {
		return
	}
	if tooBig {
		slog.Warn("cluster: handoff too large: its agents start without their state", "node", n.cfg.Name, "leaver", f.Node, "max", n.cfg.MaxHandoff)
	} else if len(snap) > 0 {
		n.restore(f.Node, snap)
	}
	n.failOutbox(f.Node, fmt.Errorf("%w: %s left before confirming it", ErrOwnerLost, f.Node))
	n.release(f.Node)
}

// restore re-creates the agents of a leaver's snapshot that this node
// owns now.
func (n *Node) restore(leaver string, snap []byte) {
	d, err := engine.DecodeSnapshot(snap)
	if err != nil {
		slog.Warn("cluster: handoff refused", "node", n.cfg.Name, "leaver", leaver, "err", err)
		return
	}
	view, figs := *n.view.Load(), *n.placeFigs.Load()
	var ids []engine.AgentID
	for _, r := range d.Records {
		if !n.local[r.ID.Type] && n.ownerIn(view, figs, r.ID) == n.cfg.Name {
			ids = append(ids, r.ID)
		}
	}
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Drain)
	defer cancel()
	info, err := n.e.Restore(ctx, bytes.NewReader(snap), engine.OnlyIDs(ids...))
	n.restored.Add(uint64(len(info.Restored)))
	n.skipped.Add(uint64(len(info.Skipped)))
	if err != nil || len(info.Skipped) > 0 {
		slog.Warn("cluster: handoff restored in part", "node", n.cfg.Name, "leaver", leaver, "restored", len(info.Restored), "skipped", len(info.Skipped), "err", err)
	}
}

// Leave leaves the cluster gracefully, then closes. In order: every
// member is told and drops this node from its view (sends and requests
// for this node's agents go to their new owners, which hold them); once
// every member has acknowledged (or after Config.Drain) the engine is let
// go idle (at most Drain), a snapshot of its agents (engine.Snapshot: the
// StateSaver ones) is handed to every member, each restoring those it now
// owns before it releases what it held; Leave then waits (at most Drain)
// until the owners have confirmed every send this node made, and closes.
// Requests still waiting on this node's answer when a member hears of the
// leave fail there with ErrOwnerLost. Stop the engine after Leave.
//
// What is not handed off: agents that do not implement engine.StateSaver
// (re-created without state on their next message), timers, and the
// effect of a message that reaches a leaving agent by Ref or timer after
// the snapshot.
func (n *Node) Leave() error {
	n.mu.Lock()
	if n.closed || n.nc == nil {
		n.mu.Unlock()
		return fmt.Errorf("%w: leave", ErrNotJoined)
	}
	n.mu.Unlock()
	// The heartbeats go on until Close: a member that has not handled the
	// leave frame yet (its node's subject is busy) must not take this node
	// for lost meanwhile, which would report the sends it routed here as
	// lost although this node delivers them, and not hold the sends for
	// the agents it takes over. A member that has handled it ignores them.
	drain := time.NewTimer(n.cfg.Drain)
	defer drain.Stop()

	// Leave the view and tell everyone while no send chooses an owner.
	n.route.Lock()
	n.leaving.Store(true)
	n.mu.Lock()
	n.rebuildLocked()
	var members []string
	for name := range n.incs {
		members = append(members, name)
	}
	n.mu.Unlock()
	for _, m := range members {
		_ = n.publish(n.cfg.Prefix+".node."+m, &Frame{Kind: KindLeave})
	}
	err := n.nc.Flush()
	n.route.Unlock()
	if err != nil {
		n.stopHeartbeat()
		return fmt.Errorf("cluster: node %s: leave: %w", n.cfg.Name, err)
	}
	waiting := map[string]bool{}
	for _, m := range members {
		waiting[m] = true
	}
	for len(waiting) > 0 {
		select {
		case name := <-n.leaveAck:
			delete(waiting, name)
		case <-drain.C:
			slog.Warn("cluster: leave not acknowledged by every member", "node", n.cfg.Name, "missing", len(waiting))
			waiting = nil
		}
	}

	// Drain, snapshot, hand off.
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Drain)
	n.drainStream(ctx)
	_ = n.e.WaitIdle(ctx)
	var buf bytes.Buffer
	info, err := n.e.Snapshot(ctx, &buf)
	cancel()
	snap := buf.Bytes()
	if err != nil || len(snap) > n.cfg.MaxHandoff {
		slog.Warn("cluster: no handoff: agents start elsewhere without their state", "node", n.cfg.Name, "bytes", len(snap), "err", err)
		snap = nil
	} else {
		n.handedOff.Add(uint64(info.Agents))
	}
	n.flushAcks() // settle what the members sent here before the handoff
	chunk := int(n.nc.MaxPayload()) - 4096
	if chunk < 1024 {
		chunk = 1024
	}
	for _, m := range members {
		for i, off := uint64(1), 0; ; i++ {
			end := min(off+chunk, len(snap))
			f := &Frame{Kind: KindHandoff, Seq: i, Payload: snap[off:end]}
			if end == len(snap) {
				f.Code = 1
			}
			if err := n.publish(n.cfg.Prefix+".node."+m, f); err != nil {
				slog.Warn("cluster: handoff not sent", "node", n.cfg.Name, "to", m, "err", err)
				break
			}
			if off = end; f.Code == 1 {
				break
			}
		}
	}
	if err := n.nc.Flush(); err != nil {
		slog.Warn("cluster: handoff not flushed", "node", n.cfg.Name, "err", err)
	}

	// Wait for the owners to confirm this node's sends, then go.
	drain.Reset(n.cfg.Drain)
	t := time.NewTicker(n.cfg.Heartbeat)
	defer t.Stop()
	for n.Stats().InFlight > 0 {
		select {
		case <-t.C:
		case <-drain.C:
			slog.Warn("cluster: leaving with sends not confirmed", "node", n.cfg.Name, "in flight", n.Stats().InFlight)
			n.Close()
			return nil
		}
	}
	n.Close()
	return nil
}
