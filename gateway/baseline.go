package gateway

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentloop/agentloop/engine"
)

// RunBaseline runs the same mix as Run on plain goroutines and channels,
// the way one would write the gateway without an engine: one goroutine and
// one buffered channel per device, per feature instance, per inference
// instance and per alert instance, each channel as large as the type's
// mailbox and filled under the type's overflow policy (drop-newest and
// reject: the new message is dropped; drop-oldest: the oldest is taken out
// to make room; block: producers wait, goroutines inside the pipeline drop,
// as engine handlers get ErrMailboxFull). Producers route each topic to its
// device with a map lookup (the table of ingress route), where the engine
// routes it through its subscriptions or that same table; the stages do the same work on the same payloads, the
// inference goroutines take batches of up to the type's batch size and
// measure the same latency. Priorities have no equivalent: the Go scheduler
// treats every goroutine alike.
func RunBaseline(ctx context.Context, cfg *Config, opts Options) (Summary, error) {
	if err := cfg.Validate(); err != nil {
		return Summary{}, err
	}
	b := newBaseline(cfg)
	b.clk = clock{opts.Clock}
	return b.run(ctx, opts)
}

// stage is the channels of one agent type and what fills them.
type stage struct {
	ch      []chan []byte
	policy  engine.Overflow
	dropped atomic.Uint64
	wg      sync.WaitGroup
}

func newStage(n, capacity int, policy engine.Overflow) *stage {
	s := &stage{ch: make([]chan []byte, n), policy: policy}
	for i := range s.ch {
		s.ch[i] = make(chan []byte, capacity)
	}
	return s
}

// send puts p on channel i under the stage's overflow policy. outside says
// the sender is a producer, which may wait under block (until stop
// closes, at the end of the window).
func (s *stage) send(i int, p []byte, outside bool, stop <-chan struct{}) {
	ch := s.ch[i]
	select {
	case ch <- p:
		return
	default:
	}
	switch {
	case s.policy == engine.Block && outside:
		select {
		case ch <- p:
		case <-stop:
			s.dropped.Add(1)
		}
	case s.policy == engine.DropOldest:
		for {
			select {
			case <-ch:
				s.dropped.Add(1)
			default:
			}
			select {
			case ch <- p:
				return
			default:
			}
		}
	default:
		s.dropped.Add(1)
	}
}

// closeAll closes every channel of the stage and waits for its goroutines.
func (s *stage) closeAll() {
	for _, ch := range s.ch {
		close(ch)
	}
	s.wg.Wait()
}

type baseline struct {
	cfg                       *Config
	clk                       clock
	dev, feat, inf, alert     *AgentType
	tp                        *topics
	route                     map[string]int32 // telemetry topic → device
	model                     *model
	origin                    time.Time
	devices, features, infers *stage
	alerts                    *stage
	abort                     atomic.Bool // the drain limit passed: discard what is queued
	discarded                 atomic.Uint64
	processed                 []paddedCount // per device
	alertCount                atomic.Uint64
	lat                       latencies
	featureSlabs              []slab // per feature goroutine
}

type paddedCount struct {
	n atomic.Uint64
	_ [56]byte
}

func newBaseline(cfg *Config) *baseline {
	b := &baseline{cfg: cfg, tp: newTopics(cfg), model: newModel()}
	b.dev, b.feat, b.inf, b.alert = cfg.Type(Device), cfg.Type(Feature), cfg.Type(Inference), cfg.Type(Alert)
	b.route = routeTable(b.tp)
	b.devices = newStage(b.dev.Instances, b.dev.Mailbox, b.dev.Overflow)
	b.features = newStage(b.feat.Instances, b.feat.Mailbox, b.feat.Overflow)
	b.infers = newStage(b.inf.Instances, b.inf.Mailbox, b.inf.Overflow)
	b.alerts = newStage(b.alert.Instances, b.alert.Mailbox, b.alert.Overflow)
	b.processed = make([]paddedCount, b.dev.Instances)
	b.lat = newLatencies(b.inf.Instances)
	b.featureSlabs = make([]slab, b.feat.Instances)
	return b
}

func (b *baseline) start() {
	for i := range b.alerts.ch {
		b.alerts.wg.Add(1)
		go b.alertLoop(i)
	}
	for i := range b.infers.ch {
		b.infers.wg.Add(1)
		go b.inferenceLoop(i)
	}
	for i := range b.features.ch {
		b.features.wg.Add(1)
		go b.featureLoop(i)
	}
	for i := range b.devices.ch {
		b.devices.wg.Add(1)
		go b.deviceLoop(i)
	}
}

// publishAlert sends an alert to every alert goroutine, as every alert
// agent subscribes to alerts.>.
func (b *baseline) publishAlert(p []byte) {
	for i := range b.alerts.ch {
		b.alerts.send(i, p, false, nil)
	}
}

func (b *baseline) deviceLoop(i int) {
	defer b.devices.wg.Done()
	st := newDeviceState(uint32(i), b.dev.FeatureEvery)
	// Its own slab, of small blocks: ten thousand goroutines each sending a
	// vector per FeatureEvery messages would pin 64 KiB blocks apiece.
	sl := slab{per: deviceSlabPayloads}
	every, sensors := b.dev.FeatureEvery, b.cfg.Load.Sensors
	shard := shardOf(b.tp.deviceKeys[i], b.feat.Instances)
	count, n := &b.processed[i].n, uint64(0)
	for p := range b.devices.ch[i] {
		if b.abort.Load() {
			b.discarded.Add(1)
			continue
		}
		feature, alert := st.observe(p, every)
		if n++; n%64 == 0 { // published for the live line now and then, not per message
			count.Store(n)
		}
		if feature {
			out := sl.next()
			st.writeFeature(out, Stamp(p), sensors)
			b.features.send(shard, out, false, nil)
		}
		if alert {
			b.publishAlert(p)
		}
	}
	count.Store(n)
}

