package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/agentloop/agentloop/gateway"
)

// TestLoadEndsOnSignal: SIGTERM (what Docker and systemd send) and SIGINT
// end a search under way; the tool says which signal ended it, exits 1,
// and stops listening for signals.
func TestLoadEndsOnSignal(t *testing.T) {
	for _, sig := range []os.Signal{syscall.SIGTERM, os.Interrupt} {
		sigs := make(chan os.Signal, 1)
		stopped := make(chan struct{})
		running := make(chan struct{}, 1)
		notify = func() (<-chan os.Signal, func()) { return sigs, func() { close(stopped) } }
		defer func() { notify = notifySignals }()
		e := &env{
			newRunner: func(*gateway.Config, bool, gateway.Options) gateway.Runner {
				return func(ctx context.Context, _ int) (gateway.Summary, error) {
					running <- struct{}{}
					<-ctx.Done() // a run lasts until the signal
					return gateway.Summary{}, ctx.Err()
				}
			},
		}
		var out, errOut bytes.Buffer
		e.stdout, e.stderr = &out, &errOut
		code := make(chan int, 1)
		go func() { code <- run([]string{"load", "-quiet"}, e) }()
		<-running
		sigs <- sig
		want := map[os.Signal]string{syscall.SIGTERM: "SIGTERM", os.Interrupt: "SIGINT"}[sig]
		if c := <-code; c != exitFailure || !strings.Contains(errOut.String(), "agentloop load: interrupted by "+want+"\n") {
			t.Errorf("%v: exit %d, stderr %q", sig, c, errOut.String())
		}
		select {
		case <-stopped:
		default:
			t.Errorf("%v: the signals are still delivered after the command", sig)
		}
	}
}
