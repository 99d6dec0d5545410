// Package enginetest helps test agents: a manual Clock for
// engine.WithClock, and a Harness that runs an engine on it
// deterministically, so timer-, cron- and timeout-driven agents are tested
// without sleeping.
//
//	h := enginetest.New(t, engine.WithLoops(1))
//	h.Engine.Register("poller", newPoller)
//	h.Start()
//	h.Engine.SendID(id, nil)   // the poller arms c.Every(5*time.Minute, ...)
//	h.Advance(time.Hour)       // exactly 12 ticks delivered, in order
//
// It relates to the engine as net/http/httptest relates to net/http.
package enginetest
