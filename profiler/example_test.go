package profiler_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"

	"github.com/google/pprof/profile"

	"github.com/agentloop/agentloop/profiler"
)

// Profile 1% of the time into a directory, and serve the debug endpoints on
// localhost only.
func ExampleStart() {
	p, err := profiler.Start(profiler.Options{Sampling: 0.01, Dir: "/var/lib/gateway/profiles"})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Stop()

	go func() {
		log.Println(http.ListenAndServe("localhost:6060", profiler.Handler()))
	}()
	// ... run the engine ...
}

func ExampleWriteFlameGraph() {
	handle := &profile.Function{ID: 1, Name: "main.handle"}
	lambda := &profile.Function{ID: 2, Name: "main.(*Device).Receive.<lambda>"}
	loc1 := &profile.Location{ID: 1, Line: []profile.Line{{Function: handle}}}
	loc2 := &profile.Location{ID: 2, Line: []profile.Line{{Function: lambda}}}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		Function:   []*profile.Function{handle, lambda},
		Location:   []*profile.Location{loc1, loc2},
		Sample: []*profile.Sample{
			{Location: []*profile.Location{loc2, loc1}, Value: []int64{30e6}, Label: map[string][]string{profiler.LabelAgentType: {"device"}}},
			{Location: []*profile.Location{loc1}, Value: []int64{10e6}},
		},
	}

	var buf bytes.Buffer
	if err := profiler.WriteFlameGraph(&buf, p, profiler.FlameOptions{Title: "demo"}); err != nil {
		fmt.Println(err)
		return
	}
	page := buf.String()
	fmt.Println(strings.HasPrefix(page, "<!DOCTYPE html>"))
	fmt.Println(strings.Contains(page, `"main.handle"`))
	fmt.Println(strings.Contains(page, "<lambda>"), strings.Contains(page, `\u003clambda\u003e`))

	fmt.Println(profiler.WriteFlameGraph(io.Discard, nil, profiler.FlameOptions{}))
	// Output:
	// true
	// true
	// false true
	// profiler: empty profile: nil profile
}

func ExampleOptions_Validate() {
	err := profiler.Options{Sampling: 1.5}.Validate()
	fmt.Println(errors.Is(err, profiler.ErrInvalidOptions))
	fmt.Println(err)

	fmt.Println(profiler.Options{Sampling: 0.01, Dir: "profiles"}.Validate())
	// Output:
	// true
	// profiler: invalid options: Sampling 1.5 is outside (0, 1]
	// profiler: invalid options: Dir is empty
	// <nil>
}

// A box of a flame graph shows a function's short name; its title holds the
// full one.
func ExampleShortName() {
	fmt.Println(profiler.ShortName("github.com/agentloop/agentloop/engine.(*loop).run"))
	fmt.Println(profiler.ShortName("example.com/m/pool.(*Pool[go.shape.int,go.shape.string]).Get"))
	fmt.Println(profiler.ShortName("runtime.gopark"))
	// Output:
	// engine.(*loop).run
	// pool.(*Pool[…]).Get
	// runtime.gopark
}
