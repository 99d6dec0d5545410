//go:build !race

package pool

// raceEnabled: see race_test.go.
const raceEnabled = false
