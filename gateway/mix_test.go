package gateway

import (
	"context"
	"math"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/agentloop/agentloop/enginetest"
)

func TestShardOf(t *testing.T) {
	cases := []struct {
		token string
		n     int
		want  int
	}{
		{"dev-42", 16, 10},
		{"dev-0", 16, 0},
		{"7", 4, 3},
		{"15", 4, 3},
		{"dev-9999", 16, 15},
	}
	for _, c := range cases {
		if got := shardOf(c.token, c.n); got != c.want {
			t.Errorf("shardOf(%q, %d) = %d, want %d", c.token, c.n, got, c.want)
		}
	}
	// Tokens without a number hash, deterministically, into range.
	for _, tok := range []string{"alpha", "beta", "x", ""} {
		a, b := shardOf(tok, 5), shardOf(tok, 5)
		if a != b || a < 0 || a >= 5 {
			t.Errorf("shardOf(%q, 5) = %d then %d", tok, a, b)
		}
	}
	// The devices spread evenly over the feature agents.
	counts := make([]int, 16)
	for i := range 10000 {
		counts[shardOf(deviceKey(i), 16)]++
	}
	for k, n := range counts {
		if n != 625 {
			t.Errorf("feature %d gets %d devices, want 625", k, n)
		}
	}
}

func TestTokenAt(t *testing.T) {
	cases := []struct {
		topic string
		i     int
		want  string
		ok    bool
	}{
		{"telemetry.dev-3.s1", 0, "telemetry", true},
		{"telemetry.dev-3.s1", 1, "dev-3", true},
		{"telemetry.dev-3.s1", 2, "s1", true},
		{"telemetry.dev-3.s1", 3, "", false},
		{"features.dev-3", 1, "dev-3", true},
		{"features", 1, "", false},
		{"a..b", 1, "", false},
	}
	for _, c := range cases {
		got, ok := tokenAt(c.topic, c.i)
		if got != c.want || ok != c.ok {
			t.Errorf("tokenAt(%q, %d) = %q, %v", c.topic, c.i, got, ok)
		}
	}
}

func TestDeviceIndex(t *testing.T) {
	for i := range []int{0, 1, 9999, 123456} {
		if got, ok := deviceIndex(deviceKey(i)); !ok || int(got) != i {
			t.Errorf("deviceIndex(%q) = %d, %v", deviceKey(i), got, ok)
		}
	}
	for _, k := range []string{"", "dev-", "dev-x", "device-1", "dev--1", "dev-99999999999"} {
		if _, ok := deviceIndex(k); ok {
			t.Errorf("deviceIndex(%q) accepted", k)
		}
	}
}

// TestSlabNeverReuses checks that carved payloads are distinct, capped at
// PayloadSize and cost one allocation per slabPayloads.
func TestSlabNeverReuses(t *testing.T) {
	var s slab
	seen := make(map[uintptr]bool)
	for range 3 * slabPayloads {
		p := s.next()
		if len(p) != PayloadSize || cap(p) != PayloadSize {
			t.Fatalf("len %d cap %d", len(p), cap(p))
		}
		addr := uintptr(unsafe.Pointer(&p[0]))
		if seen[addr] {
			t.Fatal("a payload was handed out twice")
		}
		seen[addr] = true
	}
	allocs := testing.AllocsPerRun(10*slabPayloads, func() { _ = s.next() })
	if allocs > 2.0/slabPayloads {
		t.Errorf("%.4f allocations per payload, want ≤ %.4f", allocs, 2.0/slabPayloads)
	}
}

