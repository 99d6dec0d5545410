package gateway

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentloop/agentloop/engine"
)

func TestDefaultConfig(t *testing.T) {
	cfg := Default()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.File != DefaultFile {
		t.Errorf("File = %q", cfg.File)
	}
	l := cfg.Load
	if l.Rate != 200000 || l.Duration != 10*time.Second || l.Producers != 2 || l.Loops != 0 || l.Sensors != 4 || l.Ingress != Publish {
		t.Errorf("load = %+v", l)
	}
	want := []AgentType{
		{Name: "device", Kind: Device, Instances: 10000, Priority: 50, Mailbox: 1024, Overflow: engine.DropOldest,
			FeatureEvery: 10, Subscribe: []string{"telemetry.*.*"}},
		{Name: "feature", Kind: Feature, Instances: 16, Priority: 80, Mailbox: 8192, Overflow: engine.DropOldest,
			Subscribe: []string{"features.*"}},
		{Name: "inference", Kind: Inference, Instances: 4, Priority: 100, Mailbox: 8192, Overflow: engine.DropOldest,
			Batch: 32, Subscribe: []string{"aggregates.*"}},
		{Name: "alert", Kind: Alert, Instances: 1, Priority: 30, Mailbox: 4096, Overflow: engine.DropNewest,
			Subscribe: []string{"alerts.>"}},
	}
	if len(cfg.Agents) != len(want) {
		t.Fatalf("%d agent types, want %d", len(cfg.Agents), len(want))
	}
	for i, w := range want {
		g := cfg.Agents[i]
		if g.Name != w.Name || g.Kind != w.Kind || g.Instances != w.Instances || g.Priority != w.Priority ||
			g.Mailbox != w.Mailbox || g.Overflow != w.Overflow || g.Batch != w.Batch ||
			g.FeatureEvery != w.FeatureEvery || strings.Join(g.Subscribe, ",") != strings.Join(w.Subscribe, ",") {
			t.Errorf("agents[%d] = %+v\nwant       %+v", i, g, w)
		}
	}
	if cfg.Devices() != 10000 || cfg.Type(Inference).Batch != 32 {
		t.Errorf("Devices() = %d, inference batch %d", cfg.Devices(), cfg.Type(Inference).Batch)
	}
}

// TestDefaultsOfOptionalFields parses the smallest configuration and
// checks what the omitted fields become.
func TestDefaultsOfOptionalFields(t *testing.T) {
	cfg := mustLoad(t, "testdata/valid_small.yaml")
	if l := cfg.Load; l.Duration != DefaultDuration || l.Producers != DefaultProducers || l.Sensors != DefaultSensors || l.Loops != 0 || l.Ingress != Publish {
		t.Errorf("load = %+v", l)
	}
	dev := cfg.Type(Device)
	if dev.Priority != DefaultPriority || dev.Mailbox != DefaultMailbox || dev.Overflow != engine.DropNewest ||
		dev.FeatureEvery != DefaultFeatureEvery || dev.Batch != 0 {
		t.Errorf("device = %+v", dev)
	}
	if b := cfg.Type(Inference).Batch; b != 8 {
		t.Errorf("inference batch = %d, want 8", b)
	}
	if cfg.Type(Feature).FeatureEvery != 0 {
		t.Error("feature_every set on a feature type")
	}
}

