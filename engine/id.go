package engine

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxIDLen bounds the length of an AgentID's Type and Key, in bytes (not
// characters: a name in a script of three-byte characters holds at most
// 85 of them).
const MaxIDLen = 256

// AgentID names an agent: its registered type and the instance key within
// that type ("device", "dev-42"). Two IDs are the same agent when both
// fields are equal.
//
// Both fields are non-empty, at most MaxIDLen bytes of valid UTF-8 without
// control characters (unicode.IsControl: C0, DEL and C1); spaces,
// punctuation and any script are fine. The type also has no '/', so that
// String, which joins the fields with '/', prints distinct IDs distinctly;
// a key may contain '/'. Register, Spawn and every call by ID refuse other
// names with ErrInvalidID, so a type name is always a valid metrics label
// value and an ID always prints as valid UTF-8 without control characters.
type AgentID struct {
	Type string
	Key  string
}

// String returns "type/key". Since a type has no '/', the first '/' ends
// it: two valid IDs print the same only when they are equal.
func (id AgentID) String() string { return id.Type + "/" + id.Key }

// Validate reports whether the ID is usable (see AgentID): it returns an
// error wrapping ErrInvalidID that says what is wrong and quotes the ID,
// or nil.
func (id AgentID) Validate() error {
	what, why := "type", badName(id.Type, true)
	if why == "" {
		what, why = "key", badName(id.Key, false)
	}
	if why == "" {
		return nil
	}
	return fmt.Errorf("%w: %s: %s %s", ErrInvalidID, quoteBounded(id.String()), what, why)
}

// checkTypeName is Register's check of a type name: the rules of
// AgentID.Type.
func checkTypeName(name string) error {
	if why := badName(name, true); why != "" {
		return fmt.Errorf("%w: type name %s %s", ErrInvalidID, quoteBounded(name), why)
	}
	return nil
}

// badName says what is wrong with one field of an AgentID, or returns ""
// when nothing is. It allocates nothing for a good name.
func badName(s string, isType bool) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > MaxIDLen:
		return fmt.Sprintf("is %d bytes long, more than %d", len(s), MaxIDLen)
	case isType && strings.IndexByte(s, '/') >= 0:
		return "contains '/'"
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf { // ASCII: printable from ' ' to '~'
			if c < ' ' || c == 0x7f {
				return fmt.Sprintf("has control character %U at byte %d", c, i)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return fmt.Sprintf("is not valid UTF-8 at byte %d", i)
		}
		if unicode.IsControl(r) {
			return fmt.Sprintf("has control character %U at byte %d", r, i)
		}
		i += n
	}
	return ""
}

// quoteBounded quotes s, or only its start when s is longer than any valid
// ID prints, so that an error about a huge name stays small.
func quoteBounded(s string) string {
	const limit = 2*MaxIDLen + 1
	if len(s) <= limit {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%s… (%d bytes)", strconv.Quote(s[:limit]), len(s))
}

// hash is FNV-1a over type, a separator and key. It decides the loop an
// agent lives on and its registry shard, so it must be stable and cheap;
// it allocates nothing.
func (id AgentID) hash() uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(id.Type); i++ {
		h = (h ^ uint64(id.Type[i])) * prime
	}
	h = (h ^ 0xff) * prime
	for i := 0; i < len(id.Key); i++ {
		h = (h ^ uint64(id.Key[i])) * prime
	}
	return h
}
