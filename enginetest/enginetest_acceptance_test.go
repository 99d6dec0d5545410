package enginetest_test

import (
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/enginetest"
)

// doc.go: "h.Advance(time.Hour) // exactly 12 ticks delivered, in order";
// README: a cron "*/5 * * * *" armed in Init, "exactly 12 ticks, in order".
func TestAcceptanceHarnessAdvanceExactTicks(t *testing.T) {
	for _, kind := range []string{"every", "cron"} {
		t.Run(kind, func(t *testing.T) {
			h := enginetest.New(t, engine.WithLoops(1))
			var at []time.Duration
			if err := h.Engine.Register("poller", func() engine.Agent { return &poller{h: h, kind: kind, at: &at} }); err != nil {
				t.Fatal(err)
			}
			h.Start()
			if _, err := h.Engine.Spawn(engine.AgentID{Type: "poller", Key: "p"}); err != nil {
				t.Fatal(err)
			}
			h.Advance(time.Hour)
			if len(at) != 12 {
				t.Fatalf("%d ticks in an hour, want 12: %v", len(at), at)
			}
			for i, d := range at {
				if want := time.Duration(i+1) * 5 * time.Minute; d != want {
					t.Errorf("tick %d at %v, want %v", i, d, want)
				}
			}
			if now := h.Clock.Now(); !now.Equal(enginetest.Epoch.Add(time.Hour)) {
				t.Errorf("clock at %v after Advance(1h)", now)
			}
		})
	}
}

type poller struct {
	h    *enginetest.Harness
	kind string
	at   *[]time.Duration
}

func (p *poller) Init(c *engine.Context) error {
	var err error
	if p.kind == "cron" {
		_, err = c.Cron("*/5 * * * *", nil)
	} else {
		_, err = c.Every(5*time.Minute, nil)
	}
	return err
}

func (p *poller) Receive(c *engine.Context, m engine.Message) {
	*p.at = append(*p.at, p.h.Clock.Now().Sub(enginetest.Epoch))
}
