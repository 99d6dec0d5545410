package engine_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
)

const snapWait = 10 * time.Second

// counter is a persistent test agent: its state is the sum of the
// payloads it received (decimal), its schema 7. It reports each delivery
// on seen, when set, with whether its state had been loaded by then.
type counter struct {
	sum     int64
	loaded  bool
	initSaw bool // Init ran after LoadState
	seen    chan<- delivery
	failIn  string // "save", "panic", "load": fail there
}

type delivery struct {
	key     string
	payload string
	loaded  bool
	initSaw bool
	sum     int64
}

func (a *counter) Init(*engine.Context) error { a.initSaw = a.loaded; return nil }

func (a *counter) Receive(c *engine.Context, m engine.Message) {
	n, _ := strconv.ParseInt(string(m.Payload), 10, 64)
	a.sum += n
	if a.seen != nil {
		a.seen <- delivery{key: c.ID().Key, payload: string(m.Payload), loaded: a.loaded, initSaw: a.initSaw, sum: a.sum}
	}
}

func (a *counter) SaveState() ([]byte, uint32, error) {
	switch a.failIn {
	case "save":
		return nil, 0, errors.New("disk on fire")
	case "panic":
		panic("save panics")
	}
	return strconv.AppendInt(nil, a.sum, 10), 7, nil
}

func (a *counter) LoadState(state []byte, schema uint32) error {
	if a.failIn == "load" {
		return errors.New("bad state")
	}
	if schema != 7 {
		return fmt.Errorf("schema %d", schema)
	}
	n, err := strconv.ParseInt(string(state), 10, 64)
	a.sum, a.loaded = n, true
	return err
}

func newSnapEngine(t testing.TB, factory func() engine.Agent, opts ...engine.Option) *engine.Engine {
	t.Helper()
	e, err := engine.New(append([]engine.Option{engine.WithLoops(4)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), snapWait)
		defer cancel()
		_ = e.Stop(ctx, engine.Immediate())
	})
	if err := e.Register("counter", factory); err != nil {
		t.Fatal(err)
	}
	return e
}

func cid(k string) engine.AgentID { return engine.AgentID{Type: "counter", Key: k} }

