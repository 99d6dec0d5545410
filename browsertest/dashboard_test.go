package browsertest_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agentloop/agentloop/dashboard"
	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/pool"
)

type agentFunc func(c *engine.Context, m engine.Message)

func (f agentFunc) Receive(c *engine.Context, m engine.Message) { f(c, m) }

// loadedEngine starts an engine with three agent types under a steady
// load, until the test ends.
func loadedEngine(t *testing.T, bufs *pool.Buffers) *engine.Engine {
	t.Helper()
	e, err := engine.New(engine.WithLoops(2))
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(e.Register("device", func() engine.Agent {
		return agentFunc(func(c *engine.Context, m engine.Message) {
			if m.Payload[0] == '!' {
				b := bufs.Get(len(m.Payload))
				copy(b.Bytes(), m.Payload)
				_ = c.PublishBuffer("alerts.device", b)
			}
		})
	}, engine.Mailbox(8, engine.DropOldest)))
	must(e.Register("inference", func() engine.Agent {
		return agentFunc(func(*engine.Context, engine.Message) { time.Sleep(100 * time.Microsecond) })
	}, engine.Priority(90), engine.Mailbox(16, engine.DropNewest)))
	must(e.Register("audit", func() engine.Agent { return agentFunc(func(*engine.Context, engine.Message) {}) },
		engine.Priority(10), engine.Pooled()))
	must(e.Start())
	var devices []engine.Ref
	for i := 0; i < 200; i++ {
		r, err := e.Spawn(engine.AgentID{Type: "device", Key: fmt.Sprintf("dev-%03d", i)})
		must(err)
		devices = append(devices, r)
	}
	infer, err := e.Spawn(engine.AgentID{Type: "inference", Key: "model-a"}, engine.OnLoop(1))
	must(err)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for round := 0; ; round++ {
			select {
			case <-stop:
				return
			default:
			}
			// A burst, and a pause: the load is paced, not a busy loop.
			for i := 0; i < 20+round%7*10; i++ {
				p := []byte("reading")
				if i%10 == 0 {
					p = []byte("!overheat " + strconv.Itoa(round))
				}
				_ = devices[(round*31+i)%len(devices)].Send(p)
			}
			for i := 0; i < 2+round/50%3*4; i++ {
				_ = infer.Send([]byte("frame"))
			}
			id := engine.AgentID{Type: "audit", Key: "a" + strconv.Itoa(round%5)}
			if _, err := e.Spawn(id); err == nil {
				_ = e.SendID(id, []byte("entry"))
				_ = e.Terminate(id)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Stop(ctx, engine.Immediate()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return e
}

// TestDashboardInBrowser loads the dashboard of a loaded engine in
// headless Chromium and checks that its plots and tables follow the event
// stream, that the topic stream shows published messages, and that the
// page fetches nothing but its own server.
func TestDashboardInBrowser(t *testing.T) {
	var bufs pool.Buffers
	e := loadedEngine(t, &bufs)
	d, err := dashboard.New(e, dashboard.Options{Interval: 100 * time.Millisecond, History: 30 * time.Second,
		FlameURL: "/debug/flame", Buffers: &bufs})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(dashboard.Path, d)
	srv := httptest.NewServer(mux)
	// Cleanups run last-in first-out: the dashboard closes before the
	// server, whose Close waits for the streams, and before the engine stops.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = d.Close() })
	pageURL := srv.URL + dashboard.Path

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bctx, problems := browser(t, ctx, func(url string) bool { return strings.HasPrefix(url, srv.URL+"/") })
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(bctx, actions...); err != nil {
			t.Fatalf("%s: %v (page problems: %q)", what, err, problems())
		}
	}
	eval := func(expr string, res any) {
		t.Helper()
		run(expr, chromedp.Evaluate(expr, res))
	}
	// poll waits until expr is true in the page, bounded: only a broken
	// page makes it time out.
	poll := func(what, expr string) {
		t.Helper()
		run(what, chromedp.Poll(expr, nil, chromedp.WithPollingTimeout(20*time.Second)))
	}
	events := func() int {
		t.Helper()
		var s string
		eval(`document.body.dataset.events`, &s)
		n, _ := strconv.Atoi(s)
		return n
	}
	pixels := func(id string) string {
		t.Helper()
		var s string
		eval(`document.getElementById(`+strconv.Quote(id)+`).toDataURL()`, &s)
		return s
	}

	run("start the browser")
	run("load "+pageURL, chromedp.Navigate(pageURL))
	poll("the first snapshots", `document.body.dataset.events >= 1 && document.querySelectorAll('#table-types tbody tr').length === 3`)

	// The per-type table lists the agent types, with their priorities.
	var types []string
	eval(`[...document.querySelectorAll('#table-types tbody tr')].map(r => r.cells[0].textContent + ':' + r.cells[2].textContent)`, &types)
	if strings.Join(types, " ") != "audit:10 device:50 inference:90" {
		t.Errorf("types table %q, want audit:10 device:50 inference:90", types)
	}

	// Events keep arriving and the plots are redrawn from them.
	before, rate, util := events(), pixels("plot-rate"), pixels("plot-util")
	poll("more events", `document.body.dataset.events >= `+strconv.Itoa(before+3))
	run("a frame", chromedp.Poll(`new Promise(r => requestAnimationFrame(() => r(true)))`, nil))
	if after := events(); after <= before {
		t.Errorf("events %d, then %d: the counter does not move", before, after)
	}
	if pixels("plot-rate") == rate {
		t.Errorf("the throughput plot did not change as snapshots arrived")
	}
	if pixels("plot-util") == util {
		t.Errorf("the utilisation plot did not change as snapshots arrived")
	}
	var loops int
	eval(`document.querySelectorAll('#table-loopq tbody tr').length`, &loops)
	if loops != 2 {
		t.Errorf("loops table has %d rows, want 2", loops)
	}
	var flame string
	eval(`document.getElementById('flame').getAttribute('href')`, &flame)
	if flame != "/debug/flame" {
		t.Errorf("flame link %q", flame)
	}

	// The topic stream shows what the devices publish.
	run("watch alerts", chromedp.SetValue("#stream-topic", "alerts.>", chromedp.ByQuery),
		chromedp.Click("#stream-form button", chromedp.ByQuery))
	poll("a streamed alert", `[...document.querySelectorAll('#stream-list li')].some(li => li.textContent.includes('alerts.device !overheat'))`)

	// Enough history for the plots to read well, then the screenshot.
	poll("a few seconds of history", `document.body.dataset.snapshots >= 50`)
	run("a frame", chromedp.Poll(`new Promise(r => requestAnimationFrame(() => r(true)))`, nil))
	var shot []byte
	run("screenshot", chromedp.FullScreenshot(&shot, 100))
	cfg, err := png.DecodeConfig(bytes.NewReader(shot))
	if err != nil || cfg.Width == 0 || cfg.Height == 0 {
		t.Errorf("screenshot is not a non-empty PNG: %v, %dx%d", err, cfg.Width, cfg.Height)
	}
	path := filepath.Join(screenshotDir(t), "dashboard.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)

	if p := problems(); len(p) > 0 {
		t.Errorf("page problems: %q", p)
	}
}
