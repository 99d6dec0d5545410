package engine

import (
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/agentloop/agentloop/scheduler"
)

// Option configures an Engine. Options are checked once by New, which
// returns an error for an out-of-range value instead of panicking.
type Option interface{ apply(*config) error }

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	loops     int
	inboxSize int
	quantum   int // messages per agent per run
	budget    int // messages per loop per turn before the inbox is drained again
	tick      time.Duration
	restarts  restartPolicy
	clock     Clock
	sched     scheduler.Config
	noHandoff bool    // WithHandoff(false)
	cluster   Cluster // WithCluster; nil: none

	workers, workerQueue int

	logger      *slog.Logger // nil: slog.Default() at each record
	logBurst    int
	logInterval time.Duration
}

func defaultConfig() config {
	return config{
		loops:     runtime.GOMAXPROCS(0),
		inboxSize: 1 << 13,
		quantum:   64,
		budget:    1024,
		tick:      time.Millisecond,
		restarts:  restartPolicy{max: 3, window: 10 * time.Second},
		sched:     scheduler.DefaultConfig(),

		workers:     DefaultWorkers,
		workerQueue: DefaultWorkerQueue,

		logBurst:    DefaultLogBurst,
		logInterval: DefaultLogInterval,
	}
}

// WithScheduler configures every loop's runnable queue: the weight
// coefficients, the number of weight buckets, the epoch length and the
// aging bound (see package scheduler). The default is
// scheduler.DefaultConfig(): weight = 0.6·priority + 0.2·cpu + 0.2·mem.
func WithScheduler(cfg scheduler.Config) Option {
	return optionFunc(func(c *config) error {
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("%w: WithScheduler: %w", ErrInvalidOption, err)
		}
		c.sched = cfg
		return nil
	})
}

// WithWeights sets the scheduler's weight coefficients, leaving the rest of
// its configuration as it is: weight = priority·p + cpu·c + mem·m, where
// each term is in [0, 1]. Each coefficient must be ≥ 0 and their sum > 0.
func WithWeights(priority, cpu, mem float64) Option {
	return optionFunc(func(c *config) error {
		cfg := c.sched
		cfg.Coefficients = scheduler.Coefficients{Priority: priority, CPU: cpu, Mem: mem}
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("%w: WithWeights: %w", ErrInvalidOption, err)
		}
		c.sched = cfg
		return nil
	})
}

// WithLoops sets the number of event loops, each run by one goroutine that
// runs its agents (see the package documentation for the goroutines beside
// them). The default is GOMAXPROCS.
func WithLoops(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 || n > 1024 {
			return fmt.Errorf("%w: WithLoops(%d): want 1..1024", ErrInvalidOption, n)
		}
		c.loops = n
		return nil
	})
}

// WithInboxSize sets the capacity of each loop's inbox, the bounded queue
// that carries work from other goroutines. It is rounded up to a power of
// two. A full inbox makes outside senders wait (backpressure): a sender
// that has waited about 10ms leaves its message in a spill queue beside
// the inbox instead, so that a handler posting to its own loop through the
// outside API slows down rather than deadlocks, and while such a spill is
// pending every outside post first waits for the loop to take it. Other
// loops never wait: they keep the overflow in an outbox per target loop,
// bounded by the targets' overflow policies. Nothing is lost in silence:
// what is not delivered is dead-lettered. The default is 8192.
func WithInboxSize(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 2 || n > 1<<24 {
			return fmt.Errorf("%w: WithInboxSize(%d): want 2..%d", ErrInvalidOption, n, 1<<24)
		}
		c.inboxSize = n
		return nil
	})
}

// WithQuantum sets how many messages an agent may handle in one run before
// it goes back to its loop's runnable queue and the loop picks the next
// agent by weight (which may be the same one again, when it is alone or
// still the heaviest). The default is 64.
func WithQuantum(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 1 {
			return fmt.Errorf("%w: WithQuantum(%d): want ≥ 1", ErrInvalidOption, n)
		}
		c.quantum = n
		return nil
	})
}

// WithTimerTick sets the tick of each loop's timing wheel (default 1ms).
// Timers never fire early; the tick only bounds how coarse timers are
// grouped.
func WithTimerTick(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d < time.Millisecond {
			return fmt.Errorf("%w: WithTimerTick(%v): want ≥ 1ms", ErrInvalidOption, d)
		}
		c.tick = d
		return nil
	})
}

// WithDefaultRestarts sets the restart budget for types registered without
// Restarts: at most max restarts within window, then the agent is
// terminated. The default is 3 restarts in 10 seconds.
func WithDefaultRestarts(max int, window time.Duration) Option {
	return optionFunc(func(c *config) error {
		p, err := newRestartPolicy(max, window)
		c.restarts = p
		return err
	})
}

// Overflow is what a full mailbox does with a new message.
type Overflow uint8

const (
	// DropNewest dead-letters the message that does not fit.
	DropNewest Overflow = iota
	// DropOldest dead-letters the oldest queued message to make room.
	DropOldest
	// Reject returns ErrMailboxFull to the sender.
	Reject
	// Block makes a sender outside the engine wait for room. Senders inside
	// the engine (handlers) get ErrMailboxFull instead: a loop never blocks.
	// Send and SendID wait without a deadline, until there is room, the
	// agent terminates or the engine stops; give a Block mailbox's senders
	// a deadline with SendContext or SendIDContext (Engine or Ref), which
	// give up when their context ends, with an error matching both
	// ErrMailboxFull and ctx.Err().
	Block
)

func (o Overflow) String() string {
	switch o {
	case DropNewest:
		return "DropNewest"
	case DropOldest:
		return "DropOldest"
	case Reject:
		return "Reject"
	case Block:
		return "Block"
	}
	return fmt.Sprintf("Overflow(%d)", uint8(o))
}

