package cluster

// This file: the accounting of sends between nodes. The sender keeps every
// send frame until its owner acknowledges it (or refuses it); the owner
// acknowledges cumulatively, per sending node, and nacks the gaps it sees.
// A send is thus confirmed, refused or, when its owner is lost first,
// reported lost: never silently dropped.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// ackEvery is how many sends from one node an owner takes before it
// acknowledges them without waiting for its next heartbeat.
const ackEvery = 512

// outbox is what this node sent to one destination node and has not had
// acknowledged yet, in Seq order.
type outbox struct {
	seq     uint64
	inc     uint32 // the destination's incarnation, as of its join: what sends address
	probed  uint64 // seq at the last heartbeat
	unacked []sentFrame
}

type sentFrame struct {
	seq    uint64
	frame  []byte // the encoded frame: From, To and Payload for a dead letter
	nacked bool   // refused or lost: reported, not to be counted again
}

// inbound is what this node has taken from one sending node's incarnation.
type inbound struct {
	inc         uint32
	first, last uint64 // the first and the last Seq seen
	done        uint64 // the last Seq processed: what an ack may cover
	acked       uint64 // last acknowledged
}

// track records a send frame to dst and publishes it, under the outbox's
// lock so that Seq order is publish order.
func (n *Node) sendTracked(ctx context.Context, dst string, f *Frame) error {
	n.outMu.Lock()
	defer n.outMu.Unlock()
	ob := n.outboxFor(dst)
	f.Seq = ob.seq + 1
	if n.js == nil {
		// A durable send waits in the stream for whichever incarnation of
		// its owner comes next: it addresses none.
		f.ToInc = ob.inc
	}
	b, err := n.encode(f)
	if err != nil {
		return err
	}
	if n.js != nil {
		// Taken whether or not the stream confirms: a publish that timed
		// out may have been stored, and its owner must not see its Seq
		// again (it would take the sender for restarted).
		ob.seq++
		if _, err := n.js.Publish(ctx, n.subjJS+dst, b); err != nil {
			return fmt.Errorf("cluster: node %s: send to %s: %w", n.cfg.Name, dst, err)
		}
	} else {
		if err := n.nc.Publish(n.cfg.Prefix+".node."+dst, b); err != nil {
			return fmt.Errorf("cluster: node %s: send to %s: %w", n.cfg.Name, dst, err)
		}
		ob.seq++
	}
	ob.unacked = append(ob.unacked, sentFrame{seq: f.Seq, frame: b})
	n.sent.Add(1)
	n.tracked.Add(1)
	return nil
}

// addressed records that dst's incarnation is inc, at its join: the sends
// to it from now on address that incarnation. Called under the route
// lock, so that no send is choosing an owner meanwhile.
func (n *Node) addressed(dst string, inc uint32) {
	n.outMu.Lock()
	defer n.outMu.Unlock()
	n.outboxFor(dst).inc = inc
}

// outboxFor returns the outbox of the sends to dst, making it on first
// use. The caller holds outMu.
func (n *Node) outboxFor(dst string) *outbox {
	ob := n.out[dst]
	if ob == nil {
		ob = &outbox{}
		n.out[dst] = ob
	}
	return ob
}

// seen records a send frame from f.Node and returns the range of sends
// missing before it (first > last when none): frames dropped on the way,
// by a slow consumer.
func (n *Node) seen(f *Frame) (gapFirst, gapLast uint64) {
	n.inMu.Lock()
	defer n.inMu.Unlock()
	in := n.in[f.Node]
	if in == nil || in.inc != f.Inc || f.Seq <= in.last {
		// A node first heard from, or restarted: it starts afresh.
		n.in[f.Node] = &inbound{inc: f.Inc, first: f.Seq, last: f.Seq, done: f.Seq - 1, acked: f.Seq - 1}
		return 1, 0
	}
	gapFirst, gapLast = in.last+1, f.Seq-1
	in.last = f.Seq
	return gapFirst, gapLast
}

// processed records that the send f was taken by the engine (or refused,
// or held for a handoff): an acknowledgement may cover it now, not
// before, or a send that then waits for room and is refused would be
// confirmed first.
func (n *Node) processed(f *Frame) {
	n.inMu.Lock()
	defer n.inMu.Unlock()
	in := n.in[f.Node]
	if in == nil || in.inc != f.Inc || f.Seq > in.last {
		return
	}
	in.done = f.Seq
	if in.done-in.acked >= ackEvery {
		n.ackLocked(f.Node, in)
	}
}

// flushAcks acknowledges every sending node's sends taken since the last
// acknowledgement.
func (n *Node) flushAcks() {
	n.inMu.Lock()
	defer n.inMu.Unlock()
	for name, in := range n.in {
		if in.done != in.acked {
			n.ackLocked(name, in)
		}
	}
}

func (n *Node) ackLocked(to string, in *inbound) {
	p := binary.BigEndian.AppendUint32(make([]byte, 0, 12), in.inc)
	p = binary.BigEndian.AppendUint64(p, in.first)
	if n.publish(n.cfg.Prefix+".node."+to, &Frame{Kind: KindAck, Seq: in.done, Payload: p}) == nil {
		in.acked = in.done
	}
}

