package engine

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/agentloop/agentloop/lifecycle"
	"github.com/agentloop/agentloop/messaging"
)

// pubsub is the engine's side of the bus: subscription lists per loop for
// agent subscriptions, so a publish makes one inbox post per list that has
// subscribers (not one per subscriber), and one list of type
// subscriptions, which name their target by a key taken from the topic.
//
// Agents whose mailbox reserves places (Reject, Block) subscribe in a list
// of their own per loop, so that a publish applies their policy as a send
// does (reserve first: an error or a wait when full) while publishing to
// the others costs nothing more; a loop with subscribers of both kinds
// gets two posts.
//
// A publish splits and validates its topic once (messaging.Topic) and
// matches that against every list that has subscriptions: nonEmpty has a
// bit per agent list, set while it has any, so a publish skips the empty
// ones, and loops without subscribers, without touching them.
type pubsub struct {
	perLoop   []*messaging.Sublist[*agent] // DropNewest and DropOldest subscribers
	reserving []*messaging.Sublist[*agent] // Reject and Block subscribers
	// nonEmpty has bit 2i set while perLoop[i] has subscriptions and bit
	// 2i+1 while reserving[i] has; written with mu held.
	nonEmpty []atomic.Uint64
	types    messaging.Sublist[*typeSub]
	gobus    atomic.Pointer[messaging.Bus] // Go subscribers (gosub.go); nil until Engine.Bus

	mu     sync.Mutex            // protects agents and byType
	agents map[*agent]*agentSubs // patterns each agent subscribed, for Unsubscribe and cleanup
	byType map[typeSubKey]*typeSub
}

// agentSubs are the patterns one agent subscribed, each with its
// multiplicity (the bus is a multiset: subscribing twice takes two
// unsubscribes). The first fewSubs are kept in a slice, scanned; past that
// they move to a map from pattern to count. Adding or removing one is O(1)
// either way, however many the agent has, and listing them all is linear.
type agentSubs struct {
	few  []string       // while many is nil: one entry per subscription, unordered
	many map[string]int // pattern → subscriptions, once there were more than fewSubs
	n    int            // subscriptions in all
}

// fewSubs is how many subscriptions an agent keeps in a slice before they
// move to a map; a map costs a few hundred bytes even for one entry, and
// most agents subscribe to a handful of patterns.
const fewSubs = 8

func (s *agentSubs) add(pattern string) {
	s.n++
	switch {
	case s.many != nil:
		s.many[pattern]++
	case len(s.few) < fewSubs:
		s.few = append(s.few, pattern)
	default:
		s.many = make(map[string]int, 2*fewSubs)
		for _, p := range s.few {
			s.many[p]++
		}
		s.many[pattern]++
		s.few = nil
	}
}

// remove takes one subscription to pattern away and reports whether there
// was one.
func (s *agentSubs) remove(pattern string) bool {
	if s.many != nil {
		c, ok := s.many[pattern]
		if !ok {
			return false
		}
		if c > 1 {
			s.many[pattern] = c - 1
		} else {
			delete(s.many, pattern)
		}
		s.n--
		return true
	}
	for i, p := range s.few {
		if p == pattern {
			last := len(s.few) - 1
			s.few[i] = s.few[last]
			s.few[last] = ""
			s.few = s.few[:last]
			s.n--
			return true
		}
	}
	return false
}

// each calls f once per subscription.
func (s *agentSubs) each(f func(pattern string)) {
	for _, p := range s.few {
		f(p)
	}
	for p, c := range s.many {
		for range c {
			f(p)
		}
	}
}

type typeSubKey struct{ pattern, typ string }

// typeSub routes matching topics to instances of one agent type.
type typeSub struct {
	pattern string
	typ     *agentType
	key     func(topic string) (string, bool)
	hprefix uint64 // typeHashPrefix(typ.name): a key's ID hash costs only the key
}

