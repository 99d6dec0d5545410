package metrics_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/metrics"
)

// scrapeTypes serves one scrape of e's collector and returns the status
// and the "type" labels of agentloop_messages_processed_total.
func scrapeTypes(t *testing.T, e *engine.Engine) (int, map[string]bool) {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(metrics.NewCollector(e)); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, metrics.Path, nil)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	metrics.Handler(reg).ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return rec.Code, nil
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse the scrape: %v", err)
	}
	types := map[string]bool{}
	for _, m := range fams[metrics.DefaultNamespace+"_messages_processed_total"].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "type" {
				types[lp.GetValue()] = true
			}
		}
	}
	return http.StatusOK, types
}

func newNamesEngine(t *testing.T) *engine.Engine {
	t.Helper()
	e, err := engine.New(engine.WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return e
}

func nopDevice() engine.Agent { return device{} }

// A type name that is not valid UTF-8 used to be registered, and from then
// on every scrape failed with 500: the registration is refused and the
// scrape serves the other types.
func TestScrapeAfterARefusedTypeName(t *testing.T) {
	e := newNamesEngine(t)
	if err := e.Register("ok", nopDevice); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"\xff", "bad\xc3", "ctl\x00", "nl\n", "c1\u0085", "a/b"} {
		if err := e.Register(bad, nopDevice); !errors.Is(err, engine.ErrInvalidID) {
			t.Errorf("Register(%q) = %v, want ErrInvalidID", bad, err)
		}
	}
	code, types := scrapeTypes(t, e)
	if code != http.StatusOK {
		t.Fatalf("scrape: HTTP %d", code)
	}
	if len(types) != 1 || !types["ok"] {
		t.Fatalf("types in the scrape %v, want only ok", types)
	}
}

// Every name Register accepts scrapes, and comes back as the same label.
func TestScrapeServesEveryValidTypeName(t *testing.T) {
	e := newNamesEngine(t)
	names := []string{
		"device", "Gerät", "日本語", "emoji 🎉", "with space", `quote"`, `back\slash`,
		"brace{}", "a=b,c", "#hash", "\ufffd", "zero\u200bwidth", "\u00a0nbsp",
		strings.Repeat("x", engine.MaxIDLen), strings.Repeat("日", engine.MaxIDLen/3),
	}
	for _, name := range names {
		if err := e.Register(name, nopDevice); err != nil {
			t.Fatalf("Register(%q): %v", name, err)
		}
		if _, err := e.Spawn(engine.AgentID{Type: name, Key: "k/1"}); err != nil {
			t.Fatalf("Spawn in %q: %v", name, err)
		}
	}
	code, types := scrapeTypes(t, e)
	if code != http.StatusOK {
		t.Fatalf("scrape: HTTP %d", code)
	}
	for _, name := range names {
		if !types[name] {
			t.Errorf("type %q missing from the scrape", name)
		}
	}
	if len(types) != len(names) {
		t.Errorf("%d types in the scrape, want %d", len(types), len(names))
	}
}
