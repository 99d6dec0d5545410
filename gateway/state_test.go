package gateway_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"testing"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/gateway"
)

// deviceStates returns the device agents' states of a snapshot, by key.
func deviceStates(t *testing.T, d *engine.DecodedSnapshot, devType string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, r := range d.Records {
		if r.ID.Type == devType {
			out[r.ID.Key] = r.State
		}
	}
	return out
}

func newestSnapshot(t *testing.T, dir string) *engine.DecodedSnapshot {
	t.Helper()
	files, err := engine.SnapshotFiles(dir)
	if err != nil || len(files) == 0 {
		t.Fatalf("no snapshot in %s: %v", dir, err)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	d, err := engine.DecodeSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Two runs against one state directory: the second starts with the
// first's device counters and adds its own to them.
func TestStateDirResumesDeviceCounters(t *testing.T) {
	dir := t.TempDir()
	cfg := smallMix(t)
	devType := cfg.Type(gateway.Device).Name
	checkDelivered(t, runOnClock(t, cfg, false, gateway.Options{StateDir: dir}), "agentloop")
	first := deviceStates(t, newestSnapshot(t, dir), devType)
	if len(first) != 100 {
		t.Fatalf("%d device states saved, want 100", len(first))
	}
	for k, s := range first {
		if n := binary.LittleEndian.Uint64(s[4:]); n != 100 {
			t.Fatalf("%s counted %d messages in the first run, want 100", k, n)
		}
	}
	var atStart map[string][]byte
	opts := gateway.Options{StateDir: dir, OnEngine: func(e *engine.Engine) (func(), error) {
		var buf bytes.Buffer
		if _, err := e.Snapshot(context.Background(), &buf); err != nil {
			return nil, err
		}
		d, err := engine.DecodeSnapshot(buf.Bytes())
		if err != nil {
			return nil, err
		}
		atStart = deviceStates(t, d, devType)
		return nil, nil
	}}
	checkDelivered(t, runOnClock(t, smallMix(t), false, opts), "agentloop")
	for k, s := range first {
		if !bytes.Equal(atStart[k], s) {
			t.Fatalf("%s started the second run with a state other than the first's end", k)
		}
	}
	for k, s := range deviceStates(t, newestSnapshot(t, dir), devType) {
		if n := binary.LittleEndian.Uint64(s[4:]); n != 200 {
			t.Fatalf("%s counted %d messages over two runs, want 200", k, n)
		}
	}
	files, _ := engine.SnapshotFiles(dir)
	if len(files) != 2 {
		t.Fatalf("files %v, want one per run", files)
	}
}
