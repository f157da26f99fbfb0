// Package plugins owns weftd's side of native drivers: their
// declarations (from weftd.toml), launching each as a go-plugin
// subprocess (checksum checked, automatic mTLS, parent-death signal,
// rlimits, its output in weftd's log) or in-process from a factory, and
// the kernel.Process that makes a running driver a process like any
// other: requests addressed to it are handed to the driver concurrently
// (deferred, answered when the driver answers), its sends and store
// operations go through the kernel and procstore with its capabilities,
// and a driver that exits, crashes or fails its health check ends the
// run, so that the kernel fails what waited on it and applies its
// on_exit. The contract itself, and what driver authors import, is
// plugins/driver.
package plugins
