package engine_test

// Bad input: every error the docs promise, matched with errors.Is.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/messaging"
	"github.com/agentloop/agentloop/scheduler"
)

func TestAcceptanceErrorsOptions(t *testing.T) {
	cases := []struct {
		name string
		opt  engine.Option
		want error
	}{
		{"WithLoops(0)", engine.WithLoops(0), engine.ErrInvalidOption},
		{"WithLoops(1025)", engine.WithLoops(1025), engine.ErrInvalidOption},
		{"WithInboxSize(1)", engine.WithInboxSize(1), engine.ErrInvalidOption},
		{"WithQuantum(0)", engine.WithQuantum(0), engine.ErrInvalidOption},
		{"WithTimerTick(0)", engine.WithTimerTick(0), engine.ErrInvalidOption},
		{"WithDefaultRestarts(-1)", engine.WithDefaultRestarts(-1, time.Second), engine.ErrInvalidOption},
		{"WithDefaultRestarts window 0", engine.WithDefaultRestarts(1, 0), engine.ErrInvalidDuration},
		{"WithClock(nil)", engine.WithClock(nil), engine.ErrInvalidOption},
		{"WithWorkers(0, 0)", engine.WithWorkers(0, 0), engine.ErrInvalidOption},
		{"WithWorkers(1, -1)", engine.WithWorkers(1, -1), engine.ErrInvalidOption},
		{"WithWeights(-1, 0, 0)", engine.WithWeights(-1, 0, 0), engine.ErrInvalidOption},
		{"WithWeights(0, 0, 0)", engine.WithWeights(0, 0, 0), engine.ErrInvalidOption},
		{"WithScheduler(zero)", engine.WithScheduler(scheduler.Config{}), engine.ErrInvalidOption},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := engine.New(tc.opt)
			if e != nil {
				t.Error("New returned an engine with an error")
			}
			accIs(t, tc.name, err, tc.want)
		})
	}
}

func TestAcceptanceErrorsRegister(t *testing.T) {
	e := accNew(t, engine.WithLoops(1))
	f := accRecvOnly(nil)
	accRegister(t, e, "a", f)
	long := strings.Repeat("x", engine.MaxIDLen+1)
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"empty name", e.Register("", f), engine.ErrInvalidID},
		{"long name", e.Register(long, f), engine.ErrInvalidID},
		{"nil factory", e.Register("b", nil), engine.ErrNilFactory},
		{"duplicate", e.Register("a", f), engine.ErrDuplicateType},
		{"Priority(101)", e.Register("c", f, engine.Priority(101)), engine.ErrInvalidOption},
		{"Priority(-1)", e.Register("c", f, engine.Priority(-1)), engine.ErrInvalidOption},
		{"Batch(0)", e.Register("c", f, engine.Batch(0)), engine.ErrInvalidOption},
		{"Batch(MaxBatch+1)", e.Register("c", f, engine.Batch(engine.MaxBatch+1)), engine.ErrInvalidOption},
		{"Mailbox(0)", e.Register("c", f, engine.Mailbox(0, engine.DropNewest)), engine.ErrInvalidOption},
		{"Mailbox policy", e.Register("c", f, engine.Mailbox(1, engine.Overflow(9))), engine.ErrInvalidOption},
		{"Restarts(-1)", e.Register("c", f, engine.Restarts(-1, time.Second)), engine.ErrInvalidOption},
		{"Restarts window", e.Register("c", f, engine.Restarts(1, -time.Second)), engine.ErrInvalidDuration},
	}
	for _, tc := range cases {
		accIs(t, tc.name, tc.err, tc.want)
	}
}

