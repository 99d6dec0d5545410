package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones below, whatever the machine has installed

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/enginetest"
)

// parseCronSafely is engine.ParseCron with a panic turned into a failure,
// so that one bad spec does not end the whole test binary.
func parseCronSafely(t *testing.T, spec string) (err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("ParseCron(%q) panicked: %v", spec, r)
			err = errors.New("panicked")
		}
	}()
	_, err = engine.ParseCron(spec)
	return err
}

// cronEverywhere checks spec with ParseCron, Context.Cron and Engine.Cron
// and returns their three errors; a panic in any of them fails the test.
func cronEverywhere(t *testing.T, lab *timerLab, spec string) []error {
	t.Helper()
	errs := []error{parseCronSafely(t, spec)}
	lab.do("a", func(c *engine.Context) {
		tm, err := c.Cron(spec, []byte("ctx"))
		if err != nil && tm.Stop() {
			t.Errorf("Context.Cron(%q): the Timer of a refused call stopped something", spec)
		}
		errs = append(errs, err)
	})
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("Engine.Cron(%q) panicked: %v", spec, r)
				errs = append(errs, errors.New("panicked"))
			}
		}()
		_, err := lab.h.Engine.Cron(spec, labID("a"), []byte("engine"))
		errs = append(errs, err)
	}()
	return errs
}

func TestCronRefusesEveryWithoutAPositivePeriod(t *testing.T) {
	lab := newTimerLab(t)
	for _, spec := range []string{"@every 0s", "@every 0", "@every -5m", "@every -1ns", "TZ=UTC @every 0s"} {
		for i, err := range cronEverywhere(t, lab, spec) {
			if !errors.Is(err, engine.ErrInvalidDuration) || !errors.Is(err, engine.ErrInvalidSchedule) ||
				!strings.Contains(err.Error(), fmt.Sprintf("%q", spec)) {
				t.Errorf("%q, call %d: %v, want ErrInvalidDuration and ErrInvalidSchedule quoting the spec", spec, i, err)
			}
		}
	}
	lab.h.Advance(time.Minute)
	lab.expect("a")
}

func TestCronRefusesBadTimeZonePrefixesWithoutPanicking(t *testing.T) {
	lab := newTimerLab(t)
	for _, spec := range []string{
		"TZ=UTC", "CRON_TZ=Europe/Paris", "TZ=", "CRON_TZ=", "TZ= ", "TZ=UTC ",
		"TZ= * * * * *", "CRON_TZ= 0 9 * * *",
		"TZ=Nowhere/Atlantis * * * * *", "TZ=../../etc/passwd * * * * *",
		"TZ=UTC TZ=UTC", "TZ=UTC CRON_TZ=Europe/Paris 0 9 * * *", "TZ=UTC TZ=",
		"TZ=UTC bogus", "TZ=UTC @every", "TZ=UTC @every 0s",
	} {
		for i, err := range cronEverywhere(t, lab, spec) {
			if !errors.Is(err, engine.ErrInvalidSchedule) || !strings.Contains(err.Error(), fmt.Sprintf("%q", spec)) {
				t.Errorf("%q, call %d: %v, want ErrInvalidSchedule quoting the spec", spec, i, err)
			}
		}
	}
	lab.h.Advance(time.Minute)
	lab.expect("a")
}

func TestCronRefusesMalformedSpecs(t *testing.T) {
	lab := newTimerLab(t)
	for _, spec := range []string{
		"", " ", "* * *", "* * * * * * *", "61 * * * *", "* 25 * * *", "*/0 * * * *",
		"@", "@bogus", "@every", "@every ", "@every 5", "@every x", "@every 1h ", "@every  1h",
		"@every 9999999999h", "@hourly extra",
	} {
		for i, err := range cronEverywhere(t, lab, spec) {
			if !errors.Is(err, engine.ErrInvalidSchedule) || errors.Is(err, engine.ErrInvalidDuration) ||
				!strings.Contains(err.Error(), fmt.Sprintf("%q", spec)) {
				t.Errorf("%q, call %d: %v, want ErrInvalidSchedule (only) quoting the spec", spec, i, err)
			}
		}
	}
	lab.h.Advance(time.Minute)
	lab.expect("a")
}