// list returns the subscription list of a's loop that a belongs in, and
// its bit in nonEmpty.
func (ps *pubsub) list(a *agent) (*messaging.Sublist[*agent], int) {
	i := a.loop.idx
	if a.typ.cfg.reserves() {
		return ps.reserving[i], 2*i + 1
	}
	return ps.perLoop[i], 2 * i
}

// note sets or clears list j's bit in nonEmpty after a change to sl, the
// list. ps.mu must be held.
func (ps *pubsub) note(j int, sl *messaging.Sublist[*agent]) {
	w, bit := &ps.nonEmpty[j/64], uint64(1)<<(j%64)
	if sl.Count() > 0 {
		w.Or(bit)
	} else {
		w.And(^bit)
	}
}

func (ps *pubsub) init(loops int) {
	ps.perLoop = make([]*messaging.Sublist[*agent], loops)
	ps.reserving = make([]*messaging.Sublist[*agent], loops)
	ps.nonEmpty = make([]atomic.Uint64, (2*loops+63)/64)
	for i := range ps.perLoop {
		ps.perLoop[i] = messaging.NewSublist[*agent]()
		ps.reserving[i] = messaging.NewSublist[*agent]()
	}
	ps.agents = make(map[*agent]*agentSubs)
	ps.byType = make(map[typeSubKey]*typeSub)
}

// SubscribeOption configures SubscribeType.
type SubscribeOption interface{ applySub(*subConfig) error }

type subOptionFunc func(*subConfig) error

func (f subOptionFunc) applySub(c *subConfig) error { return f(c) }

type subConfig struct {
	key func(topic string) (string, bool)
}

// KeyToken takes the instance key from token i (0-based) of the topic
// instead of the default position.
func KeyToken(i int) SubscribeOption {
	return subOptionFunc(func(c *subConfig) error {
		if i < 0 || i >= messaging.MaxTokens {
			return fmt.Errorf("%w: KeyToken(%d)", ErrInvalidOption, i)
		}
		c.key = func(topic string) (string, bool) { return token(topic, i, false) }
		return nil
	})
}

// KeyFunc takes the instance key from topic with f; f reports false to
// skip a topic. f runs on the publishing goroutine and must be quick.
func KeyFunc(f func(topic string) (key string, ok bool)) SubscribeOption {
	return subOptionFunc(func(c *subConfig) error {
		if f == nil {
			return fmt.Errorf("%w: nil KeyFunc", ErrInvalidOption)
		}
		c.key = f
		return nil
	})
}

// defaultKey takes the key from the position of the pattern's first
// wildcard: the one token under '*', the rest of the topic under '>', and
// the whole topic for a pattern without wildcards.
func defaultKey(pattern string) func(string) (string, bool) {
	toks := strings.Split(pattern, ".")
	for i, t := range toks {
		switch t {
		case "*":
			return func(topic string) (string, bool) { return token(topic, i, false) }
		case ">":
			return func(topic string) (string, bool) { return token(topic, i, true) }
		}
	}
	return func(topic string) (string, bool) { return topic, true }
}

// token returns token i of topic (or everything from it, with rest)
// without allocating: the result shares the topic's bytes.
func token(topic string, i int, rest bool) (string, bool) {
	start := 0
	for n := 0; n < i; n++ {
		j := strings.IndexByte(topic[start:], '.')
		if j < 0 {
			return "", false
		}
		start += j + 1
	}
	if rest {
		return topic[start:], start < len(topic)
	}
	if j := strings.IndexByte(topic[start:], '.'); j >= 0 {
		return topic[start : start+j], j > 0
	}
	return topic[start:], start < len(topic)
}

// SubscribeAgent makes the agent id receive every message published on a
// topic matching pattern (NATS conventions: "a.*.c", "a.>"). The agent is
// spawned when its type is registered and it does not exist. Its
// subscriptions end when it terminates. Concurrency-safe.
func (e *Engine) SubscribeAgent(pattern string, id AgentID) error {
	if err := messaging.ValidatePattern(pattern); err != nil {
		return err
	}
	r, err := e.resolve(id)
	if err != nil {
		return err
	}
	return e.subscribeAgent(pattern, r.a)
}