func TestAcceptanceErrorsAgentsAndSends(t *testing.T) {
	e := accNew(t, engine.WithLoops(2))
	accRegister(t, e, "a", accRecvOnly(nil))
	accRegister(t, e, "nilf", func() engine.Agent { return nil })
	accStart(t, e)
	long := strings.Repeat("k", engine.MaxIDLen+1)
	bad := []engine.AgentID{{Type: "", Key: "k"}, {Type: "a", Key: ""}, {Type: "a", Key: long}, {Type: long, Key: "k"}}
	for _, id := range bad {
		accIs(t, "Validate "+id.String()[:min(20, len(id.String()))], id.Validate(), engine.ErrInvalidID)
		_, err := e.Spawn(id)
		accIs(t, "Spawn invalid id", err, engine.ErrInvalidID)
		accIs(t, "Send invalid id", e.SendID(id, nil), engine.ErrInvalidID)
		_, err = e.Lookup(id)
		accIs(t, "Lookup invalid id", err, engine.ErrInvalidID)
		accIs(t, "Pause invalid id", e.Pause(id), engine.ErrInvalidID)
		_, err = e.RequestID(context.Background(), id, nil)
		accIs(t, "Request invalid id", err, engine.ErrInvalidID)
		accIs(t, "SubscribeAgent invalid id", e.SubscribeAgent("x", id), engine.ErrInvalidID)
	}
	unknownType := engine.AgentID{Type: "nope", Key: "k"}
	_, err := e.Spawn(unknownType)
	accIs(t, "Spawn unknown type", err, engine.ErrUnknownType)
	accIs(t, "Send unknown type", e.SendID(unknownType, nil), engine.ErrUnknownType)
	_, err = e.Cron("@every 1m", unknownType, nil)
	accIs(t, "Cron unknown type", err, engine.ErrUnknownType)
	_, err = e.RequestID(context.Background(), unknownType, nil)
	accIs(t, "Request unknown type", err, engine.ErrUnknownType)
	accIs(t, "SubscribeType unknown type", e.SubscribeType("x", "nope"), engine.ErrUnknownType)

	ghost := engine.AgentID{Type: "a", Key: "ghost"}
	_, err = e.Lookup(ghost)
	accIs(t, "Lookup", err, engine.ErrUnknownAgent)
	_, err = e.State(ghost)
	accIs(t, "State", err, engine.ErrUnknownAgent)
	accIs(t, "Pause", e.Pause(ghost), engine.ErrUnknownAgent)
	accIs(t, "Resume", e.Resume(ghost), engine.ErrUnknownAgent)
	accIs(t, "Terminate", e.Terminate(ghost), engine.ErrUnknownAgent)
	accIs(t, "zero Ref Send", engine.Ref{}.Send(nil), engine.ErrUnknownAgent)

	id := engine.AgentID{Type: "a", Key: "1"}
	r := accSpawn(t, e, id)
	r2, err := e.Spawn(id)
	accIs(t, "Spawn twice", err, engine.ErrAgentExists)
	if r2 != r {
		t.Error("Spawn of a live ID must return its Ref")
	}
	_, err = e.Spawn(engine.AgentID{Type: "a", Key: "2"}, engine.OnLoop(-1))
	accIs(t, "OnLoop(-1)", err, engine.ErrInvalidOption)
	_, err = e.Spawn(engine.AgentID{Type: "a", Key: "2"}, engine.OnLoop(2))
	accIs(t, "OnLoop(loops)", err, engine.ErrInvalidOption)
	_, err = e.Spawn(engine.AgentID{Type: "nilf", Key: "1"})
	accIs(t, "factory returning nil", err, engine.ErrNilFactory)

	_, err = e.Cron("not a cron", id, nil)
	accIs(t, "Engine.Cron bad spec", err, engine.ErrInvalidSchedule)
	_, err = engine.ParseCron("61 * * * *")
	accIs(t, "ParseCron", err, engine.ErrInvalidSchedule)
	if _, err := engine.ParseCron("@every 5m"); err != nil {
		t.Errorf("ParseCron(@every 5m): %v", err)
	}

	accIs(t, "Publish invalid topic", e.Publish("a..b", nil), messaging.ErrInvalidTopic)
	if err := e.Publish("nobody.listens", nil); err != nil {
		t.Errorf("Publish to a topic without subscribers: %v", err)
	}
	accIs(t, "SubscribeAgent bad pattern", e.SubscribeAgent("a.>.b", id), messaging.ErrInvalidPattern)
	accIs(t, "SubscribeType bad pattern", e.SubscribeType("a*", "a"), messaging.ErrInvalidPattern)
	if err := e.SubscribeType("t.*", "a"); err != nil {
		t.Fatal(err)
	}
	accIs(t, "SubscribeType twice", e.SubscribeType("t.*", "a"), engine.ErrDuplicateSubscription)
	accIs(t, "KeyToken(-1)", e.SubscribeType("u.*", "a", engine.KeyToken(-1)), engine.ErrInvalidOption)
	accIs(t, "KeyFunc(nil)", e.SubscribeType("u.*", "a", engine.KeyFunc(nil)), engine.ErrInvalidOption)
	accIs(t, "UnsubscribeType missing", e.UnsubscribeType("v.*", "a"), messaging.ErrNotFound)
	accIs(t, "UnsubscribeAgent missing", e.UnsubscribeAgent("v", id), messaging.ErrNotFound)
	accIs(t, "PublishBuffer(nil)", e.PublishBuffer("t.1", nil), engine.ErrInvalidArgument)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = e.RequestID(ctx, id, nil)
	accIs(t, "Request with a cancelled ctx", err, context.Canceled)
	var h engine.ReplyHandle
	accIs(t, "zero ReplyHandle", h.Reply(nil), engine.ErrNoRequest)
	if engine.Timer.Stop(engine.Timer{}) {
		t.Error("the zero Timer stopped something")
	}
}

