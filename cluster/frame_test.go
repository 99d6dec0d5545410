package cluster_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"strings"
	"testing"

	"github.com/agentloop/agentloop/cluster"
)

func sampleFrame() cluster.Frame {
	return cluster.Frame{
		Kind: cluster.KindRequest, Priority: -3, Code: 0, Timestamp: 1_700_000_000_123_456_789, Seq: 42,
		Inc: 0xdeadbeef, ToInc: 0x01020304, Node: "node-1", From: cluster.ID{Type: "device", Key: "dev-1"}, To: cluster.ID{Type: "alert", Key: "a/b"},
		Reply: "_INBOX.x.y", Payload: []byte("hello"),
	}
}

func TestFrameRoundTrip(t *testing.T) {
	for _, f := range []cluster.Frame{sampleFrame(), {Kind: cluster.KindHeartbeat}, {Kind: cluster.KindPublish, To: cluster.ID{Key: "t.x"}, Payload: []byte{0}}} {
		b, err := cluster.AppendFrame(nil, &f)
		if err != nil {
			t.Fatalf("AppendFrame(%+v): %v", f, err)
		}
		got, err := cluster.DecodeFrame(b)
		if err != nil {
			t.Fatalf("DecodeFrame: %v", err)
		}
		if !reflect.DeepEqual(got, f) {
			t.Fatalf("round trip: got %+v, want %+v", got, f)
		}
	}
}

// Every single-byte corruption and every truncation is refused.
func TestFrameCorruptionRefused(t *testing.T) {
	f := sampleFrame()
	b, _ := cluster.AppendFrame(nil, &f)
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x5a
		if _, err := cluster.DecodeFrame(c); !errors.Is(err, cluster.ErrFrame) {
			t.Fatalf("byte %d corrupted: err = %v, want ErrFrame", i, err)
		}
	}
	for n := range len(b) {
		if _, err := cluster.DecodeFrame(b[:n]); !errors.Is(err, cluster.ErrFrame) {
			t.Fatalf("truncated to %d: err = %v, want ErrFrame", n, err)
		}
	}
	if _, err := cluster.DecodeFrame(append(bytes.Clone(b), 0)); !errors.Is(err, cluster.ErrFrame) {
		t.Fatalf("trailing byte: err = %v", err)
	}
}

// version1 is f as a node of frame version 1 encodes it: without the
// target incarnation.
func version1(t testing.TB, f cluster.Frame) []byte {
	t.Helper()
	b, err := cluster.AppendFrame(nil, &f)
	if err != nil {
		t.Fatal(err)
	}
	old := append([]byte{1}, b[1:24]...)
	old = append(old, b[28:len(b)-4]...)
	return binary.BigEndian.AppendUint32(old, crc32.Checksum(old, crc32.MakeTable(crc32.Castagnoli)))
}

// TestFrameVersion1Refused: a frame of the layout before the target
// incarnation, intact, is refused with ErrFrame naming its version.
func TestFrameVersion1Refused(t *testing.T) {
	if cluster.FrameVersion != 2 {
		t.Fatalf("FrameVersion = %d, want 2", cluster.FrameVersion)
	}
	for _, f := range []cluster.Frame{sampleFrame(), {Kind: cluster.KindHeartbeat}} {
		_, err := cluster.DecodeFrame(version1(t, f))
		if !errors.Is(err, cluster.ErrFrame) || !strings.Contains(err.Error(), "version 1") {
			t.Fatalf("version 1 %s frame: err = %v, want ErrFrame naming version 1", f.Kind, err)
		}
	}
}

// The target incarnation is at offset 24, after the sender's.
func TestFrameTargetIncarnationOffset(t *testing.T) {
	f := sampleFrame()
	b, _ := cluster.AppendFrame(nil, &f)
	if got := binary.BigEndian.Uint32(b[20:]); got != f.Inc {
		t.Fatalf("incarnation %08x at 20, want %08x", got, f.Inc)
	}
	if got := binary.BigEndian.Uint32(b[24:]); got != f.ToInc {
		t.Fatalf("target incarnation %08x at 24, want %08x", got, f.ToInc)
	}
	if b[0] != cluster.FrameVersion {
		t.Fatalf("version byte %d, want %d", b[0], cluster.FrameVersion)
	}
}

func TestAppendFrameLimits(t *testing.T) {
	for name, f := range map[string]cluster.Frame{
		"kind 0":       {},
		"long node":    {Kind: cluster.KindSend, Node: strings.Repeat("n", cluster.MaxNameLen+1)},
		"long payload": {Kind: cluster.KindSend, Payload: make([]byte, cluster.MaxPayloadLen+1)},
	} {
		if _, err := cluster.AppendFrame(nil, &f); !errors.Is(err, cluster.ErrFrame) {
			t.Errorf("%s: err = %v, want ErrFrame", name, err)
		}
	}
}

func FuzzDecodeFrame(f *testing.F) {
	s := sampleFrame()
	good, _ := cluster.AppendFrame(nil, &s)
	f.Add(good)
	hb := cluster.Frame{Kind: cluster.KindHeartbeat, Node: "n", Payload: make([]byte, 16)}
	b, _ := cluster.AppendFrame(nil, &hb)
	f.Add(b)
	f.Add([]byte{})
	f.Add(good[:len(good)-1])
	f.Add(version1(f, s))
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := cluster.DecodeFrame(data)
		if err != nil {
			if !errors.Is(err, cluster.ErrFrame) {
				t.Fatalf("error %v does not wrap ErrFrame", err)
			}
			return
		}
		again, err := cluster.AppendFrame(nil, &fr)
		if err != nil {
			t.Fatalf("a decoded frame does not encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("decode/encode changed the frame:\n%x\n%x", data, again)
		}
	})
}
