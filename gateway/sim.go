package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/agentloop/agentloop/engine"
)

// Run runs the mix of cfg on the engine: it registers the four agent
// types, subscribes them, spawns every instance, starts the engine, offers
// the load open loop for cfg.Load.Duration, waits for the queues to drain
// (bounded by drainLimit) and stops the engine. When ctx ends, the load
// stops early, the queues still get the drain limit to empty, and Run
// returns what was measured with ctx's error.
//
// Routing: producers publish telemetry.<device>.<sensor> from outside
// (with ingress route, they look the device up in a table and send to it);
// the device type subscribes with SubscribeType, the instance key being the
// topic's second token; a device publishes features.<device> and
// alerts.<device>.threshold; the feature type subscribes with the key
// "<device number mod feature instances>", and publishes
// aggregates.<feature>; the inference type subscribes with the key
// "<feature number mod inference instances>" and publishes
// alerts.<device>.anomaly; every alert instance subscribes its own
// patterns (SubscribeAgent) and so sees every alert.
func Run(ctx context.Context, cfg *Config, opts Options) (Summary, error) {
	if err := cfg.Validate(); err != nil {
		return Summary{}, err
	}
	var engOpts []engine.Option
	if cfg.Load.Loops > 0 {
		engOpts = append(engOpts, engine.WithLoops(cfg.Load.Loops))
	}
	e, err := engine.New(engOpts...)
	if err != nil {
		return Summary{}, err
	}
	r := &engineRun{cfg: cfg, clk: clock{opts.Clock}, stateDir: opts.StateDir, tp: newTopics(cfg), model: newModel(), slabs: make([]slab, e.Loops())}
	r.dev, r.feat, r.inf, r.alert = cfg.Type(Device), cfg.Type(Feature), cfg.Type(Inference), cfg.Type(Alert)
	r.lat = newLatencies(r.inf.Instances)
	r.alertCounts = make([]atomic.Uint64, r.alert.Instances)
	if err := r.setUp(e); err != nil {
		_ = e.Stop(context.Background(), engine.Immediate())
		return Summary{}, err
	}
	return r.run(ctx, e, opts)
}

// engineRun is the state of one Run shared by its agents. Its fields are
// set before Start and only read afterwards, except the latency histograms
// (each behind its lock) and the alert counters (atomic).
type engineRun struct {
	cfg                   *Config
	clk                   clock
	tp                    *topics
	model                 *model
	dev, feat, inf, alert *AgentType
	origin                time.Time
	slabs                 []slab // per loop: only that loop's agents carve from it
	lat                   latencies
	alertCounts           []atomic.Uint64
	stateDir              string // Options.StateDir
	restoredFrom          string // the snapshot the devices were restored from, if any
	restored              int    // agents restored from it
}

func (r *engineRun) register(e *engine.Engine, t *AgentType, factory func() engine.Agent) error {
	opts := []engine.RegisterOption{
		engine.Priority(t.Priority),
		engine.Mailbox(t.Mailbox, t.Overflow),
	}
	if t.Kind == Inference {
		opts = append(opts, engine.Batch(t.Batch))
	}
	return e.Register(t.Name, factory, opts...)
}

