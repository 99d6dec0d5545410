package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Parse reads a configuration from data; file names it in errors. The
// document is decoded into a yaml.Node tree and walked field by field, so
// that every fault is reported with its line and field path:
//
//	gateway.yaml:12: agents[2].priority: 140 is out of range 0..100
//
// Unknown and repeated fields are refused (as yaml's KnownFields would),
// and so are values of the wrong type, missing required fields, duplicate
// type names, unknown kinds and overflow policies, counts out of range and
// subscriptions that do not reach their kind. The error is an Errors
// holding every fault found, in file order; it matches ErrInvalidConfig.
//
// Time and memory stay in proportion to the input: data longer than
// MaxConfigSize is refused unread (ErrConfigTooLarge), and so is a document
// whose aliases would add more than MaxAliasExpansion to it, or that uses
// an alias inside the node it names (ErrAliasExpansion).
func Parse(file string, data []byte) (*Config, error) {
	if len(data) > MaxConfigSize {
		return nil, Errors{{File: file, Err: ErrConfigTooLarge,
			Msg: fmt.Sprintf("%d bytes or more: a configuration may have at most MaxConfigSize = %d bytes", len(data), MaxConfigSize)}}
	}
	cfg := &Config{File: file, pos: map[string]int{"": 1}}
	d := &decoder{cfg: cfg, missing: make(map[string]bool)}
	root, err := d.document(data)
	if err != nil {
		return nil, Errors{err}
	}
	d.top(root)
	v := validator{cfg: cfg, errs: d.errs, missing: d.missing}
	v.validate()
	if len(v.errs) > 0 {
		sort.SliceStable(v.errs, func(i, j int) bool { return v.errs[i].Line < v.errs[j].Line })
		return nil, v.errs
	}
	return cfg, nil
}

// decoder walks the node tree into a Config.
type decoder struct {
	cfg     *Config
	errs    Errors
	missing map[string]bool // fields reported here, for the validator to skip
}

func (d *decoder) fault(n *yaml.Node, path, format string, args ...any) {
	d.missing[path] = true
	line := d.cfg.line(path)
	if n != nil && n.Line > 0 {
		line = n.Line
	}
	d.errs = append(d.errs, &FieldError{File: d.cfg.File, Line: line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// document parses data into the root node of its only document.
func (d *decoder) document(data []byte) (*yaml.Node, *FieldError) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &FieldError{File: d.cfg.File, Line: 1, Msg: "empty configuration: want the load and agents sections"}
		}
		return nil, syntaxError(d.cfg.File, data, err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, &FieldError{File: d.cfg.File, Line: next.Line, Msg: "a second YAML document: want one"}
	} else if !errors.Is(err, io.EOF) {
		return nil, syntaxError(d.cfg.File, data, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, &FieldError{File: d.cfg.File, Line: 1, Msg: "empty configuration: want the load and agents sections"}
		}
		root = root.Content[0]
	}
	if fe := checkAliases(d.cfg.File, &doc); fe != nil {
		return nil, fe
	}
	return root, nil
}

// checkAliases measures the document as if every alias were replaced by a
// copy of the node it names, without making the copies: a node weighs 1
// plus the bytes of its scalar, a collection the sum of its children too,
// an alias what it names. The weights of the nodes aliases name are kept,
// so the pass is linear in the document, and it stops as soon as the uses
// of aliases add more than MaxAliasExpansion: the walk of the tree that
// follows is bounded by the document plus that much. An alias inside the
// node it names (which yaml allows) would expand without end and is
// refused too.
func checkAliases(file string, doc *yaml.Node) *FieldError {
	c := aliasCheck{weights: make(map[*yaml.Node]int)}
	c.weigh(doc)
	if c.fault == nil {
		return nil
	}
	c.fault.File = file
	return c.fault
}

type aliasCheck struct {
	weights map[*yaml.Node]int // of the nodes with an anchor; -1 while being weighed
	added   int                // by the uses of aliases so far
	fault   *FieldError
}

func (c *aliasCheck) weigh(n *yaml.Node) int {
	if n == nil || c.fault != nil {
		return 0
	}
	if n.Kind == yaml.AliasNode {
		w, ok := c.weights[n.Alias]
		switch {
		case n.Alias == nil:
			return 1
		case ok && w < 0: // being weighed: the alias is inside the node it names
			c.fault = &FieldError{Line: n.Line, Err: ErrAliasExpansion,
				Msg: fmt.Sprintf("alias *%s is used inside the node it names: it would expand without end", n.Value)}
			return 0
		case !ok:
			// The node an alias names has an anchor and comes before it,
			// so it is weighed already; this is for trees not made by the
			// parser.
			w = c.weigh(n.Alias)
		}
		if c.added += w; c.added > MaxAliasExpansion {
			c.fault = &FieldError{Line: n.Line, Err: ErrAliasExpansion,
				Msg: fmt.Sprintf("aliases expand the document by more than MaxAliasExpansion = %d nodes and scalar bytes (at this use of *%s)",
					MaxAliasExpansion, n.Value)}
		}
		return w
	}
	if n.Anchor != "" {
		if w, ok := c.weights[n]; ok {
			if w < 0 {
				return 0 // reported by the alias that found it
			}
			return w
		}
		c.weights[n] = -1
	}
	w := 1 + len(n.Value)
	for _, child := range n.Content {
		w += c.weigh(child)
		if c.fault != nil {
			return 0
		}
	}
	if n.Anchor != "" {
		c.weights[n] = w
	}
	return w
}

// syntaxError places a YAML syntax error. The yaml package names the line
// in most messages; when it does not (errors on the first line, bytes that
// are not text), the line is that of the first byte YAML cannot take, or 1.
func syntaxError(file string, data []byte, err error) *FieldError {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		why := strings.TrimPrefix(msg, m[0])
		if l := problemLine(data, why); l > 0 {
			line = l
		}
		return &FieldError{File: file, Line: line, Msg: "yaml: " + why}
	}
	return &FieldError{File: file, Line: badByteLine(data), Msg: msg}
}

