package driver

import (
	"context"
	"encoding/json"
	"time"

	"github.com/weftos/weft/api/weftv1"
)

// Driver is what a native driver implements. weftd calls Start once per
// run of the driver, before any request, and then Handle for every
// request addressed to it, from many goroutines at once.
type Driver interface {
	// Start gives the driver who it is and what it talks to. ctx ends
	// when the run ends; work the driver starts for its run (timers,
	// pools) should stop with it. An error ends the run, and the node
	// applies the driver's on_exit.
	Start(ctx context.Context, s Start) error
	// Handle answers one request. ctx ends at the requester's timeout or
	// when the run ends; nil answers nothing (right for a request that
	// expects no response). Handle may block as long as the answer takes:
	// a timer answers when it fires.
	Handle(ctx context.Context, r *Request) *Response
}

// HealthChecker is implemented by a driver that can tell whether it is
// able to serve. weftd calls Health periodically (every driver answers a
// health check; this adds the driver's own opinion) and stops a driver
// whose check fails or does not answer in time.
type HealthChecker interface {
	Health(ctx context.Context) error
}

// Start is what a driver is told at the start of each run.
type Start struct {
	// Address is the driver's own address, "node@name:drivers:weft".
	Address string
	// NodeID is this node's id.
	NodeID string
	// Config is the driver's configuration from its declaration in
	// weftd.toml, as a JSON object ("{}" when it has none).
	Config json.RawMessage
	// Node sends requests, reaches the store and logs, in the driver's
	// name.
	Node *Node
}

// Request is a request addressed to the driver.
type Request struct{ m *weftv1.Message }

// NewRequest wraps a request message as weftd delivers it. It is for
// the transport and for tests; a driver only reads Requests.
func NewRequest(m *weftv1.Message) *Request { return &Request{m: m} }

// Proto returns the request as the driver protocol carries it.
func (r *Request) Proto() *weftv1.Message { return r.m }

// ID is the request's id.
func (r *Request) ID() uint64 { return r.m.GetId() }

// Source is the sender's address, "node@name:package:publisher".
func (r *Request) Source() string { return r.m.GetSource() }

// Body is the request's body.
func (r *Request) Body() []byte { return r.m.GetRequest().GetBody() }

// Metadata is the request's metadata ("" for none).
func (r *Request) Metadata() string { return r.m.GetRequest().GetMetadata() }

// Blob is the request's blob, or nil.
func (r *Request) Blob() *weftv1.Blob { return r.m.GetBlob() }

// Capabilities are the capabilities attached to the request; the driver
// holds them now, and may attach them to what it sends.
func (r *Request) Capabilities() []*weftv1.Capability { return r.m.GetRequest().GetCapabilities() }

// Timeout is how long the requester waits for the answer; 0 when it
// expects none.
func (r *Request) Timeout() time.Duration {
	d := r.m.GetRequest().GetExpectsResponse()
	if d == nil {
		return 0
	}
	return d.AsDuration()
}

// WantsResponse reports whether the requester waits for an answer.
func (r *Request) WantsResponse() bool { return r.Timeout() > 0 }

// Response is a driver's answer to a request.
type Response struct {
	Body     []byte
	Metadata string
	// Capabilities to attach: ones the driver holds or issues.
	Capabilities []*weftv1.Capability
	Blob         *weftv1.Blob
	// Inherit: with no Blob, the answer carries the request's blob.
	Inherit bool
}

// Reply is a Response with body b.
func Reply(b []byte) *Response { return &Response{Body: b} }

// ReplyJSON is a Response whose body is v as JSON. A value that does not
// encode is a bug of the driver's: ReplyJSON panics on it.
func ReplyJSON(v any) *Response {
	b, err := json.Marshal(v)
	if err != nil {
		panic("driver: ReplyJSON: " + err.Error())
	}
	return &Response{Body: b}
}