// @every honours its period exactly, below a second too.
func TestCronEveryIsExact(t *testing.T) {
	for _, c := range []struct {
		spec   string
		period time.Duration
		span   time.Duration
	}{
		{"@every 250ms", 250 * time.Millisecond, 10 * time.Second},
		{"@every 1500ms", 1500 * time.Millisecond, 6 * time.Second},
		{"@every 1m30s", 90 * time.Second, time.Hour},
		{"TZ=Asia/Tokyo @every 2s", 2 * time.Second, time.Minute},
	} {
		t.Run(c.spec, func(t *testing.T) {
			lab := newTimerLab(t)
			lab.do("a", func(ctx *engine.Context) {
				if _, err := ctx.Cron(c.spec, []byte("tick")); err != nil {
					t.Error(err)
				}
			})
			lab.h.Advance(c.span)
			lab.expect("a", ticks(c.period, c.period, int(c.span/c.period), "tick")...)
		})
	}
}

// @every keeps the phase of its first tick, d after it was armed: it is
// not rounded to the second.
func TestCronEveryKeepsItsPhase(t *testing.T) {
	lab := newTimerLab(t)
	lab.h.Advance(300 * time.Millisecond)
	lab.do("a", func(c *engine.Context) {
		if _, err := c.Cron("@every 1s", []byte("tick")); err != nil {
			t.Error(err)
		}
	})
	lab.h.Advance(3 * time.Second)
	lab.expect("a", "1.3s tick", "2.3s tick", "3.3s tick")
}

// Engine.Cron spawns the agent when it does not exist, and @every is exact
// from outside too.
func TestEngineCronEverySpawnsAndIsExact(t *testing.T) {
	lab := newTimerLab(t)
	if _, err := lab.h.Engine.Cron("@every 250ms", labID("new"), []byte("tick")); err != nil {
		t.Fatal(err)
	}
	lab.h.Settle()
	lab.h.Advance(time.Second)
	lab.expect("new", ticks(250*time.Millisecond, 250*time.Millisecond, 4, "tick")...)
}

// Missed ticks of a cron schedule are skipped, not bunched: one late tick,
// then the schedule's own times again. For @every the phase is kept.
func TestCronSkipsMissedTicks(t *testing.T) {
	for _, spec := range []string{"* * * * * *", "@every 1s"} {
		t.Run(spec, func(t *testing.T) {
			lab := newTimerLab(t)
			lab.do("a", func(c *engine.Context) {
				if _, err := c.Cron(spec, []byte("tick")); err != nil {
					t.Error(err)
				}
			})
			lab.h.Advance(2 * time.Second)
			lab.do("a", func(*engine.Context) { lab.h.Clock.Advance(3500 * time.Millisecond) }) // busy to 5.5s
			lab.h.Advance(2 * time.Second)
			lab.expect("a", "1s tick", "2s tick", "5.5s tick", "6s tick", "7s tick")
		})
	}
}

