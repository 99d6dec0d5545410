package gateway

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// topics holds every topic and key string a run uses, built once before
// the load starts so that no message builds a string. Each table is cut out
// of one string.
type topics struct {
	telemetry  []string // [device*sensors+sensor] telemetry.dev-N.sS
	features   []string // [device] features.dev-N
	threshold  []string // [device] alerts.dev-N.threshold
	anomaly    []string // [device] alerts.dev-N.anomaly
	aggregates []string // [feature] aggregates.K
	deviceKeys []string // [device] dev-N
	// keys of the other kinds' instances: "0", "1", ...
	featureKeys, inferenceKeys, alertKeys []string
	sensors                               int
}

func newTopics(cfg *Config) *topics {
	devices, sensors := cfg.Devices(), cfg.Load.Sensors
	t := &topics{sensors: sensors}
	t.deviceKeys = table(devices, func(b *strings.Builder, i int) { b.WriteString(deviceKey(i)) })
	t.telemetry = table(devices*sensors, func(b *strings.Builder, i int) {
		b.WriteString("telemetry.")
		b.WriteString(t.deviceKeys[i/sensors])
		b.WriteString(".s")
		b.WriteString(strconv.Itoa(i % sensors))
	})
	t.features = table(devices, func(b *strings.Builder, i int) { b.WriteString("features." + t.deviceKeys[i]) })
	t.threshold = table(devices, func(b *strings.Builder, i int) { b.WriteString("alerts." + t.deviceKeys[i] + ".threshold") })
	t.anomaly = table(devices, func(b *strings.Builder, i int) { b.WriteString("alerts." + t.deviceKeys[i] + ".anomaly") })
	numbers := func(n int) []string {
		return table(n, func(b *strings.Builder, i int) { b.WriteString(strconv.Itoa(i)) })
	}
	t.featureKeys = numbers(cfg.Type(Feature).Instances)
	t.inferenceKeys = numbers(cfg.Type(Inference).Instances)
	t.alertKeys = numbers(cfg.Type(Alert).Instances)
	t.aggregates = table(len(t.featureKeys), func(b *strings.Builder, i int) { b.WriteString("aggregates." + t.featureKeys[i]) })
	return t
}

// table builds n strings with write into one string and cuts it up.
func table(n int, write func(b *strings.Builder, i int)) []string {
	var b strings.Builder
	ends := make([]int, n)
	for i := range n {
		write(&b, i)
		ends[i] = b.Len()
	}
	all := b.String()
	out := make([]string, n)
	start := 0
	for i, end := range ends {
		out[i], start = all[start:end], end
	}
	return out
}

// sendFunc hands one telemetry message for device dev and sensor sensor to
// the system under test. The payload is the caller's no more once handed
// over.
type sendFunc func(dev, sensor int, payload []byte) error

// producer offers its share of the load open loop: message j is due at
// origin + j/rate, whatever happened to the earlier ones. It emits what is
// due, then sleeps until the next message is due; when it falls behind
// (the machine is saturated) it emits the backlog at once and records how
// late it was, but never shifts the schedule. Having emitted its share it
// waits for the end of the window, so that the load is offered for the
// whole window. It stops at the end of the window (plus endGrace) even
// when behind: what was due and not emitted is its backlog.
// A run ended early by its context counts as backlog only what was due by
// then.
type producer struct {
	index, of        int     // this is producer index of of
	rate             float64 // messages per second for this producer
	window           time.Duration
	origin           time.Time
	clock            clock // what origin, the schedule and the stamps are read on
	devices, sensors int
	send             sendFunc
	isStopped        func(error) bool // the system refuses everything from now on

	// Results, read after run returns.
	emitted, refused uint64
	backlog          uint64        // due within the window but not emitted
	lag              time.Duration // worst delay of an emission behind its schedule
}

// endGrace is how long after the window a producer still emits what was
// due within it: the last sleep overshoots by up to a timer tick (about a
// millisecond here), and the messages due meanwhile belong to the window.
const endGrace = 20 * time.Millisecond

// stampEvery is how many messages of a burst share one clock read: a stamp
// is at most that many emissions old (a few µs), making latency err on the
// high side, and the clock (≈60 ns here) is read once per 8 messages. Each
// burst (each wake-up) starts with a fresh stamp.
const stampEvery = 8

func (p *producer) run(ctx context.Context) {
	var (
		sl     slab
		next   uint64 // index of the next message of this producer
		stamp  int64
		rng    = uint64(p.index)*0x9e3779b97f4a7c15 + 1
		perNs  = p.rate / 1e9
		total  = uint64(float64(p.window) * perNs) // messages due in the window
		timer  = time.NewTimer(time.Hour)
		stride = uint64(p.of)
	)
	defer timer.Stop()
	sched := func(j uint64) time.Duration { return time.Duration(float64(j) / perNs) }
	// dueBy is how many messages are due by now: those j with sched(j) ≤
	// now. It agrees with sched exactly, rounding aside, so that a
	// producer woken at sched(next) finds next due (else, on a clock that
	// stands still between alarms, it would wait for 0 forever).
	dueBy := func(now time.Duration) uint64 {
		due := min(uint64(float64(now)*perNs)+1, total)
		for due < total && sched(due) <= now {
			due++
		}
		for due > 0 && sched(due-1) > now {
			due--
		}
		return due
	}
	// cut records the backlog of a run ended early: what was due by now.
	cut := func() {
		if due := dueBy(p.clock.since(p.origin)); due > next {
			p.backlog = due - next
		}
	}
	// sleep waits d on the producer's clock; false when ctx ended first.
	// On the system clock it reuses one timer: a wake-up allocates nothing.
	sleep := func(d time.Duration) bool {
		if p.clock.c == nil {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return false
			case <-timer.C:
				return true
			}
		}
		ch, stop := p.clock.signal(d)
		select {
		case <-ctx.Done():
			stop()
			return false
		case <-ch:
			return true
		}
	}
	for {
		now := p.clock.since(p.origin)
		if now >= p.window+endGrace {
			break
		}
		if next >= total { // all emitted: offer the rest of the window
			if now < p.window && !sleep(p.window-now) {
				cut()
				return
			}
			break
		}
		due := dueBy(now)
		if next < due {
			if late := now - sched(next); late > p.lag {
				p.lag = late
			}
		}
		for k := 0; next < due; next, k = next+1, k+1 {
			if k%stampEvery == 0 { // the first of a burst, and every stampEvery-th
				stamp = int64(p.clock.since(p.origin))
				if time.Duration(stamp) >= p.window+endGrace {
					break
				}
				select {
				case <-ctx.Done():
					cut()
					return
				default:
				}
			}
			slot := uint64(p.index) + next*stride
			dev := int(slot % uint64(p.devices))
			sensor := int(slot / uint64(p.devices) % uint64(p.sensors))
			rng ^= rng << 13
			rng ^= rng >> 7
			rng ^= rng << 17
			v := 40 + float64(rng>>40)/float64(1<<24)*40 // 40..80
			if rng&0x7ff == 0 {
				v += 80 // one reading in 2048 spikes past the alert level
			}
			payload := sl.next()
			putTelemetry(payload, stamp, uint32(dev), uint16(sensor), v)
			if err := p.send(dev, sensor, payload); err != nil {
				if p.isStopped != nil && p.isStopped(err) {
					cut()
					return
				}
				p.refused++
			}
			p.emitted++
		}
		if wait := sched(next) - p.clock.since(p.origin); wait > 0 && next < total && !sleep(wait) {
			cut()
			return
		}
	}
	if next < total {
		p.backlog = total - next
	}
}
