package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// FrameVersion is the version of the frame layout this package writes and
// reads; a frame of another version is refused (version 1, before the
// target incarnation, included).
const FrameVersion = 2

// Kind says what a frame carries.
type Kind uint8

// The kinds of frame.
const (
	KindSend      Kind = 1 + iota // a message to Target
	KindRequest                   // a request to Target; answer to Reply
	KindReply                     // the answer to a request: Payload, or Code and the error text
	KindNack                      // the owner refused a send (Code, error text); to the sender's node
	KindPublish                   // a publish: the topic in Target.Key
	KindHeartbeat                 // membership: a node's liveness and figures (Payload: Figures)
	KindLeave                     // membership: a node leaves gracefully
	KindHandoff                   // a leaving node's agents, as an engine snapshot, for their new owner
	KindAck                       // the sends of a node up to Seq were taken by their owner's engine
	kindEnd
)

func (k Kind) String() string {
	names := [...]string{"", "send", "request", "reply", "nack", "publish", "heartbeat", "leave", "handoff", "ack"}
	if k > 0 && k < kindEnd {
		return names[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Limits of a frame's fields: the decoder refuses anything longer, so that
// a corrupt length never makes it allocate or read past the frame.
const (
	MaxNameLen    = 256     // a node name, an ID's type or key (engine.MaxIDLen), a reply subject
	MaxPayloadLen = 8 << 20 // 8 MiB
	frameHeader   = 28      // version .. target incarnation
	frameMin      = frameHeader + 6*2 + 4 + 4
)

// ErrFrame is the error of a frame that cannot be decoded: too short, too
// long a field, a bad checksum, an unknown version or kind.
var ErrFrame = errors.New("cluster: bad frame")

// Frame is one message between nodes. Its wire layout, all integers big
// endian:
//
//	offset  size  field
//	0       1     version (FrameVersion)
//	1       1     kind (Kind)
//	2       1     priority (int8, the sender's; informative)
//	3       1     code (an error code in a reply or nack, else 0)
//	4       8     timestamp: the sender's clock, unix nanoseconds
//	12      8     seq: see below
//	20      4     incarnation: the sending node's, chosen at New, so that
//	              a node restarted under the same name is told apart
//	24      4     target incarnation: the incarnation of the destination
//	              node the sender addressed, 0 for any (see below)
//	28      2+n   node: the sending node's name
//	        2+n   sender type   } the sending agent's ID,
//	        2+n   sender key    } empty from outside an engine
//	        2+n   target type   } the agent addressed; a publish has an empty
//	        2+n   target key    } type and its topic as the key
//	        2+n   reply subject (a request's; else empty)
//	        4+n   payload
//	end-4   4     CRC-32C (Castagnoli) of every byte before it
//
// Each 2+n field is a length and that many bytes (at most MaxNameLen);
// the payload's length is at most MaxPayloadLen. A frame has no other
// bytes.
//
// A node refuses a frame whose target incarnation is neither 0 nor its
// own: it was addressed to an earlier (or later) node of its name. Sends,
// requests, replies and nacks name their destination's incarnation;
// durable sends (Config.JetStream), which wait in the stream for whichever
// incarnation of their owner comes next, and the other kinds, which go to
// every node or carry what they concern in their payload, have 0.
//
// Seq and the payload by kind:
//
//   - send: Seq numbers the sends from one node (and incarnation) to one
//     destination node, from 1, without gaps; the owner acknowledges them
//     cumulatively, and a gap tells it that frames were dropped on the way.
//     A send with an empty target type is a probe, which only takes its
//     Seq (so that the owner sees the gap before it) and is not delivered.
//   - request, reply: Seq is the requester's number of the request, which
//     the reply repeats.
//   - ack: Seq is the last send processed; the payload is the 4-byte
//     incarnation of the node acknowledged and the 8-byte first Seq this
//     incarnation of the owner saw from it (sends before it never reached
//     this incarnation).
//   - nack: Seq is the first refused send; the payload is the 8-byte last
//     one (a range, for frames lost on the way) and the error text.
//   - leave: Code 0 announces the leave, Code 1 (to the leaver) says the
//     member has stopped routing to it.
//   - handoff: Seq numbers the chunks from 1, Code 1 marks the last; the
//     chunks put together are an engine snapshot.
//   - heartbeat: the payload is the node's Figures now (16 bytes) and
//     those it had when it joined (the same 16 bytes' layout), which
//     weighted placement uses.
type Frame struct {
	Kind      Kind
	Priority  int8
	Code      uint8
	Timestamp int64
	Seq       uint64
	Inc       uint32 // the sending node's incarnation
	ToInc     uint32 // the destination node's incarnation, 0 for any
	Node      string
	From      ID
	To        ID
	Reply     string
	Payload   []byte
}

// ID is an agent's ID on the wire (engine.AgentID's fields).
type ID struct{ Type, Key string }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendFrame appends f's encoding to dst. It refuses fields past the
// limits with ErrFrame.
func AppendFrame(dst []byte, f *Frame) ([]byte, error) {
	if f.Kind == 0 || f.Kind >= kindEnd {
		return dst, fmt.Errorf("%w: kind %d", ErrFrame, f.Kind)
	}
	if len(f.Payload) > MaxPayloadLen {
		return dst, fmt.Errorf("%w: payload of %d bytes, more than %d", ErrFrame, len(f.Payload), MaxPayloadLen)
	}
	start := len(dst)
	dst = append(dst, FrameVersion, byte(f.Kind), byte(f.Priority), f.Code)
	dst = binary.BigEndian.AppendUint64(dst, uint64(f.Timestamp))
	dst = binary.BigEndian.AppendUint64(dst, f.Seq)
	dst = binary.BigEndian.AppendUint32(dst, f.Inc)
	dst = binary.BigEndian.AppendUint32(dst, f.ToInc)
	for _, s := range [...]string{f.Node, f.From.Type, f.From.Key, f.To.Type, f.To.Key, f.Reply} {
		if len(s) > MaxNameLen {
			return dst[:start], fmt.Errorf("%w: field of %d bytes, more than %d", ErrFrame, len(s), MaxNameLen)
		}
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
		dst = append(dst, s...)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(f.Payload)))
	dst = append(dst, f.Payload...)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli)), nil
}