func TestCronTimeZonePrefix(t *testing.T) {
	lab := newTimerLab(t)
	lab.do("a", func(c *engine.Context) {
		if _, err := c.Cron("TZ=UTC * * * * *", []byte("utc")); err != nil {
			t.Error(err)
		}
	})
	if _, err := lab.h.Engine.Cron("CRON_TZ=Europe/Paris 0 9 * * *", labID("paris"), []byte("paris")); err != nil {
		t.Fatal(err)
	}
	lab.h.Settle()
	lab.h.Advance(3 * time.Minute)
	lab.expect("a", "1m0s utc", "2m0s utc", "3m0s utc")

	// 09:00 in Paris is 08:00 UTC in winter (CET) and 07:00 UTC in summer
	// (CEST, from 29 March 2026).
	lab.h.Advance(24*time.Hour - 3*time.Minute)
	lab.expect("paris", "8h0m0s paris")
	lab.h.Advance(100 * 24 * time.Hour) // to 11 April
	got := lab.got("paris")
	if len(got) != 101 {
		t.Fatalf("%d daily ticks in 101 days, want 101", len(got))
	}
	paris := mustZone(t, "Europe/Paris")
	for i, g := range got {
		at, err := time.ParseDuration(strings.TrimSuffix(g, " paris"))
		if err != nil {
			t.Fatalf("tick %q: %v", g, err)
		}
		utc := enginetest.Epoch.Add(at)
		paris := utc.In(paris)
		if paris.Hour() != 9 || paris.Minute() != 0 || paris.YearDay() != i+1 {
			t.Fatalf("tick %d at %v (%v in Paris), want 09:00 in Paris on day %d", i, utc, paris, i+1)
		}
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// Without a prefix the fields are reckoned in the location of the engine's
// clock; with one, in the prefix's zone. The harness's clock is in UTC, so
// this engine runs on a manual clock of its own, in Tokyo.
func TestCronFieldsAreInTheClockLocation(t *testing.T) {
	tokyo := mustZone(t, "Asia/Tokyo")
	clk := enginetest.NewClock(enginetest.Epoch.In(tokyo))
	e, err := engine.New(engine.WithLoops(1), engine.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 16)
	if err := e.Register("zone", func() engine.Agent {
		return timerFuncAgent(func(c *engine.Context, m engine.Message) {
			got <- fmt.Sprintf("%s %s", m.Payload, clk.Now().UTC().Format("15:04"))
		})
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer func() {
		if err := e.Stop(ctx); err != nil {
			t.Error(err)
		}
	}()
	id := engine.AgentID{Type: "zone", Key: "1"}
	for spec, payload := range map[string]string{"0 9 * * *": "local", "TZ=UTC 0 9 * * *": "utc"} {
		if _, err := e.Cron(spec, id, []byte(payload)); err != nil {
			t.Fatal(err)
		}
	}
	// Step the clock from one alarm to the next, as Harness.Advance does.
	settle := func() {
		if err := e.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	settle()
	target := clk.Now().Add(24 * time.Hour)
	for {
		next, ok := clk.Next()
		if !ok || next.After(target) {
			break
		}
		clk.Set(next)
		settle()
	}
	clk.Set(target)
	settle()
	close(got)
	var all []string
	for g := range got {
		all = append(all, g)
	}
	if fmt.Sprint(all) != "[utc 09:00 local 00:00]" {
		t.Fatalf("ticks %q, want 09:00 UTC, then 09:00 in Tokyo (00:00 UTC the next day)", all)
	}
}

// A schedule with no next time is accepted and never fires.
func TestCronWithNoNextTimeNeverFires(t *testing.T) {
	lab := newTimerLab(t)
	var tm engine.Timer
	lab.do("a", func(c *engine.Context) {
		var err error
		if tm, err = c.Cron("0 0 30 2 *", []byte("feb30")); err != nil {
			t.Error(err)
		}
	})
	lab.h.Advance(1000 * time.Hour)
	lab.expect("a")
	if !tm.Stop() {
		t.Fatal("Stop of the armed schedule returned false")
	}
}

func TestEngineCronStoppedBeforeItIsScheduled(t *testing.T) {
	lab := newTimerLab(t)
	tm, err := lab.h.Engine.Cron("@every 1s", labID("a"), []byte("tick"))
	if err != nil {
		t.Fatal(err)
	}
	if !tm.Stop() || tm.Stop() {
		t.Fatal("Stop right after Engine.Cron: want true, then false")
	}
	lab.h.Advance(time.Minute)
	lab.expect("a")
}

func TestEngineCronRefusals(t *testing.T) {
	lab := newTimerLab(t)
	if _, err := lab.h.Engine.Cron("@hourly", engine.AgentID{Type: "nope", Key: "1"}, nil); !errors.Is(err, engine.ErrUnknownType) {
		t.Errorf("unknown type: %v, want ErrUnknownType", err)
	}
	if _, err := lab.h.Engine.Cron("@hourly", engine.AgentID{Type: "lab"}, nil); !errors.Is(err, engine.ErrInvalidID) {
		t.Errorf("empty key: %v, want ErrInvalidID", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := lab.h.Engine.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.h.Engine.Cron("@hourly", labID("a"), nil); !errors.Is(err, engine.ErrStopped) {
		t.Errorf("after Stop: %v, want ErrStopped", err)
	}
}

// Each documented form is accepted by ParseCron, Context.Cron and
// Engine.Cron alike, and first fires when it says. The harness epoch is
// Thursday 1 January 2026, 00:00 UTC.
func TestCronDocumentedFormsFireOnTheirSchedule(t *testing.T) {
	const day = 24 * time.Hour
	for _, c := range []struct {
		spec  string
		first time.Duration
	}{
		{"*/5 * * * *", 5 * time.Minute},
		{"0 */5 * * * *", 5 * time.Minute},
		{"30 * * * * *", 30 * time.Second},
		{"@hourly", time.Hour},
		{"@daily", day},
		{"@midnight", day},
		{"@weekly", 3 * day}, // Sunday 4 January
		{"@monthly", 31 * day},
		{"@yearly", 365 * day},
		{"@annually", 365 * day},
		{"@every 1h30m", 90 * time.Minute},
		{"@every 250ms", 250 * time.Millisecond},
		{"TZ=Asia/Tokyo @daily", 15 * time.Hour}, // midnight in Tokyo is 15:00 UTC
		{"CRON_TZ=Europe/Paris 0 9 * * *", 8 * time.Hour},
		{"TZ=UTC\t0 9 * * *", 9 * time.Hour},
	} {
		t.Run(c.spec, func(t *testing.T) {
			if err := parseCronSafely(t, c.spec); err != nil {
				t.Fatalf("ParseCron: %v", err)
			}
			lab := newTimerLab(t)
			var tm engine.Timer
			lab.do("ctx", func(ctx *engine.Context) {
				var err error
				if tm, err = ctx.Cron(c.spec, []byte("tick")); err != nil {
					t.Errorf("Context.Cron: %v", err)
				}
			})
			if _, err := lab.h.Engine.Cron(c.spec, labID("engine"), []byte("tick")); err != nil {
				t.Fatalf("Engine.Cron: %v", err)
			}
			lab.h.Settle()
			lab.h.Advance(c.first - time.Nanosecond)
			lab.expect("ctx")
			lab.expect("engine")
			lab.h.Advance(time.Nanosecond)
			want := fmt.Sprintf("%v tick", c.first)
			lab.expect("ctx", want)
			lab.expect("engine", want)
			if !tm.Stop() || tm.Stop() {
				t.Fatal("Stop of a ticking Context.Cron schedule: want true, then false")
			}
		})
	}
}

// Engine.Cron is safe from many goroutines at once.
func TestEngineCronConcurrently(t *testing.T) {
	lab := newTimerLab(t, engine.WithLoops(2))
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := lab.h.Engine.Cron("@every 1s", labID(fmt.Sprint(i)), []byte("tick"))
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	lab.h.Settle()
	lab.h.Advance(2 * time.Second)
	for i := range n {
		lab.expect(fmt.Sprint(i), "1s tick", "2s tick")
	}
}

// FuzzParseCron: any string is a schedule or an error wrapping
// ErrInvalidSchedule, never a panic, and a spec is judged the same way
// each time.
func FuzzParseCron(f *testing.F) {
	for _, s := range []string{
		"TZ=UTC * * * * *", "CRON_TZ=Europe/Paris 0 9 * * *", "@every 0s", "@every 250ms",
		"@every -5m", "@hourly", "@yearly", "*/5 * * * *", "0 */15 * * * *", "0 0 30 2 *",
		"TZ=UTC", "CRON_TZ=Europe/Paris", "TZ=", "TZ= * * * * *", "TZ=UTC TZ=UTC",
		"", "* * *", "61 * * * *", "@every", "@bogus", "1-5/2 * * JAN-MAR MON,FRI",
		"TZ=UTC\t@every 1h", "\x00", "TZ=\xff * * * * *",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		_, err := engine.ParseCron(spec)
		if err != nil {
			if !errors.Is(err, engine.ErrInvalidSchedule) {
				t.Fatalf("ParseCron(%q) = %v, not an ErrInvalidSchedule", spec, err)
			}
			if errors.Is(err, engine.ErrInvalidDuration) && !strings.Contains(spec, "@every") {
				t.Fatalf("ParseCron(%q) = %v: ErrInvalidDuration without @every", spec, err)
			}
		}
		if _, again := engine.ParseCron(spec); (again == nil) != (err == nil) {
			t.Fatalf("ParseCron(%q) said %v, then %v", spec, err, again)
		}
	})
}
