package bench

import (
	"fmt"
	"sync"
	"testing"

	"github.com/agentloop/agentloop/engine"
)

// W3: fan-in. P goroutines outside the engine send to one agent.

var w3Producers = []int{2, 8}

func BenchmarkW3_FanIn(b *testing.B) {
	for _, p := range w3Producers {
		b.Run(fmt.Sprintf("producers=%d", p), func(b *testing.B) {
			e := newEngine(b, 2)
			per := (b.N + p - 1) / p
			total := per * p
			done := make(chan struct{})
			must(b, e.Register("sink", func() engine.Agent { return &sink{target: total, done: done} },
				engine.Mailbox(1<<16, engine.Block)))
			must(b, e.Start())
			ref, err := e.Spawn(engine.AgentID{Type: "sink", Key: "1"})
			must(b, err)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := 0; i < p; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					for j := 0; j < per; j++ {
						if err := ref.Send(payload); err != nil {
							panic(err)
						}
					}
				}()
			}
			b.ReportAllocs()
			b.ResetTimer()
			close(start)
			wg.Wait()
			<-done
			b.StopTimer()
			reportRate(b, total)
		})
	}
}

func BenchmarkW3_BaselineChannel(b *testing.B) {
	for _, p := range w3Producers {
		b.Run(fmt.Sprintf("producers=%d", p), func(b *testing.B) {
			per := (b.N + p - 1) / p
			total := per * p
			ch := make(chan []byte, 1024)
			done := make(chan struct{})
			go func() {
				for i := 0; i < total; i++ {
					<-ch
				}
				close(done)
			}()
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := 0; i < p; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					for j := 0; j < per; j++ {
						ch <- payload
					}
				}()
			}
			b.ReportAllocs()
			b.ResetTimer()
			close(start)
			wg.Wait()
			<-done
			b.StopTimer()
			reportRate(b, total)
		})
	}
}
