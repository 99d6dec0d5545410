package engine

// This file: the engine's log. What goes wrong in the engine (a panic, an
// Init that fails, a spent restart budget, dead letters, a Stop past its
// deadline) is written to a log/slog Logger, with limits so that a
// failing workload cannot flood it. Nothing here runs on the message path:
// the loops call in only when a handler has panicked or an agent fails,
// and a dead letter costs one counter (summarised later, off the loops).

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of WithLogLimit.
const (
	DefaultLogBurst    = 10
	DefaultLogInterval = 10 * time.Second
)

// WithLogger sets the logger the engine writes its records to (see
// "Logging" in the package documentation for what it logs). Without this
// option the engine logs to slog.Default(), as it is when each record is
// written. A nil logger is refused with ErrInvalidOption; to silence the
// engine, give it a logger that discards, such as
// slog.New(slog.DiscardHandler), or one whose handler's level is above
// slog.LevelError.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		if l == nil {
			return fmt.Errorf("%w: WithLogger(nil): to discard records, pass slog.New(slog.DiscardHandler)", ErrInvalidOption)
		}
		c.logger = l
		return nil
	})
}

// WithLogLimit bounds the engine's log. Of each kind of record about an
// agent (a panic, an Init failure, a spent restart budget) at most burst
// are written per agent type in each interval, measured on the engine's
// clock from the first record of the interval; the rest are counted and
// reported in one "engine: records suppressed" record once the interval
// is over. Dead letters are never logged one by one: every interval in
// which their count changed ends with one "engine: dead letters" record
// that counts them by reason. The defaults are DefaultLogBurst and
// DefaultLogInterval; burst must be ≥ 1 and interval ≥ 1ms.
func WithLogLimit(burst int, interval time.Duration) Option {
	return optionFunc(func(c *config) error {
		if burst < 1 {
			return fmt.Errorf("%w: WithLogLimit(%d, %v): want burst ≥ 1", ErrInvalidOption, burst, interval)
		}
		if interval < time.Millisecond {
			return fmt.Errorf("%w: WithLogLimit(%d, %v): want interval ≥ 1ms", ErrInvalidDuration, burst, interval)
		}
		c.logBurst, c.logInterval = burst, interval
		return nil
	})
}

// logKind is a kind of record about an agent, limited per agent type.
type logKind uint8

const (
	logPanic logKind = iota
	logInitFailed
	logBudget
	numLogKinds
)

var logKindNames = [numLogKinds]string{"panic", "init failure", "restart budget exhausted"}

// typeLimit is the record budget of one agent type, per kind.
type typeLimit [numLogKinds]struct {
	start      int64 // engine nanos: the start of the current interval
	logged     int   // records written in it
	suppressed int   // records counted instead of written, not yet reported
}

// engineLog is the engine's log state.
type engineLog struct {
	logger   *slog.Logger // nil: slog.Default() at each record
	burst    int
	interval time.Duration

	// armed is set while a summary tick is pending on the clock; the
	// dead-letter path reads it to know whether to arm one.
	armed atomic.Bool

	mu       sync.Mutex // protects the fields below; never held while a record is written
	closed   bool       // Stop has written the last summary: arm no more ticks
	stopTick func() bool
	ticks    sync.WaitGroup   // armed ticks not yet finished, for Stop to wait on
	last     DeadLetterCounts // the dead letters the last summary covered
	limits   map[*agentType]*typeLimit
}

func (g *engineLog) init(c *config, loops int) {
	g.logger, g.burst, g.interval = c.logger, c.logBurst, c.logInterval
	g.limits = make(map[*agentType]*typeLimit)
}

func (g *engineLog) get() *slog.Logger {
	if g.logger != nil {
		return g.logger
	}
	return slog.Default()
}

// write writes one record. A handler that panics loses its record and is
// counted in Stats().Panics, like a panicking plugin: it never takes a
// loop down.
func (e *Engine) write(level slog.Level, msg string, attrs ...slog.Attr) {
	e.safePlugin(func() { e.log.get().LogAttrs(context.Background(), level, msg, attrs...) })
}

// agentAttrs are the attributes of every record about agent a.
func agentAttrs(a *agent, l *loop, extra ...slog.Attr) []slog.Attr {
	attrs := make([]slog.Attr, 0, 3+len(extra))
	attrs = append(attrs,
		slog.String("agent", a.ident().String()),
		slog.String("type", a.typ.name),
		slog.Int("loop", l.idx))
	return append(attrs, extra...)
}

