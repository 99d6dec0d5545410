package lifecycle_test

import (
	"errors"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agentloop/agentloop/lifecycle"
)

// legalPairs is the specification, written independently of the package's
// table so that a wrong table fails the tests.
var legalPairs = map[[2]lifecycle.State]bool{
	{lifecycle.Idle, lifecycle.Initializing}:       true,
	{lifecycle.Initializing, lifecycle.Ready}:      true,
	{lifecycle.Initializing, lifecycle.Terminated}: true,
	{lifecycle.Ready, lifecycle.Running}:           true,
	{lifecycle.Ready, lifecycle.Terminated}:        true,
	{lifecycle.Running, lifecycle.Paused}:          true,
	{lifecycle.Paused, lifecycle.Running}:          true,
	{lifecycle.Running, lifecycle.Terminated}:      true,
	{lifecycle.Paused, lifecycle.Terminated}:       true,
	{lifecycle.Terminated, lifecycle.Idle}:         true, // through Reset only
}

// pathTo lists the legal moves that bring a fresh machine from Idle to s.
var pathTo = map[lifecycle.State][]lifecycle.State{
	lifecycle.Idle:         nil,
	lifecycle.Initializing: {lifecycle.Initializing},
	lifecycle.Ready:        {lifecycle.Initializing, lifecycle.Ready},
	lifecycle.Running:      {lifecycle.Initializing, lifecycle.Ready, lifecycle.Running},
	lifecycle.Paused:       {lifecycle.Initializing, lifecycle.Ready, lifecycle.Running, lifecycle.Paused},
	lifecycle.Terminated:   {lifecycle.Initializing, lifecycle.Terminated},
}

// machineAt returns a machine brought to s along legal transitions.
func machineAt(t testing.TB, s lifecycle.State) *lifecycle.Machine {
	t.Helper()
	m := new(lifecycle.Machine)
	for _, next := range pathTo[s] {
		if _, err := m.To(next); err != nil {
			t.Fatalf("setting up %v: To(%v): %v", s, next, err)
		}
	}
	if got := m.State(); got != s {
		t.Fatalf("setting up: state = %v, want %v", got, s)
	}
	return m
}

// checkRefusal checks that err is a refusal naming from and to.
func checkRefusal(t *testing.T, err error, from, to lifecycle.State) {
	t.Helper()
	if err == nil {
		t.Fatalf("%v → %v: got nil error, want refusal", from, to)
	}
	if !errors.Is(err, lifecycle.ErrIllegalTransition) {
		t.Errorf("%v → %v: errors.Is(%v, ErrIllegalTransition) = false", from, to, err)
	}
	var te *lifecycle.TransitionError
	if !errors.As(err, &te) {
		t.Fatalf("%v → %v: errors.As(%v, *TransitionError) = false", from, to, err)
	}
	if te.From != from || te.To != to {
		t.Errorf("TransitionError = {%v, %v}, want {%v, %v}", te.From, te.To, from, to)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "lifecycle: ") || !strings.Contains(msg, from.String()+" → "+to.String()) {
		t.Errorf("error text %q does not name %v → %v", msg, from, to)
	}
}

func TestAllPairs(t *testing.T) {
	for _, from := range allStates {
		for _, to := range allStates {
			legal := legalPairs[[2]lifecycle.State{from, to}]
			direct := legal && to != lifecycle.Idle // Terminated → Idle only via Reset
			t.Run(from.String()+"→"+to.String(), func(t *testing.T) {
				if got := lifecycle.Legal(from, to); got != legal {
					t.Errorf("Legal(%v, %v) = %v, want %v", from, to, got, legal)
				}

				for _, method := range []string{"To", "Transition"} {
					m := machineAt(t, from)
					var err error
					if method == "To" {
						var left lifecycle.State
						left, err = m.To(to)
						if left != from {
							t.Errorf("To(%v) from %v returned from = %v", to, from, left)
						}
					} else {
						err = m.Transition(from, to)
					}

					if direct {
						if err != nil {
							t.Errorf("%s: %v → %v: unexpected error %v", method, from, to, err)
						}
						if got := m.State(); got != to {
							t.Errorf("%s: state = %v, want %v", method, got, to)
						}
						continue
					}
					checkRefusal(t, err, from, to)
					if got := m.State(); got != from {
						t.Errorf("%s: refused move changed state to %v", method, got)
					}
				}
			})
		}
	}
}

func TestTransitionNamesRealState(t *testing.T) {
	cases := []struct {
		at, from, to lifecycle.State
	}{
		{lifecycle.Paused, lifecycle.Running, lifecycle.Paused},
		{lifecycle.Ready, lifecycle.Running, lifecycle.Terminated},
		{lifecycle.Terminated, lifecycle.Running, lifecycle.Terminated},
		{lifecycle.Idle, lifecycle.Initializing, lifecycle.Ready},
	}
	for _, c := range cases {
		m := machineAt(t, c.at)
		err := m.Transition(c.from, c.to)
		checkRefusal(t, err, c.at, c.to)
		if got := m.State(); got != c.at {
			t.Errorf("refused Transition changed state %v to %v", c.at, got)
		}
	}
}