func (e *Engine) subscribeAgent(pattern string, a *agent) error {
	ps := &e.pubsub
	ps.mu.Lock()
	sl, j := ps.list(a)
	if err := sl.Insert(pattern, a); err != nil {
		ps.mu.Unlock()
		return err
	}
	ps.note(j, sl)
	subs := ps.agents[a]
	if subs == nil {
		subs = new(agentSubs)
		ps.agents[a] = subs
	}
	subs.add(pattern)
	a.hasSubs.Store(true)
	ps.mu.Unlock()
	if a.stopReq.Load() || a.lc.State() == lifecycle.Terminated {
		// finalize may have dropped subscriptions before we recorded ours.
		e.dropSubscriptions(a)
		return fmt.Errorf("%w: subscribe %s", ErrTerminated, a.ident())
	}
	return nil
}

// UnsubscribeAgent removes one subscription made with SubscribeAgent. The
// agent's own bookkeeping is O(1) however many subscriptions it has; the
// bus's change costs what messaging.Sublist.Remove does: O(log n) in the
// loop's patterns, and O(m) in the subscribers that share this pattern.
func (e *Engine) UnsubscribeAgent(pattern string, id AgentID) error {
	r, err := e.Lookup(id)
	if err != nil {
		return err
	}
	return e.unsubscribeAgent(pattern, r.a)
}

func (e *Engine) unsubscribeAgent(pattern string, a *agent) error {
	ps := &e.pubsub
	ps.mu.Lock()
	defer ps.mu.Unlock()
	subs := ps.agents[a]
	if subs == nil || !subs.remove(pattern) {
		return fmt.Errorf("%w: %q for %s", messaging.ErrNotFound, pattern, a.ident())
	}
	if subs.n == 0 {
		delete(ps.agents, a)
	}
	sl, j := ps.list(a)
	err := sl.Remove(pattern, a)
	ps.note(j, sl)
	return err
}

// dropSubscriptions removes every subscription of a (it terminated).
func (e *Engine) dropSubscriptions(a *agent) {
	if !a.hasSubs.Load() {
		return
	}
	if e.stopping.Load() {
		// The whole bus goes with the engine; removing agents one by one
		// would copy each pattern's subscriber list once per subscriber.
		return
	}
	ps := &e.pubsub
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if subs := ps.agents[a]; subs != nil {
		sl, j := ps.list(a)
		subs.each(func(p string) { _ = sl.Remove(p, a) })
		ps.note(j, sl)
	}
	delete(ps.agents, a)
	a.hasSubs.Store(false)
}

// SubscribeType routes every topic matching pattern to an instance of
// agentType whose key is taken from the topic, spawning the instance on its
// first message (AutoGen's TypeSubscription): one subscription serves ten
// thousand device agents. By default the key is the token at the pattern's
// first wildcard ("telemetry.*.temp" takes "dev-42" from
// "telemetry.dev-42.temp"; under '>' it is the rest of the topic); KeyToken
// and KeyFunc choose otherwise. Concurrency-safe.
func (e *Engine) SubscribeType(pattern, agentType string, opts ...SubscribeOption) error {
	if err := messaging.ValidatePattern(pattern); err != nil {
		return err
	}
	t, err := e.lookupType(agentType)
	if err != nil {
		return err
	}
	sc := subConfig{key: defaultKey(pattern)}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o.applySub(&sc); err != nil {
			return err
		}
	}
	ps := &e.pubsub
	ps.mu.Lock()
	defer ps.mu.Unlock()
	k := typeSubKey{pattern, agentType}
	if ps.byType[k] != nil {
		return fmt.Errorf("%w: %q already routed to type %q", ErrDuplicateSubscription, pattern, agentType)
	}
	s := &typeSub{pattern: pattern, typ: t, key: sc.key, hprefix: typeHashPrefix(t.name)}
	if err := ps.types.Insert(pattern, s); err != nil {
		return err
	}
	ps.byType[k] = s
	return nil
}