// RegisterOption configures an agent type.
type RegisterOption interface{ applyType(*typeConfig) error }

type typeOptionFunc func(*typeConfig) error

func (f typeOptionFunc) applyType(c *typeConfig) error { return f(c) }

type typeConfig struct {
	priority int
	capacity int
	overflow Overflow
	batch    int
	pooled   bool
	restarts restartPolicy
	hasRest  bool
}

// reserves reports whether the type's mailbox bound is kept by senders
// reserving a place before they send (Reject, Block) rather than by the
// loop on arrival (DropNewest, DropOldest).
func (c *typeConfig) reserves() bool { return c.overflow == Reject || c.overflow == Block }

// DefaultMailboxSize is the bound of a mailbox registered without Mailbox.
const DefaultMailboxSize = 4096

// Priority sets the type's priority, 0 (lowest) to 100. The default is 50.
func Priority(p int) RegisterOption {
	return typeOptionFunc(func(c *typeConfig) error {
		if p < 0 || p > 100 {
			return fmt.Errorf("%w: Priority(%d): want 0..100", ErrInvalidOption, p)
		}
		c.priority = p
		return nil
	})
}

// DefaultBatch is the batch size of a BatchReceiver type registered
// without Batch; MaxBatch the largest Batch accepts.
const (
	DefaultBatch = 32
	MaxBatch     = 4096
)

// Batch sets how many queued messages an agent of the type that
// implements BatchReceiver gets per ReceiveBatch call: up to n, fewer when
// fewer are queued. A batch counts as one run of the agent in the
// scheduler. The option has no effect on agents without ReceiveBatch.
func Batch(n int) RegisterOption {
	return typeOptionFunc(func(c *typeConfig) error {
		if n < 1 || n > MaxBatch {
			return fmt.Errorf("%w: Batch(%d): want 1..%d", ErrInvalidOption, n, MaxBatch)
		}
		c.batch = n
		return nil
	})
}

// Mailbox bounds each agent's mailbox to capacity messages and sets what
// happens when it is full. The default is DefaultMailboxSize with DropNewest.
func Mailbox(capacity int, policy Overflow) RegisterOption {
	return typeOptionFunc(func(c *typeConfig) error {
		if capacity < 1 || capacity > 1<<30 {
			return fmt.Errorf("%w: Mailbox(%d): want 1..%d", ErrInvalidOption, capacity, 1<<30)
		}
		if policy > Block {
			return fmt.Errorf("%w: Mailbox: unknown policy %v", ErrInvalidOption, policy)
		}
		c.capacity, c.overflow = capacity, policy
		return nil
	})
}

// Restarts sets how often an agent of this type may be restarted after a
// panic: at most max restarts within window; one more terminates it.
// Restarts(0, d) terminates on the first panic.
func Restarts(max int, window time.Duration) RegisterOption {
	return typeOptionFunc(func(c *typeConfig) error {
		p, err := newRestartPolicy(max, window)
		c.restarts, c.hasRest = p, true
		return err
	})
}

// Pooled marks the type's agents for recycling. When one terminates, its
// loop Resets the agent value (when it implements Resetter; otherwise the
// factory makes a new one), keeps its record, mailbox buffer and queue
// entry, and puts it in the type's pool for that loop; the next Spawn of
// the type placed on that loop takes it, moves it Terminated → Idle →
// Initializing and gives it the new ID under a new incarnation, so Refs to
// the old agent keep failing with ErrTerminated. With a Reset method a
// spawn/terminate cycle allocates nothing. Each loop keeps up to 1024
// records per type, whatever the collector does; a record finalized
// beyond that is left to the collector.
//
// Reset must return the value to the state the factory would give it; Init
// runs again after it.
func Pooled() RegisterOption {
	return typeOptionFunc(func(c *typeConfig) error {
		c.pooled = true
		return nil
	})
}

// SpawnOption configures one Spawn.
type SpawnOption interface{ applySpawn(*spawnConfig) error }

type spawnOptionFunc func(*spawnConfig) error

func (f spawnOptionFunc) applySpawn(c *spawnConfig) error { return f(c) }

type spawnConfig struct {
	loop int // -1: by hash
}

// OnLoop places the agent on loop i (0 ≤ i < loops) instead of the loop
// chosen by the hash of its ID.
func OnLoop(i int) SpawnOption {
	return spawnOptionFunc(func(c *spawnConfig) error {
		if i < 0 {
			return fmt.Errorf("%w: OnLoop(%d)", ErrInvalidOption, i)
		}
		c.loop = i
		return nil
	})
}

type restartPolicy struct {
	max    int
	window time.Duration
}

func newRestartPolicy(max int, window time.Duration) (restartPolicy, error) {
	if max < 0 {
		return restartPolicy{}, fmt.Errorf("%w: restarts %d: want ≥ 0", ErrInvalidOption, max)
	}
	if window <= 0 {
		return restartPolicy{}, fmt.Errorf("%w: restart window %v: want > 0", ErrInvalidDuration, window)
	}
	return restartPolicy{max: max, window: window}, nil
}

// StopOption configures Stop.
type StopOption interface{ applyStop(*stopConfig) }

type stopConfig struct{ immediate bool }

type stopOptionFunc func(*stopConfig)

func (f stopOptionFunc) applyStop(c *stopConfig) { f(c) }

// Immediate makes Stop dead-letter queued messages instead of delivering
// them. OnTerminate hooks still run, once each.
func Immediate() StopOption { return stopOptionFunc(func(c *stopConfig) { c.immediate = true }) }
