package profiler_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/profiler"
)

// volley burns a little CPU per message and sends the ball back: two of
// them on two loops play a ping-pong, and with handoffs on (the default)
// one loop's goroutine runs the other's turns.
type volley struct {
	peer *engine.Ref
	stop *atomic.Bool
	sum  uint64
}

func (v *volley) play(c *engine.Context) {
	v.sum += burnMessage()
	if !v.stop.Load() {
		_ = c.Send(*v.peer, nil)
	}
}

type server struct{ volley }

func (s *server) Receive(c *engine.Context, _ engine.Message) { s.play(c) }

type answerer struct{ volley }

func (a *answerer) Receive(c *engine.Context, _ engine.Message) { a.play(c) }

const (
	serveReceive  = "github.com/agentloop/agentloop/profiler_test.(*server).Receive"
	answerReceive = "github.com/agentloop/agentloop/profiler_test.(*answerer).Receive"
)

// TestLabelsFollowHandoffs checks that a handler's CPU samples carry its
// own agent type when its loop's turns run on a peer loop's goroutine: the
// labels are the goroutine's, so they must follow the agent, not the loop.
func TestLabelsFollowHandoffs(t *testing.T) {
	if cpuProfileBusy(t) {
		return
	}
	var stop atomic.Bool
	var serveRef, answerRef engine.Ref
	e, err := engine.New(engine.WithLoops(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Register("serve", func() engine.Agent { return &server{volley{peer: &answerRef, stop: &stop}} }); err != nil {
		t.Fatal(err)
	}
	if err := e.Register("answer", func() engine.Agent { return &answerer{volley{peer: &serveRef, stop: &stop}} }); err != nil {
		t.Fatal(err)
	}
	if serveRef, err = e.Spawn(engine.AgentID{Type: "serve", Key: "1"}, engine.OnLoop(0)); err != nil {
		t.Fatal(err)
	}
	if answerRef, err = e.Spawn(engine.AgentID{Type: "answer", Key: "1"}, engine.OnLoop(1)); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stop.Store(true)
		if err := e.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	if err := serveRef.Send(nil); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	p, err := profiler.Start(profiler.Options{Sampling: 1, Window: 50 * time.Millisecond, Dir: dir, Kinds: profiler.CPU})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	var prof *profile.Profile
	poll(t, "labelled CPU samples of both agent types", func() bool {
		names := profileFiles(t, dir, "cpu")
		if len(names) == 0 {
			return false
		}
		prof, err = profiler.ReadProfile(filepath.Join(dir, names[len(names)-1]))
		return err == nil && hasFrame(prof, serveReceive, "serve") && hasFrame(prof, answerReceive, "answer")
	})
	if hasFrame(prof, serveReceive, "answer") || hasFrame(prof, answerReceive, "serve") {
		t.Error("a handler's samples carry the other agent type's label")
	}
	var borrowed uint64
	for _, l := range e.Stats().Loops {
		borrowed += l.Borrowed
	}
	if borrowed == 0 {
		t.Error("no loop ran its peer's turns: the test did not exercise handoffs")
	}
}
