package engine

// This file: the snapshot file format, its encoder and its decoder.
//
// # Snapshot format
//
// A snapshot (Engine.Snapshot, read back by Engine.Restore and
// DecodeSnapshot) is one byte string, every fixed-size integer
// little-endian, every length a uvarint (encoding/binary) unless said
// otherwise:
//
//	header, 24 bytes
//	  magic     8 bytes  "\x89AGSNAP\n"
//	  version   uint16   the format version, SnapshotVersion when written
//	  flags     uint16   bit 0: records carry queued messages (WithQueued)
//	  count     uint32   number of records
//	  created   int64    engine clock at the snapshot, unix nanoseconds
//	count records, each
//	  length    uint32   bytes of body, at most MaxSnapshotRecord
//	  body      length bytes:
//	    uvarint n, n bytes    agent type
//	    uvarint n, n bytes    agent key
//	    schema    uint32      the agent's own state version (SaveState)
//	    uvarint n, n bytes    state
//	    when flags bit 0 is set:
//	      uvarint m           queued messages, oldest first, each:
//	        uvarint n, n bytes  sender type (n = 0: no sender)
//	        uvarint n, n bytes  sender key
//	        uvarint n, n bytes  topic (n = 0: a direct message)
//	        uvarint n, n bytes  payload
//	  crc       uint32   CRC-32C (Castagnoli) of length and body
//	trailer, 8 bytes
//	  end       4 bytes  "SEND"
//	  crc       uint32   CRC-32C of every byte before this field
//
// The file ends with the trailer: trailing bytes make it corrupt. Records
// are written sorted by agent type, then key; no ID appears twice.
//
// Versioning rules: a change that an older reader could misread bumps the
// version (a new field, a new meaning), and so does a new flag: a reader
// refuses, with ErrSnapshotVersion, a version above the one it writes and
// any flag bit it does not know, and it reads every older version it ever
// wrote. Version 1 is the first; version 0 is never valid.
//
// Decoding reads and verifies the whole input before anything is
// restored: lengths are checked against the bytes that remain (and
// MaxSnapshotRecord, MaxSnapshotSize) before anything is allocated for
// them, so no input makes the decoder allocate more than the input's size
// or panic; every refusal is an error wrapping ErrCorruptSnapshot or
// ErrSnapshotVersion, of type *SnapshotError, with the offset of the
// offending byte.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"time"
)

// SnapshotVersion is the format version Snapshot writes, and the highest
// Restore reads.
const SnapshotVersion = 1

const (
	// MaxSnapshotRecord bounds one record's body: an agent whose state and
	// queued messages exceed it fails the snapshot, and a record claiming
	// more is corrupt.
	MaxSnapshotRecord = 64 << 20
	// MaxSnapshotSize bounds a whole snapshot: Restore and ReadSnapshot
	// refuse a longer input (ErrCorruptSnapshot) after reading one byte
	// past it.
	MaxSnapshotSize int64 = 4 << 30
)

const (
	snapMagic      = "\x89AGSNAP\n"
	snapEnd        = "SEND"
	snapHeaderSize = 24
	snapTrailer    = 8
	// snapMinRecord is the smallest record: length, a one-byte type, a
	// one-byte key, schema, an empty state and the CRC.
	snapMinRecord = 4 + (1 + 1 + 1 + 1 + 4 + 1) + 4
	// snapMinMessage is the smallest queued message: four empty fields.
	snapMinMessage = 4

	snapFlagQueued uint16 = 1 << 0
	snapKnownFlags        = snapFlagQueued
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// ErrCorruptSnapshot marks a snapshot that is truncated, damaged or
	// malformed.
	ErrCorruptSnapshot = errors.New("engine: corrupt snapshot")
	// ErrSnapshotVersion marks a snapshot of a format version (or with a
	// flag) this engine does not know, written by a newer one.
	ErrSnapshotVersion = errors.New("engine: unsupported snapshot version")
)

