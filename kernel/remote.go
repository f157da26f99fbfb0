package kernel

import (
	"errors"
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

// ErrSpoofed is wrapped by Receive's refusal of a frame whose source node is
// not the peer it came from (or is this node): the transport drops it,
// counts and logs it.
var ErrSpoofed = errors.New("source node is not the sending peer")

// errNotBuilt is returned while the remote path is being built.
var errNotBuilt = errors.New("kernel: remote delivery is not built yet")

// SetTransport sets the transport that carries messages to other nodes. Set
// it once, before processes send; without one (nil) every other node is
// offline.
func (k *Kernel) SetTransport(t Transport) {}

// Receive hands the kernel a RemoteMessage that arrived from node from,
// the authenticated peer's node id: a request to deliver to a process here
// (after the same checks and limits as a local one, re-run here), or the
// answer to a request sent from here. A frame whose source is not from
// is refused with an error wrapping ErrSpoofed and nothing else happens. A
// request refused here is answered back to its requester when it expects
// a response, and its *SendError is returned too, for counting.
func (k *Kernel) Receive(from string, m *RemoteMessage) error { return errNotBuilt }

// ReceiveRevocation hands the kernel a revocation from node from: c, issued
// on from, is revoked, so every local copy is dropped. The issuer's node
// must be from and the signature must verify.
func (k *Kernel) ReceiveRevocation(from string, c SignedCapability) error { return errNotBuilt }

// Undelivered tells the kernel the transport could not deliver m (the node
// was offline past its dial deadline, the frame too large, ...). The
// requester of a request expecting a response gets a SendError of kind with
// detail; an undelivered answer is logged and counted.
func (k *Kernel) Undelivered(m *RemoteMessage, kind ErrorKind, detail string) {}

// SetAlias makes name stand for node in addresses (name@proc:pkg:pub),
// wherever "our" is resolved. name must be a valid node part, not "our" and
// not itself a node id; node must be a node id. The kernel keeps aliases
// in memory only.
func (k *Kernel) SetAlias(name, node string) error { return errNotBuilt }

// RemoveAlias forgets an alias and reports whether it existed.
func (k *Kernel) RemoveAlias(name string) bool { return false }

// Aliases returns a copy of the aliases, name → node id.
func (k *Kernel) Aliases() map[string]string { return nil }
