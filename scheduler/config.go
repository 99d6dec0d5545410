package scheduler

import (
	"errors"
	"fmt"
	"math"
)

// MaxBuckets is the largest [Config.Buckets]: the queue keeps one bit per
// bucket in a uint64.
const MaxBuckets = 64

// Coefficients weigh the three terms of an entry's weight:
//
//	weight = Priority·priority + CPU·cpu + Mem·mem
//
// where each term is in [0, 1] (see the package documentation). Each
// coefficient must be finite and ≥ 0, and their sum must be > 0; the sum
// need not be 1, since the queue quantises weight/(Priority+CPU+Mem).
type Coefficients struct {
	Priority float64 // configured priority, 0..100 mapped to [0, 1]
	CPU      float64 // loop-time headroom: 1 − recent share of handler time
	Mem      float64 // memory headroom: 1 − share of the loop's queued bytes
}

// Sum returns Priority + CPU + Mem, the largest weight an entry can have.
func (c Coefficients) Sum() float64 { return c.Priority + c.CPU + c.Mem }

// Config configures a [Queue]. Start from [DefaultConfig] and change what
// you need; a zero field is an error, not a default.
type Config struct {
	// Coefficients weigh priority, CPU headroom and memory headroom.
	Coefficients Coefficients

	// Buckets is how many weight classes the queue keeps, 1..MaxBuckets.
	// Weights are quantised to Buckets equal slices of [0, Coefficients.Sum()]:
	// entries in one bucket are served round robin, a higher bucket first.
	Buckets int

	// EpochPicks closes an epoch after this many picks (≥ 1). Weights
	// change only between epochs.
	EpochPicks int

	// MaxWait is the age, in picks, after which the oldest queued entry is
	// served ahead of heavier ones (≥ 1). It sets the starvation bound: see
	// [Config.WaitBound].
	MaxWait int

	// Alpha is the EWMA smoothing factor of handler time per epoch, in (0, 1]:
	// the weight of the last epoch against the history. 1 keeps no history,
	// so a hog that was held back for one epoch looks idle and regains its
	// weight in the next; values up to about 0.5 keep it down.
	Alpha float64
}

// DefaultConfig returns the default configuration: weight = 0.6·priority +
// 0.2·cpu + 0.2·mem; 32 buckets; an epoch every 128 picks; aging after 128
// picks; EWMA factor 0.25 (about four epochs of memory).
func DefaultConfig() Config {
	return Config{
		Coefficients: Coefficients{Priority: 0.6, CPU: 0.2, Mem: 0.2},
		Buckets:      32,
		EpochPicks:   128,
		MaxWait:      128,
		Alpha:        0.25,
	}
}

// Validate reports every invalid field of c, joined with [errors.Join]; each
// error wraps one of the package's sentinels and names the field and value.
func (c Config) Validate() error {
	var errs []error
	coef := func(name string, v float64) {
		if !(v >= 0) || math.IsInf(v, 0) { // !(v >= 0) also catches NaN
			errs = append(errs, fmt.Errorf("%w: %s = %v (want finite, >= 0)", ErrCoefficient, name, v))
		}
	}
	coef("Coefficients.Priority", c.Coefficients.Priority)
	coef("Coefficients.CPU", c.Coefficients.CPU)
	coef("Coefficients.Mem", c.Coefficients.Mem)
	if len(errs) == 0 {
		// Only meaningful for valid terms; a sum of finite non-negative
		// numbers can still overflow to +Inf.
		if s := c.Coefficients.Sum(); !(s > 0) || math.IsInf(s, 0) {
			errs = append(errs, fmt.Errorf("%w: %+v (want a finite sum > 0)", ErrNoWeight, c.Coefficients))
		}
	}
	if c.Buckets < 1 || c.Buckets > MaxBuckets {
		errs = append(errs, fmt.Errorf("%w: Buckets = %d (want 1..%d)", ErrBuckets, c.Buckets, MaxBuckets))
	}
	if c.EpochPicks < 1 {
		errs = append(errs, fmt.Errorf("%w: EpochPicks = %d (want >= 1)", ErrEpochPicks, c.EpochPicks))
	}
	if c.MaxWait < 1 {
		errs = append(errs, fmt.Errorf("%w: MaxWait = %d (want >= 1)", ErrMaxWait, c.MaxWait))
	}
	if !(c.Alpha > 0 && c.Alpha <= 1) {
		errs = append(errs, fmt.Errorf("%w: Alpha = %v (want 0 < Alpha <= 1)", ErrAlpha, c.Alpha))
	}
	return errors.Join(errs...)
}

// WaitBound is the starvation bound: an entry pushed while queued other
// entries were already in the queue is popped after at most
//
//	MaxWait + 2·queued
//
// picks of other entries, whatever its weight and whatever is pushed after
// it. A queue that never holds more than n entries therefore serves every
// entry within MaxWait + 2·(n−1) picks. The bound is tight: a lone heavy
// entry served between aged ones reaches it.
func (c Config) WaitBound(queued int) int { return c.MaxWait + 2*queued }
