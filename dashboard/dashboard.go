package dashboard

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/pool"
)

// Path is where the dashboard expects to be mounted: the page is Path,
// the snapshot stream Path+"events" and the topic stream Path+"stream".
const Path = "/dashboard/"

// Limits on Options.
const (
	// MinInterval is the shortest sampling period accepted.
	MinInterval = 10 * time.Millisecond
	// MaxHistoryPoints bounds History/Interval, the snapshots kept.
	MaxHistoryPoints = 3600
	// MaxStreamBuffer bounds Options.StreamBuffer.
	MaxStreamBuffer = 1 << 16
	// MaxStreamBytes bounds the payload bytes one topic stream holds for its
	// client: beyond it the oldest messages are dropped as beyond
	// StreamBuffer.
	MaxStreamBytes = 16 << 20
)

// Errors returned by this package, wrapped with the offending value:
// compare with errors.Is.
var (
	// ErrInvalidOptions occurs when New is given an out-of-range option.
	ErrInvalidOptions = errors.New("dashboard: invalid options")
	// ErrNilEngine occurs when New is given a nil engine.
	ErrNilEngine = errors.New("dashboard: nil engine")
)

// Options configure a Dashboard. The zero value takes every default.
type Options struct {
	// Interval is the sampling period of the live figures, default 1s, at
	// least MinInterval.
	Interval time.Duration
	// History is how much the plots keep, default 5m: History/Interval
	// snapshots, at most MaxHistoryPoints, sent to each client on connect.
	History time.Duration
	// FlameURL, optional, is the page's link to the per-type flame graph
	// (such as "/debug/flame", see package profiler): a path, or an http
	// or https URL.
	FlameURL string
	// StreamBuffer is how many messages a topic stream holds for a client
	// that reads slower than they are published, default 256, at most
	// MaxStreamBuffer; beyond it the oldest are dropped, and counted.
	StreamBuffer int
	// MaxStreams bounds the open event and topic streams together, default
	// 16; a request for one more gets 503 Service Unavailable.
	MaxStreams int
	// TopMailboxes is how many of the largest mailboxes each snapshot
	// lists, default 10, at most engine.MaxSurveyTop.
	TopMailboxes int
	// Buffers, optional, is the application's payload pool: its counters
	// (live buffers, allocations) are plotted beside the heap.
	Buffers *pool.Buffers
	// Logger receives the dashboard's few notices (a stream refused, a
	// write that failed); nil means slog.Default().
	Logger *slog.Logger
}

