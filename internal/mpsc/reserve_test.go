package mpsc

import (
	"sync"
	"testing"
)

// TestReservePublish: a slot filled in place reaches the consumer only when
// published, in reservation order, and a full queue refuses a reservation.
func TestReservePublish(t *testing.T) {
	q := New[int](2)
	s1, p1, ok := q.TryReserve()
	if !ok {
		t.Fatal("TryReserve on an empty queue failed")
	}
	s2, p2, ok := q.TryReserve()
	if !ok {
		t.Fatal("second TryReserve failed")
	}
	if _, _, ok := q.TryReserve(); ok {
		t.Fatal("TryReserve on a full queue succeeded")
	}
	*s2 = 2
	q.Publish(p2)
	if q.Peek() != nil {
		t.Fatal("Peek passed a reserved slot that was not published")
	}
	*s1 = 1
	q.Publish(p1)
	for want := 1; want <= 2; want++ {
		var out int
		if !q.Pop(&out) || out != want {
			t.Fatalf("Pop = %d, want %d", out, want)
		}
	}
	q.Commit()
	if q.Popped() != 2 || q.Len() != 0 {
		t.Fatalf("after Commit: Popped %d Len %d", q.Popped(), q.Len())
	}
}

// TestCommitWithoutPops: Commit after a batch that popped nothing leaves
// the published position as it was.
func TestCommitWithoutPops(t *testing.T) {
	q := New[int](4)
	v := 1
	q.TryPush(&v)
	q.Commit()
	if q.Popped() != 0 {
		t.Fatalf("Popped = %d before any pop", q.Popped())
	}
	var out int
	q.Pop(&out)
	q.Commit()
	q.Commit()
	if q.Popped() != 1 {
		t.Fatalf("Popped = %d, want 1", q.Popped())
	}
}

// TestReserveConcurrent: producers filling slots in place, racing with a
// consumer that commits per batch, lose and reorder nothing per producer.
func TestReserveConcurrent(t *testing.T) {
	const producers, n = 4, 5000
	q := New[[2]int](8)
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; {
				if s, pos, ok := q.TryReserve(); ok {
					*s = [2]int{p, i}
					q.Publish(pos)
					i++
				}
			}
		}()
	}
	next := make([]int, producers)
	for got := 0; got < producers*n; {
		for v := q.Peek(); v != nil; v = q.Peek() {
			if v[1] != next[v[0]] {
				t.Fatalf("producer %d: got %d, want %d", v[0], v[1], next[v[0]])
			}
			next[v[0]]++
			q.Advance()
			got++
		}
		q.Commit()
	}
	wg.Wait()
}

// PublishedAt tells whether the value at a position taken from Head has
// arrived, while the consumer stays put or has moved past it, and turns
// false once the slot is reused a lap later.
func TestPublishedAt(t *testing.T) {
	q := New[int](2)
	h := q.Head()
	if q.PublishedAt(h) {
		t.Fatal("PublishedAt true on an empty queue")
	}
	_, pos, ok := q.TryReserve()
	if !ok || pos != h {
		t.Fatalf("TryReserve = %d, %v; want position %d", pos, ok, h)
	}
	if q.PublishedAt(h) {
		t.Fatal("PublishedAt true for a reserved, unpublished slot")
	}
	q.Publish(pos)
	if !q.PublishedAt(h) {
		t.Fatal("PublishedAt false after Publish")
	}
	var v int
	if !q.Pop(&v) {
		t.Fatal("Pop found nothing")
	}
	q.Commit()
	if q.Head() != h+1 || !q.PublishedAt(h) {
		t.Fatalf("after Pop: Head %d, PublishedAt(%d) %v; want %d, true", q.Head(), h, q.PublishedAt(h), h+1)
	}
	for i := 0; i < 2; i++ { // the slot of h comes round again at h+2
		one := i
		if !q.TryPush(&one) {
			t.Fatal("TryPush refused on a queue with room")
		}
	}
	if q.PublishedAt(h) {
		t.Fatal("PublishedAt still true after the slot was reused")
	}
}
