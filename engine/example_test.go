package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/agentloop/agentloop/engine"
)

// greeter prints what it receives.
type greeter struct{}

func (greeter) Receive(c *engine.Context, m engine.Message) {
	fmt.Printf("%s got %q\n", c.ID(), m.Payload)
}

// Register a type, start the engine, spawn an agent, send to it and stop.
// A graceful Stop delivers everything already sent before it returns.
func Example() {
	e, err := engine.New(engine.WithLoops(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := e.Register("greeter", func() engine.Agent { return greeter{} }); err != nil {
		fmt.Println(err)
		return
	}
	if err := e.Start(); err != nil {
		fmt.Println(err)
		return
	}
	ref, err := e.Spawn(engine.AgentID{Type: "greeter", Key: "alice"})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = ref.Send([]byte("hello"))
	_ = ref.Send([]byte("how are you?"))
	// By ID: "bob" does not exist yet, so it is spawned on first use.
	_ = e.SendID(engine.AgentID{Type: "greeter", Key: "bob"}, []byte("hi"))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Stop(ctx); err != nil {
		fmt.Println(err)
	}
	// Unordered output:
	// greeter/alice got "hello"
	// greeter/alice got "how are you?"
	// greeter/bob got "hi"
}

func ExampleEngine_Spawn() {
	e, _ := engine.New(engine.WithLoops(2))
	_ = e.Register("device", func() engine.Agent { return greeter{} })
	_ = e.Start()

	id := engine.AgentID{Type: "device", Key: "dev-42"}
	ref, err := e.Spawn(id, engine.OnLoop(1))
	fmt.Println(ref.ID(), err)

	// Spawning a live ID returns its Ref and ErrAgentExists.
	again, err := e.Spawn(id)
	fmt.Println(again == ref, errors.Is(err, engine.ErrAgentExists))

	// Bad input gets an error naming the offending value.
	_, err = e.Spawn(engine.AgentID{Type: "lamp", Key: "l1"})
	fmt.Println(err)
	_, err = e.Spawn(id, engine.OnLoop(7))
	fmt.Println(err)

	_ = e.Stop(context.Background())
	// Output:
	// device/dev-42 <nil>
	// true true
	// engine: unknown agent type: "lamp"
	// engine: invalid option: OnLoop(7) with 2 loops
}

// player passes a counter back and forth with its peer until it reaches 4.
type player struct{ done chan<- struct{} }

func (p *player) Receive(c *engine.Context, m engine.Message) {
	n, _ := strconv.Atoi(string(m.Payload))
	fmt.Printf("%s got %d\n", c.ID().Key, n)
	if n == 4 {
		close(p.done)
		return
	}
	next := []byte(strconv.Itoa(n + 1))
	if !m.Sender.IsZero() {
		_ = c.Send(m.Sender, next) // reply through the sender's Ref: no lookup
		return
	}
	_ = c.SendID(engine.AgentID{Type: "player", Key: "pong"}, next)
}

// Two agents on different loops play ping-pong. Each message carries its
// sender's Ref, so the reply needs no lookup.
func ExampleContext_Send() {
	e, _ := engine.New(engine.WithLoops(2))
	done := make(chan struct{})
	_ = e.Register("player", func() engine.Agent { return &player{done: done} })
	_ = e.Start()
	_, _ = e.Spawn(engine.AgentID{Type: "player", Key: "ping"}, engine.OnLoop(0))
	_, _ = e.Spawn(engine.AgentID{Type: "player", Key: "pong"}, engine.OnLoop(1))

	_ = e.SendID(engine.AgentID{Type: "player", Key: "ping"}, []byte("1"))
	<-done
	_ = e.Stop(context.Background())
	// Output:
	// ping got 1
	// pong got 2
	// ping got 3
	// pong got 4
}

// reminder sets a timer when asked and reports when it fires.
type reminder struct{ done chan<- struct{} }

func (r *reminder) Receive(c *engine.Context, m engine.Message) {
	if string(m.Payload) == "start" {
		if _, err := c.After(0, nil); err != nil {
			fmt.Println(err)
		}
		_, _ = c.After(10*time.Millisecond, []byte("time's up"))
		fmt.Println("timer set")
		return
	}
	// A timer's message comes from no sender.
	fmt.Println(string(m.Payload), m.Sender.IsZero())
	close(r.done)
}

func ExampleContext_After() {
	e, _ := engine.New(engine.WithLoops(1))
	done := make(chan struct{})
	_ = e.Register("reminder", func() engine.Agent { return &reminder{done: done} })
	_ = e.Start()
	_ = e.SendID(engine.AgentID{Type: "reminder", Key: "r"}, []byte("start"))
	<-done
	_ = e.Stop(context.Background())
	// Output:
	// engine: invalid duration: After(0s)
	// timer set
	// time's up true
}

// printer prints its messages and says when it is paused.
type printer struct {
	got    chan<- struct{}
	paused chan<- struct{}
}

func (p *printer) Receive(_ *engine.Context, m engine.Message) {
	fmt.Println(string(m.Payload))
	if p.got != nil {
		p.got <- struct{}{}
	}
}

func (p *printer) OnPause(*engine.Context) {
	fmt.Println("paused")
	p.paused <- struct{}{}
}

// A paused agent keeps its messages; Resume delivers them in order.
func ExampleEngine_Pause() {
	e, _ := engine.New(engine.WithLoops(1))
	got, paused := make(chan struct{}, 1), make(chan struct{}, 1)
	_ = e.Register("printer", func() engine.Agent { return &printer{got: got, paused: paused} })
	_ = e.Start()
	id := engine.AgentID{Type: "printer", Key: "p"}
	_ = e.SendID(id, []byte("hello"))
	<-got // the agent is running

	_ = e.Pause(id)
	<-paused // OnPause ran on the agent's loop
	_ = e.SendID(id, []byte("one"))
	_ = e.SendID(id, []byte("two"))
	st, _ := e.State(id)
	fmt.Println("state:", st)
	fmt.Println(e.Pause(id))

	_ = e.Resume(id)
	<-got
	<-got
	_ = e.Stop(context.Background())
	// Output:
	// hello
	// paused
	// state: Paused
	// pause printer/p: lifecycle: illegal transition Paused → Paused
	// one
	// two
}

// deadLetters is a plugin that prints every dead letter.
type deadLetters struct{}

func (deadLetters) OnDeadLetter(d engine.DeadLetter) {
	fmt.Printf("dead letter to %s: %q (%v)\n", d.To, d.Message.Payload, d.Reason)
}

// A DeadLetterObserver sees every message that could not be delivered: here
// one that did not fit a full mailbox, then those an immediate Stop left.
func ExampleEngine_Use() {
	e, _ := engine.New(engine.WithLoops(1))
	e.Use(deadLetters{})
	got, paused := make(chan struct{}, 1), make(chan struct{}, 1)
	_ = e.Register("sensor", func() engine.Agent { return &printer{got: got, paused: paused} },
		engine.Mailbox(2, engine.DropNewest))
	_ = e.Start()
	id := engine.AgentID{Type: "sensor", Key: "s1"}
	_ = e.SendID(id, []byte("hello"))
	<-got

	_ = e.Pause(id)
	<-paused
	for _, p := range []string{"a", "b", "c"} {
		_ = e.SendID(id, []byte(p)) // "c" does not fit
	}
	_ = e.Stop(context.Background(), engine.Immediate())
	fmt.Println("dead letters:", e.Stats().DeadLetters)
	// Output:
	// hello
	// paused
	// dead letter to sensor/s1: "c" (engine: mailbox full)
	// dead letter to sensor/s1: "a" (engine: stopped)
	// dead letter to sensor/s1: "b" (engine: stopped)
	// dead letters: 3
}
