package dashboard_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentloop/agentloop/dashboard"
	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/pool"
)

// keys returns the sorted keys of a JSON object.
func keys(t testing.TB, raw json.RawMessage) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func wantKeys(t testing.TB, what string, raw json.RawMessage, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := keys(t, raw); !slices.Equal(got, want) {
		t.Errorf("%s: fields %v, want %v", what, got, want)
	}
}

// TestEventsSnapshots: the history on connect, then one snapshot per tick,
// with every documented field, and figures that follow the engine.
func TestEventsSnapshots(t *testing.T) {
	e := startEngine(t, engine.WithLoops(2))
	register(t, e, "worker", nop, engine.Priority(80))
	register(t, e, "small", nop, engine.Mailbox(2, engine.DropNewest))
	w0 := spawn(t, e, engine.AgentID{Type: "worker", Key: "0"}, engine.OnLoop(0))
	w1 := spawn(t, e, engine.AgentID{Type: "worker", Key: "1"}, engine.OnLoop(1))
	small := spawn(t, e, engine.AgentID{Type: "small", Key: "s"}, engine.OnLoop(1))
	idle(t, e)
	if err := e.Pause(small.ID()); err != nil {
		t.Fatal(err)
	}
	var bufs pool.Buffers
	held := bufs.Get(10) // one live buffer

	d, base := manual(t, e, dashboard.Options{Interval: time.Second, History: 3 * time.Second, Buffers: &bufs})
	d.Tick() // the first snapshot: no rates yet
	send(t, w0, 10)
	send(t, w1, 5)
	send(t, small, 5) // 2 queued, 3 dead-lettered
	idle(t, e)
	d.Tick()

	s := open(t, base+"events")
	var hist []json.RawMessage
	s.nextNamed(t, "history", &hist)
	if len(hist) != 2 {
		t.Fatalf("history of %d snapshots, want 2", len(hist))
	}
	raw := hist[1]
	wantKeys(t, "snapshot", raw, "t", "elapsed", "agents", "deadLetters", "panics", "loops", "types", "dead",
		"mailboxes", "mailboxesStale", "memory")
	var parts struct {
		Loops, Types, Dead, Mailboxes []json.RawMessage
		Memory                        json.RawMessage
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		t.Fatal(err)
	}
	if len(parts.Loops) != 2 || len(parts.Types) != 2 || len(parts.Dead) != engine.NumDeadLetterReasons || len(parts.Mailboxes) != 1 {
		t.Fatalf("%d loops, %d types, %d reasons, %d mailboxes; want 2, 2, %d, 1: %s",
			len(parts.Loops), len(parts.Types), len(parts.Dead), len(parts.Mailboxes), engine.NumDeadLetterReasons, raw)
	}
	wantKeys(t, "loop", parts.Loops[0], "loop", "util", "inbox", "runnable", "timers", "queued")
	wantKeys(t, "type", parts.Types[0], "type", "rate", "queued", "p50", "p99", "dropRate", "dropped", "restarts",
		"processed", "agents", "priority", "capacity", "overflow", "weight", "weightLo", "weightHi")
	wantKeys(t, "dead", parts.Dead[0], "reason", "total", "rate")
	wantKeys(t, "mailbox", parts.Mailboxes[0], "agent", "type", "loop", "queued", "bytes", "weight")
	wantKeys(t, "memory", parts.Memory, "heap", "heapGoal", "goroutines", "gcCycles", "gcPauseMax", "gcPauses",
		"pools", "buffers")

	var snap dashboard.Snapshot
	if err := json.Unmarshal(raw, &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Agents != 3 || snap.DeadLetters != 3 || snap.Elapsed <= 0 || snap.Time <= 0 {
		t.Errorf("agents %d, dead letters %d, elapsed %v, t %d; want 3, 3, > 0, > 0", snap.Agents, snap.DeadLetters, snap.Elapsed, snap.Time)
	}
	byType := map[string]dashboard.TypeSample{}
	for _, ts := range snap.Types {
		byType[ts.Type] = ts
	}
	wk, sm := byType["worker"], byType["small"]
	if wk.Processed != 15 || !(wk.Rate > 0) || wk.Agents != 2 || wk.Priority != 80 || wk.Overflow != "DropNewest" || !(wk.Weight > 0) {
		t.Errorf("worker: %+v, want 15 processed at a rate > 0, 2 agents, priority 80, a weight", wk)
	}
	if sm.Queued != 2 || sm.Dropped != 3 || !(sm.DropRate > 0) || sm.Capacity != 2 {
		t.Errorf("small: %+v, want 2 queued, 3 dropped at a rate > 0, capacity 2", sm)
	}
	if q := snap.Loops[1].Queued["small"]; q != 2 || len(snap.Loops[0].Queued) != 0 {
		t.Errorf("queued by loop: %v, %v; want small: 2 on loop 1 only", snap.Loops[0].Queued, snap.Loops[1].Queued)
	}
	for _, l := range snap.Loops {
		if l.Util < 0 || l.Util > 1 {
			t.Errorf("loop %d: util %v, want 0..1", l.Loop, l.Util)
		}
	}
	if m := snap.Mailboxes[0]; m.Agent != "small/s" || m.Loop != 1 || m.Queued != 2 || m.Bytes != 2 {
		t.Errorf("mailbox %+v, want small/s on loop 1 with 2 messages of 2 bytes", m)
	}
	for _, dl := range snap.Dead {
		want := uint64(0)
		if dl.Reason == "mailbox_full" {
			want = 3
		}
		if dl.Total != want || (want > 0) != (dl.Rate > 0) {
			t.Errorf("dead %s: %+v, want total %d", dl.Reason, dl, want)
		}
	}
	if b := snap.Memory.Buffers; b == nil || b.Live != 1 || b.Gets != 1 {
		t.Errorf("buffers %+v, want 1 get, 1 live", b)
	}
	if snap.Memory.Heap == 0 || snap.Memory.Goroutines == 0 {
		t.Errorf("memory %+v: no heap or goroutines", snap.Memory)
	}
	held.Release()

	// A tick reaches the open stream as a snapshot event.
	send(t, w0, 7)
	idle(t, e)
	d.Tick()
	var next dashboard.Snapshot
	s.nextNamed(t, "snapshot", &next)
	for _, ts := range next.Types {
		if ts.Type == "worker" && ts.Processed != 22 {
			t.Errorf("worker processed %d, want 22", ts.Processed)
		}
	}
	if next.Memory.Buffers.Live != 0 {
		t.Errorf("live buffers %d after the release, want 0", next.Memory.Buffers.Live)
	}

	// The history keeps History/Interval snapshots, the latest.
	d.Tick()
	s.nextNamed(t, "snapshot", nil)
	s2 := open(t, base+"events")
	var hist2 []dashboard.Snapshot
	s2.nextNamed(t, "history", &hist2)
	if len(hist2) != 3 || hist2[2].Time < hist2[0].Time {
		t.Errorf("history of %d snapshots, want the last 3 in order", len(hist2))
	}
}

// TestLatencyPercentiles: a handler that sleeps at least 2ms cannot have a
// p50 below the bucket that holds 2ms.
func TestLatencyPercentiles(t *testing.T) {
	e := startEngine(t, engine.WithLoops(1))
	register(t, e, "slow", factory(func(*engine.Context, engine.Message) { time.Sleep(2 * time.Millisecond) }))
	r := spawn(t, e, engine.AgentID{Type: "slow", Key: "0"})
	idle(t, e)
	d, base := manual(t, e, dashboard.Options{})
	d.Tick()
	send(t, r, 5)
	idle(t, e)
	d.Tick()
	s := open(t, base+"events")
	var hist []dashboard.Snapshot
	s.nextNamed(t, "history", &hist)
	ts := hist[1].Types[0]
	if ts.P50 < 0.001 || ts.P99 < ts.P50 {
		t.Errorf("p50 %v s, p99 %v s: want p50 ≥ 1ms (the lower bound of 2ms's bucket), p99 ≥ p50", ts.P50, ts.P99)
	}
}

func TestQuantile(t *testing.T) {
	var b [engine.HandlerBuckets]uint64
	if got := dashboard.Quantile(&b, 0.5); got != 0 {
		t.Errorf("empty: %v, want 0", got)
	}
	b[0] = 100 // all at most 256ns
	if got := dashboard.Quantile(&b, 0.5); got != 128 {
		t.Errorf("uniform in the first bucket: p50 %v, want 128ns", got)
	}
	b[0], b[3] = 50, 50 // bucket 3: (1024ns, 2048ns]
	if got := dashboard.Quantile(&b, 0.99); got != 1024+1003 {
		t.Errorf("p99 %v, want 98%% into (1024ns, 2048ns]", got)
	}
	if got := dashboard.Quantile(&b, 0.5); got != 256 {
		t.Errorf("p50 %v, want 256ns, the end of the first bucket", got)
	}
	b = [engine.HandlerBuckets]uint64{}
	b[engine.HandlerBuckets-1] = 1 // unbounded
	if got, want := dashboard.Quantile(&b, 0.99), engine.HandlerBucketBound(engine.HandlerBuckets-2); got != want {
		t.Errorf("in the +Inf bucket: %v, want its lower bound %v", got, want)
	}
}

// TestCloseEndsStreams: Close ends open event and topic streams, and
// refuses new ones.
func TestCloseEndsStreams(t *testing.T) {
	e := startEngine(t)
	d, base := manual(t, e, dashboard.Options{})
	ev := open(t, base+"events")
	ev.nextNamed(t, "history", nil)
	ts := open(t, base+"stream?topic=a.>")
	ts.nextNamed(t, "ready", nil)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	ev.waitEnd(t)
	ts.waitEnd(t)
	if d.Tick() {
		t.Errorf("Tick after Close reports a snapshot")
	}
	for _, p := range []string{"events", "stream?topic=a.>"} {
		if _, code, _ := tryOpen(t, base+p); code != http.StatusServiceUnavailable {
			t.Errorf("%s after Close: %d, want 503", p, code)
		}
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestMaxStreams: one stream beyond the bound is refused with 503; closing
// one makes room.
func TestMaxStreams(t *testing.T) {
	e := startEngine(t)
	_, base := manual(t, e, dashboard.Options{MaxStreams: 2})
	a := open(t, base+"events")
	a.nextNamed(t, "history", nil)
	b := open(t, base+"stream?topic=x")
	b.nextNamed(t, "ready", nil)
	_, code, body := tryOpen(t, base+"stream?topic=y")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "MaxStreams") {
		t.Errorf("third stream: %d %q, want 503 naming MaxStreams", code, body)
	}
	a.close()
	a.waitEnd(t)
	// The server notices the client is gone on its own time: retry until
	// it has, each retry a real request.
	deadline := time.Now().Add(waitTimeout)
	for {
		s, code, _ := tryOpen(t, base+"events")
		if code == http.StatusOK {
			s.nextNamed(t, "history", nil)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after a client left: %d", code)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPage: the page, its script and style, self-contained and locked
// down by its Content-Security-Policy; unknown names and methods refused.
func TestPage(t *testing.T) {
	e := startEngine(t)
	_, base := manual(t, e, dashboard.Options{FlameURL: "/debug/flame?type=a&x=<b>"})
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, page := get("")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	for _, want := range []string{`src="dashboard.js"`, `href="dashboard.css"`, `id="plot-util"`, `id="table-types"`,
		`href="/debug/flame?type=a&amp;x=%3cb%3e"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	for _, bad := range []string{"http://", "https://", "<b>"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	for _, a := range []struct{ name, ctype string }{{"dashboard.js", "text/javascript"}, {"dashboard.css", "text/css"}} {
		resp, b := get(a.name)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), a.ctype) || len(b) == 0 {
			t.Errorf("%s: %s %q, %d bytes", a.name, resp.Status, resp.Header.Get("Content-Type"), len(b))
		}
		if strings.Contains(b, "http://") || strings.Contains(b, "https://") {
			t.Errorf("%s refers to the network", a.name)
		}
	}
	if resp, _ := get("nothing"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown name: %s", resp.Status)
	}
	resp, err := http.Post(base+"events", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %s, want 405", resp.Status)
	}
}

// TestOptions: defaults are accepted, out-of-range values refused with
// ErrInvalidOptions naming the value.
func TestOptions(t *testing.T) {
	e := startEngine(t)
	if _, err := dashboard.New(nil, dashboard.Options{}); !errors.Is(err, dashboard.ErrNilEngine) {
		t.Errorf("nil engine: %v", err)
	}
	cases := []struct {
		name string
		opts dashboard.Options
		want string
	}{
		{"short interval", dashboard.Options{Interval: time.Millisecond}, "Interval 1ms"},
		{"negative interval", dashboard.Options{Interval: -time.Second}, "Interval -1s"},
		{"history below interval", dashboard.Options{Interval: time.Second, History: 500 * time.Millisecond}, "History 500ms"},
		{"too many points", dashboard.Options{Interval: 10 * time.Millisecond, History: time.Hour}, "360000 points"},
		{"negative buffer", dashboard.Options{StreamBuffer: -1}, "StreamBuffer -1"},
		{"huge buffer", dashboard.Options{StreamBuffer: dashboard.MaxStreamBuffer + 1}, "StreamBuffer"},
		{"negative streams", dashboard.Options{MaxStreams: -2}, "MaxStreams -2"},
		{"too many mailboxes", dashboard.Options{TopMailboxes: engine.MaxSurveyTop + 1}, "TopMailboxes"},
		{"script URL", dashboard.Options{FlameURL: "javascript:alert(1)"}, `"javascript:alert(1)"`},
		{"host without scheme", dashboard.Options{FlameURL: "//evil.example/flame"}, "FlameURL"},
	}
	for _, c := range cases {
		_, err := dashboard.New(e, c.opts)
		if !errors.Is(err, dashboard.ErrInvalidOptions) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrInvalidOptions naming %s", c.name, err, c.want)
		}
	}
	d, err := dashboard.New(e, dashboard.Options{FlameURL: "http://localhost:6060/debug/flame"})
	if err != nil {
		t.Fatal(err)
	}
	// The real sampler snapshots at once: the history is never empty.
	srv := httptest.NewServer(d)
	defer srv.Close()
	defer d.Close()
	s := open(t, srv.URL+dashboard.Path+"events")
	var hist []dashboard.Snapshot
	s.nextNamed(t, "history", &hist)
	if len(hist) == 0 {
		// The first snapshot may still be on its way: it then comes next.
		s.nextNamed(t, "snapshot", nil)
	}
}
