// Package p2p owns this node on the network: the libp2p host whose
// identity is the node's Ed25519 key (so its peer id is the node id), the
// kernel's Transport to other nodes, the peers it knows (peers.json) and
// the aliases it keeps (aliases.json) in the data directory, connecting,
// pinging and listing peers, and circuit relay v2, as a service for
// others and as reservations on static relays.
//
// The host speaks TCP and QUIC, secured by Noise or TLS, with yamux over
// TCP, under the libp2p resource manager (Limits: connections, streams and
// memory, in all and per peer) and a connection manager that never closes
// bootstrap peers or relays; a connection gater lets only nodes (peers
// with Ed25519 keys) past the security handshake. Hole punching (DCUtR) is on, so two nodes
// that met through a relay try to connect directly; it needs real NATs,
// which the tests here do not have.
//
// # Messages
//
// Every message to another node is one frame (p2p/wire, api/p2pv1) on a
// stream of its own of protocol /weft/msg/1: the sender opens a stream,
// writes the frame and closes its side; the receiver reads exactly one
// frame, hands it to its kernel, and closes the stream (or resets it with
// a code that says why it refused the frame, see below). A stream per
// message rather than one long stream per peer because streams on a
// yamux or QUIC connection are independent and cheap: a large message or
// a slow reader holds up only its own stream, never the messages behind
// it, and nothing on the wire needs matching a reply to a request (the
// kernel matches answers by node and request id). The cost is a stream
// open per message, which with libp2p's lazy protocol negotiation is no
// extra round trip (BenchmarkLibp2pFloor measures it). Two messages to
// the same node are not guaranteed to arrive in the order they were
// sent.
//
// The source node of a frame is the authenticated peer of its stream,
// never a field of the frame: the kernel refuses a frame whose source
// names another node (kernel.ErrSpoofed), and it is dropped, counted and
// logged here.
//
// Send returns at once. A message waits in its node's queue (at most
// QueueLength; past it Send fails offline) for one of the node's senders
// (at most four at once), which dials the node if it is not connected and
// opens the message's stream. Several senders, because a stream open and
// a write cost tens of microseconds each, and because a large message
// writing slowly under flow control must not hold up the small ones behind
// it. A node that cannot be reached within DialTimeout (default 10 s)
// fails the message, and everything queued behind it, offline through
// kernel.Undelivered. A frame over wire.MaxFrameBytes of this node's
// limits fails too_large at once; one over the receiver's smaller limits
// is reset by the receiver with a code the sender turns into too_large.
// A message that finds this node's streams to the node all in use (the
// resource manager's limit) fails mailbox_full: busy, not gone.
// The receiver reserves the memory of a frame in the stream's resource
// scope as it reads it, so frames being read count against the peer's
// and the node's memory limits; one that does not fit is reset with a
// code the sender turns into mailbox_full.
// A frame that is accepted but lost with its connection is not reported:
// its request ends as timeout, as one to a process that never answers.
//
// Inbound requests are rate-limited per node (InboundRate, InboundBurst).
// A request over the limit that expects a response is answered
// mailbox_full at once, as a full mailbox would be, so its sender learns
// at once rather than at its timeout; one that expects none is dropped.
// Both are counted. Answers to this node's own requests are never limited.
//
// # Finding nodes
//
// A node is dialled at the addresses the peerstore has for it, which
// include every address in peers.json: what identify told this node each
// peer listens on (relayed addresses included) and the addresses it was
// connected to with Connect. The book is written atomically when it
// changes (at most every 30 s) and when the node closes. Bootstrap peers
// are dialled at start and again, with backoff, whenever they are lost.
package p2p
