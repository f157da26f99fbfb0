// Package driver owns the native-driver contract and is the one package a
// driver author imports (with the API types of api/weftv1): the Driver
// interface a driver implements, the Node it talks back to, the go-plugin
// handshake and shim, the gRPC client and server that carry the contract
// between weftd and a driver subprocess, Serve for a driver's main, and
// Harness for testing a driver without a node.
//
// A driver is a small main:
//
//	func main() { driver.Serve(&clock{}) }
//
// where clock implements Driver: Start is called once per run with the
// driver's address, configuration and Node; Handle is called for each
// request addressed to the driver, concurrently, and returns its answer.
// docs/drivers.md walks through writing, building, declaring and
// debugging one.
package driver
