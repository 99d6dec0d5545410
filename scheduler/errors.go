package scheduler

import "errors"

// Errors returned by this package. They are wrapped with the offending field
// and value (fmt.Errorf("%w: ...")), and [Config.Validate] joins one per bad
// field, so compare with [errors.Is]. Nothing in this package panics on bad
// input; only misuse of an [Entry] (linking it into two queues) panics.
var (
	// ErrCoefficient occurs when a weight coefficient in [Coefficients] is
	// negative, NaN or infinite.
	ErrCoefficient = errors.New("scheduler: invalid coefficient")

	// ErrNoWeight occurs when the three coefficients sum to zero, so that no
	// term of the weight counts and every entry would weigh the same.
	ErrNoWeight = errors.New("scheduler: coefficients sum to zero")

	// ErrBuckets occurs when [Config.Buckets] is outside 1..[MaxBuckets].
	ErrBuckets = errors.New("scheduler: bucket count out of range")

	// ErrEpochPicks occurs when [Config.EpochPicks] is less than 1.
	ErrEpochPicks = errors.New("scheduler: epoch length out of range")

	// ErrMaxWait occurs when [Config.MaxWait] is less than 1.
	ErrMaxWait = errors.New("scheduler: max wait out of range")

	// ErrAlpha occurs when [Config.Alpha], the EWMA smoothing factor, is not
	// in (0, 1].
	ErrAlpha = errors.New("scheduler: smoothing factor out of range")

	// ErrPriority occurs when [Entry.SetPriority] is given a priority outside
	// 0..[MaxPriority].
	ErrPriority = errors.New("scheduler: priority out of range")
)
