package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"

	"github.com/agentloop/agentloop/engine"
)

// tally counts the messages it received; its count survives a restart.
type tally struct{ n int }

func (t *tally) Receive(*engine.Context, engine.Message) { t.n++ }

func (t *tally) SaveState() ([]byte, uint32, error) {
	return strconv.AppendInt(nil, int64(t.n), 10), 1, nil
}

func (t *tally) LoadState(state []byte, schema uint32) error {
	n, err := strconv.Atoi(string(state))
	t.n = n
	return err
}

// Save the agents of one engine and re-create them in another, which
// might run in the next process: the counts go on from the saved ones.
func ExampleEngine_Snapshot() {
	newEngine := func() *engine.Engine {
		e, _ := engine.New(engine.WithLoops(2))
		_ = e.Register("tally", func() engine.Agent { return &tally{} })
		return e
	}
	e := newEngine()
	_ = e.Start()
	for _, k := range []string{"a", "b"} {
		r, _ := e.Spawn(engine.AgentID{Type: "tally", Key: k})
		for range len(k) + 2 {
			_ = r.Send(nil)
		}
	}
	_ = e.WaitIdle(context.Background())
	var buf bytes.Buffer
	info, err := e.Snapshot(context.Background(), &buf, engine.WithQueued())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("saved", info.Agents, "agents")
	_ = e.Stop(context.Background())

	e2 := newEngine()
	ri, err := e2.Restore(context.Background(), bytes.NewReader(buf.Bytes()))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("restored", ri.Restored)
	d, _ := engine.DecodeSnapshot(buf.Bytes())
	for _, r := range d.Records {
		fmt.Printf("%s: %s\n", r.ID, r.State)
	}
	_ = e2.Stop(context.Background())
	// Output:
	// saved 2 agents
	// restored [tally/a tally/b]
	// tally/a: 3
	// tally/b: 3
}
