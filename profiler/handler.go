package profiler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	httppprof "net/http/pprof"
	"net/url"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/felixge/fgprof"

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
//	/debug/pprof/             net/http/pprof's handlers: the index, the
//	                          named profiles (heap, goroutine, allocs, block,
//	                          mutex, threadcreate; ?debug=0, 1 or 2, ?gc=1
//	                          before a heap profile, ?seconds=N for a delta),
//	                          profile?seconds=N (CPU, default 30, labelled by
//	                          agent type), trace (?seconds=N, default 1),
//	                          symbol and cmdline
//	/debug/fgprof?seconds=N   a wall-clock profile (fgprof, default 30 s;
//	                          ?format=pprof or folded)
//	/debug/flamegraph?seconds=N
//	                          a live flame graph of the CPU profile over the
//	                          next N seconds (default 5, at most 60);
//	                          ?type=samples or cpu, ?orientation=icicle
//
// In front of net/http/pprof's handlers it adds what they lack: every
// parameter is checked before any capture starts (?seconds must be a
// number of seconds in (0, MaxCaptureSeconds], or (0, MaxFlameSeconds] for
// the flame graph, and a malformed query, a parameter given twice or a
// value outside the ones listed gets 400 Bad Request with a message naming
// it); only the URL's query is read, never a form in the body (a symbol
// lookup's POST body is read up to 1 MiB); the CPU profile and the delta
// profiles of /debug/pprof/NAME take whole seconds, as net/http/pprof reads
// them, so a fraction is rounded up; and CPU captures carry agent_type
// labels. A capture ends early when the client goes away.
//
// CPU captures here take turns with the windows of a Profiler and with each
// other instead of failing: a capture waits up to 5 s for the CPU profiler
// to be free, then gets 409 Conflict, as it does at once when a CPU profile
// started elsewhere (runtime/pprof, go test -cpuprofile) holds it.
//
// Nothing is served unless the handler is mounted. This package imports
// net/http/pprof, whose init registers its handlers on
// http.DefaultServeMux: a program that imports this package must not serve
// http.DefaultServeMux on a listener other people can reach. Profiles
// reveal code, arguments and timings, and captures cost CPU: serve the
// handler on a listener bound to localhost, or behind authentication:
//
//	go http.ListenAndServe("localhost:6060", profiler.Handler())
func Handler() http.Handler {
	return server{
		cpu: captureCPU, wall: captureWall,
		index: httppprof.Index, named: httppprof.Handler, profile: httppprof.Profile,
		trace: httppprof.Trace, symbol: httppprof.Symbol, cmdline: httppprof.Cmdline,
	}.handler()
}

// server holds what the handlers capture with; tests replace it.
type server struct {
	// cpu writes a CPU profile of d to w, for the flame graph.
	cpu func(ctx context.Context, w io.Writer, d time.Duration) error
	// wall writes a wall-clock profile of d to w.
	wall func(ctx context.Context, w io.Writer, d time.Duration, format fgprof.Format) error

	// net/http/pprof's handlers. They read the request's Form, which the
	// server sets to the checked parameters.
	index, profile, trace, symbol, cmdline http.HandlerFunc
	named                                  func(name string) http.Handler
}

func (s server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", s.serveIndex)
	mux.HandleFunc("/debug/pprof/cmdline", s.serveCmdline)
	mux.HandleFunc("/debug/pprof/profile", s.serveCPUProfile)
	mux.HandleFunc("/debug/pprof/symbol", s.serveSymbol)
	mux.HandleFunc("/debug/pprof/trace", s.serveTrace)
	mux.HandleFunc("/debug/fgprof", s.serveWall)
	mux.HandleFunc("/debug/flamegraph", s.serveFlameGraph)
	return mux
}

// forPprof returns r for a handler of net/http/pprof: its Form holds form
// alone, so that the handler reads the checked parameters and never parses
// a body, and it has no body unless keepBody.
func forPprof(r *http.Request, form url.Values, keepBody bool) *http.Request {
	r2 := r.Clone(r.Context())
	r2.Form, r2.PostForm, r2.MultipartForm = form, url.Values{}, nil
	if !keepBody {
		r2.Body, r2.ContentLength = http.NoBody, 0
	}
	return r2
}

// wholeSeconds formats d as net/http/pprof's whole-second parameters take
// it: rounded up.
func wholeSeconds(d time.Duration) string {
	return strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10)
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

