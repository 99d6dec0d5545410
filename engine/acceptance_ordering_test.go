package engine_test

// doc.go: "Messages from one sender to one agent arrive in the order they
// were sent." WithInboxSize: a full inbox "never loses a message".

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/agentloop/agentloop/engine"
)

// orderSink records, per sender tag, the sequence numbers it got.
type orderSink struct {
	mu  sync.Mutex
	got map[string][]int
}

func (s *orderSink) agent() engine.Agent {
	return &accFunc{recv: func(c *engine.Context, m engine.Message) {
		tag, n, _ := strings.Cut(string(m.Payload), ":")
		i, _ := strconv.Atoi(n)
		s.mu.Lock()
		s.got[tag] = append(s.got[tag], i)
		s.mu.Unlock()
	}}
}

func (s *orderSink) check(t *testing.T, tags []string, n int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tag := range tags {
		g := s.got[tag]
		if len(g) != n {
			t.Errorf("sender %s: %d of %d messages arrived", tag, len(g), n)
		}
		for i, v := range g {
			if v != i {
				t.Errorf("sender %s: message %d arrived at position %d", tag, v, i)
				break
			}
		}
	}
}

func TestAcceptanceOrderingOutsideSenders(t *testing.T) {
	const senders, n = 4, 400
	e := accNew(t, engine.WithLoops(2), engine.WithInboxSize(4))
	s := &orderSink{got: map[string][]int{}}
	accRegister(t, e, "sink", s.agent, engine.Mailbox(senders*n, engine.DropNewest))
	id := engine.AgentID{Type: "sink", Key: "1"}
	r := accSpawn(t, e, id, engine.OnLoop(1))
	accStart(t, e)
	var wg sync.WaitGroup
	var tags []string
	for k := 0; k < senders; k++ {
		tag := fmt.Sprint("s", k)
		tags = append(tags, tag)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				var err error
				if i%2 == 0 {
					err = r.Send([]byte(fmt.Sprintf("%s:%d", tag, i)))
				} else {
					err = e.SendID(id, []byte(fmt.Sprintf("%s:%d", tag, i)))
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	accIdle(t, e)
	s.check(t, tags, n)
}

func TestAcceptanceOrderingFromHandlers(t *testing.T) {
	for _, mode := range []string{"same", "cross"} {
		t.Run(mode, func(t *testing.T) {
			const n = 500
			e := accNew(t, engine.WithLoops(2), engine.WithInboxSize(2))
			s := &orderSink{got: map[string][]int{}}
			accRegister(t, e, "sink", s.agent, engine.Mailbox(4*n, engine.DropNewest))
			sid := engine.AgentID{Type: "sink", Key: "1"}
			sloop := 1
			if mode == "same" {
				sloop = 0
			}
			sref := accSpawn(t, e, sid, engine.OnLoop(sloop))
			if err := e.SubscribeAgent("o", sid); err != nil {
				t.Fatal(err)
			}
			errs := make(chan error, 1)
			accRegister(t, e, "src", accRecvOnly(func(c *engine.Context, m engine.Message) {
				for i := 0; i < n; i++ {
					p := []byte(fmt.Sprintf("%s:%d", c.ID().Key, i))
					var err error
					switch i % 3 {
					case 0:
						err = c.Send(sref, p)
					case 1:
						err = c.SendID(sid, p)
					case 2:
						err = c.Publish("o", p)
					}
					if err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}))
			tags := []string{"a", "b"}
			for _, k := range tags {
				accSpawn(t, e, engine.AgentID{Type: "src", Key: k}, engine.OnLoop(0))
			}
			accStart(t, e)
			for _, k := range tags {
				if err := e.SendID(engine.AgentID{Type: "src", Key: k}, nil); err != nil {
					t.Fatal(err)
				}
			}
			for range tags {
				if err := accRecv(t, errs, "sender"); err != nil {
					t.Fatal(err)
				}
			}
			accIdle(t, e)
			s.check(t, tags, n)
		})
	}
}
