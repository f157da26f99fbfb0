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
// with Ed25519 keys) past the security handshake. Hole punching (DCUtR)
// is on, so two nodes that met through a relay try to connect directly
// (tested on go-libp2p's simulated NATs, holepunch_test.go); once they
// are, a stream kept through the relay is closed when next taken, and the
// messages move to the direct connection.
//
// # Messages
//
// Every message to another node is one frame (p2p/wire, api/p2pv1) on a
// stream of protocol /weft/msg/3. A sender writes a batch of frames on a
// stream in one write: the message it took from the node's queue and, if
// that is small, the small ones queued behind it (at most 64, and 256 KiB
// in all; a frame over 256 KiB goes alone). The receiver reads each, hands
// it to its kernel (which only queues it for the process, never waits for
// it) and writes one status byte back for it, ackTaken; the
// acknowledgements of frames that came together go back in one write.
// The sender has the stream again once every frame of its batch has its
// status. Batches because each write is a system call and a Noise message
// (yamux does not coalesce them): with 64 requests in flight a round trip
// costs 0.4 writes rather than 4, and the node carries four times the
// messages a second (docs/performance.md).
//
// A receiver refuses a frame in band: the statuses of the frames it took
// before it, then the refusal's (statusTooLarge, statusNoMemory,
// statusBadFrame), after which it takes nothing more from the stream; it
// closes its side, reads and discards what the sender wrote after (at
// most 256 KiB, a batch), and closes the stream once the sender has, or
// resets it with the refusal's code if the sender writes on (a frame of
// over 256 KiB, written alone). The sender fails the refused message with
// the status's kind (too_large, mailbox_full) and sends the frames behind
// it, which the receiver did not take, on another stream: no frame
// arrives twice.
//
// The streams are kept: each peer has a pool of open streams, at most one
// per sender (four). A sender takes an idle stream (or opens one), writes
// its batch, waits for the statuses and puts the stream back. Kept rather
// than one stream per message because opening and closing a stream costs
// writes of its own (7 a message against 2: the frame and its
// acknowledgement): a request and its answer on new streams took 2.1–2.4
// times a bare libp2p round trip on a new stream, on kept ones they take
// 0.7–1.0 times (docs/performance.md). One batch at a time on a stream,
// and several streams, rather than one multiplexed stream per peer,
// because streams on a yamux or QUIC connection are independent: a large
// message or a slow reader holds up only its own stream, never the
// messages behind it, which other senders write on other streams; and
// nothing on the wire needs matching a reply to a request (the kernel
// matches answers by node and request id). A stream that carried a frame
// over 256 KiB is closed after it rather than kept, so that the receive
// window yamux grew for it (which counts against the peer's memory while
// the stream lives) is given back. Two messages to the same node are not
// guaranteed to arrive in the order they were sent.
//
// A sender closes a stream that has waited in its pool for
// StreamIdleTimeout (default 30 s; a sweep every half of it finds it), and
// a receiver closes one on which no frame has begun for twice
// StreamIdleTimeout, so that with the same setting on both nodes a
// receiver never closes a stream its sender still keeps. If it does (a
// peer with a shorter setting), the sender finds the stream closed
// without the statuses, which a receiver never does to a frame it read,
// and sends the frames it did not take on another stream.
//
// The source node of a frame is the authenticated peer of its stream,
// never a field of the frame: the kernel refuses a frame whose source
// names another node (kernel.ErrSpoofed), and it is dropped, counted and
// logged here.
//
// Send returns at once. A message waits in its node's queue (at most
// QueueLength; past it Send fails offline) for one of the node's senders
// (at most four at once), which dials the node if it is not connected and
// writes the message, with those queued behind it, on a kept stream.
// Several senders, because each waits a round trip for its statuses, and
// because a large message
// writing slowly under flow control must not hold up the small ones behind
// it. A node that cannot be reached within DialTimeout (default 10 s)
// fails the message, and everything queued behind it, offline through
// kernel.Undelivered. A frame over wire.MaxFrameBytes of this node's
// limits fails too_large at once; one over the receiver's smaller limits
// is refused by the receiver, and the sender fails it too_large.
// A message that needs a new stream and finds this node's streams to the
// node all in use (the resource manager's limit) fails mailbox_full:
// busy, not gone. The receiver reserves the memory of a frame in the
// stream's resource scope as it reads it, and releases it once the frame
// is handed to its kernel, so frames being read count against the peer's
// and the node's memory limits (besides a 4 KiB read buffer per stream);
// one that does not fit is refused, and the sender fails it mailbox_full.
// A frame written but not acknowledged (its connection lost, its stream reset without a code) is
// not reported: it may have been taken, and its request ends as timeout,
// as one to a process that never answers.
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
//
// Two more ways, both off by default, find nodes no one named
// (discovery.go). With MDNS on, the node announces its node id and listen
// addresses on the local network (multicast DNS, service _weft._udp, so
// only weft nodes answer) and connects to the nodes it finds announced.
// With DHT on, it joins weft's Kademlia DHT (protocol /weft/kad/1.0.0,
// apart from IPFS's Amino DHT; peer routing only, no values or provider
// records) through its bootstrap peers, and a message to a node with no
// known address looks the node up there, within the same DialTimeout,
// before dialling it.
package p2p