// SnapshotError is a snapshot refused by the decoder: Err is
// ErrCorruptSnapshot or ErrSnapshotVersion, Offset the position of the
// offending byte in the input.
type SnapshotError struct {
	Offset int64
	Err    error
	Detail string
}

func (e *SnapshotError) Error() string {
	return fmt.Sprintf("%v at offset %d: %s", e.Err, e.Offset, e.Detail)
}

func (e *SnapshotError) Unwrap() error { return e.Err }

func corruptAt(off int, format string, args ...any) error {
	return &SnapshotError{Offset: int64(off), Err: ErrCorruptSnapshot, Detail: fmt.Sprintf(format, args...)}
}

// DecodedSnapshot is the content of a snapshot, as DecodeSnapshot returns
// it.
type DecodedSnapshot struct {
	Version uint16
	Created time.Time // the engine clock when the snapshot was taken
	Queued  bool      // taken WithQueued: records carry their messages
	Records []SnapshotRecord
}

// SnapshotRecord is one agent of a snapshot. State and the payloads alias
// the decoded input.
type SnapshotRecord struct {
	ID     AgentID
	Schema uint32
	State  []byte
	Queued []SnapshotMessage
}

// SnapshotMessage is a queued message of a snapshot: a direct message
// when Topic is empty, else a published one; Sender is the zero AgentID
// for a message from outside the engine.
type SnapshotMessage struct {
	Sender  AgentID
	Topic   string
	Payload []byte
}

// ReadSnapshot reads all of r (at most MaxSnapshotSize bytes) and decodes
// it as DecodeSnapshot does.
func ReadSnapshot(r io.Reader) (*DecodedSnapshot, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxSnapshotSize+1))
	if err != nil {
		return nil, fmt.Errorf("engine: read snapshot: %w", err)
	}
	if int64(len(b)) > MaxSnapshotSize {
		return nil, corruptAt(len(b)-1, "input longer than MaxSnapshotSize (%d bytes)", MaxSnapshotSize)
	}
	return DecodeSnapshot(b)
}

// DecodeSnapshot verifies and decodes a whole snapshot (see the package
// documentation's format section). It never panics and allocates at most
// in proportion to len(b); a refusal is a *SnapshotError wrapping
// ErrCorruptSnapshot or ErrSnapshotVersion. The records' byte slices
// alias b.
func DecodeSnapshot(b []byte) (*DecodedSnapshot, error) {
	if len(b) < len(snapMagic) || string(b[:len(snapMagic)]) != snapMagic {
		n := min(len(b), len(snapMagic))
		return nil, corruptAt(0, "not a snapshot: magic %q", b[:n])
	}
	if len(b) < snapHeaderSize+snapTrailer {
		return nil, corruptAt(len(b), "truncated: %d bytes, the header and trailer alone take %d", len(b), snapHeaderSize+snapTrailer)
	}
	version := binary.LittleEndian.Uint16(b[8:])
	flags := binary.LittleEndian.Uint16(b[10:])
	switch {
	case version == 0:
		return nil, corruptAt(8, "format version 0")
	case version > SnapshotVersion:
		return nil, &SnapshotError{Offset: 8, Err: ErrSnapshotVersion,
			Detail: fmt.Sprintf("format version %d, this engine reads up to %d", version, SnapshotVersion)}
	case flags&^snapKnownFlags != 0:
		return nil, &SnapshotError{Offset: 10, Err: ErrSnapshotVersion,
			Detail: fmt.Sprintf("unknown flags %#04x", flags&^snapKnownFlags)}
	}
	end := len(b) - snapTrailer
	if string(b[end:end+4]) != snapEnd {
		return nil, corruptAt(end, "truncated or trailing bytes: no trailer at the end")
	}
	if got, want := crc32.Checksum(b[:end+4], castagnoli), binary.LittleEndian.Uint32(b[end+4:]); got != want {
		return nil, corruptAt(end+4, "file checksum %#08x, computed %#08x", want, got)
	}
	count := binary.LittleEndian.Uint32(b[12:])
	if room := (end - snapHeaderSize) / snapMinRecord; uint64(count) > uint64(room) {
		return nil, corruptAt(12, "record count %d does not fit in %d bytes", count, end-snapHeaderSize)
	}
	d := &DecodedSnapshot{
		Version: version,
		Created: time.Unix(0, int64(binary.LittleEndian.Uint64(b[16:]))),
		Queued:  flags&snapFlagQueued != 0,
		Records: make([]SnapshotRecord, 0, count),
	}
	seen := make(map[AgentID]struct{}, count)
	off := snapHeaderSize
	for i := uint32(0); i < count; i++ {
		if end-off < 4 {
			return nil, corruptAt(off, "record %d: truncated length", i)
		}
		n := binary.LittleEndian.Uint32(b[off:])
		if n > MaxSnapshotRecord {
			return nil, corruptAt(off, "record %d: length %d exceeds MaxSnapshotRecord", i, n)
		}
		if uint64(n)+8 > uint64(end-off) {
			return nil, corruptAt(off, "record %d: length %d exceeds the %d bytes left", i, n, end-off-8)
		}
		body := b[off+4 : off+4+int(n)]
		crcOff := off + 4 + int(n)
		if got, want := crc32.Checksum(b[off:crcOff], castagnoli), binary.LittleEndian.Uint32(b[crcOff:]); got != want {
			return nil, corruptAt(crcOff, "record %d: checksum %#08x, computed %#08x", i, want, got)
		}
		rec, err := decodeRecord(body, off+4, d.Queued)
		if err != nil {
			return nil, err
		}
		if _, dup := seen[rec.ID]; dup {
			return nil, corruptAt(off, "record %d: %s appears twice", i, rec.ID)
		}
		seen[rec.ID] = struct{}{}
		d.Records = append(d.Records, rec)
		off = crcOff + 4
	}
	if off != end {
		return nil, corruptAt(off, "%d bytes between the last record and the trailer", end-off)
	}
	return d, nil
}

