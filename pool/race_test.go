//go:build race

package pool

// raceEnabled: under the race detector sync.Pool drops a random share of
// Puts on purpose, so tests cannot expect exact hit counts.
const raceEnabled = true
