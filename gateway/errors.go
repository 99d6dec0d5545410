package gateway

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrInvalidConfig occurs when a configuration is refused; every Errors
	// matches it with errors.Is.
	ErrInvalidConfig = errors.New("gateway: invalid configuration")
	// ErrConfigTooLarge occurs when a configuration is longer than
	// MaxConfigSize bytes; its Errors matches it too.
	ErrConfigTooLarge = errors.New("gateway: configuration too large")
	// ErrAliasExpansion occurs when the YAML aliases of a configuration
	// would expand it by more than MaxAliasExpansion, or an alias is used
	// inside the node it names; its Errors matches it too.
	ErrAliasExpansion = errors.New("gateway: configuration aliases expand too far")
)

// FieldError is one fault of a configuration, placed by file and line or
// by the command-line flag that set the value.
type FieldError struct {
	File  string // the file, "" for a value set by a flag or in code
	Line  int    // 1-based; 0 when not from a file
	Field string // the path of the field, "agents[2].priority"; "" for a syntax error
	Flag  string // the flag that set the value ("-rate"), if one did
	Msg   string
	// Err is the sentinel the fault matches besides ErrInvalidConfig
	// (ErrConfigTooLarge, ErrAliasExpansion), or nil.
	Err error
}

// Unwrap returns the fault's sentinel, if it has one.
func (e *FieldError) Unwrap() error { return e.Err }

// Error formats the fault as "gateway.yaml:12: agents[2].priority: 140 is
// out of range 0..100", or "-rate: ..." for a flag.
func (e *FieldError) Error() string {
	var b strings.Builder
	switch {
	case e.Flag != "":
		b.WriteString(e.Flag)
		b.WriteString(": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Field != "" && e.Flag == "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors are the faults of one configuration, in the order of the file.
type Errors []*FieldError

// Error lists the faults, one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Is makes every Errors match ErrInvalidConfig.
func (es Errors) Is(target error) bool { return target == ErrInvalidConfig }

// Unwrap returns the faults, so that errors.As finds the first
// *FieldError and errors.Is the sentinel of any.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// err returns es as an error, nil when empty.
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}
