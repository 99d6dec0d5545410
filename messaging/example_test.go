package messaging_test

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/agentloop/agentloop/messaging"
)

func ExampleBus() {
	bus := messaging.NewBus(messaging.WithOnPanic(func(topic string, v any, _ []byte) {
		fmt.Printf("handler panicked on %s: %v\n", topic, v)
	}))

	// All three patterns match telemetry.dev-42.temp. Subscribers of one
	// pattern are called in the order they subscribed; the order between
	// patterns is unspecified.
	_, _ = bus.Subscribe("telemetry.>", func(topic string, payload []byte) {
		fmt.Printf("archive  %s %s\n", topic, payload)
	})
	_, _ = bus.Subscribe("telemetry.*.temp", func(topic string, payload []byte) {
		panic("sensor offline")
	})
	sub, _ := bus.Subscribe("telemetry.dev-42.temp", func(topic string, payload []byte) {
		fmt.Printf("dev-42   %s %s\n", topic, payload)
	})

	n, err := bus.Publish("telemetry.dev-42.temp", []byte("21.5"))
	fmt.Println("delivered:", n, err)

	_ = sub.Unsubscribe()
	n, _ = bus.Publish("telemetry.dev-42.temp", []byte("21.6"))
	fmt.Println("delivered:", n, "panics so far:", bus.Panics())

	_, err = bus.Publish("telemetry.*.temp", nil)
	fmt.Println(errors.Is(err, messaging.ErrInvalidTopic), err)
	// Unordered output:
	// archive  telemetry.dev-42.temp 21.5
	// handler panicked on telemetry.dev-42.temp: sensor offline
	// dev-42   telemetry.dev-42.temp 21.5
	// delivered: 2 <nil>
	// archive  telemetry.dev-42.temp 21.6
	// handler panicked on telemetry.dev-42.temp: sensor offline
	// delivered: 1 panics so far: 2
	// true messaging: invalid topic: "telemetry.*.temp": wildcard in a topic
}

// A Device is an agent that lives as long as something else references it.
type Device struct {
	ID       string
	Readings int
}

// OnTemp handles a reading. As a method expression, (*Device).OnTemp does not
// capture any Device, so the subscription does not keep one alive.
func (d *Device) OnTemp(topic string, payload []byte) {
	d.Readings++
	fmt.Printf("%s got %s on %s\n", d.ID, payload, topic)
}

func ExampleSubscribeWeak() {
	var bus messaging.Bus
	dev := &Device{ID: "dev-42"}
	if _, err := messaging.SubscribeWeak(&bus, "telemetry.dev-42.*", dev, (*Device).OnTemp); err != nil {
		panic(err)
	}
	_, _ = bus.Publish("telemetry.dev-42.temp", []byte("21.5"))
	fmt.Println("readings:", dev.Readings, "subscriptions:", bus.Count())

	// dev is not used below, and the bus does not keep it alive: the
	// collector frees it and the subscription goes away by itself.
	for deadline := time.Now().Add(10 * time.Second); bus.Count() > 0 && time.Now().Before(deadline); {
		runtime.GC()
		runtime.Gosched()
	}
	n, _ := bus.Publish("telemetry.dev-42.temp", []byte("21.6"))
	fmt.Println("subscriptions:", bus.Count(), "delivered:", n)
	// Output:
	// dev-42 got 21.5 on telemetry.dev-42.temp
	// readings: 1 subscriptions: 1
	// subscriptions: 0 delivered: 0
}

func ExampleSublist() {
	// A Sublist routes topics to any comparable values: here, agent names.
	var routes messaging.Sublist[string]
	_ = routes.Insert("telemetry.*.temp", "thermostat")
	_ = routes.Insert("telemetry.>", "archiver")
	_ = routes.Insert("alerts.>", "pager")
	_ = routes.Insert("telemetry.dev-42.*", "dev-42")

	for _, topic := range []string{"telemetry.dev-42.temp", "telemetry.dev-7.hum", "alerts.fire"} {
		// Match returns a shared, read-only slice: clone before sorting.
		fmt.Println(topic, "→", slices.Sorted(slices.Values(routes.Match(topic))))
	}

	err := routes.Remove("alerts.>", "nobody")
	fmt.Println(errors.Is(err, messaging.ErrNotFound), routes.Count())
	// Output:
	// telemetry.dev-42.temp → [archiver dev-42 thermostat]
	// telemetry.dev-7.hum → [archiver]
	// alerts.fire → [pager]
	// true 4
}
