package metrics

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentloop/agentloop/engine"
)

// DefaultNamespace prefixes every series name unless WithNamespace says
// otherwise.
const DefaultNamespace = "agentloop"

// An Option configures a Collector.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	namespace string
	labels    prometheus.Labels
}

// WithNamespace sets the prefix of every series name (default
// DefaultNamespace). An empty namespace leaves names unprefixed. A namespace
// outside the classic metric name syntax, [a-zA-Z_:][a-zA-Z0-9_:]*, makes
// registering the collector fail with an error that names it.
func WithNamespace(ns string) Option {
	return optionFunc(func(c *config) { c.namespace = ns })
}

// WithConstLabels adds labels with fixed values to every series, for
// example to tell two engines of one process apart. The map is copied.
// Label names are in the classic syntax, [a-zA-Z_][a-zA-Z0-9_]*, not
// starting with "__", and not "type" or "loop", which the collector uses;
// any other name makes registering the collector fail with an error that
// names it. Several WithConstLabels options merge; a later value of a name
// wins.
func WithConstLabels(l prometheus.Labels) Option {
	l = maps.Clone(l)
	return optionFunc(func(c *config) {
		if c.labels == nil {
			c.labels = prometheus.Labels{}
		}
		maps.Copy(c.labels, l)
	})
}

// validate checks the namespace and label names against the classic
// Prometheus syntax, which every scraper and query language accepts
// unquoted.
func (c *config) validate() error {
	if c.namespace != "" && !isName(c.namespace, true) {
		return fmt.Errorf("metrics: namespace %q is not a metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)", c.namespace)
	}
	for name := range c.labels {
		switch {
		case !isName(name, false) || strings.HasPrefix(name, "__"):
			return fmt.Errorf("metrics: const label name %q is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)", name)
		case name == "type" || name == "loop":
			return fmt.Errorf("metrics: const label name %q is taken by the collector's own label", name)
		}
	}
	return nil
}

// isName reports whether s is a classic metric name (colon true) or label
// name (colon false).
func isName(s string, colon bool) bool {
	for i, r := range s {
		ok := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' ||
			i > 0 && r >= '0' && r <= '9' || colon && r == ':'
		if !ok {
			return false
		}
	}
	return s != ""
}

// Collector exports an engine's Stats as Prometheus metrics. It implements
// prometheus.Collector: register it with a prometheus.Registerer. Each
// Collect takes one Engine.Stats snapshot and turns it into constant
// metrics; between scrapes the collector costs nothing.
//
// Collect and Describe are concurrency-safe. Concurrent scrapes take their
// snapshots one after the other, because the loop utilisation gauge is a
// rate over the interval since the previous scrape by this collector,
// whoever asked for it.
type Collector struct {
	e   *engine.Engine
	now func() time.Time // time.Now; tests substitute a clock

	// Engine-wide.
	agents, deadLetters, panics *prometheus.Desc
	// Per agent type, label "type".
	received, processed, dropped, restarts, queued, handler *prometheus.Desc
	// Per loop, label "loop".
	busy, utilisation, inbox, runnable, timers, turns, parks *prometheus.Desc
	picks, agedPicks, longestWait                            *prometheus.Desc

	mu       sync.Mutex
	prevAt   time.Time       // when the previous snapshot was taken
	prevBusy []time.Duration // LoopStats.Busy per loop in that snapshot
}

// NewCollector returns a collector of e's Stats. It takes one snapshot at
// once, so that the first scrape reports the loops' utilisation since the
// collector was created. e may be started or not.
func NewCollector(e *engine.Engine, opts ...Option) *Collector {
	cfg := config{namespace: DefaultNamespace}
	for _, o := range opts {
		o.apply(&cfg)
	}
	bad := cfg.validate()
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		if bad != nil {
			return prometheus.NewInvalidDesc(bad)
		}
		return prometheus.NewDesc(prometheus.BuildFQName(cfg.namespace, "", name), help, labels, cfg.labels)
	}
	c := &Collector{
		e:   e,
		now: time.Now,

		agents:      desc("agents", "Live agents."),
		deadLetters: desc("dead_letters_total", "Messages dead-lettered: dropped by a full mailbox or undeliverable."),
		panics:      desc("panics_total", "Handler and hook panics recovered."),

		received:  desc("messages_received_total", "Messages that reached a mailbox of this agent type, including those then dropped.", "type"),
		processed: desc("messages_processed_total", "Messages handed to a handler of this agent type.", "type"),
		dropped:   desc("messages_dropped_total", "Messages dead-lettered by a full mailbox of this agent type.", "type"),
		restarts:  desc("restarts_total", "Restarts of agents of this type after a panic.", "type"),
		queued:    desc("mailbox_messages", "Messages waiting in the mailboxes of agents of this type.", "type"),
		handler: desc("handler_seconds",
			"Handler time per message of this agent type. Messages of one run of an agent count with the run's mean.", "type"),

		busy:        desc("loop_busy_seconds_total", "Time the loop has spent running agents.", "loop"),
		utilisation: desc("loop_utilisation_ratio", "Share of wall time the loop spent running agents since the previous scrape.", "loop"),
		inbox:       desc("loop_inbox_envelopes", "Envelopes waiting in the loop's inbox.", "loop"),
		runnable:    desc("loop_runnable_agents", "Agents of the loop waiting for a turn.", "loop"),
		timers:      desc("loop_timers", "Timers on the loop's precise heap.", "loop"),
		turns:       desc("loop_turns_total", "Turns the loop has run.", "loop"),
		parks:       desc("loop_parks_total", "Times the loop parked for lack of work.", "loop"),
		picks:       desc("loop_scheduler_picks_total", "Agents picked from the loop's runnable queue.", "loop"),
		agedPicks: desc("loop_scheduler_aged_picks_total",
			"Picks that served the longest-waiting agent ahead of a heavier one.", "loop"),
		longestWait: desc("loop_scheduler_longest_wait_picks",
			"Longest wait of any agent in the loop's runnable queue, in picks of other agents.", "loop"),
	}
	s := e.Stats()
	c.prevAt = c.now()
	c.prevBusy = busyOf(s.Loops, nil)
	return c
}

