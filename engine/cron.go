package engine

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/robfig/cron/v3"
)

// cronParser accepts the standard five fields, an optional leading seconds
// field, and the descriptors @yearly, @annually, @monthly, @weekly, @daily,
// @midnight and @hourly. ParseCron handles the time zone prefix and @every
// itself.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour |
	cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// everyPrefix introduces a fixed-period schedule.
const everyPrefix = "@every "

// everySchedule is "@every d": a tick every d exactly, the first one d
// after the schedule is armed. robfig/cron's own @every rounds to whole
// seconds and reckons each tick from when the previous one was handled;
// this one keeps the phase of the first tick (see nextCron).
type everySchedule time.Duration

// Next returns t+d, saturated at the end of time.
func (s everySchedule) Next(t time.Time) time.Time {
	return time.Unix(0, deadline(t.UnixNano(), int64(s))).In(t.Location())
}

// Schedule is a parsed cron spec: Next returns the first time of the
// schedule after t, or the zero time when there is none.
type Schedule interface {
	Next(t time.Time) time.Time
}

// ParseCron parses a cron spec the way Cron does, so that a spec can be
// checked (a configuration loaded) or its next times shown before any
// agent uses it: the Schedule Cron would follow, or the error Cron would
// return.
func ParseCron(spec string) (Schedule, error) {
	s, err := parseCron(spec)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// parseCron parses spec into a schedule, or returns an error wrapping
// ErrInvalidSchedule (and ErrInvalidDuration for an @every period that is
// not positive). It never panics.
func parseCron(spec string) (cron.Schedule, error) {
	body, loc, err := cutTimeZone(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidSchedule, spec, err)
	}
	if d, ok := strings.CutPrefix(body, everyPrefix); ok {
		period, err := time.ParseDuration(d)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrInvalidSchedule, spec, err)
		}
		if period <= 0 {
			return nil, fmt.Errorf("%w: %q: period %v is not positive (%w)", ErrInvalidSchedule, spec, period, ErrInvalidDuration)
		}
		return everySchedule(period), nil
	}
	s, err := parseSpec(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidSchedule, spec, err)
	}
	if loc != nil {
		if ss, ok := s.(*cron.SpecSchedule); ok {
			ss.Location = loc
		}
	}
	return s, nil
}

// cutTimeZone splits a leading "TZ=zone " or "CRON_TZ=zone " off spec and
// loads the zone; loc is nil when there is no prefix. robfig/cron parses
// the prefix too, but slices past the end of a spec that has nothing after
// the zone ("TZ=UTC") and panics, so the prefix never reaches it.
func cutTimeZone(spec string) (body string, loc *time.Location, err error) {
	rest, ok := strings.CutPrefix(spec, "TZ=")
	if !ok {
		if rest, ok = strings.CutPrefix(spec, "CRON_TZ="); !ok {
			return spec, nil, nil
		}
	}
	name, body := rest, ""
	if i := strings.IndexFunc(rest, unicode.IsSpace); i >= 0 {
		name, body = rest[:i], strings.TrimSpace(rest[i:])
	}
	switch {
	case name == "":
		return "", nil, fmt.Errorf("empty time zone name")
	case body == "":
		return "", nil, fmt.Errorf("time zone %q without a schedule", name)
	case strings.HasPrefix(body, "TZ=") || strings.HasPrefix(body, "CRON_TZ="):
		return "", nil, fmt.Errorf("more than one time zone")
	}
	loc, err = time.LoadLocation(name)
	if err != nil {
		return "", nil, fmt.Errorf("time zone %q: %v", name, err)
	}
	return body, loc, nil
}

// parseSpec is the robfig/cron parser behind a recover: a panic in the
// library is a spec it could not handle, not a crash of the caller.
func parseSpec(spec string) (s cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("parser panicked: %v", r)
		}
	}()
	return cronParser.Parse(spec)
}

// nextCron is the first due time of s after prev that is later than now:
// computed from the schedule, never from when the last tick was handled,
// so a schedule does not drift; ticks missed while the loop was busy are
// skipped. It is never when the schedule has no next time, or none before
// the end of the engine's time (2262).
func (e *Engine) nextCron(s cron.Schedule, prev, now int64) int64 {
	if p, ok := s.(everySchedule); ok {
		return nextTick(prev, int64(p), now)
	}
	t := time.Unix(0, max(prev, now)).In(e.loc)
	next := s.Next(t)
	if next.IsZero() || !next.Before(endOfTime) {
		return never
	}
	return next.UnixNano()
}

// endOfTime is never as a time.Time.
var endOfTime = time.Unix(0, never)

// Cron delivers payload to the running agent at every time of the cron
// schedule spec, reckoned on the engine's clock, until the Timer is
// stopped or the agent terminates. Accepted specs:
//
//   - five fields, minute hour day-of-month month day-of-week
//     ("*/5 * * * *"), or six with a leading seconds field ("0 */5 * * * *"),
//     reckoned in the location of the engine's clock;
//   - the descriptors @yearly (@annually), @monthly, @weekly, @daily
//     (@midnight) and @hourly;
//   - "@every d", d a time.ParseDuration string: a tick every d exactly
//     (sub-second periods included), the first one d from now, each later
//     one the previous due time plus d;
//   - any of these after a "TZ=zone " or "CRON_TZ=zone " prefix, zone an
//     IANA name ("CRON_TZ=Europe/Paris 0 9 * * *"), which reckons the
//     fields in that zone instead.
//
// Ticks do not drift, and ticks missed while the loop was busy are
// skipped, not bunched. A schedule with no next time (30 February) is
// accepted and never fires. Anything else is refused with an error
// wrapping ErrInvalidSchedule that quotes spec; an @every period that is
// zero or negative wraps ErrInvalidDuration as well. ParseCron checks a
// spec the same way.
func (c *Context) Cron(spec string, payload []byte) (Timer, error) {
	s, err := parseCron(spec)
	if err != nil {
		return Timer{}, err
	}
	return c.l.addCron(c.a, s, payload), nil
}

// Cron is Context.Cron for the agent id, from outside the engine (the
// agent is spawned when its type is registered and it does not exist). It
// returns ErrStopped once the engine is stopping. Concurrency-safe.
func (e *Engine) Cron(spec string, id AgentID, payload []byte) (Timer, error) {
	s, err := parseCron(spec)
	if err != nil {
		return Timer{}, err
	}
	r, err := e.resolve(id)
	if err != nil {
		return Timer{}, err
	}
	if e.state.Load() >= stateStopping {
		return Timer{}, fmt.Errorf("%w: cron for %s", ErrStopped, id)
	}
	t := &timer{a: r.a, gen: r.gen, payload: payload, l: r.a.loop, sched: s}
	return e.armOutside(t, func(now int64) int64 { return e.nextCron(s, now, now) }), nil
}

func (l *loop) addCron(a *agent, s cron.Schedule, payload []byte) Timer {
	t := l.newTimer()
	t.a, t.gen, t.payload, t.sched = a, a.gen.Load(), payload, s
	now := l.e.now()
	t.when = l.e.nextCron(s, now, now)
	l.schedTimer(t, now)
	return Timer{t, t.seq}
}
