package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// blockCtx is the context of a delivery from another node: it ends
// Config.BlockFor after something first waits on it (Done), so that a
// delivery that never waits (every one but those to a full Block
// mailbox) arms no timer. It is reused through Node.blockCtxs.
type blockCtx struct {
	d     time.Duration
	mu    sync.Mutex
	ch    chan struct{}
	t     *time.Timer
	ended atomic.Bool
}

func (c *blockCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *blockCtx) Value(any) any               { return nil }

func (c *blockCtx) Err() error {
	if c.ended.Load() {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *blockCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		ch := make(chan struct{})
		c.ch = ch
		c.t = time.AfterFunc(c.d, func() {
			c.ended.Store(true) // before the close: Err agrees with Done
			close(ch)
		})
	}
	return c.ch
}

// reset readies c for another delivery; false when its time ran out (or
// is running out): then it is not reused.
func (c *blockCtx) reset() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		return true
	}
	if !c.t.Stop() {
		return false
	}
	c.ch, c.t = nil, nil
	return true
}

// deliverCtx returns a context for one delivery, and its release.
func (n *Node) deliverCtx() *blockCtx {
	if c, ok := n.blockCtxs.Get().(*blockCtx); ok {
		return c
	}
	return &blockCtx{d: n.cfg.BlockFor}
}

func (n *Node) doneCtx(c *blockCtx) {
	if c.reset() {
		n.blockCtxs.Put(c)
	}
}
