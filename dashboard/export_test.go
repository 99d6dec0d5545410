package dashboard

import "github.com/agentloop/agentloop/engine"

// NewManual is New without the ticker: its sampler takes a snapshot only
// when Tick asks, so that a test knows exactly which snapshots were taken.
func NewManual(e *engine.Engine, opts Options) (*Dashboard, error) {
	d, err := newDashboard(e, opts)
	if err != nil {
		return nil, err
	}
	d.sampler.Add(1)
	go d.run(nil)
	return d, nil
}

// Tick takes one snapshot and returns once the open events streams have
// been handed it; false after Close.
func (d *Dashboard) Tick() bool { return d.tick() }

// HoldStreams makes every topic stream's writer wait, before it takes what
// its buffer holds, until the returned function is called. Call it before
// opening any stream.
func (d *Dashboard) HoldStreams() (release func()) {
	d.drainGate = make(chan struct{})
	return func() { close(d.drainGate) }
}

// StreamTotals are the counts of every topic stream so far: messages the
// bus handed them, dropped by full buffers, and written to clients.
func (d *Dashboard) StreamTotals() (matched, dropped, sent uint64) {
	return d.totals.matched.Load(), d.totals.dropped.Load(), d.totals.sent.Load()
}
