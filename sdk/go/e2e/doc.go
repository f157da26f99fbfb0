// Package e2e holds the end-to-end tests of the Go SDK: they build the Go
// examples (and testdata/probe) for GOOS=wasip1 and run them through a
// real kernel and wasm.Host. It has no code of its own.
package e2e
