package codec_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/agentloop/agentloop/codec"
	"github.com/agentloop/agentloop/engine"
)

func init() {
	codec.MustRegister[*wrapperspb.StringValue](codec.Default, "test.StringValue", codec.Protobuf)
	codec.MustRegister[*wrapperspb.Int64Value](codec.Default, "test.Int64Value", codec.Protobuf)
}

// SendRef from outside and Send from a handler, both decoded by Handle.
func TestSendAndHandle(t *testing.T) {
	e := startedEngine(t)
	got := make(chan Point, 4)
	must(t, e.Register("sink", func() engine.Agent {
		return codec.Handle(func(_ *engine.Context, p Point) { got <- p })
	}))
	var sink engine.Ref
	must(t, e.Register("relay", func() engine.Agent {
		return codec.Handle(func(c *engine.Context, p Point) {
			if err := codec.Send(c, sink, Point{p.X * 10, p.Y * 10}); err != nil {
				t.Error(err)
			}
		})
	}))
	must(t, e.Start())
	var err error
	sink, err = e.Spawn(engine.AgentID{Type: "sink", Key: "1"}, engine.OnLoop(1))
	must(t, err)
	relay, err := e.Spawn(engine.AgentID{Type: "relay", Key: "1"}, engine.OnLoop(0))
	must(t, err)

	must(t, codec.SendRef(sink, Point{1, 2}))
	if p := wait(t, got, "direct point"); p != (Point{1, 2}) {
		t.Errorf("direct: %+v", p)
	}
	must(t, codec.SendRef(relay, Point{3, 4}))
	if p := wait(t, got, "relayed point"); p != (Point{30, 40}) {
		t.Errorf("relayed: %+v", p)
	}
	type unregistered struct{}
	checkErr(t, "SendRef of an unregistered type", codec.SendRef(sink, unregistered{}), codec.ErrUnregistered, "unregistered")
}

// Decode inside a plain agent, with the raw payload beside it.
func TestDecode(t *testing.T) {
	e := startedEngine(t)
	type result struct {
		s   *wrapperspb.StringValue
		err error
	}
	got := make(chan result, 2)
	must(t, e.Register("plain", func() engine.Agent {
		return agentFunc(func(_ *engine.Context, m engine.Message) {
			s, err := codec.Decode[*wrapperspb.StringValue](m)
			got <- result{s, err}
		})
	}))
	must(t, e.Start())
	r, err := e.Spawn(engine.AgentID{Type: "plain", Key: "1"})
	must(t, err)
	must(t, codec.SendRef(r, wrapperspb.String("typed")))
	if res := wait(t, got, "typed"); res.err != nil || res.s.GetValue() != "typed" {
		t.Errorf("typed: %v, %v", res.s, res.err)
	}
	must(t, r.Send([]byte("raw")))
	res := wait(t, got, "raw")
	checkErr(t, "Decode of raw bytes", res.err, codec.ErrBadMagic, "0x72")
}

type agentFunc func(c *engine.Context, m engine.Message)

func (f agentFunc) Receive(c *engine.Context, m engine.Message) { f(c, m) }

