package gateway

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Runner runs the mix once at an offered rate (msgs/s).
type Runner func(ctx context.Context, rate int) (Summary, error)

// RunnerFor returns a Runner that runs cfg (with its rate replaced) on the
// engine, or on the goroutine baseline.
func RunnerFor(cfg *Config, baseline bool, opts Options) Runner {
	return func(ctx context.Context, rate int) (Summary, error) {
		c := cfg.Clone()
		c.Load.Rate = rate
		c.SetBy("load.rate", "the searched rate")
		if baseline {
			return RunBaseline(ctx, c, opts)
		}
		return Run(ctx, c, opts)
	}
}

// SearchOptions shape the search for the highest passing rate.
type SearchOptions struct {
	Start    int           // the first rate tried, msgs/s (> 0)
	Max      int           // the highest rate tried (≥ Start)
	Factor   float64       // the step-up factor (> 1)
	P99      time.Duration // the latency target: a run passes with p99 ≤ P99 ...
	MinRatio float64       // ... and an achieved rate ≥ MinRatio × offered (0 < MinRatio ≤ 1)
	Rounds   int           // bisection rounds after the bracket is found (≥ 0)
	// MaxSteps caps the runs of the stepping phase (0: no cap), for a quick
	// search.
	MaxSteps int
	// Retries is how many more times a failing rate is run before it
	// counts as failed: on a shared machine a run can fail for a reason
	// that has nothing to do with the system under test.
	Retries int
}

// DefaultSearch are the options of the load tool: 100 000 msgs/s doubling
// up to 8 M, p99 ≤ 1 ms with 95 % of the offered rate achieved, three
// bisection rounds, one retry.
var DefaultSearch = SearchOptions{
	Start: 100_000, Max: 8_000_000, Factor: 2, P99: time.Millisecond, MinRatio: 0.95, Rounds: 3, Retries: 1,
}

// Validate checks the options; Search does too, before its first run.
func (o SearchOptions) Validate() error {
	switch {
	case o.Start < 1:
		return fmt.Errorf("search: start rate %d: want ≥ 1", o.Start)
	case o.Max < o.Start:
		return fmt.Errorf("search: max rate %d is below the start rate %d", o.Max, o.Start)
	case !(o.Factor > 1) || math.IsInf(o.Factor, 0):
		return fmt.Errorf("search: step factor %v: want > 1", o.Factor)
	case o.P99 <= 0:
		return fmt.Errorf("search: p99 target %v: want > 0", o.P99)
	case !(o.MinRatio > 0 && o.MinRatio <= 1):
		return fmt.Errorf("search: achieved ratio %v: want in (0, 1]", o.MinRatio)
	case o.Rounds < 0 || o.MaxSteps < 0 || o.Retries < 0:
		return errors.New("search: rounds, steps and retries cannot be negative")
	}
	return nil
}

// Step is one run of a search.
type Step struct {
	Phase   string // "up", "down" or "bisect"
	Rate    int
	Attempt int // 0 for the first run of a rate, 1.. for retries
	Pass    bool
	Summary Summary
}

// SearchResult is the outcome of a search.
type SearchResult struct {
	// MaxRate is the highest rate that passed, 0 when none did.
	MaxRate int
	// Best is the passing run at MaxRate.
	Best Summary
	// FirstFail is the lowest rate seen failing above MaxRate, 0 when every
	// rate up to Max passed.
	FirstFail int
	Steps     []Step
}

// Search finds the highest offered rate that passes (Summary.Pass with
// o.P99 and o.MinRatio):
//
//  1. Step up: run Start, Start·Factor, Start·Factor², … (the last step
//     clamped to Max) until a rate fails, Max passes, or MaxSteps runs
//     were made. If Start itself fails, step down instead: Start/Factor,
//     Start/Factor², … (at most four steps) until one passes.
//  2. Bisect: between the highest pass lo and the lowest fail hi, run the
//     geometric midpoint √(lo·hi) for Rounds rounds (fewer once hi/lo ≤
//     1.02), moving lo up on a pass and hi down on a failure.
//
// A failing rate is run again up to Retries times and passes if any run
// passes. progress, when set, sees every run as it ends. Search returns
// ctx's error, with what it has found so far, when ctx ends.
func Search(ctx context.Context, run Runner, o SearchOptions, progress func(Step)) (SearchResult, error) {
	var res SearchResult
	if err := o.Validate(); err != nil {
		return res, err
	}
	try := func(phase string, rate int) (bool, error) {
		for attempt := 0; attempt <= o.Retries; attempt++ {
			sum, err := run(ctx, rate)
			if err != nil {
				return false, err
			}
			st := Step{Phase: phase, Rate: rate, Attempt: attempt, Pass: sum.Pass(o.P99, o.MinRatio), Summary: sum}
			res.Steps = append(res.Steps, st)
			if progress != nil {
				progress(st)
			}
			if st.Pass {
				if rate > res.MaxRate {
					res.MaxRate, res.Best = rate, sum
				}
				return true, nil
			}
		}
		return false, nil
	}

	lo, hi := 0, 0
	rate, steps := o.Start, 0
	for {
		pass, err := try("up", rate)
		if err != nil {
			return res, err
		}
		steps++
		if !pass {
			hi = rate
			break
		}
		lo = rate
		if rate >= o.Max || (o.MaxSteps > 0 && steps >= o.MaxSteps) {
			break
		}
		rate = min(int(math.Round(float64(rate)*o.Factor)), o.Max)
	}
	if lo == 0 {
		for down := 0; down < 4 && (o.MaxSteps == 0 || steps < o.MaxSteps); down++ {
			rate = int(math.Round(float64(hi) / o.Factor))
			if rate < 1 || rate == hi {
				break
			}
			pass, err := try("down", rate)
			if err != nil {
				return res, err
			}
			steps++
			if pass {
				lo = rate
				break
			}
			hi = rate
		}
	}
	if lo > 0 && hi > 0 {
		for round := 0; round < o.Rounds && float64(hi) > 1.02*float64(lo); round++ {
			mid := int(math.Round(math.Sqrt(float64(lo) * float64(hi))))
			if mid <= lo || mid >= hi {
				break
			}
			pass, err := try("bisect", mid)
			if err != nil {
				return res, err
			}
			if pass {
				lo = mid
			} else {
				hi = mid
			}
		}
	}
	res.FirstFail = hi
	return res, nil
}
