package metrics_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/metrics"
)

type device struct{}

func (device) Receive(*engine.Context, engine.Message) {}

// Register a collector of an engine's Stats with a registry, serve it,
// and scrape it.
func ExampleNewCollector() {
	e, err := engine.New(engine.WithLoops(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = e.Register("device", func() engine.Agent { return device{} })
	_ = e.Start()
	ref, _ := e.Spawn(engine.AgentID{Type: "device", Key: "dev-42"})
	for range 3 {
		_ = ref.Send([]byte("21.5"))
	}
	_ = e.Stop(context.Background()) // graceful: the three are delivered first

	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewCollector(e))
	srv := httptest.NewServer(metrics.Handler(reg))
	defer srv.Close()

	resp, err := http.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "agentloop_messages_processed_total") ||
			strings.HasPrefix(line, "agentloop_handler_seconds_count") {
			fmt.Println(line)
		}
	}
	// Output:
	// agentloop_handler_seconds_count{type="device"} 3
	// agentloop_messages_processed_total{type="device"} 3
}
