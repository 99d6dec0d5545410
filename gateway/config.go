package gateway

import (
	_ "embed"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/agentloop/agentloop/engine"
	"github.com/agentloop/agentloop/messaging"
)

// DefaultFile is the name errors in the embedded default configuration
// would carry.
const DefaultFile = "default.yaml"

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the text of the embedded default configuration.
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

// Default returns the embedded default configuration: the W10 mix of
// 10 000 devices, 16 feature agents, 4 inference agents and one alert agent
// at 200 000 msgs/s for 10 s.
func Default() *Config {
	cfg, err := Parse(DefaultFile, defaultYAML)
	if err != nil {
		panic("gateway: the embedded default configuration is invalid: " + err.Error())
	}
	return cfg
}

// LoadFile reads and parses the configuration in path. It reads at most
// MaxConfigSize bytes and one more: a longer file is refused as Parse
// refuses it, without reading the rest.
func LoadFile(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Limits of the document, so that parsing takes time and memory in
// proportion to MaxConfigSize whatever the input: a configuration is tens
// of lines.
const (
	// MaxConfigSize is the longest configuration Parse reads, in bytes.
	MaxConfigSize = 1 << 20
	// MaxAliasExpansion bounds what YAML aliases (*name) may add to a
	// document: each use of an alias counts the nodes of what it names,
	// and the bytes of their scalars, as if written out in its place; all
	// uses together may add at most this much. A few shared values fit
	// many times over; "billion laughs" (aliases of lists of aliases) does
	// not.
	MaxAliasExpansion = 1 << 16
)

// Kind is the behaviour of an agent type in the mix. Each kind receives
// one topic shape and publishes the next:
//
//	device     telemetry.<device>.<sensor>  → features.<device>, alerts.<device>.threshold
//	feature    features.<device>            → aggregates.<feature>
//	inference  aggregates.<feature>         → alerts.<device>.anomaly
//	alert      alerts.<device>.<reason>
type Kind uint8

// The kinds. A configuration has exactly one agent type of each.
const (
	Device Kind = iota + 1
	Feature
	Inference
	Alert
)

var kindNames = [...]string{Device: "device", Feature: "feature", Inference: "inference", Alert: "alert"}

// kinds lists the kinds in pipeline order.
var kinds = [...]Kind{Device, Feature, Inference, Alert}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

func parseKind(s string) (Kind, bool) {
	for _, k := range kinds {
		if kindNames[k] == s {
			return k, true
		}
	}
	return 0, false
}

// sampleInputs are topics of the shape each kind receives, used to check
// that a subscription reaches its kind and no other.
var sampleInputs = [...][]string{
	Device:    {"telemetry.dev-0.s0"},
	Feature:   {"features.dev-0"},
	Inference: {"aggregates.0"},
	Alert:     {"alerts.dev-0.threshold", "alerts.dev-0.anomaly"},
}

// overflowNames are the YAML names of the engine's overflow policies.
var overflowNames = [...]string{
	engine.DropNewest: "drop-newest",
	engine.DropOldest: "drop-oldest",
	engine.Reject:     "reject",
	engine.Block:      "block",
}

// OverflowName returns the configuration name of o ("drop-oldest").
func OverflowName(o engine.Overflow) string {
	if int(o) < len(overflowNames) {
		return overflowNames[o]
	}
	return o.String()
}

func parseOverflow(s string) (engine.Overflow, bool) {
	for i, n := range overflowNames {
		if n == s {
			return engine.Overflow(i), true
		}
	}
	return 0, false
}

// Limits of the configuration values. Devices and sensors are bounded
// because every telemetry topic is built once, up front.
const (
	MaxRate         = 100_000_000
	MaxDuration     = 24 * time.Hour
	MaxProducers    = 256
	MaxLoops        = 1024
	MaxSensors      = 8
	MaxDevices      = 100_000
	MaxInstances    = 10_000 // of the kinds other than device
	MaxMailbox      = 1 << 20
	MaxFeatureEvery = 1_000_000
)

// Defaults of the optional fields.
const (
	DefaultDuration     = 10 * time.Second
	DefaultProducers    = 2
	DefaultSensors      = 4
	DefaultPriority     = 50
	DefaultMailbox      = engine.DefaultMailboxSize
	DefaultFeatureEvery = 10
	DefaultBatch        = engine.DefaultBatch
)

// Load is the offered load.
type Load struct {
	Rate      int           // telemetry messages per second offered, open loop (required)
	Duration  time.Duration // how long the producers offer it
	Producers int           // goroutines emitting telemetry; each offers Rate/Producers
	Loops     int           // engine event loops; 0 means GOMAXPROCS
	Sensors   int           // sensors per device: topics telemetry.<device>.s0 ..
	Ingress   Ingress       // how telemetry enters the engine
}

// EventLoops is the number of event loops a run of this load has: Loops,
// or with 0 the engine's default, GOMAXPROCS, resolved now.
func (l Load) EventLoops() int {
	if l.Loops > 0 {
		return l.Loops
	}
	return runtime.GOMAXPROCS(0)
}

// Ingress is how producers hand telemetry to the engine.
type Ingress uint8

const (
	// Publish publishes each message on its topic from outside
	// (Engine.Publish): the bus matches the topic against the
	// subscriptions and finds the device agent, as a gateway that knows
	// nothing of its devices would.
	Publish Ingress = iota
	// Route looks the topic up in a table built once (topic → device
	// agent) and sends to the agent (Ref.Send), as the goroutine baseline
	// looks up its channel: the bus is not on the telemetry path.
	Route
)

var ingressNames = [...]string{Publish: "publish", Route: "route"}

func (i Ingress) String() string {
	if int(i) < len(ingressNames) {
		return ingressNames[i]
	}
	return fmt.Sprintf("Ingress(%d)", uint8(i))
}

// ParseIngress returns the ingress named s ("publish" or "route").
func ParseIngress(s string) (Ingress, bool) {
	for i, n := range ingressNames {
		if n == s {
			return Ingress(i), true
		}
	}
	return 0, false
}

// AgentType is one agent type of the mix.
type AgentType struct {
	Name      string // the engine type name (required, unique)
	Kind      Kind   // its behaviour (required)
	Instances int    // agents of the type; for devices, the number of devices (required)
	Priority  int    // scheduler priority 0..100
	Mailbox   int    // mailbox bound, in messages
	Overflow  engine.Overflow
	Batch     int      // inference only: the ReceiveBatch size
	Subscribe []string // topic patterns (required, at least one)
	// FeatureEvery (devices only): a device publishes a feature vector on
	// every FeatureEvery-th telemetry message it receives.
	FeatureEvery int
}

// Config is a gateway mix: the offered load and the agent types. Parse
// returns one that is valid; a Config changed afterwards is checked again
// with Validate.
type Config struct {
	File   string // where it was read from, for error messages
	Load   Load
	Agents []AgentType

	pos   map[string]int    // field path → line of its value (or of its parent when missing)
	flags map[string]string // field path → the command-line flag that set it
}

// Type returns the agent type of kind k, or nil.
func (c *Config) Type(k Kind) *AgentType {
	for i := range c.Agents {
		if c.Agents[i].Kind == k {
			return &c.Agents[i]
		}
	}
	return nil
}

// Devices returns the number of device agents.
func (c *Config) Devices() int {
	if t := c.Type(Device); t != nil {
		return t.Instances
	}
	return 0
}

// SetDevices sets the number of devices (the device type's instances),
// recording that flag set it, for Validate's messages.
func (c *Config) SetDevices(n int, flag string) {
	for i := range c.Agents {
		if c.Agents[i].Kind == Device {
			c.Agents[i].Instances = n
			c.SetBy(fmt.Sprintf("agents[%d].instances", i), flag)
		}
	}
}

// SetBy records that a command-line flag (such as "-rate") set the field
// at path (such as "load.rate"), so that Validate names the flag rather
// than a line of the file.
func (c *Config) SetBy(path, flag string) {
	if c.flags == nil {
		c.flags = make(map[string]string)
	}
	c.flags[path] = flag
}

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	n := *c
	n.Agents = make([]AgentType, len(c.Agents))
	for i, t := range c.Agents {
		t.Subscribe = append([]string(nil), t.Subscribe...)
		n.Agents[i] = t
	}
	n.pos = make(map[string]int, len(c.pos))
	for k, v := range c.pos {
		n.pos[k] = v
	}
	n.flags = make(map[string]string, len(c.flags))
	for k, v := range c.flags {
		n.flags[k] = v
	}
	return &n
}

