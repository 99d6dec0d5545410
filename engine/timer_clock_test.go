package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/enginetest"
)

// clocked records each delivery with the clock time it arrived at, and arms
// timers on command: "after <dur>", "every <dur>", "cron <spec>", "stop".
type clocked struct {
	now   func() time.Time
	log   *[]string
	timer engine.Timer
}

func (k *clocked) Receive(c *engine.Context, m engine.Message) {
	f := strings.Fields(string(m.Payload))
	kind, arg := f[0], ""
	if len(f) > 1 {
		arg = f[1]
	}
	var err error
	switch kind {
	case "after":
		d, _ := time.ParseDuration(arg)
		k.timer, err = c.After(d, []byte("fired-after"))
	case "every":
		d, _ := time.ParseDuration(arg)
		k.timer, err = c.Every(d, []byte("fired-every"))
	case "stop":
		k.timer.Stop()
	default:
		*k.log = append(*k.log, fmt.Sprintf("%s %s", k.now().Sub(enginetest.Epoch), m.Payload))
	}
	if err != nil {
		panic(err)
	}
}

func newClocked(t *testing.T) (*enginetest.Harness, *[]string, engine.AgentID) {
	t.Helper()
	h := enginetest.New(t, engine.WithLoops(2))
	var log []string
	if err := h.Engine.Register("clocked", func() engine.Agent { return &clocked{now: h.Clock.Now, log: &log} }); err != nil {
		t.Fatal(err)
	}
	h.Start()
	return h, &log, engine.AgentID{Type: "clocked", Key: "1"}
}

func send(t *testing.T, h *enginetest.Harness, id engine.AgentID, s string) {
	t.Helper()
	if err := h.Engine.SendID(id, []byte(s)); err != nil {
		t.Fatal(err)
	}
	h.Settle()
}

func expectLog(t *testing.T, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("deliveries %q, want %q", got, want)
	}
}

func TestVirtualAfterFiresExactlyAtItsDeadline(t *testing.T) {
	for _, d := range []time.Duration{time.Millisecond, 7 * time.Millisecond, 80 * time.Millisecond, 10 * time.Minute, 26 * time.Hour} {
		t.Run(d.String(), func(t *testing.T) {
			h, log, id := newClocked(t)
			send(t, h, id, "after "+d.String())
			h.Advance(d - time.Nanosecond)
			expectLog(t, *log) // never early, wheel or heap
			h.Advance(time.Nanosecond)
			expectLog(t, *log, d.String()+" fired-after")
			h.Advance(10 * d)
			expectLog(t, *log, d.String()+" fired-after") // once
		})
	}
}

func TestVirtualEveryUntilStopped(t *testing.T) {
	h, log, id := newClocked(t)
	send(t, h, id, "every 2s")
	h.Advance(7 * time.Second)
	expectLog(t, *log, "2s fired-every", "4s fired-every", "6s fired-every")
	send(t, h, id, "stop")
	h.Advance(time.Minute)
	if len(*log) != 3 {
		t.Fatalf("ticks after Stop: %q", *log)
	}
}

func TestVirtualEveryDoesNotDrift(t *testing.T) {
	h, log, id := newClocked(t)
	h.Advance(300 * time.Millisecond) // start off the second boundary
	send(t, h, id, "every 1s")
	h.Advance(time.Hour)
	if len(*log) != 3600 {
		t.Fatalf("%d ticks in an hour, want 3600", len(*log))
	}
	if last := (*log)[3599]; last != "1h0m0.3s fired-every" {
		t.Fatalf("last tick %q: the schedule drifted", last)
	}
}

func TestVirtualCronFromOutsideAndCancel(t *testing.T) {
	h, log, id := newClocked(t)
	tm, err := h.Engine.Cron("0 */15 * * * *", id, []byte("cron")) // seconds field
	if err != nil {
		t.Fatal(err)
	}
	h.Settle()
	h.Advance(time.Hour)
	expectLog(t, *log, "15m0s cron", "30m0s cron", "45m0s cron", "1h0m0s cron")
	if !tm.Stop() {
		t.Fatal("Stop of a live cron timer returned false")
	}
	h.Advance(time.Hour)
	if len(*log) != 4 {
		t.Fatalf("cron ticked after Stop: %q", *log)
	}
}
