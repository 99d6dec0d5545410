package gateway

import (
	"encoding/binary"
	"math"
	"strconv"
)

// The work of each stage, shared by the engine agents and the goroutine
// baseline so that both do exactly the same thing per message.
//
// Every payload is PayloadSize bytes, little endian, and starts with the
// arrival stamp of the telemetry message it derives from: nanoseconds
// since the run's origin, taken by the producer when it hands the message
// over. The inference stage measures end-to-end latency from it.
//
//	telemetry  stamp int64 | device uint32 | sensor uint16 | pad | value float64
//	feature    stamp | device uint32 | count uint32 | mean | min | max | spread | last | trend
//	aggregate  stamp | device uint32 | shard uint32 | z | mean | shard mean | shard sd | trend | spread
const PayloadSize = 64

const (
	offStamp  = 0
	offDevice = 8
	offSensor = 12 // telemetry
	offValue  = 16 // telemetry
	offCount  = 12 // feature vector
	offShard  = 12 // aggregate
	offVec    = 16 // first float64 of feature vectors and aggregates
)

// alertLevel is the raw reading above which a device raises a threshold
// alert (once, until a reading falls back below it).
const alertLevel = 100.0

func putF(p []byte, i int, v float64) {
	binary.LittleEndian.PutUint64(p[offVec+8*i:], math.Float64bits(v))
}

func getF(p []byte, i int) float64 {
	return math.Float64frombits(binary.LittleEndian.Uint64(p[offVec+8*i:]))
}

// Stamp returns the arrival stamp of a payload of the mix.
func Stamp(p []byte) int64 { return int64(binary.LittleEndian.Uint64(p[offStamp:])) }

// deviceOf returns the device index a payload of the mix carries.
func deviceOf(p []byte) uint32 { return binary.LittleEndian.Uint32(p[offDevice:]) }

// putTelemetry writes a telemetry payload.
func putTelemetry(p []byte, stamp int64, device uint32, sensor uint16, v float64) {
	binary.LittleEndian.PutUint64(p[offStamp:], uint64(stamp))
	binary.LittleEndian.PutUint32(p[offDevice:], device)
	binary.LittleEndian.PutUint16(p[offSensor:], sensor)
	binary.LittleEndian.PutUint64(p[offValue:], math.Float64bits(v))
}

// deviceState is what a device keeps: a smoothed reading per sensor and
// the envelope of recent readings.
type deviceState struct {
	index    uint32
	n        uint64 // messages observed
	tick     int    // messages since the last feature vector
	bad      uint64
	high     bool
	ewma     [MaxSensors]float64
	min, max float64
	last     float64
	prevMean float64
}

// newDeviceState returns the state of device index. Devices start at
// different points of their feature cycle (index mod every), as real ones
// would, so that feature vectors flow from the first messages on rather
// than all at once after every-th one.
func newDeviceState(index uint32, every int) deviceState {
	return deviceState{index: index, tick: int(index % uint32(every))}
}

// observe applies one telemetry payload. It reports whether a feature
// vector is due (every every-th message) and whether the reading crossed
// the alert level.
func (d *deviceState) observe(p []byte, every int) (feature, alert bool) {
	if len(p) < PayloadSize {
		d.bad++
		return false, false
	}
	sensor := binary.LittleEndian.Uint16(p[offSensor:]) % MaxSensors
	v := math.Float64frombits(binary.LittleEndian.Uint64(p[offValue:]))
	d.n++
	s := &d.ewma[sensor]
	if *s == 0 {
		*s = v
	}
	*s += 0.1 * (v - *s)
	if d.n == 1 || v < d.min {
		d.min = v
	}
	if d.n == 1 || v > d.max {
		d.max = v
	}
	d.last = v
	if high := v > alertLevel; high != d.high {
		d.high = high
		alert = high
	}
	if d.tick++; d.tick >= every {
		d.tick = 0
		feature = true
	}
	return feature, alert
}

// writeFeature writes the device's feature vector into p, carrying the
// stamp of the message that made it due, and starts a new window.
func (d *deviceState) writeFeature(p []byte, stamp int64, sensors int) {
	var sum, sq float64
	for _, v := range d.ewma[:sensors] {
		sum += v
		sq += v * v
	}
	mean := sum / float64(sensors)
	spread := math.Sqrt(math.Max(sq/float64(sensors)-mean*mean, 0))
	binary.LittleEndian.PutUint64(p[offStamp:], uint64(stamp))
	binary.LittleEndian.PutUint32(p[offDevice:], d.index)
	binary.LittleEndian.PutUint32(p[offCount:], uint32(d.n))
	putF(p, 0, mean)
	putF(p, 1, d.min)
	putF(p, 2, d.max)
	putF(p, 3, spread)
	putF(p, 4, d.last)
	putF(p, 5, mean-d.prevMean)
	d.prevMean = mean
	d.min, d.max = d.last, d.last
}

// featureState aggregates the feature vectors of one shard of devices: a
// running mean and variance of the device means (Welford) and a smoothed
// mean per device.
type featureState struct {
	shard       uint32
	n           float64
	mean, m2    float64
	devs        []float64 // smoothed mean per device of the shard, by index/shards
	shards      uint32
	unknownDevs uint64
}

func newFeatureState(shard, shards, devices int) featureState {
	return featureState{shard: uint32(shard), shards: uint32(shards), devs: make([]float64, devices/shards+1)}
}

