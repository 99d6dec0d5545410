// Command quickstart is the program of the README's Quick start: device
// agents fed by a direct send and by a publish, a request from outside, and
// a graceful stop, with every error handled.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"time"

	"github.com/agentloop/agentloop/engine"
)

// Device is an agent. Its loop runs it one message at a time, so its fields
// need no locks.
type Device struct{ readings int }

func (d *Device) Receive(c *engine.Context, m engine.Message) {
	if m.IsRequest() { // a question from outside: how many readings so far?
		_ = c.Reply([]byte(strconv.Itoa(d.readings)))
		return
	}
	d.readings++ // m.Payload is shared with the sender: read it, never modify it
}

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(out io.Writer) error {
	e, err := engine.New(engine.WithLoops(2))
	if err != nil {
		return err
	}
	err = e.Register("device", func() engine.Agent { return &Device{} },
		engine.Priority(80), engine.Mailbox(1024, engine.DropOldest))
	if err != nil {
		return err
	}
	// One device agent per key, spawned on its first message:
	// telemetry.dev-7.temp reaches device/dev-7.
	if err := e.SubscribeType("telemetry.*.temp", "device"); err != nil {
		return err
	}
	if err := e.Start(); err != nil {
		return err
	}

	ref, err := e.Spawn(engine.AgentID{Type: "device", Key: "dev-42"})
	if err != nil {
		return err
	}
	if err := ref.Send([]byte("21.5")); err != nil { // through a Ref: no lookup
		return err
	}
	if err := e.Publish("telemetry.dev-7.temp", []byte("19.0")); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	n, err := ref.Request(ctx, nil) // after the send: one sender's messages keep their order
	if err != nil {
		return err // engine.ErrTimeout, and context.DeadlineExceeded, if no reply in time
	}
	fmt.Fprintf(out, "dev-42: %s reading(s)\n", n)

	// Stop delivers what is queued, runs OnTerminate hooks, ends its goroutines.
	if err := e.Stop(ctx); err != nil {
		return err
	}
	if err := ref.Send([]byte("22.0")); !errors.Is(err, engine.ErrStopped) {
		return fmt.Errorf("send after Stop: got %v, want ErrStopped", err)
	}
	s := e.Stats()
	fmt.Fprintf(out, "processed %d messages, %d dead letters\n", s.Processed, s.DeadLetters)
	return nil
}
