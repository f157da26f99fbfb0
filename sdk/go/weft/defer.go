package weft

import (
	"strconv"

	"github.com/weftos/weft/abi"
)

// Deferred is a request taken off the process's hands with Message.Defer,
// to answer later with Respond, exactly once (docs/abi.md, "Version 2:
// answering a request later"). It is a small value: keep it wherever the
// process will find it when the answer is ready, such as in a map by the
// id of a request sent meanwhile. The zero Deferred answers nothing.
type Deferred struct {
	token int64
	req   *Message
}

// Request is the deferred request, as Await returned it.
func (d Deferred) Request() *Message { return d.req }

// Defer takes m, the request being handled, off the process's hands: the
// process answers it later with the Deferred's Respond, while it takes
// and answers other messages. After Defer, m.Respond and a second Defer
// fail with ErrNoRequest, and a request sent with Inherit does not take m
// over.
//
// The requester's timeout still runs: an answer after it is dropped (and
// Respond still returns nil). If the process stops first, the requester
// gets a killed error. Defer fails with ErrNoRequest when m is not the
// request being handled or expects no response, and with ErrLimit when
// the process holds as many deferred requests as max_pending_requests.
//
// Every module built with the SDK declares ABI version 2, which Defer
// needs; one that never calls Defer does not import it.
func (m *Message) Defer() (Deferred, error) {
	if m.Kind != KindRequest {
		return Deferred{}, &Error{Code: abi.ENOREQUEST, Op: "defer", Detail: "a " + m.Kind.String() + " cannot be deferred"}
	}
	s := &sdk
	s.mu.Lock() // not deferred: see Await
	if m != s.handling || m.deferred {
		err := s.unanswerable("defer", m)
		s.mu.Unlock()
		return Deferred{}, err
	}
	t := s.node.deferRequest()
	if t < 0 {
		err := s.fail("defer", int32(t))
		s.mu.Unlock()
		return Deferred{}, err
	}
	m.deferred = true
	s.mu.Unlock()
	return Deferred{token: t, req: m}, nil
}

// Respond answers the deferred request, as Message.Respond answers the
// one being handled. It fails with ErrNoRequest when d was answered
// already (or is the zero Deferred); after another error (ErrTooLarge,
// ErrNoCapability, ErrInvalid) the request is still owed, and Respond
// may be called again.
func (d Deferred) Respond(r Response) error {
	if d.token <= 0 {
		return &Error{Code: abi.ENOREQUEST, Op: "respond_deferred", Detail: "the zero Deferred answers nothing: Message.Defer makes one"}
	}
	s := &sdk
	s.mu.Lock() // not deferred: see Await
	ar := r.abi()
	enc := abi.AppendResponse(s.out[:0], &ar)
	rc := s.node.respondDeferred(d.token, enc)
	s.release(enc)
	var err error
	if rc < 0 {
		err = s.fail("respond_deferred", rc)
	}
	s.mu.Unlock()
	return err
}

// unanswerable is the error of op on m when m is not the request being
// handled, or was deferred. s.mu is held.
func (s *state) unanswerable(op string, m *Message) error {
	id := strconv.FormatUint(m.ID, 10)
	if m.deferred {
		return &Error{Code: abi.ENOREQUEST, Op: op, Detail: "request " + id + " was deferred: answer it with its Deferred"}
	}
	return &Error{Code: abi.ENOREQUEST, Op: op, Detail: "request " + id + " is not the one being handled"}
}
