package messaging

import "errors"

// Errors returned by this package. They are wrapped with the offending value
// (fmt.Errorf("%w: %q ...")), so compare with [errors.Is].
var (
	// ErrInvalidTopic occurs when a topic given to [Bus.Publish] is empty, too
	// long, has an empty token, whitespace or a wildcard ('*' or '>'). See
	// [ValidateTopic].
	ErrInvalidTopic = errors.New("messaging: invalid topic")

	// ErrInvalidPattern occurs when a subscription pattern is empty, too long,
	// has an empty token or whitespace, has a wildcard inside a token (a*,
	// b>c), or a '>' that is not the last token. See [ValidatePattern].
	ErrInvalidPattern = errors.New("messaging: invalid pattern")

	// ErrNotFound occurs when [Sublist.Remove] is asked to remove a
	// (pattern, value) pair that is not in the list.
	ErrNotFound = errors.New("messaging: not found")

	// ErrNilHandler occurs when [Bus.Subscribe] or [SubscribeWeak] is given a
	// nil handler.
	ErrNilHandler = errors.New("messaging: nil handler")

	// ErrNilOwner occurs when [SubscribeWeak] or [SubscribeChan] is given a
	// nil owner.
	ErrNilOwner = errors.New("messaging: nil owner")

	// ErrNilChan occurs when [SubscribeChan] is given a nil channel.
	ErrNilChan = errors.New("messaging: nil channel")
)
