package browsertest_test

import (
	"testing"

	"go.uber.org/goleak"
)

// IgnoreCurrent: goroutines started in package init by the libraries the
// profiler imports are not the test's.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}
