// Package dirsync owns making a directory's entries durable: after a
// rename or create in it, Sync makes the change survive a crash.
package dirsync

import "os"

// Sync fsyncs directory dir.
func Sync(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
