package engine

import "fmt"

// MaxIDLen bounds the length of an AgentID's Type and Key, in bytes.
const MaxIDLen = 256

// AgentID names an agent: its registered type and the instance key within
// that type ("device", "dev-42"). Two IDs are the same agent when both
// fields are equal.
type AgentID struct {
	Type string
	Key  string
}

// String returns "type/key".
func (id AgentID) String() string { return id.Type + "/" + id.Key }

// Validate reports whether the ID is usable: non-empty type and key, each at
// most MaxIDLen bytes.
func (id AgentID) Validate() error {
	switch {
	case id.Type == "":
		return fmt.Errorf("%w: empty type in %q", ErrInvalidID, id.String())
	case id.Key == "":
		return fmt.Errorf("%w: empty key in %q", ErrInvalidID, id.String())
	case len(id.Type) > MaxIDLen || len(id.Key) > MaxIDLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidID, MaxIDLen)
	}
	return nil
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