// problemLine finds the line a syntax error is on. The yaml package often
// names the line where the enclosing block starts (a mis-indented key on
// line 10 of a list opened on line 3 is reported on line 3); the line at
// fault is the last line of the shortest prefix of the document that fails
// with the same complaint. Once a prefix holds the fault every longer one
// fails with it too, so the search bisects: a handful of parses, where
// trying each line in turn would parse the document once per line. It
// returns 0 when no prefix does, or when the document is too large to
// search this way.
func problemLine(data []byte, why string) int {
	const maxLines = 4096 // configurations are tens of lines; each try parses a prefix
	if len(data) > 1<<15 || bytes.Count(data, []byte("\n")) > maxLines {
		return 0
	}
	var ends []int // ends[i]: the end of line i+1
	for end := 0; end < len(data); {
		i := bytes.IndexByte(data[end:], '\n')
		if i < 0 {
			end = len(data)
		} else {
			end += i + 1
		}
		ends = append(ends, end)
	}
	fails := func(i int) bool {
		var n yaml.Node
		err := yaml.Unmarshal(data[:ends[i]], &n)
		if err == nil {
			return false
		}
		m := yamlLine.FindStringSubmatch(err.Error())
		return m != nil && strings.TrimPrefix(err.Error(), m[0]) == why || err.Error() == "yaml: "+why
	}
	if i := sort.Search(len(ends), fails); i < len(ends) {
		return i + 1
	}
	return 0 // not even the whole document fails so
}

// badByteLine returns the line of the first byte that is not valid UTF-8
// or is a control character YAML refuses, or 1.
func badByteLine(data []byte) int {
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 || r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return line
		}
		if r == '\n' {
			line++
		}
		i += size
	}
	return 1
}

// deref follows aliases (bounded, in case of a cycle).
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

// field is one key of a mapping with its value.
type field struct {
	key, val *yaml.Node
}

