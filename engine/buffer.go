package engine

import (
	"fmt"
	"unsafe"

	"github.com/agentloop/agentloop/pool"
)

// Payloads from a pool.Buffers travel by reference: the Message carries the
// *pool.Buffer (tagged by the low bit of Message.x, which points one byte
// into the Buffer object, so the collector still sees it) and the engine
// holds one reference per delivery. Each delivery releases its reference
// when the handler returns (or when the message is dead-lettered instead),
// so the buffer returns to its size class after the last delivery, never
// earlier.

func withBuffer(b *pool.Buffer) unsafe.Pointer { return unsafe.Add(unsafe.Pointer(b), 1) }

// buffer returns the pool buffer that holds the message's payload, or nil.
func (m *Message) buffer() *pool.Buffer {
	if uintptr(m.x)&1 == 0 { // nil, a request or a timer tick
		return nil
	}
	return (*pool.Buffer)(unsafe.Add(m.x, -1))
}

// PublishBuffer publishes b.Bytes() on topic like Publish, without copying,
// and takes over the caller's reference to b: the engine retains b once per
// subscriber it delivers to and releases it after that subscriber's
// handler returns (or when the message is dead-lettered). The buffer goes
// back to its pool after the last delivery; with no subscriber, at once.
// The caller must not use b after the call, whatever the result.
// Receivers see b.Bytes() as Message.Payload, valid only until their
// handler returns: copy what must outlive it.
func (e *Engine) PublishBuffer(topic string, b *pool.Buffer) error {
	if b == nil {
		return fmt.Errorf("%w: PublishBuffer: nil buffer", ErrInvalidArgument)
	}
	if e.state.Load() >= stateStopping {
		b.Release()
		return fmt.Errorf("%w: publish %q", ErrStopped, topic)
	}
	return e.publishBuffer(nil, topic, b)
}

// PublishBuffer is Engine.PublishBuffer from inside a handler: fan-out to
// subscribers on the agent's own loop goes straight into their mailboxes.
func (c *Context) PublishBuffer(topic string, b *pool.Buffer) error {
	if b == nil {
		return fmt.Errorf("%w: PublishBuffer: nil buffer", ErrInvalidArgument)
	}
	return c.l.e.publishBuffer(c, topic, b)
}

// publishBuffer holds the caller's reference for the whole fan-out, so
// deliveries that complete while it runs never see the count reach zero;
// publish retains once per delivery before posting it.
func (e *Engine) publishBuffer(c *Context, topic string, b *pool.Buffer) error {
	m := Message{Payload: b.Bytes(), Topic: topic, x: withBuffer(b)}
	if c != nil {
		m.Sender = c.a.ref()
	}
	defer b.Release()
	return e.publish(c, topic, m)
}
