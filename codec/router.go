package codec

import (
	"fmt"
	"log/slog"

	"github.com/agentloop/agentloop/engine"
)

// Router is an engine.Agent that decodes each message and calls the
// handler of its type, chosen by the type name in its header. Build it
// with NewRouter and Route, before the engine hands it a message; Receive
// only reads it, so one Router may serve every agent of a type, on every
// loop, when its handlers keep no per-agent state. An agent with state
// builds its own Router in its factory, over handlers that close over it,
// and calls Receive from its own Receive method.
//
// A message that is not encoded (ErrBadMagic: a timer tick, raw bytes)
// goes to the Raw handler when there is one. Every other message that
// cannot be handled (no Raw handler, a bad header, a type without a route,
// a body the codec refuses) goes to the OnError handler; without one the
// router logs it with slog.Default at Warn level and drops it. A request
// dropped so gets ErrNoReply.
type Router struct {
	reg     *Registry
	routes  map[string]func(c *engine.Context, m engine.Message)
	raw     func(c *engine.Context, m engine.Message)
	onError func(c *engine.Context, m engine.Message, err error)
}

// NewRouter returns a Router without routes that decodes with r (nil r is
// Default).
func NewRouter(r *Registry) *Router {
	if r == nil {
		r = Default
	}
	return &Router{reg: r, routes: map[string]func(*engine.Context, engine.Message){}}
}

// Route makes f the handler of messages holding a T: those whose header
// carries the name T is registered under in the router's registry. The
// value passed to f does not alias the payload. It returns ErrUnregistered
// when T is not registered and ErrDuplicate when T has a route already.
// Not safe while the router receives.
func Route[T any](rt *Router, f func(c *engine.Context, v T)) error {
	name, err := NameOf[T](rt.reg)
	if err != nil {
		return err
	}
	if f == nil {
		return fmt.Errorf("%w: nil handler for %q", ErrInvalidCodec, name)
	}
	if _, ok := rt.routes[name]; ok {
		return fmt.Errorf("%w: route for %q", ErrDuplicate, name)
	}
	reg := rt.reg
	rt.routes[name] = func(c *engine.Context, m engine.Message) {
		v, err := Unmarshal[T](reg, m.Payload)
		if err != nil {
			rt.fail(c, m, err)
			return
		}
		f(c, v)
	}
	return nil
}

// Raw sets the handler of messages without a codec header (timer ticks,
// payloads sent as plain bytes). Not safe while the router receives.
func (rt *Router) Raw(f func(c *engine.Context, m engine.Message)) { rt.raw = f }

// OnError sets the handler of messages the router cannot handle, with the
// reason: an error matching ErrBadMagic (and no Raw handler), ErrVersion,
// ErrTruncated, ErrInvalidName, ErrUnknownContentType, ErrUnknownType (no
// route for the name) or ErrDecode. Not safe while the router receives.
func (rt *Router) OnError(f func(c *engine.Context, m engine.Message, err error)) { rt.onError = f }

// Receive dispatches m; it implements engine.Agent.
func (rt *Router) Receive(c *engine.Context, m engine.Message) {
	if rt.raw != nil && (len(m.Payload) == 0 || m.Payload[0] != Magic) {
		rt.raw(c, m) // checked first: a raw message costs no error value
		return
	}
	_, name, _, err := parseHeader(m.Payload)
	if err != nil {
		rt.fail(c, m, err)
		return
	}
	route := rt.routes[string(name)] // no allocation: the map lookup converts in place
	if route == nil {
		rt.fail(c, m, fmt.Errorf("%w: %q has no route", ErrUnknownType, name))
		return
	}
	route(c, m)
}

func (rt *Router) fail(c *engine.Context, m engine.Message, err error) {
	if rt.onError != nil {
		rt.onError(c, m, err)
		return
	}
	slog.Default().Warn("codec: message dropped", "agent", c.ID().String(), "error", err)
}

// Handle returns an agent that decodes every message as a T with Default
// and calls f with it: a Router with the one route. It panics when T is
// not registered in Default, a mistake of the program rather than of its
// input. Use it as a factory's result:
//
//	e.Register("greeter", func() engine.Agent { return codec.Handle(greet) })
func Handle[T any](f func(c *engine.Context, v T)) *Router {
	rt := NewRouter(Default)
	if err := Route(rt, f); err != nil {
		panic(err)
	}
	return rt
}
