package peers

import (
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test or benchmark leaves a goroutine behind.
// Goroutines that exist before any test are ignored: ants starts its
// package-level default pool (a purge and a clock goroutine) in an init
// function, and that pool is never released.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

var allWorkloads = []*workload{&w1, &w2, &w3, &w4, &w5, &w6, &w7, &w8, &w9}

// TestWorkloads runs every implementation of every workload on a small n:
// each checks that what it counted arrived, and every metric the workload
// promises must come out finite and positive. Memory per actor is only
// required to be finite: on a few hundred actors the collector's noise
// can outweigh them.
func TestWorkloads(t *testing.T) {
	for _, w := range allWorkloads {
		for _, im := range w.impls {
			t.Run(w.name+"/"+im.name, func(t *testing.T) {
				r := &runner{tb: t, n: w.testN, metrics: map[string]float64{}}
				im.run(r)
				if r.checks == 0 {
					t.Fatal("no delivery check ran")
				}
				for _, unit := range w.metrics {
					v, ok := r.metrics[unit]
					if !ok || !finite(v) || (v <= 0 && unit != "bytes/agent") {
						t.Errorf("metric %s = %v (reported: %v)", unit, v, ok)
					}
				}
			})
		}
	}
}

// TestImplNames checks the sub-benchmark names that benchstat -col /impl
// and the report generator rely on.
func TestImplNames(t *testing.T) {
	known := map[string]bool{"agentloop": true, "agentloop-unpooled": true, "channels": true, "ants": true, "protoactor": true}
	for _, w := range allWorkloads {
		seen := map[string]bool{}
		for _, im := range w.impls {
			i := strings.LastIndex(im.name, "impl=")
			if i < 0 || (i > 0 && im.name[i-1] != '/') || !known[im.name[i+len("impl="):]] {
				t.Errorf("%s: sub-benchmark %q does not end in impl=<known implementation>", w.name, im.name)
			}
			if seen[im.name] {
				t.Errorf("%s: sub-benchmark %q twice", w.name, im.name)
			}
			seen[im.name] = true
		}
		if !seen["impl=agentloop"] && !strings.HasSuffix(w.impls[0].name, "/impl=agentloop") {
			t.Errorf("%s: the first implementation must be agentloop", w.name)
		}
	}
}
