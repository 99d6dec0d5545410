package messaging

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Limits on topics and patterns. They bound the work of one match and let
// the matcher split a topic into a fixed array on the stack.
const (
	// MaxTopicLen is the longest topic or pattern accepted, in bytes.
	MaxTopicLen = 255
	// MaxTokens is the largest number of dot-separated tokens in a topic or
	// pattern.
	MaxTokens = 32
)

// Wildcard tokens of a pattern.
const (
	wildOne  = "*" // matches exactly one token
	wildRest = ">" // matches one or more remaining tokens; last token only
)

// Reasons given after the offending value in validation errors.
const (
	whyEmpty      = "empty"
	whyTooLong    = "longer than 255 bytes"
	whyTooMany    = "more than 32 tokens"
	whyEmptyToken = "empty token"
	whySpace      = "contains whitespace"
	whyWildTopic  = "wildcard in a topic"
	whyWildInside = "wildcard inside a token"
	whyRestLast   = "'>' is not the last token"
)

// ValidateTopic reports whether topic may be published: 1 to [MaxTopicLen]
// bytes of 1 to [MaxTokens] non-empty dot-separated tokens, with no
// whitespace and no wildcard character ('*' or '>') anywhere. Any other byte,
// UTF-8 included, is allowed. The error wraps [ErrInvalidTopic] and quotes
// topic.
func ValidateTopic(topic string) error {
	var t Topic
	return t.Parse(topic)
}

// ValidatePattern reports whether pattern may be subscribed to. A pattern is
// a topic whose tokens may also be the wildcards "*" (exactly one token) or
// ">" (one or more remaining tokens, so it must be the last token). A
// wildcard character inside a longer token ("a*", "b>c") is refused rather
// than taken literally. The error wraps [ErrInvalidPattern] and quotes
// pattern.
func ValidatePattern(pattern string) error {
	var ends [MaxTokens]uint8
	if _, why := tokenize(pattern, &ends, true); why != "" {
		return fmt.Errorf("%w: %q: %s", ErrInvalidPattern, pattern, why)
	}
	return nil
}

// A Topic is a topic validated and split into its tokens once, so that it
// can be matched against several [Sublist]s ([Sublist.MatchTopic]) without
// being validated, split and hashed again for each: a publisher that routes
// through one list per destination parses the topic once per publish. Each
// token is hashed the first time a list needs its hash, and the hash is kept
// for the next list; the whole topic likewise.
//
// The zero Topic is empty and matches nothing; [Topic.Parse] sets it. A
// Topic holds no pointer but to the topic's own bytes and is meant to live
// on the stack of one publish. It is not safe for concurrent use, matching
// included (a match records hashes in it); copy it to share it.
type Topic struct {
	s      string
	n      int              // tokens
	ends   [MaxTokens]uint8 // ends[i]: offset just past token i
	hashed uint32           // bit i: hashes[i] holds token i's hash
	whole  bool             // sum holds the topic's hash
	sum    uint64
	hashes [MaxTokens]uint64
}

// Parse validates topic as [ValidateTopic] does and, if it is valid, sets t
// to it. On an error, which wraps [ErrInvalidTopic] and quotes topic, t is
// left empty. Parse allocates nothing for a valid topic.
func (t *Topic) Parse(topic string) error {
	t.hashed, t.whole = 0, false
	n, why := tokenize(topic, &t.ends, false)
	if why != "" {
		t.s, t.n = "", 0
		return fmt.Errorf("%w: %q: %s", ErrInvalidTopic, topic, why)
	}
	t.s, t.n = topic, n
	return nil
}

// String returns the topic, or "" for an empty Topic.
func (t *Topic) String() string { return t.s }

// Len returns the number of tokens (0 for an empty Topic).
func (t *Topic) Len() int { return t.n }

// token returns token i, a substring of the topic.
func (t *Topic) token(i int) string {
	start := 0
	if i > 0 {
		start = int(t.ends[i-1]) + 1
	}
	return t.s[start:t.ends[i]]
}

// hash returns the hash of token i, computing it on first use.
func (t *Topic) hash(i int) uint64 {
	if t.hashed&(1<<i) == 0 {
		t.hashes[i] = hashString(t.token(i))
		t.hashed |= 1 << i
	}
	return t.hashes[i]
}

// topicHash returns the hash of the whole topic, computing it on first use.
func (t *Topic) topicHash() uint64 {
	if !t.whole {
		t.sum, t.whole = hashString(t.s), true
	}
	return t.sum
}

// splitPattern validates pattern and appends its tokens to dst. The tokens
// are substrings of pattern.
func splitPattern(pattern string, dst []string) ([]string, error) {
	var ends [MaxTokens]uint8
	n, why := tokenize(pattern, &ends, true)
	if why != "" {
		return nil, fmt.Errorf("%w: %q: %s", ErrInvalidPattern, pattern, why)
	}
	start := 0
	for _, end := range ends[:n] {
		dst = append(dst, pattern[start:end])
		start = int(end) + 1
	}
	return dst, nil
}

// Classes of a byte for tokenize.
const (
	bytePlain uint8 = iota // any byte a token may hold
	byteDot                // '.': ends a token
	byteWild               // '*' or '>'
	byteSpace              // ASCII whitespace
	byteHigh               // starts a multi-byte UTF-8 sequence (or is not UTF-8)
)

// byteClasses classifies every byte, so that tokenize spends one load and
// one test on a byte of an ordinary token.
var byteClasses = func() (c [256]uint8) {
	c['.'] = byteDot
	c['*'], c['>'] = byteWild, byteWild
	c[' '] = byteSpace
	for b := '\t'; b <= '\r'; b++ {
		c[b] = byteSpace
	}
	for b := utf8.RuneSelf; b < 256; b++ {
		c[b] = byteHigh
	}
	return c
}()

// tokenize splits s on '.' in one pass and checks it at the same time: it
// stores in ends the offset just past each token and returns how many there
// are, and the reason s is invalid, or "" if it is valid. wild allows the
// "*" and ">" tokens of a pattern. Offsets fit a byte since s is at most
// MaxTopicLen (255) bytes long.
func tokenize(s string, ends *[MaxTokens]uint8, wild bool) (int, string) {
	if s == "" {
		return 0, whyEmpty
	}
	if len(s) > MaxTopicLen {
		return 0, whyTooLong
	}
	n, start, hasWild := 0, 0, false
	for i := 0; ; {
		for i < len(s) && byteClasses[s[i]] == bytePlain {
			i++
		}
		if i < len(s) {
			switch byteClasses[s[i]] {
			case byteDot:
				// End of a token: checked below.
			case byteWild:
				hasWild = true
				i++
				continue
			case byteSpace:
				return 0, whySpace
			default: // byteHigh
				r, size := utf8.DecodeRuneInString(s[i:])
				if unicode.IsSpace(r) {
					return 0, whySpace
				}
				i += size
				continue
			}
		}
		switch {
		case i == start:
			return 0, whyEmptyToken
		case !hasWild:
		case !wild:
			return 0, whyWildTopic
		case i-start != 1:
			return 0, whyWildInside
		case s[start] == '>' && i != len(s):
			return 0, whyRestLast
		}
		if n == MaxTokens {
			return 0, whyTooMany
		}
		ends[n] = uint8(i)
		n++
		if i == len(s) {
			return n, ""
		}
		i++
		start, hasWild = i, false
	}
}
