package codec

import (
	"context"
	"time"

	"github.com/agentloop/agentloop/engine"
)

// This file: sending, receiving and requesting Go values through the
// engine, with the Default registry. Each helper is Marshal or Unmarshal
// around one engine call; code that sends []byte pays nothing for them.

// Send encodes v with Default and sends it from a handler to the agent
// to, as c.Send does. It returns ErrUnregistered (or an ErrEncode) without
// sending when v cannot be encoded, else c.Send's error.
func Send[T any](c *engine.Context, to engine.Ref, v T) error {
	p, err := Marshal(Default, v)
	if err != nil {
		return err
	}
	return c.Send(to, p)
}

// SendRef encodes v with Default and sends it from outside the engine to
// the agent r refers to, as r.Send does (waiting for room in a full Block
// mailbox). Concurrency-safe.
func SendRef[T any](r engine.Ref, v T) error {
	p, err := Marshal(Default, v)
	if err != nil {
		return err
	}
	return r.Send(p)
}

// Decode decodes a received message into a value of T with Default: see
// Unmarshal for its errors. The value does not alias m.Payload, so it may
// be kept after the handler returns.
func Decode[T any](m engine.Message) (T, error) { return Unmarshal[T](Default, m.Payload) }

// Request encodes req with Default, sends it to the agent to from outside
// the engine as to.Request does, waits for the reply (honouring ctx) and
// decodes it as Resp. A reply that is not a Resp is an error matching
// ErrTypeMismatch (or another decoding error); the engine's errors
// (ErrTimeout, ErrNoReply, ErrTerminated…) come back as they are.
// Concurrency-safe.
func Request[Req, Resp any](ctx context.Context, to engine.Ref, req Req) (Resp, error) {
	var zero Resp
	p, err := Marshal(Default, req)
	if err != nil {
		return zero, err
	}
	rep, err := to.Request(ctx, p)
	if err != nil {
		return zero, err
	}
	return Unmarshal[Resp](Default, rep)
}

// RequestFrom is Request from a handler, as c.Request: it never waits;
// then runs on the requesting agent's loop with the decoded reply, or with
// the engine's error or a decoding error. When RequestFrom returns an
// error the request was not sent and then is never called.
func RequestFrom[Req, Resp any](c *engine.Context, to engine.Ref, req Req, timeout time.Duration, then func(c *engine.Context, resp Resp, err error)) error {
	p, err := Marshal(Default, req)
	if err != nil {
		return err
	}
	if then == nil { // let the engine refuse it with its own error
		return c.Request(to, p, timeout, nil)
	}
	return c.Request(to, p, timeout, func(c *engine.Context, rep []byte, err error) {
		var resp Resp
		if err == nil {
			resp, err = Unmarshal[Resp](Default, rep)
		}
		then(c, resp, err)
	})
}

// Reply encodes v with Default and answers the request being handled, as
// c.Reply does. An encoding error answers nothing: the handler may still
// reply otherwise.
func Reply[T any](c *engine.Context, v T) error {
	p, err := Marshal(Default, v)
	if err != nil {
		return err
	}
	return c.Reply(p)
}

// Answer encodes v with Default and answers a request taken with
// Context.ReplyLater, as h.Reply does. Concurrency-safe.
func Answer[T any](h engine.ReplyHandle, v T) error {
	p, err := Marshal(Default, v)
	if err != nil {
		return err
	}
	return h.Reply(p)
}
