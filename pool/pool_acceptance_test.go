package pool_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentloop/agentloop/pool"
)

// Buffers: "every receiver calls Buffer.Release exactly once when it no
// longer reads it, and the buffer goes back to its class when the last
// reference is released, never earlier."
func TestAcceptancePoolBuffersRefcount(t *testing.T) {
	var bs pool.Buffers
	b := bs.Get(100)
	if b.Len() != 100 || len(b.Bytes()) != 100 || cap(b.Bytes()) != 100 {
		t.Fatalf("Len %d, len %d, cap %d; want 100", b.Len(), len(b.Bytes()), cap(b.Bytes()))
	}
	b.Retain(3)
	b.Retain(0)
	for i := 0; i < 3; i++ {
		b.Release()
		if st := bs.Stats(); st.Returns != 0 || st.Live != 1 {
			t.Fatalf("after %d of 4 releases: %+v", i+1, st)
		}
	}
	b.Release()
	if st := bs.Stats(); st.Returns != 1 || st.Live != 0 || st.Gets != 1 {
		t.Errorf("after the last release: %+v", st)
	}
	mustPanic(t, "Release after the last", b.Release)
	mustPanic(t, "Retain after the last", func() { b.Retain(1) })
	mustPanic(t, "Retain(-1)", func() { bs.Get(1).Retain(-1) })
	mustPanic(t, "Get(-1)", func() { bs.Get(-1) })
	big := bs.Get(pool.MaxBufferSize + 1)
	big.Release()
	if st := bs.Stats(); st.Oversized != 1 || st.Live != 1 { // the Retain(-1) buffer is still live
		t.Errorf("oversized: %+v", st)
	}
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", what)
		}
	}()
	f()
}

// Pool: "The zero value is ready to use", "Reset prepares an object for
// reuse; Put calls it before keeping the object", "Put(nil) does nothing".
func TestAcceptancePoolPool(t *testing.T) {
	var resets atomic.Int32
	p := pool.Pool[[]int]{New: func() *[]int { s := make([]int, 0, 4); return &s }, Reset: func(s *[]int) { resets.Add(1); *s = (*s)[:0] }}
	x := p.Get()
	*x = append(*x, 1)
	p.Put(x)
	p.Put(nil)
	if resets.Load() != 1 {
		t.Errorf("Reset ran %d times, want 1", resets.Load())
	}
	if st := p.Stats(); st.Puts != 1 || st.Misses != 1 {
		t.Errorf("stats %+v", st)
	}
	var z pool.Pool[int]
	if v := z.Get(); v == nil || *v != 0 {
		t.Error("zero Pool Get")
	}
}

// Workers: Submit "never blocks"; ErrOverloaded, ErrClosed, ErrNilFunc;
// "Once Submit returns nil, done is called exactly once"; a panic reaches
// done as a *PanicError matching ErrPanic.
func TestAcceptancePoolWorkers(t *testing.T) {
	_, err := pool.NewWorkers(0)
	if !errors.Is(err, pool.ErrInvalidSize) {
		t.Errorf("NewWorkers(0): %v", err)
	}
	for _, o := range []pool.WorkerOption{pool.WithQueue(-1), pool.WithIdleTimeout(0)} {
		if _, err := pool.NewWorkers(1, o); !errors.Is(err, pool.ErrInvalidOption) {
			t.Errorf("bad option: %v", err)
		}
	}
	w, err := pool.NewWorkers(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Submit(nil, func([]byte, error) {}); !errors.Is(err, pool.ErrNilFunc) {
		t.Errorf("nil work: %v", err)
	}
	release := make(chan struct{})
	done := make(chan error, 4)
	if err := w.Submit(func() ([]byte, error) { <-release; panic("work") }, func(_ []byte, err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	if err := w.Submit(func() ([]byte, error) { return nil, nil }, func([]byte, error) {}); !errors.Is(err, pool.ErrOverloaded) {
		t.Errorf("second Submit on a busy pool: %v", err)
	}
	close(release)
	select {
	case err := <-done:
		var pe *pool.PanicError
		if !errors.As(err, &pe) || !errors.Is(err, pool.ErrPanic) || pe.Value != "work" || len(pe.Stack) == 0 {
			t.Errorf("panicking work: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("done never called")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Submit(func() ([]byte, error) { return nil, nil }, func([]byte, error) {}); !errors.Is(err, pool.ErrClosed) {
		t.Errorf("Submit after Close: %v", err)
	}
	if len(done) != 0 {
		t.Error("done called more than once")
	}
}
