// Package profiler keeps an always-on, low-overhead profile of a process that
// runs agentloop, and turns profiles into flame graphs.
//
// It builds on runtime/pprof (CPU and heap profiles), github.com/felixge/fgprof
// (wall-clock profiles, which also see time spent off the CPU: waiting on
// channels, locks, syscalls and I/O) and github.com/google/pprof/profile
// (parsing and merging). Where runtime/pprof gives one profile on demand, a
// Profiler samples continuously in short windows and keeps a bounded history
// on disk.
//
// # Duty-cycled profiling
//
// Start begins profiling; Stop ends it:
//
//	p, err := profiler.Start(profiler.Options{Sampling: 0.01, Dir: "/var/lib/gw/profiles"})
//	if err != nil { ... }
//	defer p.Stop()
//
// Sampling is the fraction of wall time that is profiled. With the default
// Window of 100 ms, Sampling 0.01 opens one 100 ms window in every 10 s period,
// at a random offset inside the period so that windows do not lock on to
// periodic work. The first window opens at Start. The windows of one Span
// (default 10 minutes) are merged into one file per kind in Dir:
//
//	cpu-20250102T150405.000Z.pb.gz    CPU samples (runtime/pprof)
//	wall-20250102T150405.000Z.pb.gz   wall-clock samples, on and off CPU (fgprof)
//	heap-20250102T150405.000Z.pb.gz   the latest heap snapshot of the span
//
// The file of the current span is rewritten (atomically) after every window,
// so it is always readable; at most Keep (DefaultKeep, 24) files per kind are
// kept, the oldest are deleted. Every file opens with `go tool pprof FILE` and renders with
// WriteFlameGraph or `agentloop flame FILE -o FILE.html`.
//
// A process has one CPU profiler: runtime/pprof refuses a second
// StartCPUProfile. Start therefore fails with ErrCPUProfileActive when another
// CPU profile is running (for example under `go test -cpuprofile`); later
// windows that meet one skip their CPU part and report it to Options.OnError.
//
// # Labels per agent type
//
// While a Profiler runs, the engine's loops tag the work of each agent with
// the pprof label LabelAgentType ("agent_type") set to the agent's type, so CPU
// samples split by agent type. A loop sets the label only when it switches to
// an agent of another type, from a label set built once per type. The profiler turns the switch on in Start and
// off in Stop (a loop drops the label at its next agent switch); when it is
// off, the cost per agent switch is one atomic load (see BenchmarkLabelsOff). Wall-clock samples carry no labels: fgprof reads
// runtime.GoroutineProfile, which drops them.
//
// # Flame graphs
//
// WriteFlameGraph renders a profile as one self-contained HTML file that needs
// no network: click a frame to zoom, search by regular expression, pick the
// sample type (cpu, wall time, bytes...), split by agent type, and flip
// between flame (root at the bottom) and icicle (root at the top). Boxes
// show short names (engine.(*loop).run, pool.(*Pool[…]).Get; see ShortName),
// with the full name on hover. Beside the graph, a table gives each agent
// type's samples, share and top frames.
//
// `agentloop flame FILE -o FILE.html` renders a file (also go test
// -cpuprofile output; -type wall, -icicle), and `make profile` profiles a
// gateway run into profiles/flame.html.
//
// Any input is safe to render. Every profile this package reads is held to
// MaxProfileBytes, stored and decompressed (gzip bombs fail early with
// ErrProfileTooLarge); stacks deeper than MaxStackDepth frames are cut under
// one TruncatedFrame box; a profile beyond MaxFlameNodes or MaxFlameFrames is
// refused with ErrProfileTooLarge.
//
// # Reading a flame graph
//
// Each box is a function on a call stack, as wide as the samples spent in it
// and its callees; the box below it is its caller (flip to icicle to hang the
// tree from the top). Wide boxes with nothing above them are where the time
// goes. Click a box to zoom, Escape or "Reset zoom" to go back. Search by
// regular expression to highlight frames and see their share of samples. Pick
// an agent type (or click its row in the table) to see only its agents: each
// stack then starts at the agent's handler (Receive, ReceiveBatch), the
// loop's own frames below it hidden, and the time the loop spent between
// agents with that type's label still set is one EngineFrame box; "Show
// engine frames" brings back the whole stacks. Pick a sample type to switch
// between CPU time and sample counts. In wall-clock profiles, wide boxes under
// runtime.gopark or syscall are waiting, not working.
//
// # Cost
//
// Profiling at Sampling 0.01 costs about as much as the noise of a shared
// machine. In the run of BENCHMARKS.md, workload W1 (a send between two
// agents of one loop) took 26.6 ns/msg without labels, 26.8 with labels on
// (BenchmarkW1_InLoopSendLabelled) and 27.6 with a Profiler sampling at 0.01
// (BenchmarkW1_InLoopSendProfiled); on the gateway's earlier device-only
// mix, a run used 10.8–10.9 % of a core without the profiler and
// 10.9–11.2 % with it.
//
// # HTTP
//
// Handler serves /debug/pprof/ (net/http/pprof's own handlers), /debug/fgprof
// and a live /debug/flamegraph?seconds=5. It checks every query parameter
// before capturing anything: ?seconds is at most MaxCaptureSeconds
// (MaxFlameSeconds for the flame graph), and a bad value gets 400 Bad
// Request; CPU captures take turns with a Profiler's windows and carry
// agent_type labels. Nothing is served unless you mount it, and it should be
// mounted on a listener bound to localhost only:
//
//	go http.ListenAndServe("localhost:6060", profiler.Handler())
//
// From another machine, reach it through an SSH tunnel
// (ssh -L 6060:localhost:6060 host), then open
// http://localhost:6060/debug/flamegraph?seconds=10, or download
// /debug/pprof/profile?seconds=30 or /debug/fgprof?seconds=30.
//
// Importing this package imports net/http/pprof, whose init registers
// /debug/pprof/ on http.DefaultServeMux (this package registers nothing
// there itself): do not serve http.DefaultServeMux where others can reach
// it.
package profiler

