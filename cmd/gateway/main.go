// Command gateway simulates an IoT gateway on the agentloop engine: the
// W10 mix of bench/README.md, read from a YAML file (by default the one
// embedded in package gateway). Telemetry from simulated devices
// arrives open loop at a fixed offered rate; device agents keep per-device
// state and publish feature vectors, feature agents aggregate them,
// inference agents score batches of aggregates and measure the end-to-end
// latency, an alert agent takes the alerts. It prints a line of live
// figures each second (rate, p99 and CPU of that second alone) and a
// summary at the end, with the latency of each second in a table. Package gateway documents
// the mix, every field of the configuration and what the summary's figures
// mean.
//
// Usage:
//
//	go run ./cmd/gateway                     # the embedded defaults: 200 000 msgs/s for 10 s (make run)
//	go run ./cmd/gateway -config gw.yaml -rate 500000 -duration 1m -http 127.0.0.1:9464
//
// The flags (-h lists them with their defaults, which are the embedded
// configuration's):
//
//	-config FILE          the YAML configuration (default: the embedded default.yaml)
//	-rate N               offered telemetry rate, msgs/s, open loop
//	-duration D           how long the load is offered
//	-devices N            the device count (the device type's instances)
//	-loops N              event loops (0: GOMAXPROCS)
//	-producers N          goroutines emitting telemetry
//	-ingress publish|route
//	                      publish each message on its topic, or look the device
//	                      up in a topic → agent table and send to it
//	-http ADDR            serve, while the run lasts, one HTTP server at ADDR
//	                      (default 127.0.0.1:7070; "" for none): the dashboard
//	                      at /dashboard/, the engine's Prometheus metrics
//	                      (package metrics) at /metrics, and the profiler's
//	                      endpoints (profiler.Handler) under /debug/, among
//	                      them a live flame graph at /debug/flamegraph
//	-metrics ADDR         deprecated: the same as -http ADDR
//	-profile DIR          profile the run into DIR and write DIR/flame.html
//	-sampling F           with -profile: the fraction of wall time profiled (0.2)
//	-state DIR            keep the mix's state across runs (device counters,
//	                      feature aggregates, alert totals): restore every
//	                      agent from the newest snapshot in DIR at the start,
//	                      snapshot them every 10 s and after the drain
//
// -rate, -duration, -devices, -loops, -producers and -ingress override the
// configuration's values; they are checked as the file is, and a fault is
// reported with the flag's name. make profile runs
// "-duration 3m -profile profiles -sampling 1".
//
// A default run on a 2-core VM:
//
//	gateway: embedded default.yaml: 10000 devices, 16 feature, 4 inference, 1 alert agents on 2 loops; 200000 msgs/s offered for 10s (ingress publish)
//	dashboard: http://127.0.0.1:7070/dashboard/
//	metrics: http://127.0.0.1:7070/metrics
//	live flame graph: http://127.0.0.1:7070/debug/flamegraph?seconds=5
//	profiles: http://127.0.0.1:7070/debug/pprof/
//	t=   1s     200004 msgs/s  p99    0.291ms  agents  10021  queued       0  dropped        0  cpu  39.9%
//	...
//	t=  10s     199840 msgs/s  p99    0.337ms  agents  10021  queued       0  dropped        0  cpu  52.7%
//
//	summary (agentloop): 10s offered + drain = 10.002s, 10021 agents
//	  ...
//
// The loop count is the one the engine runs (-loops 0 resolved to
// GOMAXPROCS). Every latency is in ms with three decimals. The summary
// block (offered, achieved, dropped, latency percentiles, alerts, CPU, the
// latency of each second) is explained, with a full example, in package
// gateway.
//
// The HTTP server listens on loopback unless told otherwise: when the
// default port 7070 is taken it takes a free one, and the URLs printed are
// the real ones; a port given with -http that is taken is an error. An address
// beyond loopback (":7070", "0.0.0.0:7070") is served with a warning in the
// log, on standard error: the endpoints have no authentication, and
// profiles reveal code and cost CPU. The server stops with the run.
//
// Without the latency bound the two cores of that VM process about
// 1.3–1.5 M msgs/s with no drop (-rate 1500000), at a p99 of 15–30 ms; past
// that the producers fall behind (the summary's backlog).
//
// Ctrl-C (SIGINT) or SIGTERM, what Docker, systemd and kill send, ends the
// run early: the queues still get their drain (up to 2 s), and the summary
// of what ran is printed under "interrupted by SIGTERM"; a second signal
// ends the process at once. An invalid configuration or flag is refused
// before anything runs, printed once, with every fault placed:
//
//	$ go run ./cmd/gateway -config gw.yaml
//	gateway: gw.yaml:32: agents[1].priority: 140 is out of range 0..100
//	gw.yaml:43: agents[2].overflow: unknown overflow policy "drop-random": want drop-newest, drop-oldest, reject or block
//	$ go run ./cmd/gateway -rate -5
//	gateway: -rate: -5 is out of range 1..100000000
//
// Exit status: 0 after a run (or -h), 1 on an error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/gateway"
)