// DecodeFrame decodes b, which must hold exactly one frame. The payload
// aliases b; the strings are copies. It never panics, and allocates at
// most the size of b: a frame that is short, long, of another version or
// kind, with a field past its limit or a checksum that does not match is
// refused with an error wrapping ErrFrame.
func DecodeFrame(b []byte) (Frame, error) {
	var f Frame
	if len(b) < 1+4 {
		return f, fmt.Errorf("%w: %d bytes, fewer than %d", ErrFrame, len(b), frameMin)
	}
	if len(b) > frameMin+6*MaxNameLen+MaxPayloadLen {
		return f, fmt.Errorf("%w: %d bytes, more than a frame holds", ErrFrame, len(b))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return f, fmt.Errorf("%w: checksum %08x, want %08x", ErrFrame, got, sum)
	}
	// The version before the length: a frame of another layout (an older
	// node's) is told apart from a truncated one.
	if body[0] != FrameVersion {
		return f, fmt.Errorf("%w: unsupported version %d, want %d", ErrFrame, body[0], FrameVersion)
	}
	if len(b) < frameMin {
		return f, fmt.Errorf("%w: %d bytes, fewer than %d", ErrFrame, len(b), frameMin)
	}
	f.Kind = Kind(body[1])
	if f.Kind == 0 || f.Kind >= kindEnd {
		return f, fmt.Errorf("%w: kind %d", ErrFrame, body[1])
	}
	f.Priority, f.Code = int8(body[2]), body[3]
	f.Timestamp = int64(binary.BigEndian.Uint64(body[4:]))
	f.Seq = binary.BigEndian.Uint64(body[12:])
	f.Inc = binary.BigEndian.Uint32(body[20:])
	f.ToInc = binary.BigEndian.Uint32(body[24:])
	rest := body[frameHeader:]
	var fields [6]string
	for i := range fields {
		if len(rest) < 2 {
			return f, fmt.Errorf("%w: truncated at field %d", ErrFrame, i)
		}
		n := int(binary.BigEndian.Uint16(rest))
		if n > MaxNameLen || n > len(rest)-2 {
			return f, fmt.Errorf("%w: field %d of %d bytes", ErrFrame, i, n)
		}
		fields[i] = string(rest[2 : 2+n])
		rest = rest[2+n:]
	}
	if len(rest) < 4 {
		return f, fmt.Errorf("%w: truncated before the payload", ErrFrame)
	}
	n := uint64(binary.BigEndian.Uint32(rest))
	if n > MaxPayloadLen || n != uint64(len(rest)-4) {
		return f, fmt.Errorf("%w: payload of %d bytes in %d", ErrFrame, n, len(rest)-4)
	}
	if n > 0 {
		f.Payload = rest[4:]
	}
	f.Node, f.From.Type, f.From.Key, f.To.Type, f.To.Key, f.Reply = fields[0], fields[1], fields[2], fields[3], fields[4], fields[5]
	return f, nil
}