func mustLoad(t *testing.T, path string) *Config {
	t.Helper()
	cfg, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestInvalidConfigs parses every file of testdata/invalid and checks the
// first fault exactly: file, line, field and message.
func TestInvalidConfigs(t *testing.T) {
	cases := []struct {
		file  string
		line  int
		field string
		msg   string
	}{
		{"agent_not_mapping", 18, "agents[3]", "want a mapping of name, kind, instances, priority, mailbox, overflow, batch, feature_every, subscribe, got \"alert\""},
		{"bad_duration", 3, "load.duration", "\"ten\" is not a duration (want a number with a unit: 10s, 500ms)"},
		{"bad_ingress", 3, "load.ingress", "unknown ingress \"teleport\": want publish or route"},
		{"bad_name", 18, "agents[3].name", "\"my alert\" has characters other than letters, digits, '-' and '_'"},
		{"bad_overflow", 7, "agents[0].overflow", "unknown overflow policy \"drop-random\": want drop-newest, drop-oldest, reject or block"},
		{"bad_pattern", 7, "agents[0].subscribe[0]", "messaging: invalid pattern: \"telemetry.**\": wildcard inside a token"},
		{"batch_on_device", 7, "agents[0].batch", "only inference agents take batches (this type is device)"},
		{"batch_range", 16, "agents[2].batch", "5000 is out of range 1..4096"},
		{"comment_only", 1, "", "empty configuration: want the load and agents sections"},
		{"control_char", 4, "", "yaml: control characters are not allowed"},
		{"duplicate_kind", 9, "agents[1].kind", "a second type of kind device (the first is agents[0]): want one of each"},
		{"duplicate_name", 8, "agents[1].name", "duplicate type name \"device\" (also agents[0])"},
		{"duration_number", 3, "load.duration", "\"10\" is not a duration (want a number with a unit: 10s, 500ms)"},
		{"empty", 1, "", "empty configuration: want the load and agents sections"},
		{"empty_agents", 3, "agents", "empty: want one agent type of each kind (device, feature, inference, alert)"},
		{"empty_pattern_list", 17, "agents[2].subscribe", "empty: want at least one topic pattern"},
		{"feature_every_on_feature", 11, "agents[1].feature_every", "only devices publish feature vectors (this type is feature)"},
		{"feature_every_zero", 7, "agents[0].feature_every", "0 is out of range 1..1000000"},
		{"huge_int", 2, "load.rate", "99999999999999999999 is out of range"},
		{"missing_agents", 1, "agents", "missing (want a list of agent types)"},
		{"missing_instances", 18, "agents[3].instances", "missing (want the number of agents of the type)"},
		{"missing_kind", 13, "agents[2].kind", "missing (want device, feature, inference or alert)"},
		{"missing_kind_alert", 3, "agents", "no agent type of kind alert: want one of each"},
		{"missing_load", 1, "load", "missing (want a mapping with at least rate)"},
		{"missing_name", 8, "agents[1].name", "missing (want the type's name)"},
		{"missing_rate", 1, "load.rate", "missing (want telemetry messages per second)"},
		{"missing_subscribe", 18, "agents[3].subscribe", "missing (want a list of topic patterns)"},
		{"negative_duration", 3, "load.duration", "-1s is out of range (0s, 24h0m0s]"},
		{"negative_loops", 3, "load.loops", "-1 is out of range 0..1024"},
		{"negative_mailbox", 16, "agents[2].mailbox", "-5 is out of range 1..1048576"},
		{"null_priority", 11, "agents[1].priority", "want an integer, got an empty value"},
		{"overflow_type", 7, "agents[0].overflow", "unknown overflow policy \"1\": want drop-newest, drop-oldest, reject or block"},
		{"pattern_not_string", 21, "agents[3].subscribe[0]", "want a string, got a mapping"},
		{"pattern_too_broad", 7, "agents[0].subscribe[0]", "\">\" also matches features.dev-0, which feature agents receive"},
		{"pattern_wrong_kind", 7, "agents[0].subscribe[0]", "\"features.*\" matches none of the topics device agents receive (telemetry.<device>.<sensor>)"},
		{"priority_negative", 11, "agents[1].priority", "-1 is out of range 0..100"},
		{"priority_range", 11, "agents[1].priority", "140 is out of range 0..100"},
		{"repeated_field", 12, "agents[1].priority", "repeated field (first at line 11)"},
		{"syntax_indent", 10, "", "yaml: did not find expected '-' indicator"},
		{"syntax_tab", 6, "", "yaml: found a tab character that violates indentation"},
		{"syntax_unclosed", 17, "", "yaml: did not find expected ',' or ']'"},
		{"too_many_devices", 6, "agents[0].instances", "200000 is out of range 1..100000"},
		{"too_many_sensors", 3, "load.sensors", "9 is out of range 1..8"},
		{"top_list", 1, "", "want a mapping of load, agents, got a list"},
		{"two_documents", 23, "", "a second YAML document: want one"},
		{"unknown_field", 7, "agents[0].colour", "unknown field (known: name, kind, instances, priority, mailbox, overflow, batch, feature_every, subscribe)"},
		{"unknown_kind", 19, "agents[3].kind", "unknown kind \"siren\": want device, feature, inference or alert"},
		{"unknown_load_field", 3, "load.burst", "unknown field (known: rate, duration, producers, loops, sensors, ingress)"},
		{"unknown_top", 1, "laod", "unknown field (known: load, agents)"},
		{"wrong_type_agents", 3, "agents", "want a list of agent types, got \"device\""},
		{"wrong_type_float", 2, "load.rate", "want an integer, got \"1000.5\""},
		{"wrong_type_int", 11, "agents[1].mailbox", "want an integer, got \"big\""},
		{"wrong_type_list", 7, "agents[0].subscribe", "want a list of topic patterns, got \"telemetry.*.*\""},
		{"wrong_type_load", 1, "load", "want a mapping of rate, duration, producers, loops, sensors, ingress, got \"1000\""},
		{"wrong_type_name", 8, "agents[1].name", "want a string, got a list"},
		{"zero_instances", 10, "agents[1].instances", "0 is out of range 1..10000"},
		{"zero_producers", 3, "load.producers", "0 is out of range 1..256"},
		{"zero_rate", 2, "load.rate", "0 is out of range 1..100000000"},
	}
	seen := make(map[string]bool)
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			name := c.file + ".yaml"
			seen[name] = true
			data, err := os.ReadFile(filepath.Join("testdata", "invalid", name))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := Parse(name, data)
			if err == nil {
				t.Fatalf("accepted: %+v", cfg)
			}
			if cfg != nil {
				t.Error("a config came back with the error")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("%v does not match ErrInvalidConfig", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("%T %v holds no *FieldError", err, err)
			}
			if fe.File != name || fe.Line != c.line || fe.Field != c.field || fe.Msg != c.msg {
				t.Errorf("got  %s:%d: [%s] %s\nwant %s:%d: [%s] %s", fe.File, fe.Line, fe.Field, fe.Msg, name, c.line, c.field, c.msg)
			}
			first := strings.SplitN(err.Error(), "\n", 2)[0]
			want := name + ":" + itoa(c.line) + ": "
			if c.field != "" {
				want += c.field + ": "
			}
			if want += c.msg; first != want {
				t.Errorf("Error() = %q\nwant      %q", first, want)
			}
			if errs := err.(Errors); len(errs) != 1 && c.file != "unknown_top" {
				t.Errorf("%d faults, want 1:\n%v", len(errs), err)
			}
		})
	}
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s has no case", f)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestSeveralFaults checks that every fault of a file is reported, in
// file order.
func TestSeveralFaults(t *testing.T) {
	data := []byte(`load:
  rate: 0
  producers: 0
agents:
  - name: device
    kind: device
    instances: 10
    priority: 101
    subscribe: ["telemetry.*.*"]
  - name: device
    kind: feature
    instances: 2
    subscribe: ["features.*"]
  - name: inference
    kind: inference
    instances: 1
    subscribe: ["aggregates.*"]
  - name: alert
    kind: alert
    instances: 1
    subscribe: ["alerts.>"]
`)
	_, err := Parse("many.yaml", data)
	want := []string{
		"many.yaml:2: load.rate: 0 is out of range 1..100000000",
		"many.yaml:3: load.producers: 0 is out of range 1..256",
		"many.yaml:8: agents[0].priority: 101 is out of range 0..100",
		`many.yaml:10: agents[1].name: duplicate type name "device" (also agents[0])`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("got\n%v\nwant\n%s", err, strings.Join(want, "\n"))
	}
}

