// Package p2pv1 owns the wire between weft nodes: the generated Frame,
// Delivery and Revocation of api/proto/weft/p2p/v1/wire.proto (run `make
// generate`) and the constants of the protocol they travel on. Messages
// inside a frame are the shared api/weftv1 types; framing on a stream is
// p2p/wire's, conversion to and from the kernel's types kernel/pbconv's.
package p2pv1

// ProtocolID is the libp2p protocol id of node-to-node messaging. Its
// version changes only for a change an older node cannot ignore (see
// wire.proto).
const ProtocolID = "/weft/msg/3"

// MaxErrorDetailBytes bounds the detail of an error on the wire, the
// sentence for people that comes back with a failed request. A node
// shortens a longer one before sending it and refuses a longer one it
// receives.
const MaxErrorDetailBytes = 1024