// A Router dispatches by type name, hands raw payloads to Raw and what it
// cannot handle to OnError.
func TestRouter(t *testing.T) {
	e := startedEngine(t)
	events := make(chan string, 16)
	rt := codec.NewRouter(nil)
	must(t, codec.Route(rt, func(_ *engine.Context, p Point) { events <- "point " + strconv.Itoa(p.X) }))
	must(t, codec.Route(rt, func(_ *engine.Context, s *wrapperspb.StringValue) { events <- "string " + s.GetValue() }))
	rt.Raw(func(_ *engine.Context, m engine.Message) { events <- "raw " + string(m.Payload) })
	rt.OnError(func(_ *engine.Context, _ engine.Message, err error) { events <- "error " + errName(err) })
	checkErr(t, "second route", codec.Route(rt, func(*engine.Context, Point) {}), codec.ErrDuplicate, "test.Point")
	type unregistered struct{}
	checkErr(t, "route of an unregistered type", codec.Route(rt, func(*engine.Context, unregistered) {}), codec.ErrUnregistered)
	checkErr(t, "nil handler", codec.Route[Greeting](rt, nil), codec.ErrInvalidCodec, "test.Greeting")

	must(t, e.Register("routed", func() engine.Agent { return rt })) // one Router for every agent
	must(t, e.Start())
	r, err := e.Spawn(engine.AgentID{Type: "routed", Key: "1"})
	must(t, err)

	greeting, err := codec.Marshal(codec.Default, Greeting{"x"})
	must(t, err)
	badPoint := append([]byte{codec.Magic, codec.Version, byte(codec.ContentJSON), byte(len("test.Point"))}, "test.Point{"...)
	sends := []func() error{
		func() error { return codec.SendRef(r, Point{X: 7}) },
		func() error { return codec.SendRef(r, wrapperspb.String("s")) },
		func() error { return r.Send([]byte("bytes")) },
		func() error { return r.Send(nil) },
		func() error { return r.Send(greeting) },                          // registered, no route
		func() error { return r.Send(badPoint) },                          // route, bad body
		func() error { return r.Send([]byte{codec.Magic, 9, 1, 1, 'p'}) }, // bad version
		func() error { return r.Send([]byte{codec.Magic, 1, 1, 5, 'p'}) }, // truncated
	}
	for _, s := range sends {
		must(t, s())
	}
	want := []string{"point 7", "string s", "raw bytes", "raw ", "error ErrUnknownType", "error ErrDecode", "error ErrVersion", "error ErrTruncated"}
	for _, w := range want {
		if got := wait(t, events, w); got != w {
			t.Errorf("got %q, want %q", got, w)
		}
	}
}

