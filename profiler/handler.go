package profiler

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/felixge/fgprof"
	"github.com/google/pprof/profile"

	"github.com/agentloop/agentloop/internal/labels"
)

// Limits of the capture endpoints of Handler. A ?seconds outside (0, max]
// is refused with 400 Bad Request, before anything is captured.
const (
	// DefaultFlameSeconds is the length of a /debug/flamegraph capture
	// without ?seconds.
	DefaultFlameSeconds = 5
	// MaxFlameSeconds is the longest ?seconds of /debug/flamegraph.
	MaxFlameSeconds = 60
	// MaxCaptureSeconds is the longest ?seconds of the other captures:
	// /debug/pprof/profile, /debug/pprof/trace, the delta profiles of
	// /debug/pprof/NAME and /debug/fgprof. A CPU capture holds the
	// process's only CPU profiler for that long.
	MaxCaptureSeconds = 300
)

// Handler returns an http.Handler, on its own ServeMux, that serves:
//
//	/debug/pprof/             the endpoints of net/http/pprof: the index, the
//	                          named profiles (heap, goroutine, allocs, block,
//	                          mutex, threadcreate; ?debug=0, 1 or 2, ?gc=1
//	                          before a heap profile, ?seconds=N for a delta),
//	                          profile?seconds=N (CPU, default 30), trace
//	                          (?seconds=N, default 1), symbol and cmdline
//	/debug/fgprof?seconds=N   a wall-clock profile (fgprof, default 30 s;
//	                          ?format=pprof or folded)
//	/debug/flamegraph?seconds=N
//	                          a live flame graph of the CPU profile over the
//	                          next N seconds (default 5, at most 60);
//	                          ?type=samples or cpu, ?orientation=icicle
//
// Every parameter it reads is checked before any capture starts: ?seconds
// must be a number of seconds in (0, MaxCaptureSeconds], or (0,
// MaxFlameSeconds] for the flame graph, and a malformed query, a parameter
// given twice or a value outside the ones listed gets 400 Bad Request with a
// message naming it. Only the URL's query is read, never a form in the body.
// A capture ends early when the client goes away.
//
// CPU captures here take turns with the windows of a Profiler and with each
// other instead of failing: a capture waits up to 5 s for the CPU profiler
// to be free, then gets 409 Conflict, as it does at once when a CPU profile
// started elsewhere (runtime/pprof, go test -cpuprofile) holds it.
//
// Nothing is served unless the handler is mounted, and this package registers
// nothing on http.DefaultServeMux (net/http/pprof does, in its init, which is
// why its handlers are reimplemented here). Profiles reveal code, arguments
// and timings, and captures cost CPU: serve the handler on a listener bound
// to localhost, or behind authentication:
//
//	go http.ListenAndServe("localhost:6060", profiler.Handler())
func Handler() http.Handler {
	return server{sleep: sleep, cpu: captureCPU, trace: captureTrace, wall: captureWall}.handler()
}

// server holds what the handlers capture with; tests replace it.
type server struct {
	// sleep waits for d or until ctx is done, reporting whether d passed.
	sleep func(ctx context.Context, d time.Duration) bool
	// cpu writes a CPU profile of d to w.
	cpu func(ctx context.Context, w io.Writer, d time.Duration) error
	// trace writes an execution trace of d to w; it fails only before
	// writing anything.
	trace func(ctx context.Context, w io.Writer, d time.Duration) error
	// wall writes a wall-clock profile of d to w.
	wall func(ctx context.Context, w io.Writer, d time.Duration, format fgprof.Format) error
}

func (s server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", s.serveIndex)
	mux.HandleFunc("/debug/pprof/cmdline", serveCmdline)
	mux.HandleFunc("/debug/pprof/profile", s.serveCPUProfile)
	mux.HandleFunc("/debug/pprof/symbol", serveSymbol)
	mux.HandleFunc("/debug/pprof/trace", s.serveTrace)
	mux.HandleFunc("/debug/fgprof", s.serveWall)
	mux.HandleFunc("/debug/flamegraph", s.serveFlameGraph)
	return mux
}