func TestTelemetryAndFeatures(t *testing.T) {
	const every = 4
	d := newDeviceState(6, every) // starts at 6 mod 4 = 2: its first vector after 2 messages
	p := make([]byte, PayloadSize)
	var features []int
	for i := range 10 {
		putTelemetry(p, int64(1000+i), 6, uint16(i%2), 50+float64(i))
		feature, alert := d.observe(p, every)
		if alert {
			t.Fatalf("alert at a reading of %v", 50+i)
		}
		if feature {
			features = append(features, i)
		}
	}
	if want := []int{1, 5, 9}; !equalInts(features, want) {
		t.Fatalf("features after messages %v, want %v", features, want)
	}
	putTelemetry(p, 5000, 6, 0, alertLevel+1)
	if _, alert := d.observe(p, every); !alert {
		t.Fatal("no alert above the level")
	}
	if _, alert := d.observe(p, every); alert {
		t.Fatal("a second alert while still above the level")
	}
	vec := make([]byte, PayloadSize)
	d.writeFeature(vec, 5000, 2)
	if Stamp(vec) != 5000 || deviceOf(vec) != 6 {
		t.Fatalf("vector stamp %d device %d", Stamp(vec), deviceOf(vec))
	}
	if mean := getF(vec, 0); math.IsNaN(mean) || mean < 50 || mean > alertLevel+1 {
		t.Fatalf("mean %v", mean)
	}
	if d.bad != 0 {
		t.Fatalf("%d bad payloads", d.bad)
	}
	d.observe(p[:10], every)
	if d.bad != 1 {
		t.Fatal("a short payload was not counted as bad")
	}

	f := newFeatureState(2, 16, 100)
	agg := make([]byte, PayloadSize)
	f.aggregate(vec, agg)
	if Stamp(agg) != 5000 || deviceOf(agg) != 6 {
		t.Fatalf("aggregate stamp %d device %d", Stamp(agg), deviceOf(agg))
	}
	score := newModel().anomalyScore(agg)
	if !(score > 0 && score < 1) {
		t.Fatalf("score %v", score)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestProducerOpenLoop: a producer offers its rate open loop: a send that
// stalls for 30 ms delays what is due meanwhile (the lag says so) but
// loses none of it, and stamps never go back. On a manual clock moved from
// alarm to alarm, every message of the window is due and emitted whatever
// the machine's speed.
func TestProducerOpenLoop(t *testing.T) {
	var (
		mu      sync.Mutex
		stamps  []int64
		stalled bool
	)
	clk := enginetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	p := &producer{
		index: 0, of: 1, rate: 20000, window: 300 * time.Millisecond, origin: clk.Now(), clock: clock{clk},
		devices: 10, sensors: 2,
		send: func(dev, sensor int, payload []byte) error {
			mu.Lock()
			defer mu.Unlock()
			if dev >= 10 || sensor >= 2 || deviceOf(payload) != uint32(dev) {
				t.Errorf("message for device %d sensor %d carries device %d", dev, sensor, deviceOf(payload))
			}
			stamps = append(stamps, Stamp(payload))
			if len(stamps) == 100 && !stalled {
				stalled = true
				clk.Advance(30 * time.Millisecond) // the send takes 30 ms; arrivals keep coming meanwhile
			}
			return nil
		},
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.run(context.Background())
	}()
	// Move the clock to each alarm the producer sets, up to the window's
	// end and its grace, until it returns.
	end := p.origin.Add(p.window + endGrace)
	for {
		select {
		case <-done:
		default:
			if next, ok := clk.Next(); ok && !next.After(end) {
				clk.Set(next)
			} else {
				runtime.Gosched()
			}
			continue
		}
		break
	}
	total := uint64(float64(p.window) * p.rate / 1e9)
	if p.emitted+p.backlog != total {
		t.Errorf("emitted %d + backlog %d != %d due", p.emitted, p.backlog, total)
	}
	if p.emitted != total {
		t.Errorf("emitted %d of %d due", p.emitted, total)
	}
	// The message after the stalled one was due one interval (50 µs) after
	// it, and is emitted when the stall ends.
	if interval := time.Duration(1e9 / p.rate); p.lag < 30*time.Millisecond-interval {
		t.Errorf("lag %v after a 30 ms stall", p.lag)
	}
	for i := 1; i < len(stamps); i++ {
		if stamps[i] < stamps[i-1] {
			t.Fatalf("stamp %d goes back: %d after %d", i, stamps[i], stamps[i-1])
		}
	}
}

func TestProducerStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := &producer{
		of: 1, rate: 1000, window: time.Hour, origin: time.Now(), devices: 1, sensors: 1,
		send: func(int, int, []byte) error { return nil },
	}
	done := make(chan struct{})
	go func() {
		p.run(ctx)
		close(done)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the producer ignores its context")
	}
	if p.backlog > 1000 {
		t.Errorf("backlog %d: an hour cut short counts only what was due by then", p.backlog)
	}
}