// aggregate folds one feature vector in and writes the aggregate for its
// device into out.
func (f *featureState) aggregate(vec, out []byte) {
	dev := binary.LittleEndian.Uint32(vec[offDevice:])
	mean := getF(vec, 0)
	f.n++
	delta := mean - f.mean
	f.mean += delta / f.n
	f.m2 += delta * (mean - f.mean)
	sd := 0.0
	if f.n > 1 {
		sd = math.Sqrt(f.m2 / (f.n - 1))
	}
	smoothed := mean
	if i := dev / f.shards; int(i) < len(f.devs) {
		s := &f.devs[i]
		if *s == 0 {
			*s = mean
		}
		*s += 0.2 * (mean - *s)
		smoothed = *s
	} else {
		f.unknownDevs++
	}
	z := 0.0
	if sd > 0 {
		z = (smoothed - f.mean) / sd
	}
	copy(out[:offCount], vec[:offCount]) // stamp and device
	binary.LittleEndian.PutUint32(out[offShard:], f.shard)
	putF(out, 0, z)
	putF(out, 1, smoothed)
	putF(out, 2, f.mean)
	putF(out, 3, sd)
	putF(out, 4, getF(vec, 5)) // trend
	putF(out, 5, getF(vec, 3)) // spread
}

// model is the inference stage's network: 6 inputs, 16 hidden units, one
// output, fixed weights. It stands for a small anomaly model: a few hundred
// floating-point operations per aggregate.
type model struct {
	w1 [16][6]float64
	b1 [16]float64
	w2 [16]float64
	b2 float64
}

func newModel() *model {
	m := &model{b2: -6}
	x := uint64(0x9e3779b97f4a7c15)
	rnd := func() float64 { // xorshift, fixed seed: every run has the same model
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return float64(x>>11)/float64(1<<53)*2 - 1
	}
	for i := range m.w1 {
		for j := range m.w1[i] {
			m.w1[i][j] = rnd() * 0.5
		}
		m.b1[i] = rnd() * 0.1
		m.w2[i] = rnd()
	}
	m.w1[0][0] = 2 // the z-score dominates the first unit
	m.w2[0] = 4
	return m
}

// anomalyScore is the model's output in (0, 1).
func (m *model) anomalyScore(agg []byte) float64 {
	var in [6]float64
	in[0] = getF(agg, 0)
	in[1] = getF(agg, 1) / 100
	in[2] = getF(agg, 2) / 100
	in[3] = getF(agg, 3) / 100
	in[4] = getF(agg, 4) / 10
	in[5] = getF(agg, 5) / 10
	out := m.b2
	for i := range m.w1 {
		h := m.b1[i]
		for j, v := range in {
			h += m.w1[i][j] * v
		}
		if h > 0 { // ReLU
			out += m.w2[i] * h
		}
	}
	return 1 / (1 + math.Exp(-out))
}

// anomalyLevel is the score above which inference raises an alert.
const anomalyLevel = 0.9

// deviceKey is the key of device i ("dev-42").
func deviceKey(i int) string { return "dev-" + strconv.Itoa(i) }

// deviceIndex parses a device key; ok is false for keys of another shape.
func deviceIndex(key string) (uint32, bool) {
	if len(key) < 5 || key[:4] != "dev-" {
		return 0, false
	}
	n, err := strconv.ParseUint(key[4:], 10, 32)
	return uint32(n), err == nil
}

// shardOf maps a token to one of n shards: the number the token ends with
// modulo n ("dev-42" → 42 mod n, "7" → 7 mod n), or an FNV-1a hash of the
// token modulo n when it ends with no digit. Deterministic, allocation-free.
func shardOf(token string, n int) int {
	end, num := len(token), uint64(0)
	start := end
	for start > 0 && token[start-1] >= '0' && token[start-1] <= '9' && end-start < 18 {
		start--
	}
	if start < end {
		for _, c := range []byte(token[start:end]) {
			num = num*10 + uint64(c-'0')
		}
		return int(num % uint64(n))
	}
	h := uint32(2166136261)
	for i := 0; i < len(token); i++ {
		h ^= uint32(token[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// tokenAt returns the i-th dot-separated token of topic, a substring.
func tokenAt(topic string, i int) (string, bool) {
	start := 0
	for k := 0; k < i; k++ {
		j := indexDot(topic, start)
		if j < 0 {
			return "", false
		}
		start = j + 1
	}
	end := indexDot(topic, start)
	if end < 0 {
		end = len(topic)
	}
	return topic[start:end], start < end
}

func indexDot(s string, from int) int {
	for i := from; i < len(s); i++ {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}

// slab carves PayloadSize-byte payloads out of large blocks. A payload is
// written once, by its sender, before it is sent, and never again: the
// engine does not copy payloads and receivers may still be reading an old
// one, so nothing is ever reused. A block is dropped once carved out and
// the collector frees it when the last payload in it is unreferenced, so a
// run allocates once per slabPayloads messages rather than once per
// message. A slab belongs to one goroutine (a producer, or a loop).
type slab struct {
	block []byte
	// per is the payloads per block; 0 means slabPayloads. Goroutines that
	// send little and are many (the baseline's devices) take small blocks.
	per int
	_   [64 - 32]byte // one per cache line: slabs of loops sit side by side
}

const slabPayloads = 1024

func (s *slab) next() []byte {
	if len(s.block) < PayloadSize {
		per := s.per
		if per <= 0 {
			per = slabPayloads
		}
		s.block = make([]byte, PayloadSize*per)
	}
	p := s.block[:PayloadSize:PayloadSize] // capped: an append cannot reach the next payload
	s.block = s.block[PayloadSize:]
	return p
}
