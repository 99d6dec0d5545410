package mpsc

import (
	"runtime"
	"strconv"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestNewRoundsCapacity(t *testing.T) {
	cases := []struct{ in, want int }{
		{-5, 2}, {0, 2}, {1, 2}, {2, 2}, {3, 4}, {4, 4}, {5, 8}, {1000, 1024}, {1024, 1024},
	}
	for _, c := range cases {
		if got := New[int](c.in).Cap(); got != c.want {
			t.Errorf("New(%d).Cap() = %d, want %d", c.in, got, c.want)
		}
	}
}

// TestSingleThreaded checks FIFO order, the full and empty edges and the
// counters over several laps of the ring.
func TestSingleThreaded(t *testing.T) {
	q := New[int](4)
	var out int
	if q.Pop(&out) {
		t.Fatal("Pop on a new queue reported a value")
	}
	if q.Pending() || q.Len() != 0 || q.Pushed() != 0 || q.Popped() != 0 {
		t.Fatalf("new queue: Pending %v Len %d Pushed %d Popped %d", q.Pending(), q.Len(), q.Pushed(), q.Popped())
	}
	next, want := 0, 0
	for lap := 0; lap < 5; lap++ {
		for i := 0; i < 4; i++ {
			v := next
			if !q.TryPush(&v) {
				t.Fatalf("lap %d: TryPush %d of 4 failed", lap, i)
			}
			next++
		}
		v := -1
		if q.TryPush(&v) {
			t.Fatalf("lap %d: TryPush on a full queue succeeded", lap)
		}
		if q.Pushed() != uint64(next) {
			t.Fatalf("lap %d: Pushed = %d, want %d (a refused push must not count)", lap, q.Pushed(), next)
		}
		q.Commit()
		if q.Len() != 4 || !q.Pending() {
			t.Fatalf("lap %d: full queue Len %d Pending %v", lap, q.Len(), q.Pending())
		}
		// Pop two, push two more, pop everything: exercises partial laps.
		for i := 0; i < 2; i++ {
			if !q.Pop(&out) || out != want {
				t.Fatalf("lap %d: Pop = %d, want %d", lap, out, want)
			}
			want++
		}
		if q.Popped() != uint64(want-2) {
			t.Fatalf("lap %d: Popped before Commit = %d, want %d", lap, q.Popped(), want-2)
		}
		q.Commit()
		if q.Popped() != uint64(want) || q.Len() != 2 {
			t.Fatalf("lap %d: after Commit Popped %d Len %d, want %d and 2", lap, q.Popped(), q.Len(), want)
		}
		for i := 0; i < 2; i++ {
			v := next
			if !q.TryPush(&v) {
				t.Fatalf("lap %d: TryPush after partial drain failed", lap)
			}
			next++
		}
		for q.Pop(&out) {
			if out != want {
				t.Fatalf("lap %d: Pop = %d, want %d", lap, out, want)
			}
			want++
		}
		q.Commit()
		if want != next || q.Pending() || q.Len() != 0 {
			t.Fatalf("lap %d: drained to %d of %d, Pending %v Len %d", lap, want, next, q.Pending(), q.Len())
		}
	}
}

// TestPopClearsSlot checks that a popped slot no longer references the value.
func TestPopClearsSlot(t *testing.T) {
	q := New[*int](2)
	v := 1
	p := &v
	q.TryPush(&p)
	var out *int
	q.Pop(&out)
	for i := range q.slots {
		if q.slots[i].val != nil {
			t.Fatalf("slot %d still holds a pointer after Pop", i)
		}
	}
}

type tagged struct {
	producer int
	seq      int
}

// TestMultiProducerFIFO has several producers push tagged values while one
// consumer pops them: each producer's values must come out in its order,
// each exactly once. The queue is small so producers hit the full edge.
func TestMultiProducerFIFO(t *testing.T) {
	const producers = 4
	n := 25000
	if testing.Short() {
		n = 5000
	}
	q := New[tagged](64)
	var wg sync.WaitGroup
	fullHits := make([]int, producers)
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				v := tagged{producer: p, seq: i}
				for !q.TryPush(&v) {
					fullHits[p]++
					runtime.Gosched()
				}
			}
		}()
	}
	next := make([]int, producers)
	total := 0
	var v tagged
	for total < producers*n {
		if !q.Pop(&v) {
			q.Commit()
			runtime.Gosched()
			continue
		}
		if v.producer < 0 || v.producer >= producers {
			t.Fatalf("popped value from unknown producer %d", v.producer)
		}
		if v.seq != next[v.producer] {
			t.Fatalf("producer %d: popped seq %d, want %d", v.producer, v.seq, next[v.producer])
		}
		next[v.producer]++
		total++
		if total%128 == 0 {
			q.Commit()
		}
	}
	q.Commit()
	wg.Wait()
	if q.Pop(&v) {
		t.Fatalf("extra value after all were received: %+v", v)
	}
	if q.Pushed() != uint64(producers*n) || q.Popped() != uint64(producers*n) || q.Len() != 0 || q.Pending() {
		t.Fatalf("counters: Pushed %d Popped %d Len %d Pending %v, want %d %d 0 false",
			q.Pushed(), q.Popped(), q.Len(), q.Pending(), producers*n, producers*n)
	}
	t.Logf("producers found the queue full %v times", fullHits)
}

