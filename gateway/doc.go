// Package gateway is the IoT gateway simulation, the engine's main job and
// workload W10 of bench/README.md, as a package: the YAML configuration of
// the mix (Parse, LoadFile, Default), the mix itself on an engine (Run),
// the same mix on a goroutine per device with channels (RunBaseline), the
// open-loop load that drives both, and the step-up Search for the highest
// rate at which latency stays within bounds.
//
// cmd/gateway runs it (make run); cmd/agentloop load searches both
// systems' capacity, taking turns run by run; the W10 benchmarks of package
// bench run it too. It sits above the engine and is built only from its
// public API.
//
// # The mix
//
// With the embedded default configuration (Default, DefaultYAML):
//
//   - Telemetry arrives from simulated devices on
//     telemetry.<device>.<sensor>, published from outside by producer
//     goroutines at a fixed offered rate, open loop: message j of a
//     producer is due at j/rate whatever happened to the earlier ones. A
//     producer that falls behind emits its backlog at once and records how
//     late it was, but never slows its schedule down. With ingress route the
//     producers look the device agent up in a topic → agent table built once
//     and send to it directly, as the baseline reaches its channels: the bus
//     is then off the ingress path.
//   - Device agents (10 000, priority 50) keep a smoothed reading per
//     sensor. Every 10th message (feature_every) a device publishes a
//     feature vector on features.<device>; a reading that rises above the
//     alert level raises one alert on alerts.<device>.threshold, and the
//     next one only after a reading has fallen back below it.
//   - Feature agents (16, priority 80) aggregate their share of the devices
//     (device n goes to feature agent n mod 16) and publish on
//     aggregates.<k>.
//   - Inference agents (4, priority 100) take the aggregates in batches of
//     up to 32 (ReceiveBatch; feature agent k feeds inference agent k mod 4),
//     run a small network over each (6 inputs, 16 hidden units, one output)
//     and publish anomalies on alerts.<device>.anomaly.
//   - The alert agent subscribes to alerts.>.
//
// Every payload is PayloadSize (64) bytes and carries the time its producer
// handed the telemetry message over; the inference agents measure the
// end-to-end latency from it into HDR histograms (hdrhistogram-go, one per
// inference agent, merged for the figures). Payloads are never modified
// once sent, since the engine does not copy them: producers and loops carve
// them out of 64 KiB slabs and never reuse one (one allocation per 1 024
// messages; the collector frees a slab after its last payload).
//
// # The configuration
//
// The mix is one YAML document. The embedded default, without its comment
// header (DefaultYAML returns the text):
//
//	load:
//	  rate: 200000       # telemetry messages per second, offered open loop
//	  duration: 10s      # how long the producers offer load
//	  producers: 2       # goroutines emitting telemetry, rate shared between them
//	  loops: 0           # event loops; 0: GOMAXPROCS
//	  sensors: 4         # sensors per device: telemetry.<device>.s0 .. s3
//	  ingress: publish   # publish each message on its topic; route: look the device up in a table
//
//	agents:
//	  - name: device
//	    kind: device
//	    instances: 10000         # the devices: dev-0 .. dev-9999
//	    priority: 50
//	    mailbox: 1024
//	    overflow: drop-oldest    # stale telemetry goes first
//	    feature_every: 10
//	    subscribe: ["telemetry.*.*"]
//	  - name: feature
//	    kind: feature
//	    instances: 16            # device dev-N is aggregated by feature N mod 16
//	    priority: 80
//	    mailbox: 8192
//	    overflow: drop-oldest
//	    subscribe: ["features.*"]
//	  - name: inference
//	    kind: inference
//	    instances: 4             # feature K feeds inference K mod 4
//	    priority: 100
//	    batch: 32
//	    mailbox: 8192
//	    overflow: drop-oldest
//	    subscribe: ["aggregates.*"]
//	  - name: alert
//	    kind: alert
//	    instances: 1
//	    priority: 30
//	    mailbox: 4096
//	    overflow: drop-newest
//	    subscribe: ["alerts.>"]
//
// Every field, with its values and, for an optional field, its default:
//
//	field                    values                                            default
//	load.rate                1 … 100 000 000 msgs/s (required)
//	load.duration            a Go duration, > 0, ≤ 24h                         10s
//	load.producers           1 … 256                                           2
//	load.loops               0 … 1024 (0: GOMAXPROCS)                          0
//	load.sensors             1 … 8                                             4
//	load.ingress             publish (Engine.Publish on the topic),            publish
//	                         route (a topic → agent table, then Ref.Send)
//	agents                   one agent type of each kind (required)
//	agents[i].name           letters, digits, '-', '_', at most 64 bytes;
//	                         unique; the engine type name (required)
//	agents[i].kind           device, feature, inference, alert (required)
//	agents[i].instances      devices: 1 … 100 000, the device count;
//	                         the others: 1 … 10 000 (required)
//	agents[i].priority       0 … 100                                           50
//	agents[i].mailbox        1 … 1 048 576 messages                            4096
//	agents[i].overflow       drop-newest, drop-oldest, reject, block           drop-newest
//	agents[i].batch          inference only: 1 … 4096                          32
//	agents[i].feature_every  devices only: 1 … 1 000 000                       10
//	agents[i].subscribe      NATS-style patterns (*, >), at least one (required)
//
// The numeric limits are this package's Max constants (MaxRate,
// MaxDuration, ...) and engine.MaxBatch; the defaults are its Default
// constants.
//
// The kind fixes what an agent type receives and publishes (see Kind); the
// subscriptions wire it up. A device type subscribes with SubscribeType,
// the device being the topic's second token; feature and inference types
// too, with the second token mapped to an instance: the number it ends
// with, modulo instances (a hash of the token when it ends with no digit).
// Each alert instance subscribes itself and so sees every alert. A pattern
// must reach the topics of its kind (telemetry.<device>.<sensor>,
// features.<device>, aggregates.<k>, alerts.<device>.<reason>) and none of
// the other kinds', which would feed a stage its own output.
//
// # Invalid configurations
//
// A configuration is refused whole, every fault with its file, line and
// field (see Parse): unknown or repeated fields, values of the wrong type,
// missing required fields, duplicate names, unknown kinds and overflow
// policies, counts out of range and stray subscriptions are all placed, and
// syntax errors are placed on the line at fault. Loading stays linear in
// the input: a file over MaxConfigSize (1 MiB) is refused unread, and
// anchors and aliases (&x, *x) work but their uses may add at most
// MaxAliasExpansion (65 536) nodes and scalar bytes to the document, so
// "billion laughs" is refused at the alias that crosses the limit, as is an
// alias used inside the node it names. A value set by a command-line flag
// (Config.SetBy) is reported with the flag instead of a line:
//
//	gw.yaml:32: agents[1].priority: 140 is out of range 0..100
//	gw.yaml:43: agents[2].overflow: unknown overflow policy "drop-random": want drop-newest, drop-oldest, reject or block
//	gw.yaml:52: agents[3].subscribe[0]: ">" also matches telemetry.dev-0.s0, which device agents receive
//	-rate: -5 is out of range 1..100000000
//
// # A run and its summary
//
// Run offers the load for load.duration, then gives the queues a quarter of
// that window, at least 200 ms and at most 2 s, to drain, and stops the
// engine. With Options.Live it prints a line of figures every second: the
// telemetry processed per second, the p99 latency and the process CPU of
// that second alone (a stall shows in its own line and leaves the next
// ones alone), the agents, the messages queued and those dropped so far.
// Summary.Print then writes the summary block, and under it the same
// intervals as a latency-over-time table (Summary.Intervals):
//
//	summary (agentloop): 10s offered + drain = 10.002s, 10021 agents
//	  offered          200000 msgs/s  (2000000 emitted, backlog 0, worst lag 4.441ms)
//	  achieved         199965 msgs/s  (2000000 processed)
//	  dropped               0 msgs    (refused 0)
//	  latency    p50 0.124ms  p99 0.337ms  p99.9 0.855ms  max 2.439ms  (200000 measured)
//	  alerts             4205
//	  cpu                44.7 % of one core
//
//	  latency over time (each interval on its own):
//	       t      msgs/s         p50         p99         max   measured
//	      1s      200004     0.121ms     0.291ms     1.207ms      19988
//	      ...
//	     10s      199840     0.126ms     0.337ms     0.901ms      20011
//
// Every latency is in milliseconds with three decimals (FormatLatency),
// whatever its size, so that a column compares at a glance.
//
// Offered is the configured rate, with the telemetry the producers emitted,
// the backlog they never emitted because they fell behind, and their worst
// lag behind schedule. Achieved is the telemetry the device agents processed
// per second of the run including its drain. Dropped counts every message
// of any stage that was not processed: the engine's dead letters (full
// mailboxes, and what was still queued at the end) plus the sends refused
// at the door (refused). Latency is stamped when a producer hands a
// telemetry message over and measured when an inference agent scores the
// aggregate it led to. CPU is the process's user and system time over the
// run, in % of one core. A run whose queues did not drain within the limit
// says so under the block: the system was overloaded.
//
// # The goroutine-per-device baseline
//
// RunBaseline is the same mix on plain goroutines and channels, as one
// would write the gateway without an engine: one goroutine and one buffered
// channel per device, per feature, per inference and per alert instance,
// channels as large as the mailboxes and filled under the same overflow
// policies, producers routing each topic to its device through the table
// of ingress route, the same work and payloads per message, the inference
// goroutines taking batches of up to the batch size and measuring the same
// latency. Priorities have no equivalent there.
//
// # The search for the highest rate
//
// Search finds the highest offered rate at which a run passes
// (Summary.Pass): p99 within the target and at least a given share of the
// offered rate achieved. It steps the rate up by a factor until a rate
// fails (down, at most four times, when the first rate already fails), then
// bisects between the highest pass and the lowest failure at their
// geometric midpoint; a failing rate is run again a few times and passes if
// any run passes, since on a shared machine a run can fail for reasons of
// its own. DefaultSearch holds the options of `agentloop load`, whose help
// (`agentloop help load`) and package documentation have the flags and
// measured results.
package gateway
