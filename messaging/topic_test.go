package messaging

import (
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	long := strings.Repeat("a", MaxTopicLen)
	many := strings.Repeat("a.", MaxTokens-1) + "a"
	cases := []struct {
		s            string
		topic, patOK bool   // valid as a topic, as a pattern
		why          string // reason given for a topic (and a pattern when invalid as one)
	}{
		{s: "a", topic: true, patOK: true},
		{s: "a.b.c", topic: true, patOK: true},
		{s: "telemetry.dev-42.temp", topic: true, patOK: true},
		{s: "ünï.cödé", topic: true, patOK: true},
		{s: "$SYS.x_y-z", topic: true, patOK: true},
		{s: long, topic: true, patOK: true},
		{s: many, topic: true, patOK: true},
		{s: "*", why: whyWildTopic, patOK: true},
		{s: ">", why: whyWildTopic, patOK: true},
		{s: "a.*.c", why: whyWildTopic, patOK: true},
		{s: "a.>", why: whyWildTopic, patOK: true},
		{s: "*.*.>", why: whyWildTopic, patOK: true},
		{s: "", why: whyEmpty},
		{s: ".", why: whyEmptyToken},
		{s: "a..b", why: whyEmptyToken},
		{s: ".a", why: whyEmptyToken},
		{s: "a.", why: whyEmptyToken},
		{s: "a b", why: whySpace},
		{s: "a.b\tc", why: whySpace},
		{s: "a\n", why: whySpace},
		{s: " a", why: whySpace},
		{s: "a\u00a0b", why: whySpace},
		{s: "a\u3000b", why: whySpace},
		{s: long + "a", why: whyTooLong},
		{s: many + ".a", why: whyTooMany},
		{s: "a*", why: whyWildTopic},
		{s: "b>c", why: whyWildTopic},
		{s: "a.**", why: whyWildTopic},
		{s: "a.>.b", why: whyWildTopic},
		{s: ">.a", why: whyWildTopic},
	}
	// Reasons a pattern is refused where it differs from the topic's.
	patWhy := map[string]string{
		"a*": whyWildInside, "b>c": whyWildInside, "a.**": whyWildInside,
		"a.>.b": whyRestLast, ">.a": whyRestLast,
	}
	for _, tc := range cases {
		err := ValidateTopic(tc.s)
		checkValidation(t, "ValidateTopic", tc.s, err, tc.topic, ErrInvalidTopic, tc.why)
		why := tc.why
		if w, ok := patWhy[tc.s]; ok {
			why = w
		}
		err = ValidatePattern(tc.s)
		checkValidation(t, "ValidatePattern", tc.s, err, tc.topic || tc.patOK, ErrInvalidPattern, why)
	}
}

func checkValidation(t *testing.T, fn, s string, err error, valid bool, sentinel error, why string) {
	t.Helper()
	if valid {
		if err != nil {
			t.Errorf("%s(%q) = %v, want nil", fn, s, err)
		}
		return
	}
	if !errors.Is(err, sentinel) {
		t.Errorf("%s(%q) = %v, want an error wrapping %v", fn, s, err, sentinel)
		return
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "messaging: ") || !strings.Contains(msg, why) || len(s) < 40 && !strings.Contains(msg, `"`) {
		t.Errorf("%s(%q) = %q, want the package prefix, the quoted value and %q", fn, s, msg, why)
	}
}

func TestTopicParse(t *testing.T) {
	var tp Topic
	err := tp.Parse("a.bc.d")
	var toks []string
	for i := range tp.Len() {
		toks = append(toks, tp.token(i))
	}
	if err != nil || strings.Join(toks, "|") != "a|bc|d" || tp.String() != "a.bc.d" {
		t.Fatalf("Parse = %q (%q), %v", toks, tp.String(), err)
	}
	// A failed Parse leaves the Topic empty: it matches nothing.
	if err := tp.Parse("a..b"); !errors.Is(err, ErrInvalidTopic) || tp.Len() != 0 || tp.String() != "" {
		t.Fatalf("Parse(a..b) = %v, leaving %d tokens %q", err, tp.Len(), tp.String())
	}
	var s Sublist[int]
	_ = s.Insert(">", 1)
	if got := s.MatchTopic(&tp); got != nil {
		t.Fatalf("an empty Topic matched %v", got)
	}
	if n := testing.AllocsPerRun(100, func() { _ = tp.Parse("telemetry.dev-42.temp") }); n != 0 {
		t.Errorf("Parse of a valid topic allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = ValidateTopic("telemetry.dev-42.temp") }); n != 0 {
		t.Errorf("ValidateTopic of a valid topic allocates %v times", n)
	}
}
