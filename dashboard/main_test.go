package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/agentloop/agentloop/dashboard"
	"github.com/agentloop/agentloop/engine"
)

func TestMain(m *testing.M) {
	// IgnoreCurrent: the goroutines that exist before any test are those
	// of ants' package-level default pool, started by its init when the
	// engine is imported.
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

// waitTimeout bounds every wait: it only turns a hang into a failure.
const waitTimeout = 10 * time.Second

type agentFunc func(c *engine.Context, m engine.Message)

func (f agentFunc) Receive(c *engine.Context, m engine.Message) { f(c, m) }

func factory(f func(c *engine.Context, m engine.Message)) func() engine.Agent {
	return func() engine.Agent { return agentFunc(f) }
}

var nop = factory(func(*engine.Context, engine.Message) {})

// startEngine returns a started engine that is stopped when the test ends.
func startEngine(t testing.TB, opts ...engine.Option) *engine.Engine {
	t.Helper()
	e, err := engine.New(opts...)
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := e.Stop(ctx, engine.Immediate()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	if err := e.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return e
}

func register(t testing.TB, e *engine.Engine, name string, f func() engine.Agent, opts ...engine.RegisterOption) {
	t.Helper()
	if err := e.Register(name, f, opts...); err != nil {
		t.Fatalf("Register(%q): %v", name, err)
	}
}

func spawn(t testing.TB, e *engine.Engine, id engine.AgentID, opts ...engine.SpawnOption) engine.Ref {
	t.Helper()
	r, err := e.Spawn(id, opts...)
	if err != nil {
		t.Fatalf("Spawn(%v): %v", id, err)
	}
	return r
}

func send(t testing.TB, r engine.Ref, n int) {
	t.Helper()
	for range n {
		if err := r.Send([]byte("x")); err != nil {
			t.Fatalf("Send to %v: %v", r.ID(), err)
		}
	}
}

func idle(t testing.TB, e *engine.Engine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := e.WaitIdle(ctx); err != nil {
		t.Fatalf("WaitIdle: %v", err)
	}
}

// manual returns a dashboard of e whose sampler ticks only on Tick,
// served on an httptest server; both are closed when the test ends.
func manual(t testing.TB, e *engine.Engine, opts dashboard.Options) (*dashboard.Dashboard, string) {
	t.Helper()
	d, err := dashboard.NewManual(e, opts)
	if err != nil {
		t.Fatalf("NewManual: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle(dashboard.Path, d)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		srv.Close()
	})
	return d, srv.URL + dashboard.Path
}

// event is one Server-Sent Event.
type event struct {
	name, id, data string
}

// stream is an open text/event-stream, read by a goroutine of its own into
// events; ended is closed when the body ends.
type stream struct {
	resp   *http.Response
	events chan event
	ended  chan error
	cancel context.CancelFunc
}

// open GETs url, which must answer 200 with an event stream.
func open(t testing.TB, url string) *stream {
	t.Helper()
	s, code, body := tryOpen(t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	return s
}

// tryOpen GETs url; on 200 it returns the stream, otherwise the status and
// body.
func tryOpen(t testing.TB, url string) (*stream, int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		return nil, resp.StatusCode, string(b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("GET %s: Content-Type %q", url, ct)
	}
	s := &stream{resp: resp, events: make(chan event, 1024), ended: make(chan error, 1), cancel: cancel}
	go s.read()
	t.Cleanup(s.close)
	return s, resp.StatusCode, ""
}

func (s *stream) read() {
	r := bufio.NewReader(s.resp.Body)
	var ev event
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			s.ended <- err
			close(s.events)
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev.data != "" || ev.name != "" {
				s.events <- ev
			}
			ev = event{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			ev.name = line[len("event: "):]
		case strings.HasPrefix(line, "id: "):
			ev.id = line[len("id: "):]
		case strings.HasPrefix(line, "data: "):
			ev.data += line[len("data: "):]
		}
	}
}

// close ends the request, as a client going away does.
func (s *stream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next returns the next event.
func (s *stream) next(t testing.TB) event {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatalf("the stream ended, want another event")
		}
		return ev
	case <-time.After(waitTimeout):
		t.Fatalf("no event after %v", waitTimeout)
	}
	panic("unreachable")
}

// nextNamed returns the next event, which must be named name, with its
// data decoded into v.
func (s *stream) nextNamed(t testing.TB, name string, v any) event {
	t.Helper()
	ev := s.next(t)
	if ev.name != name {
		t.Fatalf("event %q (%s), want %q", ev.name, ev.data, name)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(ev.data), v); err != nil {
			t.Fatalf("event %q: data %s: %v", name, ev.data, err)
		}
	}
	return ev
}

// waitEnd waits until the server ends the stream.
func (s *stream) waitEnd(t testing.TB) {
	t.Helper()
	for {
		select {
		case _, ok := <-s.events:
			if !ok {
				return
			}
		case <-time.After(waitTimeout):
			t.Fatalf("the stream did not end within %v", waitTimeout)
		}
	}
}
