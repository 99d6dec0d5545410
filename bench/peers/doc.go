// Package peers runs the workloads of bench/README.md on agentloop and on
// the libraries people would otherwise reach for, side by side in one
// package, so that one run compares them:
//
//	go test -run '^$' -bench . -benchmem -count 6 . | tee peers.out
//	benchstat -col /impl peers.out
//
// Every workload is one benchmark, BenchmarkW<n>, with a sub-benchmark per
// implementation named impl=<name>:
//
//   - agentloop: the engine, 2 loops (engine.WithLoops(2)).
//   - channels: hand-rolled, one goroutine and one channel per actor.
//   - ants: github.com/panjf2000/ants/v2. An actor is a bounded mailbox (a
//     buffered channel) plus a scheduled flag; the first message into an
//     idle mailbox submits one drain task to a shared ants pool, which
//     handles up to 300 messages, yielding between batches, and goes idle
//     when the mailbox is empty. This is how an actor library built on a
//     goroutine pool runs its actors (protoactor's mailbox and dispatcher
//     work the same way); at most one task handles an actor at a time, so
//     its state needs no lock.
//   - protoactor: github.com/asynkron/protoactor-go/actor with its default
//     props (unbounded mailbox, goroutine dispatcher, throughput 300).
//     Messages are interface values: the 64-byte payload is boxed once,
//     up front, so the figures show protoactor's own costs rather than Go's
//     interface conversion.
//
// A workload a peer cannot express fairly has no sub-benchmark for it; the
// workload's file says why. The module is separate from agentloop's own so
// that none of these libraries becomes a dependency of agentloop's users.
//
// Every benchmark also runs as a test (TestWorkloads) on a small count that
// checks each implementation delivers what it counted.
package peers
