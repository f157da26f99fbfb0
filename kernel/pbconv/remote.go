package pbconv

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/weftos/weft/api/p2pv1"
	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/kernel"
)

// The wire between nodes (api/proto/weft/p2p/v1/wire.proto) is stricter
// than the other edges: every address names its node by id, every
// capability is signed, and a message's context never travels. The two
// directions hold the same rules, so that a frame RemoteFrame makes is one
// FromRemoteFrame accepts: a frame the sending kernel should never have
// asked for is refused where it is made, not on the other node.

// RemoteFrame returns the frame that carries m to another node. m must be
// what the kernel hands its transport: a request, response or error whose
// addresses, and its capabilities' issuers, name their nodes by id (never
// "our" or an alias); signed capabilities; no field its kind does not
// carry (no Messaging on an answer, no ExpectsResponse on a response, only
// Error on an error, which then has a known kind). Anything else is
// refused with a *FieldError naming the RemoteMessage's field, and no
// frame is returned.
//
// An error's Target and Detail travel; its Message and Context stay here
// (the requester's node puts its own context back). A Detail longer than
// p2pv1.MaxErrorDetailBytes is shortened to fit, at a character boundary,
// and invalid UTF-8 in it becomes U+FFFD.
func RemoteFrame(m *kernel.RemoteMessage) (*p2pv1.Frame, error) {
	if m == nil {
		return nil, fieldErr("RemoteMessage", errMissing)
	}
	if err := checkRemoteAddress("RemoteMessage.Source", m.Source); err != nil {
		return nil, err
	}
	if err := checkRemoteAddress("RemoteMessage.Target", m.Target); err != nil {
		return nil, err
	}
	msg := &weftv1.Message{Id: m.ID, Source: m.Source.String(), Target: m.Target.String()}
	switch m.Kind {
	case kernel.KindRequest:
		r, err := remoteRequest(m)
		if err != nil {
			return nil, err
		}
		msg.Kind = &weftv1.Message_Request{Request: r}
	case kernel.KindResponse:
		r, err := remoteResponse(m)
		if err != nil {
			return nil, err
		}
		msg.Kind = &weftv1.Message_Response{Response: r}
	case kernel.KindError:
		e, err := remoteError(m)
		if err != nil {
			return nil, err
		}
		msg.Kind = &weftv1.Message_Error{Error: e}
	default:
		return nil, fieldErrf("RemoteMessage.Kind", "unknown kind %s", m.Kind)
	}
	if m.Kind != kernel.KindError && m.Error != nil {
		return nil, fieldErrf("RemoteMessage.Error", "set on %s: only an error carries one", aKind(m.Kind))
	}
	if m.Blob != nil {
		if m.Kind == kernel.KindError {
			return nil, fieldErrf("RemoteMessage.Blob", "set on an error: an error carries no blob")
		}
		if !utf8.ValidString(m.Blob.Mime) {
			return nil, fieldErrf("RemoteMessage.Blob.Mime", "not valid UTF-8")
		}
		msg.Blob = Blob(m.Blob)
	}
	d := &p2pv1.Delivery{Message: msg}
	if m.Messaging != nil {
		if m.Kind != kernel.KindRequest {
			return nil, fieldErrf("RemoteMessage.Messaging", "set on %s: only a request carries one", aKind(m.Kind))
		}
		c, err := remoteCapability("RemoteMessage.Messaging", *m.Messaging)
		if err != nil {
			return nil, err
		}
		d.Messaging = c
	}
	return &p2pv1.Frame{Kind: &p2pv1.Frame_Delivery{Delivery: d}}, nil
}

func remoteRequest(m *kernel.RemoteMessage) (*weftv1.Request, error) {
	if m.ExpectsResponse < 0 {
		return nil, fieldErrf("RemoteMessage.ExpectsResponse", "negative duration %s", m.ExpectsResponse)
	}
	meta, caps, err := remoteShared(m)
	if err != nil {
		return nil, err
	}
	return &weftv1.Request{
		Inherit:         m.Inherit,
		ExpectsResponse: durationPB(m.ExpectsResponse),
		Body:            m.Body,
		Metadata:        meta,
		Capabilities:    caps,
	}, nil
}

func remoteResponse(m *kernel.RemoteMessage) (*weftv1.Response, error) {
	if m.ExpectsResponse != 0 {
		return nil, fieldErrf("RemoteMessage.ExpectsResponse", "set on a response: only a request carries one")
	}
	meta, caps, err := remoteShared(m)
	if err != nil {
		return nil, err
	}
	return &weftv1.Response{Inherit: m.Inherit, Body: m.Body, Metadata: meta, Capabilities: caps}, nil
}