// sendAndWait sends payloads to the agents and waits until each is seen.
func sendAndWait(t *testing.T, e *engine.Engine, seen <-chan delivery, sends map[string][]string) {
	t.Helper()
	n := 0
	for k, ps := range sends {
		r, err := e.Lookup(cid(k))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if err := r.Send([]byte(p)); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	for ; n > 0; n-- {
		select {
		case <-seen:
		case <-time.After(snapWait):
			t.Fatal("deliveries lost")
		}
	}
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	seen := make(chan delivery, 100)
	e := newSnapEngine(t, func() engine.Agent { return &counter{seen: seen} })
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if _, err := e.Spawn(cid(k)); err != nil {
			t.Fatal(err)
		}
	}
	sendAndWait(t, e, seen, map[string][]string{"a": {"1", "2"}, "b": {"40"}, "c": {"-5"}})
	var buf bytes.Buffer
	info, err := e.Snapshot(context.Background(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	if info.Agents != 3 || info.Bytes != int64(buf.Len()) {
		t.Fatalf("info %+v, %d bytes written", info, buf.Len())
	}
	d, err := engine.DecodeSnapshot(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "3", "b": "40", "c": "-5"}
	for i, r := range d.Records {
		if k := []string{"a", "b", "c"}[i]; r.ID != cid(k) || string(r.State) != want[k] || r.Schema != 7 {
			t.Fatalf("record %d: %+v", i, r)
		}
	}

	seen2 := make(chan delivery, 100)
	e2 := newSnapEngine(t, func() engine.Agent { return &counter{seen: seen2} })
	ri, err := e2.Restore(context.Background(), bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(ri.Restored) != 3 || len(ri.Skipped) != 0 {
		t.Fatalf("restore info %+v", ri)
	}
	if err := e2.Start(); err != nil {
		t.Fatal(err)
	}
	r, _ := e2.Lookup(cid("a"))
	_ = r.Send([]byte("10"))
	got := <-seen2
	if got.sum != 13 || !got.loaded || !got.initSaw {
		t.Fatalf("after restore: %+v, want sum 13 with the state loaded before Init", got)
	}
}

// Saved messages come back ahead of new ones, and nothing reaches an
// agent before its LoadState.
func TestRestoreQueuedBeforeNewMessages(t *testing.T) {
	release := make(chan struct{})
	seen := make(chan delivery, 100)
	// The first engine's agent blocks in its first message so that the
	// next ones stay queued.
	e := newSnapEngine(t, func() engine.Agent { return &blocker{counter: counter{seen: seen}, release: release} })
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	r, err := e.Spawn(cid("q"))
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Send([]byte("1")) // handled; blocks in the second
	<-seen
	_ = r.Send([]byte("block"))
	for _, p := range []string{"2", "3", "4"} {
		_ = r.Send([]byte(p))
	}
	// The snapshot waits for the blocked handler: release it once the
	// barrier task is posted, which a Snapshot in another goroutine does
	// first. The queued messages are the three after it.
	type res struct {
		b    []byte
		info engine.SnapshotInfo
		err  error
	}
	out := make(chan res, 1)
	go func() {
		var buf bytes.Buffer
		info, err := e.Snapshot(context.Background(), &buf, engine.WithQueued())
		out <- res{buf.Bytes(), info, err}
	}()
	<-seen // "block" delivered and blocking
	close(release)
	s := <-out
	if s.err != nil {
		t.Fatal(s.err)
	}
	// The blocker handled "block" (0) and then, maybe, some of 2, 3, 4
	// before the barrier; the rest are queued. Either way state + queued
	// adds up to 10.
	d, err := engine.DecodeSnapshot(s.b)
	if err != nil {
		t.Fatal(err)
	}
	total, _ := strconv.Atoi(string(d.Records[0].State))
	var queued []string
	for _, m := range d.Records[0].Queued {
		n, _ := strconv.Atoi(string(m.Payload))
		total += n
		queued = append(queued, string(m.Payload))
	}
	if total != 10 || s.info.Messages != len(queued) {
		t.Fatalf("state %s + queued %v = %d, want 10 (info %+v)", d.Records[0].State, queued, total, s.info)
	}

	seen2 := make(chan delivery, 100)
	e2 := newSnapEngine(t, func() engine.Agent { return &counter{seen: seen2} })
	if err := e2.Start(); err != nil {
		t.Fatal(err)
	}
	ri, err := e2.Restore(context.Background(), bytes.NewReader(s.b))
	if err != nil || ri.Messages != len(queued) {
		t.Fatalf("restore: %+v, %v", ri, err)
	}
	r2, _ := e2.Lookup(cid("q"))
	_ = r2.Send([]byte("100"))
	var order []string
	for range len(queued) + 1 {
		got := <-seen2
		if !got.loaded || !got.initSaw {
			t.Fatalf("delivery %+v before LoadState", got)
		}
		order = append(order, got.payload)
	}
	if fmt.Sprint(order) != fmt.Sprint(append(queued, "100")) {
		t.Fatalf("delivery order %v, want %v then 100", order, queued)
	}
}

type blocker struct {
	counter
	release chan struct{}
}

func (b *blocker) Receive(c *engine.Context, m engine.Message) {
	b.counter.Receive(c, m)
	if string(m.Payload) == "block" {
		<-b.release
	}
}

func TestSnapshotSaveFailureNamesAgent(t *testing.T) {
	for _, mode := range []string{"save", "panic"} {
		t.Run(mode, func(t *testing.T) {
			e := newSnapEngine(t, func() engine.Agent { return &counter{} })
			_ = e.Register("bad", func() engine.Agent { return &counter{failIn: mode} })
			if err := e.Start(); err != nil {
				t.Fatal(err)
			}
			_, _ = e.Spawn(cid("ok"))
			_, _ = e.Spawn(engine.AgentID{Type: "bad", Key: "x"})
			if err := e.WaitIdle(context.Background()); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			_, err := e.Snapshot(context.Background(), &buf)
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte("bad/x")) {
				t.Fatalf("err %v, want one naming bad/x", err)
			}
			if mode == "panic" && !errors.Is(err, engine.ErrPanicked) {
				t.Fatalf("err %v, want ErrPanicked", err)
			}
			if buf.Len() != 0 {
				t.Fatalf("%d bytes written by a failed snapshot", buf.Len())
			}
			// The engine goes on.
			if _, err := e.Snapshot(context.Background(), &buf, engine.WithQueued()); err == nil {
				t.Fatal("second snapshot of the failing agent succeeded")
			}
		})
	}
}

func TestSnapshotRefusedOutsideRun(t *testing.T) {
	e := newSnapEngine(t, func() engine.Agent { return &counter{} })
	if _, err := e.Snapshot(context.Background(), &bytes.Buffer{}); !errors.Is(err, engine.ErrStopped) {
		t.Fatalf("before Start: %v", err)
	}
	inLoop := make(chan error, 1)
	_ = e.Register("snapper", func() engine.Agent {
		return agentFunc(func(c *engine.Context, m engine.Message) {
			_, err := e.Snapshot(context.Background(), &bytes.Buffer{})
			inLoop <- err
		})
	})
	_ = e.Start()
	r, _ := e.Spawn(engine.AgentID{Type: "snapper", Key: "s"})
	_ = r.Send(nil)
	if err := <-inLoop; !errors.Is(err, engine.ErrInLoop) {
		t.Fatalf("from a handler: %v", err)
	}
}

// A snapshot that cannot reach its barrier gives up with ctx, and leaves
// the engine working.
func TestSnapshotContextEnds(t *testing.T) {
	release := make(chan struct{})
	seen := make(chan delivery, 10)
	e := newSnapEngine(t, func() engine.Agent { return &blocker{counter: counter{seen: seen}, release: release} })
	_ = e.Start()
	r, _ := e.Spawn(cid("b"))
	_ = r.Send([]byte("block"))
	<-seen
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Snapshot(ctx, &bytes.Buffer{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	close(release)
	_ = r.Send([]byte("5"))
	if got := <-seen; got.sum != 5 {
		t.Fatalf("after an abandoned snapshot: %+v", got)
	}
	if _, err := e.Snapshot(context.Background(), &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
}

func TestRestoreSkipsAndFilters(t *testing.T) {
	e := newSnapEngine(t, func() engine.Agent { return &counter{} })
	_ = e.Register("other", func() engine.Agent { return &counter{} })
	_ = e.Start()
	for _, id := range []engine.AgentID{cid("a"), cid("b"), {Type: "other", Key: "o"}} {
		_, _ = e.Spawn(id)
	}
	_ = e.WaitIdle(context.Background())
	var buf bytes.Buffer
	if _, err := e.Snapshot(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	snap := buf.Bytes()

	t.Run("unknown type, existing agent, failing LoadState", func(t *testing.T) {
		fail := true
		e2 := newSnapEngine(t, func() engine.Agent {
			if fail {
				fail = false
				return &counter{failIn: "load"}
			}
			return &counter{}
		})
		_ = e2.Start()
		_, _ = e2.Spawn(cid("b"))
		ri, err := e2.Restore(context.Background(), bytes.NewReader(snap))
		if err != nil {
			t.Fatal(err)
		}
		why := map[engine.AgentID]error{}
		for _, s := range ri.Skipped {
			why[s.ID] = s.Err
		}
		// Spawn took the failing value: a's LoadState succeeds.
		if !errors.Is(why[engine.AgentID{Type: "other", Key: "o"}], engine.ErrUnknownType) ||
			!errors.Is(why[cid("b")], engine.ErrAgentExists) || len(ri.Restored) != 1 || ri.Restored[0] != cid("a") {
			t.Fatalf("restore info %+v", ri)
		}
	})
	t.Run("LoadState error", func(t *testing.T) {
		e2 := newSnapEngine(t, func() engine.Agent { return &counter{failIn: "load"} })
		ri, err := e2.Restore(context.Background(), bytes.NewReader(snap))
		if err != nil || len(ri.Restored) != 0 || len(ri.Skipped) != 3 {
			t.Fatalf("%+v, %v", ri, err)
		}
		if _, err := e2.Lookup(cid("a")); !errors.Is(err, engine.ErrUnknownAgent) {
			t.Fatalf("agent with a failed LoadState exists: %v", err)
		}
	})
	t.Run("no LoadState", func(t *testing.T) {
		e2 := newSnapEngine(t, func() engine.Agent { return agentFunc(func(*engine.Context, engine.Message) {}) })
		ri, _ := e2.Restore(context.Background(), bytes.NewReader(snap))
		if len(ri.Skipped) != 3 || !errors.Is(ri.Skipped[0].Err, engine.ErrNoStateLoader) {
			t.Fatalf("%+v", ri)
		}
	})
	t.Run("OnlyTypes and OnlyIDs", func(t *testing.T) {
		e2 := newSnapEngine(t, func() engine.Agent { return &counter{} })
		_ = e2.Register("other", func() engine.Agent { return &counter{} })
		ri, err := e2.Restore(context.Background(), bytes.NewReader(snap), engine.OnlyTypes("other"), engine.OnlyIDs(cid("b")))
		if err != nil || fmt.Sprint(ri.Restored) != "[counter/b other/o]" || ri.Filtered != 1 {
			t.Fatalf("%+v, %v", ri, err)
		}
	})
}

// fixTrailer recomputes the whole-file CRC of a snapshot that was edited.
func fixTrailer(b []byte) []byte {
	end := len(b) - 8
	binary.LittleEndian.PutUint32(b[end+4:], crc32.Checksum(b[:end+4], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func validSnapshot(t testing.TB) []byte {
	t.Helper()
	release := make(chan struct{})
	seen := make(chan delivery, 10)
	e := newSnapEngine(t, func() engine.Agent { return &blocker{counter: counter{seen: seen}, release: release} })
	_ = e.Start()
	for _, k := range []string{"x", "y"} {
		r, _ := e.Spawn(cid(k))
		_ = r.Send([]byte("3"))
		<-seen
	}
	r, _ := e.Lookup(cid("x"))
	_ = r.Send([]byte("block"))
	<-seen
	_ = r.Send([]byte("9"))
	go func() { close(release) }()
	var buf bytes.Buffer
	if _, err := e.Snapshot(context.Background(), &buf, engine.WithQueued()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRestoreRefusesBadInput(t *testing.T) {
	good := validSnapshot(t)
	type bad struct {
		name   string
		b      []byte
		sent   error
		offset int64
	}
	le32 := func(b []byte, at int, v uint32) []byte {
		c := bytes.Clone(b)
		binary.LittleEndian.PutUint32(c[at:], v)
		return fixTrailer(c)
	}
	future := bytes.Clone(good)
	binary.LittleEndian.PutUint16(future[8:], engine.SnapshotVersion+1)
	flagged := bytes.Clone(good)
	binary.LittleEndian.PutUint16(flagged[10:], 0x80)
	cases := []bad{
		{"empty", nil, engine.ErrCorruptSnapshot, 0},
		{"not a snapshot", []byte("hello, world, this is text"), engine.ErrCorruptSnapshot, 0},
		{"future version", future, engine.ErrSnapshotVersion, 8},
		{"unknown flag", flagged, engine.ErrSnapshotVersion, 10},
		{"huge record length", le32(good, 24, 0xfffffff0), engine.ErrCorruptSnapshot, 24},
		{"record length past the end", le32(good, 24, uint32(len(good))), engine.ErrCorruptSnapshot, 24},
		{"huge record count", le32(good, 12, 0xffffffff), engine.ErrCorruptSnapshot, 12},
		{"trailing bytes", append(bytes.Clone(good), 0), engine.ErrCorruptSnapshot, int64(len(good)) - 7},
		{"record checksum", func() []byte {
			c := bytes.Clone(good)
			c[24+4] ^= 1 // the first record's type length
			return fixTrailer(c)
		}(), engine.ErrCorruptSnapshot, 24 + 4 + int64(binary.LittleEndian.Uint32(good[24:]))},
	}
	for n := 1; n < len(good); n += 7 {
		cases = append(cases, bad{fmt.Sprintf("truncated to %d", n), good[:n], engine.ErrCorruptSnapshot, -1})
	}
	for i := 0; i < len(good)*8; i += 13 {
		c := bytes.Clone(good)
		c[i/8] ^= 1 << (i % 8)
		cases = append(cases, bad{fmt.Sprintf("bit %d flipped", i), c, nil, -1})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newSnapEngine(t, func() engine.Agent { return &counter{} })
			ri, err := e.Restore(context.Background(), bytes.NewReader(c.b))
			var se *engine.SnapshotError
			if !errors.As(err, &se) {
				t.Fatalf("err %v (%T), want a *SnapshotError", err, err)
			}
			if c.sent != nil && !errors.Is(err, c.sent) {
				t.Fatalf("err %v, want %v", err, c.sent)
			}
			if c.offset >= 0 && se.Offset != c.offset {
				t.Fatalf("offset %d, want %d (%v)", se.Offset, c.offset, err)
			}
			if len(ri.Restored) != 0 || e.Stats().Agents != 0 {
				t.Fatalf("restored %v from a refused input", ri.Restored)
			}
		})
	}
}

// bank agents pass amounts around: each message carries an amount, which
// the receiver adds to its balance before sending part of it on. The sum
// of balances and amounts in flight never changes, so a consistent
// snapshot WithQueued satisfies sum(states) + sum(queued) = total.
type bank struct {
	balance int64
	n       int
	hops    *atomic.Int64
}

func (b *bank) Receive(c *engine.Context, m engine.Message) {
	v, _ := strconv.ParseInt(string(m.Payload), 10, 64)
	b.balance += v
	send := min(b.balance, 3)
	b.balance -= send
	me, _ := strconv.Atoi(c.ID().Key)
	next := engine.AgentID{Type: "bank", Key: strconv.Itoa((me*7 + 3) % b.n)}
	if err := c.SendID(next, strconv.AppendInt(nil, send, 10)); err != nil {
		panic(err)
	}
	b.hops.Add(1)
}

func (b *bank) SaveState() ([]byte, uint32, error) {
	return strconv.AppendInt(nil, b.balance, 10), 1, nil
}

func (b *bank) LoadState(s []byte, _ uint32) (err error) {
	b.balance, err = strconv.ParseInt(string(s), 10, 64)
	return err
}

func bankTotal(t *testing.T, snap []byte) (total int64, agents int) {
	t.Helper()
	d, err := engine.DecodeSnapshot(snap)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range d.Records {
		v, _ := strconv.ParseInt(string(r.State), 10, 64)
		total += v
		for _, m := range r.Queued {
			v, _ := strconv.ParseInt(string(m.Payload), 10, 64)
			total += v
		}
	}
	return total, len(d.Records)
}

func TestSnapshotConsistentUnderLoad(t *testing.T) {
	const agents, tokens, amount = 64, 32, 5
	var hops atomic.Int64
	newBankEngine := func() *engine.Engine {
		e, err := engine.New(engine.WithLoops(4))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Stop(context.Background(), engine.Immediate()) })
		_ = e.Register("bank", func() engine.Agent { return &bank{n: agents, hops: &hops} }, engine.Mailbox(1024, engine.Block))
		return e
	}
	e := newBankEngine()
	_ = e.Start()
	for i := range agents {
		if _, err := e.Spawn(engine.AgentID{Type: "bank", Key: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range tokens {
		r, _ := e.Lookup(engine.AgentID{Type: "bank", Key: strconv.Itoa(i % agents)})
		if err := r.Send([]byte(strconv.Itoa(amount))); err != nil {
			t.Fatal(err)
		}
	}
	var last []byte
	for i := range 20 {
		// Wait for traffic between snapshots: by count, not time.
		for h := hops.Load(); hops.Load() < h+200; {
			runtimeYield()
		}
		var buf bytes.Buffer
		if _, err := e.Snapshot(context.Background(), &buf, engine.WithQueued()); err != nil {
			t.Fatal(err)
		}
		if got, n := bankTotal(t, buf.Bytes()); got != tokens*amount || n != agents {
			t.Fatalf("snapshot %d: total %d over %d agents, want %d over %d", i, got, n, tokens*amount, agents)
		}
		last = buf.Bytes()
	}
	// The restored engine keeps the invariant too, and the traffic goes on
	// from the saved messages alone.
	e2 := newBankEngine()
	ri, err := e2.Restore(context.Background(), bytes.NewReader(last))
	if err != nil || len(ri.Restored) != agents {
		t.Fatalf("%+v %v", ri, err)
	}
	_ = e2.Start()
	for h := hops.Load(); hops.Load() < h+500; {
		runtimeYield()
	}
	var buf bytes.Buffer
	if _, err := e2.Snapshot(context.Background(), &buf, engine.WithQueued()); err != nil {
		t.Fatal(err)
	}
	if got, _ := bankTotal(t, buf.Bytes()); got != tokens*amount {
		t.Fatalf("after restore: total %d, want %d", got, tokens*amount)
	}
}

// runtimeYield gives the loops the processor while a test waits for a
// count to move.
func runtimeYield() { runtime.Gosched() }

// agentFunc is an Agent made of a function.
type agentFunc func(*engine.Context, engine.Message)

func (f agentFunc) Receive(c *engine.Context, m engine.Message) { f(c, m) }