// mapping returns the fields of a mapping node, refusing other nodes,
// unknown keys (those not in known) and repeated keys.
func (d *decoder) mapping(n *yaml.Node, path string, known ...string) (map[string]field, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		d.fault(n, path, "want a mapping of %s, got %s", strings.Join(known, ", "), describe(n))
		return nil, false
	}
	if _, ok := d.cfg.pos[path]; !ok { // a list item: no key line to point at
		d.cfg.pos[path] = n.Line
	}
	fields := make(map[string]field, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := deref(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			d.fault(n.Content[i], path, "a key that is not a plain name")
			continue
		}
		if !contains(known, k.Value) {
			d.fault(k, join(path, k.Value), "unknown field (known: %s)", strings.Join(known, ", "))
			continue
		}
		if prev, dup := fields[k.Value]; dup {
			d.fault(k, join(path, k.Value), "repeated field (first at line %d)", prev.key.Line)
			continue
		}
		fields[k.Value] = field{k, val}
		d.cfg.pos[join(path, k.Value)] = k.Line // the key's line: a nested value starts below it
	}
	return fields, true
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// describe names what a node holds, for messages.
func describe(n *yaml.Node) string {
	n = deref(n)
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind != yaml.ScalarNode:
		return "an unknown node"
	case n.ShortTag() == "!!null":
		return "an empty value"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "…"
	}
	return strconv.Quote(v)
}

// required reports a missing field at the line of its mapping.
func (d *decoder) required(fields map[string]field, path, name, want string) (*yaml.Node, bool) {
	f, ok := fields[name]
	if !ok {
		d.fault(nil, join(path, name), "missing (want %s)", want) // at the line of path
		return nil, false
	}
	return f.val, true
}

// integer decodes an integer scalar. Integral floats (2e5) are accepted.
func (d *decoder) integer(n *yaml.Node, path string, dst *int) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode {
		d.fault(n, path, "want an integer, got %s", describe(n))
		return
	}
	switch n.ShortTag() {
	case "!!int":
		var v int64
		if err := n.Decode(&v); err != nil || v < math.MinInt32 || v > math.MaxInt32 {
			d.fault(n, path, "%s is out of range", n.Value)
			return
		}
		*dst = int(v)
		return
	case "!!float":
		var f float64
		if err := n.Decode(&f); err == nil && f == math.Trunc(f) {
			if math.Abs(f) > math.MaxInt32 {
				d.fault(n, path, "%s is out of range", n.Value)
				return
			}
			*dst = int(f)
			return
		}
	}
	d.fault(n, path, "want an integer, got %s", describe(n))
}