func (r *engineRun) setUp(e *engine.Engine) error {
	tp := r.tp
	steps := []struct {
		t       *AgentType
		factory func() engine.Agent
		key     func(topic string) (string, bool) // nil: every instance subscribes
	}{
		{r.dev, func() engine.Agent { return &deviceAgent{r: r} }, func(topic string) (string, bool) {
			return tokenAt(topic, 1)
		}},
		{r.feat, func() engine.Agent { return &featureAgent{r: r} }, shardKey(tp.featureKeys)},
		{r.inf, func() engine.Agent { return &inferenceAgent{r: r} }, shardKey(tp.inferenceKeys)},
		{r.alert, func() engine.Agent { return &alertAgent{r: r} }, nil},
	}
	for _, s := range steps {
		if err := r.register(e, s.t, s.factory); err != nil {
			return err
		}
	}
	if r.stateDir != "" {
		var names []string
		for _, s := range steps {
			names = append(names, s.t.Name)
		}
		var err error
		if r.restoredFrom, r.restored, err = restoreState(context.Background(), e, r.stateDir, names); err != nil {
			return err
		}
	}
	spawn := func(t *AgentType, keys []string) error {
		for _, k := range keys {
			if _, err := e.Spawn(engine.AgentID{Type: t.Name, Key: k}); err != nil && !errors.Is(err, engine.ErrAgentExists) {
				return err
			}
		}
		return nil
	}
	for _, s := range []struct {
		t    *AgentType
		keys []string
	}{{r.dev, tp.deviceKeys}, {r.feat, tp.featureKeys}, {r.inf, tp.inferenceKeys}, {r.alert, tp.alertKeys}} {
		if err := spawn(s.t, s.keys); err != nil {
			return err
		}
	}
	for _, s := range steps {
		for _, pat := range s.t.Subscribe {
			if s.key != nil {
				if err := e.SubscribeType(pat, s.t.Name, engine.KeyFunc(s.key)); err != nil {
					return fmt.Errorf("%s: subscribe %q: %w", s.t.Name, pat, err)
				}
				continue
			}
			for _, k := range tp.alertKeys {
				if err := e.SubscribeAgent(pat, engine.AgentID{Type: s.t.Name, Key: k}); err != nil {
					return fmt.Errorf("%s: subscribe %q: %w", s.t.Name, pat, err)
				}
			}
		}
	}
	return nil
}

// shardKey routes a topic to one of keys by its second token (shardOf).
// The keys are built once: routing allocates nothing.
func shardKey(keys []string) func(topic string) (string, bool) {
	return func(topic string) (string, bool) {
		tok, ok := tokenAt(topic, 1)
		if !ok {
			return "", false
		}
		return keys[shardOf(tok, len(keys))], true
	}
}

