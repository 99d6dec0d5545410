package gateway

import (
	"testing"

	"go.uber.org/goleak"
)

// IgnoreCurrent: the goroutines that exist before any test are those of
// ants' package-level default pool, started by its init.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }
