package engine_test

// Pause, Resume and Terminate by ID act on the incarnation the registry
// held when they looked the ID up, even when a Pooled record is reused
// under another ID before they read it.

import (
	"testing"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/lifecycle"
)

type resettable struct{}

func (resettable) Receive(*engine.Context, engine.Message) {}
func (resettable) Reset()                                  {}

// accReuseDuringControl spawns "p/old", runs prepare on it, and sets the
// hook that, inside the next control call's lookup, terminates "p/old"
// and spawns "p/new" on its record, then runs after on "p/new". It
// returns the IDs and a check that the record was in fact reused.
func accReuseDuringControl(t *testing.T, prepare, after func(e *engine.Engine, id engine.AgentID)) (*engine.Engine, engine.AgentID, engine.AgentID, func()) {
	t.Helper()
	e := accNew(t, engine.WithLoops(1))
	accRegister(t, e, "p", func() engine.Agent { return resettable{} }, engine.Pooled())
	accStart(t, e)
	oldID, newID := engine.AgentID{Type: "p", Key: "old"}, engine.AgentID{Type: "p", Key: "new"}
	oldRef := accSpawn(t, e, oldID)
	accIdle(t, e)
	if prepare != nil {
		prepare(e, oldID)
		accIdle(t, e)
	}
	var newRef engine.Ref
	engine.SetControlLookupHook(func() {
		engine.SetControlLookupHook(nil)
		if err := e.Terminate(oldID); err != nil {
			t.Errorf("Terminate(%v): %v", oldID, err)
		}
		accIdle(t, e) // finalized and recycled at the end of the turn
		newRef = accSpawn(t, e, newID)
		accIdle(t, e)
		if after != nil {
			after(e, newID)
			accIdle(t, e)
		}
	})
	t.Cleanup(func() { engine.SetControlLookupHook(nil) })
	reused := func() {
		t.Helper()
		if newRef.IsZero() {
			t.Fatal("the control call never looked the ID up")
		}
		if oldRef.ID().Key != "" { // a reused record names only its type to old Refs
			t.Fatalf("the record of %v was not reused (old Ref still names %v)", oldID, oldRef.ID())
		}
	}
	return e, oldID, newID, reused
}

func accState(t *testing.T, e *engine.Engine, id engine.AgentID) lifecycle.State {
	t.Helper()
	st, err := e.State(id)
	if err != nil {
		t.Fatalf("State(%v): %v", id, err)
	}
	return st
}

func TestAcceptanceControlTerminateStaleIncarnation(t *testing.T) {
	e, oldID, newID, reused := accReuseDuringControl(t, nil, nil)
	if err := e.Terminate(oldID); err != nil {
		t.Fatalf("Terminate(%v) whose incarnation ended meanwhile: %v, want nil (a no-op)", oldID, err)
	}
	reused()
	accIdle(t, e)
	if st := accState(t, e, newID); st != lifecycle.Running {
		t.Fatalf("Terminate(%v) reached %v on the reused record: it is %v", oldID, newID, st)
	}
	// And the new incarnation can still be terminated.
	if err := e.Terminate(newID); err != nil {
		t.Fatal(err)
	}
	accIdle(t, e)
	if _, err := e.State(newID); err == nil {
		t.Fatalf("%v is still registered after its own Terminate", newID)
	}
}

func TestAcceptanceControlPauseStaleIncarnation(t *testing.T) {
	e, oldID, newID, reused := accReuseDuringControl(t, nil, nil)
	err := e.Pause(oldID)
	reused()
	if err == nil {
		t.Fatalf("Pause(%v) whose incarnation ended meanwhile returned nil", oldID)
	}
	accIdle(t, e)
	if st := accState(t, e, newID); st != lifecycle.Running {
		t.Fatalf("Pause(%v) reached %v on the reused record: it is %v", oldID, newID, st)
	}
}

func TestAcceptanceControlResumeStaleIncarnation(t *testing.T) {
	pause := func(e *engine.Engine, id engine.AgentID) {
		if err := e.Pause(id); err != nil {
			t.Fatalf("Pause(%v): %v", id, err)
		}
	}
	e, oldID, newID, reused := accReuseDuringControl(t, pause, pause)
	err := e.Resume(oldID)
	reused()
	if err == nil {
		t.Fatalf("Resume(%v) whose incarnation ended meanwhile returned nil", oldID)
	}
	accIdle(t, e)
	if st := accState(t, e, newID); st != lifecycle.Paused {
		t.Fatalf("Resume(%v) reached %v on the reused record: it is %v", oldID, newID, st)
	}
}
