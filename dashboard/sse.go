package dashboard

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/agentloop/agentloop/messaging"
)

// writeTimeout bounds each write to a stream's client, so that a client
// that stopped reading cannot hold a stream (and Close) for ever.
const writeTimeout = 10 * time.Second

// keepAlive is how often a quiet topic stream sends a comment, so that
// proxies keep the connection and a vanished client is noticed.
const keepAlive = 15 * time.Second

// sse writes Server-Sent Events to one client.
type sse struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf bytes.Buffer
}

// startSSE sends the stream's headers.
func startSSE(w http.ResponseWriter) *sse {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	s := &sse{w: w, rc: http.NewResponseController(w)}
	return s
}

// event appends one event; data must hold no newline (JSON does not).
func (s *sse) event(name, id string, data []byte) {
	if name != "" {
		s.buf.WriteString("event: " + name + "\n")
	}
	if id != "" {
		s.buf.WriteString("id: " + id + "\n")
	}
	s.buf.WriteString("data: ")
	s.buf.Write(data)
	s.buf.WriteString("\n\n")
}

// flush writes what the events appended and flushes it to the client.
func (s *sse) flush() error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(writeTimeout)) // unsupported by some writers: then unbounded
	_, err := s.w.Write(s.buf.Bytes())
	s.buf.Reset()
	if err != nil {
		return err
	}
	return s.rc.Flush()
}

// eventClient is one open events stream: the sampler offers it each
// snapshot; a client too slow to take them loses the oldest.
type eventClient struct {
	ch chan []byte
}

// eventBacklog is how many snapshots an events stream holds for a slow
// client.
const eventBacklog = 8

// offer hands b to the client without waiting, dropping its oldest
// snapshot if it has no room. The caller holds Dashboard.mu, so offers do
// not race with each other.
func (c *eventClient) offer(b []byte) {
	for {
		select {
		case c.ch <- b:
			return
		default:
		}
		select {
		case <-c.ch:
		default:
		}
	}
}

func (d *Dashboard) serveEvents(w http.ResponseWriter, r *http.Request) {
	if !d.acquire(w) {
		return
	}
	defer d.release()
	c := &eventClient{ch: make(chan []byte, eventBacklog)}
	d.mu.Lock()
	hist := d.history()
	d.clients[c] = struct{}{}
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.clients, c)
		d.mu.Unlock()
	}()

	s := startSSE(w)
	s.event("history", "", append(append([]byte{'['}, bytes.Join(hist, []byte{','})...), ']'))
	if s.flush() != nil {
		return
	}
	for {
		select {
		case b := <-c.ch:
			s.event("snapshot", "", b)
			if s.flush() != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-d.done:
			return
		}
	}
}

// StreamMessage is one message of a topic stream, sent as the JSON data of
// an unnamed ("message") event whose id is Seq.
type StreamMessage struct {
	Topic string `json:"topic"`
	// Payload is the payload as text if it is valid UTF-8 (Encoding
	// "utf8"), else in standard base64 (Encoding "base64").
	Payload  string `json:"payload"`
	Encoding string `json:"encoding"`
	// Seq numbers the messages the stream's pattern matched, from 1,
	// dropped ones included: a gap is what a "dropped" event reported.
	Seq uint64 `json:"seq"`
}

// StreamDropped is the data of a "dropped" event: the stream's buffer was
// full, and its oldest messages were dropped to make room.
type StreamDropped struct {
	Dropped uint64 `json:"dropped"` // since the previous dropped event
	Total   uint64 `json:"total"`   // since the stream opened
}

// StreamReady is the data of the "ready" event a topic stream starts with,
// sent once it is subscribed: messages published after it are streamed.
type StreamReady struct {
	Pattern string `json:"pattern"`
	Buffer  int    `json:"buffer"`
}

// topicStream is the buffer between the publishers of one pattern and its
// client's writer: a ring that drops the oldest message when full.
type topicStream struct {
	max    int
	notify chan struct{} // cap 1: something to write
	totals *streamTotals

	mu      sync.Mutex // protects the fields below; never held across I/O or a call out
	ring    []streamMsg
	head, n int
	bytes   int
	seq     uint64 // messages matched
	dropped uint64 // not yet reported
	total   uint64 // dropped in all
}

type streamMsg struct {
	topic   string
	payload []byte
	seq     uint64
}

