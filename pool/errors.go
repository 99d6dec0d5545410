package pool

import (
	"errors"
	"fmt"

	"github.com/panjf2000/ants/v2"
)

// Errors returned by Workers. Compare them with errors.Is: most are wrapped
// with the offending value.
var (
	// ErrInvalidSize occurs when NewWorkers is given a worker count that is
	// zero, negative or too large. It is wrapped with the count.
	ErrInvalidSize = errors.New("pool: invalid worker count")

	// ErrInvalidOption occurs when a WorkerOption has an invalid value (a
	// negative queue length, a non-positive idle timeout). It is wrapped with
	// the option and its value.
	ErrInvalidOption = errors.New("pool: invalid option")

	// ErrNilFunc occurs when Submit is given a nil work or done function. It
	// is wrapped with the name of the missing argument.
	ErrNilFunc = errors.New("pool: nil function")

	// ErrOverloaded occurs when Submit finds every worker busy and the queue,
	// if any, full. Submit returns it at once, unwrapped, so that rejecting
	// work stays cheap under overload. It wraps ants.ErrPoolOverload.
	ErrOverloaded = fmt.Errorf("pool: workers overloaded: %w", ants.ErrPoolOverload)

	// ErrClosed occurs when Submit is called after (or concurrently with)
	// Close.
	ErrClosed = errors.New("pool: workers closed")

	// ErrPanic occurs when submitted work panics (or calls runtime.Goexit).
	// The error delivered to done is a *PanicError, which matches ErrPanic
	// with errors.Is.
	ErrPanic = errors.New("pool: work panicked")
)

// errGoexit is the PanicError value for work that called runtime.Goexit.
var errGoexit = errors.New("runtime.Goexit called in work")

// PanicError is the error delivered to a done function when its work panicked.
// It matches ErrPanic with errors.Is, and unwraps to Value when Value is an
// error.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
	// Stack is the stack of the panicking goroutine, as debug.Stack formats it.
	Stack []byte
}

// Error reports the panic value; the stack is in Stack.
func (e *PanicError) Error() string {
	return fmt.Sprintf("%v: %v", ErrPanic, e.Value)
}

// Is reports whether target is ErrPanic.
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// Unwrap returns Value if it is an error, so that errors.Is and errors.As see
// through a panic(err).
func (e *PanicError) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}
