package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agentloop/agentloop/engine"
)

// ErrAddr is returned by Listen for an address that does not parse as
// host:port with a numeric port.
var ErrAddr = errors.New("metrics: invalid listen address")

// Path is where Listen serves the metrics.
const Path = "/metrics"

// Handler returns an HTTP handler that serves what g gathers in the
// Prometheus exposition format (text, or protobuf if the scraper asks for
// it). It is promhttp.HandlerFor with default options.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}

// Listen serves e's metrics over HTTP at Path on addr until stop is
// called. It registers NewCollector(e, opts...) together with the Go
// runtime and process collectors in a registry of its own, so it touches
// no global state and may run once per engine.
//
// addr is host:port. Port 0 picks a free port; boundAddr is the address
// actually listened on. An empty host listens on every interface: for a
// gateway, prefer a loopback address such as 127.0.0.1:9464, since the
// endpoint has no authentication.
//
// stop shuts the server down gracefully within ctx (then closes what is
// left) and returns once the serving goroutine has exited; it reports a
// serving error, if there was one. Calling it again returns the same
// result.
func Listen(addr string, e *engine.Engine, opts ...Option) (stop func(context.Context) error, boundAddr string, err error) {
	if err := checkAddr(addr); err != nil {
		return nil, "", err
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(NewCollector(e, opts...)); err != nil {
		return nil, "", fmt.Errorf("metrics: register engine collector: %w", err)
	}
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, "", fmt.Errorf("metrics: register Go collector: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, "", fmt.Errorf("metrics: register process collector: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("metrics: listen on %q: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, Handler(reg))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var (
		once    sync.Once
		stopErr error
	)
	stop = func(ctx context.Context) error {
		once.Do(func() {
			stopErr = srv.Shutdown(ctx)
			if stopErr != nil {
				_ = srv.Close()
			}
			if err := <-served; stopErr == nil && !errors.Is(err, http.ErrServerClosed) {
				stopErr = err
			}
		})
		return stopErr
	}
	return stop, ln.Addr().String(), nil
}

// checkAddr checks that addr is host:port with a port in 0-65535.
func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w %q: %v", ErrAddr, addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%w %q: port %q is not a number in 0-65535", ErrAddr, addr, port)
	}
	return nil
}
