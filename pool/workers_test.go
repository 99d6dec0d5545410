package pool

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/panjf2000/ants/v2"
)

type result struct {
	res []byte
	err error
}

// newWorkers returns Workers that the test closes at its end.
func newWorkers(t *testing.T, size int, opts ...WorkerOption) *Workers {
	t.Helper()
	w, err := NewWorkers(size, opts...)
	if err != nil {
		t.Fatalf("NewWorkers(%d): %v", size, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := w.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return w
}

// submit submits work and returns the channel its result arrives on.
func submit(t *testing.T, w *Workers, work func() ([]byte, error)) <-chan result {
	t.Helper()
	ch := make(chan result, 1)
	if err := w.Submit(work, func(res []byte, err error) { ch <- result{res, err} }); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return ch
}

// blocker returns work that signals started and then waits for release.
func blocker(started chan<- struct{}, release <-chan struct{}) func() ([]byte, error) {
	return func() ([]byte, error) {
		started <- struct{}{}
		<-release
		return []byte("unblocked"), nil
	}
}

func TestNewWorkersInvalid(t *testing.T) {
	cases := []struct {
		name string
		size int
		opts []WorkerOption
		want error
		msg  string
	}{
		{"zero size", 0, nil, ErrInvalidSize, "pool: invalid worker count: 0"},
		{"negative size", -3, nil, ErrInvalidSize, "pool: invalid worker count: -3"},
		{"negative queue", 1, []WorkerOption{WithQueue(-1)}, ErrInvalidOption, "WithQueue(-1)"},
		{"zero idle timeout", 1, []WorkerOption{WithIdleTimeout(0)}, ErrInvalidOption, "WithIdleTimeout(0s)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, err := NewWorkers(tc.size, tc.opts...)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) || w != nil {
				t.Fatalf("NewWorkers = %v, %v; want nil, %v containing %q", w, err, tc.want, tc.msg)
			}
		})
	}
}

func TestWorkersResult(t *testing.T) {
	errWork := errors.New("work failed")
	cases := []struct {
		name    string
		res     []byte
		err     error
		wantErr error
	}{
		{"bytes", []byte("reading"), nil, nil},
		{"empty", nil, nil, nil},
		{"error", nil, errWork, errWork},
		{"bytes and error", []byte("partial"), errWork, errWork},
	}
	w := newWorkers(t, len(cases)) // one worker per submission: see TestWorkersPanic
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := <-submit(t, w, func() ([]byte, error) { return tc.res, tc.err })
			if !bytes.Equal(got.res, tc.res) || !errors.Is(got.err, tc.wantErr) || (tc.wantErr == nil) != (got.err == nil) {
				t.Fatalf("done(%q, %v), want (%q, %v)", got.res, got.err, tc.res, tc.wantErr)
			}
		})
	}
	// Completed counts a task once its done has returned, which may be just
	// after the result was received: Close waits for that.
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := w.Stats(); s.Submitted != uint64(len(cases)) || s.Completed != uint64(len(cases)) || s.Panics != 0 {
		t.Fatalf("Stats = %+v", s)
	}
}