// Figures are what a node publishes with each heartbeat: its headroom for
// weighted placement, each from 0 (none) to 1 (all idle), and its count of
// live agents.
type Figures struct {
	CPUIdle, MemFree, NetFree float64
	Agents                    uint32
}

const figuresLen = 3*4 + 4

func appendFigures(dst []byte, f Figures) []byte {
	for _, v := range [...]float64{f.CPUIdle, f.MemFree, f.NetFree} {
		dst = binary.BigEndian.AppendUint32(dst, math.Float32bits(float32(clamp01(v))))
	}
	return binary.BigEndian.AppendUint32(dst, f.Agents)
}

// appendHeartbeat appends a heartbeat's payload: the figures now and at
// join.
func appendHeartbeat(dst []byte, now, joined Figures) []byte {
	return appendFigures(appendFigures(dst, now), joined)
}

// decodeHeartbeat decodes what appendHeartbeat wrote; it refuses any
// other length with ErrFrame.
func decodeHeartbeat(b []byte) (now, joined Figures, err error) {
	if len(b) != 2*figuresLen {
		return now, joined, fmt.Errorf("%w: heartbeat of %d bytes, want %d", ErrFrame, len(b), 2*figuresLen)
	}
	if now, err = decodeFigures(b[:figuresLen]); err == nil {
		joined, err = decodeFigures(b[figuresLen:])
	}
	return now, joined, err
}

func decodeFigures(b []byte) (Figures, error) {
	if len(b) != figuresLen {
		return Figures{}, fmt.Errorf("%w: figures of %d bytes, want %d", ErrFrame, len(b), figuresLen)
	}
	var v [3]float64
	for i := range v {
		v[i] = clamp01(float64(math.Float32frombits(binary.BigEndian.Uint32(b[4*i:]))))
	}
	return Figures{CPUIdle: v[0], MemFree: v[1], NetFree: v[2], Agents: binary.BigEndian.Uint32(b[12:])}, nil
}

func clampFigures(f Figures) Figures {
	return Figures{CPUIdle: clamp01(f.CPUIdle), MemFree: clamp01(f.MemFree), NetFree: clamp01(f.NetFree), Agents: f.Agents}
}

// clamp01 bounds v to [0, 1]; NaN is 0.
func clamp01(v float64) float64 {
	switch {
	case v > 1:
		return 1
	case v >= 0:
		return v
	}
	return 0
}
