package engine_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/messaging"
)

// watchdog is an agent per device: it raises an alert for a hot reading.
type watchdog struct{}

func (watchdog) Receive(c *engine.Context, m engine.Message) {
	if t, err := strconv.ParseFloat(string(m.Payload), 64); err == nil && t > 30 {
		_ = c.Publish("alerts."+c.ID().Key+".hot", m.Payload)
	}
}

// dashboard is plain Go code that watches the engine's topics. The engine's
// bus holds it weakly: dropping the dashboard ends its subscriptions.
type dashboard struct{ readings int }

// onTelemetry runs on the publisher's goroutine and must not block; the
// payload is read in place, valid only during the call.
func (d *dashboard) onTelemetry(topic string, payload []byte) {
	d.readings++
	fmt.Printf("dashboard: %s %s\n", topic, payload)
}

// Go code hears what the engine publishes, from outside (Engine.Publish)
// and from agents (Context.Publish), through the engine's messaging.Bus: a
// function called in place, or a channel that gets copies.
func ExampleEngine_Bus() {
	e, err := engine.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = e.Register("watchdog", func() engine.Agent { return watchdog{} })
	_ = e.SubscribeType("telemetry.*.temp", "watchdog") // one watchdog per device

	dash := &dashboard{}
	if _, err := messaging.SubscribeWeak(e.Bus(), "telemetry.>", dash, (*dashboard).onTelemetry); err != nil {
		fmt.Println(err)
		return
	}
	alerts := make(chan messaging.Delivery, 8)
	if _, err := messaging.SubscribeChan(e.Bus(), "alerts.>", dash, alerts); err != nil {
		fmt.Println(err)
		return
	}
	_ = e.Start()

	// The dashboard is called before each Publish returns.
	_ = e.Publish("telemetry.dev-42.temp", []byte("21.5"))
	_ = e.Publish("telemetry.dev-7.temp", []byte("31.0"))
	// The alert comes from dev-7's watchdog, on its loop.
	select {
	case a := <-alerts:
		fmt.Printf("alert: %s %s\n", a.Topic, a.Payload)
	case <-time.After(5 * time.Second):
		fmt.Println("no alert")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.Stop(ctx)
	fmt.Println("readings:", dash.readings, "Go subscriptions:", e.Bus().Count())
	runtime.KeepAlive(dash)
	// Output:
	// dashboard: telemetry.dev-42.temp 21.5
	// dashboard: telemetry.dev-7.temp 31.0
	// alert: alerts.dev-7.hot 31.0
	// readings: 2 Go subscriptions: 2
}
