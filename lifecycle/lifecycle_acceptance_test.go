package lifecycle_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agentloop/agentloop/lifecycle"
)

var accStates = []lifecycle.State{lifecycle.Idle, lifecycle.Initializing, lifecycle.Ready, lifecycle.Running, lifecycle.Paused, lifecycle.Terminated}

// doc.go: "The legal transitions, and no others, are: ..." and "A
// self-transition (X → X) is illegal."
func TestAcceptanceLifecycleTable(t *testing.T) {
	legal := map[[2]lifecycle.State]bool{
		{lifecycle.Idle, lifecycle.Initializing}:       true,
		{lifecycle.Initializing, lifecycle.Ready}:      true,
		{lifecycle.Initializing, lifecycle.Terminated}: true,
		{lifecycle.Ready, lifecycle.Running}:           true,
		{lifecycle.Ready, lifecycle.Terminated}:        true,
		{lifecycle.Running, lifecycle.Paused}:          true,
		{lifecycle.Running, lifecycle.Terminated}:      true,
		{lifecycle.Paused, lifecycle.Running}:          true,
		{lifecycle.Paused, lifecycle.Terminated}:       true,
		{lifecycle.Terminated, lifecycle.Idle}:         true,
	}
	for _, from := range accStates {
		for _, to := range accStates {
			want := legal[[2]lifecycle.State{from, to}]
			if got := lifecycle.Legal(from, to); got != want {
				t.Errorf("Legal(%v, %v) = %v, want %v", from, to, got, want)
			}
			m := machineIn(t, from)
			err := m.Transition(from, to)
			direct := want && to != lifecycle.Idle
			if direct != (err == nil) {
				t.Errorf("Transition(%v, %v) = %v, legal-direct %v", from, to, err, direct)
			}
			if err != nil {
				checkTE(t, err, from, to)
				if m.State() != from {
					t.Errorf("refused Transition(%v, %v) moved the machine to %v", from, to, m.State())
				}
			}
			m = machineIn(t, from)
			prev, err := m.To(to)
			if direct != (err == nil) || prev != from {
				t.Errorf("To(%v) from %v = %v, %v", to, from, prev, err)
			}
			if err != nil {
				checkTE(t, err, from, to)
			}
		}
	}
	if lifecycle.Legal(lifecycle.State(9), lifecycle.Idle) || lifecycle.State(9).Valid() || lifecycle.State(9).String() != "State(9)" {
		t.Error("an invalid state must be illegal and print as State(9)")
	}
}

// machineIn returns a machine in state s, reached through legal moves.
func machineIn(t *testing.T, s lifecycle.State) *lifecycle.Machine {
	t.Helper()
	m := new(lifecycle.Machine)
	path := map[lifecycle.State][]lifecycle.State{
		lifecycle.Initializing: {lifecycle.Initializing},
		lifecycle.Ready:        {lifecycle.Initializing, lifecycle.Ready},
		lifecycle.Running:      {lifecycle.Initializing, lifecycle.Ready, lifecycle.Running},
		lifecycle.Paused:       {lifecycle.Initializing, lifecycle.Ready, lifecycle.Running, lifecycle.Paused},
		lifecycle.Terminated:   {lifecycle.Initializing, lifecycle.Terminated},
	}[s]
	for _, st := range path {
		if _, err := m.To(st); err != nil {
			t.Fatalf("reaching %v: %v", s, err)
		}
	}
	return m
}

func checkTE(t *testing.T, err error, from, to lifecycle.State) {
	t.Helper()
	var te *lifecycle.TransitionError
	if !errors.As(err, &te) || !errors.Is(err, lifecycle.ErrIllegalTransition) || te.From != from || te.To != to {
		t.Errorf("error %v, want *TransitionError{%v, %v}", err, from, to)
		return
	}
	if want := "lifecycle: illegal transition " + from.String() + " → " + to.String(); err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}

// Transition: "If the machine is not in from, it returns
// *TransitionError{current, to}"; Reset: "From any other state it changes
// nothing and returns *TransitionError{current, Idle}".
func TestAcceptanceLifecycleWrongFromAndReset(t *testing.T) {
	m := machineIn(t, lifecycle.Running)
	checkTE(t, m.Transition(lifecycle.Paused, lifecycle.Running), lifecycle.Running, lifecycle.Running)
	checkTE(t, m.Reset(), lifecycle.Running, lifecycle.Idle)
	m = machineIn(t, lifecycle.Terminated)
	if err := m.Reset(); err != nil || m.State() != lifecycle.Idle {
		t.Errorf("Reset from Terminated: %v, state %v", err, m.State())
	}
}

// "Terminated is reached exactly once per incarnation however many
// goroutines race to terminate an agent: the losers get
// TransitionError{Terminated, Terminated}"; "of many racing Resets exactly
// one succeeds".
func TestAcceptanceLifecycleRaces(t *testing.T) {
	m := machineIn(t, lifecycle.Running)
	const n = 16
	var wins, resets atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := m.To(lifecycle.Terminated); err == nil {
				wins.Add(1)
			} else {
				var te *lifecycle.TransitionError
				if !errors.As(err, &te) || te.From != lifecycle.Terminated || te.To != lifecycle.Terminated {
					t.Errorf("loser got %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d goroutines terminated the machine, want 1", wins.Load())
	}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if m.Reset() == nil {
				resets.Add(1)
			}
		}()
	}
	wg.Wait()
	if resets.Load() != 1 {
		t.Errorf("%d Resets succeeded, want 1", resets.Load())
	}
}
