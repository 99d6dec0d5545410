package browsertest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/agentloop/agentloop/profiler"
)

// chromiumPath is where Debian's chromium package puts the browser; `make
// test` installs it when it is missing.
const chromiumPath = "/usr/bin/chromium"

// browser starts a headless Chromium with a fresh profile and returns a
// context for chromedp and a function that reports what the page did wrong:
// console errors and warnings, uncaught exceptions, log errors (such as CSP
// violations) and requests to anything but allowed.
func browser(t *testing.T, ctx context.Context, allowed func(url string) bool) (context.Context, func() []string) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the browser test needs Chromium at %s (%v): run `make test`, which installs it when it is missing", chromiumPath, err)
	}
	profileDir, err := os.MkdirTemp("", "browsertest-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profileDir),
		chromedp.WindowSize(1280, 720),
	)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc() // waits for the browser to exit
		// Chromium's helper processes can still write into its profile
		// for a moment after the browser has exited (t.TempDir's removal
		// then failed the test): retry, and only log what stays.
		var err error
		for range 50 {
			if err = os.RemoveAll(profileDir); err == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("the browser profile %s is left behind: %v", profileDir, err)
	})

	var mu sync.Mutex // protects problems: events arrive on chromedp's goroutines
	var problems []string
	report := func(format string, args ...any) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	chromedp.ListenTarget(bctx, func(ev any) {
		switch ev := ev.(type) {
		case *cdpruntime.EventConsoleAPICalled:
			if ev.Type == cdpruntime.APITypeError || ev.Type == cdpruntime.APITypeWarning || ev.Type == cdpruntime.APITypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				report("console.%s: %s", ev.Type, strings.Join(args, " "))
			}
		case *cdpruntime.EventExceptionThrown:
			report("uncaught exception: %s", ev.ExceptionDetails.Error())
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.LevelError || ev.Entry.Level == cdplog.LevelWarning {
				report("log %s (%s): %s %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		case *network.EventRequestWillBeSent:
			if !allowed(ev.Request.URL) {
				report("request to %s", ev.Request.URL)
			}
		}
	})
	return bctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(problems)
	}
}

