package codec

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
)

// Registry binds Go types to type names and codecs, and content ids to
// codecs. A sender's registry chooses the name and codec a value travels
// with; a receiver's registry finds the Go type of a name and the codec of
// a content id. Two processes that exchange or persist messages register
// the same names.
//
// There is no implicit fallback: a type that was never registered is
// refused (ErrUnregistered) rather than encoded under a name derived from
// its Go type, because such a name changes when the code is refactored and
// a stored or in-flight message would then no longer decode. To use JSON
// for a type, register it with JSON.
//
// The zero Registry is ready to use and holds the codecs JSON and
// Protobuf, under ContentJSON and ContentProtobuf. Concurrency-safe: reads
// (every encode and decode) take no lock; registrations are serialised and
// become visible to later reads at once.
type Registry struct {
	mu    sync.Mutex               // serialises writers of state
	state atomic.Pointer[regState] // copy on write: readers never lock
}

// Default is the registry of Send, SendRef, Decode, Request, Reply,
// Answer, Handle and a Router made with a nil registry.
var Default = &Registry{}

// regState is one immutable version of a registry's contents.
type regState struct {
	byType map[reflect.Type]*binding
	byName map[string]*binding
	codecs [256]Codec
	byCT   map[string]ContentID // content type name -> id
}

// binding is one registered Go type.
type binding struct {
	typ   reflect.Type
	name  string
	id    ContentID
	codec Codec
	// elem is set when typ is a pointer type: a decode allocates a fresh
	// *elem and hands the codec that pointer (a protobuf message).
	elem reflect.Type
}

var builtinState = newState()

func newState() *regState {
	s := &regState{
		byType: map[reflect.Type]*binding{},
		byName: map[string]*binding{},
		byCT:   map[string]ContentID{},
	}
	s.codecs[ContentJSON] = JSON
	s.codecs[ContentProtobuf] = Protobuf
	s.byCT[JSON.ContentType()] = ContentJSON
	s.byCT[Protobuf.ContentType()] = ContentProtobuf
	return s
}

// load returns r's current contents; nil r is Default.
func (r *Registry) load() *regState {
	if r == nil {
		r = Default
	}
	if s := r.state.Load(); s != nil {
		return s
	}
	return builtinState
}

// update applies f to a copy of r's contents and publishes the copy if f
// succeeds.
func (r *Registry) update(f func(s *regState) error) error {
	if r == nil {
		r = Default
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.load()
	s := &regState{
		byType: make(map[reflect.Type]*binding, len(old.byType)+1),
		byName: make(map[string]*binding, len(old.byName)+1),
		byCT:   make(map[string]ContentID, len(old.byCT)+1),
		codecs: old.codecs,
	}
	for k, v := range old.byType {
		s.byType[k] = v
	}
	for k, v := range old.byName {
		s.byName[k] = v
	}
	for k, v := range old.byCT {
		s.byCT[k] = v
	}
	if err := f(s); err != nil {
		return err
	}
	r.state.Store(s)
	return nil
}

// AddCodec makes c the codec of content id, so that the registry can
// register types with c and decode bodies tagged id. id must be in the
// application range (FirstAppContent..255) and c's content type name must
// be new to the registry. Concurrency-safe.
func (r *Registry) AddCodec(id ContentID, c Codec) error {
	if c == nil {
		return fmt.Errorf("%w: nil codec for content id %d", ErrInvalidCodec, id)
	}
	ct := c.ContentType()
	if ct == "" {
		return fmt.Errorf("%w: %T has an empty content type", ErrInvalidCodec, c)
	}
	if id < FirstAppContent {
		return fmt.Errorf("%w: content id %d for %q is reserved (application ids are %d..255)", ErrInvalidCodec, id, ct, FirstAppContent)
	}
	return r.update(func(s *regState) error {
		if s.codecs[id] != nil {
			return fmt.Errorf("%w: content id %d (%q)", ErrDuplicate, id, s.codecs[id].ContentType())
		}
		if old, ok := s.byCT[ct]; ok {
			return fmt.Errorf("%w: content type %q (id %d)", ErrDuplicate, ct, old)
		}
		s.codecs[id] = c
		s.byCT[ct] = id
		return nil
	})
}

// Register binds the Go type T to name and to codec c in r (nil r is
// Default): values of T then travel as name, encoded by c. c is one of the
// registry's codecs, found by its content type name (JSON and Protobuf, or
// one added with AddCodec). Errors: ErrInvalidName for a bad name,
// ErrInvalidCodec for a nil codec or one that cannot handle T (Protobuf
// for a type that is not a proto.Message), ErrUnknownContentType for a
// codec the registry does not hold, ErrDuplicate when T or name is
// registered already with another name or codec. Registering the same
// type, name and content type again does nothing and returns nil, so that
// a program may register from several places. Concurrency-safe.
func Register[T any](r *Registry, name string, c Codec) error {
	typ := reflect.TypeFor[T]()
	if err := checkName(name); err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("%w: nil codec for %s", ErrInvalidCodec, typ)
	}
	if v, ok := c.(Validator); ok {
		var zero T
		if err := v.CanHandle(zero); err != nil {
			return fmt.Errorf("%w: %s for %s: %w", ErrInvalidCodec, c.ContentType(), typ, err)
		}
	}
	b := &binding{typ: typ, name: name, codec: c}
	if typ.Kind() == reflect.Pointer {
		b.elem = typ.Elem()
	}
	err := r.update(func(s *regState) error {
		id, ok := s.byCT[c.ContentType()]
		if !ok {
			return fmt.Errorf("%w: %q (add it with AddCodec first)", ErrUnknownContentType, c.ContentType())
		}
		if old, ok := s.byType[typ]; ok {
			if old.name == name && old.id == id {
				return errSame // the same binding again: nothing to do
			}
			return fmt.Errorf("%w: type %s (as %q, %s)", ErrDuplicate, typ, old.name, old.codec.ContentType())
		}
		if old, ok := s.byName[name]; ok {
			return fmt.Errorf("%w: name %q (by %s)", ErrDuplicate, name, old.typ)
		}
		b.id = id
		s.byType[typ] = b
		s.byName[name] = b
		return nil
	})
	if err == errSame {
		return nil
	}
	return err
}

