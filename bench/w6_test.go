package bench

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/agentloop/agentloop/engine"
)

// W6 in the engine: an agent publishes to S subscriber agents on its own
// loop; each publish is one Context.Publish. The bus alone (package
// messaging) has its own W6 benchmarks; this one adds mailbox delivery.

var w6Subs = []int{1, 100, 10000}

type w6Publisher struct {
	topic string
	n     int
}

func (p *w6Publisher) Receive(c *engine.Context, _ engine.Message) {
	for i := 0; i < p.n; i++ {
		_ = c.Publish(p.topic, payload)
	}
}

type w6Sub struct {
	left *int
	done chan struct{}
}

func (s w6Sub) Receive(*engine.Context, engine.Message) {
	*s.left--
	if *s.left == 0 {
		s.done <- struct{}{}
	}
}

func BenchmarkW6_EnginePublish(b *testing.B) {
	for _, subs := range w6Subs {
		for _, pattern := range []string{"sensor.room1.temp", "sensor.*.temp"} {
			name := "exact"
			if pattern != "sensor.room1.temp" {
				name = "wildcard"
			}
			b.Run(fmt.Sprintf("subs=%d/%s", subs, name), func(b *testing.B) {
				e := newEngine(b, 2)
				done := make(chan struct{}, 1)
				var left int
				must(b, e.Register("sub", func() engine.Agent { return w6Sub{left: &left, done: done} }, engine.Mailbox(1<<20, engine.DropNewest)))
				pub := &w6Publisher{topic: "sensor.room1.temp"}
				must(b, e.Register("pub", func() engine.Agent { return pub }))
				for i := 0; i < subs; i++ {
					id := engine.AgentID{Type: "sub", Key: strconv.Itoa(i)}
					_, err := e.Spawn(id, engine.OnLoop(0))
					must(b, err)
					must(b, e.SubscribeAgent(pattern, id))
				}
				ref, err := e.Spawn(engine.AgentID{Type: "pub", Key: "p"}, engine.OnLoop(0))
				must(b, err)
				must(b, e.Start())
				// Warm the topic's cache entry and grow the mailboxes.
				const batch = 64
				left = batch * subs
				pub.n = batch
				must(b, ref.Send(nil))
				<-done
				rounds := (b.N + batch - 1) / batch
				b.ReportAllocs()
				b.ResetTimer()
				for r := 0; r < rounds; r++ {
					left = batch * subs
					pub.n = batch
					must(b, ref.Send(nil))
					<-done
				}
				b.StopTimer()
				pubs := rounds * batch
				b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(pubs), "ns/publish")
				b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(pubs*subs), "ns/delivery")
			})
		}
	}
}

// BenchmarkW6_BaselineMapBus: a map[string][]func bus with exact topics,
// each handler counting, the same subscriber counts.
func BenchmarkW6_BaselineMapBus(b *testing.B) {
	for _, subs := range w6Subs {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			bus := map[string][]func([]byte){}
			count := 0
			for i := 0; i < subs; i++ {
				bus["sensor.room1.temp"] = append(bus["sensor.room1.temp"], func(p []byte) { count += len(p) })
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for _, h := range bus["sensor.room1.temp"] {
					h(payload)
				}
			}
			b.StopTimer()
			if count != b.N*subs*len(payload) {
				b.Fatal("lost deliveries")
			}
			b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N), "ns/publish")
			b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N*subs), "ns/delivery")
		})
	}
}
