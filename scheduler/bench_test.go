package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/agentloop/agentloop/internal/ring"
)

// benchEntries returns n entries, of equal priority or of random priorities.
func benchEntries(b *testing.B, n int, mixed bool) []Entry[int] {
	b.Helper()
	es := make([]Entry[int], n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range es {
		es[i].Value = i
		if mixed {
			if err := es[i].SetPriority(r.IntN(MaxPriority + 1)); err != nil {
				b.Fatal(err)
			}
		}
	}
	return es
}

// BenchmarkPopPush is one pick and one re-queue of a runnable entity, the
// engine's cycle per agent turn, against the engine's current runnable
// queue: a FIFO ring of pointers (internal/ring).
func BenchmarkPopPush(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		for _, mixed := range []bool{false, true} {
			prio := "equal"
			if mixed {
				prio = "mixed"
			}
			b.Run(fmt.Sprintf("n=%d/queue/%s", n, prio), func(b *testing.B) {
				q, _ := New[int](DefaultConfig())
				es := benchEntries(b, n, mixed)
				for i := range es {
					q.Push(&es[i])
				}
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					e, _ := q.Pop()
					q.Push(e)
				}
				b.StopTimer()
				st := q.Stats()
				b.ReportMetric(float64(st.AgedPicks)/float64(st.Picks), "aged/pick")
			})
		}
		b.Run(fmt.Sprintf("n=%d/ring-baseline", n), func(b *testing.B) {
			var d ring.Deque[*Entry[int]]
			es := benchEntries(b, n, false)
			for i := range es {
				d.PushBack(&es[i])
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				e, _ := d.PopFront()
				d.PushBack(e)
			}
		})
	}
}

// BenchmarkAccount is the whole per-turn cost the engine adds: Pop, Account
// of a run of 16 messages, Push. With epochs that never close no weight is
// recomputed; with the default epoch nearly every Push recomputes one (1000
// saturated entries of mixed priorities: each is popped less than once per
// epoch), so the difference is the cost of a reweigh. With EpochPicks 1 an
// epoch also closes on every pick.
func BenchmarkAccount(b *testing.B) {
	const msgs = 16
	for _, epoch := range []int{1 << 40, DefaultConfig().EpochPicks, 1} {
		name := fmt.Sprint(epoch)
		if epoch == 1<<40 {
			name = "never"
		}
		b.Run("n=1000/epoch="+name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.EpochPicks = epoch
			q, _ := New[int](cfg)
			es := benchEntries(b, 1000, true)
			for i := range es {
				q.Push(&es[i])
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				e, _ := q.Pop()
				q.Account(e, int64(1000+i&1023), msgs, int64(i&4095))
				q.Push(e)
			}
			b.StopTimer()
			st := q.Stats()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/msgs, "ns/msg")
			b.ReportMetric(float64(st.Reweighs-1000)/float64(st.Picks), "reweighs/pick")
		})
	}
	b.Run("n=1000/ring-baseline", func(b *testing.B) {
		var d ring.Deque[*Entry[int]]
		es := benchEntries(b, 1000, false)
		for i := range es {
			d.PushBack(&es[i])
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			e, _ := d.PopFront()
			d.PushBack(e)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/msgs, "ns/msg")
	})
}

// BenchmarkReweigh is the cost of closing an epoch and of recomputing one
// entry's weight, for an entry active in the last epoch and for one idle for
// several (whose EWMA decays with math.Pow).
func BenchmarkReweigh(b *testing.B) {
	b.Run("epoch", func(b *testing.B) {
		q, _ := New[int](DefaultConfig())
		b.ReportAllocs()
		for range b.N {
			q.closeEpoch()
		}
	})
	for _, idle := range []uint64{1, 5} {
		b.Run(fmt.Sprintf("entry/idle-epochs=%d", idle), func(b *testing.B) {
			q, _ := New[int](DefaultConfig())
			var e, other Entry[int]
			q.Account(&other, 1000, 1, 100)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				q.Account(&e, 1000, 1, 100)
				q.epoch += idle // as if idle epochs had closed
				q.reweigh(&e)
			}
		})
	}
}
