package engine_test

// Publishing through type subscriptions while their instances come and go:
// the lookup of an instance by key takes no lock, so these tests hold it to
// what the registry promises, under -race.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agentloop/agentloop/engine"
)

// pubDelivery is one message as an instance received it.
type pubDelivery struct {
	self  engine.Ref
	key   string
	topic string
	round byte
}

// TestPublishTypeFollowsIncarnations: a type subscription reaches the live
// instance of its key, and once that instance has terminated and left the
// registry, the next publish spawns a new incarnation and reaches it, never
// the old one, pooled (the record is reused under the same key or another)
// or not. Nothing is dead-lettered.
func TestPublishTypeFollowsIncarnations(t *testing.T) {
	for _, pooled := range []bool{false, true} {
		t.Run(fmt.Sprintf("pooled=%v", pooled), func(t *testing.T) {
			e := accNew(t, engine.WithLoops(2))
			obs := accObserve(e)
			got := make(chan pubDelivery, 16)
			var opts []engine.RegisterOption
			if pooled {
				opts = append(opts, engine.Pooled())
			}
			accRegister(t, e, "dev", accRecvOnly(func(c *engine.Context, m engine.Message) {
				got <- pubDelivery{self: c.Self(), key: c.ID().Key, topic: m.Topic, round: m.Payload[0]}
			}), opts...)
			if err := e.SubscribeType("dev.*", "dev"); err != nil {
				t.Fatal(err)
			}
			accStart(t, e)
			seen := map[engine.Ref]bool{}
			keys := []string{"a", "b", "a", "a", "c", "b"}
			for round, key := range keys {
				topic := "dev." + key
				// Twice to the same incarnation, then it ends.
				for range 2 {
					if err := e.Publish(topic, []byte{byte(round)}); err != nil {
						t.Fatalf("round %d: Publish(%q): %v", round, topic, err)
					}
				}
				first := accRecv(t, got, "the first delivery")
				second := accRecv(t, got, "the second delivery")
				for _, d := range []pubDelivery{first, second} {
					if d.key != key || d.topic != topic || d.round != byte(round) {
						t.Fatalf("round %d: instance %q got %q of round %d, want %q of round %d", round, d.key, d.topic, d.round, topic, round)
					}
				}
				if first.self != second.self {
					t.Fatalf("round %d: two live incarnations of %q: %v and %v", round, key, first.self, second.self)
				}
				if seen[first.self] {
					t.Fatalf("round %d: incarnation %v of %q reached again after it ended", round, first.self, key)
				}
				seen[first.self] = true
				id := engine.AgentID{Type: "dev", Key: key}
				if err := e.Terminate(id); err != nil {
					t.Fatal(err)
				}
				waitGone(t, e, id)
			}
			if d := obs.allDead(); len(d) != 0 {
				t.Errorf("%d dead letters, first %+v", len(d), d[0])
			}
		})
	}
}

// TestPublishTypeChurn publishes on many keys from several goroutines while
// another terminates their instances at random, pooled, under -race. Every
// publish is accounted for (received, dead-lettered or refused with an
// error) and every message reaches an instance of its own key, even when
// records are reused under other keys meanwhile.
func TestPublishTypeChurn(t *testing.T) {
	const (
		keys       = 64
		publishers = 3
		perPub     = 3000
	)
	e := accNew(t, engine.WithLoops(2))
	obs := accObserve(e)
	var received, wrong atomic.Int64
	accRegister(t, e, "dev", accRecvOnly(func(c *engine.Context, m engine.Message) {
		received.Add(1)
		if m.Topic != "dev."+c.ID().Key {
			wrong.Add(1)
		}
	}), engine.Pooled())
	if err := e.SubscribeType("dev.*", "dev"); err != nil {
		t.Fatal(err)
	}
	accStart(t, e)
	topics := make([]string, keys)
	for i := range topics {
		topics[i] = "dev.k" + strconv.Itoa(i)
	}
	var refused atomic.Int64
	var wg sync.WaitGroup
	done := make(chan struct{})
	// Publishers hold their second half until an instance has been
	// terminated, so that churn overlaps publishing however the goroutines
	// are scheduled.
	churned := make(chan struct{})
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(p), 1))
			for i := range perPub {
				if i == perPub/2 {
					<-churned
				}
				if err := e.Publish(topics[r.IntN(keys)], nil); err != nil {
					if !errors.Is(err, engine.ErrTerminated) {
						t.Errorf("Publish: %v", err)
					}
					refused.Add(1)
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	r := rand.New(rand.NewPCG(9, 9))
	terminated := 0
	for churning := true; churning; {
		select {
		case <-done:
			churning = false
		default:
			id := engine.AgentID{Type: "dev", Key: "k" + strconv.Itoa(r.IntN(keys))}
			if err := e.Terminate(id); err == nil {
				if terminated++; terminated == 1 {
					close(churned)
				}
			} else if !errors.Is(err, engine.ErrUnknownAgent) {
				t.Fatalf("Terminate(%v): %v", id, err)
			}
			runtime.Gosched()
		}
	}
	accStop(t, e)
	dead := int64(len(obs.deadTo("dev")))
	if total := received.Load() + dead + refused.Load(); total != publishers*perPub {
		t.Errorf("%d published, %d received + %d dead-lettered + %d refused = %d", publishers*perPub, received.Load(), dead, refused.Load(), total)
	}
	if n := wrong.Load(); n != 0 {
		t.Errorf("%d messages reached an instance of another key", n)
	}
	if terminated == 0 {
		t.Errorf("no instance was terminated while publishing: the test churned nothing")
	}
}

// TestPublishTypeAllocs: publishing to the live instance of a type
// subscription allocates nothing, from outside or from a handler. (A
// lookup that missed the instance would fall back to a spawn that loses
// to it, which allocates a record.)
func TestPublishTypeAllocs(t *testing.T) {
	e := accNew(t, engine.WithLoops(2))
	var received atomic.Int64
	accRegister(t, e, "dev", accRecvOnly(func(*engine.Context, engine.Message) { received.Add(1) }),
		engine.Mailbox(1<<16, engine.DropNewest))
	for _, p := range []string{"telemetry.*.*", "features.*", "alerts.>"} {
		if err := e.SubscribeType(p, "dev"); err != nil {
			t.Fatal(err)
		}
	}
	accStart(t, e)
	topics := make([]string, 64)
	for i := range topics {
		topics[i] = fmt.Sprintf("telemetry.dev-%d.temp", i)
		if err := e.Publish(topics[i], nil); err != nil { // spawns the instance
			t.Fatal(err)
		}
	}
	accIdle(t, e)
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		_ = e.Publish(topics[i%len(topics)], nil)
		i++
	}); n != 0 {
		t.Errorf("Publish to a live instance allocates %v times", n)
	}
	accIdle(t, e)
	if got, want := received.Load(), int64(len(topics)+1001); got != want {
		t.Errorf("%d messages received, want %d", got, want)
	}
}
