package main

import (
	"bytes"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if name := os.Getenv(envNode); name != "" { // a node the demo re-executed
		os.Exit(child(name))
	}
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) // pools started at init by dependencies
}

// TestDemoAccountsForEverySend runs the demo small: three node processes,
// one killed; both survivors declare it lost, and the accounting line
// says, with figures that add up, that it is exact.
func TestDemoAccountsForEverySend(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run([]string{"-devices", "300", "-duration", "1500ms", "-rate", "2000", "-heartbeat", "50ms", "-lost-after", "400ms"}, &out, &errOut)
	t.Log(out.String())
	if err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	re := regexp.MustCompile(`accounting \(cluster-wide, .*\): accepted (\d+) = delivered (\d+) \(on the sender's node (\d+) \+ confirmed by another (\d+)\) \+ dead-lettered (\d+) .*: (\w+)`)
	m := re.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatal("no accounting line")
	}
	n := make([]uint64, 6)
	for i := range 5 {
		n[i], _ = strconv.ParseUint(m[i+1], 10, 64)
	}
	if m[6] != "exact" || n[0] != n[1]+n[4] || n[1] != n[2]+n[3] || n[0] == 0 {
		t.Fatalf("accounting: %s", m[0])
	}
	if c := strings.Count(out.String(), "declared gw-3 lost"); c != 2 {
		t.Fatalf("gw-3 declared lost %d times, want by both survivors", c)
	}
	if !strings.Contains(out.String(), "SIGKILL gw-3") {
		t.Fatal("no kill")
	}
}

func TestParseRefusesBadSettings(t *testing.T) {
	for _, args := range [][]string{{"-devices", "2"}, {"-rate", "5"}, {"-heartbeat", "1s", "-lost-after", "1s"}, {"-nosuch"}} {
		if _, err := parse(args, &bytes.Buffer{}); err == nil {
			t.Errorf("parse(%q) accepted", args)
		}
	}
}