// UnsubscribeType removes a subscription made with SubscribeType.
func (e *Engine) UnsubscribeType(pattern, agentType string) error {
	ps := &e.pubsub
	ps.mu.Lock()
	defer ps.mu.Unlock()
	k := typeSubKey{pattern, agentType}
	s := ps.byType[k]
	if s == nil {
		return fmt.Errorf("%w: %q for type %q", messaging.ErrNotFound, pattern, agentType)
	}
	delete(ps.byType, k)
	return ps.types.Remove(pattern, s)
}

// Publish delivers payload to every agent subscribed to a pattern matching
// topic, from outside the engine. It makes one inbox post per loop with
// subscribers (two when that loop has subscribers with DropNewest or
// DropOldest mailboxes and others with Reject or Block), however many
// there are, plus one send per type-subscription instance. Every receiver
// gets the same payload slice: nobody may modify it. Message.Topic is
// topic and Message.Sender is zero. The Go subscribers of Bus hear it too.
// Publishing to a topic nobody subscribes to is not an error.
// Concurrency-safe.
//
// Each subscriber's overflow policy applies as it does to a send: a full
// DropNewest or DropOldest mailbox dead-letters a message, a full Reject
// mailbox is left out and reported in the returned error (which joins an
// ErrMailboxFull error per such subscriber; the others still receive the
// message), and a full Block mailbox makes Publish wait for room, as Send
// does, until the subscriber terminates or the engine stops.
func (e *Engine) Publish(topic string, payload []byte) error {
	if e.state.Load() >= stateStopping {
		return fmt.Errorf("%w: publish %q", ErrStopped, topic)
	}
	return e.publish(nil, topic, Message{Payload: payload, Topic: topic})
}

// publishReserved marks (in envelope.gen) an opPublish whose subscribers
// hold a mailbox place reserved by the publisher.
const publishReserved = 1

// publish fans m out; c is the publishing handler's Context, nil outside.
//
// The topic is split and validated once, and each token hashed at most
// once, whatever the number of lists it is matched against; lists without
// subscriptions are skipped unread (nonEmpty); a type subscription's key is
// found in the registry without a lock.
func (e *Engine) publish(c *Context, topic string, m Message) error {
	if e.cluster != nil {
		return e.publishCluster(c, topic, m)
	}
	return e.publishLocal(c, topic, m)
}

