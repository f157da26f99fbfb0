package backup_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/weftos/weft/backup"
	"github.com/weftos/weft/backup/s3"
	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/internal/s3test"
	"github.com/weftos/weft/store"
	"github.com/weftos/weft/store/storetest"
)

// TestRunDuringWritesIsOneInstant backs a node up to two buckets of a
// real S3 server while writers go on changing a state, a key-value pair
// and a drive file in turn, and restores every snapshot from both: each is
// one instant of every writer (the store's point-in-time check), taken
// between the run's start and its staging's end.
func TestRunDuringWritesIsOneInstant(t *testing.T) {
	const (
		writers = 4
		runs    = 3
	)
	srv := s3test.Start(t, 2)
	var targets []backup.Target
	for i, bucket := range srv.Buckets {
		be, err := s3.New(s3.Config{Name: fmt.Sprint("t", i), Endpoint: srv.Endpoint, Bucket: bucket, Prefix: "node",
			Region: srv.Region, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, backup.Target{Name: fmt.Sprint("t", i), Backend: be})
	}
	n := newNode(t) // with storetest's package, database and drive
	key := testKey(t)
	e := newEngine(t, n, key, targets, nil)
	ctx := context.Background()
	if _, err := e.Init(ctx, nil); err != nil {
		t.Fatal(err)
	}

	ws := storetest.Start(n.st, n.drives, writers)
	defer ws.Stop()

	// Each run starts its staging once every writer has written since
	// the last, and the writers go on while it stages and uploads.
	type taken struct {
		ids         []string // per target
		before, end []int    // every writer's step as staging began, and once it was done
	}
	var snaps []taken
	last := make([]int, writers)
	for r := range runs {
		var tk taken
		var waitErr error
		res, err := e.Run(ctx, nil, func(p backup.Progress) {
			switch p.Phase {
			case "stage":
				tk.before, waitErr = ws.WaitPast(last)
			case "open":
				var err error
				tk.end, err = ws.Now()
				waitErr = errors.Join(waitErr, err)
			}
		})
		if err != nil || waitErr != nil {
			t.Fatalf("run %d: %v, %v", r, err, waitErr)
		}
		for _, rr := range res {
			if rr.Err != nil {
				t.Fatalf("run %d to %s: %v", r, rr.Target, rr.Err)
			}
			tk.ids = append(tk.ids, rr.Snapshot)
		}
		snaps = append(snaps, tk)
		last = tk.end
	}
	if err := ws.Stop(); err != nil {
		t.Fatal(err)
	}

	for r, tk := range snaps {
		for i, tg := range targets {
			dst := filepath.Join(t.TempDir(), "restored")
			if err := os.Mkdir(dst, 0o700); err != nil {
				t.Fatal(err)
			}
			_, err := backup.Restore(ctx, backup.RestoreConfig{Target: tg, Key: key, DataDir: dst, Snapshot: tk.ids[i],
				Names: []string{store.FileName, "drives", "packages", identity.KeyFile}, Required: []string{store.FileName, identity.KeyFile}})
			if err != nil {
				t.Fatalf("restore run %d from %s: %v", r, tg.Name, err)
			}
			st, err := store.Open(filepath.Join(dst, store.FileName), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			state, kv, file, err := storetest.Steps(st, filepath.Join(dst, "drives"), writers)
			st.Close()
			if err != nil {
				t.Fatalf("run %d from %s: %v", r, tg.Name, err)
			}
			if err := storetest.Instant(state, kv, file); err != nil {
				t.Errorf("run %d from %s is not one instant: %v", r, tg.Name, err)
			}
			for w := range writers {
				// Step n's state is written before the writer says n is
				// done: the instant may show one step past tk.end.
				if state[w] < tk.before[w] || state[w] > tk.end[w]+1 {
					t.Errorf("run %d from %s: writer %d at step %d; it was at %d when staging began and %d when it ended",
						r, tg.Name, w, state[w], tk.before[w], tk.end[w])
				}
			}
		}
	}
}
