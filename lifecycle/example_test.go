package lifecycle_test

import (
	"errors"
	"fmt"

	"github.com/agentloop/agentloop/lifecycle"
)

func ExampleMachine() {
	var m lifecycle.Machine // the zero value is Idle
	fmt.Println(m.State())

	for _, s := range []lifecycle.State{lifecycle.Initializing, lifecycle.Ready, lifecycle.Running, lifecycle.Paused} {
		if _, err := m.To(s); err != nil {
			fmt.Println(err)
		}
	}
	fmt.Println(m.State())

	// Illegal moves are refused with an error naming both states.
	_, err := m.To(lifecycle.Ready)
	fmt.Println(err)
	var te *lifecycle.TransitionError
	fmt.Println(errors.Is(err, lifecycle.ErrIllegalTransition), errors.As(err, &te) && te.From == lifecycle.Paused)

	// Terminated is reached once; a second attempt is refused.
	from, _ := m.To(lifecycle.Terminated)
	fmt.Println("terminated from", from)
	_, err = m.To(lifecycle.Terminated)
	fmt.Println(err)

	// Only Reset leaves Terminated, for reuse from a pool.
	_, err = m.To(lifecycle.Idle)
	fmt.Println(err)
	fmt.Println(m.Reset(), m.State())
	// Output:
	// Idle
	// Paused
	// lifecycle: illegal transition Paused → Ready
	// true true
	// terminated from Paused
	// lifecycle: illegal transition Terminated → Terminated
	// lifecycle: illegal transition Terminated → Idle
	// <nil> Idle
}