// acquireSlot waits up to 5 s for the CPU slot of this package (a Profiler
// window lasts Options.Window, a capture up to MaxCaptureSeconds). On
// success the caller must release it with <-cpuSlot.
func acquireSlot(ctx context.Context) error {
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case cpuSlot <- struct{}{}:
		return nil
	case <-t.C:
		return fmt.Errorf("%w (a profiler window or another /debug capture holds it)", ErrCPUProfileActive)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// acquireCPU takes the CPU slot (see acquireSlot) and starts the CPU
// profile into w.
func acquireCPU(ctx context.Context, w io.Writer) error {
	if err := acquireSlot(ctx); err != nil {
		return err
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

// serveCPUProfile serves /debug/pprof/profile?seconds=N (default 30) with
// net/http/pprof's Profile, once this package's CPU slot is free, with
// agent_type labels on.
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
	if err := acquireSlot(r.Context()); err != nil {
		cpuError(w, err)
		return
	}
	defer func() { <-cpuSlot }()
	labels.Enable()
	defer labels.Disable()
	// Holding the slot, Profile fails only to start the CPU profile, when
	// one started outside this package runs: a conflict.
	s.profile(&conflictWriter{ResponseWriter: w}, forPprof(r, url.Values{"seconds": {wholeSeconds(d)}}, false))
}

// conflictWriter turns the 500 Internal Server Error of net/http/pprof's
// Profile, which it answers when the CPU profiler is taken, into 409
// Conflict.
type conflictWriter struct {
	http.ResponseWriter
	wrote bool
}

func (c *conflictWriter) WriteHeader(code int) {
	if !c.wrote && code == http.StatusInternalServerError {
		code = http.StatusConflict
	}
	c.wrote = true
	c.ResponseWriter.WriteHeader(code)
}

func (c *conflictWriter) Write(b []byte) (int, error) {
	c.wrote = true
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (Profile sets
// the write deadline through it).
func (c *conflictWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

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

// serveCmdline serves the command line with net/http/pprof's Cmdline.
func (s server) serveCmdline(w http.ResponseWriter, r *http.Request) {
	s.cmdline(w, forPprof(r, url.Values{}, false))
}

// serveTrace serves an execution trace of ?seconds (default 1) with
// net/http/pprof's Trace.
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
	s.trace(w, forPprof(r, url.Values{"seconds": {strconv.FormatFloat(d.Seconds(), 'g', -1, 64)}}, false))
}

// maxSymbolBody bounds the POST body of a symbol lookup.
const maxSymbolBody = 1 << 20

// serveSymbol maps the program counters of the request (query or POST body,
// separated by '+') to function names with net/http/pprof's Symbol, reading
// at most maxSymbolBody bytes of the body.
func (s server) serveSymbol(w http.ResponseWriter, r *http.Request) {
	r2 := forPprof(r, url.Values{}, true)
	if r.Method == http.MethodPost {
		r2.Body = http.MaxBytesReader(w, r.Body, maxSymbolBody)
	}
	s.symbol(w, r2)
}

// serveIndex serves net/http/pprof's list of profiles at /debug/pprof/ and
// each named profile at /debug/pprof/NAME, once their parameters are
// checked.
func (s server) serveIndex(w http.ResponseWriter, r *http.Request) {
	name, _ := strings.CutPrefix(r.URL.Path, "/debug/pprof/")
	if name == "" {
		s.index(w, forPprof(r, url.Values{}, false))
		return
	}
	q, err := parseQuery(r)
	var debug, gc, secS string
	if err == nil {
		debug, err = q.choice("debug", "", "0", "1", "2")
	}
	if err == nil {
		gc, err = q.choice("gc", "", "0", "1")
	}
	if err == nil {
		secS, err = q.get("seconds")
	}
	form := url.Values{}
	if err == nil && secS != "" {
		var d time.Duration
		if d, err = q.seconds(0, MaxCaptureSeconds); err == nil {
			form.Set("seconds", wholeSeconds(d))
		}
	}
	if err != nil {
		serveError(w, http.StatusBadRequest, err.Error())
		return
	}
	if debug != "" {
		form.Set("debug", debug)
	}
	if gc != "" {
		form.Set("gc", gc)
	}
	s.named(name).ServeHTTP(w, forPprof(r, form, false))
}
