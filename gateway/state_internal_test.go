package gateway

import (
	"errors"
	"reflect"
	"testing"
)

// A device state survives its encoding, every field of it; a state of
// another size or schema is refused.
func TestDeviceStateRoundTrip(t *testing.T) {
	a := &deviceAgent{st: deviceState{index: 7, n: 12345, tick: 3, bad: 2, high: true, min: -1.5, max: 99, last: 42, prevMean: 0.25}}
	for i := range a.st.ewma {
		a.st.ewma[i] = float64(i) + 0.5
	}
	s, schema, err := a.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	var b deviceAgent
	if err := b.LoadState(s, schema); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.st, b.st) || !b.restored {
		t.Fatalf("loaded %+v, want %+v", b.st, a.st)
	}
	if err := b.LoadState(s[:len(s)-1], schema); !errors.Is(err, errDeviceState) {
		t.Fatalf("short state: %v", err)
	}
	if err := b.LoadState(s, schema+1); !errors.Is(err, errDeviceState) {
		t.Fatalf("future schema: %v", err)
	}
}
