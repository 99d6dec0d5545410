// Package messaging is an in-process publish/subscribe bus on dot-separated
// topics, with NATS wildcards, zero-copy payloads and weak subscribers. It
// stands alone: it imports nothing of the engine and starts no goroutine.
// The engine is built on it (see "The bus and the engine" below).
//
//	var bus messaging.Bus
//	sub, err := bus.Subscribe("telemetry.*.temp", func(topic string, payload []byte) {
//		fmt.Printf("%s: %s\n", topic, payload)
//	})
//	if err != nil {
//		return err // messaging.ErrInvalidPattern
//	}
//	defer sub.Unsubscribe()
//	n, err := bus.Publish("telemetry.dev-42.temp", []byte("21.5")) // n == 1
//
// # Topics and patterns
//
// A topic is a string of non-empty tokens separated by dots, such as
// "telemetry.dev-42.temp": at most [MaxTopicLen] bytes and [MaxTokens]
// tokens, with no whitespace and no '*' or '>'. A subscription pattern is a
// topic in which a whole token may also be a wildcard, with the meanings of
// NATS subjects:
//
//	a.b.c   exactly the topic a.b.c
//	a.*.c   one token in the middle: a.b.c, a.x.c, not a.c or a.b.b.c
//	a.>     one or more tokens after a: a.b, a.b.c, not a
//	>       every topic
//
// A wildcard inside a token ("a*", "b>c") or a '>' that is not the last token
// is an error, not a literal. [ValidateTopic] and [ValidatePattern] check
// both; the errors wrap [ErrInvalidTopic] and [ErrInvalidPattern] and quote
// the offending value.
//
// # Subscriptions
//
// [Bus.Subscribe] registers a [Handler] until [Subscription.Unsubscribe],
// which is idempotent. [Bus.Publish] calls every matching handler on the
// publisher's goroutine, one after the other, and returns how many returned
// normally. A handler that panics is recovered, reported to the function set
// with [WithOnPanic], counted in [Bus.Panics], and does not stop delivery to
// the others.
//
// # Weak subscribers
//
// [SubscribeWeak] ties a subscription to an owner, typically the agent that
// handles the messages, without keeping the owner alive: the bus holds a
// [weak.Pointer] to it, and the handler receives the owner as an argument so
// that it need not capture it (a handler that captures its owner keeps it
// alive for ever). Once the owner is garbage-collected the subscription stops
// receiving at once and disappears on its own: a cleanup attached with
// [runtime.AddCleanup] marks it dead, and dead subscriptions are removed in
// batches, as the runtime removes zombie timers. A forgotten subscriber never
// leaks.
//
// [SubscribeChan] is the same for a subscriber that reads a channel instead
// of being called: each message is copied and sent without blocking, and a
// message the channel has no room for is counted in [Subscription.Dropped]
// rather than waited for.
//
// # The payload contract
//
// A payload is handed over, not copied: one Publish to a thousand subscribers
// shares one backing array. So the slice is read-only for everyone:
//
//   - the publisher must not modify it after calling Publish;
//   - a handler must not modify it;
//   - a handler that keeps it past its return (or passes it to another
//     goroutine) must still not modify it, and must copy it if it needs a
//     writable or private version.
//
// # Matching and its cost
//
// Matching is done by [Sublist], a generic trie in the manner of
// nats-server's sublist (literal, '*' and '>' nodes), usable on its own.
// Unlike nats, Match takes no lock at all: the trie is immutable and
// replaced through an atomic pointer by writers, which serialize on a mutex
// and copy only the path they change. Match results are cached per topic in
// a fixed table of 1024 entries tagged with the trie's generation, so that
// any change to the subscriptions invalidates them at once. A topic is
// admitted to the cache on its second miss, so a stream of topics seen once
// (ten thousand devices reporting in turn) neither evicts the hot topics nor
// allocates: it only costs a walk of the trie per Publish. A Publish to a
// cached topic allocates nothing and costs a hash, one cache probe and one
// indirect call per subscriber.
//
// A publisher that matches one topic against several lists (the engine has
// one per loop) parses it once into a [Topic] and calls
// [Sublist.MatchTopic] on each: the topic is validated and split once, and
// each token hashed at most once. MatchTopic walks the trie without the
// cache on a list where no topic can match two patterns (no two patterns
// part at a wildcard in one and another token in the other: any set of
// exact patterns, or "telemetry.*.*" beside "features.*"), since a match is
// then a single slice of the trie and the walk allocates nothing; small
// levels of the trie compare a token with their few literals instead of
// hashing it. So tens of thousands of distinct topics, more than any cache
// of topics holds, cost a walk each and no cache traffic.
//
// # The bus and the engine
//
// The engine routes published messages to agents with [Sublist]s of its
// own: per loop, so that a publish makes one inbox post per loop that has
// subscribers, and one for type subscriptions, whose instance key comes
// from the topic. It also keeps one [Bus], returned by its Bus method, for
// plain Go subscribers (dashboards, bridges, tests): every message the
// engine publishes, from outside or from an agent, is published on that Bus
// too, on the publishing goroutine (an event loop, when an agent
// publishes). So Go code subscribes to an engine's topics exactly as to a
// standalone Bus, with [Bus.Subscribe], [SubscribeWeak] or [SubscribeChan],
// under the same payload contract, with one addition: a payload the engine
// took from a buffer pool goes back to it after the last agent has handled
// it, so a handler copies what it keeps. Publishing on the engine's Bus
// itself reaches only its Go subscribers; agents hear what goes through the
// engine. While its Bus has no subscription, this costs the engine one or
// two atomic loads per publish, no lock and no allocation.
//
// # Concurrency
//
// Every exported function and method is safe for concurrent use, and the zero
// values of [Bus] and [Sublist] are ready to use. No lock is held while a
// handler runs, so handlers may publish, subscribe and unsubscribe.
package messaging
