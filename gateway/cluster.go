package gateway

// This file: the mix's device stage on its own, for a run spread over
// several engines (the cluster demo): the features, inference and alert
// stages stay in the single-engine run.

import (
	"fmt"
	"sync/atomic"

	"github.com/agentloop/agentloop/engine"
)

// DeviceTelemetry writes a telemetry payload of the mix for device index
// (PayloadSize bytes, see the layout above) into p and returns it.
func DeviceTelemetry(p []byte, stamp int64, device uint32, sensor uint16, v float64) []byte {
	if len(p) < PayloadSize {
		p = make([]byte, PayloadSize)
	}
	putTelemetry(p, stamp, device, sensor, v)
	return p[:PayloadSize]
}

// StandaloneDevice is the mix's device agent without the stages after it:
// it keeps a device's state from its telemetry exactly as the mix's device
// agent does, counts what it observed, and saves and loads that state
// (engine.StateSaver, engine.StateLoader), so that it can move between
// engines with it.
type StandaloneDevice struct {
	st       deviceState
	every    int
	restored bool
	observed *atomic.Uint64
	onInit   func(c *engine.Context, restored bool)
}

// NewStandaloneDevices returns a factory of StandaloneDevice agents whose
// feature cycle is every messages (the mix's FeatureEvery), adding each
// message observed to observed (nil: not counted) and calling onInit, when
// set, from each agent's Init with whether its state was restored.
func NewStandaloneDevices(every int, observed *atomic.Uint64, onInit func(c *engine.Context, restored bool)) (func() engine.Agent, error) {
	if every < 1 {
		return nil, fmt.Errorf("%w: feature cycle %d, want at least 1", ErrInvalidConfig, every)
	}
	return func() engine.Agent { return &StandaloneDevice{every: every, observed: observed, onInit: onInit} }, nil
}

// Init starts a new device's state, keeping one restored by LoadState.
func (a *StandaloneDevice) Init(c *engine.Context) error {
	if !a.restored {
		idx, _ := deviceIndex(c.ID().Key)
		a.st = newDeviceState(idx, a.every)
	}
	if a.onInit != nil {
		a.onInit(c, a.restored)
	}
	return nil
}

// Receive observes one telemetry payload.
func (a *StandaloneDevice) Receive(_ *engine.Context, m engine.Message) {
	a.st.observe(m.Payload, a.every)
	if a.observed != nil {
		a.observed.Add(1)
	}
}

// SaveState saves the device's state (the mix's device layout).
func (a *StandaloneDevice) SaveState() ([]byte, uint32, error) {
	return a.st.appendTo(make([]byte, 0, deviceStateSize)), deviceSchema, nil
}

// LoadState restores what SaveState saved.
func (a *StandaloneDevice) LoadState(state []byte, schema uint32) error {
	st, err := loadDeviceState(state, schema)
	if err != nil {
		return err
	}
	a.st, a.restored = st, true
	return nil
}

// DeviceKey returns the agent key of device i in the mix ("dev-<i>").
func DeviceKey(i int) string { return deviceKey(i) }
