package engine_test

// The registry's lookups take no lock: these tests hold them to what a
// locked map would answer while agents come and go, under -race.

import (
	"errors"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
)

// waitGone waits until id has left the registry (Lookup fails): after that,
// a publish to it must reach a new incarnation. It polls, yielding, since
// leaving the registry has no signal of its own; the bound only turns a
// hang into a failure.
func waitGone(t *testing.T, e *engine.Engine, id engine.AgentID) {
	t.Helper()
	deadline := time.Now().Add(accTimeout)
	for {
		_, err := e.Lookup(id)
		if errors.Is(err, engine.ErrUnknownAgent) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v still registered: %v", id, err)
		}
		runtime.Gosched()
	}
}

// TestRegistryLookupDuringChurn: while agents under fresh keys are spawned
// and terminated by the thousand (the registry's tables grow, fill with
// removed entries and are rebuilt), lookups of agents that stay alive never
// miss them and never return another agent, and those that ended are gone.
func TestRegistryLookupDuringChurn(t *testing.T) {
	const (
		stable  = 512
		churned = 6000
		window  = 256 // churned agents alive at once
	)
	e := accNew(t, engine.WithLoops(2))
	accRegister(t, e, "s", accRecvOnly(func(*engine.Context, engine.Message) {}))
	accRegister(t, e, "c", accRecvOnly(func(*engine.Context, engine.Message) {}), engine.Pooled())
	accStart(t, e)
	for i := range stable {
		accSpawn(t, e, engine.AgentID{Type: "s", Key: strconv.Itoa(i)})
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 2))
			for {
				select {
				case <-done:
					return
				default:
				}
				id := engine.AgentID{Type: "s", Key: strconv.Itoa(r.IntN(stable))}
				ref, err := e.Lookup(id)
				if err != nil {
					t.Errorf("Lookup(%v) of a live agent: %v", id, err)
					return
				}
				if ref.ID() != id {
					t.Errorf("Lookup(%v) returned %v", id, ref.ID())
					return
				}
			}
		}()
	}
	ids := make([]engine.AgentID, churned)
	for i := range ids {
		ids[i] = engine.AgentID{Type: "c", Key: strconv.Itoa(i)}
		accSpawn(t, e, ids[i])
		if i >= window {
			if err := e.Terminate(ids[i-window]); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, id := range ids[churned-window:] {
		if err := e.Terminate(id); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		waitGone(t, e, id)
	}
	close(done)
	wg.Wait()
	if n := e.Stats().Agents; n != stable {
		t.Errorf("Stats().Agents = %d, want the %d that stayed", n, stable)
	}
	// The keys are free again: spawning them makes new agents.
	for _, id := range ids[:window] {
		accSpawn(t, e, id)
	}
	if n := e.Stats().Agents; n != stable+window {
		t.Errorf("Stats().Agents = %d after respawning, want %d", n, stable+window)
	}
}
