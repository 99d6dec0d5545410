package engine

// This file: the extension point that joins engines into a cluster. The
// engine knows nothing of the transport: a Cluster decides which node owns
// an AgentID and carries what is not owned here; the owner's cluster hands
// it back through DeliverRemote, RequestRemote and PublishLocal.

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/agentloop/agentloop/messaging"
)

// Cluster joins an engine to other engines (nodes). Set it with
// WithCluster. The engine consults it only on the paths that name an agent
// by ID or a topic:
//
//   - Engine.SendID, Engine.SendIDContext, Context.SendID: when Owns(id) is
//     false the send goes to Send instead of the local registry;
//   - Engine.RequestID, Context.RequestID: when Owns(id) is false the
//     request goes to Request;
//   - Engine.Publish, Context.Publish (and PublishBuffer): the local
//     subscribers hear the message as before, Publish carries it to the
//     other nodes, and a type subscription spawns or feeds the key's agent
//     only on the node that owns it.
//
// A Ref always refers to an agent of this engine: Send, Request and
// Context.Send through a Ref never consult the Cluster. With no Cluster set
// the ID paths pay one nil check and nothing else.
//
// The methods are called from any goroutine, loops included, and must not
// block for long: a loop that calls them waits.
type Cluster interface {
	// Owns reports whether id is owned by this node. It is called with ids
	// that may not be valid; it must be cheap and allocate nothing.
	Owns(id AgentID) bool
	// Send carries payload to the owner of to. from is the sending agent,
	// the zero AgentID from outside the engine. ctx is the sender's (a
	// handler's sends get context.Background()). A nil error means the
	// cluster accepted the message and will either have it delivered or
	// report it as a dead letter.
	Send(ctx context.Context, from, to AgentID, payload []byte) error
	// Request carries a request to the owner of to and calls done exactly
	// once with the owner's reply or error, unless Request itself returns
	// an error (then the request was not sent and done is never called).
	// timeout is the requester's bound (zero: none given); the engine
	// enforces it too, so done may come after the requester gave up.
	Request(from, to AgentID, payload []byte, timeout time.Duration, done func(reply []byte, err error)) error
	// Publish carries a publish to the other nodes, whose subscribers
	// receive it through PublishLocal. from is the publishing agent, zero
	// from outside.
	Publish(from AgentID, topic string, payload []byte) error
}

// WithCluster joins the engine to a cluster: the ID-based sends, requests
// and publishes consult c (see Cluster). A nil c means none.
func WithCluster(c Cluster) Option {
	return optionFunc(func(cfg *config) error {
		cfg.cluster = c
		return nil
	})
}

// remote reports whether id belongs to another node: false, after one nil
// check, when no Cluster is set.
func (e *Engine) remote(id AgentID) bool { return e.cluster != nil && !e.cluster.Owns(id) }

// sendRemote hands a send of an ID owned elsewhere to the Cluster, after
// the checks a local send makes first.
func (e *Engine) sendRemote(ctx context.Context, from *Context, to AgentID, payload []byte) error {
	if err := to.Validate(); err != nil {
		return err
	}
	var fromID AgentID
	if from == nil {
		if e.state.Load() >= stateStopping {
			return fmt.Errorf("%w: send to %s", ErrStopped, to)
		}
	} else {
		fromID = from.a.ident()
	}
	return e.cluster.Send(ctx, fromID, to, payload)
}

// requestRemote is Context.RequestID for an ID owned elsewhere: the
// request is made as Context.Request makes one (its timeout on the loop,
// then called once on the loop), and carried by the Cluster.
func (c *Context) requestRemote(to AgentID, payload []byte, timeout time.Duration, then func(c *Context, reply []byte, err error)) error {
	if timeout <= 0 {
		return fmt.Errorf("%w: request timeout %v", ErrInvalidDuration, timeout)
	}
	if then == nil {
		return fmt.Errorf("%w: nil request callback", ErrInvalidArgument)
	}
	if err := to.Validate(); err != nil {
		return err
	}
	rq := &request{from: c.a, fromGen: c.a.gen.Load(), then: then, toID: to} // incarnation agentRequest
	done := func(reply []byte, err error) { rq.complete(nil, agentRequest, reply, err) }
	if err := c.l.e.cluster.Request(c.a.ident(), to, payload, timeout, done); err != nil {
		return err
	}
	if rq.state.Load() == agentRequest {
		rq.timeout = c.l.addTimer(c.a, timeout, 0, nil)
		rq.timeout.t.rq = rq
	}
	return nil
}

