package engine_test

// Timers on the manual clock of package enginetest.

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/enginetest"
)

// timerAgent arms what its first message says and logs every delivery
// with the clock time.
func timerAgent(h *enginetest.Harness, log *accLog, arm func(c *engine.Context)) func() engine.Agent {
	return accRecvOnly(func(c *engine.Context, m engine.Message) {
		if string(m.Payload) == "arm" {
			arm(c)
			return
		}
		log.add(h.Clock.Now().Sub(enginetest.Epoch).String() + " " + string(m.Payload))
	})
}

// context.go Every: "delivers payload ... every d, the first time d from
// now"; enginetest: "an hour of five-minute ticks arrives as exactly twelve
// messages, in order".
func TestAcceptanceTimersEveryUnderHarness(t *testing.T) {
	for _, d := range []time.Duration{5 * time.Minute, 7 * time.Minute, 20 * time.Minute} {
		t.Run(d.String(), func(t *testing.T) {
			h := enginetest.New(t, engine.WithLoops(1))
			var log accLog
			if err := h.Engine.Register("tk", timerAgent(h, &log, func(c *engine.Context) {
				if _, err := c.Every(d, []byte("tick")); err != nil {
					panic(err)
				}
			})); err != nil {
				t.Fatal(err)
			}
			h.Start()
			if err := h.Engine.SendID(engine.AgentID{Type: "tk", Key: "1"}, []byte("arm")); err != nil {
				t.Fatal(err)
			}
			h.Advance(time.Hour)
			var want []string
			for at := d; at <= time.Hour; at += d {
				want = append(want, at.String()+" tick")
			}
			if got := log.get(); !slices.Equal(got, want) {
				t.Errorf("ticks %q, want %q", got, want)
			}
		})
	}
}

// Every: "ticks missed while the loop was busy are skipped, not bunched",
// and "each due time is the previous due time plus d".
func TestAcceptanceTimersMissedTicksSkipped(t *testing.T) {
	h := enginetest.New(t, engine.WithLoops(1))
	var log accLog
	if err := h.Engine.Register("tk", timerAgent(h, &log, func(c *engine.Context) {
		if _, err := c.Every(time.Minute, []byte("tick")); err != nil {
			panic(err)
		}
	})); err != nil {
		t.Fatal(err)
	}
	h.Start()
	if err := h.Engine.SendID(engine.AgentID{Type: "tk", Key: "1"}, []byte("arm")); err != nil {
		t.Fatal(err)
	}
	h.Settle()
	h.Clock.Set(enginetest.Epoch.Add(10*time.Minute + 30*time.Second)) // one jump over ten due ticks
	h.Settle()
	h.Advance(30 * time.Second)
	want := []string{"10m30s tick", "11m0s tick"}
	if got := log.get(); !slices.Equal(got, want) {
		t.Errorf("ticks %q, want %q", got, want)
	}
}

// timer.go Timer.Stop: "It reports whether this call stopped it: false when
// it had already fired (one-shot) or was stopped before." After: "delivers
// payload to the running agent once, d from now".
func TestAcceptanceTimersAfterAndStop(t *testing.T) {
	h := enginetest.New(t, engine.WithLoops(1))
	var log accLog
	timers := make(chan [3]engine.Timer, 1)
	if err := h.Engine.Register("tk", timerAgent(h, &log, func(c *engine.Context) {
		var ts [3]engine.Timer
		var err error
		for i, d := range []time.Duration{time.Second, 2 * time.Second, time.Hour} {
			if ts[i], err = c.After(d, []byte(fmt.Sprint("after ", d))); err != nil {
				panic(err)
			}
		}
		timers <- ts
	})); err != nil {
		t.Fatal(err)
	}
	h.Start()
	if err := h.Engine.SendID(engine.AgentID{Type: "tk", Key: "1"}, []byte("arm")); err != nil {
		t.Fatal(err)
	}
	h.Settle()
	ts := accRecv(t, timers, "timers")
	if !ts[1].Stop() || ts[1].Stop() {
		t.Error("Stop of an armed timer must report true once, then false")
	}
	stopped := make(chan bool, 1)
	go func() { stopped <- ts[2].Stop() }() // "Timer.Stop is safe from any goroutine"
	if !accRecv(t, stopped, "Stop") {
		t.Error("Stop from another goroutine did not stop the timer")
	}
	h.Advance(2 * time.Hour)
	if want := []string{"1s after 1s"}; !slices.Equal(log.get(), want) {
		t.Errorf("deliveries %q, want %q", log.get(), want)
	}
	if ts[0].Stop() {
		t.Error("Stop after a one-shot fired reported true")
	}
}

