package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/gateway"
)

// The W10 ingress alone, closed loop: one goroutine outside the engine
// hands telemetry for 40 000 topics (10 000 devices, 4 sensors each) to the
// device agents as fast as it can, and the devices only count. Ingress
// publish publishes each message on its topic, through the subscriptions of
// the gateway mix (the device type on "telemetry.*.*" keyed by the second
// token, two more type subscriptions, one agent on "alerts.>"); ingress
// route looks the device up in a topic → Ref table and sends to it, the
// bound a publish can approach. cpu-ns/msg is the process's CPU time (both
// loops and the producer) per message; the two taken in one run compare.

const (
	w10IngressDevices = 10_000
	w10IngressSensors = 4
)

type w10Device struct{ n int }

func (d *w10Device) Receive(*engine.Context, engine.Message) { d.n++ }

func benchW10Ingress(b *testing.B, route bool) {
	e := newEngine(b, 2)
	must(b, e.Register("device", func() engine.Agent { return new(w10Device) }, engine.Mailbox(1024, engine.DropOldest)))
	must(b, e.Register("other", func() engine.Agent { return new(w10Device) }))
	key := func(topic string) (string, bool) {
		rest, ok := strings.CutPrefix(topic, "telemetry.")
		if !ok {
			return "", false
		}
		k, _, _ := strings.Cut(rest, ".")
		return k, k != ""
	}
	must(b, e.SubscribeType("telemetry.*.*", "device", engine.KeyFunc(key)))
	must(b, e.SubscribeType("features.*", "other"))
	must(b, e.SubscribeType("aggregates.*", "other"))
	alert := engine.AgentID{Type: "other", Key: "alert"}
	_, err := e.Spawn(alert, engine.OnLoop(0))
	must(b, err)
	must(b, e.SubscribeAgent("alerts.>", alert))
	topics := make([]string, 0, w10IngressDevices*w10IngressSensors)
	route2 := make(map[string]engine.Ref, cap(topics))
	for d := range w10IngressDevices {
		id := engine.AgentID{Type: "device", Key: fmt.Sprintf("dev-%d", d)}
		ref, err := e.Spawn(id)
		must(b, err)
		for s := range w10IngressSensors {
			t := fmt.Sprintf("telemetry.%s.s%d", id.Key, s)
			topics = append(topics, t)
			route2[t] = ref
		}
	}
	must(b, e.Start())
	ctx := context.Background()
	must(b, e.WaitIdle(ctx))
	b.ReportAllocs()
	cpu0 := gateway.CPUTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := topics[i%len(topics)]
		if route {
			must(b, route2[t].Send(payload))
		} else {
			must(b, e.Publish(t, payload))
		}
	}
	must(b, e.WaitIdle(ctx))
	b.StopTimer()
	reportRate(b, b.N)
	b.ReportMetric(float64(gateway.CPUTime()-cpu0)/float64(b.N), "cpu-ns/msg")
}

// BenchmarkW10_IngressPublish: telemetry published on its topics.
func BenchmarkW10_IngressPublish(b *testing.B) { benchW10Ingress(b, false) }

// BenchmarkW10_BaselineIngressRoute: telemetry sent through a topic → Ref
// table.
func BenchmarkW10_BaselineIngressRoute(b *testing.B) { benchW10Ingress(b, true) }