// Describe sends the descriptors of every series the collector can
// produce. Concurrency-safe.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs() {
		ch <- d
	}
}

func (c *Collector) descs() []*prometheus.Desc {
	return []*prometheus.Desc{
		c.agents, c.deadLetters, c.panics,
		c.received, c.processed, c.dropped, c.restarts, c.queued, c.handler,
		c.busy, c.utilisation, c.inbox, c.runnable, c.timers, c.turns, c.parks,
		c.picks, c.agedPicks, c.longestWait,
	}
}

// Collect takes one Engine.Stats snapshot and sends it as constant
// metrics: a fixed number per agent type and per loop, none per agent.
// Concurrency-safe.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s, util := c.snapshot()

	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- constMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- constMetric(d, prometheus.GaugeValue, v, labels...)
	}

	gauge(c.agents, float64(s.Agents))
	counter(c.deadLetters, float64(s.DeadLetters))
	counter(c.panics, float64(s.Panics))

	for _, t := range s.Types {
		counter(c.received, float64(t.Received), t.Type)
		counter(c.processed, float64(t.Processed), t.Type)
		counter(c.dropped, float64(t.Dropped), t.Type)
		counter(c.restarts, float64(t.Restarts), t.Type)
		gauge(c.queued, float64(t.Queued), t.Type)
		count, sum, buckets := histogram(t.Handler)
		m, err := prometheus.NewConstHistogram(c.handler, count, sum, buckets, t.Type)
		if err != nil {
			m = prometheus.NewInvalidMetric(c.handler, err)
		}
		ch <- m
	}

	for i, l := range s.Loops {
		loop := strconv.Itoa(l.Loop)
		counter(c.busy, l.Busy.Seconds(), loop)
		gauge(c.utilisation, util[i], loop)
		gauge(c.inbox, float64(l.Inbox), loop)
		gauge(c.runnable, float64(l.Runnable), loop)
		gauge(c.timers, float64(l.Timers), loop)
		counter(c.turns, float64(l.Turns), loop)
		counter(c.parks, float64(l.Parks), loop)
		counter(c.picks, float64(l.Scheduler.Picks), loop)
		counter(c.agedPicks, float64(l.Scheduler.AgedPicks), loop)
		gauge(c.longestWait, float64(l.Scheduler.LongestWait), loop)
	}
}

// snapshot takes a Stats snapshot and the utilisation of each loop since
// the previous one. The lock covers the snapshot too, so that snapshots
// are paired with their times in order.
func (c *Collector) snapshot() (engine.Stats, []float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.e.Stats()
	now := c.now()
	wall := now.Sub(c.prevAt)
	util := make([]float64, len(s.Loops))
	for i, l := range s.Loops {
		var prev time.Duration
		if i < len(c.prevBusy) {
			prev = c.prevBusy[i]
		}
		util[i] = utilisation(l.Busy-prev, wall)
	}
	c.prevAt = now
	c.prevBusy = busyOf(s.Loops, c.prevBusy)
	return s, util
}

// busyOf returns the Busy figure of each loop, reusing buf.
func busyOf(loops []engine.LoopStats, buf []time.Duration) []time.Duration {
	buf = buf[:0]
	for _, l := range loops {
		buf = append(buf, l.Busy)
	}
	return buf
}

// utilisation is busy time over wall time, within [0, 1]. A loop
// publishes its busy time once per turn, so a turn that straddles a
// scrape counts in the next interval and may push a short interval's
// ratio past 1: it is clamped.
func utilisation(busy, wall time.Duration) float64 {
	if busy <= 0 || wall <= 0 {
		return 0
	}
	return min(float64(busy)/float64(wall), 1)
}

// bounds are the upper bounds, in seconds, of the engine's bounded
// handler-latency buckets.
var bounds = func() []float64 {
	b := make([]float64, 0, engine.HandlerBuckets-1)
	for i := range engine.HandlerBuckets {
		if d := engine.HandlerBucketBound(i); d >= 0 {
			b = append(b, d.Seconds())
		}
	}
	return b
}()

// histogram converts the engine's non-cumulative buckets into the
// cumulative form Prometheus wants. The last engine bucket is unbounded:
// it becomes the implicit +Inf bucket, whose count is the total.
func histogram(h engine.HandlerStats) (count uint64, sum float64, buckets map[float64]uint64) {
	buckets = make(map[float64]uint64, len(bounds))
	for i, n := range h.Buckets {
		count += n
		if i < len(bounds) {
			buckets[bounds[i]] = count
		}
	}
	return count, h.Sum.Seconds(), buckets
}

// constMetric is prometheus.MustNewConstMetric without the panic: a
// descriptor left invalid by a bad option yields an invalid metric, which
// the registry reports as an error.
func constMetric(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) prometheus.Metric {
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		return prometheus.NewInvalidMetric(d, err)
	}
	return m
}
