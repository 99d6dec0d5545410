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
		{"occ", unsafe.Offsetof(a.occ), 0},
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