func serveError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Disposition")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

// query holds the parameters of a request's URL query.
type query url.Values

// parseQuery parses the query of r's URL.
func parseQuery(r *http.Request) (query, error) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("invalid query %q: %v", r.URL.RawQuery, err)
	}
	return query(v), nil
}

// get returns the value of the named parameter, "" if it is absent, and an
// error if it is given more than once.
func (q query) get(name string) (string, error) {
	switch vs := q[name]; len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	default:
		return "", fmt.Errorf("invalid query: %s is given %d times", name, len(vs))
	}
}

// seconds returns the duration of ?seconds: def if it is absent or empty,
// an error unless it is a number of seconds in (0, limit].
func (q query) seconds(def, limit float64) (time.Duration, error) {
	s, err := q.get("seconds")
	if err != nil || s == "" {
		return time.Duration(def * float64(time.Second)), err
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v > 0 && v <= limit) { // also refuses NaN
		return 0, fmt.Errorf("invalid seconds %q: want a number of seconds in (0, %v]", s, limit)
	}
	d := time.Duration(v * float64(time.Second)) // at most limit: no overflow
	if d <= 0 {
		return 0, fmt.Errorf("invalid seconds %q: shorter than a nanosecond", s)
	}
	return d, nil
}

// choice returns the value of the named parameter, which must be one of
// allowed; "" (absent or empty) is allowed if it is listed.
func (q query) choice(name string, allowed ...string) (string, error) {
	s, err := q.get(name)
	if err != nil {
		return "", err
	}
	if !slices.Contains(allowed, s) {
		var want []string
		for _, a := range allowed {
			if a != "" {
				want = append(want, a)
			}
		}
		return "", fmt.Errorf("invalid %s %q: want %s", name, s, strings.Join(want, " or "))
	}
	return s, nil
}

// extendWriteDeadline keeps the server's WriteTimeout from cutting off a
// response that takes d to produce.
func extendWriteDeadline(w http.ResponseWriter, r *http.Request, d time.Duration) {
	if srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server); ok && srv.WriteTimeout > 0 {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(srv.WriteTimeout + d))
	}
}

// sleep waits for d or until the request is cancelled, reporting whether the
// full time passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// acquireCPU waits up to 5 s for the CPU slot of this package (a Profiler
// window lasts Options.Window, a capture up to MaxCaptureSeconds) and starts
// the CPU profile into w.
func acquireCPU(ctx context.Context, w io.Writer) error {
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case cpuSlot <- struct{}{}:
	case <-t.C:
		return fmt.Errorf("%w (a profiler window or another /debug capture holds it)", ErrCPUProfileActive)
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := pprof.StartCPUProfile(w); err != nil {
		<-cpuSlot
		return fmt.Errorf("%w: %w", ErrCPUProfileActive, err)
	}
	return nil
}

// captureCPU records the CPU profile for d, with agent_type labels on.
func captureCPU(ctx context.Context, w io.Writer, d time.Duration) error {
	if err := acquireCPU(ctx, w); err != nil {
		return err
	}
	labels.Enable()
	sleep(ctx, d)
	labels.Disable()
	stopCPU()
	return nil
}

// captureTrace writes an execution trace of d to w.
func captureTrace(ctx context.Context, w io.Writer, d time.Duration) error {
	if err := trace.Start(w); err != nil {
		return err
	}
	sleep(ctx, d)
	trace.Stop()
	return nil
}

// captureWall writes a wall-clock profile of d to w.
func captureWall(ctx context.Context, w io.Writer, d time.Duration, format fgprof.Format) error {
	stop := fgprof.Start(w, format)
	sleep(ctx, d)
	return stopWall(stop)
}

