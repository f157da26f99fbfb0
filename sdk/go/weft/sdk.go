package weft

import (
	"github.com/weftos/weft/abi"
)

// state is the guest's side of the conversation with the node: which
// message is current (message_read and blob_read read it), which request
// is being handled (respond answers it), and reusable buffers. One per
// module, in sdk.
type state struct {
	mu   lock
	node nodeImpl

	// cur is the current message: the last one Await or SendAndAwait
	// took. Its blob can be read until the next one is taken.
	cur *Message
	// handling is the request Respond answers, tracked the way the node
	// does: taking a request makes it the one being handled; taking the
	// answer to a request this process sent makes the request that was
	// being handled when it was sent the one being handled again.
	handling *Message
	// stash maps the id of a request sent while handling a message (and
	// expecting a response through Await) to that message.
	stash map[uint64]*Message

	scratch []byte // reads of unknown length; small, kept
	out     []byte // encodings being sent; dropped when large

	storeOut []byte // store-op encodings; dropped when larger than keepStoreOut
	storeRes []byte // store results up to storeResSize, copied out

	self string // our address, once read
	body func() error
}

var sdk = state{stash: make(map[uint64]*Message)}

const (
	scratchSize = 1024
	keepOut     = 64 << 10
)

// fail turns a negative result of op into an error: ErrStopped itself for
// WEFT_ESTOPPED, else an *Error with the node's last_error sentence.
// s.mu is held.
func (s *state) fail(op string, code int32) error {
	if code == abi.ESTOPPED {
		return ErrStopped
	}
	return &Error{Code: code, Op: op, Detail: s.lastError()}
}

// lastError returns the node's sentence about its last error. s.mu is held.
func (s *state) lastError() string {
	b, err := s.read("last_error", s.node.lastError)
	if err != nil {
		return ""
	}
	return string(b)
}

// read calls f, which copies something of unknown length into its
// argument and returns the full length (or an error code), and returns
// what it copied in a slice of its own. Small results go through the
// scratch buffer; a larger one is read again into a buffer of exactly
// its size. s.mu is held.
func (s *state) read(op string, f func([]byte) int32) ([]byte, error) {
	if s.scratch == nil {
		s.scratch = make([]byte, scratchSize)
	}
	buf, scratch := s.scratch, true
	for {
		n := f(buf)
		if n < 0 {
			if op == "last_error" { // never recurse
				return nil, &Error{Code: n, Op: op}
			}
			return nil, s.fail(op, n)
		}
		if int(n) <= len(buf) {
			if scratch {
				return append([]byte{}, buf[:n]...), nil
			}
			return buf[:n], nil
		}
		buf, scratch = make([]byte, n), false // grew, or changed since: ask again
	}
}

// readExact reads something whose length n is known (a message, a blob)
// into a new buffer, asking again if it turns out longer. s.mu is held.
func (s *state) readExact(op string, n int32, f func([]byte) int32) ([]byte, error) {
	buf := make([]byte, n)
	for {
		got := f(buf)
		if got < 0 {
			return nil, s.fail(op, got)
		}
		if int(got) <= len(buf) {
			return buf[:got], nil
		}
		buf = make([]byte, got)
	}
}

// release forgets a large encoding buffer so that one big send does not
// pin its size for the life of the process. s.mu is held.
func (s *state) release(enc []byte) {
	if cap(enc) > keepOut {
		s.out = nil
	} else {
		s.out = enc[:0]
	}
}