// nack refuses the sends first..last from node's incarnation inc (their
// owner's error, or frames lost on the way) to that node.
func (n *Node) nack(node string, inc uint32, first, last uint64, err error) {
	code, text := encodeErr(err)
	p := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(text)), last)
	_ = n.publish(n.cfg.Prefix+".node."+node, &Frame{Kind: KindNack, Code: code, Seq: first, ToInc: inc, Payload: append(p, text...)})
}

// onAck settles the sends to f.Node that it acknowledges; sends before the
// first it saw never reached this incarnation of it: they are lost.
func (n *Node) onAck(f *Frame) {
	if len(f.Payload) != 12 || binary.BigEndian.Uint32(f.Payload) != n.inc {
		return // for an earlier incarnation of this node
	}
	first := binary.BigEndian.Uint64(f.Payload[4:])
	var lost []sentFrame
	n.outMu.Lock()
	ob := n.out[f.Node]
	if ob == nil {
		n.outMu.Unlock()
		return
	}
	i := 0
	for ; i < len(ob.unacked) && ob.unacked[i].seq <= f.Seq; i++ {
		s := ob.unacked[i]
		switch {
		case s.nacked:
		case s.seq < first:
			lost = append(lost, s)
		default:
			n.confirmed.Add(1)
		}
	}
	ob.unacked = ob.unacked[i:]
	n.lost.Add(uint64(len(lost)))
	n.outMu.Unlock()
	n.deadLetters(lost, fmt.Errorf("%w: %s restarted before taking it", ErrOwnerLost, f.Node))
}

// onNack reports the refused sends as dead letters: dropped on the way
// (ErrSlowConsumer), lost (ErrOwnerLost: sent to an incarnation of the
// owner that was gone), or refused by the owner's engine.
func (n *Node) onNack(f *Frame) {
	if len(f.Payload) < 8 {
		n.corrupt.Add(1)
		return
	}
	last := binary.BigEndian.Uint64(f.Payload)
	reason := decodeErr(f.Code, f.Payload[8:])
	var refused []sentFrame
	counter := &n.nacked
	switch {
	case errors.Is(reason, ErrSlowConsumer):
		counter = &n.dropped
	case errors.Is(reason, ErrOwnerLost):
		counter = &n.lost
	}
	n.outMu.Lock()
	if ob := n.out[f.Node]; ob != nil {
		i := sort.Search(len(ob.unacked), func(i int) bool { return ob.unacked[i].seq >= f.Seq })
		for ; i < len(ob.unacked) && ob.unacked[i].seq <= last; i++ {
			if !ob.unacked[i].nacked {
				ob.unacked[i].nacked = true
				refused = append(refused, ob.unacked[i])
			}
		}
	}
	counter.Add(uint64(len(refused)))
	n.outMu.Unlock()
	n.deadLetters(refused, reason)
}

// failOutbox reports every send to node not yet settled as lost: its
// owner is gone and never confirmed it.
func (n *Node) failOutbox(node string, reason error) {
	n.outMu.Lock()
	var lost []sentFrame
	if ob := n.out[node]; ob != nil {
		for _, s := range ob.unacked {
			if !s.nacked {
				lost = append(lost, s)
			}
		}
		ob.unacked = nil
	}
	n.lost.Add(uint64(len(lost)))
	n.outMu.Unlock()
	n.deadLetters(lost, reason)
}

// deadLetters reports sends that were not delivered (counted by the
// caller, under outMu, so that Stats adds up at every instant).
func (n *Node) deadLetters(fs []sentFrame, reason error) {
	for _, s := range fs {
		n.reportDead(s.frame, reason)
	}
}

func (n *Node) reportDead(frame []byte, reason error) {
	if n.onDead == nil {
		return
	}
	f, err := DecodeFrame(frame)
	if err != nil {
		return // our own encoding: cannot happen
	}
	n.onDead(DeadLetter{From: agentID(f.From), To: agentID(f.To), Payload: f.Payload, Reason: reason})
}

// inFlightLocked counts the sends not settled yet.
func (n *Node) inFlightLocked() uint64 {
	var c uint64
	for _, ob := range n.out {
		for _, s := range ob.unacked {
			if !s.nacked {
				c++
			}
		}
	}
	return c
}

// probe sends, to every destination with sends not settled and none made
// since the last heartbeat, an empty send: it takes the next Seq, so that
// the owner sees a gap at the end of the sequence (the last frames
// dropped) as it sees one in the middle.
func (n *Node) probe() {
	if n.js != nil {
		return // the stream drops nothing, and a probe beside it would overtake its sends
	}
	n.outMu.Lock()
	defer n.outMu.Unlock()
	for dst, ob := range n.out {
		if ob.seq == ob.probed && len(ob.unacked) > 0 {
			b, err := n.encode(&Frame{Kind: KindSend, Seq: ob.seq + 1, ToInc: ob.inc})
			if err == nil && n.nc.Publish(n.cfg.Prefix+".node."+dst, b) == nil {
				ob.seq++
				n.sent.Add(1)
			}
		}
		ob.probed = ob.seq
	}
}