func main() {
	// SIGTERM is what Docker, systemd and kill send; it ends the run as
	// Ctrl-C does. After the first, the signals go back to their default:
	// a second one ends the process at once.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	sys := sys{stdout: os.Stdout, stderr: os.Stderr, signals: sigs, stopSignals: func() { signal.Reset(os.Interrupt, syscall.SIGTERM) }}
	if err := run(context.Background(), os.Args[1:], sys); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // -h: the usage is printed
		}
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

// sys is what run uses of the process.
type sys struct {
	stdout, stderr io.Writer // the live lines and summary; the log (slog)
	// signals, when set, delivers the signals that end the run early
	// (SIGINT, SIGTERM); stopSignals, when set, is called on the first.
	signals     <-chan os.Signal
	stopSignals func()
}

// signalName names a signal as a man page does.
func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// errSignal is the cause of a run ended by a signal.
type errSignal struct{ sig os.Signal }

func (e errSignal) Error() string { return "interrupted by " + signalName(e.sig) }

func run(ctx context.Context, args []string, sys sys) error {
	out := sys.stdout
	log := slog.New(slog.NewTextHandler(sys.stderr, nil))
	def := gateway.Default() // the flags' defaults shown by -h are the embedded configuration's
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // an error is returned, and printed once, by main
	configFile := fs.String("config", "", "YAML configuration `file` (default: the embedded "+gateway.DefaultFile+")")
	devices := fs.Int("devices", def.Devices(), "number of devices, the instances of the device agent type; overrides the configuration")
	rate := fs.Int("rate", def.Load.Rate, "offered telemetry rate, messages per second, open loop; overrides the configuration")
	duration := fs.Duration("duration", def.Load.Duration, "how long to offer the load; overrides the configuration")
	loops := fs.Int("loops", def.Load.Loops, "event loops, 0 for GOMAXPROCS; overrides the configuration")
	producers := fs.Int("producers", def.Load.Producers, "goroutines emitting telemetry; overrides the configuration")
	ingress := fs.String("ingress", def.Load.Ingress.String(), "how telemetry enters the engine: publish (on its topic) or route (a topic → device table, then a direct send); overrides the configuration")
	httpAddr := fs.String("http", defaultHTTP, "serve the dashboard, the Prometheus metrics and the profiler at http://`ADDR` while running (\"\" for none); the default port gives way to a free one when taken")
	metricsAddr := fs.String("metrics", "", "deprecated: the same as -http `ADDR`")
	profileDir := fs.String("profile", "", "profile the run into this `directory` and write flame.html there")
	sampling := fs.Float64("sampling", 0.2, "with -profile: fraction of wall time profiled")
	stateDir := fs.String("state", "", "keep the mix's state (device counters, feature aggregates, alert totals) across runs in snapshots in this `directory`: restored at the start, saved every 10s and after the drain")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(out, "Usage of gateway:")
			fs.SetOutput(out)
			fs.PrintDefaults()
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	in, ok := gateway.ParseIngress(*ingress)
	if !ok {
		return fmt.Errorf("-ingress %q: want publish or route", *ingress)
	}
	cfg := def
	if *configFile != "" {
		var err error
		if cfg, err = gateway.LoadFile(*configFile); err != nil {
			return err
		}
	}
	// Flags given on the command line override the file.
	httpSet := false
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "devices":
			cfg.SetDevices(*devices, "-devices")
		case "rate":
			cfg.Load.Rate = *rate
			cfg.SetBy("load.rate", "-rate")
		case "duration":
			cfg.Load.Duration = *duration
			cfg.SetBy("load.duration", "-duration")
		case "loops":
			cfg.Load.Loops = *loops
			cfg.SetBy("load.loops", "-loops")
		case "producers":
			cfg.Load.Producers = *producers
			cfg.SetBy("load.producers", "-producers")
		case "ingress":
			cfg.Load.Ingress = in
			cfg.SetBy("load.ingress", "-ingress")
		case "http":
			httpSet = true
		}
	})
	if *metricsAddr != "" {
		if httpSet && *httpAddr != *metricsAddr {
			return fmt.Errorf("-metrics %q and -http %q: -metrics is the old name of -http, give one", *metricsAddr, *httpAddr)
		}
		log.Warn("-metrics is deprecated: use -http, which serves the metrics beside the dashboard and the profiler")
		*httpAddr, httpSet = *metricsAddr, true
	}
	if *httpAddr != "" {
		if err := checkHTTPAddr(*httpAddr); err != nil {
			return fmt.Errorf("-http %w", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if sys.signals != nil {
		watched := make(chan struct{})
		defer func() { <-watched }()
		go func() {
			defer close(watched)
			select {
			case sig := <-sys.signals:
				if sys.stopSignals != nil {
					sys.stopSignals()
				}
				cancel(errSignal{sig})
			case <-ctx.Done():
			}
		}()
		defer cancel(nil) // ends the watch before it is waited for
	}
	var ln net.Listener
	if *httpAddr != "" {
		var err error
		if ln, err = listenHTTP(*httpAddr, !httpSet, log); err != nil {
			return err
		}
		defer ln.Close() // when the run fails before serving; harmless after
	}
	var stopProfile func() (string, error)
	if *profileDir != "" {
		var err error
		if stopProfile, err = startProfiling(*profileDir, *sampling); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
	}
	source := "embedded " + gateway.DefaultFile
	if *configFile != "" {
		source = *configFile
	}
	fmt.Fprintf(out, "gateway: %s: %d devices, %d feature, %d inference, %d alert agents on %d loops; %d msgs/s offered for %v (ingress %v)\n",
		source, cfg.Devices(), cfg.Type(gateway.Feature).Instances, cfg.Type(gateway.Inference).Instances,
		cfg.Type(gateway.Alert).Instances, cfg.Load.EventLoops(), cfg.Load.Rate, cfg.Load.Duration, cfg.Load.Ingress)

	opts := gateway.Options{Live: out, StateDir: *stateDir}
	if ln != nil {
		opts.OnEngine = func(e *engine.Engine) (func(), error) {
			srv, err := serveHTTP(ln, e, out)
			if err != nil {
				return nil, err
			}
			return func() {
				sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer scancel()
				if err := srv.stop(sctx); err != nil {
					log.Warn("stopping the HTTP server", "err", err)
				}
			}, nil
		}
	}
	sum, err := gateway.Run(ctx, cfg, opts)
	interrupted := err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err())
	if interrupted {
		err = nil // Ctrl-C or SIGTERM ends the run early: the summary covers what ran
	}
	if stopProfile != nil {
		html, perr := stopProfile()
		if perr != nil && err == nil {
			err = fmt.Errorf("profile: %w", perr)
		}
		if perr == nil {
			fmt.Fprintf(out, "flame graph: %s\n", html)
		}
	}
	if err != nil {
		return err
	}
	if interrupted {
		var sig errSignal
		if errors.As(context.Cause(ctx), &sig) {
			fmt.Fprintln(out, sig.Error())
		} else {
			fmt.Fprintln(out, "interrupted")
		}
	}
	sum.Print(out)
	return nil
}
