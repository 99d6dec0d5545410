package main

import (
	"fmt"
	"strings"
)

// A source is one measured value: a unit of a benchmark (name without
// "Benchmark" and the GOMAXPROCS suffix).
type source struct{ bench, unit string }

// A variant is one way to measure a check: the value itself (one source)
// or a quotient num/den (two). The first variant whose sources are all in
// the input is used, so the library's own benchmarks come first and the
// peers suite's stand in for them.
type variant struct{ num, den source }

// A check is one line of the targets table of bench/README.md: a measured
// value (or quotient) compared with a limit.
type check struct {
	workload int
	target   string // as bench/README.md words it
	what     string // what the measured value is
	atMost   bool   // the value must be <= limit; otherwise >= limit
	limit    float64
	variants []variant
}

// one is a variant of a single value.
func one(bench, unit string) variant { return variant{num: source{bench, unit}} }

// ratio is a variant of a quotient.
func ratio(num, numUnit, den, denUnit string) variant {
	return variant{num: source{num, numUnit}, den: source{den, denUnit}}
}

// targets is the targets column of bench/README.md, check by check. The
// target of each check is the words of the README's cell it checks (a
// cell's clause that names two measurements, as W3's "at 2 and at 8
// producers", is two checks); TestTargetsAreTheReadmes holds the two to
// each other.
var targets = []check{
	{1, "≤ 15 ns/msg", "ns/msg", true, 15, []variant{
		one("W1_InLoopSend", "ns/msg"), one("W1/impl=agentloop", "ns/msg")}},
	{1, "≤ 0.45× the channel", "agentloop ns/msg ÷ channel ns/msg", true, 0.45, []variant{
		ratio("W1_InLoopSend", "ns/msg", "W1_BaselineChannel", "ns/msg"),
		ratio("W1/impl=agentloop", "ns/msg", "W1/impl=channels", "ns/msg")}},
	{1, "0 allocs", "allocs/msg", true, 0, []variant{
		one("W1_InLoopSend", "allocs/op"), one("W1/impl=agentloop", "allocs/op")}},
	// The peers suite's agentloop sink has a Block mailbox: the default
	// policy is measured in the library suite only.
	{2, "default policy ≤ 0.9× the channel", "default policy ns/msg ÷ channel ns/msg", true, 0.9, []variant{
		ratio("W2_RefSendDrop", "ns/msg", "W2_BaselineChannel", "ns/msg")}},
	{2, "Block ≤ 1.15× the default policy", "Block ns/msg ÷ default policy ns/msg", true, 1.15, []variant{
		ratio("W2_RefSend", "ns/msg", "W2_RefSendDrop", "ns/msg")}},
	{2, "0 allocs", "allocs/msg, default policy", true, 0, []variant{
		one("W2_RefSendDrop", "allocs/op")}},
	{2, "0 allocs", "allocs/msg, Block", true, 0, []variant{
		one("W2_RefSend", "allocs/op"), one("W2/impl=agentloop", "allocs/op")}},
	{3, "≤ 1.0× the channel at 2 and at 8 producers", "agentloop ns/msg ÷ channel ns/msg, 2 producers", true, 1.0, []variant{
		ratio("W3_FanIn/producers=2", "ns/msg", "W3_BaselineChannel/producers=2", "ns/msg"),
		ratio("W3/producers=2/impl=agentloop", "ns/msg", "W3/producers=2/impl=channels", "ns/msg")}},
	{3, "≤ 1.0× the channel at 2 and at 8 producers", "agentloop ns/msg ÷ channel ns/msg, 8 producers", true, 1.0, []variant{
		ratio("W3_FanIn/producers=8", "ns/msg", "W3_BaselineChannel/producers=8", "ns/msg"),
		ratio("W3/producers=8/impl=agentloop", "ns/msg", "W3/producers=8/impl=channels", "ns/msg")}},
	{4, "≤ 1.0× the unbuffered channels", "agentloop ns/rt ÷ channel ns/rt", true, 1.0, []variant{
		ratio("W4_PingPong", "ns/rt", "W4_BaselineChannel", "ns/rt"),
		ratio("W4/impl=agentloop", "ns/rt", "W4/impl=channels", "ns/rt")}},
	{5, "≤ 1.3× the channel ping-pong", "agentloop ns/rt ÷ channel ns/rt", true, 1.3, []variant{
		ratio("W5_Request", "ns/rt", "W5_BaselineChannel", "ns/rt"),
		ratio("W5/impl=agentloop", "ns/rt", "W5/impl=channels", "ns/rt")}},
	{5, "≤ 2 allocs per round trip", "allocs/rt", true, 2, []variant{
		one("W5_Request", "allocs/op"), one("W5/impl=agentloop", "allocs/op")}},
	{6, "0 allocs per publish", "allocs/publish (100 subscribers)", true, 0, []variant{
		one("W6_EnginePublish/subs=100/exact", "allocs/op"), one("W6/impl=agentloop", "allocs/op")}},
	{6, "≤ 10 ns per in-loop delivery", "ns/delivery (100 subscribers)", true, 10, []variant{
		one("W6_EnginePublish/subs=100/exact", "ns/delivery"), one("W6/impl=agentloop", "ns/delivery")}},
	{7, "≤ 150 ns per schedule+cancel pair", "ns/pair", true, 150, []variant{
		one("W7_AgentTimerPair", "ns/pair"), one("W7/impl=agentloop", "ns/pair")}},
	{7, "burst p99 lateness ≤ 2 ms", "late-p99-µs", true, 2000, []variant{
		one("W7_TimerBurst", "late-p99-µs")}},
	{7, "idle engine ≤ 0.1 % CPU", "cpu-% (1M armed timers)", true, 0.1, []variant{
		one("W7_IdleArmedTimers", "cpu-%")}},
	{8, "≤ 500 ns per spawn", "ns/spawn", true, 500, []variant{
		one("W8_Spawn", "ns/op"), one("W8/impl=agentloop", "ns/spawn")}},
	{8, "≤ 300 B per agent", "bytes/agent", true, 300, []variant{
		one("W8_Spawn", "bytes/agent"), one("W8/impl=agentloop", "bytes/agent")}},
	{9, "pooled: 0 allocs per cycle", "allocs/cycle", true, 0, []variant{
		one("W9_Pooled", "allocs/op"), one("W9/impl=agentloop", "allocs/op")}},
	{9, "≥ 2× faster than unpooled", "unpooled ns ÷ pooled ns", false, 2, []variant{
		ratio("W9_BaselineUnpooled", "ns/op", "W9_Pooled", "ns/op"),
		ratio("W9/impl=agentloop-unpooled", "ns/cycle", "W9/impl=agentloop", "ns/cycle")}},
	{10, "CPU per message at equal offered rate ≤ 0.5× the baseline's", "agentloop cpu-µs/msg ÷ baseline cpu-µs/msg", true, 0.5, []variant{
		ratio("W10_CPUPerMessage", "cpu-µs/msg", "W10_BaselineCPUPerMessage", "cpu-µs/msg")}},
	{10, "max rate with p99 ≤ 1 ms ≥ 1 M msgs/s on 2 cores", "max rate msgs/s", false, 1e6, []variant{
		one("W10_Gateway", "maxrate-msgs/s")}},
}