// remoteShared converts the metadata and capabilities of a request or a
// response.
func remoteShared(m *kernel.RemoteMessage) (*string, []*weftv1.Capability, error) {
	if !utf8.ValidString(m.Metadata) {
		return nil, nil, fieldErrf("RemoteMessage.Metadata", "not valid UTF-8")
	}
	caps, err := convertAll("RemoteMessage.Capabilities", m.Capabilities, remoteCapability)
	if err != nil {
		return nil, nil, err
	}
	return metadata(m.Metadata), caps, nil
}

func remoteError(m *kernel.RemoteMessage) (*weftv1.SendError, error) {
	switch {
	case m.Error == nil:
		return nil, fieldErrf("RemoteMessage.Error", "missing on an error")
	case m.Inherit:
		return nil, fieldErrf("RemoteMessage.Inherit", "set on an error")
	case m.ExpectsResponse != 0:
		return nil, fieldErrf("RemoteMessage.ExpectsResponse", "set on an error")
	case len(m.Body) > 0:
		return nil, fieldErrf("RemoteMessage.Body", "set on an error")
	case m.Metadata != "":
		return nil, fieldErrf("RemoteMessage.Metadata", "set on an error")
	case len(m.Capabilities) > 0:
		return nil, fieldErrf("RemoteMessage.Capabilities", "set on an error")
	}
	kind := ErrorKind(m.Error.Kind)
	if kind == weftv1.SendErrorKind_SEND_ERROR_KIND_UNSPECIFIED {
		return nil, fieldErrf("RemoteMessage.Error.Kind", "unknown send error kind %d", uint8(m.Error.Kind))
	}
	if err := checkRemoteAddress("RemoteMessage.Error.Target", m.Error.Target); err != nil {
		return nil, err
	}
	return &weftv1.SendError{
		Kind:   kind,
		Target: m.Error.Target.String(),
		Detail: remoteDetail(m.Error.Detail),
	}, nil
}

// remoteDetail is detail as it may travel: UTF-8, at most
// p2pv1.MaxErrorDetailBytes, cut at a character boundary.
func remoteDetail(detail string) string {
	detail = strings.ToValidUTF8(detail, "\uFFFD")
	if len(detail) <= p2pv1.MaxErrorDetailBytes {
		return detail
	}
	cut := p2pv1.MaxErrorDetailBytes
	for cut > 0 && !utf8.RuneStart(detail[cut]) {
		cut--
	}
	return detail[:cut]
}

func remoteCapability(field string, c kernel.SignedCapability) (*weftv1.Capability, error) {
	if err := checkRemoteAddress(field+".Issuer", c.Issuer); err != nil {
		return nil, err
	}
	if err := checkSigned(field, "Params", "Signature", c.Params, c.Signature); err != nil {
		return nil, err
	}
	return Capability(c), nil
}

// checkRemoteAddress checks an address the kernel hands its transport.
func checkRemoteAddress(field string, a kernel.Address) error {
	if err := a.Validate(); err != nil {
		return fieldErr(field, err)
	}
	return checkRemoteNode(field, a.Node)
}

// checkRemoteNode refuses a node that is not a node id: "our", an alias,
// anything else that means something only on the node that wrote it.
func checkRemoteNode(field, node string) error {
	if node == kernel.OurNode {
		return fieldErrf(field, "node %q between nodes: an address on the wire names its node by id", node)
	}
	if _, ok := nodeIDs.Load(node); ok {
		return nil
	}
	if _, err := identity.PublicKeyFromNodeID(node); err != nil {
		return fieldErrf(field, "not a full node-id address: %w", err)
	}
	if nodeIDCount.Add(1) > maxNodeIDs {
		nodeIDs.Clear()
		nodeIDCount.Store(1)
	}
	nodeIDs.Store(node, struct{}{})
	return nil
}

// nodeIDs remembers node ids that checked out, so that a node decodes the
// ids of the few peers it talks to once rather than several times a frame
// (identity.PublicKeyFromNodeID costs about a microsecond, half of a small
// frame's conversion). Whether a string is a node id never changes; the
// memo is emptied when it holds maxNodeIDs, so ids sent to fill it cost
// what they would without it.
var (
	nodeIDs     sync.Map // node id → struct{}
	nodeIDCount atomic.Int64
)

const maxNodeIDs = 4096

