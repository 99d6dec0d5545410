package cluster_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agentloop/agentloop/cluster"
	"github.com/agentloop/agentloop/engine"
)

// benchPair is two nodes on one embedded server, a counting sink and an
// echo agent registered on both.
func benchPair(b *testing.B) (url string, ms []*member, got *atomic.Int64, done chan struct{}, target *atomic.Int64) {
	return benchPairOn(b, natsServer(b), nil)
}

// benchPairOn is benchPair on the server at url, with conf (if not nil)
// applied to each node's Config.
func benchPairOn(b *testing.B, url string, conf func(c *cluster.Config)) (_ string, ms []*member, got *atomic.Int64, done chan struct{}, target *atomic.Int64) {
	got, target, done = new(atomic.Int64), new(atomic.Int64), make(chan struct{}, 1)
	ms = startNodesB(b, url, conf, func(e *engine.Engine) {
		_ = e.Register("sink", func() engine.Agent {
			return fn(func(c *engine.Context, m engine.Message) {
				if got.Add(1) == target.Load() {
					done <- struct{}{}
				}
			})
		})
		_ = e.Register("echo", func() engine.Agent { return fn(func(c *engine.Context, m engine.Message) { _ = c.Reply(m.Payload) }) })
	})
	return url, ms, got, done, target
}

// BenchmarkCrossNodeSend: SendID from node a to an agent owned by node b,
// b.N messages of 64 bytes, until the last is handled.
func BenchmarkCrossNodeSend(b *testing.B) {
	_, ms, got, done, target := benchPair(b)
	to := engine.AgentID{Type: "sink", Key: keyOn([]string{"a", "b"}, "sink", "b")}
	payload := make([]byte, 64)
	target.Store(int64(b.N))
	b.ResetTimer()
	for range b.N {
		if err := ms[0].e.SendID(to, payload); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.StopTimer()
	_ = got
}

// BenchmarkRawNATSPublish: the same messages as raw nats.go publishes
// from one connection to a subscriber on another, on the same server.
func BenchmarkRawNATSPublish(b *testing.B) {
	url := natsServer(b)
	pub, sub := connect(b, url), connect(b, url)
	var n atomic.Int64
	done := make(chan struct{}, 1)
	target := int64(b.N)
	if _, err := sub.Subscribe("raw.x", func(*nats.Msg) {
		if n.Add(1) == target {
			done <- struct{}{}
		}
	}); err != nil {
		b.Fatal(err)
	}
	_ = sub.Flush()
	payload := make([]byte, 64)
	b.ResetTimer()
	for range b.N {
		if err := pub.Publish("raw.x", payload); err != nil {
			b.Fatal(err)
		}
	}
	<-done
}

// BenchmarkCrossNodeSendDurable: BenchmarkCrossNodeSend with
// Config.JetStream on both nodes: each SendID returns once the stream
// acknowledged the send, and node b takes it through its durable consumer.
// b.N messages of 64 bytes, until the last is handled.
func BenchmarkCrossNodeSendDurable(b *testing.B) {
	_, ms, _, done, target := benchPairOn(b, jetStreamServer(b), func(c *cluster.Config) { c.JetStream = true })
	to := engine.AgentID{Type: "sink", Key: keyOn([]string{"a", "b"}, "sink", "b")}
	payload := make([]byte, 64)
	target.Store(int64(b.N))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := ms[0].e.SendID(to, payload); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.StopTimer()
}

// BenchmarkRawJetStreamPublish: the same messages as raw nats.go
// JetStream publishes to a work-queue stream with file storage, each
// awaiting its PubAck (the acceptance of a durable send), taken by a pull
// consumer on another connection that acknowledges each, until the last
// is taken.
func BenchmarkRawJetStreamPublish(b *testing.B) {
	url := jetStreamServer(b)
	pub, sub := jsConnect(b, url), jsConnect(b, url)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := pub.CreateStream(ctx, jetstream.StreamConfig{
		Name:      "RAW",
		Subjects:  []string{"rawjs.>"},
		Retention: jetstream.WorkQueuePolicy,
		Storage:   jetstream.FileStorage,
	}); err != nil {
		b.Fatal(err)
	}
	cons, err := sub.CreateConsumer(ctx, "RAW", jetstream.ConsumerConfig{
		Durable:       "raw",
		FilterSubject: "rawjs.x",
		AckPolicy:     jetstream.AckExplicitPolicy,
	})
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	done := make(chan struct{}, 1)
	target := int64(b.N)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if err := m.Ack(); err != nil {
			b.Error(err)
		}
		if n.Add(1) == target {
			done <- struct{}{}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { cc.Stop(); <-cc.Closed() }()
	payload := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := pub.Publish(context.Background(), "rawjs.x", payload); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.StopTimer()
}

// BenchmarkCrossNodeRequest: Engine.RequestID round trip to an echo agent
// on the other node.
func BenchmarkCrossNodeRequest(b *testing.B) {
	_, ms, _, _, _ := benchPair(b)
	to := engine.AgentID{Type: "echo", Key: keyOn([]string{"a", "b"}, "echo", "b")}
	payload := make([]byte, 64)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if _, err := ms[0].e.RequestID(ctx, to, payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawNATSRequest: nats.go Request round trip to a responder on
// another connection, on the same server.
func BenchmarkRawNATSRequest(b *testing.B) {
	url := natsServer(b)
	req, resp := connect(b, url), connect(b, url)
	if _, err := resp.Subscribe("raw.req", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		b.Fatal(err)
	}
	_ = resp.Flush()
	payload := make([]byte, 64)
	b.ResetTimer()
	for range b.N {
		if _, err := req.Request("raw.req", payload, wait); err != nil {
			b.Fatal(err)
		}
	}
}

func connect(b *testing.B, url string) *nats.Conn {
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	return nc
}

func jsConnect(b *testing.B, url string) jetstream.JetStream {
	js, err := jetstream.New(connect(b, url))
	if err != nil {
		b.Fatal(err)
	}
	return js
}

func startNodesB(b *testing.B, url string, conf func(c *cluster.Config), reg func(e *engine.Engine)) []*member {
	var ms []*member
	for _, name := range []string{"a", "b"} {
		ev := make(chan cluster.Event, 16)
		cfg := cluster.Config{Name: name, URL: url, OnEvent: func(e cluster.Event) { ev <- e }}
		if conf != nil {
			conf(&cfg)
		}
		n, err := cluster.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		e, _ := engine.New(engine.WithLoops(1), engine.WithCluster(n))
		reg(e)
		_ = e.Start()
		if err := n.Join(e); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { n.Close(); _ = e.Stop(context.Background()) })
		ms = append(ms, &member{n, e, ev})
	}
	for _, m := range ms {
		for len(m.node.Members()) < 2 {
			<-m.events
		}
	}
	return ms
}
