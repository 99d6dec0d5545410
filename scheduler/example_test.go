package scheduler_test

import (
	"fmt"

	"github.com/agentloop/agentloop/scheduler"
)

// agent stands for an entity such as the engine's agent. This one embeds
// its queue entry, whose Value points back at it, so queueing allocates
// nothing.
type agent struct {
	name  string
	entry scheduler.Entry[*agent]
}

func newAgent(name string, priority int) *agent {
	a := &agent{name: name}
	a.entry.Value = a
	if err := a.entry.SetPriority(priority); err != nil {
		panic(err)
	}
	return a
}

// Three agents of different priorities: the heaviest is served first. With
// nothing reported yet, every agent has full CPU and memory headroom, so
// weight = 0.6·priority/100 + 0.2 + 0.2.
func Example() {
	q, err := scheduler.New[*agent](scheduler.DefaultConfig())
	if err != nil {
		panic(err)
	}
	for _, a := range []*agent{newAgent("logger", 10), newAgent("device", 50), newAgent("inference", 90)} {
		q.Push(&a.entry)
	}
	for q.Len() > 0 {
		e, _ := q.Pop()
		fmt.Printf("%-9s weight %.2f\n", e.Value.name, e.Weight())
	}
	// Output:
	// inference weight 0.94
	// device    weight 0.70
	// logger    weight 0.46
}

// Two devices of equal priority; one burns 9 ms of handler time where the
// other burns 1 ms and leaves three times its backlog. Backlog counts from
// the first Push, handler time once an epoch has closed: here after two
// picks. The hog then has 10% CPU headroom and 25% memory headroom, and
// sinks below the light one.
func ExampleQueue_Account() {
	cfg := scheduler.DefaultConfig()
	cfg.EpochPicks = 2
	q, err := scheduler.New[*agent](cfg)
	if err != nil {
		panic(err)
	}
	hog, light := newAgent("hog", 50), newAgent("light", 50)
	q.Account(&hog.entry, 9_000_000, 64, 3<<10)
	q.Account(&light.entry, 1_000_000, 64, 1<<10)
	for epoch := range 2 {
		q.Push(&hog.entry)
		q.Push(&light.entry)
		for q.Len() > 0 {
			e, _ := q.Pop()
			fmt.Printf("epoch %d: %-5s weight %.2f\n", epoch, e.Value.name, e.Weight())
		}
	}
	// Output:
	// epoch 0: light weight 0.65
	// epoch 0: hog   weight 0.55
	// epoch 1: light weight 0.65
	// epoch 1: hog   weight 0.35
}

// The starvation bound of a configuration: an entry pushed behind k queued
// entries is popped after at most MaxWait + 2k picks of others.
func ExampleConfig_WaitBound() {
	cfg := scheduler.DefaultConfig()
	fmt.Println(cfg.WaitBound(0), cfg.WaitBound(63))
	// Output: 128 254
}