// checkSigned refuses a capability that is obviously not one a node
// signed: no params, params that are not UTF-8, or a signature that is not
// an Ed25519 signature's length. Whether params are canonical JSON and
// the signature verifies is for the kernel to check.
func checkSigned(field, paramsName, sigName, params string, sig []byte) error {
	switch {
	case params == "":
		return fieldErr(field+"."+paramsName, errMissing)
	case !utf8.ValidString(params):
		return fieldErrf(field+"."+paramsName, "not valid UTF-8")
	case len(sig) == 0:
		return fieldErr(field+"."+sigName, errMissing)
	case len(sig) != ed25519.SignatureSize:
		return fieldErrf(field+"."+sigName, "%d bytes, want an Ed25519 signature of %d", len(sig), ed25519.SignatureSize)
	}
	return nil
}

// RevocationFrame returns the frame that tells another node c is revoked.
// c must be signed and its issuer must name its node by id; otherwise the
// result is a *FieldError for field "Capability" or below.
func RevocationFrame(c kernel.SignedCapability) (*p2pv1.Frame, error) {
	pc, err := remoteCapability("Capability", c)
	if err != nil {
		return nil, err
	}
	return &p2pv1.Frame{Kind: &p2pv1.Frame_Revocation{Revocation: &p2pv1.Revocation{Capability: pc}}}, nil
}

// FromRemoteFrame converts a frame that arrived from another node. It
// returns either a message (from a Delivery) or a revoked capability (from
// a Revocation), never both; a frame that breaks a rule of wire.proto is
// refused with a *FieldError naming the field by its path in the frame,
// e.g. "delivery.message.request.capabilities[2].signature". It checks the
// frame's form only: that the source is the sending peer, that the
// signatures verify and that sizes are within limits is for the kernel
// (Kernel.Receive, Kernel.ReceiveRevocation).
//
// An absent or zero expects_response means no response is expected; an
// absent or empty metadata is ""; empty bytes are nil. Unknown fields are
// ignored. As everywhere in this package, byte slices are shared with f.
func FromRemoteFrame(f *p2pv1.Frame) (*kernel.RemoteMessage, *kernel.SignedCapability, error) {
	if f == nil {
		return nil, nil, fieldErr("frame", errMissing)
	}
	switch k := f.GetKind().(type) {
	case *p2pv1.Frame_Delivery:
		m, err := fromDelivery(k.Delivery)
		if err != nil {
			return nil, nil, err
		}
		return m, nil, nil
	case *p2pv1.Frame_Revocation:
		if k.Revocation == nil {
			return nil, nil, fieldErr("revocation", errMissing)
		}
		c, err := fromRemoteCapability("revocation.capability", k.Revocation.GetCapability())
		if err != nil {
			return nil, nil, err
		}
		return nil, &c, nil
	}
	return nil, nil, fieldErrf("frame", "neither a delivery nor a revocation")
}

var errContext = errors.New("set: a context never leaves the requester's node")

func fromDelivery(d *p2pv1.Delivery) (*kernel.RemoteMessage, error) {
	if d == nil {
		return nil, fieldErr("delivery", errMissing)
	}
	msg := d.GetMessage()
	if msg == nil {
		return nil, fieldErr("delivery.message", errMissing)
	}
	const mf = "delivery.message"
	src, err := remoteAddress(mf+".source", msg.GetSource())
	if err != nil {
		return nil, err
	}
	dst, err := remoteAddress(mf+".target", msg.GetTarget())
	if err != nil {
		return nil, err
	}
	if len(msg.GetContext()) > 0 {
		return nil, fieldErr(mf+".context", errContext)
	}
	m := &kernel.RemoteMessage{ID: msg.GetId(), Source: src, Target: dst}
	switch k := msg.GetKind().(type) {
	case *weftv1.Message_Request:
		err = fromRemoteRequest(m, k.Request)
	case *weftv1.Message_Response:
		err = fromRemoteResponse(m, k.Response)
	case *weftv1.Message_Error:
		err = fromRemoteError(m, k.Error)
	default:
		err = fieldErrf(mf, "none of request, response and error is set")
	}
	if err != nil {
		return nil, err
	}
	if b := msg.GetBlob(); b != nil {
		if m.Kind == kernel.KindError {
			return nil, fieldErrf(mf+".blob", "set on an error: an error carries no blob")
		}
		if !utf8.ValidString(b.GetMime()) {
			return nil, fieldErrf(mf+".blob.mime", "not valid UTF-8")
		}
		m.Blob = &kernel.Blob{Mime: b.GetMime(), Bytes: nonEmpty(b.GetBytes())}
	}
	if c := d.GetMessaging(); c != nil {
		if m.Kind != kernel.KindRequest {
			return nil, fieldErrf("delivery.messaging", "set on %s: only a request carries one", aKind(m.Kind))
		}
		sc, err := fromRemoteCapability("delivery.messaging", c)
		if err != nil {
			return nil, err
		}
		m.Messaging = &sc
	}
	return m, nil
}