// deviceSlabPayloads is the block size of a baseline device's slab: 1 KiB.
const deviceSlabPayloads = 16

func (b *baseline) featureLoop(k int) {
	defer b.features.wg.Done()
	st := newFeatureState(k, b.feat.Instances, b.dev.Instances)
	sl := &b.featureSlabs[k]
	target := shardOf(b.tp.featureKeys[k], b.inf.Instances)
	for p := range b.features.ch[k] {
		if b.abort.Load() {
			b.discarded.Add(1)
			continue
		}
		out := sl.next()
		st.aggregate(p, out)
		b.infers.send(target, out, false, nil)
	}
}

func (b *baseline) inferenceLoop(k int) {
	defer b.infers.wg.Done()
	ch, lat := b.infers.ch[k], &b.lat[k]
	batch := make([][]byte, 0, b.inf.Batch)
	stamps := make([]int64, 0, b.inf.Batch)
	for p := range ch {
		batch = append(batch[:0], p)
	fill:
		for len(batch) < cap(batch) {
			select {
			case q, ok := <-ch:
				if !ok {
					break fill
				}
				batch = append(batch, q)
			default:
				break fill
			}
		}
		if b.abort.Load() {
			b.discarded.Add(uint64(len(batch)))
			continue
		}
		now := int64(b.clk.since(b.origin)) // one clock read per batch
		stamps = stamps[:0]
		for _, p := range batch {
			stamps = append(stamps, Stamp(p))
			if b.model.anomalyScore(p) > anomalyLevel {
				b.publishAlert(p)
			}
		}
		lat.recordBatch(now, stamps)
	}
}

func (b *baseline) alertLoop(k int) {
	defer b.alerts.wg.Done()
	for range b.alerts.ch[k] {
		b.alertCount.Add(1)
	}
}

func (b *baseline) totalProcessed() uint64 {
	var n uint64
	for i := range b.processed {
		n += b.processed[i].n.Load()
	}
	return n
}

func (b *baseline) queued() int64 {
	var n int
	for _, s := range []*stage{b.devices, b.features, b.infers, b.alerts} {
		for _, ch := range s.ch {
			n += len(ch)
		}
	}
	return int64(n)
}

func (b *baseline) dropped() uint64 {
	return b.devices.dropped.Load() + b.features.dropped.Load() + b.infers.dropped.Load() +
		b.alerts.dropped.Load() + b.discarded.Load()
}

func (b *baseline) run(ctx context.Context, opts Options) (Summary, error) {
	cfg := b.cfg
	window := cfg.Load.Duration
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// stop releases producers waiting under block: at the end of the
	// window, or when ctx ends.
	stop := make(chan struct{})
	var once sync.Once
	endWindow := func() { once.Do(func() { close(stop) }) }
	settle()
	b.origin = b.clk.now()
	b.start()
	cpu0 := CPUTime()
	stopWindow := b.clk.afterFunc(window, endWindow)
	defer stopWindow()
	cancelWatch := context.AfterFunc(runCtx, endWindow)
	defer cancelWatch()
	prods := make([]*producer, cfg.Load.Producers)
	var wg sync.WaitGroup
	for i := range prods {
		p := &producer{
			index: i, of: len(prods), rate: float64(cfg.Load.Rate) / float64(len(prods)),
			window: window, origin: b.origin, clock: b.clk, devices: b.dev.Instances, sensors: cfg.Load.Sensors,
			send: func(dev, sensor int, payload []byte) error {
				d, ok := b.route[b.tp.telemetry[dev*cfg.Load.Sensors+sensor]]
				if !ok {
					return errNoRoute
				}
				b.devices.send(int(d), payload, true, stop)
				return nil
			},
		}
		prods[i] = p
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.run(runCtx)
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	agents := b.dev.Instances + b.feat.Instances + b.inf.Instances + b.alert.Instances
	intervals := live(runCtx, b.clk, b.origin, window, opts, done, func() liveSample {
		return liveSample{processed: b.totalProcessed(), agents: agents, queued: b.queued(), dropped: b.dropped(),
			lat: b.lat.merged()}
	})
	<-done
	offeredFor := min(b.clk.since(b.origin), window) // shorter when ctx ended the run

	// Drain: close each stage once the one before it has finished, so
	// every queued message is handled, unless the limit passes first: then
	// the goroutines discard what is left (counted as dropped).
	stopLimit := b.clk.afterFunc(drainLimit(window), func() { b.abort.Store(true) })
	b.devices.closeAll()
	b.features.closeAll()
	b.infers.closeAll()
	b.alerts.closeAll()
	drained := stopLimit()
	elapsed, cpu := b.clk.since(b.origin), CPUTime()-cpu0

	sum := Summary{
		System:    "goroutines",
		Offered:   float64(cfg.Load.Rate),
		Window:    offeredFor,
		Elapsed:   elapsed,
		Drained:   drained,
		Agents:    agents,
		Latency:   percentiles(b.lat.merged()),
		CPU:       100 * cpu.Seconds() / elapsed.Seconds(),
		Processed: b.totalProcessed(),
		Dropped:   b.dropped(),
		Alerts:    b.alertCount.Load(),
		Intervals: intervals,
	}
	sum.Achieved = float64(sum.Processed) / elapsed.Seconds()
	for _, p := range prods {
		sum.Emitted += p.emitted
		sum.Refused += p.refused
		sum.Backlog += p.backlog
		sum.Lag = max(sum.Lag, p.lag)
	}
	sum.Dropped += sum.Refused
	return sum, ctx.Err()
}