func cpuError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	if errors.Is(err, ErrCPUProfileActive) {
		status = http.StatusConflict
	}
	serveError(w, status, "Could not enable CPU profiling: "+err.Error())
}

// serveCPUProfile serves /debug/pprof/profile?seconds=N (default 30).
func (s server) serveCPUProfile(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r)
	var d time.Duration
	if err == nil {
		d, err = q.seconds(30, MaxCaptureSeconds)
	}
	if err != nil {
		serveError(w, http.StatusBadRequest, err.Error())
		return
	}
	extendWriteDeadline(w, r, d)
	var buf bytes.Buffer
	if err := s.cpu(r.Context(), &buf, d); err != nil {
		cpuError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="profile"`)
	w.Write(buf.Bytes())
}

// serveWall serves /debug/fgprof?seconds=N (default 30)&format=F.
func (s server) serveWall(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r)
	var d time.Duration
	var format string
	if err == nil {
		d, err = q.seconds(30, MaxCaptureSeconds)
	}
	if err == nil {
		format, err = q.choice("format", "", string(fgprof.FormatPprof), string(fgprof.FormatFolded))
	}
	if err != nil {
		serveError(w, http.StatusBadRequest, err.Error())
		return
	}
	if format == "" {
		format = string(fgprof.FormatPprof)
	}
	extendWriteDeadline(w, r, d)
	var buf bytes.Buffer
	switch err := s.wall(r.Context(), &buf, d, fgprof.Format(format)); {
	case r.Context().Err() != nil:
		return // the client left
	case errors.Is(err, errNoWallSamples):
		serveError(w, http.StatusBadRequest, fmt.Sprintf("No wall-clock sample in %v: fgprof samples 99 times a second. Try a longer ?seconds=.", d))
		return
	case err != nil:
		serveError(w, http.StatusInternalServerError, "Could not write the wall-clock profile: "+err.Error())
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if format == string(fgprof.FormatFolded) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="wall"`)
	}
	w.Write(buf.Bytes())
}

// cpuSampleTypes are the sample types of a runtime/pprof CPU profile, the
// values of ?type of the live flame graph.
var cpuSampleTypes = []string{"", "samples", "cpu"}

// serveFlameGraph serves the live flame graph.
func (s server) serveFlameGraph(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r)
	var d time.Duration
	var opts FlameOptions
	if err == nil {
		d, err = q.seconds(DefaultFlameSeconds, MaxFlameSeconds)
	}
	if err == nil {
		opts.SampleType, err = q.choice("type", cpuSampleTypes...)
	}
	var orientation string
	if err == nil {
		orientation, err = q.choice("orientation", "", "flame", "icicle")
	}
	if err != nil {
		serveError(w, http.StatusBadRequest, err.Error())
		return
	}
	if orientation == "icicle" {
		opts.Orientation = Icicle
	}
	extendWriteDeadline(w, r, d)
	var raw bytes.Buffer
	if err := s.cpu(r.Context(), &raw, d); err != nil {
		cpuError(w, err)
		return
	}
	if r.Context().Err() != nil {
		return // the client left
	}
	p, err := parseProfile(raw.Bytes(), "the CPU profile")
	if err != nil {
		serveError(w, http.StatusInternalServerError, err.Error())
		return
	}
	host, _ := os.Hostname()
	opts.Title = fmt.Sprintf("CPU of %s (pid %d) over %v at %s", host, os.Getpid(), d, time.Now().Format(time.RFC3339))
	var page bytes.Buffer
	switch err := WriteFlameGraph(&page, p, opts); {
	case errors.Is(err, ErrEmptyProfile):
		serveError(w, http.StatusOK, fmt.Sprintf("No CPU samples in %v: the process was idle. Try a longer ?seconds=.", d))
		return
	case err != nil:
		serveError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(page.Bytes())
}

// serveCmdline serves the command line, arguments separated by NUL bytes.
func serveCmdline(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, strings.Join(os.Args, "\x00"))
}

