package weft

import (
	"strconv"
	"time"

	"github.com/weftos/weft/abi"
)

// Kind is what a message is: a request, a response, or an error (a
// request of ours that failed).
type Kind uint8

// Message kinds.
const (
	KindRequest  Kind = Kind(abi.KindRequest)
	KindResponse Kind = Kind(abi.KindResponse)
	KindError    Kind = Kind(abi.KindError)
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
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Capability is {issuer, params}: the right its issuer grants to whoever
// holds it. Issuer is an address, node@name:package:publisher (node may be
// "our"); Params is JSON ("\"messaging\"" for a messaging capability).
type Capability struct {
	Issuer string
	Params string
}

// Messaging returns the capability to send requests to the process at
// addr (an address, or a process id meaning this node).
func Messaging(addr string) Capability {
	return Capability{Issuer: address(addr), Params: `"messaging"`}
}

// Blob is a message's optional large payload.
type Blob struct {
	Mime  string
	Bytes []byte
}

// Message is a message the node handed this process. Its fields are the
// process's own (nothing aliases node memory or a buffer the SDK reuses).
type Message struct {
	Kind   Kind
	ID     uint64 // the request's id; an answer carries its request's id
	Source string // the sender's address (on an error: this process)
	Target string // the address it was sent to (on an error: the one that failed)

	Body     []byte
	Metadata string
	// Context is, on an answer, the context this process kept with its
	// request.
	Context []byte
	// Capabilities came attached; this process now holds them.
	Capabilities []Capability

	Inherit bool
	// WantsResponse says the sender of a request waits for an answer
	// (Respond), within ExpectsResponse.
	WantsResponse   bool
	ExpectsResponse time.Duration

	// HasBlob says the message has a blob of BlobLen bytes, read with
	// Blob while the message is current.
	HasBlob  bool
	BlobMime string
	BlobLen  int

	// SendError is set on a KindError message: which request failed,
	// how, and its context.
	SendError *SendError

	raw      []byte // the encoding; fields alias it
	blob     *Blob  // read already
	deferred bool   // taken off the process's hands (Defer)
}

// IsRequest reports whether m is a request.
func (m *Message) IsRequest() bool { return m.Kind == KindRequest }

// fromABI converts a decoded message. Its strings and slices alias the
// encoding, which the caller gives to m alone.
func fromABI(am *abi.Message) *Message {
	m := new(Message)
	m.setABI(am)
	return m
}

// setABI sets every field of m but raw and blob from am.
func (m *Message) setABI(am *abi.Message) {
	*m = Message{
		Kind:            Kind(am.Kind),
		ID:              am.ID,
		Source:          am.Source,
		Target:          am.Target,
		Body:            am.Body,
		Metadata:        am.Metadata,
		Context:         am.Context,
		Capabilities:    fromABICaps(am.Capabilities),
		Inherit:         am.Inherit,
		WantsResponse:   am.WantsResponse,
		ExpectsResponse: time.Duration(am.ExpectsResponse),
		HasBlob:         am.HasBlob,
		BlobMime:        am.BlobMime,
		BlobLen:         int(am.BlobLen),
	}
	if m.Kind == KindError {
		m.SendError = &SendError{
			Kind:    SendErrorKind(am.ErrorKind),
			Target:  am.Target,
			Detail:  am.ErrorDetail,
			ID:      am.ID,
			Context: am.Context,
		}
	}
}

// boxedMessage holds a message and, when it is small, its encoding: one
// allocation rather than two. In a Go guest an allocation is some five
// calls, each paying the CPU guard's check (docs/performance.md).
type boxedMessage struct {
	m   Message
	buf [boxedBytes]byte
}

const boxedBytes = 256

func fromABICaps(cs []abi.Capability) []Capability {
	if len(cs) == 0 {
		return nil
	}
	out := make([]Capability, len(cs))
	for i, c := range cs {
		out[i] = Capability(c)
	}
	return out
}

func toABICaps(cs []Capability) []abi.Capability {
	if len(cs) == 0 {
		return nil
	}
	out := make([]abi.Capability, len(cs))
	for i, c := range cs {
		out[i] = abi.Capability(c)
	}
	return out
}

// Await blocks until the next message arrives and returns it: requests
// and, for requests this process sent with Send, their responses and
// errors, in order. It returns ErrStopped when the node stops the
// process; return from the process body then.
//
// A request taken becomes the one being handled (Respond answers it); a
// response or error taken makes the request that was being handled when
// its request was sent the one being handled again.
func Await() (*Message, error) {
	// No defer here, in Respond or in SendAndAwait: a deferred call is a
	// call, and a Go guest pays the CPU guard's check on each. A panic in
	// between ends the process (Run), so nothing waits for the lock after.
	s := &sdk
	s.mu.Lock()
	n := s.node.await()
	if n < 0 {
		err := s.fail("await", n)
		s.mu.Unlock()
		return nil, err
	}
	m, err := s.readMessage(n)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.cur = m
	if m.Kind == KindRequest {
		s.handling = m
	} else {
		s.handling = s.stash[m.ID]
		delete(s.stash, m.ID)
	}
	s.mu.Unlock()
	return m, nil
}

// readMessage reads and decodes the current message, whose encoding is n
// bytes long. s.mu is held.
func (s *state) readMessage(n int32) (*Message, error) {
	// One read into a buffer of the length the node gave is the common
	// case; calling the node directly spares readExact's function value,
	// a call a message in a guest (docs/performance.md).
	var m *Message
	var raw []byte
	if n <= boxedBytes {
		box := new(boxedMessage)
		m, raw = &box.m, box.buf[:n:n]
	} else {
		m, raw = new(Message), make([]byte, n)
	}
	switch got := s.node.messageRead(raw); {
	case got < 0:
		return nil, s.fail("message_read", got)
	case got <= n:
		raw = raw[:got]
	default: // changed since: read it again
		var err error
		if raw, err = s.readExact("message_read", got, s.node.messageRead); err != nil {
			return nil, err
		}
	}
	var am abi.Message
	if err := abi.DecodeMessageInto(raw, &am); err != nil {
		return nil, &Error{Code: abi.EINTERNAL, Op: "message_read", Detail: err.Error()}
	}
	m.setABI(&am)
	m.raw = raw
	return m, nil
}

// Blob returns m's blob, reading it from the node the first time. The
// node keeps the blob of the current message only: read it before the
// next Await or SendAndAwait. It fails with ErrNoBlob when m has none.
func (m *Message) Blob() (*Blob, error) {
	s := &sdk
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.blob != nil {
		return m.blob, nil
	}
	if !m.HasBlob {
		return nil, ErrNoBlob
	}
	if m != s.cur {
		return nil, &Error{Code: abi.EINVAL, Op: "blob_read",
			Detail: "the message is no longer current: read its blob before taking the next message"}
	}
	b, err := s.readExact("blob_read", int32(m.BlobLen), s.node.blobRead)
	if err != nil {
		return nil, err
	}
	m.blob = &Blob{Mime: m.BlobMime, Bytes: b}
	return m.blob, nil
}

// Response is an answer to a request.
type Response struct {
	Body     []byte
	Metadata string
	// Inherit carries the blob of the request being answered when Blob
	// is nil.
	Inherit bool
	// Capabilities to attach: held by this process or issued by it.
	Capabilities []Capability
	Blob         *Blob
}

// Respond answers m, which must be the request being handled (see
// Await), not deferred, and must expect a response that was not given
// yet; otherwise it fails with ErrNoRequest.
func (m *Message) Respond(r Response) error {
	if m.Kind != KindRequest {
		return &Error{Code: abi.ENOREQUEST, Op: "respond", Detail: "a " + m.Kind.String() + " cannot be answered"}
	}
	s := &sdk
	s.mu.Lock() // not deferred: see Await
	if m != s.handling || m.deferred {
		err := s.unanswerable("respond", m)
		s.mu.Unlock()
		return err
	}
	ar := r.abi()
	enc := abi.AppendResponse(s.out[:0], &ar)
	rc := s.node.respond(enc)
	s.release(enc)
	var err error
	if rc < 0 {
		err = s.fail("respond", rc)
	}
	s.mu.Unlock()
	return err
}

// abi is r as the ABI encodes it.
func (r *Response) abi() abi.Response {
	ar := abi.Response{Inherit: r.Inherit, Body: r.Body, Metadata: r.Metadata, Capabilities: toABICaps(r.Capabilities)}
	if r.Blob != nil {
		ar.Blob = &abi.Blob{Mime: r.Blob.Mime, Bytes: r.Blob.Bytes}
	}
	return ar
}
