package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentloop/agentloop/engine"
)

func TestListenBadAddr(t *testing.T) {
	e := startEngine(t, engine.WithLoops(1))
	for _, addr := range []string{
		"",
		"127.0.0.1",
		"127.0.0.1:",
		"127.0.0.1:http",
		"127.0.0.1:65536",
		"127.0.0.1:-1",
		"[::1",
		"localhost:9x",
		"127.0.0.1:9464:1",
	} {
		stop, bound, err := Listen(addr, e)
		if !errors.Is(err, ErrAddr) {
			t.Errorf("Listen(%q): error %v, want ErrAddr", addr, err)
		} else if !strings.Contains(err.Error(), `"`+addr+`"`) {
			t.Errorf("Listen(%q): error %q does not name the address", addr, err)
		}
		if stop != nil || bound != "" {
			t.Errorf("Listen(%q) returned a server (%q) with its error", addr, bound)
			if stop != nil {
				_ = stop(context.Background())
			}
		}
	}
}

// TestListen serves on a free port, scrapes it, refuses a second server
// on the same address, and stops: afterwards nothing listens and stop is
// idempotent.
func TestListen(t *testing.T) {
	e := startEngine(t, engine.WithLoops(2))
	register(t, e, "device", nop)
	send(t, spawn(t, e, engine.AgentID{Type: "device", Key: "0"}), 3)
	waitProcessed(t, e, 3)

	stop, addr, err := Listen("127.0.0.1:0", e, WithNamespace("gw"))
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = stop(context.Background())
		}
	})
	if strings.HasSuffix(addr, ":0") || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("bound address %q, want 127.0.0.1 and the port picked", addr)
	}

	f := scrape(t, "http://"+addr+Path)
	if got := f.value(t, "gw_messages_processed_total", typ("device")); got != 3 {
		t.Errorf("gw_messages_processed_total = %v, want 3", got)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := f[name]; !ok {
			t.Errorf("no %s: the Go and process collectors are missing", name)
		}
	}
	if resp, err := http.Get("http://" + addr + "/other"); err != nil {
		t.Errorf("GET /other: %v", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /other: %s, want 404", resp.Status)
		}
	}

	if stop2, _, err := Listen(addr, e); err == nil {
		_ = stop2(context.Background())
		t.Errorf("a second Listen(%q) succeeded", addr)
	} else if errors.Is(err, ErrAddr) || !strings.Contains(err.Error(), addr) {
		t.Errorf("second Listen(%q): error %q, want a listen error naming the address", addr, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	stopped = true
	if err := stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := stop(ctx); err != nil {
		t.Errorf("second stop: %v", err)
	}
	if resp, err := http.Get("http://" + addr + Path); err == nil {
		resp.Body.Close()
		t.Errorf("GET after stop: %s, want a connection error", resp.Status)
	}
}

// TestStopWithExpiredContext stops with a context that is already done
// while a client holds an idle keep-alive connection: stop still closes
// everything and returns.
func TestStopWithExpiredContext(t *testing.T) {
	e := startEngine(t, engine.WithLoops(1))
	stop, addr, err := Listen("127.0.0.1:0", e)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://" + addr + Path)
	if err != nil {
		_ = stop(context.Background())
		t.Fatalf("GET: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := stop(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("stop: %v, want nil or context.Canceled", err)
	}
}

// TestHandler serves a registry of the caller's through Handler.
func TestHandler(t *testing.T) {
	e := startEngine(t, engine.WithLoops(1))
	register(t, e, "device", nop)
	send(t, spawn(t, e, engine.AgentID{Type: "device", Key: "0"}), 2)
	waitProcessed(t, e, 2)

	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(e, WithConstLabels(prometheus.Labels{"site": "north"})))
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()

	f := scrape(t, srv.URL)
	want := map[string]string{"type": "device", "site": "north"}
	if got := f.value(t, "agentloop_messages_received_total", want); got != 2 {
		t.Errorf("received_total%v = %v, want 2", want, got)
	}
	if _, ok := f["go_goroutines"]; ok {
		t.Error("Handler serves the Go collector that was not registered")
	}
}
