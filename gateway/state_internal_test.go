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

// TestMixStateRoundTrip: the feature agents' aggregates and the alert
// agents' totals load back as saved; a state of another layout (other
// shards or devices, cut short, a future schema) is refused.
func TestMixStateRoundTrip(t *testing.T) {
	r := &engineRun{feat: &AgentType{Instances: 4}, dev: &AgentType{Instances: 10}}
	a := &featureAgent{r: r, st: newFeatureState(2, 4, 10)}
	a.st.n, a.st.mean, a.st.m2, a.st.unknownDevs = 17, 3.5, 0.75, 2
	for i := range a.st.devs {
		a.st.devs[i] = float64(i) * 1.5
	}
	s, schema, err := a.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	b := &featureAgent{r: r}
	if err := b.LoadState(s, schema); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.st, b.st) || !b.restored {
		t.Fatalf("loaded %+v, want %+v", b.st, a.st)
	}
	for name, bad := range map[string]struct {
		state  []byte
		schema uint32
		r      *engineRun
	}{
		"cut short":     {s[:len(s)-1], schema, r},
		"header only":   {s[:10], schema, r},
		"future schema": {s, schema + 1, r},
		"other shards":  {s, schema, &engineRun{feat: &AgentType{Instances: 5}, dev: &AgentType{Instances: 10}}},
		"other devices": {s, schema, &engineRun{feat: &AgentType{Instances: 4}, dev: &AgentType{Instances: 100}}},
	} {
		c := &featureAgent{r: bad.r}
		if err := c.LoadState(bad.state, bad.schema); !errors.Is(err, errFeatureState) || c.restored {
			t.Errorf("%s: LoadState = %v, restored %v; want errFeatureState", name, err, c.restored)
		}
	}

	al := &alertAgent{total: 42}
	s, schema, err = al.SaveState()
	if err != nil {
		t.Fatal(err)
	}
	var al2 alertAgent
	if err := al2.LoadState(s, schema); err != nil || al2.total != 42 {
		t.Fatalf("alert LoadState = %v, total %d; want 42", err, al2.total)
	}
	if err := al2.LoadState(s[:4], schema); err == nil {
		t.Fatal("alert LoadState took a cut state")
	}
	inf := &inferenceAgent{}
	s, schema, err = inf.SaveState()
	if err != nil || len(s) != 0 {
		t.Fatalf("inference SaveState = %q, %v", s, err)
	}
	if err := inf.LoadState(s, schema); err != nil {
		t.Fatal(err)
	}
	if err := inf.LoadState([]byte{1}, schema); err == nil {
		t.Fatal("inference LoadState took a state it never saves")
	}
}
