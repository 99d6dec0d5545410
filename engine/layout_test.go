package engine

import (
	"testing"
	"unsafe"
)

// TestAgentLayout pins the cache-line layout documented on agent.
func TestAgentLayout(t *testing.T) {
	var a agent
	if s := unsafe.Sizeof(a); s != 192 {
		t.Fatalf("agent is %d bytes, want 192 (three cache lines)", s)
	}
	lines := []struct {
		name string
		off  uintptr
		line uintptr
	}{
		{"lc", unsafe.Offsetof(a.lc), 0},
		{"gen", unsafe.Offsetof(a.gen), 0},
		{"stopReq", unsafe.Offsetof(a.stopReq), 0},
		{"rs", unsafe.Offsetof(a.rs), 0},
		{"typ", unsafe.Offsetof(a.typ), 0},
		{"loop", unsafe.Offsetof(a.loop), 0},
		{"keyp", unsafe.Offsetof(a.keyp), 1},
		{"scheduled", unsafe.Offsetof(a.scheduled), 1},
		{"mb", unsafe.Offsetof(a.mb), 2},
		{"qbytes", unsafe.Offsetof(a.qbytes), 2},
	}
	for _, f := range lines {
		if f.off/64 != f.line {
			t.Errorf("field %s at offset %d is on line %d, want %d", f.name, f.off, f.off/64, f.line)
		}
	}
}

// TestReservationLayout pins the lines of a mailbox's place counters: what
// senders write per send apart from what the loop writes per run.
func TestReservationLayout(t *testing.T) {
	var r reservation
	if s := unsafe.Sizeof(r); s != 2*cacheLine {
		t.Fatalf("reservation is %d bytes, want %d (two cache lines)", s, 2*cacheLine)
	}
	if unsafe.Offsetof(r.taken)/cacheLine != 0 || unsafe.Offsetof(r.seen)/cacheLine != 0 {
		t.Errorf("taken and seen not on line 0")
	}
	if unsafe.Offsetof(r.freed)/cacheLine != 1 {
		t.Errorf("freed at offset %d, not on line 1", unsafe.Offsetof(r.freed))
	}
	// A 128-byte object starts on a 128-byte boundary (its size class), so
	// the lines are real cache lines.
	for i := 0; i < 8; i++ {
		reservationSink = new(reservation) // on the heap, as an agent's are
		if p := uintptr(unsafe.Pointer(reservationSink)); p%cacheLine != 0 {
			t.Fatalf("reservation at %#x, not on a cache line boundary", p)
		}
	}
}

var reservationSink *reservation
