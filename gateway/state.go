package gateway

// This file: the mix's state that survives a restart (Options.StateDir):
// the device agents' counters, the feature agents' aggregates, the alert
// agents' totals; the inference agents keep nothing, and are re-created.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/agentloop/agentloop/engine"
)

// deviceSchema is the layout version of a device agent's saved state.
const deviceSchema = 1

// deviceStateSize is the encoded size of a deviceState (schema 1): index,
// n, tick, bad, high, then the floats.
const deviceStateSize = 4 + 8 + 8 + 8 + 1 + 8*(MaxSensors+4)

// errDeviceState is a device state that cannot be loaded.
var errDeviceState = errors.New("gateway: bad device state")

// SaveState saves the device's counters and smoothed readings.
func (a *deviceAgent) SaveState() ([]byte, uint32, error) {
	return a.st.appendTo(make([]byte, 0, deviceStateSize)), deviceSchema, nil
}

// LoadState restores what SaveState saved; Init then keeps it.
func (a *deviceAgent) LoadState(state []byte, schema uint32) error {
	st, err := loadDeviceState(state, schema)
	if err != nil {
		return err
	}
	a.st, a.restored = st, true
	return nil
}

// loadDeviceState decodes a device state saved under schema.
func loadDeviceState(state []byte, schema uint32) (deviceState, error) {
	if schema != deviceSchema {
		return deviceState{}, fmt.Errorf("%w: schema %d, want %d", errDeviceState, schema, deviceSchema)
	}
	return decodeDeviceState(state)
}

func (d *deviceState) appendTo(b []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, d.index)
	b = binary.LittleEndian.AppendUint64(b, d.n)
	b = binary.LittleEndian.AppendUint64(b, uint64(d.tick))
	b = binary.LittleEndian.AppendUint64(b, d.bad)
	high := byte(0)
	if d.high {
		high = 1
	}
	b = append(b, high)
	for _, f := range append(d.ewma[:], d.min, d.max, d.last, d.prevMean) {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	return b
}

func decodeDeviceState(b []byte) (deviceState, error) {
	var d deviceState
	if len(b) != deviceStateSize || b[28] > 1 {
		return d, fmt.Errorf("%w: %d bytes, want %d", errDeviceState, len(b), deviceStateSize)
	}
	d.index = binary.LittleEndian.Uint32(b)
	d.n = binary.LittleEndian.Uint64(b[4:])
	d.tick = int(binary.LittleEndian.Uint64(b[12:]))
	d.bad = binary.LittleEndian.Uint64(b[20:])
	d.high = b[28] == 1
	f := b[29:]
	for i := range d.ewma {
		d.ewma[i] = math.Float64frombits(binary.LittleEndian.Uint64(f[8*i:]))
	}
	tail := f[8*MaxSensors:]
	for i, p := range []*float64{&d.min, &d.max, &d.last, &d.prevMean} {
		*p = math.Float64frombits(binary.LittleEndian.Uint64(tail[8*i:]))
	}
	return d, nil
}

// featureSchema is the layout version of a feature agent's saved state.
const featureSchema = 1

// featureHeader is the size of a feature state before its per-device
// means: shard, shards, n, mean, m2, unknownDevs, the means' count.
const featureHeader = 4 + 4 + 3*8 + 8 + 4

// errFeatureState is a feature state that cannot be loaded.
var errFeatureState = errors.New("gateway: bad feature state")

// SaveState saves the shard's running statistics and per-device means.
func (a *featureAgent) SaveState() ([]byte, uint32, error) {
	f := &a.st
	b := make([]byte, 0, featureHeader+8*len(f.devs))
	b = binary.LittleEndian.AppendUint32(b, f.shard)
	b = binary.LittleEndian.AppendUint32(b, f.shards)
	for _, v := range []float64{f.n, f.mean, f.m2} {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	b = binary.LittleEndian.AppendUint64(b, f.unknownDevs)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(f.devs)))
	for _, v := range f.devs {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b, featureSchema, nil
}