func fromRemoteRequest(m *kernel.RemoteMessage, r *weftv1.Request) error {
	const f = "delivery.message.request"
	if r == nil {
		return fieldErr(f, errMissing)
	}
	timeout, err := duration(f+".expects_response", r.GetExpectsResponse())
	if err != nil {
		return err
	}
	caps, err := fromRemoteShared(f, r.GetMetadata(), r.GetCapabilities())
	if err != nil {
		return err
	}
	m.Kind = kernel.KindRequest
	m.Inherit, m.ExpectsResponse = r.GetInherit(), timeout
	m.Body, m.Metadata, m.Capabilities = nonEmpty(r.GetBody()), r.GetMetadata(), caps
	return nil
}

func fromRemoteResponse(m *kernel.RemoteMessage, r *weftv1.Response) error {
	const f = "delivery.message.response"
	if r == nil {
		return fieldErr(f, errMissing)
	}
	caps, err := fromRemoteShared(f, r.GetMetadata(), r.GetCapabilities())
	if err != nil {
		return err
	}
	m.Kind = kernel.KindResponse
	m.Inherit = r.GetInherit()
	m.Body, m.Metadata, m.Capabilities = nonEmpty(r.GetBody()), r.GetMetadata(), caps
	return nil
}

// fromRemoteShared checks the metadata and converts the capabilities of
// the request or response at field.
func fromRemoteShared(field, metadata string, caps []*weftv1.Capability) ([]kernel.SignedCapability, error) {
	if !utf8.ValidString(metadata) {
		return nil, fieldErrf(field+".metadata", "not valid UTF-8")
	}
	return convertAll(field+".capabilities", caps, fromRemoteCapability)
}

func fromRemoteError(m *kernel.RemoteMessage, e *weftv1.SendError) error {
	const f = "delivery.message.error"
	if e == nil {
		return fieldErr(f, errMissing)
	}
	kind, err := FromErrorKind(e.GetKind())
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			err = fe.Err
		}
		return fieldErr(f+".kind", err)
	}
	target, err := remoteAddress(f+".target", e.GetTarget())
	if err != nil {
		return err
	}
	switch detail := e.GetDetail(); {
	case len(detail) > p2pv1.MaxErrorDetailBytes:
		return fieldErrf(f+".detail", "%d bytes, at most %d allowed", len(detail), p2pv1.MaxErrorDetailBytes)
	case !utf8.ValidString(detail):
		return fieldErrf(f+".detail", "not valid UTF-8")
	}
	if e.GetMessage() != nil {
		return fieldErrf(f+".message", "set: the failed request never leaves the requester's node")
	}
	if len(e.GetContext()) > 0 {
		return fieldErr(f+".context", errContext)
	}
	m.Kind = kernel.KindError
	m.Error = &kernel.SendError{Kind: kind, Target: target, Detail: e.GetDetail()}
	return nil
}

func fromRemoteCapability(field string, c *weftv1.Capability) (kernel.SignedCapability, error) {
	if c == nil {
		return kernel.SignedCapability{}, fieldErr(field, errMissing)
	}
	issuer, err := remoteAddress(field+".issuer", c.GetIssuer())
	if err != nil {
		return kernel.SignedCapability{}, err
	}
	if err := checkSigned(field, "params", "signature", c.GetParams(), c.GetSignature()); err != nil {
		return kernel.SignedCapability{}, err
	}
	return kernel.SignedCapability{
		Capability: kernel.Capability{Issuer: issuer, Params: c.GetParams()},
		Signature:  c.GetSignature(),
	}, nil
}

// remoteAddress parses an address from the wire: a full node-id address.
func remoteAddress(field, s string) (kernel.Address, error) {
	a, err := parseAddress(field, s)
	if err != nil {
		return kernel.Address{}, err
	}
	if err := checkRemoteNode(field, a.Node); err != nil {
		return kernel.Address{}, err
	}
	return a, nil
}

// aKind is "a request", "a response" or "an error".
func aKind(k kernel.Kind) string {
	if k == kernel.KindError {
		return "an " + k.String()
	}
	return "a " + k.String()
}

// nonEmpty is b, or nil when b is empty: the wire does not tell an empty
// field from an absent one, and neither does the kernel.
func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
