package store

import (
	"context"
	"sync"
	"sync/atomic"
)

// Changes counts the committed writes of the node's durable data and
// wakes whoever waits for the next one, so that a backup scheduler can
// start a run shortly after writes without polling the database. Every
// write of a Store (Options.Changes) and of a Drives (UseChanges) that
// returns nil notes one change after it is durable; writers outside this
// package whose files a Snapshot copies (the install registry) call Note.
// Reads never note.
//
// Noting a change costs an atomic add and an atomic load while nobody
// waits; a waiter makes the next change also close a channel. Waiting
// coalesces: however many changes happen while nobody waits, the next
// Wait (or Changed) with the last Seq seen returns at once, once.
//
// The zero value is ready to use. Share one between the Store, the
// Drives and the registry.
type Changes struct {
	seq atomic.Uint64
	mu  sync.Mutex // serialises making and closing wake
	// wake, when not nil, is closed by the next change: waiters set it
	// before they read seq, and Note reads it after adding to seq, so one
	// of the two always sees the other.
	wake atomic.Pointer[chan struct{}]
}

// Seq returns how many changes have been noted: a count that only grows,
// starting at 0.
func (c *Changes) Seq() uint64 { return c.seq.Load() }

// Note records one committed change: it adds one to Seq and wakes the
// waiters. Call it after the change is durable.
func (c *Changes) Note() {
	c.seq.Add(1)
	if c.wake.Load() == nil {
		return
	}
	c.mu.Lock()
	if w := c.wake.Swap(nil); w != nil {
		close(*w)
	}
	c.mu.Unlock()
}

// closedChan is what Changed returns when a change has already happened.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// Changed returns a channel that is closed once Seq is greater than
// after: at once if it already is, otherwise at the next change. after
// is a value Seq returned; any number of goroutines may wait on the
// channels it returns.
func (c *Changes) Changed(after uint64) <-chan struct{} {
	c.mu.Lock()
	w := c.wake.Load()
	if w == nil {
		ch := make(chan struct{})
		w = &ch
		c.wake.Store(w)
	}
	c.mu.Unlock()
	if c.seq.Load() > after {
		return closedChan
	}
	return *w
}

// Wait blocks until Seq is greater than after, and returns it. It fails
// with ctx's error, and the Seq of that moment, when ctx ends first.
func (c *Changes) Wait(ctx context.Context, after uint64) (uint64, error) {
	for {
		select {
		case <-c.Changed(after):
			if s := c.Seq(); s > after {
				return s, nil
			}
		case <-ctx.Done():
			return c.Seq(), ctx.Err()
		}
	}
}

// UseChanges makes the drives' writes note c instead of the Changes of
// their own, so that they count with a Store opened with the same
// Options.Changes. Call it before the first write.
func (d *Drives) UseChanges(c *Changes) {
	if c != nil {
		d.changes.Store(c)
	}
}
