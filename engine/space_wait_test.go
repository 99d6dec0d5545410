package engine

// Outside senders waiting for room in full Block mailboxes (send.go's
// waitForRoom, deliver.go's signalSpace).

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Senders blocked on the full mailboxes of several agents of one loop all
// get through once the agents drain: a signal for room reaches every
// waiter of the loop, whichever agent it waits on.
func TestBlockWaitersOfSeveralAgentsAllGetRoom(t *testing.T) {
	const agents, senders, capacity = 4, 3, 2
	e := startedEngine(t, WithLoops(1))
	s := newSink()
	mustRegister(t, e, "bl", func() Agent { return s }, Mailbox(capacity, Block))
	refs := make([]Ref, agents)
	for k := range refs {
		refs[k] = mustSpawn(t, e, AgentID{"bl", strconv.Itoa(k)})
		pauseRunning(t, e, refs[k])
		for i := 0; i < capacity; i++ {
			if err := refs[k].Send([]byte("kept:" + strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, agents*senders)
	for k := range refs {
		for j := 0; j < senders; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := refs[k].Send([]byte(fmt.Sprintf("s%d:0", j))); err != nil {
					errs <- err
				}
			}()
		}
	}
	l := e.loops[0]
	eventually(t, "every sender waits for room", func() bool { return l.spaceWaiters.Load() == agents*senders }, waitTimeout)
	for _, r := range refs {
		if err := e.Resume(r.ID()); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	wait(t, done, "every blocked sender (a signal for room did not reach it)")
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	stop(t, e)
	for _, r := range refs {
		got := s.got(r.ID())
		if len(got) != capacity+senders {
			t.Errorf("%v got %d messages %q, want %d", r.ID(), len(got), got, capacity+senders)
			continue
		}
		for i, m := range got[:capacity] {
			if m != "kept:"+strconv.Itoa(i) {
				t.Errorf("%v got %q first, want the kept messages in order", r.ID(), got)
			}
		}
		for _, m := range got[capacity:] {
			if !strings.HasPrefix(m, "s") {
				t.Errorf("%v got %q after the kept messages", r.ID(), m)
			}
		}
	}
	if n := l.spaceWaiters.Load(); n != 0 {
		t.Errorf("spaceWaiters = %d after every sender returned", n)
	}
}

// BenchmarkBlockSendWaitsForRoom: one outside sender to an agent whose
// Block mailbox holds one message, so that nearly every send waits for the
// loop to make room and is woken by it.
func BenchmarkBlockSendWaitsForRoom(b *testing.B) {
	e := startedEngine(b, WithLoops(2))
	done := make(chan struct{})
	n := 0
	mustRegister(b, e, "bl", recvAgent(func(c *Context, m Message) {
		if n++; n == b.N {
			close(done)
		}
	}), Mailbox(1, Block))
	r := mustSpawn(b, e, AgentID{"bl", "1"})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := r.Send(nil); err != nil {
			b.Fatal(err)
		}
	}
	<-done
}
