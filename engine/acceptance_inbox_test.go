package engine_test

// post.go: "a handler that posts to its own loop through the outside API
// slows down but cannot deadlock it." A loop must never wait on its own
// full inbox for good: nobody else would drain it.

import (
	"fmt"
	"testing"

	"github.com/agentloop/agentloop/engine"
)

func TestAcceptanceInboxHandlerPostsToItsOwnLoopFromOutsideAPI(t *testing.T) {
	const n = 12 // six times the inbox
	e := accNew(t, engine.WithLoops(1), engine.WithInboxSize(2))
	s := &orderSink{got: map[string][]int{}}
	accRegister(t, e, "sink", s.agent, engine.Mailbox(n, engine.Block))
	sink := accSpawn(t, e, engine.AgentID{Type: "sink", Key: "1"})
	done := make(chan error, 1)
	accRegister(t, e, "src", accRecvOnly(func(c *engine.Context, m engine.Message) {
		for i := 0; i < n; i++ {
			// Ref.Send is the outside API: it goes through the inbox of
			// this very loop, which nothing drains while we are here.
			if err := sink.Send([]byte(fmt.Sprintf("s:%d", i))); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}))
	src := accSpawn(t, e, engine.AgentID{Type: "src", Key: "1"})
	accStart(t, e)
	if err := src.Send([]byte("go")); err != nil {
		t.Fatal(err)
	}
	if err := accRecv(t, done, "the handler's sends to its own loop"); err != nil {
		t.Fatal(err)
	}
	accIdle(t, e)
	s.check(t, []string{"s"}, n)
}