func (r *engineRun) run(ctx context.Context, e *engine.Engine, opts Options) (sum Summary, err error) {
	cfg := r.cfg
	if err := e.Start(); err != nil {
		return Summary{}, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = e.Stop(context.Background(), engine.Immediate())
		}
	}()
	send := func(dev, sensor int, payload []byte) error {
		return e.Publish(r.tp.telemetry[dev*cfg.Load.Sensors+sensor], payload)
	}
	if cfg.Load.Ingress == Route {
		route, refs, err := r.routes(e)
		if err != nil {
			return Summary{}, err
		}
		send = func(dev, sensor int, payload []byte) error {
			d, ok := route[r.tp.telemetry[dev*cfg.Load.Sensors+sensor]]
			if !ok {
				return errNoRoute
			}
			return refs[d].Send(payload)
		}
	}
	// Nothing fails from here on but the engine's Stop: the hook's stop
	// function always runs.
	stopHook := func() {}
	if opts.OnEngine != nil {
		s, err := opts.OnEngine(e)
		if err != nil {
			return Summary{}, err
		}
		if s != nil {
			stopHook = s
		}
	}

	finishState := func() error { return nil }
	if r.stateDir != "" {
		if finishState, err = startState(e, r.stateDir, opts.StateEvery); err != nil {
			return Summary{}, err
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	window := cfg.Load.Duration
	settle()
	r.origin = r.clk.now()
	cpu0 := CPUTime()
	prods := make([]*producer, cfg.Load.Producers)
	var wg sync.WaitGroup
	for i := range prods {
		p := &producer{
			index: i, of: len(prods), rate: float64(cfg.Load.Rate) / float64(len(prods)),
			window: window, origin: r.origin, clock: r.clk, devices: r.dev.Instances, sensors: cfg.Load.Sensors,
			send:      send,
			isStopped: func(err error) bool { return errors.Is(err, engine.ErrStopped) },
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
	intervals := live(runCtx, r.clk, r.origin, window, opts, done, func() liveSample {
		st := e.Stats()
		l := liveSample{agents: st.Agents, queued: st.Queued, dropped: st.DeadLetters, lat: r.lat.merged()}
		for _, ts := range st.Types {
			if ts.Type == r.dev.Name {
				l.processed = ts.Processed
			}
		}
		return l
	})
	// live returns when done closes or ctx ends; producers see runCtx too.
	<-done
	offeredFor := min(r.clk.since(r.origin), window) // shorter when ctx ended the run

	// The drain has a context of its own, bounded only by the drain limit:
	// a run that ctx ended (Ctrl-C, SIGTERM) still gives its queues their
	// time to empty, and is not reported overloaded for being cut short.
	drainCtx, drainCancel := context.WithCancel(context.WithoutCancel(ctx))
	stopLimit := r.clk.afterFunc(drainLimit(window), drainCancel)
	drained := e.WaitIdle(drainCtx) == nil
	stopLimit()
	drainCancel()
	elapsed, cpu := r.clk.since(r.origin), CPUTime()-cpu0
	mid := e.Stats()
	stopHook()
	if err := finishState(); err != nil {
		return Summary{}, err
	}

	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer stopCancel()
	stopped = true
	if err := e.Stop(stopCtx, engine.Immediate()); err != nil {
		return Summary{}, fmt.Errorf("stop: %w", err)
	}
	st := e.Stats()

	sum = Summary{
		System:       "agentloop",
		Offered:      float64(cfg.Load.Rate),
		Window:       offeredFor,
		Elapsed:      elapsed,
		Drained:      drained,
		Agents:       mid.Agents,
		Latency:      percentiles(r.lat.merged()),
		StateDir:     r.stateDir,
		RestoredFrom: r.restoredFrom,
		Restored:     r.restored,
		CPU:          100 * cpu.Seconds() / elapsed.Seconds(),
		Intervals:    intervals,
	}
	for _, p := range prods {
		sum.Emitted += p.emitted
		sum.Refused += p.refused
		sum.Backlog += p.backlog
		sum.Lag = max(sum.Lag, p.lag)
	}
	for _, t := range mid.Types {
		if t.Type == r.dev.Name {
			sum.Achieved = float64(t.Processed) / elapsed.Seconds()
		}
	}
	for _, t := range st.Types {
		if t.Type == r.dev.Name {
			sum.Processed = t.Processed
		}
	}
	sum.Dropped = st.DeadLetters + sum.Refused
	for i := range r.alertCounts {
		sum.Alerts += r.alertCounts[i].Load()
	}
	return sum, ctx.Err()
}

// settle collects the garbage of the set-up (and of a previous run in the
// same process, as in a search) before the load starts, so that the
// collector does not bill a run for work that is not its own.
func settle() { runtime.GC() }

// errNoRoute is a telemetry topic missing from the routing table; it
// cannot happen with the topics the producers emit.
var errNoRoute = errors.New("gateway: no route for the topic")

// routes builds the table of ingress Route: every telemetry topic to its
// device's index, and each device's Ref. The goroutine baseline routes
// through the same table.
func (r *engineRun) routes(e *engine.Engine) (map[string]int32, []engine.Ref, error) {
	refs := make([]engine.Ref, r.dev.Instances)
	for i := range refs {
		ref, err := e.Lookup(engine.AgentID{Type: r.dev.Name, Key: r.tp.deviceKeys[i]})
		if err != nil {
			return nil, nil, err
		}
		refs[i] = ref
	}
	return routeTable(r.tp), refs, nil
}

// routeTable maps every telemetry topic to its device's index.
func routeTable(tp *topics) map[string]int32 {
	route := make(map[string]int32, len(tp.telemetry))
	for i, t := range tp.telemetry {
		route[t] = int32(i / tp.sensors)
	}
	return route
}

// liveSample is what a live line shows of the system under load.
type liveSample struct {
	processed uint64 // telemetry handled by the devices so far
	agents    int
	queued    int64
	dropped   uint64
	lat       *hdrhistogram.Histogram // every latency measured so far (a merge the sampler owns)
}

// live samples the system for each Interval of the load (on the run's
// clock, within the window), until done closes or ctx ends, and returns
// the figures of each interval; with opts.Live it writes each interval's
// line there as it ends. sample reads the system.
// The k-th interval ends at t=k·Interval; its rate, CPU and latencies are
// of the time since the interval before, not of the run so far, so that
// one early stall shows in its own interval and no other. An interval that
// comes due as the load ends is still sampled, and one sampled late stands
// for the intervals it missed (its Span says how long it was): a window of
// n whole intervals gets at least one and at most n, however busy the
// machine.
func live(ctx context.Context, clk clock, origin time.Time, window time.Duration, opts Options, done <-chan struct{}, sample func() liveSample) []Interval {
	interval := opts.interval()
	var (
		intervals []Interval
		last      uint64
		lat       intervalMeter
	)
	// The first interval covers the window from its start; every one ends
	// at least an interval past the one before, so sec > 0.
	lastCPU, lastT := CPUTime(), time.Duration(0)
	k := time.Duration(1) // the next interval is the k-th
	for {
		if k*interval > window { // no more intervals: wait for the end of the load
			select {
			case <-ctx.Done():
			case <-done:
			}
			return intervals
		}
		tick, stop := clk.signal(k*interval - clk.since(origin))
		select {
		case <-ctx.Done():
			stop()
			return intervals
		case <-done:
			stop()
		case <-tick:
		}
		now, c := clk.since(origin), CPUTime()
		ended := false
		select {
		case <-done: // the load has ended: an interval only if one fell due while it ran
			if ended = true; k*interval > now {
				return intervals
			}
		default:
		}
		for (k+1)*interval <= min(now, window) {
			k++ // intervals missed: this one stands for them
		}
		l := sample()
		span := now - lastT
		iv := Interval{
			At: k * interval, Span: span, Rate: float64(l.processed-last) / span.Seconds(),
			CPU: 100 * (c - lastCPU).Seconds() / span.Seconds(), Latency: percentiles(lat.next(l.lat)),
		}
		intervals = append(intervals, iv)
		if opts.Live != nil {
			writeLive(opts.Live, opts.Prefix, iv, l)
		}
		if ended {
			return intervals
		}
		last, lastCPU, lastT, k = l.processed, c, now, k+1
	}
}

func writeLive(w io.Writer, prefix string, iv Interval, l liveSample) {
	fmt.Fprintf(w, "%st=%4.0fs  %9.0f msgs/s  p99 %10s  agents %6d  queued %7d  dropped %8d  cpu %5.1f%%\n",
		prefix, iv.At.Seconds(), iv.Rate, FormatLatency(iv.Latency.P99, iv.Latency.Count), l.agents, l.queued, l.dropped, iv.CPU)
}

// The agents. Each runs on its loop only, so its fields need no locks;
// payloads they send are carved from their loop's slab (see slab).

// deviceAgent keeps a device's state; every FeatureEvery-th message it
// publishes a feature vector, and it forwards readings above the alert
// level as threshold alerts.
type deviceAgent struct {
	r        *engineRun
	st       deviceState
	known    bool // a device of the run (not one spawned by a stray topic)
	restored bool // st was loaded from a snapshot (LoadState): Init keeps it
}

func (a *deviceAgent) Init(c *engine.Context) error {
	idx, ok := deviceIndex(c.ID().Key)
	if !a.restored {
		a.st = newDeviceState(idx, a.r.dev.FeatureEvery)
	}
	a.known = ok && int(idx) < a.r.dev.Instances
	return nil
}

func (a *deviceAgent) Receive(c *engine.Context, m engine.Message) {
	feature, alert := a.st.observe(m.Payload, a.r.dev.FeatureEvery)
	if !a.known {
		return
	}
	if feature {
		p := a.r.slabs[c.Loop()].next()
		a.st.writeFeature(p, Stamp(m.Payload), a.r.cfg.Load.Sensors)
		_ = c.Publish(a.r.tp.features[a.st.index], p) // a full mailbox is a dead letter, counted
	}
	if alert {
		_ = c.Publish(a.r.tp.threshold[a.st.index], m.Payload) // read-only: shared as it is
	}
}

// featureAgent aggregates the feature vectors of its shard of devices and
// publishes one aggregate per vector.
type featureAgent struct {
	r        *engineRun
	st       featureState
	shard    int
	restored bool // st was loaded from a snapshot (LoadState): Init keeps it
}

func (a *featureAgent) Init(c *engine.Context) error {
	k, err := strconv.Atoi(c.ID().Key)
	if err != nil || k < 0 || k >= a.r.feat.Instances {
		return fmt.Errorf("feature agent %q: want a key 0..%d", c.ID().Key, a.r.feat.Instances-1)
	}
	a.shard = k
	if !a.restored {
		a.st = newFeatureState(k, a.r.feat.Instances, a.r.dev.Instances)
	}
	return nil
}

func (a *featureAgent) Receive(c *engine.Context, m engine.Message) {
	if len(m.Payload) < PayloadSize {
		return
	}
	out := a.r.slabs[c.Loop()].next()
	a.st.aggregate(m.Payload, out)
	_ = c.Publish(a.r.tp.aggregates[a.shard], out)
}

// inferenceAgent scores batches of aggregates, raises anomaly alerts and
// measures the end-to-end latency of each aggregate it scores.
type inferenceAgent struct {
	r      *engineRun
	lat    *latency
	stamps []int64
	one    [1]engine.Message
}

func (a *inferenceAgent) Init(c *engine.Context) error {
	k, err := strconv.Atoi(c.ID().Key)
	if err != nil || k < 0 || k >= len(a.r.lat) {
		return fmt.Errorf("inference agent %q: want a key 0..%d", c.ID().Key, len(a.r.lat)-1)
	}
	a.lat, a.stamps = &a.r.lat[k], make([]int64, 0, a.r.inf.Batch)
	return nil
}

func (a *inferenceAgent) Receive(c *engine.Context, m engine.Message) {
	a.one[0] = m
	a.ReceiveBatch(c, a.one[:])
	a.one[0] = engine.Message{}
}

// ReceiveBatch takes up to the type's batch of aggregates; msgs is valid
// only during the call, and nothing of it is kept.
func (a *inferenceAgent) ReceiveBatch(c *engine.Context, msgs []engine.Message) {
	now := int64(a.r.clk.since(a.r.origin)) // one clock read per batch
	a.stamps = a.stamps[:0]
	for i := range msgs {
		p := msgs[i].Payload
		if len(p) < PayloadSize {
			continue
		}
		a.stamps = append(a.stamps, Stamp(p))
		if a.r.model.anomalyScore(p) > anomalyLevel {
			if dev := deviceOf(p); int(dev) < len(a.r.tp.anomaly) {
				_ = c.Publish(a.r.tp.anomaly[dev], p)
			}
		}
	}
	a.lat.recordBatch(now, a.stamps)
}

// alertAgent counts the alerts it receives.
type alertAgent struct {
	r     *engineRun
	n     *atomic.Uint64 // this run's count, for the summary
	total uint64         // every alert it received, across runs with a state directory
}

func (a *alertAgent) Init(c *engine.Context) error {
	k, err := strconv.Atoi(c.ID().Key)
	if err != nil || k < 0 || k >= len(a.r.alertCounts) {
		return fmt.Errorf("alert agent %q: want a key 0..%d", c.ID().Key, len(a.r.alertCounts)-1)
	}
	a.n = &a.r.alertCounts[k]
	return nil
}

func (a *alertAgent) Receive(*engine.Context, engine.Message) {
	a.n.Add(1)
	a.total++
}
