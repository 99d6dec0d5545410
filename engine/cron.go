package engine

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// cronParser accepts the standard five fields, an optional leading seconds
// field, and descriptors such as @hourly and @every 5m.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour |
	cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron checks a cron spec the way Cron does.
func ParseCron(spec string) error {
	_, err := parseCron(spec)
	return err
}

func parseCron(spec string) (cron.Schedule, error) {
	s, err := cronParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidSchedule, spec, err)
	}
	return s, nil
}

// nextCron is the first due time of s after prev that is later than now:
// computed from the schedule, never from when the last tick was handled,
// so a schedule does not drift; ticks missed while the loop was busy are
// skipped. Zero means the schedule has no next time.
func (e *Engine) nextCron(s cron.Schedule, prev, now int64) int64 {
	t := time.Unix(0, max(prev, now)).In(e.loc)
	next := s.Next(t)
	if next.IsZero() {
		return 1<<63 - 1
	}
	return next.UnixNano()
}

// Cron delivers payload to the running agent at every time of the cron
// schedule spec ("*/5 * * * *", with an optional seconds field, or
// "@every 5m"), reckoned on the engine's clock in its location. A bad spec
// is refused with the parser's message.
func (c *Context) Cron(spec string, payload []byte) (Timer, error) {
	s, err := parseCron(spec)
	if err != nil {
		return Timer{}, err
	}
	return c.l.addCron(c.a, s, payload), nil
}

// Cron is Context.Cron for the agent id, from outside the engine (the
// agent is spawned when its type is registered and it does not exist).
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
	a := r.a
	t := &timer{a: a, gen: r.gen, payload: payload, l: a.loop, sched: s}
	a.loop.post(&envelope{op: opFunc, fn: func() {
		if t.status() != timerArmed {
			t.l.zombies.Add(-1) // stopped before it was scheduled
			return
		}
		now := e.now()
		t.when = e.nextCron(s, now, now)
		t.l.schedTimer(t, now)
	}})
	return Timer{t, 0}, nil
}

func (l *loop) addCron(a *agent, s cron.Schedule, payload []byte) Timer {
	t := l.newTimer()
	t.a, t.gen, t.payload, t.sched = a, a.gen.Load(), payload, s
	now := l.e.now()
	t.when = l.e.nextCron(s, now, now)
	l.schedTimer(t, now)
	return Timer{t, t.seq}
}
