// Command gateway simulates an IoT gateway on the agentloop engine: the
// W10 mix of bench/README.md, read from a YAML file (by default the one
// embedded in package gateway). Telemetry from simulated devices
// arrives open loop at a fixed offered rate; device agents keep per-device
// state and publish feature vectors, feature agents aggregate them,
// inference agents score batches of aggregates and measure the end-to-end
// latency, an alert agent takes the alerts. It prints a line of live
// figures each second and a summary at the end.
//
//	go run ./cmd/gateway                                   # embedded defaults, 10 s
//	go run ./cmd/gateway -config gw.yaml -rate 500000 -duration 30s -metrics 127.0.0.1:9464
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
