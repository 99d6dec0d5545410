package cluster

// This file: the JetStream option. Sends to other nodes are published to
// one work-queue stream, on a subject per owner node, and each node takes
// its own subject's messages through a durable consumer named after it:
// what the stream accepted waits there for its owner, across the owner's
// crash and restart.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// durableAckWait is how long JetStream waits for a node to acknowledge a
// message it was given, on top of Config.BlockFor, before it gives the
// message again (to the node's next incarnation: the one given it crashed).
const durableAckWait = 30 * time.Second

// streamName is the default stream name for prefix: a valid stream name
// (no '.', '*', '>' or space).
func streamName(prefix string) string {
	r := strings.NewReplacer(".", "_", "*", "_", ">", "_", " ", "_")
	return strings.ToUpper(r.Replace(prefix)) + "_SENDS"
}

// joinStream makes (or finds) the stream and this node's durable consumer
// and starts taking its messages.
func (n *Node) joinStream() error {
	js, err := jetstream.New(n.nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:      n.cfg.Stream,
		Subjects:  []string{n.subjJS + ">"},
		Retention: jetstream.WorkQueuePolicy,
		Storage:   jetstream.FileStorage,
	})
	if err != nil {
		return fmt.Errorf("stream %s: %w", n.cfg.Stream, err)
	}
	// The consumer is made afresh: what an earlier incarnation of this
	// node was given and did not acknowledge (it crashed) is still in the
	// stream, and the new consumer gives it first, at once, in order,
	// rather than after the old one's ack wait. One message at a time: the
	// next is given only once this one is acknowledged.
	if err := js.DeleteConsumer(ctx, n.cfg.Stream, n.cfg.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("consumer %s: %w", n.cfg.Name, err)
	}
	cons, err := js.CreateConsumer(ctx, n.cfg.Stream, jetstream.ConsumerConfig{
		Durable:       n.cfg.Name,
		FilterSubject: n.subjJS + n.cfg.Name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       durableAckWait + n.cfg.BlockFor,
		MaxAckPending: 1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("consumer %s: %w", n.cfg.Name, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("consumer %s: %w", n.cfg.Name, err)
	}
	n.js, n.cons, n.iter = js, cons, it
	n.consDone = make(chan struct{})
	go n.consume()
	return nil
}

// consume hands each message of this node's subject to onFrame, then
// acknowledges it: after the engine took or refused the send (a refusal
// is nacked to its sender, as without the option).
func (n *Node) consume() {
	defer close(n.consDone)
	for {
		m, err := n.iter.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
				errors.Is(err, nats.ErrConnectionClosed) {
				return // closed; or a later incarnation of this node took over the consumer
			}
			slog.Warn("cluster: stream consumer", "node", n.cfg.Name, "err", err)
			continue
		}
		n.handle(m.Subject(), m.Data())
		if err := m.Ack(); err != nil {
			slog.Warn("cluster: stream ack", "node", n.cfg.Name, "err", err)
		}
	}
}

// stopStream stops taking messages and waits for the one being handled.
func (n *Node) stopStream() {
	if n.iter == nil {
		return
	}
	n.iter.Stop()
	<-n.consDone
}

// drainStream waits, bounded by ctx, until this node's subject of the
// stream is empty: what was routed here before a leave is in the engine
// before its snapshot.
func (n *Node) drainStream(ctx context.Context) {
	if n.cons == nil {
		return
	}
	t := time.NewTicker(n.cfg.Heartbeat)
	defer t.Stop()
	for {
		info, err := n.cons.Info(ctx)
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
			return
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			slog.Warn("cluster: leaving with messages in the stream", "node", n.cfg.Name)
			return
		}
	}
}
