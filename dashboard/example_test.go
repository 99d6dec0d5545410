package dashboard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/agentloop/agentloop/dashboard"
	"github.com/agentloop/agentloop/engine"
)

// ExampleNew mounts the dashboard at its Path in a mux, beside whatever
// else the process serves.
func ExampleNew() {
	e, _ := engine.New(engine.WithLoops(2))
	_ = e.Start()
	defer e.Stop(context.Background())

	d, err := dashboard.New(e, dashboard.Options{FlameURL: "/debug/flame"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close() // before the engine stops: its sampler reads the engine

	mux := http.NewServeMux()
	mux.Handle(dashboard.Path, d)
	srv := httptest.NewServer(mux) // in a program: http.ListenAndServe("localhost:8080", mux)
	defer srv.Close()

	resp, err := http.Get(srv.URL + dashboard.Path)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status, strings.Split(resp.Header.Get("Content-Type"), ";")[0])
	// Output: 200 OK text/html
}
