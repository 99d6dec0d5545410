package peers

import (
	"runtime"
	"sync/atomic"

	"github.com/panjf2000/ants/v2"
)

// antsThroughput is how many messages a drain task handles before it
// yields the processor, protoactor's default dispatcher throughput.
const antsThroughput = 300

const (
	antsIdle int32 = iota
	antsScheduled
)

// antsActor is an actor run by an ants pool: a bounded mailbox and a state
// word that is antsScheduled while a drain task for the actor is submitted
// or running. A sender that moves the state from idle to scheduled submits
// the drain task; the task goes back to idle only when it finds the
// mailbox empty, and re-checks after publishing idle so that a message
// that arrived meanwhile is not stranded. So at most one task runs receive
// at a time, each handing over to the next through the state word, and
// receive's state needs no lock (protoactor's mailbox does the same with
// its own dispatcher).
type antsActor[M any] struct {
	pool    *ants.Pool
	mailbox chan M
	state   atomic.Int32
	receive func(M)
	drainFn func() // a.drain, bound once so that Submit allocates nothing
}

// newAntsActor returns an idle actor with a mailbox of capacity messages;
// a sender to a full mailbox waits, as a channel sender does.
func newAntsActor[M any](pool *ants.Pool, capacity int, receive func(M)) *antsActor[M] {
	a := &antsActor[M]{pool: pool, mailbox: make(chan M, capacity), receive: receive}
	a.drainFn = a.drain
	return a
}

// send queues m and schedules the actor if it was idle. Safe from any
// goroutine, including the actor's own drain task and other actors'.
func (a *antsActor[M]) send(m M) error {
	a.mailbox <- m
	if a.state.Load() == antsIdle && a.state.CompareAndSwap(antsIdle, antsScheduled) {
		if err := a.pool.Submit(a.drainFn); err != nil {
			a.state.Store(antsIdle)
			return err
		}
	}
	return nil
}

func (a *antsActor[M]) drain() {
	for {
		n := 0
	batch:
		for ; n < antsThroughput; n++ {
			select {
			case m := <-a.mailbox:
				a.receive(m)
			default:
				break batch
			}
		}
		if n == antsThroughput {
			runtime.Gosched()
			continue
		}
		a.state.Store(antsIdle)
		if len(a.mailbox) == 0 || !a.state.CompareAndSwap(antsIdle, antsScheduled) {
			return
		}
	}
}

// chanActor is the hand-rolled actor: one goroutine ranging over one
// channel until the channel is closed.
type chanActor[M any] struct {
	mailbox chan M
	done    chan struct{}
}

func spawnChanActor[M any](capacity int, receive func(M)) *chanActor[M] {
	a := &chanActor[M]{mailbox: make(chan M, capacity), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for m := range a.mailbox {
			receive(m)
		}
	}()
	return a
}

// stop closes the mailbox and waits until the goroutine has handled what
// was queued and returned.
func (a *chanActor[M]) stop() {
	close(a.mailbox)
	<-a.done
}
