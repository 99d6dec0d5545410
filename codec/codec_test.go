package codec_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/agentloop/agentloop/codec"
)

// roundTrip encodes v with r, checks the header, decodes it and returns
// the result.
func roundTrip[T any](t *testing.T, r *codec.Registry, v T, name string, id codec.ContentID) T {
	t.Helper()
	p, err := codec.Marshal(r, v)
	if err != nil {
		t.Fatalf("Marshal(%v): %v", v, err)
	}
	h, body, err := codec.Inspect(p)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	want := codec.Header{Version: codec.Version, Content: id, TypeName: name}
	if h != want {
		t.Errorf("header %+v, want %+v", h, want)
	}
	if len(p) != 4+len(name)+len(body) || p[0] != codec.Magic {
		t.Errorf("payload % x: body of %d bytes after a %d-byte name", p, len(body), len(name))
	}
	got, err := codec.Unmarshal[T](r, p)
	if err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	return got
}

func TestRoundTrip(t *testing.T) {
	var r codec.Registry // the zero registry holds JSON and Protobuf
	must(t, codec.Register[Point](&r, "p", codec.JSON))
	must(t, codec.Register[*Greeting](&r, "g/v1", codec.JSON))
	must(t, codec.Register[*wrapperspb.StringValue](&r, "google.protobuf.StringValue", codec.Protobuf))
	must(t, codec.Register[*timestamppb.Timestamp](&r, "ts", codec.Protobuf))
	must(t, codec.Register[*structpb.Struct](&r, "struct", codec.Protobuf))

	if got := roundTrip(t, &r, Point{3, -4}, "p", codec.ContentJSON); got != (Point{3, -4}) {
		t.Errorf("Point: got %+v", got)
	}
	if got := roundTrip(t, &r, &Greeting{To: "ada"}, "g/v1", codec.ContentJSON); got.To != "ada" {
		t.Errorf("*Greeting: got %+v", got)
	}
	protos := []struct {
		name string
		v    proto.Message
		rt   func() proto.Message
	}{
		{"google.protobuf.StringValue", wrapperspb.String("héllo"), nil},
		{"ts", timestamppb.New(time.Unix(1700000000, 42)), nil},
		{"struct", mustStruct(t, map[string]any{"a": 1.5, "b": []any{"x", true}}), nil},
	}
	for _, c := range protos {
		var got proto.Message
		switch v := c.v.(type) {
		case *wrapperspb.StringValue:
			got = roundTrip(t, &r, v, c.name, codec.ContentProtobuf)
		case *timestamppb.Timestamp:
			got = roundTrip(t, &r, v, c.name, codec.ContentProtobuf)
		case *structpb.Struct:
			got = roundTrip(t, &r, v, c.name, codec.ContentProtobuf)
		}
		if !proto.Equal(got, c.v) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.v)
		}
	}
}