// logAgent writes a record of kind k about agent a unless its type has
// spent its budget of such records for the interval, in which case the
// record is only counted. It reads the clock: call it on failure paths
// only.
func (l *loop) logAgent(k logKind, a *agent, level slog.Level, msg string, extra ...slog.Attr) {
	e := l.e
	g := &e.log
	now := e.now()
	g.mu.Lock()
	lim := g.limits[a.typ]
	if lim == nil {
		lim = new(typeLimit)
		g.limits[a.typ] = lim
	}
	s := &lim[k]
	flushed := 0
	if s.logged == 0 || now-s.start >= int64(g.interval) || now < s.start {
		flushed = s.suppressed
		s.start, s.logged, s.suppressed = now, 0, 0
	}
	write := s.logged < g.burst
	if write {
		s.logged++
	} else {
		s.suppressed++
		e.armTick() // the tick reports the count when the interval is over
	}
	g.mu.Unlock()
	if flushed > 0 {
		e.write(slog.LevelWarn, "engine: records suppressed", suppressedAttrs(a.typ, k, flushed, g.interval)...)
	}
	if write {
		e.write(level, msg, agentAttrs(a, l, extra...)...)
	}
}

func suppressedAttrs(t *agentType, k logKind, n int, interval time.Duration) []slog.Attr {
	return []slog.Attr{
		slog.String("type", t.name),
		slog.String("kind", logKindNames[k]),
		slog.Int("suppressed", n),
		slog.Duration("interval", interval),
	}
}

// noteDeadLetter makes sure a summary tick is armed after a dead letter
// was counted (countDeadLetter).
func (e *Engine) noteDeadLetter() {
	if !e.log.armed.Load() {
		e.log.mu.Lock()
		e.armTick()
		e.log.mu.Unlock()
	}
}

// armTick arms the summary tick unless one is pending or Stop has closed
// the log. The caller holds e.log.mu.
func (e *Engine) armTick() {
	g := &e.log
	if g.closed || g.armed.Load() {
		return
	}
	g.armed.Store(true)
	g.ticks.Add(1)
	g.stopTick = e.clock.AfterFunc(g.interval, e.logTick)
}

// deadTotals sums the dead-letter counters of every type, the ones
// DeadLetterStats reports.
func (e *Engine) deadTotals() DeadLetterCounts { return e.DeadLetterStats().DeadLetterCounts }

// summaries returns the records due at now: the dead letters counted
// since the last summary, if any, and the suppressed counts of the
// intervals that are over (all of them when final), and whether records
// are still suppressed in an interval that is not. The caller holds mu.
func (g *engineLog) summaries(t DeadLetterCounts, now int64, final bool) (recs [][]slog.Attr, pending bool) {
	if t != g.last {
		var total uint64
		attrs := []slog.Attr{slog.Duration("interval", g.interval)}
		for k := range t {
			if d := t[k] - g.last[k]; d > 0 {
				total += d
				attrs = append(attrs, slog.Uint64(DeadLetterReason(k).String(), d))
			}
		}
		g.last = t
		recs = append(recs, append([]slog.Attr{slog.Uint64("total", total)}, attrs...))
	}
	for typ, lim := range g.limits {
		for k := range lim {
			s := &lim[k]
			if s.suppressed == 0 {
				continue
			}
			if !final && now-s.start < int64(g.interval) && now >= s.start {
				pending = true
				continue
			}
			recs = append(recs, suppressedAttrs(typ, logKind(k), s.suppressed, g.interval))
			s.suppressed = 0
		}
	}
	return recs, pending
}

// writeSummaries writes what summaries returned: dead letters first.
func (e *Engine) writeSummaries(recs [][]slog.Attr) {
	for _, attrs := range recs {
		msg := "engine: records suppressed"
		if attrs[0].Key == "total" {
			msg = "engine: dead letters"
		}
		e.write(slog.LevelWarn, msg, attrs...)
	}
}

// logTick runs on the clock's goroutine once an interval after it was
// armed: it writes the summaries and arms itself again while there is
// something to report. An engine with no dead letters and no suppressed
// records has no tick pending, so an idle engine is not woken for it.
func (e *Engine) logTick() {
	g := &e.log
	defer g.ticks.Done()
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	recs, pending := g.summaries(e.deadTotals(), e.now(), false)
	g.armed.Store(false)
	// A dead letter counted after summaries read the counters saw armed
	// still set and armed nothing: look again now that it is clear.
	if len(recs) > 0 || pending || e.deadTotals() != g.last {
		e.armTick()
	}
	g.mu.Unlock()
	e.writeSummaries(recs)
}

// closeLog writes the last summaries, for Stop: the dead letters of the
// stop itself and whatever is still suppressed. It waits for a tick in
// flight, so no goroutine of the log outlives Stop.
func (e *Engine) closeLog() {
	g := &e.log
	g.mu.Lock()
	g.closed = true
	if g.armed.Load() && g.stopTick != nil && g.stopTick() {
		g.ticks.Done() // it will not run
	}
	recs, _ := g.summaries(e.deadTotals(), e.now(), true)
	g.mu.Unlock()
	g.ticks.Wait()
	e.writeSummaries(recs)
}
