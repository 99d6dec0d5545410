package lifecycle_test

import (
	"errors"
	"testing"

	"github.com/agentloop/agentloop/lifecycle"
)

var allStates = []lifecycle.State{
	lifecycle.Idle, lifecycle.Initializing, lifecycle.Ready,
	lifecycle.Running, lifecycle.Paused, lifecycle.Terminated,
}

func TestStateString(t *testing.T) {
	cases := []struct {
		s     lifecycle.State
		want  string
		valid bool
	}{
		{lifecycle.Idle, "Idle", true},
		{lifecycle.Initializing, "Initializing", true},
		{lifecycle.Ready, "Ready", true},
		{lifecycle.Running, "Running", true},
		{lifecycle.Paused, "Paused", true},
		{lifecycle.Terminated, "Terminated", true},
		{6, "State(6)", false},
		{7, "State(7)", false},
		{^lifecycle.State(0), "State(4294967295)", false},
	}
	for _, c := range cases {
		if got := c.s.String(); got != c.want {
			t.Errorf("State(%d).String() = %q, want %q", uint32(c.s), got, c.want)
		}
		if got := c.s.Valid(); got != c.valid {
			t.Errorf("State(%d).Valid() = %v, want %v", uint32(c.s), got, c.valid)
		}
	}
}

func TestLegalRefusesInvalidStates(t *testing.T) {
	for _, s := range allStates {
		for _, bad := range []lifecycle.State{6, 7, 1 << 31} {
			if lifecycle.Legal(s, bad) || lifecycle.Legal(bad, s) {
				t.Errorf("Legal with invalid state %d and %v = true", uint32(bad), s)
			}
		}
	}
}

func TestTransitionErrorText(t *testing.T) {
	err := error(&lifecycle.TransitionError{From: lifecycle.Running, To: lifecycle.Idle})
	if got, want := err.Error(), "lifecycle: illegal transition Running → Idle"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, lifecycle.ErrIllegalTransition) {
		t.Error("errors.Is(err, ErrIllegalTransition) = false")
	}
	err = &lifecycle.TransitionError{From: 9, To: lifecycle.Ready}
	if got, want := err.Error(), "lifecycle: illegal transition State(9) → Ready"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
