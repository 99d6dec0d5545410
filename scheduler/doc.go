// Package scheduler orders the runnable entities of one event loop by a
// dynamic weight, picks the next one in O(1), and bounds how long any of
// them waits.
//
// It is the single-owner core that each engine loop drives without locks:
// a [Queue] of intrusive [Entry] handles that the entities embed or keep
// (the engine allocates one per agent, once), so that queueing allocates
// nothing. Compared with container/heap it never compares two entries
// (weights are quantised into buckets and a bitmap finds the heaviest),
// and compared with container/list it links the caller's own structs
// instead of allocating list elements. It stands alone: it imports nothing
// of the engine and starts no goroutine.
//
//	var q scheduler.Queue[*agent] // zero value: DefaultConfig
//	a.entry.Value = a
//	a.entry.SetPriority(80)
//	q.Push(&a.entry)
//	e, _ := q.Pop()               // the engine runs e.Value for a quantum
//	q.Account(e, elapsedNanos, handled, backlogBytes)
//	if backlogBytes > 0 { q.Push(e) }
//
// # Weight
//
// Each entry's weight is
//
//	weight = a·priority + b·cpu + c·mem     (default a = 0.6, b = 0.2, c = 0.2)
//
// with every term in [0, 1]:
//
//   - priority is the entry's configured priority, 0..100, divided by 100
//     ([Entry.SetPriority]; a zero Entry has 50).
//   - cpu is loop-time headroom, 1 − the entry's recent share of the loop's
//     handler time. The share is the entry's EWMA of handler time per epoch
//     divided by the same EWMA of the loop's total, so the shares of all
//     entries sum to 1.
//   - mem is memory headroom, 1 − the entry's share of the bytes queued on
//     the loop (its last reported backlog over the sum of all backlogs).
//
// Both shares are quantised to quarters (ShareLevels) with a hysteresis
// band before they enter the weight, so that the noise of measured handler
// time cannot split two equal entries into neighbouring buckets (the
// heavier would then take whole epochs alone); a share moves to another
// quarter only once it is more than 0.175 away from its current one.
//
// An entry that hogs the loop's time or memory therefore sinks, by up to b
// and c, below entries of the same priority; with the defaults the priority
// dominates (0.6) but cannot make a hog immune. The coefficients are
// configurable ([Coefficients]); each must be ≥ 0 and their sum > 0.
//
// The caller reports each run with [Queue.Account]: handler time (the
// engine reads its clock once per run, a quantum of messages or one
// batch), messages handled and the backlog left. The queue never reads a
// clock, so it is deterministic: tests drive it with invented times.
//
// # Epochs
//
// Weights change per epoch, never per message. An epoch closes every
// [Config.EpochPicks] picks: epochs are counted in the queue's own clock,
// so a loop that picks rarely keeps its weights longer, and a busy one
// revises them sooner. Closing one costs O(1): it folds the epoch's total
// handler time into the loop's EWMA (factor [Config.Alpha]). Entries are
// brought up to date lazily, with the same arithmetic, when next accounted
// or pushed, and an entry's weight is computed at most once per epoch, at
// its first Push in that epoch (or again at the next Push after
// [Entry.SetPriority]). An entry already queued when an epoch closes keeps
// its bucket until it is served.
//
// # Picking
//
// Weights are quantised into [Config.Buckets] equal slices of [0, a+b+c]. A
// bitmap with one bit per non-empty bucket gives the heaviest bucket with
// one bits.Len64, and each bucket is a FIFO, so entries of equal weight are
// served round robin. Push, Pop and Remove are O(1) and allocation-free.
//
// # Starvation bound
//
// Every queued entry is also on an age list, in push order. When the oldest
// entry has waited [Config.MaxWait] picks or more, Pop serves it instead of
// the heaviest, unless the previous pick was itself such an aged pick. The
// alternation keeps half of the picks for the weights even when a saturated
// loop has more aged entries than MaxWait, instead of degrading into FIFO.
//
// The bound ([Config.WaitBound]): an entry pushed while k entries were
// queued is popped after at most MaxWait + 2k picks of others, whatever its
// weight. Once it has waited MaxWait picks, every later pick either serves
// the oldest entry (one that was queued ahead of it, or itself) or follows
// a pick that did, and only the k entries queued ahead of it can be older.
// A loop with at most n runnable entries thus serves each within
// MaxWait + 2(n−1) picks; [Stats.LongestWait] reports the worst seen.
package scheduler
