package kernel

import (
	"time"
)

// RemoteMessage is a message crossing nodes: a request to a process on
// another node, or the answer (a response or an error) to one. Addresses
// carry node ids, never "our" or an alias. The transport carries it as it
// is; the receiving kernel checks everything again (Kernel.Receive).
type RemoteMessage struct {
	Kind Kind
	// ID is the request's id on the requester's node; an answer carries
	// the id of the request it answers. An answer is matched by the node
	// it came from and this id.
	ID     uint64
	Source Address
	Target Address
	// Inherit is set on a request or response that inherited from the
	// message its sender was handling.
	Inherit bool
	// ExpectsResponse is, on a request, how long the requester waits for
	// the answer; zero when it wants none.
	ExpectsResponse time.Duration
	Body            []byte
	Metadata        string
	// Capabilities are attached to the message, each signed by its
	// issuer's node; the receiver verifies every one and refuses the
	// message if one does not verify.
	Capabilities []SignedCapability
	// Messaging is, on a request to a process that is not public, the
	// sender's messaging capability for the target, signed by the
	// target's node, which checks it (and that it is not revoked).
	Messaging *SignedCapability
	Blob      *Blob
	// Error is set on KindError: its Kind and Detail travel (Target is
	// the address the request was sent to; Context stays on the
	// requester's node, which puts it back).
	Error *SendError
}

// Transport carries RemoteMessages to other nodes. The kernel calls it for
// every request to another node and for every answer to a request that
// came from one; the transport hands what arrives to Kernel.Receive and
// Kernel.ReceiveRevocation, and what it could not deliver to
// Kernel.Undelivered. Its methods must not block on the network.
type Transport interface {
	// Send queues m for node m.Target.Node and returns without waiting
	// for it to travel. An error returned is a *SendError (offline when
	// the node is unknown or its queue is full, too_large over the frame
	// limit) and nothing was sent; a failure found later is reported
	// through Kernel.Undelivered.
	Send(m *RemoteMessage) error
	// Revoke tells node, best effort, that c, issued on this node, is
	// revoked, so that it drops its copies.
	Revoke(node string, c SignedCapability)
}
