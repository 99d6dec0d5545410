package gateway_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/agentloop/agentloop/gateway"
)

// validConfig is a small configuration that parses.
const validConfig = `load:
  rate: 1000
agents:
  - {name: device, kind: device, instances: 10, subscribe: ["telemetry.*.*"]}
  - {name: feature, kind: feature, instances: 2, subscribe: ["features.*"]}
  - {name: inference, kind: inference, instances: 1, subscribe: ["aggregates.*"]}
  - {name: alert, kind: alert, instances: 1, subscribe: ["alerts.>"]}
`

// allocated returns the bytes f allocates (all goroutines: tests of this
// file do not run in parallel).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// firstFault returns the first fault of a refused configuration.
func firstFault(t *testing.T, err error) *gateway.FieldError {
	t.Helper()
	if !errors.Is(err, gateway.ErrInvalidConfig) {
		t.Fatalf("error %v does not match ErrInvalidConfig", err)
	}
	var fe *gateway.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("%T %v holds no *FieldError", err, err)
	}
	return fe
}

// TestParseSizeLimit checks MaxConfigSize: a document of exactly that many
// bytes parses, one byte more is refused unread, from memory and from a
// file, with the limit named.
func TestParseSizeLimit(t *testing.T) {
	pad := func(n int) []byte {
		b := []byte(validConfig + "#")
		b = append(b, strings.Repeat("x", n-len(b)-1)...)
		return append(b, '\n')
	}
	if _, err := gateway.Parse("max.yaml", pad(gateway.MaxConfigSize)); err != nil {
		t.Fatalf("a document of MaxConfigSize bytes: %v", err)
	}
	big := pad(gateway.MaxConfigSize + 1)
	want := fmt.Sprintf("big.yaml: %d bytes or more: a configuration may have at most MaxConfigSize = %d bytes",
		gateway.MaxConfigSize+1, gateway.MaxConfigSize)
	_, err := gateway.Parse("big.yaml", big)
	if !errors.Is(err, gateway.ErrConfigTooLarge) || err.Error() != want {
		t.Fatalf("got %.300v\nwant %s (ErrConfigTooLarge)", err, want)
	}
	firstFault(t, err)

	// From a file much longer than the limit: LoadFile reads no more than
	// the limit and a byte.
	path := filepath.Join(t.TempDir(), "huge.yaml")
	if err := os.WriteFile(path, append(big, make([]byte, 8*gateway.MaxConfigSize)...), 0o644); err != nil {
		t.Fatal(err)
	}
	var lerr error
	if n := allocated(func() { _, lerr = gateway.LoadFile(path) }); n > 8*gateway.MaxConfigSize {
		t.Errorf("LoadFile of a 9 MiB file allocated %d bytes: it read it whole", n)
	}
	want = fmt.Sprintf("%s: %d bytes or more: a configuration may have at most MaxConfigSize = %d bytes",
		path, gateway.MaxConfigSize+1, gateway.MaxConfigSize)
	if !errors.Is(lerr, gateway.ErrConfigTooLarge) || lerr.Error() != want {
		t.Fatalf("LoadFile: got %v\nwant %s", lerr, want)
	}
}

// laughs is a configuration whose alias *a names a list of n patterns and
// is used n times (the quadratic form of "billion laughs").
func laughs(n int) []byte {
	var b strings.Builder
	b.WriteString("load: {rate: 1000}\nagents:\n  - &a {name: x, kind: device, instances: 1, subscribe: [")
	b.WriteString(strings.TrimSuffix(strings.Repeat("a,", n), ","))
	b.WriteString("]}\n")
	b.WriteString(strings.Repeat("  - *a\n", n))
	return []byte(b.String())
}

// nestedLaughs is the exponential form: each level a list of ten aliases
// of the level below.
func nestedLaughs(levels int) []byte {
	var b strings.Builder
	b.WriteString("load: {rate: 1000}\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "l%d: &l%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 10), ", "))
	}
	fmt.Fprintf(&b, "agents: *l%d\n", levels)
	return []byte(b.String())
}