// TestValidateNamesFlags checks that a value set by a flag is reported by
// the flag's name, and other faults still by their line.
func TestValidateNamesFlags(t *testing.T) {
	cfg := mustLoad(t, "testdata/valid_small.yaml")
	cfg.Load.Rate = -5
	cfg.SetBy("load.rate", "-rate")
	cfg.SetDevices(0, "-devices")
	cfg.Agents[1].Priority = 300 // changed in code: the file's line still places it
	err := cfg.Validate()
	want := strings.Join([]string{
		"-rate: -5 is out of range 1..100000000",
		"-devices: 0 is out of range 1..100000",
		"testdata/valid_small.yaml:11: agents[1].priority: 300 is out of range 0..100",
	}, "\n")
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
}

func TestValidateConfigFromCode(t *testing.T) {
	cfg := Default().Clone()
	cfg.File = ""
	cfg.pos = nil
	cfg.Agents[3].Kind = 0
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "agents[3].kind: unknown kind Kind(0)") {
		t.Fatalf("got %v", err)
	}
}

func TestCloneIsDeep(t *testing.T) {
	a := Default()
	b := a.Clone()
	b.Agents[0].Subscribe[0] = "telemetry.x.*"
	b.Agents[1].Instances = 3
	b.SetBy("load.rate", "-rate")
	if a.Agents[0].Subscribe[0] != "telemetry.*.*" || a.Agents[1].Instances != 16 || a.flags["load.rate"] != "" {
		t.Fatal("Clone shares state with the original")
	}
}

