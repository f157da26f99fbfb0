// Package controlapi owns the control API of a weft node: the Connect RPC
// handlers of its nine services (over Connect, gRPC and gRPC-Web, with gRPC
// server reflection), authentication by bearer token, the audit log of
// every call that changes the node, and the mapping of domain errors to
// Connect codes (errors.go, the only place that knows it).
//
// Every call speaks as the node's owner, through operator:sys:weft; the
// caller is whoever may reach the listener (the Unix socket's permissions)
// and, when a token is configured, present it.
package controlapi
