package engine_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/enginetest"
)

// thermostat is a device agent: one instance per device key.
type thermostat struct{ out chan<- string }

func (t *thermostat) Receive(c *engine.Context, m engine.Message) {
	t.out <- fmt.Sprintf("%s got %s on %s", c.ID().Key, m.Payload, m.Topic)
}

// One type subscription routes every device's telemetry to that device's
// own agent, spawned on its first message.
func ExampleEngine_SubscribeType() {
	e, _ := engine.New(engine.WithLoops(2))
	out := make(chan string, 2)
	_ = e.Register("thermostat", func() engine.Agent { return &thermostat{out: out} })
	_ = e.SubscribeType("telemetry.*.temp", "thermostat") // key = the token under '*'
	_ = e.Start()

	_ = e.Publish("telemetry.kitchen.temp", []byte("21.5"))
	fmt.Println(<-out)
	_ = e.Publish("telemetry.attic.temp", []byte("30.1"))
	fmt.Println(<-out)

	_ = e.Stop(context.Background())
	// Output:
	// kitchen got 21.5 on telemetry.kitchen.temp
	// attic got 30.1 on telemetry.attic.temp
}

// alarm subscribes itself to every alert.
type alarm struct{ out chan<- string }

func (a *alarm) Init(c *engine.Context) error { return c.Subscribe("alerts.>") }
func (a *alarm) Receive(_ *engine.Context, m engine.Message) {
	a.out <- m.Topic + ": " + string(m.Payload)
}

func ExampleContext_Subscribe() {
	e, _ := engine.New(engine.WithLoops(1))
	out := make(chan string, 1)
	_ = e.Register("alarm", func() engine.Agent { return &alarm{out: out} })
	_ = e.Start()
	_, _ = e.Spawn(engine.AgentID{Type: "alarm", Key: "siren"})
	_ = e.WaitIdle(context.Background()) // Init has subscribed

	_ = e.Publish("alerts.fire.kitchen", []byte("smoke"))
	fmt.Println(<-out)
	_ = e.Stop(context.Background())
	// Output: alerts.fire.kitchen: smoke
}

// upper answers every request with its payload in upper case.
type upper struct{}

func (upper) Receive(c *engine.Context, m engine.Message) {
	if m.IsRequest() {
		_ = c.Reply([]byte(strings.ToUpper(string(m.Payload))))
	}
}

func ExampleEngine_Request() {
	e, _ := engine.New()
	_ = e.Register("upper", func() engine.Agent { return upper{} })
	_ = e.Start()

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	reply, err := e.RequestID(ctx, engine.AgentID{Type: "upper", Key: "1"}, []byte("hello"))
	fmt.Println(string(reply), err)
	_ = e.Stop(context.Background())
	// Output: HELLO <nil>
}

// client asks the upper agent from inside the engine; the answer comes back
// to the client's own loop.
type client struct{ out chan<- string }

func (cl *client) Receive(c *engine.Context, m engine.Message) {
	_ = c.RequestID(engine.AgentID{Type: "upper", Key: "1"}, m.Payload, time.Second,
		func(c *engine.Context, reply []byte, err error) {
			cl.out <- fmt.Sprintf("%s heard %s (%v)", c.ID().Key, reply, err)
		})
}

func ExampleContext_Request() {
	e, _ := engine.New(engine.WithLoops(2))
	out := make(chan string, 1)
	_ = e.Register("upper", func() engine.Agent { return upper{} })
	_ = e.Register("client", func() engine.Agent { return &client{out: out} })
	_ = e.Start()
	_ = e.SendID(engine.AgentID{Type: "client", Key: "c1"}, []byte("ping"))
	fmt.Println(<-out)
	_ = e.Stop(context.Background())
	// Output: c1 heard PING (<nil>)
}

// poller counts five-minute ticks and reports each with the clock time.
type poller struct {
	now func() time.Time
	log *[]string
}

func (p *poller) Init(c *engine.Context) error {
	_, err := c.Cron("*/5 * * * *", []byte("poll"))
	return err
}

func (p *poller) Receive(_ *engine.Context, m engine.Message) {
	*p.log = append(*p.log, p.now().Format("15:04"))
}

// A manual clock makes timer- and cron-driven agents testable without
// sleeping: an hour of five-minute ticks arrives in microseconds.
func Example_testClock() {
	t := &exampleT{}
	h := enginetest.New(t, engine.WithLoops(1))
	var log []string
	_ = h.Engine.Register("poller", func() engine.Agent { return &poller{now: h.Clock.Now, log: &log} })
	h.Start()
	_, _ = h.Engine.Spawn(engine.AgentID{Type: "poller", Key: "p"})
	h.Advance(time.Hour)
	fmt.Println(len(log), "ticks:", strings.Join(log, " "))
	t.cleanup()
	// Output: 12 ticks: 00:05 00:10 00:15 00:20 00:25 00:30 00:35 00:40 00:45 00:50 00:55 01:00
}

// exampleT stands in for *testing.T in the example.
type exampleT struct{ cleanups []func() }

func (t *exampleT) Helper()                      {}
func (t *exampleT) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }
func (t *exampleT) Cleanup(f func())             { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}