func TestWorkersSubmitNil(t *testing.T) {
	w := newWorkers(t, 1)
	cases := []struct {
		name string
		work func() ([]byte, error)
		done func([]byte, error)
		want string
	}{
		{"nil work", nil, func([]byte, error) {}, "pool: nil function: work"},
		{"nil done", func() ([]byte, error) { return nil, nil }, nil, "pool: nil function: done"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := w.Submit(tc.work, tc.done); !errors.Is(err, ErrNilFunc) || err.Error() != tc.want {
				t.Fatalf("Submit = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestWorkersPanic(t *testing.T) {
	errCause := errors.New("sensor unplugged")
	cases := []struct {
		name      string
		work      func() ([]byte, error)
		wantValue any
		wantIs    error // besides ErrPanic
	}{
		{"string", func() ([]byte, error) { panic("boom") }, "boom", nil},
		{"error", func() ([]byte, error) { panic(errCause) }, errCause, errCause},
		{"goexit", func() ([]byte, error) { runtime.Goexit(); return nil, nil }, errGoexit, nil},
	}
	// One worker per submission below (the cases and one more): a worker
	// that just delivered may not be back in ants' free list yet, and the
	// test must not depend on how fast it gets there.
	w := newWorkers(t, len(cases)+1)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := <-submit(t, w, tc.work)
			var pe *PanicError
			if !errors.Is(got.err, ErrPanic) || !errors.As(got.err, &pe) {
				t.Fatalf("done error %v, want a *PanicError matching ErrPanic", got.err)
			}
			if pe.Value != tc.wantValue || got.res != nil {
				t.Fatalf("Value %v, res %q; want %v, nil", pe.Value, got.res, tc.wantValue)
			}
			if tc.wantIs != nil && !errors.Is(got.err, tc.wantIs) {
				t.Fatalf("%v does not unwrap to %v", got.err, tc.wantIs)
			}
			if !strings.HasPrefix(got.err.Error(), "pool: work panicked: ") {
				t.Fatalf("message %q", got.err)
			}
			if !bytes.Contains(pe.Stack, []byte("workers_test.go")) {
				t.Fatalf("stack does not show the panicking work:\n%s", pe.Stack)
			}
		})
	}
	// The workers survived: ordinary work still runs.
	if got := <-submit(t, w, func() ([]byte, error) { return []byte("ok"), nil }); string(got.res) != "ok" {
		t.Fatalf("after panics: done(%q, %v)", got.res, got.err)
	}
	if s := w.Stats(); s.Panics != uint64(len(cases)) {
		t.Fatalf("Panics = %d, want %d", s.Panics, len(cases))
	}
}

func TestWorkersDonePanic(t *testing.T) {
	got := make(chan *PanicError, 1)
	w := newWorkers(t, 1, WithPanicHandler(func(pe *PanicError) { got <- pe }))
	err := w.Submit(func() ([]byte, error) { return nil, nil }, func([]byte, error) { panic("done broke") })
	if err != nil {
		t.Fatal(err)
	}
	if pe := <-got; pe.Value != "done broke" {
		t.Fatalf("handler got %v", pe.Value)
	}
}

func TestWorkersOverload(t *testing.T) {
	cases := []struct {
		name        string
		size, queue int
	}{
		{"no queue", 2, 0},
		{"queue", 1, 2},
		{"wide queue", 2, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorkers(t, tc.size, WithQueue(tc.queue))
			started := make(chan struct{})
			release := make(chan struct{})
			var results []<-chan result
			for range tc.size + tc.queue {
				results = append(results, submit(t, w, blocker(started, release)))
			}
			for range tc.size {
				<-started
			}
			s := w.Stats()
			if s.Running != tc.size || s.Waiting != tc.queue || w.Running() != tc.size {
				t.Fatalf("saturated: Stats %+v, Running() %d; want %d running, %d waiting", s, w.Running(), tc.size, tc.queue)
			}
			called := false
			err := w.Submit(func() ([]byte, error) { called = true; return nil, nil }, func([]byte, error) { called = true })
			if !errors.Is(err, ErrOverloaded) || !errors.Is(err, ants.ErrPoolOverload) {
				t.Fatalf("Submit when saturated = %v, want ErrOverloaded", err)
			}
			if !strings.HasPrefix(err.Error(), "pool: workers overloaded") {
				t.Fatalf("message %q", err)
			}
			if s := w.Stats(); s.Rejected != 1 || s.Submitted != uint64(tc.size+tc.queue) {
				t.Fatalf("after overload: %+v", s)
			}
			// Let the queued tasks start too, then drain everything.
			go func() {
				for range tc.queue {
					<-started
				}
			}()
			close(release)
			for _, ch := range results {
				if got := <-ch; string(got.res) != "unblocked" || got.err != nil {
					t.Fatalf("done(%q, %v)", got.res, got.err)
				}
			}
			if called {
				t.Fatal("refused work or its done was called")
			}
		})
	}
}

// TestWorkersCloseDeadline closes while work is stuck: Close gives up at the
// deadline and says how much is unfinished, Submit is refused from then on,
// and the stuck work still delivers its result once released.
func TestWorkersCloseDeadline(t *testing.T) {
	w, err := NewWorkers(2)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	release := make(chan struct{})
	stuck := submit(t, w, blocker(started, release))
	<-started

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = w.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "1 tasks unfinished") {
		t.Fatalf("Close with stuck work = %v, want DeadlineExceeded with 1 unfinished", err)
	}
	if err := w.Submit(func() ([]byte, error) { return nil, nil }, func([]byte, error) {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Submit after Close = %v, want ErrClosed", err)
	}

	close(release)
	if got := <-stuck; string(got.res) != "unblocked" {
		t.Fatalf("stuck work delivered (%q, %v)", got.res, got.err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatalf("second Close after the work finished = %v", err)
	}
}

func TestWorkersClose(t *testing.T) {
	w, err := NewWorkers(4, WithQueue(4))
	if err != nil {
		t.Fatal(err)
	}
	var got []<-chan result
	for range 6 {
		got = append(got, submit(t, w, func() ([]byte, error) { return []byte("x"), nil }))
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatalf("Close = %v", err)
	}
	// Close returned only after every accepted task delivered its result.
	for _, ch := range got {
		select {
		case <-ch:
		default:
			t.Fatal("Close returned before a done was called")
		}
	}
	for i := range 2 {
		if err := w.Close(context.Background()); err != nil {
			t.Fatalf("Close #%d = %v, want nil (idempotent)", i+2, err)
		}
	}
	err = w.Submit(func() ([]byte, error) { return nil, nil }, func([]byte, error) {})
	if !errors.Is(err, ErrClosed) || err.Error() != "pool: workers closed" {
		t.Fatalf("Submit after Close = %v, want ErrClosed", err)
	}
}

// TestWorkersConcurrent submits from many goroutines while the pool is
// saturated now and then: every accepted task delivers exactly once, every
// refusal is ErrOverloaded, and Close after the storm leaves nothing behind.
func TestWorkersConcurrent(t *testing.T) {
	const submitters, each = 8, 300
	w, err := NewWorkers(4, WithQueue(8))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu        sync.Mutex
		delivered int
		wg        sync.WaitGroup
	)
	accepted := make([]int, submitters)
	for g := range submitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				err := w.Submit(func() ([]byte, error) { return nil, nil }, func([]byte, error) {
					mu.Lock()
					delivered++
					mu.Unlock()
				})
				switch {
				case err == nil:
					accepted[g]++
				case errors.Is(err, ErrOverloaded):
					runtime.Gosched()
				default:
					t.Errorf("Submit = %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range accepted {
		total += n
	}
	s := w.Stats()
	if delivered != total || s.Completed != uint64(total) || s.Submitted+s.Rejected != submitters*each {
		t.Fatalf("accepted %d, delivered %d, Stats %+v", total, delivered, s)
	}
}
