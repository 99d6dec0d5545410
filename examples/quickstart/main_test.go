package main

import (
	"bytes"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// IgnoreCurrent: the goroutines that exist before any test are those
	// of ants' package-level default pool, started by its init when the
	// engine is imported.
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

// TestRun runs the Quick start and checks what it prints: the request sees
// the send made before it, and the graceful stop delivers everything.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatalf("run: %v", err)
	}
	const want = "dev-42: 1 reading(s)\nprocessed 3 messages, 0 dead letters\n"
	if got := out.String(); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}
