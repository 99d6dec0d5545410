package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/gateway"
)

// TestStandaloneDeviceMovesWithItsState: a device's state saved on one
// engine is restored on another (Init told so), and it goes on counting.
func TestStandaloneDeviceMovesWithItsState(t *testing.T) {
	if _, err := gateway.NewStandaloneDevices(0, nil, nil); !errors.Is(err, gateway.ErrInvalidConfig) {
		t.Fatalf("feature cycle 0: %v, want ErrInvalidConfig", err)
	}
	var observed atomic.Uint64
	restored := make(chan bool, 4)
	f, err := gateway.NewStandaloneDevices(4, &observed, func(_ *engine.Context, r bool) { restored <- r })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := func() *engine.Engine {
		e, err := engine.New(engine.WithLoops(1))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Register("device", f); err != nil {
			t.Fatal(err)
		}
		if err := e.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Stop(ctx) })
		return e
	}
	a, b := start(), start()
	id := engine.AgentID{Type: "device", Key: gateway.DeviceKey(3)}
	for i := range 5 {
		if err := a.SendID(id, gateway.DeviceTelemetry(nil, int64(i), 3, 0, float64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	var snap bytes.Buffer
	if info, err := a.Snapshot(ctx, &snap); err != nil || info.Agents != 1 {
		t.Fatalf("snapshot: %+v, %v", info, err)
	}
	saved := bytes.Clone(snap.Bytes())
	if info, err := b.Restore(ctx, &snap); err != nil || len(info.Restored) != 1 {
		t.Fatalf("restore: %+v, %v", info, err)
	}
	if <-restored || !<-restored {
		t.Fatal("Init did not tell the new device from the restored one")
	}
	var again bytes.Buffer
	if _, err := b.Snapshot(ctx, &again); err != nil {
		t.Fatal(err)
	}
	d1, err1 := engine.DecodeSnapshot(saved)
	d2, err2 := engine.DecodeSnapshot(again.Bytes())
	if err1 != nil || err2 != nil || len(d2.Records) != 1 {
		t.Fatalf("snapshots: %v, %v", err1, err2)
	}
	if !bytes.Equal(d1.Records[0].State, d2.Records[0].State) {
		t.Fatal("the restored device's state differs from the saved one")
	}
	if observed.Load() != 5 {
		t.Fatalf("observed %d, want 5", observed.Load())
	}
}