// clock.go: "Every timer path follows it: the precise heap, the coarse
// wheel, cron schedules and request timeouts."
func TestAcceptanceTimersAllPathsFollowManualClock(t *testing.T) {
	h := enginetest.New(t, engine.WithLoops(1))
	var log accLog
	accRegister(t, h.Engine, "srv", accRecvOnly(func(c *engine.Context, m engine.Message) {
		_, _ = c.ReplyLater() // never answered: only the timeout ends it
	}))
	sref := accSpawn(t, h.Engine, engine.AgentID{Type: "srv", Key: "1"})
	if err := h.Engine.Register("tk", timerAgent(h, &log, func(c *engine.Context) {
		if _, err := c.After(10*time.Minute, []byte("wheel")); err != nil { // far: the wheel
			panic(err)
		}
		if _, err := c.Cron("*/30 * * * *", []byte("cron")); err != nil {
			panic(err)
		}
		if err := c.Request(sref, nil, 45*time.Minute, func(c *engine.Context, _ []byte, err error) {
			log.add(h.Clock.Now().Sub(enginetest.Epoch).String() + fmt.Sprintf(" request %v", err != nil))
			accIs(t, "request timeout", err, engine.ErrTimeout)
		}); err != nil {
			panic(err)
		}
	})); err != nil {
		t.Fatal(err)
	}
	h.Start()
	id := engine.AgentID{Type: "tk", Key: "1"}
	if err := h.Engine.SendID(id, []byte("arm")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Engine.Cron("@every 50m", id, []byte("ecron")); err != nil {
		t.Fatal(err)
	}
	h.Advance(time.Hour)
	want := []string{"10m0s wheel", "30m0s cron", "45m0s request true", "50m0s ecron", "1h0m0s cron"}
	if got := log.get(); !slices.Equal(got, want) {
		t.Errorf("deliveries %q, want %q", got, want)
	}
}

// Timer.Stop: "a stopped timer delivers nothing"; a stale handle stops
// nothing else. A far timer armed and stopped at once gives its record to
// the next timer of its tick: the old handle must neither stop nor reset
// the new timer, and only the new one fires.
func TestAcceptanceTimersStoppedRecordReused(t *testing.T) {
	h := enginetest.New(t, engine.WithLoops(1))
	var log accLog
	stale := make(chan error, 1)
	if err := h.Engine.Register("tk", timerAgent(h, &log, func(c *engine.Context) {
		first, err := c.After(time.Hour, []byte("first"))
		if err != nil {
			panic(err)
		}
		if !first.Stop() {
			panic("Stop of an armed timer returned false")
		}
		for i := 0; i < 3; i++ { // each takes the record the one before left
			tm, err := c.After(time.Hour, []byte(fmt.Sprintf("gone %d", i)))
			if err != nil {
				panic(err)
			}
			tm.Stop()
		}
		if _, err := c.After(time.Hour, []byte("second")); err != nil {
			panic(err)
		}
		if first.Stop() {
			stale <- fmt.Errorf("a stale handle's Stop returned true")
			return
		}
		stale <- nil
	})); err != nil {
		t.Fatal(err)
	}
	h.Start()
	if err := h.Engine.SendID(engine.AgentID{Type: "tk", Key: "1"}, []byte("arm")); err != nil {
		t.Fatal(err)
	}
	h.Settle()
	if err := accRecv(t, stale, "the arming"); err != nil {
		t.Fatal(err)
	}
	h.Advance(2 * time.Hour)
	if got, want := log.get(), []string{"1h0m0s second"}; !slices.Equal(got, want) {
		t.Errorf("deliveries %q, want %q", got, want)
	}
}
