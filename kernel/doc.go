// Package kernel owns weft's process model: process names and addresses,
// requests and responses and their routing, bounded mailboxes, the
// unforgeable capabilities a process holds, and the process table (start,
// spawn, kill, on_exit, restore after a restart). It knows a process only
// through the Process interface and keeps its own plain Go types; the Wasm
// host, native drivers, storage, the control API and the network plug in
// from above through the small interfaces declared here (Process,
// Keyring, StateStore, TableStore, Clock).
package kernel
