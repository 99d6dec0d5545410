package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/agentloop/agentloop/engine"
)

// config is the simulation's shape; the flags fill it.
type config struct {
	Devices   int
	Rate      int
	Duration  time.Duration
	Loops     int
	Producers int
}

func defaultConfig() config {
	return config{Devices: 10000, Rate: 200000, Duration: 10 * time.Second, Producers: 2}
}

func (c config) validate() error {
	switch {
	case c.Devices < 1:
		return fmt.Errorf("-devices %d: want ≥ 1", c.Devices)
	case c.Rate < 1:
		return fmt.Errorf("-rate %d: want ≥ 1", c.Rate)
	case c.Duration <= 0:
		return fmt.Errorf("-duration %v: want > 0", c.Duration)
	case c.Loops < 0:
		return fmt.Errorf("-loops %d: want ≥ 0", c.Loops)
	case c.Producers < 1:
		return fmt.Errorf("-producers %d: want ≥ 1", c.Producers)
	}
	return nil
}

// Telemetry wire format: sensor id (uint16), value (float64 bits), 64 bytes
// in all, as the benchmarks' payloads.
const telemetrySize = 64

func encodeTelemetry(buf []byte, sensor uint16, v float64) {
	binary.LittleEndian.PutUint16(buf[0:], sensor)
	binary.LittleEndian.PutUint64(buf[2:], math.Float64bits(v))
}

func decodeTelemetry(p []byte) (sensor uint16, v float64, err error) {
	if len(p) < 10 {
		return 0, 0, fmt.Errorf("telemetry: %d bytes, want ≥ 10", len(p))
	}
	return binary.LittleEndian.Uint16(p), math.Float64frombits(binary.LittleEndian.Uint64(p[2:])), nil
}

// alertThreshold is the smoothed reading above which a device raises an
// alert (once, until it falls back below).
const alertThreshold = 90.0

// device keeps a smoothed reading per sensor and raises alerts.
type device struct {
	alerts engine.Ref
	ewma   [4]float64
	n      uint64
	bad    uint64
	high   bool
}

func (d *device) Receive(c *engine.Context, m engine.Message) {
	sensor, v, err := decodeTelemetry(m.Payload)
	if err != nil {
		d.bad++
		return
	}
	d.n++
	s := &d.ewma[sensor%4]
	*s += 0.1 * (v - *s)
	if high := *s > alertThreshold; high != d.high {
		d.high = high
		if high {
			_ = c.Send(d.alerts, m.Payload)
		}
	}
}

// alerter counts alerts.
type alerter struct{ n *uint64 }

func (a *alerter) Receive(_ *engine.Context, _ engine.Message) { *a.n++ }

// summary is what a run achieved.
type summary struct {
	Offered, Sent, Processed, Dropped, DeadLetters uint64
	Refused                                        uint64
	Agents                                         int
	Elapsed                                        time.Duration
	CPU                                            time.Duration // process CPU time during the run
}

func (s summary) print(w io.Writer) {
	sec := s.Elapsed.Seconds()
	fmt.Fprintf(w, "\nsummary: %v, %d agents\n", s.Elapsed.Round(time.Millisecond), s.Agents)
	fmt.Fprintf(w, "  offered    %12d msgs  %12.0f msgs/s\n", s.Offered, float64(s.Offered)/sec)
	fmt.Fprintf(w, "  sent       %12d msgs\n", s.Sent)
	fmt.Fprintf(w, "  processed  %12d msgs  %12.0f msgs/s\n", s.Processed, float64(s.Processed)/sec)
	fmt.Fprintf(w, "  dropped    %12d msgs\n", s.Dropped)
	fmt.Fprintf(w, "  refused    %12d msgs\n", s.Refused)
	fmt.Fprintf(w, "  dead       %12d letters\n", s.DeadLetters)
	fmt.Fprintf(w, "  cpu        %12.1f %% of one core\n", 100*s.CPU.Seconds()/sec)
}

