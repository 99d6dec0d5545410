package engine

import "github.com/agentloop/agentloop/messaging"

// Go subscribers: plain Go code (a dashboard, a bridge to another system, a
// test) that hears what the engine publishes, without being an agent. They
// subscribe on the engine's messaging.Bus; publish hands every message it
// accepts to that bus as well as to the subscribed agents.
//
// The bus is made on the first call to Bus and never replaced, so an engine
// whose Bus was never asked for pays one atomic load per publish (a nil
// pointer), and one whose bus is empty pays a second (its live count).

// Bus returns the engine's bus for Go subscribers. Every message the engine
// publishes (Engine.Publish, Context.Publish, Engine.PublishBuffer,
// Context.PublishBuffer) is also published on it, so a function or channel
// subscribed here hears the same topics as the agents do, through the
// messaging API:
//
//	sub, err := e.Bus().Subscribe("alerts.>", func(topic string, payload []byte) { ... })
//	sub, err := messaging.SubscribeWeak(e.Bus(), "telemetry.>", owner, (*Owner).OnTelemetry)
//	sub, err := messaging.SubscribeChan(e.Bus(), "alerts.>", owner, ch)
//
// The contract for a handler:
//
//   - It runs on the publishing goroutine, synchronously, before Publish
//     returns: the caller's goroutine for Engine.Publish, the publishing
//     agent's loop for Context.Publish. It must be quick and must not block,
//     nor call anything that waits for the engine (Stop, Request, a send to
//     a full Block mailbox): on a loop it holds up every agent of that loop.
//   - payload is shared, not copied, with the agents and the other
//     subscribers: it is read-only, and valid only during the call. The
//     payload of a PublishBuffer goes back to its pool once the last agent
//     has handled it, which may be as soon as Publish returns, so a handler
//     that keeps any of it copies it first (SubscribeChan copies for you). A handler sees the topic and payload; Message.Sender is not
//     passed.
//   - A panic is recovered and counted in Stats().Panics and in Bus().Panics;
//     the agents and the other subscribers still get the message, and
//     Publish does not report it.
//   - A subscription made with messaging.SubscribeWeak or SubscribeChan holds
//     its owner weakly and ends when the owner is garbage-collected (a
//     cleanup attached with runtime.AddCleanup); every subscription ends
//     with Subscription.Unsubscribe.
//
// Go subscribers are not agents: they have no mailbox and no overflow
// policy, are not counted in Stats, and produce no dead letters; a topic
// that only Go subscribers hear is, for the engine, a topic nobody hears.
// Publishing on the returned Bus itself reaches only its Go subscribers, as
// on a standalone bus: agents hear what goes through Engine.Publish and
// Context.Publish. After Stop, Publish is refused and the subscribers hear
// nothing more. The bus starts no goroutine.
//
// Concurrency-safe. Every call returns the same bus.
func (e *Engine) Bus() *messaging.Bus {
	if b := e.pubsub.gobus.Load(); b != nil {
		return b
	}
	b := messaging.NewBus(messaging.WithOnPanic(func(string, any, []byte) {
		e.panics.Add(1)
	}))
	if e.pubsub.gobus.CompareAndSwap(nil, b) {
		return b
	}
	return e.pubsub.gobus.Load()
}

// publishGo hands a message that publish accepted to the Go subscribers of
// b. An invalid topic reaches nobody here; publish reports it.
func publishGo(b *messaging.Bus, topic string, payload []byte) {
	if b.Count() > 0 {
		_, _ = b.Publish(topic, payload)
	}
}