// field reads one length-prefixed field of a record body; base is the
// body's offset in the input, for errors.
type fieldReader struct {
	b    []byte
	off  int
	base int
}

func (r *fieldReader) bytes(what string) ([]byte, error) {
	n, k := binary.Uvarint(r.b[r.off:])
	if k <= 0 {
		return nil, corruptAt(r.base+r.off, "%s: bad length", what)
	}
	if n > uint64(len(r.b)-r.off-k) {
		return nil, corruptAt(r.base+r.off, "%s: length %d exceeds the %d bytes left in the record", what, n, len(r.b)-r.off-k)
	}
	r.off += k
	v := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return v, nil
}

func (r *fieldReader) u32(what string) (uint32, error) {
	if len(r.b)-r.off < 4 {
		return 0, corruptAt(r.base+r.off, "%s: truncated", what)
	}
	v := binary.LittleEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v, nil
}

func (r *fieldReader) id(what string, optional bool) (AgentID, error) {
	at := r.base + r.off
	t, err := r.bytes(what + " type")
	if err != nil {
		return AgentID{}, err
	}
	k, err := r.bytes(what + " key")
	if err != nil {
		return AgentID{}, err
	}
	if optional && len(t) == 0 && len(k) == 0 {
		return AgentID{}, nil
	}
	id := AgentID{Type: string(t), Key: string(k)}
	if err := id.Validate(); err != nil {
		return AgentID{}, corruptAt(at, "%s: %v", what, err)
	}
	return id, nil
}

