package engine_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/agentloop/agentloop/engine"
)

// tagged is a pooled agent that counts its messages on its type's counter.
type tagged struct{ got *atomic.Int64 }

func (a tagged) Receive(*engine.Context, engine.Message) { a.got.Add(1) }
func (tagged) Reset()                                    {}

// TestPooledTypesEndingInOneTurn ends the agents of two Pooled types,
// interleaved, in one turn of one loop: each record goes back to its own
// type's pool, and a later spawn of each type is served by one of its own
// records, which runs its own type's agent value.
func TestPooledTypesEndingInOneTurn(t *testing.T) {
	e := accNew(t, engine.WithLoops(1))
	var gotA, gotB atomic.Int64
	accRegister(t, e, "a", func() engine.Agent { return tagged{&gotA} }, engine.Pooled())
	accRegister(t, e, "b", func() engine.Agent { return tagged{&gotB} }, engine.Pooled())
	// Before Start every spawn and termination waits for the loop's first
	// turn, which takes them together: the four agents end in that turn.
	var ids []engine.AgentID
	for i := 0; i < 2; i++ {
		ids = append(ids, engine.AgentID{Type: "a", Key: fmt.Sprint(i)}, engine.AgentID{Type: "b", Key: fmt.Sprint(i)})
	}
	for _, id := range ids {
		accSpawn(t, e, id)
	}
	for _, id := range ids {
		if err := e.Terminate(id); err != nil {
			t.Fatal(err)
		}
	}
	accStart(t, e)
	accIdle(t, e)
	ps := e.PoolStats()
	if len(ps) != 2 || ps[0].Type != "a" || ps[1].Type != "b" || ps[0].Puts != 2 || ps[1].Puts != 2 {
		t.Fatalf("PoolStats() = %+v, want 2 puts for each of a and b", ps)
	}
	for i, typ := range []string{"a", "b", "a", "b"} {
		r := accSpawn(t, e, engine.AgentID{Type: typ, Key: fmt.Sprint("new", i)})
		if err := r.Send(nil); err != nil {
			t.Fatal(err)
		}
	}
	accIdle(t, e)
	ps = e.PoolStats()
	for _, p := range ps {
		if p.Hits != 2 || p.Misses != 2 { // the misses: the first two spawns
			t.Errorf("%s: %+v, want both new spawns served by its own records (2 hits, 2 misses)", p.Type, p.Stats)
		}
	}
	if gotA.Load() != 2 || gotB.Load() != 2 {
		t.Errorf("messages handled: a %d, b %d, want 2 each", gotA.Load(), gotB.Load())
	}
}
