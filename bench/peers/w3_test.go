package peers

import (
	"fmt"
	"sync"
	"testing"
)

// W3: fan-in. P goroutines outside any actor system send to one actor,
// n messages in all (rounded up to a multiple of P).

var w3 = workload{
	name:    "W3",
	testN:   4000,
	metrics: []string{"msgs/s", "ns/msg"},
}

func init() {
	for _, p := range []int{2, 8} {
		for _, im := range []struct {
			name string
			send func(r *runner, s *sink) func()
		}{
			{"agentloop", w3Agentloop},
			{"channels", w3Channels},
			{"ants", w3Ants},
			{"protoactor", w3Protoactor},
		} {
			w3.impls = append(w3.impls, impl{
				name: fmt.Sprintf("producers=%d/impl=%s", p, im.name),
				run:  func(r *runner) { w3Run(r, p, im.send) },
			})
		}
	}
}

func BenchmarkW3(b *testing.B) { w3.bench(b) }

// w3Run starts p producers that each call the send function returned by
// mk per messages, and waits for the sink to count them all.
func w3Run(r *runner, p int, mk func(r *runner, s *sink) func()) {
	per := (r.n + p - 1) / p
	total := per * p
	s := newSink(total)
	send := mk(r, s)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < p; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for j := 0; j < per; j++ {
				send()
			}
		}()
	}
	r.start()
	close(start)
	r.waitGroup(&wg)
	r.wait(s.done)
	r.stop()
	r.expect("delivered", s.count, total)
	r.rate(total)
}

func w3Agentloop(r *runner, s *sink) func() {
	ref := agentloopSink(r, s)
	return func() {
		if err := ref.Send(payload); err != nil {
			panic(err)
		}
	}
}

func w3Channels(r *runner, s *sink) func() {
	a := spawnChanActor(mailboxSize, func([]byte) { s.add() })
	r.tb.Cleanup(a.stop)
	return func() { a.mailbox <- payload }
}

func w3Ants(r *runner, s *sink) func() {
	a := newAntsActor(r.newPool(), mailboxSize, func([]byte) { s.add() })
	return func() {
		if err := a.send(payload); err != nil {
			panic(err)
		}
	}
}

func w3Protoactor(r *runner, s *sink) func() {
	sys, pid := protoactorSink(r, s)
	return func() { sys.Root.Send(pid, boxed) }
}
