package dashboard_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/agentloop/agentloop/dashboard"
	"github.com/agentloop/agentloop/engine"
)

func publish(t testing.TB, e *engine.Engine, topic string, payload []byte) {
	t.Helper()
	if err := e.Publish(topic, payload); err != nil {
		t.Fatalf("Publish(%q): %v", topic, err)
	}
}

// message reads the next event as a stream message.
func message(t testing.TB, s *stream) dashboard.StreamMessage {
	t.Helper()
	ev := s.next(t)
	if ev.name != "" {
		t.Fatalf("event %q (%s), want a message", ev.name, ev.data)
	}
	var m dashboard.StreamMessage
	if err := json.Unmarshal([]byte(ev.data), &m); err != nil {
		t.Fatal(err)
	}
	if ev.id != strconv.FormatUint(m.Seq, 10) {
		t.Errorf("event id %q, seq %d", ev.id, m.Seq)
	}
	return m
}

// TestStreamMatching: the stream carries the matching topics only, in
// order, text as text and binary as base64, numbered.
func TestStreamMatching(t *testing.T) {
	e := startEngine(t)
	_, base := manual(t, e, dashboard.Options{})
	s := open(t, base+"stream?topic="+url.QueryEscape("alerts.>"))
	var ready dashboard.StreamReady
	s.nextNamed(t, "ready", &ready)
	if ready.Pattern != "alerts.>" || ready.Buffer != 256 {
		t.Errorf("ready %+v", ready)
	}
	binary := []byte{0xff, 0x00, 0xfe, 'a'}
	publish(t, e, "alerts.fire", []byte("hot"))
	publish(t, e, "telemetry.temp", []byte("not this"))
	publish(t, e, "alerts", []byte("nor this: > wants one token more"))
	publish(t, e, "alerts.bin.x", binary)
	publish(t, e, "alerts.text", []byte("ünïcode"))

	m := message(t, s)
	if m.Topic != "alerts.fire" || m.Payload != "hot" || m.Encoding != "utf8" || m.Seq != 1 {
		t.Errorf("first: %+v", m)
	}
	m = message(t, s)
	got, err := base64.StdEncoding.DecodeString(m.Payload)
	if m.Topic != "alerts.bin.x" || m.Encoding != "base64" || err != nil || !bytes.Equal(got, binary) || m.Seq != 2 {
		t.Errorf("binary: %+v (decoded %x, %v)", m, got, err)
	}
	m = message(t, s)
	if m.Topic != "alerts.text" || m.Payload != "ünïcode" || m.Encoding != "utf8" || m.Seq != 3 {
		t.Errorf("text: %+v", m)
	}
}

// TestStreamDropsOldest: a client slower than the publishers keeps the
// newest StreamBuffer messages and is told how many were dropped.
func TestStreamDropsOldest(t *testing.T) {
	e := startEngine(t)
	d, base := manual(t, e, dashboard.Options{StreamBuffer: 4})
	release := d.HoldStreams()
	s := open(t, base+"stream?topic=a.*")
	s.nextNamed(t, "ready", nil)
	for i := 1; i <= 10; i++ {
		publish(t, e, "a.b", []byte(strconv.Itoa(i)))
	}
	release()
	var dr dashboard.StreamDropped
	s.nextNamed(t, "dropped", &dr)
	if dr.Dropped != 6 || dr.Total != 6 {
		t.Errorf("dropped %+v, want 6 of 6", dr)
	}
	for i := 7; i <= 10; i++ {
		m := message(t, s)
		if m.Payload != strconv.Itoa(i) || m.Seq != uint64(i) {
			t.Errorf("after the drop: %+v, want message %d", m, i)
		}
	}
	if matched, dropped, _ := d.StreamTotals(); matched != 10 || dropped != 6 {
		t.Errorf("totals: %d matched, %d dropped; want 10, 6", matched, dropped)
	}
	// Later messages flow again, numbered on.
	publish(t, e, "a.c", []byte("11"))
	if m := message(t, s); m.Seq != 11 || m.Topic != "a.c" {
		t.Errorf("after: %+v", m)
	}
}

// TestStreamBadPattern: 400 with a message naming the pattern, and no
// stream counted.
func TestStreamBadPattern(t *testing.T) {
	e := startEngine(t)
	_, base := manual(t, e, dashboard.Options{MaxStreams: 1})
	for _, q := range []string{"", "topic=", "topic=" + url.QueryEscape("a.>.b"), "topic=" + url.QueryEscape("a b"),
		"topic=" + url.QueryEscape("a*"), "topic=%zz", "other=a"} {
		_, code, body := tryOpen(t, base+"stream?"+q)
		if code != http.StatusBadRequest || !strings.Contains(body, "topic=PATTERN") {
			t.Errorf("?%s: %d %q, want 400 explaining topic=PATTERN", q, code, body)
		}
	}
	s := open(t, base+"stream?topic=ok") // the refusals took no stream
	s.nextNamed(t, "ready", nil)
}

// TestStreamNeverBlocksPublish: a client that never reads a byte does not
// slow the engine's publishers: every publish returns, every agent
// subscriber gets every message, and the stream counts what it dropped.
func TestStreamNeverBlocksPublish(t *testing.T) {
	e := startEngine(t, engine.WithLoops(2))
	var got atomic.Int64
	register(t, e, "sub", factory(func(*engine.Context, engine.Message) { got.Add(1) }), engine.Mailbox(1<<16, engine.DropNewest))
	spawn(t, e, engine.AgentID{Type: "sub", Key: "0"})
	if err := e.SubscribeAgent("feed.>", engine.AgentID{Type: "sub", Key: "0"}); err != nil {
		t.Fatal(err)
	}
	d, base := manual(t, e, dashboard.Options{StreamBuffer: 8})

	// A raw connection that sends its request and then never reads: its
	// socket buffers fill, and the stream's writer blocks on them.
	u, _ := url.Parse(base)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %sstream?topic=feed.%%3E HTTP/1.1\r\nHost: %s\r\n\r\n", u.Path, u.Host)
	// Wait until the server has subscribed, without reading the response.
	for i := 0; e.Bus().Count() == 0; i++ {
		if i > 1e7 {
			t.Fatal("the stream never subscribed")
		}
		runtime.Gosched()
	}

	const n = 4000
	payload := bytes.Repeat([]byte("x"), 16<<10) // 64 MB in all: more than any socket buffer holds
	for i := 0; i < n; i++ {
		publish(t, e, "feed.data", payload)
	}
	idle(t, e)
	if got.Load() != n {
		t.Errorf("the agent subscriber got %d of %d", got.Load(), n)
	}
	st := e.Stats()
	if st.DeadLetters != 0 || st.Processed != n {
		t.Errorf("engine: %d processed, %d dead letters; want %d, 0", st.Processed, st.DeadLetters, n)
	}
	matched, dropped, sent := d.StreamTotals()
	if matched != n || dropped == 0 || dropped+sent > n {
		t.Errorf("stream: %d matched, %d dropped, %d sent; want %d matched, some dropped", matched, dropped, sent, n)
	}
}