func (o *Options) fill() error {
	if o.Interval == 0 {
		o.Interval = time.Second
	}
	if o.History == 0 {
		o.History = 5 * time.Minute
	}
	if o.StreamBuffer == 0 {
		o.StreamBuffer = 256
	}
	if o.MaxStreams == 0 {
		o.MaxStreams = 16
	}
	if o.TopMailboxes == 0 {
		o.TopMailboxes = 10
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch {
	case o.Interval < MinInterval:
		return fmt.Errorf("%w: Interval %v, want at least %v", ErrInvalidOptions, o.Interval, MinInterval)
	case o.History < o.Interval:
		return fmt.Errorf("%w: History %v, want at least Interval (%v)", ErrInvalidOptions, o.History, o.Interval)
	case o.History/o.Interval > MaxHistoryPoints:
		return fmt.Errorf("%w: History %v of Interval %v is %d points, want at most %d",
			ErrInvalidOptions, o.History, o.Interval, o.History/o.Interval, MaxHistoryPoints)
	case o.StreamBuffer < 0 || o.StreamBuffer > MaxStreamBuffer:
		return fmt.Errorf("%w: StreamBuffer %d, want 1..%d", ErrInvalidOptions, o.StreamBuffer, MaxStreamBuffer)
	case o.MaxStreams < 0:
		return fmt.Errorf("%w: MaxStreams %d, want at least 1", ErrInvalidOptions, o.MaxStreams)
	case o.TopMailboxes < 0 || o.TopMailboxes > engine.MaxSurveyTop:
		return fmt.Errorf("%w: TopMailboxes %d, want 1..%d", ErrInvalidOptions, o.TopMailboxes, engine.MaxSurveyTop)
	}
	if o.FlameURL != "" {
		u, err := url.Parse(o.FlameURL)
		if err != nil || (u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https") || (u.Scheme == "" && u.Host != "") {
			return fmt.Errorf("%w: FlameURL %q, want a path or an http(s) URL", ErrInvalidOptions, o.FlameURL)
		}
	}
	return nil
}

// Dashboard serves a live page of one engine: what its loops and agent
// types are doing, plotted over the last minutes, fed by Server-Sent
// Events. Mount it at Path:
//
//	mux.Handle(dashboard.Path, d)
//
// It has no authentication: serve it on a loopback address, or behind
// authentication.
//
// Concurrency-safe. New starts one goroutine, the sampler, which Close
// stops.
type Dashboard struct {
	e    *engine.Engine
	opts Options
	smp  *sampler
	page []byte // the rendered index.html
	log  *slog.Logger

	mu       sync.Mutex // protects the fields below, and handlers.Add
	hist     [][]byte   // ring of encoded snapshots
	hnext    int        // where the next one goes
	hlen     int
	clients  map[*eventClient]struct{}
	streams  int // open event and topic streams
	closed   bool
	handlers sync.WaitGroup // open streams; Close waits for them

	done      chan struct{}      // closed by Close: the sampler and the streams end
	tickReq   chan chan struct{} // a sample now, acknowledged (see tick)
	sampler   sync.WaitGroup
	closeOnce sync.Once

	totals streamTotals // of the topic streams

	// drainGate, for tests, holds each topic stream's writer before it
	// takes what its buffer holds. Nil in use.
	drainGate chan struct{}
}

// New returns a dashboard of e. It starts the sampler, which takes a
// snapshot at once and then every opts.Interval, until Close. It returns
// an error wrapping ErrNilEngine or ErrInvalidOptions.
func New(e *engine.Engine, opts Options) (*Dashboard, error) {
	d, err := newDashboard(e, opts)
	if err != nil {
		return nil, err
	}
	t := time.NewTicker(d.opts.Interval)
	d.sampler.Add(1)
	go func() {
		defer t.Stop()
		d.record(time.Now())
		d.run(t.C)
	}()
	return d, nil
}

// newDashboard builds a dashboard without starting its sampler.
func newDashboard(e *engine.Engine, opts Options) (*Dashboard, error) {
	if e == nil {
		return nil, ErrNilEngine
	}
	if err := opts.fill(); err != nil {
		return nil, err
	}
	page, err := renderPage(opts)
	if err != nil {
		return nil, err
	}
	return &Dashboard{
		e:       e,
		opts:    opts,
		smp:     newSampler(e, opts),
		page:    page,
		log:     opts.Logger,
		hist:    make([][]byte, opts.History/opts.Interval),
		clients: make(map[*eventClient]struct{}),
		done:    make(chan struct{}),
		tickReq: make(chan chan struct{}),
	}, nil
}

// run is the sampler's loop: a snapshot per tick, or per request of tick.
func (d *Dashboard) run(tick <-chan time.Time) {
	defer d.sampler.Done()
	for {
		select {
		case <-d.done:
			return
		case now := <-tick:
			d.record(now)
		case ack := <-d.tickReq:
			d.record(time.Now())
			close(ack)
		}
	}
}

// tick takes a snapshot on the sampler's goroutine and returns once every
// open events stream has been handed it. It reports false after Close.
func (d *Dashboard) tick() bool {
	ack := make(chan struct{})
	select {
	case d.tickReq <- ack:
		<-ack
		return true
	case <-d.done:
		return false
	}
}

// record takes one snapshot, keeps it in the history and hands it to the
// events streams.
func (d *Dashboard) record(now time.Time) {
	snap := d.smp.sample(now)
	b, err := json.Marshal(&snap)
	if err != nil {
		d.log.Error("dashboard: encoding a snapshot", "err", err) // unreachable: plain types
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hist[d.hnext] = b
	d.hnext = (d.hnext + 1) % len(d.hist)
	d.hlen = min(d.hlen+1, len(d.hist))
	for c := range d.clients {
		c.offer(b)
	}
}

// history returns the snapshots kept, oldest first. The caller holds mu.
func (d *Dashboard) history() [][]byte {
	out := make([][]byte, 0, d.hlen)
	start := (d.hnext - d.hlen + len(d.hist)) % len(d.hist)
	for i := 0; i < d.hlen; i++ {
		out = append(out, d.hist[(start+i)%len(d.hist)])
	}
	return out
}

// Close stops the sampler and ends every open stream, and returns once
// they have ended (a topic stream's subscription is gone by then). New
// streams are refused afterwards with 503; the page is still served.
// Close is idempotent and always returns nil.
func (d *Dashboard) Close() error {
	d.closeOnce.Do(func() {
		d.mu.Lock()
		d.closed = true
		d.mu.Unlock()
		close(d.done)
		d.sampler.Wait()
		d.handlers.Wait()
	})
	return nil
}

// ServeHTTP serves the page, its script and style, the events stream and
// the topic stream, by the last element of the request's path (so that it
// works mounted at Path, or elsewhere behind http.StripPrefix):
//
//	""            the page (index.html)
//	events        text/event-stream: an "history" event first, a JSON array
//	              of the snapshots kept (oldest first), then a "snapshot"
//	              event of one Snapshot per Interval
//	stream        text/event-stream of the messages published on the
//	              topics that ?topic=PATTERN matches (see the package doc)
//
// Only GET and HEAD are served (405 otherwise); an unknown name is 404, a
// missing or invalid pattern 400, a stream beyond MaxStreams or after
// Close 503.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "dashboard: method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := r.URL.Path
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	switch name {
	case "", "index.html":
		d.servePage(w, r)
	case "dashboard.js", "dashboard.css":
		serveAsset(w, r, name)
	case "events":
		d.serveEvents(w, r)
	case "stream":
		d.serveStream(w, r)
	default:
		http.NotFound(w, r)
	}
}

// acquire counts a new stream, or answers 503 and reports false.
func (d *Dashboard) acquire(w http.ResponseWriter) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closed:
		http.Error(w, "dashboard: closed", http.StatusServiceUnavailable)
		return false
	case d.streams >= d.opts.MaxStreams:
		http.Error(w, fmt.Sprintf("dashboard: %d streams open already (MaxStreams)", d.streams), http.StatusServiceUnavailable)
		d.log.Warn("dashboard: stream refused", "open", d.streams, "max", d.opts.MaxStreams)
		return false
	}
	d.streams++
	d.handlers.Add(1)
	return true
}

func (d *Dashboard) release() {
	d.mu.Lock()
	d.streams--
	d.mu.Unlock()
	d.handlers.Done()
}
