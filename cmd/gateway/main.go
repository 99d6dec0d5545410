// Command gateway simulates an IoT gateway on the agentloop engine: the
// W10 mix of bench/README.md, read from a YAML file (by default the one
// embedded in package gateway). Telemetry from simulated devices
// arrives open loop at a fixed offered rate; device agents keep per-device
// state and publish feature vectors, feature agents aggregate them,
// inference agents score batches of aggregates and measure the end-to-end
// latency, an alert agent takes the alerts. It prints a line of live
// figures each second and a summary at the end. Package gateway documents
// the mix, every field of the configuration and what the summary's figures
// mean.
//
// Usage:
//
//	go run ./cmd/gateway                     # the embedded defaults: 200 000 msgs/s for 10 s (make run)
//	go run ./cmd/gateway -config gw.yaml -rate 500000 -duration 1m -metrics 127.0.0.1:9464
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
//	-metrics ADDR         serve the engine's Prometheus metrics (package metrics)
//	                      at http://ADDR/metrics while the run lasts, e.g.
//	                      127.0.0.1:9464; port 0 picks one, and the address is printed
//	-profile DIR          profile the run into DIR and write DIR/flame.html
//	-sampling F           with -profile: the fraction of wall time profiled (0.2)
//
// -rate, -duration, -devices, -loops, -producers and -ingress override the
// configuration's values; they are checked as the file is, and a fault is
// reported with the flag's name. make profile runs
// "-duration 10s -profile profiles -sampling 0.2".
//
// A default run on a 2-core VM:
//
//	gateway: embedded default.yaml: 10000 devices, 16 feature, 4 inference, 1 alert agents; 200000 msgs/s offered for 10s (ingress publish)
//	t=   1s     200004 msgs/s  p99   290.6µs  agents  10021  queued       0  dropped        0  cpu  39.9%
//	...
//	t=  10s     199840 msgs/s  p99   336.6µs  agents  10021  queued       0  dropped        0  cpu  52.7%
//
//	summary (agentloop): 10s offered + drain = 10.002s, 10021 agents
//	  ...
//
// The summary block (offered, achieved, dropped, latency percentiles,
// alerts, CPU) is explained, with a full example, in package gateway.
//
// Without the latency bound the two cores of that VM process about
// 1.3–1.5 M msgs/s with no drop (-rate 1500000), at a p99 of 15–30 ms; past
// that the producers fall behind (the summary's backlog).
//
// Ctrl-C ends the run early and prints the summary of what ran. An invalid
// configuration or flag is refused before anything runs, with every fault
// placed:
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
	"os"
	"os/signal"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/gateway"
	"github.com/agentloop/agentloop/metrics"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // -h: the usage is printed
		}
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	def := gateway.Default() // the flags' defaults shown by -h are the embedded configuration's
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(out)
	configFile := fs.String("config", "", "YAML configuration `file` (default: the embedded "+gateway.DefaultFile+")")
	devices := fs.Int("devices", def.Devices(), "number of devices, the instances of the device agent type; overrides the configuration")
	rate := fs.Int("rate", def.Load.Rate, "offered telemetry rate, messages per second, open loop; overrides the configuration")
	duration := fs.Duration("duration", def.Load.Duration, "how long to offer the load; overrides the configuration")
	loops := fs.Int("loops", def.Load.Loops, "event loops, 0 for GOMAXPROCS; overrides the configuration")
	producers := fs.Int("producers", def.Load.Producers, "goroutines emitting telemetry; overrides the configuration")
	ingress := fs.String("ingress", def.Load.Ingress.String(), "how telemetry enters the engine: publish (on its topic) or route (a topic → device table, then a direct send); overrides the configuration")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics while running, e.g. 127.0.0.1:9464")
	profileDir := fs.String("profile", "", "profile the run into this `directory` and write flame.html there")
	sampling := fs.Float64("sampling", 0.2, "with -profile: fraction of wall time profiled")
	if err := fs.Parse(args); err != nil {
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
		}
	})
	if err := cfg.Validate(); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
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
	fmt.Fprintf(out, "gateway: %s: %d devices, %d feature, %d inference, %d alert agents; %d msgs/s offered for %v (ingress %v)\n",
		source, cfg.Devices(), cfg.Type(gateway.Feature).Instances, cfg.Type(gateway.Inference).Instances,
		cfg.Type(gateway.Alert).Instances, cfg.Load.Rate, cfg.Load.Duration, cfg.Load.Ingress)

	opts := gateway.Options{Live: out}
	if *metricsAddr != "" {
		opts.OnEngine = func(e *engine.Engine) (func(), error) {
			stopMetrics, addr, err := metrics.Listen(*metricsAddr, e)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(out, "metrics: http://%s%s\n", addr, metrics.Path)
			return func() {
				sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_ = stopMetrics(sctx)
			}, nil
		}
	}
	sum, err := gateway.Run(ctx, cfg, opts)
	interrupted := err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err())
	if interrupted {
		err = nil // Ctrl-C ends the run early: the summary covers what ran
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
		fmt.Fprintln(out, "interrupted")
	}
	sum.Print(out)
	return nil
}
