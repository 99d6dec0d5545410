package enginetest_test

import (
	"sort"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/enginetest"
)

// IgnoreCurrent: the goroutines that exist before any test are those of
// ants' package-level default pool, started by its init.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }

// ticker arms a timer of each kind when told to start and records every
// delivery with the clock time it arrived at.
type ticker struct {
	got *[]string
	now func() time.Time
}

func (k *ticker) Receive(c *engine.Context, m engine.Message) {
	if string(m.Payload) == "start" {
		if _, err := c.Every(5*time.Minute, []byte("every")); err != nil {
			panic(err)
		}
		if _, err := c.Cron("*/20 * * * *", []byte("cron")); err != nil {
			panic(err)
		}
		if _, err := c.After(90*time.Second, []byte("after")); err != nil {
			panic(err)
		}
		return
	}
	*k.got = append(*k.got, k.now().Format("15:04:05")+" "+string(m.Payload))
}

func TestAdvanceDeliversEveryTickInOrder(t *testing.T) {
	h := enginetest.New(t, engine.WithLoops(1))
	var got []string
	if err := h.Engine.Register("ticker", func() engine.Agent { return &ticker{got: &got, now: h.Clock.Now} }); err != nil {
		t.Fatal(err)
	}
	h.Start()
	if err := h.Engine.SendID(engine.AgentID{Type: "ticker", Key: "1"}, []byte("start")); err != nil {
		t.Fatal(err)
	}
	h.Advance(time.Hour)
	want := []string{
		"00:01:30 after",
		"00:05:00 every", "00:10:00 every", "00:15:00 every",
		"00:20:00 every", "00:20:00 cron",
		"00:25:00 every", "00:30:00 every", "00:35:00 every",
		"00:40:00 every", "00:40:00 cron",
		"00:45:00 every", "00:50:00 every", "00:55:00 every",
		"01:00:00 every", "01:00:00 cron",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d deliveries, want %d:\n%q", len(got), len(want), got)
	}
	// Deliveries come in time order; between timers due at the same instant
	// the order is unspecified, so compare sorted after checking time order.
	for i := 1; i < len(got); i++ {
		if got[i][:8] < got[i-1][:8] {
			t.Fatalf("delivery %d (%q) before %q", i, got[i], got[i-1])
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delivery %d = %q, want %q\nall: %q", i, got[i], want[i], got)
		}
	}
}

func TestClockAlarms(t *testing.T) {
	c := enginetest.NewClock(enginetest.Epoch)
	var order []int
	c.AfterFunc(2*time.Second, func() { order = append(order, 2) })
	stop := c.AfterFunc(time.Second, func() { order = append(order, 1) })
	c.AfterFunc(time.Second, func() { order = append(order, 11) })
	if !stop() || stop() {
		t.Fatal("stop must succeed once")
	}
	if next, ok := c.Next(); !ok || !next.Equal(enginetest.Epoch.Add(time.Second)) {
		t.Fatalf("Next = %v %v", next, ok)
	}
	c.Advance(1500 * time.Millisecond)
	c.Advance(time.Second)
	if len(order) != 2 || order[0] != 11 || order[1] != 2 {
		t.Fatalf("fired %v, want [11 2]", order)
	}
	if got := c.Now(); !got.Equal(enginetest.Epoch.Add(2500 * time.Millisecond)) {
		t.Fatalf("Now = %v", got)
	}
	c.Set(enginetest.Epoch) // never backwards
	if got := c.Now(); !got.Equal(enginetest.Epoch.Add(2500 * time.Millisecond)) {
		t.Fatalf("Set moved the clock back to %v", got)
	}
}
