// Command gateway simulates an IoT gateway on the agentloop engine: device
// agents receive telemetry from simulated devices at a fixed offered rate,
// keep per-device state, and raise alerts to an alert agent. It prints a
// line of live figures each second and a summary at the end.
//
//	go run ./cmd/gateway -devices 10000 -rate 200000 -duration 10s
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(out)
	cfg := defaultConfig()
	fs.IntVar(&cfg.Devices, "devices", cfg.Devices, "number of simulated devices (one agent each)")
	fs.IntVar(&cfg.Rate, "rate", cfg.Rate, "offered telemetry rate, messages per second (open loop)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long to run")
	fs.IntVar(&cfg.Loops, "loops", cfg.Loops, "event loops (0: GOMAXPROCS)")
	fs.IntVar(&cfg.Producers, "producers", cfg.Producers, "goroutines generating telemetry")
	profileDir := fs.String("profile", "", "profile the run into this directory and write flame.html there")
	sampling := fs.Float64("sampling", 0.2, "with -profile: fraction of wall time profiled")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
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
	sum, err := simulate(ctx, cfg, out)
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
	sum.print(out)
	return nil
}
