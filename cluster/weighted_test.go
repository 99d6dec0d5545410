package cluster_test

import (
	"errors"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/agentloop/agentloop/cluster"
	"github.com/agentloop/agentloop/engine"
)

// TestWeightedPlacementFollowsHeadroom: a weighted type's IDs are owned in
// proportion to each member's headroom, and when one member leaves only
// the IDs it owned move.
func TestWeightedPlacementFollowsHeadroom(t *testing.T) {
	const ids = 30000
	w := cluster.Weights{CPU: 0.5, Mem: 0.25, Net: 0.25}
	figs := map[string]cluster.Figures{
		"a": {CPUIdle: 0.8, MemFree: 0.8, NetFree: 0.8}, // headroom 0.8
		"b": {CPUIdle: 0.4, MemFree: 0.4, NetFree: 0.4}, // 0.4
		"c": {CPUIdle: 0.2, MemFree: 0.1, NetFree: 0.3}, // 0.2
	}
	members := []string{"a", "b", "c"}
	var total float64
	for _, m := range members {
		total += w.Headroom(figs[m])
	}
	owned := map[string]int{}
	moved := 0
	for i := range ids {
		id := engine.AgentID{Type: "w", Key: "k" + strconv.Itoa(i)}
		before := cluster.WeightedOwnerOf(members, figs, w, id)
		owned[before]++
		after := cluster.WeightedOwnerOf([]string{"a", "c"}, figs, w, id)
		if before != after {
			moved++
			if before != "b" {
				t.Fatalf("%v moved from %s, which stayed", id, before)
			}
		} else if before == "b" {
			t.Fatalf("%v stayed on the leaver", id)
		}
	}
	for _, m := range members {
		want := w.Headroom(figs[m]) / total
		got := float64(owned[m]) / ids
		t.Logf("%s: headroom %.2f, owns %.4f (want %.4f)", m, w.Headroom(figs[m]), got, want)
		if math.Abs(got-want) > 0.1*want {
			t.Fatalf("%s owns %.4f of the IDs, want about %.4f", m, got, want)
		}
	}
	if moved != owned["b"] {
		t.Fatalf("%d moved, b owned %d", moved, owned["b"])
	}
	// No headroom anywhere: placed as unweighted.
	zero := map[string]cluster.Figures{}
	id := engine.AgentID{Type: "w", Key: "z"}
	if got, want := cluster.WeightedOwnerOf(members, zero, w, id), cluster.OwnerOf(members, id); got != want {
		t.Fatalf("no headroom: owner %s, want the unweighted %s", got, want)
	}
}

// TestWeightedPlacementAcrossNodes: nodes publish their figures at join;
// every node places a weighted type's IDs alike, by them, and sends reach
// the agent there.
func TestWeightedPlacementAcrossNodes(t *testing.T) {
	url := natsServer(t)
	w := cluster.Weights{CPU: 1}
	idle := map[string]float64{"n1": 0.9, "n2": 0.5, "n3": 0.1}
	got := make(chan delivery, 64)
	ms := startNodesWith(t, url, three, func(name string, e *engine.Engine) {
		register(t, e, "wdev", func(c *engine.Context, m engine.Message) { got <- delivery{name, c.ID().Key, string(m.Payload)} })
	}, func(name string, c *cluster.Config) {
		c.Weighted = map[string]cluster.Weights{"wdev": w}
		c.Figures = func() cluster.Figures { return cluster.Figures{CPUIdle: idle[name]} }
	}, nil)
	figs := map[string]cluster.Figures{}
	for name, v := range idle {
		figs[name] = cluster.Figures{CPUIdle: v}
	}
	per := map[string]int{}
	for i := range 300 {
		id := engine.AgentID{Type: "wdev", Key: "d" + strconv.Itoa(i)}
		want := cluster.WeightedOwnerOf(three, figs, w, id)
		per[want]++
		for _, m := range ms {
			if o := m.node.Owner(id); o != want {
				t.Fatalf("%s places %v on %s, want %s", m.node.Name(), id, o, want)
			}
		}
		if i < 20 {
			if err := ms[2].e.SendID(id, []byte("x")); err != nil {
				t.Fatal(err)
			}
			if d := recv(t, got, "delivery"); d.node != want || d.id != id.Key {
				t.Fatalf("%v delivered on %s, want %s", id, d.node, want)
			}
		}
	}
	if !(per["n1"] > per["n2"] && per["n2"] > per["n3"]) {
		t.Fatalf("owners %v: want more IDs where there is more headroom", per)
	}
}

func TestWeightedConfigRefused(t *testing.T) {
	for _, w := range []cluster.Weights{{CPU: 0.5, Mem: 0.2}, {CPU: 1.5, Mem: -0.5}, {CPU: math.NaN(), Mem: 1}} {
		_, err := cluster.New(cluster.Config{Name: "x", Weighted: map[string]cluster.Weights{"t": w}, Heartbeat: time.Second, LostAfter: 2 * time.Second})
		if !errors.Is(err, cluster.ErrInvalidConfig) {
			t.Errorf("weights %+v: %v, want ErrInvalidConfig", w, err)
		}
	}
}