// str decodes a string scalar.
func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		d.fault(n, path, "want a string, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

// word decodes a scalar naming one of a set of values (a kind, a policy):
// its text, whatever YAML would make of it, so that "overflow: 1" is
// reported as an unknown policy rather than as a number.
func (d *decoder) word(n *yaml.Node, path string) (string, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		d.fault(n, path, "want a name, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

// duration decodes a Go duration string ("10s", "1m30s").
func (d *decoder) duration(n *yaml.Node, path string, dst *time.Duration) {
	s, ok := d.word(n, path)
	if !ok {
		return
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.fault(deref(n), path, "%q is not a duration (want a number with a unit: 10s, 500ms)", s)
		return
	}
	*dst = v
}

func (d *decoder) top(root *yaml.Node) {
	d.cfg.Load = Load{Duration: DefaultDuration, Producers: DefaultProducers, Sensors: DefaultSensors}
	fields, ok := d.mapping(root, "", "load", "agents")
	if !ok {
		d.missing["load.rate"], d.missing["agents"] = true, true
		return
	}
	if n, ok := d.required(fields, "", "load", "a mapping with at least rate"); ok {
		d.load(n)
	} else {
		d.missing["load.rate"] = true
	}
	if n, ok := d.required(fields, "", "agents", "a list of agent types"); ok {
		d.agents(n)
	}
}

func (d *decoder) load(n *yaml.Node) {
	const path = "load"
	fields, ok := d.mapping(n, path, "rate", "duration", "producers", "loops", "sensors", "ingress")
	if !ok {
		d.missing["load.rate"] = true
		return
	}
	l := &d.cfg.Load
	if v, ok := d.required(fields, path, "rate", "telemetry messages per second"); ok {
		d.integer(v, "load.rate", &l.Rate)
	}
	if f, ok := fields["duration"]; ok {
		d.duration(f.val, "load.duration", &l.Duration)
	}
	for _, o := range []struct {
		name string
		dst  *int
	}{{"producers", &l.Producers}, {"loops", &l.Loops}, {"sensors", &l.Sensors}} {
		if f, ok := fields[o.name]; ok {
			d.integer(f.val, "load."+o.name, o.dst)
		}
	}
	if f, ok := fields["ingress"]; ok {
		if s, ok := d.word(f.val, "load.ingress"); ok {
			if l.Ingress, ok = ParseIngress(s); !ok {
				d.fault(deref(f.val), "load.ingress", "unknown ingress %q: want publish or route", s)
			}
		}
	}
}

func (d *decoder) agents(n *yaml.Node) {
	n = deref(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		d.fault(n, "agents", "want a list of agent types, got %s", describe(n))
		return
	}
	if len(n.Content) == 0 {
		return // the validator reports the empty list
	}
	d.cfg.Agents = make([]AgentType, len(n.Content))
	for i, item := range n.Content {
		d.agent(item, fmt.Sprintf("agents[%d]", i), &d.cfg.Agents[i])
	}
}

var agentFields = []string{"name", "kind", "instances", "priority", "mailbox", "overflow", "batch", "feature_every", "subscribe"}

func (d *decoder) agent(n *yaml.Node, path string, t *AgentType) {
	*t = AgentType{Priority: DefaultPriority, Mailbox: DefaultMailbox}
	fields, ok := d.mapping(n, path, agentFields...)
	if !ok {
		for _, f := range agentFields {
			d.missing[join(path, f)] = true
		}
		return
	}
	if v, ok := d.required(fields, path, "name", "the type's name"); ok {
		t.Name, _ = d.str(v, path+".name")
	}
	if v, ok := d.required(fields, path, "kind", "device, feature, inference or alert"); ok {
		if s, ok := d.word(v, path+".kind"); ok {
			if t.Kind, ok = parseKind(s); !ok {
				d.fault(deref(v), path+".kind", "unknown kind %q: want device, feature, inference or alert", s)
			}
		}
	}
	if v, ok := d.required(fields, path, "instances", "the number of agents of the type"); ok {
		d.integer(v, path+".instances", &t.Instances)
	}
	if f, ok := fields["priority"]; ok {
		d.integer(f.val, path+".priority", &t.Priority)
	}
	if f, ok := fields["mailbox"]; ok {
		d.integer(f.val, path+".mailbox", &t.Mailbox)
	}
	if f, ok := fields["overflow"]; ok {
		if s, ok := d.word(f.val, path+".overflow"); ok {
			if t.Overflow, ok = parseOverflow(s); !ok {
				d.fault(deref(f.val), path+".overflow", "unknown overflow policy %q: want drop-newest, drop-oldest, reject or block", s)
			}
		}
	}
	if f, ok := fields["batch"]; ok {
		d.integer(f.val, path+".batch", &t.Batch)
	} else if t.Kind == Inference {
		t.Batch = DefaultBatch
	}
	if f, ok := fields["feature_every"]; ok {
		d.integer(f.val, path+".feature_every", &t.FeatureEvery)
	} else if t.Kind == Device {
		t.FeatureEvery = DefaultFeatureEvery
	}
	if v, ok := d.required(fields, path, "subscribe", "a list of topic patterns"); ok {
		d.subscribe(v, path+".subscribe", t)
	}
}

func (d *decoder) subscribe(n *yaml.Node, path string, t *AgentType) {
	n = deref(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		d.fault(n, path, "want a list of topic patterns, got %s", describe(n))
		return
	}
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.cfg.pos[p] = item.Line
		if s, ok := d.str(item, p); ok {
			t.Subscribe = append(t.Subscribe, s)
		} else {
			t.Subscribe = append(t.Subscribe, "") // keep the indexes of the file
		}
	}
}
