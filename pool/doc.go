// Package pool gives agentloop its recycled memory and its blocking-work
// workers: typed object pools, reference-counted byte buffers and a bounded
// worker pool. It does not import the engine and is usable on its own.
//
// # Objects
//
// [Pool] is a typed layer over [sync.Pool]: it adds a constructor, a Reset
// hook called on every Put, and hit/miss counters. It is safe for concurrent
// use.
//
// # Buffers
//
// [Buffers] hands out []byte of power-of-two size classes from [MinBufferSize]
// to [MaxBufferSize], each class backed by a sync.Pool. A [Buffer] is
// reference counted so that one payload can be shared, without copying, by
// many receivers: the holder calls [Buffer.Retain] before handing it to more
// receivers, every receiver calls [Buffer.Release] exactly once when it no
// longer reads it, and the buffer goes back to its class when the last
// reference is released, never earlier.
//
// # Workers
//
// [Workers] runs blocking work on github.com/panjf2000/ants/v2 so that an event
// loop never blocks: [Workers.Submit] either accepts the work at once or
// returns [ErrOverloaded] at once, it never spawns unbounded goroutines and
// never waits. A panic in the work is recovered and delivered as a
// [*PanicError]. [Workers.Close] waits, up to a context deadline, for accepted
// work to finish and then stops every goroutine it started.
//
// Note that importing ants starts the two background goroutines of its
// package-level default pool; tests that use go.uber.org/goleak should
// ignore them with goleak.IgnoreCurrent in TestMain, as this package does.
package pool
