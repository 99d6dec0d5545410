// Package dashboard serves a live page of a running engine over
// Server-Sent Events: per loop, its utilisation, inbox and runnable depth;
// per agent type, its throughput, mailbox depth, handler latency (p50 and
// p99), drops, restarts and scheduling weight; dead letters by reason; the
// largest mailboxes; the heap, GC pauses and pools; each plotted over the
// last minutes. It is to the engine what expvar is to a process, made to be
// looked at: where package metrics hands the same figures to Prometheus,
// this needs nothing but a browser.
//
//	d, err := dashboard.New(e, dashboard.Options{FlameURL: "/debug/flame"})
//	if err != nil {
//		return err
//	}
//	defer d.Close()
//	mux.Handle(dashboard.Path, d) // the page at /dashboard/
//
// The page is self-contained: its HTML, script and style are embedded in
// the binary, its plots are drawn on canvases by its own script, and it
// fetches nothing from the network (its Content-Security-Policy allows
// nothing else). It has no authentication: serve it on a loopback address,
// or behind authentication.
//
// # Streams
//
// Path+"events" is a text/event-stream: first an event "history" whose
// data is the JSON array of the snapshots kept (Options.History, oldest
// first), then an event "snapshot" per Options.Interval whose data is one
// Snapshot in JSON. A client too slow to take them loses the oldest.
//
// Path+"stream?topic=PATTERN" streams what the engine publishes on the
// topics PATTERN matches (the messaging pattern syntax: alerts.>,
// sensors.*.temp): an event "ready" once subscribed (StreamReady), then one
// unnamed event per message (StreamMessage: topic, payload as text or
// base64, seq), through a buffer of Options.StreamBuffer messages per
// client that drops the oldest when the client reads too slowly and says
// so in a "dropped" event (StreamDropped). Publishers never wait for a
// client: the stream's subscription copies the payload and appends it to
// the buffer under a lock held for a few stores, on the publisher's
// goroutine, and the request's own goroutine writes to the client. The
// copy is one allocation per message per stream: a stream is for looking,
// not for a bulk feed. An invalid pattern is 400; a disconnected client is
// unsubscribed at once.
//
// Event and topic streams together are bounded by Options.MaxStreams (503
// beyond); Close ends them all.
//
// # Cost
//
// The sampler takes one snapshot per Interval: engine.Stats,
// engine.DeadLetterStats and engine.PoolStats (atomic reads) and
// engine.Survey, which has each loop scan its agents between two turns (a
// few nanoseconds per agent) to find the largest mailboxes and the
// weights. Nothing is added to the message path. A loop stuck in a handler
// does not hold the sampler up for more than an Interval: the snapshot
// then says its mailbox list is stale.
//
// # Reading it
//
// The page ends with the troubleshooting table: a queue piling up (which
// type, which loop, its weight), messages lost, memory growing, stalls,
// and where on the page each one shows.
package dashboard
