package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/agentloop/agentloop/engine"
)

// badNames are refused as a type and as a key.
var badNames = []string{
	"",
	"\xff", "a\xffb", "\xc3", "\xed\xa0\x80", // invalid UTF-8 (the last a surrogate)
	"a\x00b", "tab\there", "line\nbreak", "\r", "\x1b[31m", "del\x7f",
	"c1\u0085control", "\u009b",
	strings.Repeat("x", engine.MaxIDLen+1),
	strings.Repeat("日", engine.MaxIDLen/3+1), // 258 bytes, 86 characters
}

// goodNames are accepted as a type and as a key.
var goodNames = []string{
	"device", "dev-42", "a", "Gerät", "日本語", "emoji 🎉", "with space", " lead", "trail ",
	`quote"back\slash`, "a.b_c:d=e,f{g}h", "\ufffd", "zero\u200bwidth",
	strings.Repeat("x", engine.MaxIDLen),
	strings.Repeat("日", engine.MaxIDLen/3), // 255 bytes
}

func idEngine(t *testing.T) *engine.Engine {
	t.Helper()
	e, err := engine.New(engine.WithLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return e
}

var newNopAgent = func() engine.Agent {
	return timerFuncAgent(func(*engine.Context, engine.Message) {})
}

func TestRegisterRefusesBadTypeNames(t *testing.T) {
	e := idEngine(t)
	bad := append([]string{"a/b", "/", "type/"}, badNames...)
	for _, name := range bad {
		err := e.Register(name, newNopAgent)
		if !errors.Is(err, engine.ErrInvalidID) {
			t.Errorf("Register(%q) = %v, want ErrInvalidID", name, err)
			continue
		}
		if len(err.Error()) > 2*engine.MaxIDLen {
			t.Errorf("Register(%d bytes): error of %d bytes", len(name), len(err.Error()))
		}
		if !utf8.ValidString(err.Error()) {
			t.Errorf("Register(%q): error %q is not valid UTF-8", name, err)
		}
	}
	if s := e.Stats(); len(s.Types) != 0 {
		t.Fatalf("refused names registered: %+v", s.Types)
	}
}

func TestRegisterAcceptsPrintableTypeNames(t *testing.T) {
	e := idEngine(t)
	for _, name := range goodNames {
		if err := e.Register(name, newNopAgent); err != nil {
			t.Errorf("Register(%q): %v", name, err)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, name := range badNames {
		for _, id := range []engine.AgentID{{Type: name, Key: "k"}, {Type: "t", Key: name}} {
			if err := id.Validate(); !errors.Is(err, engine.ErrInvalidID) {
				t.Errorf("%q.Validate() = %v, want ErrInvalidID", id, err)
			}
		}
	}
	for _, name := range goodNames {
		for _, id := range []engine.AgentID{{Type: name, Key: "k"}, {Type: "t", Key: name}} {
			if err := id.Validate(); err != nil {
				t.Errorf("%q.Validate() = %v, want nil", id, err)
			}
		}
	}
	// '/' separates the type from the key in String: refused in a type,
	// fine in a key.
	if err := (engine.AgentID{Type: "a/b", Key: "c"}).Validate(); !errors.Is(err, engine.ErrInvalidID) {
		t.Errorf("type with '/': %v, want ErrInvalidID", err)
	}
	id := engine.AgentID{Type: "a", Key: "b/c"}
	if err := id.Validate(); err != nil {
		t.Errorf("key with '/': %v", err)
	}
	if id.String() != "a/b/c" {
		t.Errorf("String() = %q", id.String())
	}
	// The error of a huge ID does not carry the whole of it.
	huge := engine.AgentID{Type: "t", Key: strings.Repeat("k", 1<<20)}
	if err := huge.Validate(); !errors.Is(err, engine.ErrInvalidID) || len(err.Error()) > 1024 {
		t.Errorf("Validate of a 1 MiB key: %d-byte error %.80q", len(err.Error()), err)
	}
}

// Every call by ID refuses a bad key, and none of them creates the agent.
func TestCallsByIDRefuseBadKeys(t *testing.T) {
	e := idEngine(t)
	if err := e.Register("t", newNopAgent); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, key := range badNames {
		id := engine.AgentID{Type: "t", Key: key}
		calls := map[string]error{}
		_, calls["Spawn"] = e.Spawn(id)
		calls["Send"] = e.SendID(id, []byte("x"))
		_, calls["Lookup"] = e.Lookup(id)
		_, calls["Cron"] = e.Cron("@hourly", id, nil)
		_, calls["Request"] = e.RequestID(ctx, id, []byte("x"))
		for name, err := range calls {
			if !errors.Is(err, engine.ErrInvalidID) {
				t.Errorf("%s(%q) = %v, want ErrInvalidID", name, key, err)
			}
		}
	}
	if err := e.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.Stats().Agents; n != 0 {
		t.Fatalf("%d agents created from refused IDs", n)
	}
}

// Agents refuse bad keys too: Context.SendID and Context.RequestID.
func TestContextCallsByIDRefuseBadKeys(t *testing.T) {
	lab := newTimerLab(t)
	lab.do("a", func(c *engine.Context) {
		for _, key := range badNames {
			id := engine.AgentID{Type: "lab", Key: key}
			if err := c.SendID(id, []byte("x")); !errors.Is(err, engine.ErrInvalidID) {
				t.Errorf("SendID(%q) = %v, want ErrInvalidID", key, err)
			}
			err := c.RequestID(id, []byte("x"), time.Second, func(*engine.Context, []byte, error) {})
			if !errors.Is(err, engine.ErrInvalidID) {
				t.Errorf("RequestID(%q) = %v, want ErrInvalidID", key, err)
			}
		}
	})
	if n := lab.h.Engine.Stats().Agents; n != 1 {
		t.Fatalf("%d agents, want only the lab agent", n)
	}
}

// FuzzAgentID: a type and a key are refused with ErrInvalidID, or accepted
// by Validate, Register and Spawn alike; an accepted ID prints as valid
// UTF-8 without control characters, and prints distinctly from every other
// valid ID.
func FuzzAgentID(f *testing.F) {
	for _, s := range [][2]string{
		{"device", "dev-42"}, {"a", "b/c"}, {"a/b", "c"}, {"\xff", "k"}, {"t", "\xff"},
		{"", "k"}, {"t", ""}, {"Gerät", "日本"}, {"t", "a\x00b"}, {"c1\u0085", "k"},
		{"t", "line\nbreak"}, {"emoji 🎉", "🎉"}, {"t", "\ufffd"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, typ, key string) {
		id := engine.AgentID{Type: typ, Key: key}
		verr := id.Validate()
		if verr != nil && !errors.Is(verr, engine.ErrInvalidID) {
			t.Fatalf("Validate(%q) = %v, not ErrInvalidID", id, verr)
		}
		e, err := engine.New(engine.WithLoops(1), engine.WithInboxSize(2))
		if err != nil {
			t.Fatal(err)
		}
		rerr := e.Register(typ, newNopAgent)
		if rerr != nil && !errors.Is(rerr, engine.ErrInvalidID) {
			t.Fatalf("Register(%q) = %v, not ErrInvalidID", typ, rerr)
		}
		if typeOK := (engine.AgentID{Type: typ, Key: "k"}).Validate() == nil; typeOK != (rerr == nil) {
			t.Fatalf("type %q: Validate says %v, Register says %v", typ, typeOK, rerr)
		}
		if rerr != nil {
			return
		}
		if s := e.Stats(); len(s.Types) != 1 || s.Types[0].Type != typ {
			t.Fatalf("Stats types %+v after registering %q", s.Types, typ)
		}
		_, serr := e.Spawn(id)
		if (serr == nil) != (verr == nil) || serr != nil && !errors.Is(serr, engine.ErrInvalidID) {
			t.Fatalf("Spawn(%q) = %v, Validate = %v", id, serr, verr)
		}
		if verr != nil {
			return
		}
		s := id.String()
		if !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0 {
			t.Fatalf("accepted %q prints as %q: not valid UTF-8 or has control characters", id, s)
		}
		// String joins with '/': splitting it at any other '/' gives a
		// different ID, which must be refused.
		for i := range len(s) {
			if s[i] != '/' || i == len(typ) {
				continue
			}
			other := engine.AgentID{Type: s[:i], Key: s[i+1:]}
			if other.Validate() == nil {
				t.Fatalf("%q and %q both valid and both print %q", id, other, s)
			}
		}
	})
}

// Validate runs on every Spawn and on each lookup that misses: it costs no
// allocation for a valid ID.
func TestValidateAllocatesNothing(t *testing.T) {
	ids := []engine.AgentID{
		{Type: "device", Key: "dev-42"},
		{Type: "Gerät", Key: "日本語/🎉"},
		{Type: strings.Repeat("x", engine.MaxIDLen), Key: strings.Repeat("日", engine.MaxIDLen/3)},
	}
	for _, id := range ids {
		if n := testing.AllocsPerRun(100, func() {
			if id.Validate() != nil {
				t.Fatal("refused")
			}
		}); n != 0 {
			t.Errorf("Validate(%q): %v allocations", id, n)
		}
	}
}