// errSame makes update keep the registry as it is when Register is asked
// for a binding it holds already.
var errSame = errors.New("codec: same binding")

// MustRegister is Register that panics on an error, for package-level
// registration of types a program cannot run without.
func MustRegister[T any](r *Registry, name string, c Codec) {
	if err := Register[T](r, name, c); err != nil {
		panic(err)
	}
}

// NameOf returns the name T is registered under in r (nil r is Default),
// or ErrUnregistered.
func NameOf[T any](r *Registry) (string, error) {
	b, err := bindingOf[T](r.load())
	if err != nil {
		return "", err
	}
	return b.name, nil
}

func bindingOf[T any](s *regState) (*binding, error) {
	typ := reflect.TypeFor[T]()
	b := s.byType[typ]
	if b == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnregistered, typ)
	}
	return b, nil
}

// bodySizeHint is the body capacity reserved when the codec cannot tell
// the size.
const bodySizeHint = 64

// Marshal encodes v as a payload: the header (T's name and its codec's
// content id), then the body. r nil is Default. It returns ErrUnregistered
// when T is not registered and an error matching ErrEncode when the codec
// fails. The payload is a fresh slice, owned by the caller.
func Marshal[T any](r *Registry, v T) ([]byte, error) {
	b, err := bindingOf[T](r.load())
	if err != nil {
		return nil, err
	}
	return b.marshal(v)
}

func (b *binding) marshal(v any) ([]byte, error) {
	if _, ok := b.codec.(jsonCodec); ok {
		return b.marshalJSON(v)
	}
	n := bodySizeHint
	if sz, ok := b.codec.(sizer); ok {
		n = sz.size(v)
	}
	dst := make([]byte, 0, headerFixed+len(b.name)+n)
	dst = appendHeader(dst, b.id, b.name)
	out, err := b.codec.Marshal(dst, v)
	if err != nil {
		return nil, fmt.Errorf("%w: %s as %q (%s): %w", ErrEncode, b.typ, b.name, b.codec.ContentType(), err)
	}
	return out, nil
}

// Unmarshal decodes a payload made by Marshal into a value of T. r nil is
// Default. The header must carry T's registered name; its content id, not
// the codec T was registered with, chooses the codec, so that a receiver
// reads bodies from senders that moved T to another codec. Errors: those
// of Inspect, ErrUnregistered for an unregistered T, ErrTypeMismatch when
// the header names another type, ErrUnknownContentType for a content id
// without a codec in r, and an error matching ErrDecode when the codec
// refuses the body. It never panics on any input. The value does not
// alias data (the codecs of this package copy what they keep).
func Unmarshal[T any](r *Registry, data []byte) (T, error) {
	var zero T
	s := r.load()
	b, err := bindingOf[T](s)
	if err != nil {
		return zero, err
	}
	id, name, body, err := parseHeader(data)
	if err != nil {
		return zero, err
	}
	if string(name) != b.name {
		return zero, fmt.Errorf("%w: %q, not %q (%s)", ErrTypeMismatch, name, b.name, b.typ)
	}
	c := s.codecs[id]
	if c == nil {
		return zero, fmt.Errorf("%w: id %d in a message of type %q", ErrUnknownContentType, id, name)
	}
	if b.elem != nil { // a pointer type: the codec fills a fresh *elem
		v := reflect.New(b.elem).Interface().(T)
		if err := c.Unmarshal(body, v); err != nil {
			return zero, b.decodeErr(name, c, err)
		}
		return v, nil
	}
	p := new(T) // allocated here only, not for pointer types
	if err := c.Unmarshal(body, p); err != nil {
		return zero, b.decodeErr(name, c, err)
	}
	return *p, nil
}

func (b *binding) decodeErr(name []byte, c Codec, err error) error {
	return fmt.Errorf("%w: %q as %s (%s): %w", ErrDecode, name, b.typ, c.ContentType(), err)
}