// publish is the bus handler: it runs on the publisher's goroutine, so it
// copies the payload (valid only during the call), takes the lock for a
// few stores, and signals the writer without waiting.
func (ts *topicStream) publish(topic string, payload []byte) {
	p := bytes.Clone(payload)
	ts.totals.matched.Add(1)
	ts.mu.Lock()
	ts.seq++
	m := streamMsg{topic: topic, payload: p, seq: ts.seq}
	if len(p) > MaxStreamBytes {
		ts.dropped++
		ts.total++
		ts.mu.Unlock()
		ts.totals.dropped.Add(1)
		return
	}
	lost := uint64(0)
	for ts.n > 0 && (ts.n == ts.max || ts.bytes+len(p) > MaxStreamBytes) {
		old := &ts.ring[ts.head]
		ts.bytes -= len(old.payload)
		*old = streamMsg{}
		ts.head = (ts.head + 1) % ts.max
		ts.n--
		ts.dropped++
		ts.total++
		lost++
	}
	ts.ring[(ts.head+ts.n)%ts.max] = m
	ts.n++
	ts.bytes += len(p)
	ts.mu.Unlock()
	if lost > 0 {
		ts.totals.dropped.Add(lost)
	}
	select {
	case ts.notify <- struct{}{}:
	default:
	}
}

// take moves what the ring holds into dst and returns it with the drops
// not yet reported.
func (ts *topicStream) take(dst []streamMsg) (_ []streamMsg, dropped, total uint64) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for ; ts.n > 0; ts.n-- {
		dst = append(dst, ts.ring[ts.head])
		ts.ring[ts.head] = streamMsg{}
		ts.head = (ts.head + 1) % ts.max
	}
	ts.bytes = 0
	dropped, ts.dropped = ts.dropped, 0
	return dst, dropped, ts.total
}

// streamTotals count the messages of every topic stream of a dashboard.
type streamTotals struct {
	matched atomic.Uint64 // handed to a stream by the bus
	dropped atomic.Uint64 // dropped by a full stream buffer
	sent    atomic.Uint64 // written to a client and flushed
}

// errPattern is the 400 answer's text for a stream request without a
// usable pattern.
func errPattern(raw string, err error) string {
	return fmt.Sprintf("dashboard: stream wants ?topic=PATTERN, a topic pattern such as alerts.> (raw query %q): %v", raw, err)
}

func (d *Dashboard) serveStream(w http.ResponseWriter, r *http.Request) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		http.Error(w, errPattern(r.URL.RawQuery, err), http.StatusBadRequest)
		return
	}
	pattern := q.Get("topic")
	if err := messaging.ValidatePattern(pattern); err != nil {
		http.Error(w, errPattern(r.URL.RawQuery, err), http.StatusBadRequest)
		return
	}
	if !d.acquire(w) {
		return
	}
	defer d.release()

	ts := &topicStream{
		max: d.opts.StreamBuffer, notify: make(chan struct{}, 1), totals: &d.totals,
		ring: make([]streamMsg, d.opts.StreamBuffer),
	}
	sub, err := d.e.Bus().Subscribe(pattern, ts.publish)
	if err != nil { // unreachable: the pattern is valid and the handler set
		http.Error(w, errPattern(r.URL.RawQuery, err), http.StatusBadRequest)
		return
	}
	defer func() { _ = sub.Unsubscribe() }()

	s := startSSE(w)
	ready, _ := json.Marshal(StreamReady{Pattern: pattern, Buffer: d.opts.StreamBuffer})
	s.event("ready", "", ready)
	if s.flush() != nil {
		return
	}
	alive := time.NewTicker(keepAlive)
	defer alive.Stop()
	var batch []streamMsg
	for {
		select {
		case <-ts.notify:
		case <-alive.C:
			s.buf.WriteString(": keep-alive\n\n")
			if s.flush() != nil {
				return
			}
			continue
		case <-r.Context().Done():
			return
		case <-d.done:
			return
		}
		if d.drainGate != nil {
			select {
			case <-d.drainGate:
			case <-r.Context().Done():
				return
			case <-d.done:
				return
			}
		}
		var dropped, total uint64
		batch, dropped, total = ts.take(batch[:0])
		if dropped > 0 {
			b, _ := json.Marshal(StreamDropped{Dropped: dropped, Total: total})
			s.event("dropped", "", b)
		}
		for i := range batch {
			m := &batch[i]
			sm := StreamMessage{Topic: m.topic, Seq: m.seq, Encoding: "utf8"}
			if utf8.Valid(m.payload) {
				sm.Payload = string(m.payload)
			} else {
				sm.Payload, sm.Encoding = base64.StdEncoding.EncodeToString(m.payload), "base64"
			}
			b, _ := json.Marshal(&sm)
			s.event("", strconv.FormatUint(m.seq, 10), b)
			*m = streamMsg{}
		}
		if s.flush() != nil {
			return
		}
		d.totals.sent.Add(uint64(len(batch)))
	}
}