// Errors from inside a handler.
func TestAcceptanceErrorsContext(t *testing.T) {
	e := accNew(t, engine.WithLoops(1), engine.WithWorkers(1, 0))
	results := make(chan map[string]error, 1)
	release := make(chan struct{})
	accRegister(t, e, "a", accRecvOnly(func(c *engine.Context, m engine.Message) {
		r := map[string]error{}
		_, r["After(0)"] = c.After(0, nil)
		_, r["Every(-1)"] = c.Every(-time.Second, nil)
		_, r["Cron(bad)"] = c.Cron("bad spec", nil)
		r["Reply"] = c.Reply(nil)
		_, r["ReplyLater"] = c.ReplyLater()
		r["Request timeout 0"] = c.Request(c.Self(), nil, 0, func(*engine.Context, []byte, error) {})
		r["Request nil then"] = c.Request(c.Self(), nil, time.Second, nil)
		r["Request zero Ref"] = c.Request(engine.Ref{}, nil, time.Second, func(*engine.Context, []byte, error) {})
		r["Send zero Ref"] = c.Send(engine.Ref{}, nil)
		r["SendID unknown type"] = c.SendID(engine.AgentID{Type: "nope", Key: "1"}, nil)
		r["SendID invalid"] = c.SendID(engine.AgentID{Type: "a"}, nil)
		r["Subscribe bad"] = c.Subscribe("a..b")
		r["Publish bad"] = c.Publish("a b", nil)
		r["PublishBuffer nil"] = c.PublishBuffer("t", nil)
		r["Go nil"] = c.Go(nil, nil)
		first := c.Go(func(context.Context) ([]byte, error) { <-release; return nil, nil }, func(*engine.Context, []byte, error) {})
		if first != nil {
			r["first Go"] = first
		}
		r["Go overloaded"] = c.Go(func(context.Context) ([]byte, error) { return nil, nil }, func(*engine.Context, []byte, error) {})
		results <- r
	}))
	accStart(t, e)
	if err := e.SendID(engine.AgentID{Type: "a", Key: "1"}, nil); err != nil {
		t.Fatal(err)
	}
	r := accRecv(t, results, "handler")
	close(release)
	want := map[string]error{
		"After(0)": engine.ErrInvalidDuration, "Every(-1)": engine.ErrInvalidDuration,
		"Cron(bad)": engine.ErrInvalidSchedule, "Reply": engine.ErrNoRequest, "ReplyLater": engine.ErrNoRequest,
		"Request timeout 0": engine.ErrInvalidDuration, "Request nil then": engine.ErrInvalidArgument,
		"Request zero Ref": engine.ErrUnknownAgent, "Send zero Ref": engine.ErrUnknownAgent,
		"SendID unknown type": engine.ErrUnknownType, "SendID invalid": engine.ErrInvalidID,
		"Subscribe bad": messaging.ErrInvalidPattern, "Publish bad": messaging.ErrInvalidTopic,
		"PublishBuffer nil": engine.ErrInvalidArgument, "Go nil": engine.ErrInvalidArgument,
		"Go overloaded": engine.ErrOverloaded,
	}
	for k, w := range want {
		accIs(t, k, r[k], w)
	}
	if r["first Go"] != nil {
		t.Errorf("first Go: %v", r["first Go"])
	}
	accStop(t, e)
}