// serveTrace serves an execution trace of ?seconds (default 1).
func (s server) serveTrace(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r)
	var d time.Duration
	if err == nil {
		d, err = q.seconds(1, MaxCaptureSeconds)
	}
	if err != nil {
		serveError(w, http.StatusBadRequest, err.Error())
		return
	}
	extendWriteDeadline(w, r, d)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// Set the content type assuming the trace starts, because if it
	// does it starts writing.
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="trace"`)
	if err := s.trace(r.Context(), w, d); err != nil {
		serveError(w, http.StatusInternalServerError, "Could not enable tracing: "+err.Error())
	}
}

// serveSymbol maps the program counters of the request (query or POST body,
// separated by '+') to function names, as pprof expects.
func serveSymbol(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	var buf bytes.Buffer // read the whole body before writing
	buf.WriteString("num_symbols: 1\n")
	var in *bufio.Reader
	if r.Method == http.MethodPost {
		in = bufio.NewReader(io.LimitReader(r.Body, 1<<20))
	} else {
		in = bufio.NewReader(strings.NewReader(r.URL.RawQuery))
	}
	for {
		word, err := in.ReadSlice('+')
		if err == nil {
			word = word[:len(word)-1]
		}
		if pc, _ := strconv.ParseUint(string(word), 0, 64); pc != 0 {
			if f := runtime.FuncForPC(uintptr(pc)); f != nil {
				fmt.Fprintf(&buf, "%#x %s\n", pc, f.Name())
			}
		}
		if err != nil {
			if err != io.EOF {
				fmt.Fprintf(&buf, "reading request: %v\n", err)
			}
			break
		}
	}
	w.Write(buf.Bytes())
}

// deltaProfiles are the profiles that ?seconds=N turns into a difference.
var deltaProfiles = map[string]bool{
	"allocs": true, "block": true, "goroutine": true, "goroutineleak": true,
	"heap": true, "mutex": true, "threadcreate": true,
}

var profileDescriptions = map[string]string{
	"allocs":       "A sampling of all past memory allocations",
	"block":        "Stack traces that led to blocking on synchronization primitives",
	"cmdline":      "The command line invocation of the current program",
	"goroutine":    "Stack traces of all current goroutines. Use debug=2 as a query parameter to export in the same format as an unrecovered panic.",
	"heap":         "A sampling of memory allocations of live objects. You can specify the gc GET parameter to run GC before taking the heap sample.",
	"mutex":        "Stack traces of holders of contended mutexes",
	"profile":      "CPU profile. You can specify the duration in the seconds GET parameter. After you get the profile file, use the go tool pprof command to investigate the profile.",
	"symbol":       "Maps given program counters to function names. Counters can be specified in a GET raw query or POST body, multiple counters are separated by '+'.",
	"threadcreate": "Stack traces that led to the creation of new OS threads",
	"trace":        "A trace of execution of the current program. You can specify the duration in the seconds GET parameter. After you get the trace file, use the go tool trace command to investigate the trace.",
}

var indexPage = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>/debug/pprof/</title></head>
<body>
<p>/debug/pprof/ &mdash; set debug=1 as a query parameter to export in legacy text format.
See also <a href="../flamegraph">the live flame graph</a> and <a href="../fgprof?seconds=10">a wall-clock profile</a>.</p>
<table>
<thead><tr><td>Count</td><td>Profile</td><td>Description</td></tr></thead>
{{range .}}<tr><td>{{if ge .Count 0}}{{.Count}}{{end}}</td><td><a href="{{.Name}}?debug=1">{{.Name}}</a></td><td>{{.Desc}}</td></tr>
{{end}}</table>
<p><a href="goroutine?debug=2">full goroutine stack dump</a></p>
</body>
</html>
`))

