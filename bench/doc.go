// Package bench holds the engine's workload benchmarks, W1 to W10 of
// bench/README.md, each beside the baselines it is judged against:
//
//	go test -run '^$' -bench '^BenchmarkW2_' -count 6 ./bench | benchstat -
//
// Every workload benchmark is named BenchmarkW<n>_<Subject> and its
// baselines BenchmarkW<n>_Baseline<Name>, so one run gives the ratio.
// Payloads are 64-byte slices and engines run 2 loops unless stated.
package bench