// simulate runs the gateway for cfg.Duration (or until ctx ends).
func simulate(ctx context.Context, cfg config, out io.Writer) (summary, error) {
	var opts []engine.Option
	if cfg.Loops > 0 {
		opts = append(opts, engine.WithLoops(cfg.Loops))
	}
	e, err := engine.New(opts...)
	if err != nil {
		return summary{}, err
	}
	var alerts uint64
	if err := e.Register("alerts", func() engine.Agent { return &alerter{n: &alerts} }); err != nil {
		return summary{}, err
	}
	alertRef, err := e.Spawn(engine.AgentID{Type: "alerts", Key: "all"})
	if err != nil {
		return summary{}, err
	}
	if err := e.Register("device", func() engine.Agent { return &device{alerts: alertRef} },
		engine.WithMailbox(1024, engine.DropOldest)); err != nil {
		return summary{}, err
	}
	refs := make([]engine.Ref, cfg.Devices)
	for i := range refs {
		if refs[i], err = e.Spawn(engine.AgentID{Type: "device", Key: "dev-" + strconv.Itoa(i)}); err != nil {
			return summary{}, err
		}
	}
	if err := e.Start(); err != nil {
		return summary{}, err
	}

	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start, cpu0 := time.Now(), cpuTime()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		offered uint64
		sent    uint64
		refused uint64
	)
	for p := 0; p < cfg.Producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			o, s, r := produce(runCtx, refs, p, cfg.Producers, float64(cfg.Rate)/float64(cfg.Producers))
			mu.Lock()
			offered, sent, refused = offered+o, sent+s, refused+r
			mu.Unlock()
		}(p)
	}
	live(runCtx, e, out, start)
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0

	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer stopCancel()
	if err := e.Stop(stopCtx); err != nil {
		return summary{}, fmt.Errorf("stop: %w", err)
	}
	st := e.Stats()
	var dev engine.Counts
	for _, t := range st.Types {
		if t.Type == "device" {
			dev = t.Counts
		}
	}
	return summary{
		Offered: offered, Sent: sent, Refused: refused,
		Processed: dev.Processed, Dropped: dev.Dropped, DeadLetters: st.DeadLetters,
		Agents: cfg.Devices + 1, Elapsed: elapsed, CPU: cpu,
	}, nil
}

// produce sends telemetry open loop: the number of messages due is the
// rate times the elapsed time, whatever the engine does with them, so a
// slow engine shows up as drops and queueing rather than as a lower offer.
func produce(ctx context.Context, refs []engine.Ref, p, producers int, rate float64) (offered, sent, refused uint64) {
	bufs := make([][]byte, 256) // payloads rotate; each is read-only once sent
	for i := range bufs {
		bufs[i] = make([]byte, telemetrySize)
		encodeTelemetry(bufs[i], uint16(i), 20+float64(i%100))
	}
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	dev := p
	for {
		due := uint64(rate * time.Since(start).Seconds())
		for ; offered < due; offered++ {
			err := refs[dev].Send(bufs[offered%uint64(len(bufs))])
			switch {
			case err == nil:
				sent++
			case errors.Is(err, engine.ErrStopped):
				return
			default:
				refused++
			}
			dev += producers
			if dev >= len(refs) {
				dev = p
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// live prints a line of figures each second until ctx ends.
func live(ctx context.Context, e *engine.Engine, out io.Writer, start time.Time) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last uint64
	lastCPU, lastT := cpuTime(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := e.Stats()
		now, c := time.Now(), cpuTime()
		fmt.Fprintf(out, "t=%4.0fs  %10.0f msgs/s  agents %6d  queued %7d  dropped %8d  cpu %5.1f%%\n",
			time.Since(start).Seconds(), float64(st.Processed-last)/now.Sub(lastT).Seconds(),
			st.Agents, st.Queued, st.Dropped, 100*(c-lastCPU).Seconds()/now.Sub(lastT).Seconds())
		last, lastCPU, lastT = st.Processed, c, now
	}
}