import "errors"

// LabelAgentType is the pprof label key under which samples carry the type of
// the agent that was running. The engine's loops use the same key string (they
// cannot import this package) when they call pprof.SetGoroutineLabels.
const LabelAgentType = "agent_type"

// Errors returned by this package. Compare them with errors.Is: the returned
// errors wrap them with the offending value (an option, a file name) and,
// where there is one, the underlying error.
var (
	// ErrInvalidOptions occurs when Options fail validation; the error names
	// the field and its value.
	ErrInvalidOptions = errors.New("profiler: invalid options")

	// ErrCPUProfileActive occurs when a CPU profile is already running in the
	// process: runtime/pprof allows one at a time. Another Profiler, a
	// /debug/pprof/profile request, a live flame graph or `go test
	// -cpuprofile` may hold it.
	ErrCPUProfileActive = errors.New("profiler: a CPU profile is already active in this process")

	// ErrEmptyProfile occurs when a profile file is empty, or when a profile
	// given to WriteFlameGraph is nil or has no samples.
	ErrEmptyProfile = errors.New("profiler: empty profile")

	// ErrBadProfile occurs when a profile cannot be parsed or is inconsistent;
	// the error also wraps the parser's error.
	ErrBadProfile = errors.New("profiler: bad profile")

	// ErrProfileTooLarge occurs when a profile read by this package is larger
	// than MaxProfileBytes, stored or decompressed, or when a profile given
	// to WriteFlameGraph exceeds MaxFlameNodes or MaxFlameFrames; the error
	// gives the size and the limit.
	ErrProfileTooLarge = errors.New("profiler: profile too large")

	// ErrUnknownSampleType occurs when FlameOptions.SampleType names none of
	// the profile's sample types; the error lists the available ones.
	ErrUnknownSampleType = errors.New("profiler: unknown sample type")
)
