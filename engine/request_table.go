package engine

// This file: the outside requests in flight, for Stop to answer.

import (
	"fmt"
	"sync/atomic"
)

// Engine.Request waits on its request's own channel alone (with ctx's, if
// ctx can end), not on the engine's stop as well: a select over one more
// channel costs a lock and a queue entry on it per request, as much as a
// tenth of a round trip. Instead each request in flight holds a slot of
// the engine's request table while it waits, and the end of Stop answers
// whatever the table still holds with ErrStopped, as the select did.
// Every request whose message was queued is answered before then anyway
// (delivered or dead-lettered); the table catches those still inside a
// handler that never returned. A request that finds no free slot (more
// than reqSlots outside requesters at once) waits on the stop as before.

// reqSlots is the size of an engine's request table.
const reqSlots = 256

// reqSlot holds one request in flight and the incarnation it waits for,
// on a cache line of its own: requesters on different goroutines claim
// different slots. A slot also owns the request object its requesters
// take turns with, so a round trip fetches none from a pool.
type reqSlot struct {
	busy atomic.Bool // claimed by a requester, which alone uses own
	rq   atomic.Pointer[request]
	inc  atomic.Uint64
	own  *request // busy: the slot's request, recycled by each requester
	_    [32]byte
}

type reqTable [reqSlots]reqSlot

// newOutsideRequest makes the request object of Engine.Request.
func newOutsideRequest() *request { return &request{ch: make(chan reply, 1)} }

// claimSlot claims a free slot of the table, allocated on the first
// outside request, and records its request, pending, for Stop; it returns
// the slot and the request, or nil and nil when no slot is free. The
// incarnation goes in before the pointer: Stop reads them the other way
// round.
func (e *Engine) claimSlot() (*reqSlot, *request) {
	t := e.reqs.Load()
	if t == nil {
		e.reqs.CompareAndSwap(nil, new(reqTable))
		t = e.reqs.Load()
	}
	start := e.reqNext.Add(1)
	for i := uint32(0); i < 4; i++ {
		s := &t[(start+i*reqSlots/4)%reqSlots]
		if !s.busy.Load() && s.busy.CompareAndSwap(false, true) {
			rq := s.own
			if rq == nil {
				rq = newOutsideRequest()
				s.own = rq
			}
			s.inc.Store(rq.pending())
			s.rq.Store(rq)
			return s, rq
		}
	}
	return nil, nil
}

// release frees the slot. keep says its request has been recycled (or
// never sent) and serves the next claimer; otherwise it may still sit in
// a mailbox and is left to the collector.
func (s *reqSlot) release(keep bool) {
	s.rq.Store(nil)
	if !keep {
		s.own = nil
	}
	s.busy.Store(false)
}

// answerStranded answers every request the table still holds with
// ErrStopped: called once the loops are gone (or given up on), at the end
// of Stop. A slot read while its requester releases it and claims it again
// for a new request of this engine answers that one: it too is in flight
// on a stopped engine. The incarnation guards the rest: a request already
// answered and recycled has moved past the one the slot names.
func (e *Engine) answerStranded() {
	t := e.reqs.Load()
	if t == nil {
		return
	}
	for i := range t {
		s := &t[i]
		rq := s.rq.Load()
		if rq == nil {
			continue
		}
		inc := s.inc.Load()
		if rq.state.CompareAndSwap(inc, inc|reqDone) {
			var to AgentID
			if a := rq.to; a != nil {
				to = a.ident()
			}
			rq.ch <- reply{err: fmt.Errorf("%w: request to %s", ErrStopped, to)}
		}
	}
}
