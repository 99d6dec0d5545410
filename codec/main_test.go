package codec_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/agentloop/agentloop/codec"
	"github.com/agentloop/agentloop/engine"
)

func TestMain(m *testing.M) {
	// IgnoreCurrent: the goroutines of ants' package-level default pool,
	// started by its init before any test.
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

// waitTimeout only turns a hang into a failure.
const waitTimeout = 10 * time.Second

// Point and Greeting are JSON messages of the tests, registered in
// Default (registering the same binding again is a no-op, so -count works).
type Point struct{ X, Y int }

type Greeting struct{ To string }

func init() {
	codec.MustRegister[Point](codec.Default, "test.Point", codec.JSON)
	codec.MustRegister[Greeting](codec.Default, "test.Greeting", codec.JSON)
}

// startedEngine returns a two-loop engine, stopped when the test ends,
// whose own log is discarded (the router's goes to slog.Default).
func startedEngine(t testing.TB) *engine.Engine {
	t.Helper()
	e, err := engine.New(engine.WithLoops(2), engine.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return e
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wait receives from ch or fails the test after waitTimeout.
func wait[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// checkErr checks that err matches target and mentions every string.
func checkErr(t testing.TB, what string, err, target error, mentions ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: nil error, want %v", what, target)
		return
	}
	if !errors.Is(err, target) {
		t.Errorf("%s: error %q does not match %v", what, err, target)
	}
	for _, s := range mentions {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%s: error %q does not mention %q", what, err, s)
		}
	}
}
