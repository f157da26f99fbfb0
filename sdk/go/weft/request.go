package weft

import (
	"bytes"
	"strings"
	"time"

	"github.com/weftos/weft/abi"
)

// RequestBuilder builds a request; start one with Request and finish it
// with Send or SendAndAwait. A builder may be sent more than once.
type RequestBuilder struct {
	r   abi.Request
	err error
}

// Request starts a request to target: an address node@name:package:publisher
// (node may be "our"), or a process id name:package:publisher, meaning
// this node.
func Request(target string) *RequestBuilder {
	// Small enough to be inlined, so that a builder used in one statement
	// stays off the heap: Send and SendAndAwait complete the address.
	return &RequestBuilder{r: abi.Request{Target: target}}
}

// address makes a process id an address on this node.
func address(s string) string {
	if strings.Contains(s, "@") {
		return s
	}
	return "our@" + s
}

// Body sets the request's body.
func (b *RequestBuilder) Body(body []byte) *RequestBuilder { b.r.Body = body; return b }

// Metadata sets the request's metadata.
func (b *RequestBuilder) Metadata(md string) *RequestBuilder { b.r.Metadata = md; return b }

// Expects asks for a response within timeout (which must be positive).
// Without it the request expects none; SendAndAwait requires it.
func (b *RequestBuilder) Expects(timeout time.Duration) *RequestBuilder {
	if timeout <= 0 {
		return b.badTimeout(timeout) // out of line, so that Expects is inlined
	}
	b.r.ExpectsResponse = uint64(timeout)
	return b
}

func (b *RequestBuilder) badTimeout(timeout time.Duration) *RequestBuilder {
	b.err = &Error{Code: abi.EINVAL, Op: "request", Detail: "Expects needs a positive timeout, got " + timeout.String()}
	return b
}

// Context sets bytes the node keeps with the request and hands back with
// its answer (Message.Context, SendError.Context).
func (b *RequestBuilder) Context(c []byte) *RequestBuilder { b.r.Context = c; return b }

// Blob attaches a blob.
func (b *RequestBuilder) Blob(mime string, data []byte) *RequestBuilder {
	b.r.Blob = &abi.Blob{Mime: mime, Bytes: data}
	return b
}

// Inherit makes the request take over the request being handled: its
// blob when none is attached, and, when the request itself expects no
// response (no Expects), that request's id and reply-to, so that the
// final answer goes straight back to the original requester under its
// timeout. That is how middleware forwards (A → B → C, C answers A).
func (b *RequestBuilder) Inherit() *RequestBuilder { b.r.Inherit = true; return b }

// Attach adds capabilities to the request: held by this process, or
// issued by it.
func (b *RequestBuilder) Attach(caps ...Capability) *RequestBuilder {
	b.r.Capabilities = append(b.r.Capabilities, toABICaps(caps)...)
	return b
}

// Send sends the request and returns its id. A failure known at once is a
// *SendError (or an *Error for a bad request) and nothing was sent. A
// request that expects a response gets it, or a KindError message,
// through Await later, with its context.
func (b *RequestBuilder) Send() (uint64, error) {
	if b.err != nil {
		return 0, b.err
	}
	b.r.Target = address(b.r.Target)
	s := &sdk
	s.mu.Lock()
	defer s.mu.Unlock()
	enc := abi.AppendRequest(s.out[:0], &b.r)
	defer s.release(enc)
	id := s.node.send(enc)
	if id < 0 {
		return 0, s.sendFail("send", int32(id), b.r.Target)
	}
	// The answer comes back through Await and brings the request being
	// handled now back. (An inheriting request that hands the reply-to
	// on expects nothing itself.)
	if b.r.ExpectsResponse > 0 && s.handling != nil {
		s.stash[uint64(id)] = s.handling
	}
	return uint64(id), nil
}

// SendAndAwait sends the request and blocks until its answer, which it
// returns; the request needs Expects and must not target this process.
// A request that failed, at once or later (timeout, killed, …), returns a
// *SendError. Other messages arriving meanwhile wait, in order; the
// request being handled does not change, and the answer's blob can be
// read until the next message is taken.
func (b *RequestBuilder) SendAndAwait() (*Message, error) {
	if b.err != nil {
		return nil, b.err
	}
	if b.r.ExpectsResponse == 0 {
		return nil, &Error{Code: abi.EINVAL, Op: "send_and_await", Detail: "the request needs a timeout: call Expects"}
	}
	b.r.Target = address(b.r.Target)
	s := &sdk
	s.mu.Lock() // not deferred: see Await
	enc := abi.AppendRequest(s.out[:0], &b.r)
	n := s.node.sendAndAwait(enc)
	s.release(enc)
	if n < 0 {
		err := s.sendFail("send_and_await", n, b.r.Target)
		s.mu.Unlock()
		return nil, err
	}
	m, err := s.readMessage(n)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.cur = m
	s.mu.Unlock()
	if m.SendError != nil { // not expected: the node returns its code
		return nil, m.SendError
	}
	return m, nil
}

// sendFail turns a failed send of a request to target into an error. A
// send error code is a *SendError: the error message when the failure
// came back as one (the node made it current), else one built from the
// code and last_error. s.mu is held.
func (s *state) sendFail(op string, code int32, target string) error {
	if !isSendCode(code) {
		return s.fail(op, code)
	}
	se := &SendError{Kind: SendErrorKind(-100 - code), Target: target, Detail: s.lastError()}
	if op != "send_and_await" {
		return se
	}
	// A failure that came back as an error message made it current; one
	// known at once left the current message as it was. Ids are never
	// reused, so a current message that differs from ours is the error.
	raw, err := s.read("message_read", s.node.messageRead)
	if err != nil || (s.cur != nil && bytes.Equal(raw, s.cur.raw)) {
		return se
	}
	am, err := abi.DecodeMessage(raw)
	if err != nil || am.Kind != abi.KindError {
		return se
	}
	m := fromABI(&am)
	m.raw = raw
	s.cur = m
	return m.SendError
}
