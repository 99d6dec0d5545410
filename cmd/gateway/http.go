package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/agentloop/agentloop/dashboard"
	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/metrics"
	"github.com/agentloop/agentloop/profiler"
)

// defaultHTTP is where -http serves when the flag is not given: loopback
// only, on a port of its own, or an ephemeral one when that is taken.
const defaultHTTP = "127.0.0.1:7070"

// Paths of the HTTP server beside metrics.Path.
const (
	debugPath = "/debug/"           // profiler.Handler's endpoints
	flamePath = "/debug/flamegraph" // a live flame graph of the next seconds
	pprofPath = "/debug/pprof/"
)

// errHTTPAddr is an -http value that is not host:port with a numeric port.
var errHTTPAddr = errors.New("not host:port with a port in 0-65535")

// checkHTTPAddr checks an -http address before anything runs.
func checkHTTPAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return fmt.Errorf("%q: %w", addr, errHTTPAddr)
	}
	return nil
}

// listenHTTP opens the listener of -http on addr. With fallback (the
// address was not given but defaulted) a port already taken gives way to
// an ephemeral port on the same host. A listener that is not on a
// loopback address is kept, with a warning in log: the endpoints have no
// authentication, and profiles reveal code and cost CPU.
func listenHTTP(addr string, fallback bool, log *slog.Logger) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil && fallback && errors.Is(err, syscall.EADDRINUSE) {
		host, _, _ := net.SplitHostPort(addr)
		log.Info("the default HTTP port is taken; serving on an ephemeral port", "addr", addr)
		ln, err = net.Listen("tcp", net.JoinHostPort(host, "0"))
	}
	if err != nil {
		return nil, fmt.Errorf("-http: %w", err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		log.Warn("serving metrics and the profiler beyond this machine, without authentication", "addr", ln.Addr().String())
	}
	return ln, nil
}

// newMux is the handler of the HTTP server for engine e: its Prometheus
// metrics at metrics.Path, the profiler's endpoints under /debug/, and the
// live dashboard at dashboard.Path. Closing closer stops the dashboard's
// sampler and ends its open streams.
func newMux(e *engine.Engine) (mux *http.ServeMux, closer io.Closer, err error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		metrics.NewCollector(e), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, nil, fmt.Errorf("metrics: %w", err)
		}
	}
	d, err := dashboard.New(e, dashboard.Options{FlameURL: flamePath})
	if err != nil {
		return nil, nil, fmt.Errorf("dashboard: %w", err)
	}
	mux = http.NewServeMux()
	mux.Handle(metrics.Path, metrics.Handler(reg))
	mux.Handle(debugPath, profiler.Handler())
	mux.Handle(dashboard.Path, d)
	return mux, d, nil
}

// httpServer serves the mux of one run on its listener.
type httpServer struct {
	srv    *http.Server
	served chan error
	closer io.Closer
	once   sync.Once
	err    error
}

// serveHTTP serves e's mux (newMux) on ln until stop; it prints the URLs
// of what it serves to out.
func serveHTTP(ln net.Listener, e *engine.Engine, out io.Writer) (*httpServer, error) {
	mux, closer, err := newMux(e)
	if err != nil {
		return nil, err
	}
	s := &httpServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, served: make(chan error, 1), closer: closer}
	go func() { s.served <- s.srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "dashboard: %s%s\n", base, dashboard.Path)
	fmt.Fprintf(out, "metrics: %s%s\n", base, metrics.Path)
	fmt.Fprintf(out, "live flame graph: %s%s?seconds=%d\n", base, flamePath, profiler.DefaultFlameSeconds)
	fmt.Fprintf(out, "profiles: %s%s\n", base, pprofPath)
	return s, nil
}

// stop shuts the server down, giving requests in flight until ctx ends,
// then closes what the mux holds; it returns once the serving goroutine
// has exited. Calling it again returns the same result.
func (s *httpServer) stop(ctx context.Context) error {
	s.once.Do(func() {
		s.err = s.srv.Shutdown(ctx)
		if s.err != nil {
			_ = s.srv.Close()
		}
		if err := <-s.served; s.err == nil && !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
		if err := s.closer.Close(); s.err == nil {
			s.err = err
		}
	})
	return s.err
}
