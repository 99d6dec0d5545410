package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/agentloop/agentloop/engine"
)

func TestVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"version"}, &env{stdout: &out, stderr: &errOut}); code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	if first, _, _ := strings.Cut(out.String(), "\n"); !strings.HasPrefix(first, "agentloop "+engine.Version+" (go") {
		t.Errorf("first line %q, want the release and the toolchain", first)
	}
	if code := run([]string{"version", "extra"}, &env{stdout: &out, stderr: &errOut}); code != exitUsage {
		t.Errorf("version with an argument: exit %d, want %d", code, exitUsage)
	}
}