// requestRemoteOutside is Engine.RequestID for an ID owned elsewhere: it
// waits for the Cluster's answer until ctx ends or the engine stops.
func (e *Engine) requestRemoteOutside(ctx context.Context, to AgentID, payload []byte) ([]byte, error) {
	if err := to.Validate(); err != nil {
		return nil, err
	}
	if e.state.Load() >= stateStopping {
		return nil, fmt.Errorf("%w: request to %s", ErrStopped, to)
	}
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			return nil, requestCtxErr(to, context.DeadlineExceeded)
		}
	}
	ch := make(chan reply, 1)
	if err := e.cluster.Request(AgentID{}, to, payload, timeout, func(p []byte, err error) { ch <- reply{p, err} }); err != nil {
		return nil, err
	}
	select {
	case rep := <-ch:
		return rep.payload, rep.err
	case <-ctx.Done():
		return nil, requestCtxErr(to, ctx.Err())
	case <-e.stopDone:
		return nil, fmt.Errorf("%w: request to %s", ErrStopped, to)
	}
}

// DeliverRemote is the owner side of Cluster.Send: it sends payload to the
// local agent id as SendIDContext does (spawning it through its type when
// it does not exist, applying its mailbox's overflow policy, a Block
// mailbox waiting for room until ctx ends) without consulting the
// Cluster, and returns the error a local sender would get, for the
// cluster to report back. The receiver sees a Message with a zero Sender:
// a Ref names only a local agent, and a Message has no room for a remote
// ID (requests have one: Context.RemoteSender).
func (e *Engine) DeliverRemote(ctx context.Context, id AgentID, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("engine: send to %s: %w", id, err)
	}
	r, err := e.resolve(id)
	if err != nil {
		return err
	}
	return e.sendExternal(ctx, r, Message{Payload: payload})
}

// RequestRemote is the owner side of Cluster.Request: it sends the request
// to the local agent id as Engine.RequestID does (spawning it when
// needed), without consulting the Cluster, and calls done exactly once
// with the reply or the error a local requester would get (ErrNoReply,
// ErrTerminated, a *PanicError, ErrStopped, or a mailbox's refusal), on
// whatever goroutine settles the request: done must not block. When
// RequestRemote returns an error the request was not sent and done is not
// called. The handler sees from through Context.RemoteSender. A request
// that reaches a Block mailbox with no room is refused (ErrMailboxFull)
// rather than waited for: the requester's timeout bounds the exchange.
func (e *Engine) RequestRemote(from, id AgentID, payload []byte, done func(reply []byte, err error)) error {
	if done == nil {
		return fmt.Errorf("%w: nil request callback", ErrInvalidArgument)
	}
	r, err := e.resolve(id)
	if err != nil {
		return err
	}
	rq := &request{done: done, remote: from, to: r.a}
	return e.sendExternal(nonBlocking, r, Message{Payload: payload, x: unsafe.Pointer(rq)})
}

// nonBlocking is an already-cancelled context: a Block mailbox without
// room refuses at once instead of waiting.
var nonBlocking = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// PublishLocal is the owner side of Cluster.Publish: it delivers payload
// to this engine's subscribers of topic as Publish does, without handing it
// to the Cluster again, with a zero Sender. A type subscription feeds the
// key's agent only where the Cluster says it is owned.
func (e *Engine) PublishLocal(topic string, payload []byte) error {
	if e.state.Load() >= stateStopping {
		return fmt.Errorf("%w: publish %q", ErrStopped, topic)
	}
	return e.publishLocal(nil, topic, Message{Payload: payload, Topic: topic})
}

// RemoteSender returns the AgentID of the agent on another node that sent
// the request being handled, and true; false when the current message is
// not a request from another node (a Message has no room for a remote ID:
// the Sender of a message from another node is zero).
func (c *Context) RemoteSender() (AgentID, bool) {
	if c.rq == nil || c.rq.remote == (AgentID{}) {
		return AgentID{}, false
	}
	return c.rq.remote, true
}

// target names the agent a request was addressed to, for errors.
func (rq *request) target() AgentID {
	if rq.to == nil {
		return rq.toID
	}
	return rq.to.ident()
}

// publishCluster is publish with a Cluster: the local subscribers first,
// then the other nodes; a topic that is not valid goes nowhere.
func (e *Engine) publishCluster(c *Context, topic string, m Message) error {
	var t messaging.Topic
	if err := t.Parse(topic); err != nil {
		return err
	}
	var from AgentID
	if c != nil {
		from = c.a.ident()
	}
	local := e.publishLocal(c, topic, m)
	return errors.Join(local, e.cluster.Publish(from, topic, m.Payload))
}
