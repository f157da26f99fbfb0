// Package weftv1 owns the protobuf message types that every edge of weft
// shares — the control API, the driver protocol and the wire between nodes:
// Capability, Blob, Request, Response, SendError and Message. It is
// generated from api/proto/weft/v1/types.proto (run `make generate`) and
// holds no service stubs, so importing it pulls in no gRPC or Connect.
//
// The kernel keeps its own Go types and converts to and from these at
// each edge; names and addresses travel here as unvalidated strings.
package weftv1
