package pool

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind. Importing
// ants starts its default pool's goroutines before TestMain runs;
// IgnoreCurrent leaves exactly those out.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}
