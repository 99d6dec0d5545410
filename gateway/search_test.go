package gateway

import (
	"context"
	"errors"
	"testing"
	"time"
)

// fakeSystem passes every rate up to capacity: p99 grows with the load and
// crosses the target above capacity. Rates in failOnce fail their first
// run only, as noise would.
type fakeSystem struct {
	capacity int
	failOnce map[int]bool
	runs     []int
}

func (f *fakeSystem) run(_ context.Context, rate int) (Summary, error) {
	f.runs = append(f.runs, rate)
	s := Summary{Offered: float64(rate), Achieved: float64(rate), Latency: Percentiles{Count: 100, P99: 500 * time.Microsecond}}
	if rate > f.capacity {
		s.Latency.P99 = 5 * time.Millisecond
	}
	if f.failOnce[rate] {
		delete(f.failOnce, rate)
		s.Achieved = float64(rate) / 2
	}
	return s, nil
}

func TestSearch(t *testing.T) {
	base := SearchOptions{Start: 100_000, Max: 8_000_000, Factor: 2, P99: time.Millisecond, MinRatio: 0.95, Rounds: 3}
	cases := []struct {
		name      string
		capacity  int
		opts      func(o *SearchOptions)
		failOnce  []int
		runs      []int
		max, fail int
	}{
		{
			name: "step up then bisect", capacity: 730_000,
			runs: []int{100_000, 200_000, 400_000, 800_000, 565_685, 672_717, 733_603},
			max:  672_717, fail: 733_603,
		},
		{
			name: "every rate passes up to max, the last step clamped", capacity: 1 << 30,
			opts: func(o *SearchOptions) { o.Max = 700_000 },
			runs: []int{100_000, 200_000, 400_000, 700_000},
			max:  700_000, fail: 0,
		},
		{
			name: "the start fails: step down", capacity: 30_000,
			runs: []int{100_000, 50_000, 25_000, 35_355, 29_730, 32_421},
			max:  29_730, fail: 32_421,
		},
		{
			name: "nothing passes", capacity: 0,
			opts: func(o *SearchOptions) { o.Rounds = 0 },
			runs: []int{100_000, 50_000, 25_000, 12_500, 6_250},
			max:  0, fail: 6_250,
		},
		{
			name: "a noisy failure is retried", capacity: 300_000, failOnce: []int{200_000},
			opts: func(o *SearchOptions) { o.Retries = 1; o.Rounds = 1 },
			runs: []int{100_000, 200_000, 200_000, 400_000, 400_000, 282_843},
			max:  282_843, fail: 400_000,
		},
		{
			name: "without retries a noisy failure ends the step-up", capacity: 300_000, failOnce: []int{200_000},
			opts: func(o *SearchOptions) { o.Rounds = 1 },
			runs: []int{100_000, 200_000, 141_421},
			max:  141_421, fail: 200_000,
		},
		{
			name: "quick: three steps", capacity: 1 << 30,
			opts: func(o *SearchOptions) { o.MaxSteps = 3 },
			runs: []int{100_000, 200_000, 400_000},
			max:  400_000, fail: 0,
		},
		{
			name: "bisection stops when the bracket is narrow", capacity: 1_010_000,
			opts: func(o *SearchOptions) { o.Start = 1_000_000; o.Factor = 1.03; o.Rounds = 10 },
			runs: []int{1_000_000, 1_030_000, 1_014_889},
			max:  1_000_000, fail: 1_014_889,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := base
			if c.opts != nil {
				c.opts(&o)
			}
			f := &fakeSystem{capacity: c.capacity, failOnce: make(map[int]bool)}
			for _, r := range c.failOnce {
				f.failOnce[r] = true
			}
			var seen []Step
			res, err := Search(context.Background(), f.run, o, func(s Step) { seen = append(seen, s) })
			if err != nil {
				t.Fatal(err)
			}
			if !equalInts(f.runs, c.runs) {
				t.Errorf("runs %v\nwant %v", f.runs, c.runs)
			}
			if res.MaxRate != c.max || res.FirstFail != c.fail {
				t.Errorf("max %d first fail %d, want %d and %d", res.MaxRate, res.FirstFail, c.max, c.fail)
			}
			if len(seen) != len(f.runs) || len(res.Steps) != len(f.runs) {
				t.Errorf("%d progress calls, %d steps for %d runs", len(seen), len(res.Steps), len(f.runs))
			}
			if c.max > 0 && int(res.Best.Offered) != c.max {
				t.Errorf("best summary is of %v msgs/s", res.Best.Offered)
			}
		})
	}
}

func TestSearchPassCriterion(t *testing.T) {
	ok := Summary{Offered: 1000, Achieved: 950, Latency: Percentiles{Count: 1, P99: time.Millisecond}}
	if !ok.Pass(time.Millisecond, 0.95) {
		t.Error("a run at the limits failed")
	}
	for name, s := range map[string]Summary{
		"slow":       {Offered: 1000, Achieved: 1000, Latency: Percentiles{Count: 1, P99: time.Millisecond + 1}},
		"short":      {Offered: 1000, Achieved: 949, Latency: Percentiles{Count: 1, P99: time.Microsecond}},
		"unmeasured": {Offered: 1000, Achieved: 1000},
	} {
		if s.Pass(time.Millisecond, 0.95) {
			t.Errorf("%s run passed", name)
		}
	}
}

func TestSearchErrors(t *testing.T) {
	boom := errors.New("boom")
	_, err := Search(context.Background(), func(context.Context, int) (Summary, error) { return Summary{}, boom }, DefaultSearch, nil)
	if !errors.Is(err, boom) {
		t.Errorf("runner error: got %v", err)
	}
	bad := []func(o *SearchOptions){
		func(o *SearchOptions) { o.Start = 0 },
		func(o *SearchOptions) { o.Max = o.Start - 1 },
		func(o *SearchOptions) { o.Factor = 1 },
		func(o *SearchOptions) { o.P99 = 0 },
		func(o *SearchOptions) { o.MinRatio = 1.5 },
		func(o *SearchOptions) { o.Rounds = -1 },
	}
	for i, f := range bad {
		o := DefaultSearch
		f(&o)
		called := false
		_, err := Search(context.Background(), func(context.Context, int) (Summary, error) {
			called = true
			return Summary{}, nil
		}, o, nil)
		if err == nil || called {
			t.Errorf("case %d: err %v, runner called %v", i, err, called)
		}
	}
}
