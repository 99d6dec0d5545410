package engine

import (
	"reflect"
	"testing"
	"unsafe"
)

// TestParcelRoundTrip: every op's envelope, as its constructors build it,
// comes out of the inbox as it went in.
func TestParcelRoundTrip(t *testing.T) {
	a, b := &agent{}, &agent{}
	ran := false
	fn := func() { ran = true }
	msg := Message{Payload: []byte("p"), Topic: "t", Sender: Ref{a: b, gen: 9}, x: unsafe.Pointer(&timerMark)}
	subs := []*agent{a, b}
	cases := []envelope{
		{a: a, gen: 7, op: opMsg, msg: msg},
		{a: a, gen: 1<<32 - 1, op: opInit},
		{a: a, gen: 3, op: opPaused},
		{a: a, gen: 3, op: opResumed},
		{a: a, gen: 3, op: opTerminate},
		{op: opPublish, msg: msg, subs: subs},
		{op: opPublish, msg: msg, subs: subs, gen: publishReserved},
		{op: opPublish, msg: msg, subs: subs[:0]},
		{op: opShutdown, gen: 1},
		{op: opQuit},
		{op: opReply, a: a, gen: 5, msg: Message{x: unsafe.Pointer(&timerMark)}},
	}
	for _, env := range cases {
		var p parcel
		p.pack(&env)
		got := p.unpack()
		if env.op == opPublish {
			if len(got.subs) != len(env.subs) || (len(env.subs) > 0 && &got.subs[0] != &env.subs[0]) {
				t.Errorf("op %d: subs %p len %d, want %p len %d", env.op, got.subs, len(got.subs), env.subs, len(env.subs))
			}
			got.subs, env.subs = nil, nil
		}
		if !reflect.DeepEqual(got, env) {
			t.Errorf("op %d: unpack(pack(env)) = %+v, want %+v", env.op, got, env)
		}
	}
	var p parcel
	p.pack(&envelope{op: opFunc, fn: fn})
	got := p.unpack()
	if got.op != opFunc || got.fn == nil || got.a != nil {
		t.Fatalf("opFunc: unpacked %+v", got)
	}
	got.fn()
	if !ran {
		t.Error("opFunc: the unpacked function is not the one packed")
	}
}

// TestParcelSize: the inbox slot stays small (see parcel).
func TestParcelSize(t *testing.T) {
	if s := unsafe.Sizeof(parcel{}); s != 80 {
		t.Errorf("parcel is %d bytes, want 80", s)
	}
}
