package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"strconv"
	"testing"

	"github.com/agentloop/agentloop/engine"
)

// persisted is an agent with 16 bytes of state, as a device counter.
type persisted struct{ a, b uint64 }

func (p *persisted) Receive(*engine.Context, engine.Message) { p.a++ }

func (p *persisted) SaveState() ([]byte, uint32, error) {
	s := make([]byte, 16)
	binary.LittleEndian.PutUint64(s, p.a)
	binary.LittleEndian.PutUint64(s[8:], p.b)
	return s, 1, nil
}

func (p *persisted) LoadState(s []byte, _ uint32) error {
	p.a, p.b = binary.LittleEndian.Uint64(s), binary.LittleEndian.Uint64(s[8:])
	return nil
}

const snapAgents = 100_000

func persistedEngine(b *testing.B) *engine.Engine {
	e := newEngine(b, 2)
	if err := e.Register("p", func() engine.Agent { return &persisted{} }); err != nil {
		b.Fatal(err)
	}
	return e
}

func spawnPersisted(b *testing.B) *engine.Engine {
	e := persistedEngine(b)
	if err := e.Start(); err != nil {
		b.Fatal(err)
	}
	for i := range snapAgents {
		if _, err := e.Spawn(engine.AgentID{Type: "p", Key: strconv.Itoa(i)}); err != nil {
			b.Fatal(err)
		}
	}
	if err := e.WaitIdle(context.Background()); err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkSnapshot100k: one snapshot of 100 000 agents with 16 bytes of
// state each, into memory.
func BenchmarkSnapshot100k(b *testing.B) {
	e := spawnPersisted(b)
	var buf bytes.Buffer
	var info engine.SnapshotInfo
	b.ResetTimer()
	for range b.N {
		buf.Reset()
		var err error
		if info, err = e.Snapshot(context.Background(), &buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if info.Agents != snapAgents {
		b.Fatalf("%d agents saved", info.Agents)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/snapAgents, "ns/agent")
	b.ReportMetric(float64(info.Bytes)/snapAgents, "bytes/agent")
	b.ReportMetric(float64(info.Paused.Microseconds()), "µs-paused")
}

// BenchmarkRestore100k: restore of that snapshot into a new engine, up to
// the agents' Init having run.
func BenchmarkRestore100k(b *testing.B) {
	var buf bytes.Buffer
	if _, err := spawnPersisted(b).Snapshot(context.Background(), &buf); err != nil {
		b.Fatal(err)
	}
	snap := buf.Bytes()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		e := persistedEngine(b)
		if err := e.Start(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		ri, err := e.Restore(context.Background(), bytes.NewReader(snap))
		if err != nil || len(ri.Restored) != snapAgents {
			b.Fatalf("%d restored, %v", len(ri.Restored), err)
		}
		if err := e.WaitIdle(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = e.Stop(context.Background())
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/snapAgents, "ns/agent")
	b.ReportMetric(float64(len(snap))/snapAgents, "bytes/agent")
}