// One Router serves agents on both loops at once (run with -race).
func TestRouterShared(t *testing.T) {
	e := startedEngine(t)
	const agents, each = 4, 200
	var sum atomic.Int64
	done := make(chan struct{}, agents*each)
	rt := codec.NewRouter(nil)
	must(t, codec.Route(rt, func(_ *engine.Context, p Point) {
		sum.Add(int64(p.X))
		done <- struct{}{}
	}))
	must(t, e.Register("shared", func() engine.Agent { return rt }))
	must(t, e.Start())
	var refs []engine.Ref
	for i := 0; i < agents; i++ {
		r, err := e.Spawn(engine.AgentID{Type: "shared", Key: strconv.Itoa(i)}, engine.OnLoop(i%2))
		must(t, err)
		refs = append(refs, r)
	}
	var wg sync.WaitGroup
	for _, r := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= each; i++ {
				if err := codec.SendRef(r, Point{X: i}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i := 0; i < agents*each; i++ {
		wait(t, done, "routed message")
	}
	if got, want := sum.Load(), int64(agents*each*(each+1)/2); got != want {
		t.Errorf("sum %d, want %d", got, want)
	}
}

// Without a Raw handler a raw payload is an error; without OnError the
// router logs the error at Warn level and drops the message.
func TestRouterDefaultsLog(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	logged := make(chan struct{}, 4)
	old := slog.Default()
	slog.SetDefault(slog.New(notify{slog.NewTextHandler(lockedWriter{&mu, &buf}, nil), logged}))
	defer slog.SetDefault(old)

	e := startedEngine(t)
	done := make(chan Point, 1)
	must(t, e.Register("one", func() engine.Agent {
		return codec.Handle(func(_ *engine.Context, p Point) { done <- p })
	}))
	must(t, e.Start())
	r, err := e.Spawn(engine.AgentID{Type: "one", Key: "k"})
	must(t, err)
	must(t, r.Send([]byte("raw")))
	wait(t, logged, "log record")
	// The request gets ErrNoReply: the router dropped it.
	_, err = r.Request(context.Background(), []byte("raw request"))
	checkErr(t, "request dropped by the router", err, engine.ErrNoReply)
	wait(t, logged, "second log record")
	must(t, codec.SendRef(r, Point{5, 5}))
	wait(t, done, "point after the drops")

	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, s := range []string{"level=WARN", `msg="codec: message dropped"`, "agent=one/k", "not an encoded message", "0x72"} {
		if !strings.Contains(out, s) {
			t.Errorf("log %q lacks %q", out, s)
		}
	}
}

func TestHandlePanicsForUnregistered(t *testing.T) {
	type unregistered struct{}
	defer func() {
		err, _ := recover().(error)
		if !errors.Is(err, codec.ErrUnregistered) {
			t.Errorf("recovered %v, want ErrUnregistered", err)
		}
	}()
	codec.Handle(func(*engine.Context, unregistered) {})
}

// Typed requests from outside (Request) and from a handler (RequestFrom),
// answered by Reply and by Answer after ReplyLater.
func TestRequests(t *testing.T) {
	e := startedEngine(t)
	// doubler answers a Point with its double, at once.
	must(t, e.Register("doubler", func() engine.Agent {
		return codec.Handle(func(c *engine.Context, p Point) {
			if err := codec.Reply(c, Point{2 * p.X, 2 * p.Y}); err != nil {
				t.Error(err)
			}
		})
	}))
	// later answers a StringValue with its length, from another goroutine.
	must(t, e.Register("later", func() engine.Agent {
		return codec.Handle(func(c *engine.Context, s *wrapperspb.StringValue) {
			h, err := c.ReplyLater()
			if err != nil {
				t.Error(err)
				return
			}
			go func() {
				if err := codec.Answer(h, wrapperspb.Int64(int64(len(s.GetValue())))); err != nil {
					t.Error(err)
				}
			}()
		})
	}))
	// wrong answers a Point with a Greeting.
	must(t, e.Register("wrong", func() engine.Agent {
		return codec.Handle(func(c *engine.Context, _ Point) { _ = codec.Reply(c, Greeting{"no"}) })
	}))
	var doubler, later engine.Ref
	type asked struct {
		p   Point
		n   int64
		err error
	}
	results := make(chan asked, 2)
	// asker asks doubler and later from its handler, and reports.
	must(t, e.Register("asker", func() engine.Agent {
		return agentFunc(func(c *engine.Context, _ engine.Message) {
			err := codec.RequestFrom(c, doubler, Point{5, 6}, waitTimeout, func(_ *engine.Context, p Point, err error) {
				results <- asked{p: p, err: err}
			})
			if err != nil {
				t.Error(err)
			}
			err = codec.RequestFrom(c, later, wrapperspb.String("four"), waitTimeout, func(_ *engine.Context, n *wrapperspb.Int64Value, err error) {
				results <- asked{n: n.GetValue(), err: err}
			})
			if err != nil {
				t.Error(err)
			}
		})
	}))
	must(t, e.Start())
	var err error
	doubler, err = e.Spawn(engine.AgentID{Type: "doubler", Key: "1"}, engine.OnLoop(0))
	must(t, err)
	later, err = e.Spawn(engine.AgentID{Type: "later", Key: "1"}, engine.OnLoop(1))
	must(t, err)
	wrong, err := e.Spawn(engine.AgentID{Type: "wrong", Key: "1"})
	must(t, err)
	asker, err := e.Spawn(engine.AgentID{Type: "asker", Key: "1"}, engine.OnLoop(1))
	must(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	p, err := codec.Request[Point, Point](ctx, doubler, Point{1, 2})
	if err != nil || p != (Point{2, 4}) {
		t.Errorf("Request to doubler: %+v, %v", p, err)
	}
	n, err := codec.Request[*wrapperspb.StringValue, *wrapperspb.Int64Value](ctx, later, wrapperspb.String("hello"))
	if err != nil || n.GetValue() != 5 {
		t.Errorf("Request to later: %v, %v", n, err)
	}
	_, err = codec.Request[Point, Point](ctx, wrong, Point{})
	checkErr(t, "reply of another type", err, codec.ErrTypeMismatch, "test.Greeting", "test.Point")
	_, err = codec.Request[Greeting, Point](ctx, doubler, Greeting{})
	checkErr(t, "request the target cannot route", err, engine.ErrNoReply)

	must(t, asker.Send(nil))
	var gotP, gotN bool
	for i := 0; i < 2; i++ {
		a := wait(t, results, "RequestFrom result")
		switch {
		case a.err != nil:
			t.Errorf("RequestFrom: %v", a.err)
		case a.p == (Point{10, 12}):
			gotP = true
		case a.n == 4:
			gotN = true
		default:
			t.Errorf("unexpected result %+v", a)
		}
	}
	if !gotP || !gotN {
		t.Errorf("results: point %v, length %v", gotP, gotN)
	}
}

// RequestFrom and Reply refuse what they cannot encode, and RequestFrom
// leaves a nil callback to the engine's error.
func TestRequestErrors(t *testing.T) {
	e := startedEngine(t)
	type unregistered struct{}
	errs := make(chan error, 4)
	var self engine.Ref
	must(t, e.Register("a", func() engine.Agent {
		return agentFunc(func(c *engine.Context, m engine.Message) {
			if m.IsRequest() {
				errs <- codec.Reply(c, unregistered{})
				_ = c.Reply([]byte("done"))
				return
			}
			errs <- codec.RequestFrom(c, self, unregistered{}, time.Second, func(*engine.Context, Point, error) {
				t.Error("then called for a request that was not sent")
			})
			errs <- codec.RequestFrom[Point, Point](c, self, Point{}, time.Second, nil)
		})
	}))
	must(t, e.Start())
	var err error
	self, err = e.Spawn(engine.AgentID{Type: "a", Key: "1"})
	must(t, err)
	must(t, self.Send(nil))
	checkErr(t, "RequestFrom unregistered", wait(t, errs, "error"), codec.ErrUnregistered)
	checkErr(t, "RequestFrom nil then", wait(t, errs, "error"), engine.ErrInvalidArgument)
	rep, err := self.Request(context.Background(), nil)
	if err != nil || string(rep) != "done" {
		t.Errorf("request: %q, %v", rep, err)
	}
	checkErr(t, "Reply unregistered", wait(t, errs, "error"), codec.ErrUnregistered)
	_, err = codec.Request[unregistered, Point](context.Background(), self, unregistered{})
	checkErr(t, "Request unregistered", err, codec.ErrUnregistered)
	checkErr(t, "Answer unregistered", codec.Answer(engine.ReplyHandle{}, unregistered{}), codec.ErrUnregistered)
}

// errName names the sentinel err matches.
func errName(err error) string {
	for _, s := range []struct {
		name string
		err  error
	}{
		{"ErrBadMagic", codec.ErrBadMagic}, {"ErrVersion", codec.ErrVersion}, {"ErrTruncated", codec.ErrTruncated},
		{"ErrInvalidName", codec.ErrInvalidName}, {"ErrUnknownContentType", codec.ErrUnknownContentType},
		{"ErrUnknownType", codec.ErrUnknownType}, {"ErrDecode", codec.ErrDecode},
	} {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	return err.Error()
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// notify is a slog handler that signals each record after writing it.
type notify struct {
	slog.Handler
	ch chan struct{}
}

func (n notify) Handle(ctx context.Context, r slog.Record) error {
	err := n.Handler.Handle(ctx, r)
	select {
	case n.ch <- struct{}{}:
	default: // nobody waits for more records
	}
	return err
}
