package messaging_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The bus starts no goroutine; the cleanups of weak subscriptions run on
// the runtime's own.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