func TestOverflowNames(t *testing.T) {
	for _, o := range []engine.Overflow{engine.DropNewest, engine.DropOldest, engine.Reject, engine.Block} {
		got, ok := parseOverflow(OverflowName(o))
		if !ok || got != o {
			t.Errorf("%v → %q → %v, %v", o, OverflowName(o), got, ok)
		}
	}
}

func TestMatchPattern(t *testing.T) {
	cases := []struct {
		pattern, topic string
		want           bool
	}{
		{"a.b.c", "a.b.c", true},
		{"a.b.c", "a.b", false},
		{"a.b", "a.b.c", false},
		{"a.*.c", "a.x.c", true},
		{"a.*.c", "a.x.y", false},
		{"a.*", "a.x.y", false},
		{"a.>", "a.x.y", true},
		{"a.>", "a", false},
		{">", "a", true},
		{"*", "a", true},
		{"*", "a.b", false},
		{"*.*.*", "telemetry.dev-0.s0", true},
	}
	for _, c := range cases {
		if got := matchPattern(c.pattern, c.topic); got != c.want {
			t.Errorf("matchPattern(%q, %q) = %v", c.pattern, c.topic, got)
		}
	}
}

// fuzzSeeds are inputs of the shapes that stress a YAML loader: anchors
// and aliases (shared, self-referring, nested "billion laughs"), merge keys,
// tags, deep nesting and huge scalars. testdata/fuzz/FuzzParseConfig holds
// the small ones as files.
func fuzzSeeds() [][]byte {
	seeds := []string{
		"load: &l {rate: 5}\nagents: [*l, *l]\n",
		"load: {rate: 1e3}\nagents: [{<<: {name: x}}]\n",
		"load: {rate: &r 1000, producers: *r}\nagents: [{name: &n d, kind: device, instances: *r, subscribe: [\"telemetry.*.*\"]}, {name: *n}]\n",
		"load: {rate: 1000}\nagents:\n  - &d {name: device, kind: device, instances: 1, subscribe: [\"telemetry.*.*\"]}\n  - {<<: *d, name: feature, kind: feature}\n  - {<<: [*d, *d], name: inference}\n  - <<: *d\n",
		"load: {rate: 1000}\nagents: &a [*a]\n",
		"load: &l {rate: 1000, x: *l}\nagents: []\n",
		"load: {rate: 1000}\nagents: [*missing]\n",
		"load: {rate: !!str 1000, duration: !!int 10}\nagents: [{name: !!binary aGVsbG8=, kind: !foo device}]\n",
		"load: {rate: 1000}\nagents: [{? [a, b] : c}, {? {a: 1} : 2}]\n",
		"%YAML 1.1\n---\nload: {rate: 1000}\n...\n",
	}
	laughs := func(levels int) string {
		var b strings.Builder
		b.WriteString("load: {rate: 1000}\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
		for i := 1; i <= levels; i++ {
			fmt.Fprintf(&b, "l%d: &l%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 10), ", "))
		}
		fmt.Fprintf(&b, "agents: *l%d\n", levels)
		return b.String()
	}
	seeds = append(seeds,
		laughs(3), laughs(9),
		"load: {rate: 1000}\nagents:\n  - &a {name: x, kind: device, instances: 1, subscribe: ["+strings.Repeat("a, ", 300)+"a]}\n"+strings.Repeat("  - *a\n", 300),
		"load: {rate: 1000}\nagents: [{name: a, subscribe: &s [\"telemetry.*.*\"]}, {subscribe: [*s, *s]}]\n",
		strings.Repeat("[", 3000)+strings.Repeat("]", 3000),
		"load: {rate: 1000}\nagents: "+strings.Repeat("{a: ", 2000)+"1"+strings.Repeat("}", 2000)+"\n",
		"load: {rate: 1000}\nagents:\n"+strings.Repeat("- ", 2000)+"x\n",
		"load: {rate: "+strings.Repeat("9", 5000)+"}\nagents: []\n",
		"load: {rate: 1000}\nagents: [{name: \""+strings.Repeat("n", 1<<16)+"\", kind: device, instances: 1, subscribe: [\""+strings.Repeat("telemetry.", 1000)+"\"]}]\n",
		"load: {rate: 1000}\nagents:\n  - name: |\n"+strings.Repeat("      a long literal block\n", 2000),
	)
	out := make([][]byte, len(seeds))
	for i, s := range seeds {
		out[i] = []byte(s)
	}
	return out
}

// FuzzParseConfig checks that Parse never panics, allocates in proportion
// to its input, and either returns a configuration that validates or
// faults that each carry the file and a line (but for a document too
// large to read).
func FuzzParseConfig(f *testing.F) {
	f.Add(defaultYAML)
	files, _ := filepath.Glob("testdata/invalid/*.yaml")
	files = append(files, "testdata/valid_small.yaml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var (
			cfg        *Config
			err        error
			mem0, mem1 runtime.MemStats
		)
		runtime.ReadMemStats(&mem0)
		cfg, err = Parse("fuzz.yaml", data)
		runtime.ReadMemStats(&mem1)
		// A generous bound, linear in the input: aliases may not make it
		// grow with their expansion.
		if n, limit := mem1.TotalAlloc-mem0.TotalAlloc, 1024*uint64(len(data))+32<<20; n > limit {
			t.Fatalf("%d bytes of input allocated %d bytes (> %d)", len(data), n, limit)
		}
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config and nil error")
			}
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("Parse accepted a config that Validate refuses: %v", verr)
			}
			return
		}
		errs, ok := err.(Errors)
		if !ok || len(errs) == 0 {
			t.Fatalf("error %T %v is not a non-empty Errors", err, err)
		}
		if !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("%v does not match ErrInvalidConfig", err)
		}
		for _, fe := range errs {
			if errors.Is(fe, ErrConfigTooLarge) && len(data) > MaxConfigSize {
				continue
			}
			if fe.File != "fuzz.yaml" || fe.Line < 1 || fe.Msg == "" {
				t.Fatalf("fault without a place: %#v", fe)
			}
			if !strings.HasPrefix(fe.Error(), "fuzz.yaml:") {
				t.Fatalf("Error() = %q", fe.Error())
			}
		}
	})
}
