package main

import (
	"bytes"
	"os"
	"strings"
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

// TestReadmeShowsThisProgram keeps the README's Quick start and this file
// the same program: the README shows the code from its first import on.
func TestReadmeShowsThisProgram(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	code := string(src)
	start := strings.Index(code, "import (")
	if start < 0 {
		t.Fatal("main.go has no import block")
	}
	want := "```go\npackage main\n\n" + code[start:] + "```\n"
	if !strings.Contains(string(readme), want) {
		t.Errorf("README.md does not show examples/quickstart/main.go from its import block on, after a line \"package main\":\n%s", want)
	}
}
