package kernel

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Envelope describes one message as the kernel delivered it: who sent it
// to whom, what kind it was and how large, but not its contents unless
// the tap asked for a prefix of the body. Taps see requests as they enter
// a mailbox and responses and errors as they reach the process that waits
// for them; a request to another node as it is handed to the transport
// (Target is then on that node), and an answer to a request from another
// node as it is handed back (Target is the remote requester).
type Envelope struct {
	Time   time.Time
	ID     uint64
	Kind   Kind
	Source Address // for an error, the target that failed
	Target Address // who received it
	// ExpectsResponse is the request's timeout; zero when none is owed.
	ExpectsResponse time.Duration
	Inherit         bool
	BodyLen         int
	// Body is the first TapOptions.BodyBytes bytes of the body, a copy.
	Body         []byte
	Metadata     string
	Capabilities int
	BlobMime     string
	BlobLen      int
	// ErrorKind and ErrorDetail are set on KindError.
	ErrorKind   ErrorKind
	ErrorDetail string
	// Dropped counts the envelopes this tap lost just before this one
	// because its reader fell behind.
	Dropped uint64
}

// TapOptions choose what a tap sees.
type TapOptions struct {
	// Processes limits the tap to messages sent or received by these
	// processes; empty means every message.
	Processes []ProcessId
	// Buffer is how many envelopes wait for a slow reader before the tap
	// drops new ones (and counts them); zero means 256.
	Buffer int
	// BodyBytes is how much of each body to copy into the envelope; zero
	// copies none.
	BodyBytes int
}

// Tap receives envelopes of delivered messages on C until Close. A tap
// never slows delivery: when C is full, envelopes are dropped and counted
// in the next one that gets through. A full tap costs delivery a look at
// its channel's length and one atomic add, less than a tap that takes the
// envelope.
type Tap struct {
	C <-chan Envelope

	k       *Kernel
	c       chan Envelope
	body    int
	dropped atomic.Uint64
	once    sync.Once
}

// tapSet is the kernel's current taps; replaced whole, never changed, so
// delivery reads it with one atomic load.
type tapSet struct{ taps []tapEntry }

// tapEntry is what delivery reads of a tap before it knows the tap takes
// the message, kept in the set itself: passing over a tap that does not
// follow the message, or whose reader is behind, reads the entry and the
// channel's length, and writes only the tap's drop count.
type tapEntry struct {
	t     *Tap
	c     chan Envelope
	procs []ProcessId
}

// Tap starts a tap. Close it when done. At most Limits.TapsPerNode taps
// are open at once; past that Tap fails with ErrLimit.
func (k *Kernel) Tap(o TapOptions) (*Tap, error) {
	if o.Buffer <= 0 {
		o.Buffer = 256
	}
	k.tapMu.Lock()
	defer k.tapMu.Unlock()
	var taps []tapEntry
	if cur := k.taps.Load(); cur != nil {
		taps = cur.taps
	}
	if len(taps) >= k.lim.TapsPerNode {
		return nil, fmt.Errorf("kernel: tap: %w: %d taps are open on this node (taps_per_node)", ErrLimit, k.lim.TapsPerNode)
	}
	c := make(chan Envelope, o.Buffer)
	t := &Tap{C: c, k: k, c: c, body: max(o.BodyBytes, 0)}
	k.taps.Store(&tapSet{taps: append(slices.Clip(taps), tapEntry{t: t, c: c, procs: slices.Clone(o.Processes)})})
	return t, nil
}

// Close stops the tap. An envelope already on its way when Close is called
// may still be sent; C is never closed, so a reader selects on its own
// done channel too.
func (t *Tap) Close() {
	t.once.Do(func() {
		k := t.k
		k.tapMu.Lock()
		defer k.tapMu.Unlock()
		cur := k.taps.Load()
		taps := slices.DeleteFunc(slices.Clone(cur.taps), func(x tapEntry) bool { return x.t == t })
		if len(taps) == 0 {
			k.taps.Store(nil)
		} else {
			k.taps.Store(&tapSet{taps: taps})
		}
	})
}

// observe offers delivered message m, received by to, to every tap.
func (k *Kernel) observe(m *Message, to Address) {
	set := k.taps.Load()
	if set == nil {
		return
	}
	var src Address
	switch {
	case m.Kind == KindError && m.Error != nil:
		src = m.Error.Target
	case m.src != nil:
		src = *m.src
	}
	var base *Envelope // made for the first tap that takes m, shared by the rest
	for _, te := range set.taps {
		if len(te.procs) > 0 && !k.follows(te.procs, src, to) {
			continue
		}
		t := te.t
		if len(te.c) == cap(te.c) {
			// Its reader is behind: count the loss and do nothing more.
			t.dropped.Add(1)
			continue
		}
		if base == nil {
			base = envelope(m, src, to, k.clock.Now())
		}
		e := *base
		if t.body > 0 && len(m.Body) > 0 {
			e.Body = slices.Clone(m.Body[:min(len(m.Body), t.body)])
		}
		t.offer(e)
	}
}

// envelope describes m, delivered from src to to at now, without its body.
func envelope(m *Message, src, to Address, now time.Time) *Envelope {
	e := &Envelope{
		Time:         now,
		ID:           m.ID,
		Kind:         m.Kind,
		Source:       src,
		Target:       to,
		Inherit:      m.Inherit,
		BodyLen:      len(m.Body),
		Metadata:     m.Metadata,
		Capabilities: len(m.Capabilities),
	}
	if m.Kind == KindRequest && m.rsvp != nil {
		e.ExpectsResponse = m.ExpectsResponse
	}
	if m.Blob != nil {
		e.BlobMime, e.BlobLen = m.Blob.Mime, len(m.Blob.Bytes)
	}
	if m.Error != nil {
		e.ErrorKind, e.ErrorDetail = m.Error.Kind, m.Error.Detail
	}
	return e
}

// follows reports whether a tap of procs follows a message from src to
// dst.
func (k *Kernel) follows(procs []ProcessId, src, dst Address) bool {
	for _, p := range procs {
		if (src.Process == p && k.local(src)) || (dst.Process == p && k.local(dst)) {
			return true
		}
	}
	return false
}

// offer sends e, with the count of envelopes dropped before it, unless C
// is full.
func (t *Tap) offer(e Envelope) {
	e.Dropped = t.dropped.Swap(0)
	select {
	case t.c <- e:
	default:
		t.dropped.Add(e.Dropped + 1)
	}
}
