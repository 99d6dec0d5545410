// Package metrics exports an engine's Stats as Prometheus metrics.
//
// It is to engine.Engine.Stats what promhttp is to a prometheus.Registry:
// a Collector turns one Stats snapshot into constant metrics on every
// scrape, and Listen serves them over HTTP.
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(metrics.NewCollector(e,
//		metrics.WithNamespace("agentloop"), // the default
//		metrics.WithConstLabels(prometheus.Labels{"site": "north"})))
//	http.Handle("/metrics", metrics.Handler(reg)) // promhttp.HandlerFor(reg, ...)
//
// or, for a stand-alone endpoint such as cmd/gateway's -metrics flag,
// Listen, which serves Path from a registry of its own (the engine's
// collector, the Go runtime's and the process's) until stop is called:
//
//	stop, addr, err := metrics.Listen("127.0.0.1:9464", e) // port 0 picks a free one
//	if err != nil {
//		return err // errors.Is(err, metrics.ErrAddr) for an address that does not parse
//	}
//	defer stop(context.Background())
//	fmt.Println("metrics at http://" + addr + metrics.Path)
//
// The endpoint has no authentication: keep it on a loopback address.
//
// # Series
//
// Names below use the default namespace "agentloop" (see WithNamespace).
// Engine-wide:
//
//	agentloop_agents                                gauge      live agents
//	agentloop_dead_letters_total                    counter    messages dead-lettered
//	agentloop_panics_total                          counter    handler and hook panics recovered
//
// Per agent type, label type:
//
//	agentloop_messages_received_total               counter    reached a mailbox (incl. dropped)
//	agentloop_messages_processed_total              counter    handed to a handler
//	agentloop_messages_dropped_total                counter    dropped by a full mailbox
//	agentloop_restarts_total                        counter    restarts after a panic
//	agentloop_mailbox_messages                      gauge      messages waiting in mailboxes
//	agentloop_handler_seconds                       histogram  handler time per message
//
// Per loop, label loop (0 to Engine.Loops()-1):
//
//	agentloop_loop_busy_seconds_total               counter    time spent running agents
//	agentloop_loop_utilisation_ratio                gauge      busy share of wall time since the previous scrape
//	agentloop_loop_inbox_envelopes                  gauge      work posted to the loop, not yet taken
//	agentloop_loop_runnable_agents                  gauge      agents waiting for a turn
//	agentloop_loop_timers                           gauge      timers on the precise heap
//	agentloop_loop_turns_total                      counter    turns run
//	agentloop_loop_parks_total                      counter    times parked for lack of work
//	agentloop_loop_scheduler_picks_total            counter    agents picked from the runnable queue
//	agentloop_loop_scheduler_aged_picks_total       counter    picks that served the oldest waiter first
//	agentloop_loop_scheduler_longest_wait_picks     gauge      worst wait seen, in picks of others
//
// The handler histogram has the engine's log2 buckets, from 256 ns to
// about 1.07 s (engine.HandlerBucketBound), plus +Inf. The engine reads the
// clock once per run of an agent, so the messages of one run count with
// the run's mean.
//
// The utilisation gauge is a rate over the interval since the previous
// scrape by the same Collector (the first scrape: since NewCollector), so
// scrape each Collector from one place; busy_seconds_total is the counter
// to rate() over any window.
//
// # Cardinality
//
// Series are labelled by agent type and by loop, never by agent: an engine
// of a million device agents of three types has the series of three types
// and its loops. The count is 3 + 6·types + 10·loops metrics (a histogram
// counting as one), whatever the number of agents.
//
// # Cost
//
// Nothing runs between scrapes: there is no goroutine and no per-message
// cost beyond the counters the engine keeps anyway. A scrape takes one
// Engine.Stats snapshot (atomic loads, O(loops × types)) and builds the
// metrics above from it.
package metrics