// serveIndex serves the list of profiles at /debug/pprof/ and each named
// profile at /debug/pprof/NAME.
func (s server) serveIndex(w http.ResponseWriter, r *http.Request) {
	if name, ok := strings.CutPrefix(r.URL.Path, "/debug/pprof/"); ok && name != "" {
		s.serveNamedProfile(w, r, name)
		return
	}
	type entry struct {
		Name  string
		Count int
		Desc  string
	}
	var entries []entry
	for _, p := range pprof.Profiles() {
		entries = append(entries, entry{Name: p.Name(), Count: p.Count(), Desc: profileDescriptions[p.Name()]})
	}
	for _, name := range []string{"cmdline", "profile", "symbol", "trace"} {
		entries = append(entries, entry{Name: name, Count: -1, Desc: profileDescriptions[name]})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.Name, b.Name) })
	var buf bytes.Buffer
	if err := indexPage.Execute(&buf, entries); err != nil {
		serveError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

// serveNamedProfile serves a runtime/pprof profile: ?debug=N selects the
// text formats, ?gc=1 collects garbage before a heap profile, ?seconds=N
// serves the difference over N seconds.
func (s server) serveNamedProfile(w http.ResponseWriter, r *http.Request, name string) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	p := pprof.Lookup(name)
	if p == nil {
		serveError(w, http.StatusNotFound, "Unknown profile")
		return
	}
	q, err := parseQuery(r)
	var debugS, gcS, secS string
	if err == nil {
		debugS, err = q.choice("debug", "", "0", "1", "2")
	}
	if err == nil {
		gcS, err = q.choice("gc", "", "0", "1")
	}
	if err == nil {
		secS, err = q.get("seconds")
	}
	if err != nil {
		serveError(w, http.StatusBadRequest, err.Error())
		return
	}
	debug, _ := strconv.Atoi(debugS) // one of "", 0, 1, 2
	if secS != "" {
		s.serveDeltaProfile(w, r, q, p, debug)
		return
	}
	if name == "heap" && gcS == "1" {
		runtime.GC()
	}
	if debug != 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename=%q`, name))
	}
	p.WriteTo(w, debug)
}

func (s server) serveDeltaProfile(w http.ResponseWriter, r *http.Request, q query, p *pprof.Profile, debug int) {
	d, err := q.seconds(0, MaxCaptureSeconds)
	if err != nil {
		serveError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !deltaProfiles[p.Name()] {
		serveError(w, http.StatusBadRequest, `"seconds" parameter is not supported for this profile type`)
		return
	}
	if debug != 0 {
		serveError(w, http.StatusBadRequest, "seconds and debug params are incompatible")
		return
	}
	extendWriteDeadline(w, r, d)
	p0, err := collectProfile(p)
	if err != nil {
		serveError(w, http.StatusInternalServerError, "failed to collect profile: "+err.Error())
		return
	}
	if !s.sleep(r.Context(), d) {
		serveError(w, http.StatusRequestTimeout, r.Context().Err().Error())
		return
	}
	p1, err := collectProfile(p)
	if err != nil {
		serveError(w, http.StatusInternalServerError, "failed to collect profile: "+err.Error())
		return
	}
	ts, dur := p1.TimeNanos, p1.TimeNanos-p0.TimeNanos
	p0.Scale(-1)
	delta, err := profile.Merge([]*profile.Profile{p0, p1})
	if err != nil {
		serveError(w, http.StatusInternalServerError, "failed to compute delta: "+err.Error())
		return
	}
	delta.TimeNanos, delta.DurationNanos = ts, dur
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-delta"`, p.Name()))
	delta.Write(w)
}

func collectProfile(p *pprof.Profile) (*profile.Profile, error) {
	var buf bytes.Buffer
	if err := p.WriteTo(&buf, 0); err != nil {
		return nil, err
	}
	ts := time.Now().UnixNano()
	prof, err := parseProfile(buf.Bytes(), "the "+p.Name()+" profile")
	if err != nil {
		return nil, err
	}
	prof.TimeNanos = ts
	return prof, nil
}