// publishLocal is publish to this engine's subscribers only.
func (e *Engine) publishLocal(c *Context, topic string, m Message) error {
	ps := &e.pubsub
	if b := ps.gobus.Load(); b != nil {
		publishGo(b, topic, m.Payload)
	}
	var t messaging.Topic
	if err := t.Parse(topic); err != nil {
		return err
	}
	var errs []error
	for w := range ps.nonEmpty {
		for set := ps.nonEmpty[w].Load(); set != 0; set &= set - 1 {
			j := w*64 + bits.TrailingZeros64(set)
			i := j / 2
			if j%2 == 0 {
				if subs := ps.perLoop[i].MatchTopic(&t); len(subs) > 0 {
					e.fanOut(c, e.loops[i], subs, &m, false)
				}
				continue
			}
			subs := ps.reserving[i].MatchTopic(&t)
			if len(subs) == 0 {
				continue
			}
			subs, errs = e.reserveSubs(c, subs, errs)
			if len(subs) > 0 {
				e.fanOut(c, e.loops[i], subs, &m, true)
			}
		}
	}
	for _, s := range ps.types.MatchTopic(&t) {
		key, ok := s.key(topic)
		if !ok || (e.cluster != nil && !e.cluster.Owns(AgentID{Type: s.typ.name, Key: key})) {
			continue
		}
		r, err := e.resolveKey(s, key)
		if err == nil {
			b := m.buffer()
			if b != nil {
				b.Retain(1)
			}
			if c == nil {
				err = e.sendExternal(context.Background(), r, m)
			} else {
				err = c.send(r, m)
			}
			if err != nil && b != nil {
				b.Release() // refused: never queued
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// resolveKey finds the instance of s's type under key, or spawns it: the
// registry's lock-free lookup, with the ID's hash continued from s's type.
func (e *Engine) resolveKey(s *typeSub, key string) (Ref, error) {
	if r, ok := e.registry.find(s.typ.name, key, keyHash(s.hprefix, key)); ok {
		return r, nil
	}
	// The key may be a piece of the publisher's topic: the agent keeps a
	// copy of its own rather than the topic.
	id := AgentID{Type: s.typ.name, Key: strings.Clone(key)}
	if err := id.Validate(); err != nil {
		return Ref{}, err
	}
	return e.spawnFor(id, s.typ)
}

// fanOut delivers m to subs, the subscribers on loop l: straight into
// their mailboxes from a handler on l, else in one post to l. reserved says
// each holds a mailbox place taken by reserveSubs.
func (e *Engine) fanOut(c *Context, l *loop, subs []*agent, m *Message, reserved bool) {
	if b := m.buffer(); b != nil {
		b.Retain(len(subs)) // one reference per delivery
	}
	if c != nil && c.l == l {
		size := len(m.Payload)
		for _, a := range subs {
			// enqueue's and push's rules for a live subscriber whose
			// mailbox has room, inlined: W6's in-loop delivery.
			if !a.terminating && a.lc.State() != lifecycle.Terminated && !a.typ.cfg.reserves() &&
				a.mb.len() < a.typ.cfg.capacity {
				if p := a.mb.tryPush(); p != nil { // else the mailbox grows in enqueue
					*p = *m
					if a.counted(size) { // pushed, inlined
						l.settle(a)
					}
					continue
				}
			}
			l.enqueue(a, a.gen.Load(), m, reserved)
		}
		return
	}
	env := envelope{op: opPublish, msg: *m, subs: subs}
	if reserved {
		env.gen = publishReserved
	}
	if c == nil {
		l.post(&env)
	} else {
		l.postFrom(c.l, &env)
	}
}

// reserveSubs admits m for each of subs (Reject and Block subscribers) as
// a send to it would be (admit: a place reserved, waited for from
// outside with Block); a subscriber that is full or gone is left out with
// its error appended to errs. It returns the subscribers that hold a place:
// subs itself when all do, else a new slice (subs is the bus's, shared).
func (e *Engine) reserveSubs(c *Context, subs []*agent, errs []error) ([]*agent, []error) {
	var kept []*agent
	for i, a := range subs {
		err := e.admit(context.Background(), c, a, a.gen.Load())
		if err == nil {
			if kept != nil {
				kept = append(kept, a)
			}
			continue
		}
		errs = append(errs, err)
		if kept == nil {
			kept = append(make([]*agent, 0, len(subs)-1), subs[:i]...)
		}
	}
	if kept == nil {
		return subs, errs
	}
	return kept, errs
}

// Publish delivers payload to every subscriber of topic, as Engine.Publish,
// with Message.Sender set to the running agent. Subscribers on this loop
// get it straight in their mailboxes; each other loop gets one post (two
// with subscribers of both kinds, as for Engine.Publish).
func (c *Context) Publish(topic string, payload []byte) error {
	return c.l.e.publish(c, topic, Message{Payload: payload, Topic: topic, Sender: c.a.ref()})
}

// Subscribe subscribes the running agent to pattern.
func (c *Context) Subscribe(pattern string) error {
	if err := messaging.ValidatePattern(pattern); err != nil {
		return err
	}
	return c.l.e.subscribeAgent(pattern, c.a)
}

// Unsubscribe removes one of the running agent's subscriptions.
func (c *Context) Unsubscribe(pattern string) error {
	return c.l.e.unsubscribeAgent(pattern, c.a)
}
