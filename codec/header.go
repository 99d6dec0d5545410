package codec

import (
	"errors"
	"fmt"
)

// Header format, version 1 (see the package documentation):
//
//	offset  size  field
//	0       1     magic, 0xC1
//	1       1     header version, 1
//	2       1     content type id (ContentID)
//	3       1     type name length n, 1..MaxTypeName
//	4       n     type name, printable ASCII (0x21..0x7E)
//	4+n     rest  body, encoded by the codec of the content type
const (
	// Magic is the first byte of every encoded message. 0xC1 never occurs
	// in UTF-8 text, so neither JSON nor any other text starts with it.
	Magic byte = 0xC1
	// Version is the header version this package writes and the only one
	// it reads.
	Version byte = 1
	// MaxTypeName is the longest type name, in bytes: its length travels
	// in one byte.
	MaxTypeName = 255
	// headerFixed is the size of the header without the type name.
	headerFixed = 4
)

// ContentID is the one-byte tag of a content type in the header. 0 is
// never valid; 1..127 are reserved for this package (1 JSON, 2 Protobuf);
// 128..255 are for an application's own codecs (Registry.AddCodec).
type ContentID uint8

// The content ids of this package's codecs.
const (
	ContentJSON     ContentID = 1
	ContentProtobuf ContentID = 2
	// FirstAppContent is the lowest id Registry.AddCodec accepts.
	FirstAppContent ContentID = 128
)

// Errors of this package. Compare with errors.Is: each is returned wrapped
// with the offending value.
var (
	// ErrBadMagic occurs when a payload does not start with Magic: it was
	// not encoded by this package (raw bytes, a timer's payload).
	ErrBadMagic = errors.New("codec: not an encoded message")
	// ErrVersion occurs when a payload's header version is not Version.
	ErrVersion = errors.New("codec: unsupported header version")
	// ErrTruncated occurs when a payload ends inside its header.
	ErrTruncated = errors.New("codec: truncated header")
	// ErrInvalidName occurs when a type name is empty, longer than
	// MaxTypeName or holds a byte outside printable ASCII, in a header or
	// given to Register.
	ErrInvalidName = errors.New("codec: invalid type name")
	// ErrUnknownContentType occurs when a header's content type id names
	// no codec of the registry, or Register is given a codec the registry
	// does not hold.
	ErrUnknownContentType = errors.New("codec: unknown content type")
	// ErrUnknownType occurs when a header's type name is not registered
	// (a Router with no route for it).
	ErrUnknownType = errors.New("codec: unknown type name")
	// ErrTypeMismatch occurs when a message is decoded as a Go type
	// registered under another name than the one its header carries.
	ErrTypeMismatch = errors.New("codec: message holds another type")
	// ErrUnregistered occurs when a Go type is encoded, decoded or routed
	// without having been registered.
	ErrUnregistered = errors.New("codec: type not registered")
	// ErrDuplicate occurs when a Go type, a type name, a content type name
	// or a content id is registered twice, or a Router gets two routes for
	// one type.
	ErrDuplicate = errors.New("codec: already registered")
	// ErrInvalidCodec occurs when a codec cannot be used: nil, an empty
	// content type name, an id outside the application range, or a codec
	// that cannot handle the Go type it is registered for.
	ErrInvalidCodec = errors.New("codec: invalid codec")
	// ErrEncode occurs when a codec fails to encode a value.
	ErrEncode = errors.New("codec: cannot encode")
	// ErrDecode occurs when a codec fails to decode a body.
	ErrDecode = errors.New("codec: cannot decode")
)

// Header is what a payload's header says.
type Header struct {
	// Version is the header version (always Version once parsed).
	Version byte
	// Content is the content type id of the body.
	Content ContentID
	// TypeName is the registered name of the message's type.
	TypeName string
}

// Inspect parses the header of an encoded payload, without a registry, and
// returns it with the body that follows, which aliases data. It never
// panics; a valid header costs one allocation, the type name's string.
// Bad input returns ErrBadMagic, ErrTruncated, ErrVersion,
// ErrUnknownContentType (id 0) or ErrInvalidName, wrapped with what was
// found.
func Inspect(data []byte) (Header, []byte, error) {
	id, name, body, err := parseHeader(data)
	if err != nil {
		return Header{}, nil, err
	}
	return Header{Version: Version, Content: id, TypeName: string(name)}, body, nil
}

// parseHeader splits data into its header fields and body. name and body
// alias data.
func parseHeader(data []byte) (id ContentID, name, body []byte, err error) {
	if len(data) == 0 {
		return 0, nil, nil, fmt.Errorf("%w: empty payload", ErrBadMagic)
	}
	if data[0] != Magic {
		return 0, nil, nil, fmt.Errorf("%w: first byte %#02x, want %#02x", ErrBadMagic, data[0], Magic)
	}
	if len(data) < headerFixed {
		return 0, nil, nil, fmt.Errorf("%w: %d bytes, the fixed header is %d", ErrTruncated, len(data), headerFixed)
	}
	if data[1] != Version {
		return 0, nil, nil, fmt.Errorf("%w: %d (this package reads %d)", ErrVersion, data[1], Version)
	}
	id = ContentID(data[2])
	if id == 0 {
		return 0, nil, nil, fmt.Errorf("%w: id 0", ErrUnknownContentType)
	}
	n := int(data[3])
	if n == 0 {
		return 0, nil, nil, fmt.Errorf("%w: length 0", ErrInvalidName)
	}
	if len(data) < headerFixed+n {
		return 0, nil, nil, fmt.Errorf("%w: type name of %d bytes, %d present", ErrTruncated, n, len(data)-headerFixed)
	}
	name = data[headerFixed : headerFixed+n]
	if i := invalidNameByte(name); i >= 0 {
		return 0, nil, nil, fmt.Errorf("%w: byte %#02x at %d of %q", ErrInvalidName, name[i], i, name)
	}
	return id, name, data[headerFixed+n:], nil
}

// checkName validates a type name given to Register.
func checkName(name string) error {
	if name == "" || len(name) > MaxTypeName {
		return fmt.Errorf("%w: %q has %d bytes, want 1..%d", ErrInvalidName, name, len(name), MaxTypeName)
	}
	if i := invalidNameByte([]byte(name)); i >= 0 {
		return fmt.Errorf("%w: byte %#02x at %d of %q", ErrInvalidName, name[i], i, name)
	}
	return nil
}

// invalidNameByte returns the index of the first byte of name outside
// printable ASCII, or -1.
func invalidNameByte(name []byte) int {
	for i, b := range name {
		if b < 0x21 || b > 0x7E {
			return i
		}
	}
	return -1
}

// appendHeader appends a version 1 header to dst. name is valid.
func appendHeader(dst []byte, id ContentID, name string) []byte {
	dst = append(dst, Magic, Version, byte(id), byte(len(name)))
	return append(dst, name...)
}