// Validate checks every field; the error is an Errors listing each fault
// with the file line (or flag) and the field path.
func (c *Config) Validate() error {
	v := validator{cfg: c}
	v.validate()
	return v.errs.err()
}

// validator collects the faults of one configuration.
type validator struct {
	cfg  *Config
	errs Errors
	// missing holds the fields the parser found absent or unreadable and
	// has reported already; nil for a Config built in code.
	missing map[string]bool
}

func (v *validator) fault(path, format string, args ...any) {
	if v.missing[path] {
		return // the parser has reported this field already
	}
	e := &FieldError{File: v.cfg.File, Field: path, Msg: fmt.Sprintf(format, args...)}
	if f, ok := v.cfg.flags[path]; ok {
		e.File, e.Flag = "", f
	} else {
		e.Line = v.cfg.line(path)
	}
	v.errs = append(v.errs, e)
}

// line finds the line of path, or of its nearest ancestor with one.
func (c *Config) line(path string) int {
	for p := path; p != ""; {
		if l, ok := c.pos[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return c.pos[""]
}

func (v *validator) intRange(path string, n, lo, hi int) {
	if n < lo || n > hi {
		v.fault(path, "%d is out of range %d..%d", n, lo, hi)
	}
}

func (v *validator) validate() {
	c := v.cfg
	l := c.Load
	v.intRange("load.rate", l.Rate, 1, MaxRate)
	if l.Duration <= 0 || l.Duration > MaxDuration {
		v.fault("load.duration", "%v is out of range (0s, %v]", l.Duration, MaxDuration)
	}
	v.intRange("load.producers", l.Producers, 1, MaxProducers)
	v.intRange("load.loops", l.Loops, 0, MaxLoops)
	v.intRange("load.sensors", l.Sensors, 1, MaxSensors)
	if int(l.Ingress) >= len(ingressNames) {
		v.fault("load.ingress", "unknown ingress %v: want publish or route", l.Ingress)
	}

	if len(c.Agents) == 0 {
		v.fault("agents", "empty: want one agent type of each kind (device, feature, inference, alert)")
		return
	}
	names := make(map[string]int)
	byKind := make(map[Kind]int)
	for i := range c.Agents {
		t := &c.Agents[i]
		p := fmt.Sprintf("agents[%d]", i)
		if err := validName(t.Name); err != "" {
			v.fault(p+".name", "%q %s", t.Name, err)
		} else if j, dup := names[t.Name]; dup {
			v.fault(p+".name", "duplicate type name %q (also agents[%d])", t.Name, j)
		} else {
			names[t.Name] = i
		}
		kindOK := false
		switch j, dup := byKind[t.Kind]; {
		case t.Kind == 0 || int(t.Kind) >= len(kindNames):
			v.fault(p+".kind", "unknown kind %v: want device, feature, inference or alert", t.Kind)
		case dup:
			v.fault(p+".kind", "a second type of kind %v (the first is agents[%d]): want one of each", t.Kind, j)
		default:
			byKind[t.Kind] = i
			kindOK = !v.missing[p+".kind"]
		}
		hi := MaxInstances
		if t.Kind == Device {
			hi = MaxDevices
		}
		v.intRange(p+".instances", t.Instances, 1, hi)
		v.intRange(p+".priority", t.Priority, 0, 100)
		v.intRange(p+".mailbox", t.Mailbox, 1, MaxMailbox)
		if int(t.Overflow) >= len(overflowNames) {
			v.fault(p+".overflow", "unknown overflow policy %v", t.Overflow)
		}
		known := t.Kind != 0 && int(t.Kind) < len(kindNames) // else reported above
		switch {
		case t.Kind == Inference:
			v.intRange(p+".batch", t.Batch, 1, engine.MaxBatch)
		case t.Batch != 0 && known:
			v.fault(p+".batch", "only inference agents take batches (this type is %v)", t.Kind)
		}
		switch {
		case t.Kind == Device:
			v.intRange(p+".feature_every", t.FeatureEvery, 1, MaxFeatureEvery)
		case t.FeatureEvery != 0 && known:
			v.fault(p+".feature_every", "only devices publish feature vectors (this type is %v)", t.Kind)
		}
		if len(t.Subscribe) == 0 {
			v.fault(p+".subscribe", "empty: want at least one topic pattern")
		}
		for j, pat := range t.Subscribe {
			v.pattern(fmt.Sprintf("%s.subscribe[%d]", p, j), pat, t.Kind, kindOK)
		}
	}
	var lack []string
	for _, k := range kinds {
		if _, ok := byKind[k]; !ok {
			lack = append(lack, k.String())
		}
	}
	if len(lack) > 0 && len(v.errs) == 0 {
		v.fault("agents", "no agent type of kind %s: want one of each", strings.Join(lack, ", "))
	}
}

// pattern checks one subscription: a valid pattern that reaches the topics
// its kind receives and none of the others' (which would feed a stage its
// own output).
func (v *validator) pattern(path, pat string, k Kind, kindOK bool) {
	if err := messaging.ValidatePattern(pat); err != nil {
		v.fault(path, "%v", err)
		return
	}
	if !kindOK {
		return
	}
	hit := false
	for _, topic := range sampleInputs[k] {
		hit = hit || matchPattern(pat, topic)
	}
	if !hit {
		v.fault(path, "%q matches none of the topics %v agents receive (%s)", pat, k, inputShape(k))
		return
	}
	for _, other := range kinds {
		if other == k {
			continue
		}
		for _, topic := range sampleInputs[other] {
			if matchPattern(pat, topic) {
				v.fault(path, "%q also matches %s, which %v agents receive", pat, topic, other)
				return
			}
		}
	}
}

func inputShape(k Kind) string {
	switch k {
	case Device:
		return "telemetry.<device>.<sensor>"
	case Feature:
		return "features.<device>"
	case Inference:
		return "aggregates.<feature>"
	default:
		return "alerts.<device>.<reason>"
	}
}

// validName checks an agent type name: a short word of letters, digits,
// '-' and '_' (it names the type in the engine, in Stats and in profile
// labels).
func validName(s string) string {
	if s == "" {
		return "is empty"
	}
	if len(s) > 64 {
		return "is longer than 64 bytes"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return "has characters other than letters, digits, '-' and '_'"
		}
	}
	return ""
}

// matchPattern reports whether the NATS-style pattern (already valid)
// matches topic.
func matchPattern(pattern, topic string) bool {
	for {
		var p, t string
		p, pattern, _ = strings.Cut(pattern, ".")
		if p == ">" {
			return topic != ""
		}
		if topic == "" {
			return false
		}
		var more bool
		t, topic, more = strings.Cut(topic, ".")
		if p != "*" && p != t {
			return false
		}
		if pattern == "" {
			return !more
		}
		if !more {
			return false
		}
	}
}
