package kernel

import (
	"fmt"
	"time"
)

// Kind says what a Message is.
type Kind uint8

const (
	KindRequest  Kind = iota + 1 // a request from Source
	KindResponse                 // a response to a request this process sent
	KindError                    // a request this process sent failed: see Message.Error
)

func (k Kind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindResponse:
		return "response"
	case KindError:
		return "error"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Blob is a message's optional large payload. It is shared, not copied,
// between sender and receiver inside the node: whoever sends a blob must
// not change its bytes afterwards. A Wasm host copies it into a guest only
// when the guest asks for it.
type Blob struct {
	Mime  string
	Bytes []byte
}

// Message is what a process receives from Await or SendAndAwait. The kernel
// owns a Message after delivering it only in the sense that it never
// changes it; the receiver may read it freely but must not change Body,
// Blob or Capabilities, which may be shared with the sender.
type Message struct {
	ID   uint64
	Kind Kind
	// Inherit is set on a request or response that inherited from the
	// message its sender was handling.
	Inherit bool

	// Kernel bookkeeping, packed beside Kind and Inherit. answered is
	// guarded by the mutex of the process that holds the message; the
	// others are requester-side (see below).
	answered bool  // the response was sent, or the duty handed on by inherit
	syncWait bool  // the requester blocks in SendAndAwait for it
	heapIdx  int32 // index in the timeout heap plus one; zero when not there

	src *Address // see Source; points at an address the kernel never changes
	dst *Address // see Target

	// ExpectsResponse is the requester's timeout on a request that expects
	// a response (for an inherited request, the original requester's);
	// zero when none is expected.
	ExpectsResponse time.Duration

	Body         []byte
	Metadata     string       // optional; empty means none
	Capabilities []Capability // attached; the receiver now holds them
	Blob         *Blob        // optional; see Handle.Blob

	// Error is set on KindError.
	Error *SendError

	rsvp *proc    // where a response goes (the requester); nil when none is owed
	req  *Message // on a response or error: the request it answers

	// Requester-side bookkeeping of a request that expects a response,
	// guarded by the requester's mutex (deadline and heapIdx by the
	// timeout queue's).
	deadline   int64         // when it times out, in nanoseconds of the kernel's clock
	reqContext []byte        // the requester's context
	stash      *Message      // the requester's prompting message when it sent this
	reply      chan *Message // the operator's caller waits on it
}

// NewMessage makes a Message outside the kernel, for the edges that carry
// messages in and out of a node (a driver, the wire) and for tests; the
// caller fills in the other fields. context is what Context returns on a
// response or an error. The kernel delivers only messages it made itself.
func NewMessage(kind Kind, id uint64, source, target Address, context []byte) *Message {
	m := &Message{ID: id, Kind: kind, src: &source, dst: &target}
	if kind != KindRequest && context != nil {
		m.req = &Message{reqContext: context}
	}
	return m
}

// Source is who sent the message; on a KindError, the requester itself.
func (m *Message) Source() Address {
	if m.src == nil {
		return Address{}
	}
	return *m.src
}

// Target is who the message was sent to.
func (m *Message) Target() Address {
	if m.dst == nil {
		return Address{}
	}
	return *m.dst
}

// Context is, on a response or an error, the context the requester kept
// with its request; nil on a request.
func (m *Message) Context() []byte {
	if m.req == nil {
		return nil
	}
	return m.req.reqContext
}

// IsRequest, IsResponse and IsError report the message's kind.
func (m *Message) IsRequest() bool  { return m.Kind == KindRequest }
func (m *Message) IsResponse() bool { return m.Kind == KindResponse }
func (m *Message) IsError() bool    { return m.Kind == KindError }

// WantsResponse reports whether the sender of a request waits for a response.
func (m *Message) WantsResponse() bool { return m.Kind == KindRequest && m.rsvp != nil }

// size is what the message counts against a mailbox's byte limit.
func (m *Message) size() int64 {
	n := len(m.Body) + len(m.Metadata) + len(m.Context())
	if m.Blob != nil {
		n += len(m.Blob.Bytes) + len(m.Blob.Mime)
	}
	for _, c := range m.Capabilities {
		n += len(c.Params) + 64
	}
	return int64(n) + 128
}

// Request is a request a process sends.
type Request struct {
	Target Address
	// Inherit takes over the id and reply-to of the request being handled,
	// and its blob when Blob is nil: the response then goes straight to the
	// original requester, under the original requester's timeout.
	Inherit bool
	// ExpectsResponse is how long to wait for a response; zero for none.
	// SendAndAwait requires it.
	ExpectsResponse time.Duration
	Body            []byte
	Metadata        string
	Capabilities    []Capability // to attach: each one held (or issued) by the sender
	Blob            *Blob
	// Context is kept by the kernel and handed back with the response or
	// the error. Only meaningful when ExpectsResponse is set.
	Context []byte
}

// Response answers the request a process is handling.
type Response struct {
	// Inherit carries the blob of the request being answered when Blob is nil.
	Inherit      bool
	Body         []byte
	Metadata     string
	Capabilities []Capability
	Blob         *Blob
}

// ErrorKind classifies a SendError.
type ErrorKind uint8

const (
	ErrTimeout       ErrorKind = iota + 1 // no response within the requester's timeout
	ErrOffline                            // the target's node cannot be reached
	ErrNoSuchProcess                      // no such process, or it is not running
	ErrNoCapability                       // the sender lacks a capability the send needs
	ErrMailboxFull                        // the target's mailbox is at its length or byte limit
	ErrKilled                             // the target died before it answered
	ErrTooLarge                           // a field is over its limit
)

var errorKindNames = [...]string{
	ErrTimeout:       "timeout",
	ErrOffline:       "offline",
	ErrNoSuchProcess: "no_such_process",
	ErrNoCapability:  "no_capability",
	ErrMailboxFull:   "mailbox_full",
	ErrKilled:        "killed",
	ErrTooLarge:      "too_large",
}

// ErrorKinds lists every kind, in order.
var ErrorKinds = []ErrorKind{ErrTimeout, ErrOffline, ErrNoSuchProcess, ErrNoCapability, ErrMailboxFull, ErrKilled, ErrTooLarge}

func (k ErrorKind) String() string {
	if int(k) < len(errorKindNames) && errorKindNames[k] != "" {
		return errorKindNames[k]
	}
	return fmt.Sprintf("ErrorKind(%d)", uint8(k))
}

// ParseErrorKind is the inverse of ErrorKind.String.
func ParseErrorKind(s string) (ErrorKind, bool) {
	for _, k := range ErrorKinds {
		if k.String() == s {
			return k, true
		}
	}
	return 0, false
}

// SendError is why a request failed. It is returned by Send at once when
// the failure is known at once (the request was then not sent), and
// delivered later as a KindError message when it is not (timeout, killed),
// for requests that expect a response.
type SendError struct {
	Kind    ErrorKind
	Target  Address
	Message *Message // the request that failed, when the kernel still has it
	Context []byte   // the context the requester kept, on a delivered error
	Detail  string   // a sentence for people
}

func (e *SendError) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("send to %s: %s: %s", e.Target, e.Kind, e.Detail)
	}
	return fmt.Sprintf("send to %s: %s", e.Target, e.Kind)
}

// Is makes errors.Is(err, &SendError{Kind: k}) match any SendError of kind k.
func (e *SendError) Is(target error) bool {
	t, ok := target.(*SendError)
	return ok && t.Kind == e.Kind && t.Target == (Address{}) && t.Detail == ""
}
