package engine

import (
	"context"
	"runtime"
	"sync"
	"testing"
)

// TestConcurrentWaitIdleAllReturn: several WaitIdle calls waiting at once
// all return when the engine goes idle. A parked loop signals the waiters
// once; each of them must see it, not only the first to look.
func TestConcurrentWaitIdleAllReturn(t *testing.T) {
	const waiters = 8
	for round := 0; round < 5; round++ {
		e := startedEngine(t, WithLoops(1))
		gate := make(chan struct{})
		mustRegister(t, e, "slow", recvAgent(func(*Context, Message) { <-gate }))
		r := mustSpawn(t, e, AgentID{"slow", "1"})
		if err := r.Send(nil); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		var wg sync.WaitGroup
		errs := make(chan error, waiters)
		for i := 0; i < waiters; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- e.WaitIdle(ctx)
			}()
		}
		for e.idleWaiters.Load() < waiters {
			runtime.Gosched()
		}
		close(gate)
		wg.Wait()
		cancel()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: a WaitIdle beside others: %v", round, err)
			}
		}
		stop(t, e)
	}
}