func TestZeroValueIsIdle(t *testing.T) {
	var m lifecycle.Machine
	if got := m.State(); got != lifecycle.Idle {
		t.Fatalf("zero Machine state = %v, want Idle", got)
	}
	if _, err := m.To(lifecycle.Initializing); err != nil {
		t.Fatal(err)
	}
}

func TestMachineIsSmall(t *testing.T) {
	// One atomic uint32, padded to the two words the engine laid its
	// agent record out around: never more.
	size := reflect.TypeFor[lifecycle.Machine]().Size()
	ptr := reflect.TypeFor[uintptr]().Size()
	if size > 2*ptr {
		t.Fatalf("sizeof(Machine) = %d, want at most %d", size, 2*ptr)
	}
}

func TestReset(t *testing.T) {
	for _, s := range allStates {
		m := machineAt(t, s)
		err := m.Reset()
		if s != lifecycle.Terminated {
			checkRefusal(t, err, s, lifecycle.Idle)
			if got := m.State(); got != s {
				t.Errorf("refused Reset changed %v to %v", s, got)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Reset from Terminated: %v", err)
		}
		if got := m.State(); got != lifecycle.Idle {
			t.Fatalf("after Reset state = %v, want Idle", got)
		}
		// A second Reset is refused: the machine is Idle now.
		checkRefusal(t, m.Reset(), lifecycle.Idle, lifecycle.Idle)
		// The recycled machine lives a second life.
		for _, next := range pathTo[lifecycle.Paused] {
			if _, err := m.To(next); err != nil {
				t.Fatalf("second life: To(%v): %v", next, err)
			}
		}
	}
}

// TestRaceTerminate has many goroutines race To(Terminated) on many machines
// while others toggle them between Running and Paused. Each machine must be
// terminated exactly once: one To(Terminated) succeeds, from Running or
// Paused, and every other is refused naming Terminated.
func TestRaceTerminate(t *testing.T) {
	const (
		machines    = 128
		terminators = 16
		togglers    = 4
	)
	ms := make([]*lifecycle.Machine, machines)
	for i := range ms {
		start := lifecycle.Running
		if i%2 == 1 {
			start = lifecycle.Paused
		}
		ms[i] = machineAt(t, start)
	}

	won := make([]atomic.Int32, machines)
	errs := make(chan error, terminators)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for g := range terminators {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for k := range ms {
				i := (k + g*7) % machines // spread the contention
				from, err := ms[i].To(lifecycle.Terminated)
				if err == nil {
					if from != lifecycle.Running && from != lifecycle.Paused {
						errs <- errors.New("terminated from " + from.String())
						return
					}
					won[i].Add(1)
					continue
				}
				var te *lifecycle.TransitionError
				if !errors.As(err, &te) || te.From != lifecycle.Terminated || te.To != lifecycle.Terminated {
					errs <- err
					return
				}
			}
		}()
	}
	for g := range togglers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for round := range 4 {
				for k := range ms {
					to := lifecycle.Paused
					if (k+g+round)%2 == 0 {
						to = lifecycle.Running
					}
					// Refusals are expected here; they must never corrupt.
					_, _ = ms[k].To(to)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, m := range ms {
		if got := m.State(); got != lifecycle.Terminated {
			t.Errorf("machine %d: state %v, want Terminated", i, got)
		}
		if n := won[i].Load(); n != 1 {
			t.Errorf("machine %d: %d winners, want 1", i, n)
		}
	}
}

// TestTransitionUnderToggling checks that Transition never reports a refusal
// naming the state it was asked to leave: when a racing goroutine moves the
// machine away and back between its swap and its re-read, it retries.
func TestTransitionUnderToggling(t *testing.T) {
	m := machineAt(t, lifecycle.Running)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from, to := lifecycle.Running, lifecycle.Paused
			if g == 1 {
				from, to = to, from
			}
			for range 2000 {
				err := m.Transition(from, to)
				var te *lifecycle.TransitionError
				if err != nil && (!errors.As(err, &te) || te.From == from) {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("refusal names the expected state: %v", err)
	}
}

func TestToDoesNotAllocate(t *testing.T) {
	m := machineAt(t, lifecycle.Running)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := m.To(lifecycle.Paused); err != nil {
			t.Fatal(err)
		}
		if err := m.Transition(lifecycle.Paused, lifecycle.Running); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("To+Transition allocate %v times per run, want 0", allocs)
	}
}

func BenchmarkMachineTo(b *testing.B) {
	run := func(b *testing.B, m *lifecycle.Machine) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			to := lifecycle.Paused
			if i&1 == 1 {
				to = lifecycle.Running
			}
			if _, err := m.To(to); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("serial", func(b *testing.B) {
		run(b, machineAt(b, lifecycle.Running))
	})
	b.Run("parallel", func(b *testing.B) {
		// One machine per goroutine, as with agents on separate loops.
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			m := new(lifecycle.Machine)
			for _, s := range pathTo[lifecycle.Running] {
				if _, err := m.To(s); err != nil {
					b.Error(err)
					return
				}
			}
			for i := 0; pb.Next(); i++ {
				to := lifecycle.Paused
				if i&1 == 1 {
					to = lifecycle.Running
				}
				if _, err := m.To(to); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