// LoadState restores what SaveState saved, if it fits this run's shards
// and devices; Init then keeps it.
func (a *featureAgent) LoadState(state []byte, schema uint32) error {
	if schema != featureSchema {
		return fmt.Errorf("%w: schema %d, want %d", errFeatureState, schema, featureSchema)
	}
	if len(state) < featureHeader {
		return fmt.Errorf("%w: %d bytes", errFeatureState, len(state))
	}
	var f featureState
	f.shard = binary.LittleEndian.Uint32(state)
	f.shards = binary.LittleEndian.Uint32(state[4:])
	f.n = math.Float64frombits(binary.LittleEndian.Uint64(state[8:]))
	f.mean = math.Float64frombits(binary.LittleEndian.Uint64(state[16:]))
	f.m2 = math.Float64frombits(binary.LittleEndian.Uint64(state[24:]))
	f.unknownDevs = binary.LittleEndian.Uint64(state[32:])
	n := binary.LittleEndian.Uint32(state[40:])
	want := newFeatureState(int(f.shard), a.r.feat.Instances, a.r.dev.Instances)
	if int(f.shards) != a.r.feat.Instances || int(n) != len(want.devs) || len(state) != featureHeader+8*int(n) {
		return fmt.Errorf("%w: %d shards of %d devices' means, want %d of %d", errFeatureState, f.shards, n, a.r.feat.Instances, len(want.devs))
	}
	f.devs = want.devs
	for i := range f.devs {
		f.devs[i] = math.Float64frombits(binary.LittleEndian.Uint64(state[featureHeader+8*i:]))
	}
	a.st, a.restored = f, true
	return nil
}

// SaveState saves nothing: an inference agent keeps no state between
// batches, but is part of every snapshot so that a restore re-creates it.
func (a *inferenceAgent) SaveState() ([]byte, uint32, error) { return nil, 1, nil }

// LoadState accepts the empty state SaveState saves.
func (a *inferenceAgent) LoadState(state []byte, schema uint32) error {
	if schema != 1 || len(state) != 0 {
		return fmt.Errorf("gateway: bad inference state: schema %d, %d bytes", schema, len(state))
	}
	return nil
}

// SaveState saves the alerts the agent has received, over every run.
func (a *alertAgent) SaveState() ([]byte, uint32, error) {
	return binary.LittleEndian.AppendUint64(nil, a.total), 1, nil
}

// LoadState restores the total SaveState saved.
func (a *alertAgent) LoadState(state []byte, schema uint32) error {
	if schema != 1 || len(state) != 8 {
		return fmt.Errorf("gateway: bad alert state: schema %d, %d bytes", schema, len(state))
	}
	a.total = binary.LittleEndian.Uint64(state)
	return nil
}

// defaultStateEvery is how often a run with a state directory snapshots
// the device agents, when Options.StateEvery is zero.
const defaultStateEvery = 10 * time.Second

// stateKeep is how many snapshot files a state directory keeps.
const stateKeep = 3

// restoreState re-creates the device agents of the newest snapshot in
// dir that loads (an older one when the newest is damaged), before the
// run spawns the others. No snapshot yet is a first run.
func restoreState(ctx context.Context, e *engine.Engine, dir string, types []string) (from string, restored int, err error) {
	files, err := engine.SnapshotFiles(dir)
	if err != nil {
		return "", 0, err
	}
	var errs []error
	for _, f := range files {
		info, err := e.RestoreFile(ctx, f, engine.OnlyTypes(types...))
		if err == nil {
			return f, len(info.Restored), nil
		}
		if !errors.Is(err, engine.ErrCorruptSnapshot) && !errors.Is(err, engine.ErrSnapshotVersion) {
			return "", 0, fmt.Errorf("gateway: restore state: %w", err)
		}
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return "", 0, fmt.Errorf("gateway: no snapshot in %s loads: %w", dir, errors.Join(errs...))
	}
	return "", 0, nil
}

// startState starts the periodic snapshots of a run with a state
// directory; the function returned stops them and writes the last one.
func startState(e *engine.Engine, dir string, every time.Duration) (finish func() error, err error) {
	if every <= 0 {
		every = defaultStateEvery
	}
	p, err := e.SnapshotEvery(engine.PeriodicConfig{Dir: dir, Every: every, Keep: stateKeep})
	if err != nil {
		return nil, fmt.Errorf("gateway: state: %w", err)
	}
	return func() error {
		defer p.Stop()
		if _, _, err := p.SnapshotNow(context.Background()); err != nil {
			return fmt.Errorf("gateway: state: %w", err)
		}
		return nil
	}, nil
}
