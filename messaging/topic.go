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
	var buf [MaxTokens]string
	_, err := splitTopic(topic, buf[:0])
	return err
}

// ValidatePattern reports whether pattern may be subscribed to. A pattern is
// a topic whose tokens may also be the wildcards "*" (exactly one token) or
// ">" (one or more remaining tokens, so it must be the last token). A
// wildcard character inside a longer token ("a*", "b>c") is refused rather
// than taken literally. The error wraps [ErrInvalidPattern] and quotes
// pattern.
func ValidatePattern(pattern string) error {
	var buf [MaxTokens]string
	_, err := splitPattern(pattern, buf[:0])
	return err
}

// splitTopic validates topic and appends its tokens to dst. The tokens are
// substrings of topic.
func splitTopic(topic string, dst []string) ([]string, error) {
	toks, why := tokenize(topic, dst, false)
	if why != "" {
		return nil, fmt.Errorf("%w: %q: %s", ErrInvalidTopic, topic, why)
	}
	return toks, nil
}

// splitPattern validates pattern and appends its tokens to dst. The tokens
// are substrings of pattern.
func splitPattern(pattern string, dst []string) ([]string, error) {
	toks, why := tokenize(pattern, dst, true)
	if why != "" {
		return nil, fmt.Errorf("%w: %q: %s", ErrInvalidPattern, pattern, why)
	}
	return toks, nil
}

// tokenize splits s on '.' into dst in one pass and checks it at the same
// time. It returns the reason s is invalid, or "" if it is valid. wild
// allows the "*" and ">" tokens of a pattern.
func tokenize(s string, dst []string, wild bool) ([]string, string) {
	if s == "" {
		return dst, whyEmpty
	}
	if len(s) > MaxTopicLen {
		return dst, whyTooLong
	}
	n, start, hasWild := 0, 0, false
	for i := 0; i <= len(s); i++ {
		if i < len(s) {
			c := s[i]
			switch {
			case c == '.':
				// End of a token: checked below.
			case c == '*' || c == '>':
				hasWild = true
				continue
			case c == ' ' || ('\t' <= c && c <= '\r'):
				return dst, whySpace
			case c >= utf8.RuneSelf:
				r, size := utf8.DecodeRuneInString(s[i:])
				if unicode.IsSpace(r) {
					return dst, whySpace
				}
				i += size - 1
				continue
			default:
				continue
			}
		}
		tok := s[start:i]
		switch {
		case tok == "":
			return dst, whyEmptyToken
		case !hasWild:
		case !wild:
			return dst, whyWildTopic
		case len(tok) != 1:
			return dst, whyWildInside
		case tok == wildRest && i != len(s):
			return dst, whyRestLast
		}
		if n == MaxTokens {
			return dst, whyTooMany
		}
		n++
		dst = append(dst, tok)
		start, hasWild = i+1, false
	}
	return dst, ""
}