// A verdict is a check evaluated on the input.
type verdict struct {
	check
	measured bool
	value    float64
	from     string // the benchmarks the value comes from
	met      bool
}

func (v verdict) String() string {
	switch {
	case !v.measured:
		return "not measured"
	case v.met:
		return "met"
	}
	return "not met"
}

// lookup returns the median of s.
func (d *data) lookup(s source) (float64, bool) {
	b := d.benches[s.bench]
	if b == nil {
		return 0, false
	}
	sum, ok := b.summary(s.unit)
	return sum.center, ok
}

// evaluate computes every target's verdict from the medians.
func (d *data) evaluate() []verdict {
	out := make([]verdict, 0, len(targets))
	for _, c := range targets {
		v := verdict{check: c}
		for _, vr := range c.variants {
			num, ok := d.lookup(vr.num)
			if !ok {
				continue
			}
			from := vr.num.bench
			if vr.den.bench != "" {
				den, ok := d.lookup(vr.den)
				if !ok || den == 0 {
					continue
				}
				num /= den
				from += " ÷ " + vr.den.bench
			}
			v.measured, v.value, v.from = true, num, from
			if c.atMost {
				v.met = num <= c.limit
			} else {
				v.met = num >= c.limit
			}
			break
		}
		out = append(out, v)
	}
	return out
}

// describe words the value for the report.
func (v verdict) describe() string {
	if !v.measured {
		return "—"
	}
	s := formatNum(v.value)
	if strings.Contains(v.what, "÷") {
		s += "×"
	}
	return s
}

// limitText words the limit for the report.
func (c check) limitText() string {
	op := "≥"
	if c.atMost {
		op = "≤"
	}
	return fmt.Sprintf("%s %s", op, formatNum(c.limit))
}