// screenshotDir is where screenshots go: the directory in
// AGENTLOOP_SCREENSHOTS if it is set (make screenshots sets docs/img),
// else a temporary directory of the test.
func screenshotDir(t *testing.T) string {
	if dir := os.Getenv("AGENTLOOP_SCREENSHOTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

// screenshot captures the browser's viewport as dir/name and returns the
// PNG.
func screenshot(t *testing.T, bctx context.Context, dir, name string) []byte {
	t.Helper()
	var shot []byte
	if err := chromedp.Run(bctx, chromedp.CaptureScreenshot(&shot)); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	return shot
}

// jsString returns s as a JavaScript string literal.
func jsString(s string) string {
	lit, _ := json.Marshal(s)
	return string(lit)
}

// TestFlameGraphInBrowser loads a flame graph of the synthetic profile in
// headless Chromium, from a file:// URL, and works its controls.
func TestFlameGraphInBrowser(t *testing.T) {
	dir := t.TempDir()
	page := filepath.Join(dir, "flame.html")
	var buf bytes.Buffer
	if err := profiler.WriteFlameGraph(&buf, synthProfile(), profiler.FlameOptions{Title: "synthetic"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	pageURL := "file://" + page

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tinyURL := "file://" + filepath.Join(dir, "tiny.html")
	bctx, problems := browser(t, ctx, func(url string) bool { return url == pageURL || url == tinyURL })

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
	boxes := func() int {
		t.Helper()
		var n int
		eval(`document.querySelectorAll('#flame .f').length`, &n)
		return n
	}
	// box returns the node index and style width of the first box named name.
	box := func(name string) (n, width string) {
		t.Helper()
		lit, _ := json.Marshal(name)
		var res []string
		eval(`(() => { const e = [...document.querySelectorAll('#flame .f')].find(e => e.textContent === `+string(lit)+`);
			return e ? [e.dataset.n, e.style.width] : ['', '']; })()`, &res)
		return res[0], res[1]
	}
	text := func(sel string) string {
		t.Helper()
		var s string
		run("text of "+sel, chromedp.Text(sel, &s, chromedp.ByQuery))
		return s
	}
	selectOption := func(sel, label string) {
		t.Helper()
		sl, _ := json.Marshal(sel)
		ll, _ := json.Marshal(label)
		var ok bool
		eval(`(() => { const s = document.querySelector(`+string(sl)+`);
			const o = [...s.options].find(o => o.textContent === `+string(ll)+`);
			if (!o) return false;
			s.value = o.value; s.dispatchEvent(new Event('change')); return true; })()`, &ok)
		if !ok {
			t.Fatalf("%s has no option %q", sel, label)
		}
	}

	// Start the browser with bctx, so that it outlives loadCtx; fail fast
	// if the page's script does not run.
	run("start the browser")
	loadCtx, cancelLoad := context.WithTimeout(bctx, 10*time.Second)
	if err := chromedp.Run(loadCtx, chromedp.Navigate(pageURL), chromedp.WaitVisible("#flame .f", chromedp.ByQuery)); err != nil {
		t.Fatalf("load %s: %v (page problems: %q)", pageURL, err, problems())
	}
	cancelLoad()
	var title string
	run("title", chromedp.Title(&title))
	if title != "synthetic" {
		t.Errorf("title %q, want synthetic", title)
	}

	// One box per node of the call tree.
	if got, want := boxes(), synthNodes(""); got != want {
		t.Errorf("%d boxes, want %d (one per sampled frame node)", got, want)
	}
	// Boxes show short names: no module path, type arguments abbreviated;
	// the full name is the title, and the details line on hover.
	for short, full := range map[string]string{
		"gateway.(*deviceAgent).Receive": handlerName,
		"pool.(*Pool[…]).Get":            genericName,
		"engine.(*loop).runAgent":        runAgent,
		"main.work":                      "main.work",
	} {
		lit, _ := json.Marshal(short)
		var title string
		eval(`(() => { const e = [...document.querySelectorAll('#flame .f')].find(e => e.textContent === `+string(lit)+`);
			return e ? e.title : ''; })()`, &title)
		if !strings.HasPrefix(title, full+"\n") {
			t.Errorf("box %q has title %q, want it to start with the full name %s", short, title, full)
		}
		n, _ := box(short)
		if n == "" {
			continue
		}
		var rect []float64
		eval(`(() => { const r = document.querySelector('#flame .f[data-n="`+n+`"]').getBoundingClientRect();
			return [r.left + Math.min(r.width / 2, 20), r.top + r.height / 2]; })()`, &rect)
		run("hover "+short, chromedp.MouseEvent(input.MouseMoved, rect[0], rect[1]))
		if got := text("#details"); !strings.HasPrefix(got, full+"\n") {
			t.Errorf("hovering %q shows %q, want the full name %s", short, got, full)
		}
	}
	var long []string
	eval(`[...document.querySelectorAll('#flame .f')].map(e => e.textContent).filter(s => s.includes('github.com/') || s.includes('go.shape'))`, &long)
	if len(long) > 0 {
		t.Errorf("boxes show long names %q", long)
	}

	// The hostile name is text, not markup.
	var imgs int
	eval(`document.querySelectorAll('img').length`, &imgs)
	if n, _ := box(evilName); n == "" || imgs != 0 {
		t.Errorf("the hostile name is not shown as text (box %q, %d img elements)", n, imgs)
	}

	// Orientation: flame puts the root at the bottom; the toggle flips it.
	var rootTop string
	eval(`document.querySelector('#flame .f[data-n="0"]').style.top`, &rootTop)
	if rootTop == "0px" {
		t.Errorf("flame orientation has the root at the top")
	}
	run("flip", chromedp.Click("#orient", chromedp.ByQuery))
	eval(`document.querySelector('#flame .f[data-n="0"]').style.top`, &rootTop)
	if rootTop != "0px" {
		t.Errorf("icicle orientation has the root at %s, want 0px", rootTop)
	}

	// Clicking a box zooms on it: it fills the width, its children widen,
	// boxes outside its subtree and ancestry disappear.
	work, workWidth := box("main.work")
	_, parseWidth := box("main.parse")
	if work == "" || workWidth == "100%" {
		t.Fatalf("main.work box %q is missing or already full width (%s)", work, workWidth)
	}
	run("zoom", chromedp.Click(`#flame .f[data-n="`+work+`"]`, chromedp.ByQuery))
	if _, w := box("main.work"); w != "100%" {
		t.Errorf("zoomed main.work is %s wide, want 100%%", w)
	}
	if _, w := box("main.parse"); w == parseWidth {
		t.Errorf("main.parse kept its width %s after zooming on its parent", w)
	}
	if got, want := boxes(), synthZoom("runtime.main", "main.main", "main.work"); got != want {
		t.Errorf("%d boxes after zooming on main.work, want %d", got, want)
	}
	if n, _ := box("main.wait"); n != "" {
		t.Errorf("main.wait, outside the zoomed frame, is still shown")
	}
	run("reset", chromedp.Click("#reset", chromedp.ByQuery))
	if got, want := boxes(), synthNodes(""); got != want {
		t.Errorf("%d boxes after reset, want %d", got, want)
	}
	// Escape goes back too.
	run("zoom again", chromedp.Click(`#flame .f[data-n="`+work+`"]`, chromedp.ByQuery))
	if _, w := box("main.work"); w != "100%" {
		t.Errorf("zoomed main.work is %s wide, want 100%%", w)
	}
	run("escape", chromedp.KeyEvent(kb.Escape))
	if got, want := boxes(), synthNodes(""); got != want {
		t.Errorf("%d boxes after Escape, want %d", got, want)
	}

	// Search highlights matching boxes and shows the matched share.
	run("search", chromedp.SendKeys("#search", "parse", chromedp.ByQuery))
	var matched int
	eval(`document.querySelectorAll('#flame .f.match').length`, &matched)
	if matched != 2 {
		t.Errorf("%d boxes highlighted for 'parse', want 2", matched)
	}
	if got, want := text("#matchinfo"), "Matched: "+synthMatch("parse"); !strings.HasPrefix(got, want) {
		t.Errorf("match info %q, want it to start with %q", got, want)
	}

	// The search is a regular expression, case-insensitive.
	const re = `^MAIN\.(parse|wait)$`
	lit, _ := json.Marshal(re)
	eval(`(() => { const s = document.querySelector('#search'); s.value = `+string(lit)+`;
		s.dispatchEvent(new Event('input')); return true; })()`, new(bool))
	eval(`document.querySelectorAll('#flame .f.match').length`, &matched)
	if matched != 3 {
		t.Errorf("%d boxes highlighted for %s, want 3 (main.parse twice, main.wait)", matched, re)
	}
	if got, want := text("#matchinfo"), "Matched: "+synthMatch(re); !strings.HasPrefix(got, want) {
		t.Errorf("match info %q, want it to start with %q", got, want)
	}

	// The search also matches short names: ^gateway\. matches no full name.
	eval(`(() => { const s = document.querySelector('#search'); s.value = '^gateway\\.\\(';
		s.dispatchEvent(new Event('input')); return true; })()`, new(bool))
	var shortMatched []string
	eval(`[...document.querySelectorAll('#flame .f.match')].map(e => e.textContent)`, &shortMatched)
	if len(shortMatched) != 1 || shortMatched[0] != "gateway.(*deviceAgent).Receive" {
		t.Errorf("boxes highlighted for ^gateway\\.\\( %q, want the handler's box", shortMatched)
	}
	eval(`(() => { const s = document.querySelector('#search'); s.value = '';
		s.dispatchEvent(new Event('input')); return true; })()`, new(bool))

	// The agent type selector shows one agent type at a time.
	var options []string
	eval(`[...document.querySelectorAll('#agent option')].map(o => o.textContent)`, &options)
	if want := []string{"all", "cold", "hot", "(no agent_type)"}; !slices.Equal(options, want) {
		t.Errorf("agent type options %q, want %q", options, want)
	}
	// Each agent type's tree starts at its handlers: the runtime's and the
	// engine's frames below them are hidden, and the samples that ran no
	// handler are one box.
	engineShown := func() []string {
		t.Helper()
		var names []string
		eval(`[...document.querySelectorAll('#flame .f')].map(e => e.title.split('\n')[0])
			.filter(n => n.startsWith('runtime.') || n.startsWith('github.com/agentloop/agentloop/engine.'))`, &names)
		return names
	}
	depthOf := func(name string) int {
		t.Helper()
		lit, _ := json.Marshal(name)
		var top string
		eval(`(() => { const e = [...document.querySelectorAll('#flame .f')].find(e => e.textContent === `+string(lit)+`);
			return e ? e.style.top : ''; })()`, &top)
		if top == "" {
			return -1
		}
		var px int
		fmt.Sscanf(top, "%dpx", &px)
		return px / 18
	}
	var disabled bool
	eval(`document.querySelector('#engine').disabled`, &disabled)
	if !disabled || len(engineShown()) == 0 {
		t.Errorf("the view of all samples: engine toggle disabled %v, engine frames %q; want disabled, frames shown", disabled, engineShown())
	}
	for _, agent := range []string{"cold", "hot"} {
		selectOption("#agent", agent)
		if got, want := boxes(), synthLeanNodes(agent); got != want {
			t.Errorf("%d boxes for agent type %s, want %d (from the handlers up)", got, agent, want)
		}
		if names := engineShown(); len(names) != 0 {
			t.Errorf("agent type %s shows the engine's frames %q by default", agent, names)
		}
		if info := text("#info"); !strings.Contains(info, "agent type "+agent) || !strings.Contains(info, "engine frames hidden") {
			t.Errorf("info %q does not name agent type %s with the engine frames hidden", info, agent)
		}
	}
	// The page is in icicle orientation now: depth is the top over 18 px.
	selectOption("#agent", "cold")
	if n, _ := box(engineFrame); n == "" || depthOf(engineFrame) != 1 {
		t.Errorf("agent type cold: the loop's samples without a handler are not one %s box under the root", engineFrame)
	}
	selectOption("#agent", "hot")
	if d := depthOf("gateway.(*deviceAgent).Receive"); d != 1 {
		t.Errorf("agent type hot: the handler is at depth %d, want 1 (right above the root)", d)
	}
	run("show engine frames", chromedp.Click("#engine", chromedp.ByQuery))
	if got, want := boxes(), synthNodes("hot"); got != want {
		t.Errorf("%d boxes for agent type hot with the engine frames, want %d", got, want)
	}
	if names := engineShown(); !slices.Contains(names, turn) || !slices.Contains(names, "runtime.goexit") {
		t.Errorf("the toggle shows the engine frames %q, want %s and runtime.goexit among them", names, turn)
	}
	if d := depthOf("gateway.(*deviceAgent).Receive"); d != 4 {
		t.Errorf("with the engine frames the handler is at depth %d, want 4 (goexit, turn, runAgent below it)", d)
	}
	run("hide engine frames", chromedp.Click("#engine", chromedp.ByQuery))
	if got, want := boxes(), synthLeanNodes("hot"); got != want {
		t.Errorf("%d boxes once the engine frames are hidden again, want %d", got, want)
	}
	selectOption("#agent", "all")
	run("flip back", chromedp.Click("#orient", chromedp.ByQuery))

	// The sample type selector switches the values shown.
	if info, want := text("#info"), fmt.Sprintf("cpu: %.2f s", float64(synthTotal("*"))/100); !strings.HasPrefix(info, want) {
		t.Errorf("info %q, want %s (the default, last sample type)", info, want)
	}
	selectOption("#stype", "samples (count)")
	if info, want := text("#info"), fmt.Sprintf("samples: %d", synthTotal("*")); !strings.HasPrefix(info, want) {
		t.Errorf("info %q, want %s", info, want)
	}

	// The totals table: a row per agent type, largest first, with its
	// samples, its share and its top frames by self samples.
	var rows [][]string
	eval(`[...document.querySelectorAll('#totalsbody tr')].map(r => [...r.cells].map((c, i) => i < 3 ? c.textContent :
		[...c.querySelectorAll('.tf')].map(f => f.querySelector('.fn').textContent + ' ' + f.querySelector('.share').textContent).join(' | ')))`, &rows)
	var want [][]string
	for _, agent := range []string{"hot", "cold", ""} {
		name := agent
		if name == "" {
			name = "(no agent_type)"
		}
		n := synthTotal(agent)
		row := []string{name, fmt.Sprint(n), fmt.Sprintf("%.2f%%", 100*float64(n)/float64(synthTotal("*")))}
		if agent != "" {
			top, self := synthTop(agent)
			row = append(row, fmt.Sprintf("%s %.2f%%", top, 100*float64(self)/float64(n)))
		}
		want = append(want, row)
	}
	if len(rows) != len(want) {
		t.Fatalf("totals table %q, want %d rows", rows, len(want))
	}
	for i, w := range want {
		if !slices.Equal(rows[i][:3], w[:3]) || len(w) > 3 && !strings.HasPrefix(rows[i][3], w[3]) {
			t.Errorf("totals row %d: %q, want %q (the top frame first)", i, rows[i], w)
		}
	}
	// A top frame shows its short name and holds its full name as title.
	var tops [][]string
	eval(`[...document.querySelectorAll('#totalsbody tr:first-child .tf')].map(f => [f.querySelector('.fn').textContent, f.title])`, &tops)
	if len(tops) == 0 || len(tops) > 3 || tops[0][0] != "main.work" || tops[0][1] != "main.work" {
		t.Errorf("top frames of hot %q, want at most 3, main.work first with its title", tops)
	}
	// Top frames show short names; the title holds the full one.
	var handler []string
	eval(`[...document.querySelectorAll('#totalsbody .tf')].filter(f => f.title === `+jsString(handlerName)+`).map(f => f.querySelector('.fn').textContent)`, &handler)
	if len(handler) != 1 || handler[0] != "gateway.(*deviceAgent).Receive" {
		t.Errorf("the top frame %s is shown as %q, want gateway.(*deviceAgent).Receive once", handlerName, handler)
	}
	// Clicking a row shows that agent type, again shows all.
	run("pick cold in the table", chromedp.Click(`#totalsbody tr[data-g="0"]`, chromedp.ByQuery))
	if info := text("#info"); !strings.Contains(info, "agent type cold") {
		t.Errorf("clicking the row of cold: info %q", info)
	}
	var sel string
	eval(`document.querySelector('#agent').selectedOptions[0].textContent`, &sel)
	if sel != "cold" {
		t.Errorf("clicking the row of cold selects %q", sel)
	}
	run("unpick", chromedp.Click(`#totalsbody tr[data-g="0"]`, chromedp.ByQuery))
	if info := text("#info"); strings.Contains(info, "agent type") {
		t.Errorf("clicking the selected row again: info %q, want all samples", info)
	}

	shot := screenshot(t, bctx, dir, "flame-synthetic.png")
	if cfg, err := png.DecodeConfig(bytes.NewReader(shot)); err != nil || cfg.Width == 0 || cfg.Height == 0 {
		t.Errorf("the screenshot is not a non-empty PNG: %v, %dx%d", err, cfg.Width, cfg.Height)
	}

	// Boxes narrower than 1/10000 of the view are left out until a zoom
	// makes them wide enough.
	tiny := filepath.Join(dir, "tiny.html")
	buf.Reset()
	err := profiler.WriteFlameGraph(&buf, buildProfile(countType,
		stackSample{stack: []string{"main.main", "main.big"}, values: []int64{10_000_000}},
		stackSample{stack: []string{"main.main", "main.mid"}, values: []int64{9_998}},
		stackSample{stack: []string{"main.main", "main.mid", "main.tiny"}, values: []int64{2}},
	), profiler.FlameOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tiny, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	loadCtx, cancelLoad = context.WithTimeout(bctx, 10*time.Second)
	if err := chromedp.Run(loadCtx, chromedp.Navigate(tinyURL), chromedp.WaitVisible("#flame .f", chromedp.ByQuery)); err != nil {
		t.Fatalf("load %s: %v (page problems: %q)", tinyURL, err, problems())
	}
	cancelLoad()
	mid, _ := box("main.mid")
	if n, _ := box("main.tiny"); mid == "" || n != "" {
		t.Errorf("main.mid (1e-3 of all) shown %v, main.tiny (2e-7) shown %v; want only main.mid", mid != "", n != "")
	}
	if mid != "" {
		run("zoom on main.mid", chromedp.Click(`#flame .f[data-n="`+mid+`"]`, chromedp.ByQuery))
		if n, w := box("main.tiny"); n == "" || w != "0.02%" {
			t.Errorf("zoomed on main.mid, main.tiny (2e-4 of it) is shown %v, %s wide; want shown, 0.02%%", n != "", w)
		}
	}

	if p := problems(); len(p) > 0 {
		t.Errorf("the page had problems:\n%s", strings.Join(p, "\n"))
	}
}

// gatewayProfile is a CPU profile of `make profile`: the gateway's embedded
// mix for 3 minutes, profiled all the time.
const gatewayProfile = "testdata/gateway-cpu.pb.gz"

// gatewayTypes are the agent types of the gateway's embedded mix.
var gatewayTypes = []string{"device", "feature", "inference", "alert"}

// TestGatewayFlameGraphInBrowser loads the flame graph of a real gateway
// profile: every agent type of the mix is in the totals table, boxes show
// short names, and the view of one type starts at its handler, the
// engine's frames hidden. It leaves flame.png, that view, in screenshotDir.
func TestGatewayFlameGraphInBrowser(t *testing.T) {
	p, err := profiler.ReadProfile(gatewayProfile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "gateway.html")
	var buf bytes.Buffer
	if err := profiler.WriteFlameGraph(&buf, p, profiler.FlameOptions{Title: "gateway: CPU of the embedded mix, 3 minutes (make profile)"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	pageURL := "file://" + page
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bctx, problems := browser(t, ctx, func(url string) bool { return url == pageURL })
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
	run("load", chromedp.EmulateViewport(1400, 820), chromedp.Navigate(pageURL), chromedp.WaitVisible("#flame .f", chromedp.ByQuery))

	var types []string
	eval(`[...document.querySelectorAll('#totalsbody tr')].map(r => r.cells[0].textContent)`, &types)
	for _, typ := range gatewayTypes {
		if !slices.Contains(types, typ) {
			t.Errorf("the totals table lists %q, without %s", types, typ)
		}
	}
	// The view of the device type: its tree starts at the handler.
	run("pick device", chromedp.Click(`#totalsbody tr[data-g="`+fmt.Sprint(slices.Index(types, "device"))+`"]`, chromedp.ByQuery))
	var info string
	run("info", chromedp.Text("#info", &info, chromedp.ByQuery))
	if !strings.Contains(info, "agent type device") {
		t.Fatalf("info %q after picking device in the table", info)
	}
	var roots, long []string
	// The page opens in flame orientation: the root's children sit one
	// row (18 px) above it.
	eval(`(() => { const root = parseInt(document.querySelector('#flame .f[data-n="0"]').style.top);
		return [...document.querySelectorAll('#flame .f')].filter(e => parseInt(e.style.top) === root - 18)
			.map(e => e.title.split('\n')[0]); })()`, &roots)
	eval(`[...document.querySelectorAll('#flame .f')].map(e => e.textContent).filter(s => s.includes('github.com/'))`, &long)
	if !slices.Contains(roots, "github.com/agentloop/agentloop/gateway.(*deviceAgent).Receive") {
		t.Errorf("the device type's tree starts at %q, not at its handler", roots)
	}
	for _, r := range roots {
		if strings.HasPrefix(r, "runtime.") || strings.HasPrefix(r, "github.com/agentloop/agentloop/engine.") {
			t.Errorf("the device type's tree starts at %s, an engine frame", r)
		}
	}
	if len(long) > 0 {
		t.Errorf("boxes show long names %q", long)
	}
	shot := screenshot(t, bctx, screenshotDir(t), "flame.png")
	if cfg, err := png.DecodeConfig(bytes.NewReader(shot)); err != nil || cfg.Width != 1400 || cfg.Height != 820 {
		t.Errorf("the screenshot is not a PNG of the 1400x820 viewport: %v, %dx%d", err, cfg.Width, cfg.Height)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("the page had problems:\n%s", strings.Join(p, "\n"))
	}
}