func decodeRecord(body []byte, base int, queued bool) (SnapshotRecord, error) {
	r := fieldReader{b: body, base: base}
	var rec SnapshotRecord
	var err error
	if rec.ID, err = r.id("agent", false); err != nil {
		return rec, err
	}
	if rec.Schema, err = r.u32("schema"); err != nil {
		return rec, err
	}
	if rec.State, err = r.bytes("state"); err != nil {
		return rec, err
	}
	if queued {
		at := r.base + r.off
		m, k := binary.Uvarint(body[r.off:])
		if k <= 0 {
			return rec, corruptAt(at, "message count: bad length")
		}
		r.off += k
		if m > uint64((len(body)-r.off)/snapMinMessage) {
			return rec, corruptAt(at, "message count %d does not fit in the %d bytes left", m, len(body)-r.off)
		}
		if m > 0 {
			rec.Queued = make([]SnapshotMessage, m)
		}
		for j := range rec.Queued {
			q := &rec.Queued[j]
			if q.Sender, err = r.id("sender", true); err != nil {
				return rec, err
			}
			t, err := r.bytes("topic")
			if err != nil {
				return rec, err
			}
			q.Topic = string(t)
			if q.Payload, err = r.bytes("payload"); err != nil {
				return rec, err
			}
		}
	}
	if r.off != len(body) {
		return rec, corruptAt(base+r.off, "%d bytes left over in the record", len(body)-r.off)
	}
	return rec, nil
}

// ---- encoding ----

// snapRec is one agent as Snapshot collected it.
type snapRec struct {
	a      *agent
	id     AgentID
	schema uint32
	state  []byte
	queued []SnapshotMessage
}

// snapWriter writes a snapshot through a buffer, keeping the whole file's
// CRC and the byte count.
type snapWriter struct {
	w   *bufio.Writer
	crc hash.Hash32
	n   int64
	err error
}

func (s *snapWriter) write(p []byte) {
	if s.err != nil {
		return
	}
	_, s.err = s.w.Write(p)
	s.crc.Write(p)
	s.n += int64(len(p))
}

// encodeSnapshot writes recs (sorted, distinct IDs) as one snapshot.
func encodeSnapshot(w io.Writer, created int64, queued bool, recs []snapRec) (int64, error) {
	sw := &snapWriter{w: bufio.NewWriterSize(w, 64<<10), crc: crc32.New(castagnoli)}
	var hdr [snapHeaderSize]byte
	copy(hdr[:], snapMagic)
	binary.LittleEndian.PutUint16(hdr[8:], SnapshotVersion)
	var flags uint16
	if queued {
		flags |= snapFlagQueued
	}
	binary.LittleEndian.PutUint16(hdr[10:], flags)
	binary.LittleEndian.PutUint32(hdr[12:], uint32(len(recs)))
	binary.LittleEndian.PutUint64(hdr[16:], uint64(created))
	sw.write(hdr[:])
	body := make([]byte, 0, 256)
	for i := range recs {
		r := &recs[i]
		body = appendRecord(body[:0], r, queued)
		if len(body) > MaxSnapshotRecord {
			return sw.n, fmt.Errorf("%w: snapshot: %s: record of %d bytes exceeds MaxSnapshotRecord (%d)",
				ErrInvalidArgument, r.id, len(body), MaxSnapshotRecord)
		}
		var lb [4]byte
		binary.LittleEndian.PutUint32(lb[:], uint32(len(body)))
		c := crc32.Update(crc32.Checksum(lb[:], castagnoli), castagnoli, body)
		sw.write(lb[:])
		sw.write(body)
		binary.LittleEndian.PutUint32(lb[:], c)
		sw.write(lb[:])
	}
	sw.write([]byte(snapEnd))
	var cb [4]byte
	binary.LittleEndian.PutUint32(cb[:], sw.crc.Sum32())
	sw.write(cb[:])
	if sw.err == nil {
		sw.err = sw.w.Flush()
	}
	if sw.err != nil {
		return sw.n, fmt.Errorf("engine: snapshot: write: %w", sw.err)
	}
	return sw.n, nil
}

func appendField(b []byte, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendRecord(b []byte, r *snapRec, queued bool) []byte {
	b = appendString(b, r.id.Type)
	b = appendString(b, r.id.Key)
	b = binary.LittleEndian.AppendUint32(b, r.schema)
	b = appendField(b, r.state)
	if queued {
		b = binary.AppendUvarint(b, uint64(len(r.queued)))
		for _, m := range r.queued {
			b = appendString(b, m.Sender.Type)
			b = appendString(b, m.Sender.Key)
			b = appendString(b, m.Topic)
			b = appendField(b, m.Payload)
		}
	}
	return b
}