// TestPendingSeesReservedSlot checks the contract the event loop's parking
// relies on: once TryPush has returned, Pending is true for the consumer.
func TestPendingSeesReservedSlot(t *testing.T) {
	q := New[int](8)
	var out int
	for i := 0; i < 100; i++ {
		done := make(chan struct{})
		go func() {
			v := i
			q.TryPush(&v)
			close(done)
		}()
		<-done
		if !q.Pending() {
			t.Fatalf("round %d: Pending false after TryPush returned", i)
		}
		if !q.Pop(&out) || out != i {
			t.Fatalf("round %d: Pop = %d, want %d", i, out, i)
		}
		q.Commit()
		if q.Pending() {
			t.Fatalf("round %d: Pending true after the only value was popped", i)
		}
	}
}

// TestPeekAdvance checks the in-place consumer path and Drained.
func TestPeekAdvance(t *testing.T) {
	q := New[int](4)
	if q.Peek() != nil || !q.Drained() {
		t.Fatalf("empty queue: Peek %v Drained %v", q.Peek(), q.Drained())
	}
	for lap := 0; lap < 3; lap++ {
		for i := 0; i < 4; i++ {
			v := lap*10 + i
			if !q.TryPush(&v) {
				t.Fatalf("lap %d: TryPush %d failed", lap, i)
			}
		}
		if q.Drained() {
			t.Fatalf("lap %d: Drained with 4 values queued", lap)
		}
		for i := 0; i < 4; i++ {
			p := q.Peek()
			if p == nil || *p != lap*10+i {
				t.Fatalf("lap %d: Peek = %v, want %d", lap, p, lap*10+i)
			}
			if p2 := q.Peek(); p2 != p {
				t.Fatalf("lap %d: second Peek moved: %p vs %p", lap, p2, p)
			}
			q.Advance()
		}
		if q.Peek() != nil || !q.Drained() {
			t.Fatalf("lap %d: after Advance over all: Peek %v Drained %v", lap, q.Peek(), q.Drained())
		}
		q.Commit()
		if q.Popped() != uint64(4*(lap+1)) {
			t.Fatalf("lap %d: Popped = %d", lap, q.Popped())
		}
	}
}

func BenchmarkPushPop(b *testing.B) {
	q := New[[4]int64](1024)
	var v, out [4]int64
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		q.TryPush(&v)
		q.Pop(&out)
		if i%64 == 63 {
			q.Commit() // the loop commits once per batch
		}
	}
	q.Commit()
}

// BenchmarkParallelPush measures contended pushes; one consumer goroutine
// drains while b.RunParallel producers push. The baseline is a buffered
// channel under the same load.
func BenchmarkParallelPush(b *testing.B) {
	for _, size := range []int{1024, 8192} {
		b.Run("mpsc/"+strconv.Itoa(size), func(b *testing.B) {
			q := New[[4]int64](size)
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				var out [4]int64
				for {
					if q.Pop(&out) {
						continue
					}
					q.Commit()
					select {
					case <-stop:
						return
					default:
						runtime.Gosched()
					}
				}
			}()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var v [4]int64
				for pb.Next() {
					for !q.TryPush(&v) {
						runtime.Gosched()
					}
				}
			})
			close(stop)
			<-done
		})
		b.Run("chan/"+strconv.Itoa(size), func(b *testing.B) {
			ch := make(chan [4]int64, size)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for range ch {
				}
			}()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var v [4]int64
				for pb.Next() {
					ch <- v
				}
			})
			close(ch)
			<-done
		})
	}
}
