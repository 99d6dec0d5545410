package engine_test

// Pooled: "Each loop keeps up to 1024 records per type, whatever the
// collector does; a record finalized beyond that is left to the
// collector."

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/agentloop/agentloop/engine"
)

func accPoolStats(t *testing.T, e *engine.Engine) engine.TypePoolStats {
	t.Helper()
	ps := e.PoolStats()
	if len(ps) != 1 {
		t.Fatalf("PoolStats() = %v, want one type", ps)
	}
	return ps[0]
}

func TestAcceptancePoolSurvivesCollection(t *testing.T) {
	e := accNew(t, engine.WithLoops(1))
	accRegister(t, e, "p", func() engine.Agent { return resettable{} }, engine.Pooled())
	accStart(t, e)
	old := engine.AgentID{Type: "p", Key: "old"}
	accSpawn(t, e, old)
	accIdle(t, e)
	if err := e.Terminate(old); err != nil {
		t.Fatal(err)
	}
	accIdle(t, e)
	runtime.GC()
	runtime.GC()
	accSpawn(t, e, engine.AgentID{Type: "p", Key: "new"})
	if st := accPoolStats(t, e); st.Hits != 1 || st.Puts != 1 {
		t.Fatalf("after two collections: %+v, want the spawn served by the record put back (1 hit, 1 put)", st)
	}
}

func TestAcceptancePoolBounded(t *testing.T) {
	const n = 1100
	e := accNew(t, engine.WithLoops(1))
	accRegister(t, e, "p", func() engine.Agent { return resettable{} }, engine.Pooled())
	accStart(t, e)
	for i := 0; i < n; i++ {
		accSpawn(t, e, engine.AgentID{Type: "p", Key: fmt.Sprint(i)})
	}
	accIdle(t, e)
	for i := 0; i < n; i++ {
		if err := e.Terminate(engine.AgentID{Type: "p", Key: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	accIdle(t, e)
	if st := accPoolStats(t, e); st.Puts != 1024 {
		t.Fatalf("%d records finalized: %+v, want 1024 kept", n, st)
	}
	for i := 0; i < n; i++ {
		accSpawn(t, e, engine.AgentID{Type: "p", Key: fmt.Sprint("again-", i)})
	}
	if st := accPoolStats(t, e); st.Hits != 1024 {
		t.Fatalf("%d spawns after: %+v, want 1024 served from the pool", n, st)
	}
}