// TestParseBoundsAliasExpansion parses documents whose aliases expand
// them quadratically or exponentially: each is refused at the alias that
// crosses MaxAliasExpansion, allocating in proportion to its size, not to
// its expansion (a 36 KB document of the first kind used to allocate
// 4 GiB).
func TestParseBoundsAliasExpansion(t *testing.T) {
	cases := []struct {
		name string
		data []byte
	}{
		{"quadratic", laughs(4000)},
		{"exponential", nestedLaughs(9)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			n := allocated(func() { _, err = gateway.Parse("laughs.yaml", c.data) })
			if limit := uint64(200*len(c.data)) + 1<<20; n > limit {
				t.Errorf("%d bytes of YAML allocated %d bytes (> %d)", len(c.data), n, limit)
			}
			if !errors.Is(err, gateway.ErrAliasExpansion) {
				t.Fatalf("got %.300v, want ErrAliasExpansion", err)
			}
			fe := firstFault(t, err)
			want := fmt.Sprintf("aliases expand the document by more than MaxAliasExpansion = %d nodes and scalar bytes", gateway.MaxAliasExpansion)
			if fe.File != "laughs.yaml" || fe.Line < 2 || !strings.HasPrefix(fe.Msg, want) {
				t.Errorf("fault %s, want one at an alias's line saying %q", fe, want)
			}
			lines := strings.Split(string(c.data), "\n")
			if fe.Line <= len(lines) && !strings.Contains(lines[fe.Line-1], "*") {
				t.Errorf("line %d holds no alias: %.80q", fe.Line, lines[fe.Line-1])
			}
		})
	}
	// The quadratic document of 4000 patterns: each use of *a adds the
	// 4000 patterns (a node and a byte each) and a few nodes more, so the
	// 9th use, on line 3 + 9, is past the limit.
	_, err := gateway.Parse("laughs.yaml", laughs(4000))
	if fe := firstFault(t, err); fe.Line != 12 {
		t.Errorf("refused at line %d, want 12: %v", fe.Line, fe)
	}
}

// TestParseRefusesSelfAlias checks an alias inside the node it names:
// refused, where it is.
func TestParseRefusesSelfAlias(t *testing.T) {
	for _, doc := range []string{
		"load: {rate: 1000}\nagents: &a\n  - *a\n",
		"load: &l\n  rate: 1000\n  more: [x, {y: *l}]\nagents: []\n",
	} {
		_, err := gateway.Parse("self.yaml", []byte(doc))
		if !errors.Is(err, gateway.ErrAliasExpansion) {
			t.Fatalf("%q: got %v, want ErrAliasExpansion", doc, err)
		}
		fe := firstFault(t, err)
		if fe.Line != 3 || !strings.Contains(fe.Msg, "is used inside the node it names") {
			t.Errorf("%q: fault %s", doc, fe)
		}
	}
}

// TestParseAcceptsSharedValues checks that anchors and aliases within the
// budget work as YAML says: the alias stands for what it names.
func TestParseAcceptsSharedValues(t *testing.T) {
	doc := `load:
  rate: &r 1000
  producers: 4
agents:
  - {name: device, kind: device, instances: *r, mailbox: &mb 8192, overflow: &o drop-oldest, subscribe: ["telemetry.*.*"]}
  - {name: feature, kind: feature, instances: 2, mailbox: *mb, overflow: *o, subscribe: &f ["features.*"]}
  - {name: inference, kind: inference, instances: 1, mailbox: *mb, subscribe: ["aggregates.*"]}
  - {name: alert, kind: alert, instances: 1, subscribe: ["alerts.>"]}
`
	cfg, err := gateway.Parse("shared.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	dev, feat, inf := cfg.Type(gateway.Device), cfg.Type(gateway.Feature), cfg.Type(gateway.Inference)
	if dev.Instances != 1000 || feat.Mailbox != 8192 || inf.Mailbox != 8192 || feat.Overflow != dev.Overflow ||
		gateway.OverflowName(feat.Overflow) != "drop-oldest" {
		t.Errorf("aliases not followed: device %+v, feature %+v, inference %+v", dev, feat, inf)
	}
	// An alias of a pattern list of another kind is refused like any
	// stray subscription, on the line where the pattern is written.
	bad := strings.Replace(doc, `subscribe: ["aggregates.*"]`, "subscribe: *f", 1)
	_, err = gateway.Parse("shared.yaml", []byte(bad))
	want := `shared.yaml:6: agents[2].subscribe[0]: "features.*" matches none of the topics inference agents receive (aggregates.<feature>)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

// TestSyntaxErrorSearchBounded: placing a syntax error re-parses prefixes
// of the document; a 32 KB document with its fault on the last line is
// still placed there, in a handful of parses (it used to parse every
// prefix, 726 MiB).
func TestSyntaxErrorSearchBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("load: {rate: 1000}\nx:\n")
	for i := 0; i < 480; i++ {
		fmt.Fprintf(&b, "  k%d: [%s1]\n", i, strings.Repeat("1,", 28))
	}
	b.WriteString("\tbad: 1\n")
	data := []byte(b.String())
	var err error
	if n := allocated(func() { _, err = gateway.Parse("syntax.yaml", data) }); n > 64<<20 {
		t.Errorf("%d bytes of YAML allocated %d MiB", len(data), n>>20)
	}
	want := "syntax.yaml:483: yaml: found character that cannot start any token"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}
