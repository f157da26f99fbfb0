package install

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/store"
)

// TestRegistryWritesHoldTheBarrier: while a snapshot holds the store's
// barrier, a registry file change (a record written, a record and its
// archive dropped) waits, and it completes once the barrier is released. (The wait is observed for 200 ms: a window for a
// negative, not synchronisation — the positive side waits on a channel.)
func TestRegistryWritesHoldTheBarrier(t *testing.T) {
	dir := t.TempDir()
	r := &Registry{dir: dir}
	b := &store.Barrier{}
	r.UseBarrier(b)
	r.impl.pkgs = map[kernel.PackageId]*record{}
	r.impl.undo = map[kernel.PackageId]*record{}
	rec := record{ID: "p:pub", State: stateInstalled, info: Installed{ID: kernel.PackageId{Package: "p", Publisher: "pub"}}}
	for _, change := range []struct {
		name string
		do   func() error
		done func() bool
	}{
		{"write", func() error { return r.writeRecord(&rec) }, func() bool { _, err := os.Stat(filepath.Join(dir, "p@pub.json")); return err == nil }},
		{"remove", func() error { return r.dropRecord(&rec) }, func() bool { _, err := os.Stat(filepath.Join(dir, "p@pub.json")); return os.IsNotExist(err) }},
	} {
		release := b.Hold()
		errc := make(chan error, 1)
		go func() { errc <- change.do() }()
		select {
		case err := <-errc:
			release()
			t.Fatalf("%s finished (%v) while the barrier was held", change.name, err)
		case <-time.After(200 * time.Millisecond):
		}
		if change.done() {
			release()
			t.Fatalf("%s took effect while the barrier was held", change.name)
		}
		release()
		if err := <-errc; err != nil {
			t.Fatalf("%s: %v", change.name, err)
		}
		if !change.done() {
			t.Fatalf("%s did not take effect after the release", change.name)
		}
	}
}