func mustStruct(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A decoded value does not alias the payload: changing the payload after
// Unmarshal leaves the value as it was.
func TestUnmarshalCopies(t *testing.T) {
	var r codec.Registry
	must(t, codec.Register[Greeting](&r, "g", codec.JSON))
	must(t, codec.Register[*wrapperspb.BytesValue](&r, "b", codec.Protobuf))

	p, err := codec.Marshal(&r, Greeting{To: "ada"})
	must(t, err)
	g, err := codec.Unmarshal[Greeting](&r, p)
	must(t, err)
	for i := range p {
		p[i] = 'z'
	}
	if g.To != "ada" {
		t.Errorf("Greeting changed with its payload: %q", g.To)
	}

	p, err = codec.Marshal(&r, wrapperspb.Bytes([]byte("abc")))
	must(t, err)
	b, err := codec.Unmarshal[*wrapperspb.BytesValue](&r, p)
	must(t, err)
	for i := range p {
		p[i] = 'z'
	}
	if string(b.GetValue()) != "abc" {
		t.Errorf("BytesValue changed with its payload: %q", b.GetValue())
	}
}

func TestMarshalUnregistered(t *testing.T) {
	var r codec.Registry
	_, err := codec.Marshal(&r, Point{})
	checkErr(t, "Marshal", err, codec.ErrUnregistered, "codec_test.Point")
	_, err = codec.Unmarshal[Point](&r, []byte{codec.Magic, 1, 1, 1, 'p'})
	checkErr(t, "Unmarshal", err, codec.ErrUnregistered, "codec_test.Point")
	_, err = codec.NameOf[Point](&r)
	checkErr(t, "NameOf", err, codec.ErrUnregistered, "codec_test.Point")
}

// failing is a codec whose Marshal and Unmarshal always fail.
type failing struct{}

func (failing) ContentType() string                       { return "application/x-failing" }
func (failing) Marshal(dst []byte, _ any) ([]byte, error) { return dst, errors.New("boom") }
func (failing) Unmarshal([]byte, any) error               { return errors.New("bang") }

func TestEncodeError(t *testing.T) {
	var r codec.Registry
	must(t, r.AddCodec(200, failing{}))
	must(t, codec.Register[Point](&r, "p", failing{}))
	_, err := codec.Marshal(&r, Point{})
	checkErr(t, "Marshal", err, codec.ErrEncode, "boom", "application/x-failing", `"p"`)
	var jr codec.Registry
	must(t, codec.Register[chan int](&jr, "ch", codec.JSON))
	_, err = codec.Marshal(&jr, make(chan int))
	checkErr(t, "Marshal(chan) with JSON", err, codec.ErrEncode, "chan int")
}

func TestRegisterErrors(t *testing.T) {
	var r codec.Registry
	must(t, codec.Register[Point](&r, "p", codec.JSON))
	long := string(bytes.Repeat([]byte("n"), codec.MaxTypeName+1))
	cases := []struct {
		what     string
		err      error
		target   error
		mentions []string
	}{
		{"empty name", codec.Register[Greeting](&r, "", codec.JSON), codec.ErrInvalidName, []string{`""`}},
		{"long name", codec.Register[Greeting](&r, long, codec.JSON), codec.ErrInvalidName, []string{"256 bytes"}},
		{"space in name", codec.Register[Greeting](&r, "a b", codec.JSON), codec.ErrInvalidName, []string{"0x20", `"a b"`}},
		{"non-ASCII name", codec.Register[Greeting](&r, "é", codec.JSON), codec.ErrInvalidName, []string{"0xc3"}},
		{"nil codec", codec.Register[Greeting](&r, "g", nil), codec.ErrInvalidCodec, []string{"Greeting"}},
		{"proto for a struct", codec.Register[Greeting](&r, "g", codec.Protobuf), codec.ErrInvalidCodec, []string{"application/x-protobuf", "Greeting", "proto.Message"}},
		{"codec not added", codec.Register[Greeting](&r, "g", failing{}), codec.ErrUnknownContentType, []string{"application/x-failing"}},
		{"type twice, other name", codec.Register[Point](&r, "q", codec.JSON), codec.ErrDuplicate, []string{"Point", `"p"`}},
		{"name twice", codec.Register[Greeting](&r, "p", codec.JSON), codec.ErrDuplicate, []string{`"p"`, "Point"}},
	}
	for _, c := range cases {
		checkErr(t, c.what, c.err, c.target, c.mentions...)
	}
	// None of the refused registrations took effect.
	if _, err := codec.NameOf[Greeting](&r); !errors.Is(err, codec.ErrUnregistered) {
		t.Errorf("Greeting registered after refusals: %v", err)
	}
	if n, _ := codec.NameOf[Point](&r); n != "p" {
		t.Errorf("Point's name is %q, want p", n)
	}
}

func TestRegisterSameBindingAgain(t *testing.T) {
	var r codec.Registry
	must(t, codec.Register[Point](&r, "p", codec.JSON))
	if err := codec.Register[Point](&r, "p", codec.JSON); err != nil {
		t.Errorf("same binding again: %v", err)
	}
	must(t, r.AddCodec(150, failing{}))
	checkErr(t, "same name, other codec", codec.Register[Point](&r, "p", failing{}), codec.ErrDuplicate, "application/json")
}

func TestMustRegisterPanics(t *testing.T) {
	defer func() {
		err, _ := recover().(error)
		if !errors.Is(err, codec.ErrInvalidName) {
			t.Errorf("recovered %v, want ErrInvalidName", err)
		}
	}()
	var r codec.Registry
	codec.MustRegister[Point](&r, "", codec.JSON)
}

// text is an application codec: the body is the value's %v text, and it
// decodes into a *string only.
type text struct{}

func (text) ContentType() string { return "text/plain" }
func (text) Marshal(dst []byte, v any) ([]byte, error) {
	return fmt.Appendf(dst, "%v", v), nil
}
func (text) Unmarshal(data []byte, v any) error {
	p, ok := v.(*string)
	if !ok {
		return fmt.Errorf("text decodes into *string, not %T", v)
	}
	*p = string(data)
	return nil
}

func TestAddCodec(t *testing.T) {
	var r codec.Registry
	must(t, r.AddCodec(130, text{}))
	must(t, codec.Register[string](&r, "s", text{}))
	if got := roundTrip(t, &r, "plain words", "s", 130); got != "plain words" {
		t.Errorf("got %q", got)
	}
	checkErr(t, "nil", r.AddCodec(131, nil), codec.ErrInvalidCodec, "131")
	checkErr(t, "reserved id", r.AddCodec(3, failing{}), codec.ErrInvalidCodec, "3", "reserved")
	checkErr(t, "JSON's id", r.AddCodec(codec.ContentJSON, failing{}), codec.ErrInvalidCodec, "1")
	checkErr(t, "id twice", r.AddCodec(130, failing{}), codec.ErrDuplicate, "130", "text/plain")
	checkErr(t, "name twice", r.AddCodec(140, text{}), codec.ErrDuplicate, "text/plain", "130")
	checkErr(t, "name of JSON", r.AddCodec(141, jsonAlike{}), codec.ErrDuplicate, "application/json")
	checkErr(t, "empty name", r.AddCodec(142, unnamed{}), codec.ErrInvalidCodec, "empty content type")
}

type jsonAlike struct{ text }

func (jsonAlike) ContentType() string { return "application/json" }

type unnamed struct{ text }

func (unnamed) ContentType() string { return "" }

// The content id in the header, not the codec the receiver registered the
// type with, chooses the codec: a receiver that moved a type to another
// codec still reads what was written before.
func TestContentIDChoosesCodec(t *testing.T) {
	var sender, receiver codec.Registry
	must(t, codec.Register[string](&sender, "label", codec.JSON))
	must(t, receiver.AddCodec(130, text{}))
	must(t, codec.Register[string](&receiver, "label", text{}))

	p, err := codec.Marshal(&sender, "old")
	must(t, err)
	got, err := codec.Unmarshal[string](&receiver, p)
	if err != nil || got != "old" {
		t.Errorf("JSON body read by a text receiver: %q, %v", got, err)
	}
	p, err = codec.Marshal(&receiver, "new")
	must(t, err)
	if !bytes.HasSuffix(p, []byte("new")) || p[2] != 130 {
		t.Errorf("receiver encodes with text: % x", p)
	}
	_, err = codec.Unmarshal[string](&sender, p)
	checkErr(t, "text body at a registry without text", err, codec.ErrUnknownContentType, "130", `"label"`)
}

func TestDecodeErrors(t *testing.T) {
	var r codec.Registry
	must(t, codec.Register[Point](&r, "p", codec.JSON))
	must(t, codec.Register[Greeting](&r, "g", codec.JSON))
	must(t, codec.Register[*wrapperspb.StringValue](&r, "s", codec.Protobuf))
	hdr := func(version, id, n byte, name string) []byte {
		return append([]byte{codec.Magic, version, id, n}, name...)
	}
	cases := []struct {
		what     string
		data     []byte
		decode   func([]byte) error
		target   error
		mentions []string
	}{
		{"nil", nil, point(&r), codec.ErrBadMagic, []string{"empty"}},
		{"JSON without header", []byte(`{"X":1}`), point(&r), codec.ErrBadMagic, []string{"0x7b", "0xc1"}},
		{"magic only", []byte{codec.Magic}, point(&r), codec.ErrTruncated, []string{"1 bytes"}},
		{"three bytes", []byte{codec.Magic, 1, 1}, point(&r), codec.ErrTruncated, []string{"3 bytes"}},
		{"version 0", hdr(0, 1, 1, "p"), point(&r), codec.ErrVersion, []string{"0"}},
		{"version 2", hdr(2, 1, 1, "p"), point(&r), codec.ErrVersion, []string{"2"}},
		{"content id 0", hdr(1, 0, 1, "p"), point(&r), codec.ErrUnknownContentType, []string{"id 0"}},
		{"content id unknown", hdr(1, 99, 1, "p"), point(&r), codec.ErrUnknownContentType, []string{"id 99", `"p"`}},
		{"name length 0", hdr(1, 1, 0, ""), point(&r), codec.ErrInvalidName, []string{"length 0"}},
		{"name truncated", hdr(1, 1, 200, "p"), point(&r), codec.ErrTruncated, []string{"200 bytes", "1 present"}},
		{"name with NUL", hdr(1, 1, 2, "p\x00"), point(&r), codec.ErrInvalidName, []string{"0x00", "at 1"}},
		{"name with DEL", hdr(1, 1, 1, "\x7f"), point(&r), codec.ErrInvalidName, []string{"0x7f"}},
		{"another type", append(hdr(1, 1, 1, "g"), `{"To":"x"}`...), point(&r), codec.ErrTypeMismatch, []string{`"g"`, `"p"`, "Point"}},
		{"unregistered name", hdr(1, 1, 3, "zzz"), point(&r), codec.ErrTypeMismatch, []string{`"zzz"`}},
		{"bad JSON", append(hdr(1, 1, 1, "p"), `{"X":`...), point(&r), codec.ErrDecode, []string{`"p"`, "application/json"}},
		{"empty JSON body", hdr(1, 1, 1, "p"), point(&r), codec.ErrDecode, []string{"application/json"}},
		{"bad protobuf", append(hdr(1, 2, 1, "s"), 0x0a, 0x05, 'a'), str(&r), codec.ErrDecode, []string{`"s"`, "application/x-protobuf"}},
		{"protobuf body for a struct", append(hdr(1, 2, 1, "p"), 0x08, 0x01), point(&r), codec.ErrDecode, []string{"proto.Message"}},
	}
	for _, c := range cases {
		checkErr(t, c.what, c.decode(c.data), c.target, c.mentions...)
		if _, _, err := codec.Inspect(c.data); err == nil && errors.Is(c.decode(c.data), codec.ErrBadMagic) {
			t.Errorf("%s: Inspect accepts what Unmarshal calls bad magic", c.what)
		}
	}
}

func point(r *codec.Registry) func([]byte) error {
	return func(p []byte) error { _, err := codec.Unmarshal[Point](r, p); return err }
}

func str(r *codec.Registry) func([]byte) error {
	return func(p []byte) error { _, err := codec.Unmarshal[*wrapperspb.StringValue](r, p); return err }
}

// Registrations while other goroutines encode and decode: readers take no
// lock, and every registration is seen once Register returns.
func TestRegistryConcurrent(t *testing.T) {
	var r codec.Registry
	must(t, codec.Register[Point](&r, "p", codec.JSON))
	regs := []func() error{
		func() error { return codec.Register[[1]int](&r, "a1", codec.JSON) },
		func() error { return codec.Register[[2]int](&r, "a2", codec.JSON) },
		func() error { return codec.Register[[3]int](&r, "a3", codec.JSON) },
		func() error { return codec.Register[[4]int](&r, "a4", codec.JSON) },
		func() error { return codec.Register[*wrapperspb.Int64Value](&r, "i", codec.Protobuf) },
		func() error { return r.AddCodec(200, text{}) },
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 64)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p, err := codec.Marshal(&r, Point{i, -i})
				if err == nil {
					var got Point
					got, err = codec.Unmarshal[Point](&r, p)
					if err == nil && got != (Point{i, -i}) {
						err = fmt.Errorf("got %+v for %d", got, i)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var rw sync.WaitGroup
	for _, reg := range regs {
		rw.Add(1)
		go func() {
			defer rw.Done()
			if err := reg(); err != nil {
				errs <- err
			}
		}()
	}
	rw.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, name := range []func() (string, error){
		func() (string, error) { return codec.NameOf[[1]int](&r) },
		func() (string, error) { return codec.NameOf[[4]int](&r) },
		func() (string, error) { return codec.NameOf[*wrapperspb.Int64Value](&r) },
	} {
		if _, err := name(); err != nil {
			t.Errorf("after concurrent Register: %v", err)
		}
	}
	if got := roundTrip(t, &r, [3]int{1, 2, 3}, "a3", codec.ContentJSON); !reflect.DeepEqual(got, [3]int{1, 2, 3}) {
		t.Errorf("got %v", got)
	}
}

// A nil *Registry is Default.
func TestNilRegistryIsDefault(t *testing.T) {
	p, err := codec.Marshal[Point](nil, Point{1, 2})
	must(t, err)
	got, err := codec.Unmarshal[Point](codec.Default, p)
	if err != nil || got != (Point{1, 2}) {
		t.Errorf("got %+v, %v", got, err)
	}
	if n, err := codec.NameOf[Point](nil); n != "test.Point" || err != nil {
		t.Errorf("NameOf(nil): %q, %v", n, err)
	}
}

// Inspect of a valid header allocates only the type name's string.
func TestInspectAllocs(t *testing.T) {
	p, err := codec.Marshal(codec.Default, Point{1, 2})
	must(t, err)
	if n := testing.AllocsPerRun(100, func() {
		if _, _, err := codec.Inspect(p); err != nil {
			t.Fatal(err)
		}
	}); n > 1 {
		t.Errorf("Inspect: %v allocations, want at most 1", n)
	}
}
