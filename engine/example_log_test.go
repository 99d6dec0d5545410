package engine_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/agentloop/agentloop/engine"
)

// The engine logs an agent's panic and the end of its restart budget
// through the logger it is given.
func ExampleWithLogger() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "stack" {
				return slog.Attr{} // not deterministic
			}
			return a
		},
	}))
	e, _ := engine.New(engine.WithLoops(1), engine.WithLogger(logger))
	_ = e.Register("fragile", func() engine.Agent {
		return &accFunc{recv: func(*engine.Context, engine.Message) { panic("boom") }}
	}, engine.Restarts(0, time.Minute))
	_ = e.Start()
	_ = e.SendID(engine.AgentID{Type: "fragile", Key: "1"}, nil)
	_ = e.WaitIdle(context.Background())
	_ = e.Stop(context.Background())
	// Output:
	// level=ERROR msg="engine: agent panicked" agent=fragile/1 type=fragile loop=0 hook=Receive panic=boom
	// level=ERROR msg="engine: agent restart budget exhausted" agent=fragile/1 type=fragile loop=0 restarts=0 window=1m0s cause="engine: agent fragile/1 panicked in Receive: boom"
}

// An agent hands its context to the I/O it starts; it ends when the
// agent terminates.
func ExampleContext_Context() {
	e, _ := engine.New(engine.WithLoops(1))
	ctxs := make(chan context.Context, 1)
	_ = e.Register("client", func() engine.Agent {
		return &accFunc{recv: func(c *engine.Context, _ engine.Message) { ctxs <- c.Context() }}
	})
	_ = e.Start()
	id := engine.AgentID{Type: "client", Key: "1"}
	_ = e.SendID(id, nil)
	ctx := <-ctxs
	fmt.Println("running:", ctx.Err())
	_ = e.Terminate(id)
	<-ctx.Done()
	fmt.Println("terminated:", context.Cause(ctx))
	_ = e.Stop(context.Background())
	// Output:
	// running: <nil>
	// terminated: engine: agent terminated
}
