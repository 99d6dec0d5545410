package lifecycle_test

import (
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/agentloop/agentloop/lifecycle"
)

// named returns an observer that appends name to *calls.
func named(calls *[]string, name string) lifecycle.Observer {
	return func(*lifecycle.Machine, lifecycle.State, lifecycle.State) {
		*calls = append(*calls, name)
	}
}

func TestObserversOrderAndRemove(t *testing.T) {
	var calls []string
	var obs lifecycle.Observers
	obs.Add(named(&calls, "a"))
	removeB := obs.Add(named(&calls, "b"))
	obs.Add(named(&calls, "c"))
	removeD := obs.Add(named(&calls, "b")) // same behaviour, separate registration
	if obs.Add(nil) == nil {
		t.Fatal("Add(nil) returned a nil remove")
	}
	if got := obs.Len(); got != 4 {
		t.Fatalf("Len() = %d, want 4", got)
	}

	var m lifecycle.Machine
	m.SetObservers(&obs)
	step := func(to lifecycle.State, want ...string) {
		t.Helper()
		calls = nil
		if _, err := m.To(to); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(calls, want) {
			t.Fatalf("→ %v: calls %v, want %v", to, calls, want)
		}
	}

	step(lifecycle.Initializing, "a", "b", "c", "b")
	removeB()
	removeB() // idempotent: must not remove anything else
	step(lifecycle.Ready, "a", "c", "b")
	removeD()
	step(lifecycle.Running, "a", "c")
	if got := obs.Len(); got != 2 {
		t.Fatalf("Len() = %d, want 2", got)
	}
}

func TestObserverSeesNewState(t *testing.T) {
	var obs lifecycle.Observers
	var got []string
	obs.Add(func(m *lifecycle.Machine, from, to lifecycle.State) {
		// Called after the swap: the machine is already in to.
		got = append(got, from.String()+"→"+to.String()+"@"+m.State().String())
	})
	var m lifecycle.Machine
	m.SetObservers(&obs)
	if _, err := m.To(lifecycle.Initializing); err != nil {
		t.Fatal(err)
	}
	if want := []string{"Idle→Initializing@Initializing"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestObserverReentrant checks that an observer may move the machine and
// remove itself: Notify holds no lock.
func TestObserverReentrant(t *testing.T) {
	var obs lifecycle.Observers
	var rec recorder
	var remove func()
	remove = obs.Add(func(m *lifecycle.Machine, from, to lifecycle.State) {
		if to == lifecycle.Initializing {
			remove()
			if _, err := m.To(lifecycle.Ready); err != nil {
				t.Error(err)
			}
		}
	})
	obs.Add(rec.observe)
	var m lifecycle.Machine
	m.SetObservers(&obs)
	if _, err := m.To(lifecycle.Initializing); err != nil {
		t.Fatal(err)
	}
	if got := m.State(); got != lifecycle.Ready {
		t.Fatalf("state = %v, want Ready", got)
	}
	// The nested Initializing → Ready notification reaches rec before the
	// outer Idle → Initializing one, whose snapshot still holds rec.
	want := [][2]lifecycle.State{
		{lifecycle.Initializing, lifecycle.Ready},
		{lifecycle.Idle, lifecycle.Initializing},
	}
	if got := rec.transitions(); !reflect.DeepEqual(got, want) {
		t.Fatalf("observed %v, want %v", got, want)
	}
	if got := obs.Len(); got != 1 {
		t.Fatalf("Len() = %d, want 1", got)
	}
}

func TestObserverPanic(t *testing.T) {
	type report struct {
		from, to lifecycle.State
		value    any
		stack    string
	}
	var reports []report
	var calls []string
	obs := lifecycle.Observers{
		OnPanic: func(_ *lifecycle.Machine, from, to lifecycle.State, v any, stack []byte) {
			reports = append(reports, report{from, to, v, string(stack)})
		},
	}
	obs.Add(named(&calls, "before"))
	obs.Add(func(*lifecycle.Machine, lifecycle.State, lifecycle.State) { panic("observer boom") })
	obs.Add(named(&calls, "after"))

	m := machineAt(t, lifecycle.Running)
	m.SetObservers(&obs)
	from, err := m.To(lifecycle.Paused)
	if err != nil || from != lifecycle.Running {
		t.Fatalf("To(Paused) = %v, %v; want Running, nil", from, err)
	}
	if got := m.State(); got != lifecycle.Paused {
		t.Fatalf("state after panicking observer = %v, want Paused", got)
	}
	if want := []string{"before", "after"}; !reflect.DeepEqual(calls, want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
	if len(reports) != 1 {
		t.Fatalf("OnPanic called %d times, want 1", len(reports))
	}
	r := reports[0]
	if r.from != lifecycle.Running || r.to != lifecycle.Paused || r.value != "observer boom" {
		t.Errorf("report = %v → %v %v", r.from, r.to, r.value)
	}
	if !strings.Contains(r.stack, "TestObserverPanic") {
		t.Errorf("stack does not show the panicking observer:\n%s", r.stack)
	}
	if got := obs.Panics(); got != 1 {
		t.Errorf("Panics() = %d, want 1", got)
	}
	// The machine still works.
	if _, err := m.To(lifecycle.Terminated); err != nil {
		t.Fatal(err)
	}
}

func TestObserverPanicWithoutHook(t *testing.T) {
	var calls []string
	var obs lifecycle.Observers // no OnPanic: recovered and counted only
	obs.Add(func(*lifecycle.Machine, lifecycle.State, lifecycle.State) { panic(nil) })
	obs.Add(named(&calls, "after"))
	var m lifecycle.Machine
	obs.Notify(&m, lifecycle.Idle, lifecycle.Initializing)
	if want := []string{"after"}; !reflect.DeepEqual(calls, want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
	if got := obs.Panics(); got != 1 {
		t.Fatalf("Panics() = %d, want 1", got)
	}
}

func TestOnPanicPanics(t *testing.T) {
	var calls []string
	obs := lifecycle.Observers{
		OnPanic: func(*lifecycle.Machine, lifecycle.State, lifecycle.State, any, []byte) {
			panic("hook boom")
		},
	}
	obs.Add(func(*lifecycle.Machine, lifecycle.State, lifecycle.State) { panic("boom") })
	obs.Add(named(&calls, "after"))
	var m lifecycle.Machine
	obs.Notify(&m, lifecycle.Idle, lifecycle.Initializing) // must not panic
	if want := []string{"after"}; !reflect.DeepEqual(calls, want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
}

// TestObserversConcurrent hammers Add, remove and Notify from several
// goroutines; run it under -race.
func TestObserversConcurrent(t *testing.T) {
	var obs lifecycle.Observers
	var m lifecycle.Machine
	permanent := 0
	var mu sync.Mutex
	obs.Add(func(*lifecycle.Machine, lifecycle.State, lifecycle.State) {
		mu.Lock()
		permanent++
		mu.Unlock()
	})
	const writers, notifiers, rounds = 4, 4, 200
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				remove := obs.Add(func(*lifecycle.Machine, lifecycle.State, lifecycle.State) {})
				remove()
				remove()
			}
		}()
	}
	for range notifiers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				obs.Notify(&m, lifecycle.Running, lifecycle.Paused)
			}
		}()
	}
	wg.Wait()
	if got := obs.Len(); got != 1 {
		t.Fatalf("Len() = %d after balanced Add/remove, want 1", got)
	}
	if permanent != notifiers*rounds {
		t.Fatalf("permanent observer called %d times, want %d", permanent, notifiers*rounds)
	}
}
