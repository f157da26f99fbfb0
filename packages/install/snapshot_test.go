package install_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/packages/install"
	"github.com/weftos/weft/store"
)

// snapNode is a node opened as weftd opens it for snapshots: one Barrier
// and one Changes shared by the store, the drives and the registry.
type snapNode struct {
	examples string // the built examples
	tmp      string
	st       *store.Store
	drives   *store.Drives
	k        *kernel.Kernel
	reg      *install.Registry
	changes  *store.Changes
}

func newSnapNode(t *testing.T) *snapNode {
	t.Helper()
	examples, host := setup(t)
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	b, c := new(store.Barrier), new(store.Changes)
	st, err := store.Open(filepath.Join(tmp, store.FileName), store.Options{Barrier: b, Changes: c})
	if err != nil {
		t.Fatal(err)
	}
	drives, err := store.OpenDrives(filepath.Join(tmp, "drives"), st.Usage())
	if err != nil {
		t.Fatal(err)
	}
	drives.UseBarrier(b)
	drives.UseChanges(c)
	k, err := kernel.New(kernel.Config{Keyring: key, State: st, Table: st,
		Restart: kernel.RestartPolicy{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, Stable: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := k.Close(ctx); err != nil {
			t.Errorf("kernel close: %v", err)
		}
		_ = drives.Close()
		_ = st.Close()
	})
	reg, err := install.OpenRegistry(filepath.Join(tmp, "packages"), k, host, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg.UseBarrier(b)
	reg.UseChanges(c)
	return &snapNode{examples: examples, tmp: tmp, st: st, drives: drives, k: k, reg: reg, changes: c}
}

// snapRecord is what the check reads of an install record.
type snapRecord struct {
	ID            string   `json:"id"`
	State         string   `json:"state"`
	Processes     []string `json:"processes"`
	ArchiveSHA256 string   `json:"archive_sha256"`
}

// checkSnapshot checks one snapshot of the node: for every package, its
// archive and its record together or neither, the archive the one the
// record names; a record marked installed only with all its processes in
// the snapshot's process table; no record, no process of the package in
// the table. It returns the packages' states ("none" for no files) and
// what is wrong.
func checkSnapshot(into string, pkgs []kernel.PackageId) (map[kernel.PackageId]string, error) {
	regDir := filepath.Join(into, "packages")
	entries, err := os.ReadDir(regDir)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".zip") && !strings.HasSuffix(e.Name(), ".json") {
			errs = append(errs, fmt.Errorf("unexpected file %s in the registry", e.Name()))
		}
	}
	st, err := store.Open(filepath.Join(into, store.FileName), store.Options{})
	if err != nil {
		return nil, err
	}
	table, err := st.Processes()
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	inTable := map[kernel.PackageId][]string{}
	for key := range table {
		p, err := kernel.ParseProcessId(key)
		if err != nil {
			return nil, fmt.Errorf("table key %q: %w", key, err)
		}
		inTable[p.PackageId()] = append(inTable[p.PackageId()], key)
	}
	states := map[kernel.PackageId]string{}
	for _, id := range pkgs {
		base := filepath.Join(regDir, id.Package+"@"+id.Publisher)
		zip, zerr := os.ReadFile(base + ".zip")
		recJSON, rerr := os.ReadFile(base + ".json")
		switch {
		case os.IsNotExist(zerr) && os.IsNotExist(rerr):
			states[id] = "none"
			if len(inTable[id]) > 0 {
				errs = append(errs, fmt.Errorf("%s has neither archive nor record, but processes %v in the table", id, inTable[id]))
			}
			continue
		case zerr != nil || rerr != nil:
			errs = append(errs, fmt.Errorf("%s: archive and record not together: archive %v, record %v", id, zerr, rerr))
			continue
		}
		var rec snapRecord
		if err := json.Unmarshal(recJSON, &rec); err != nil {
			return nil, fmt.Errorf("record of %s: %w", id, err)
		}
		states[id] = rec.State
		if sum := sha256.Sum256(zip); hex.EncodeToString(sum[:]) != rec.ArchiveSHA256 {
			errs = append(errs, fmt.Errorf("%s: the archive is not the one its record names", id))
		}
		if rec.State == "installed" {
			for _, p := range rec.Processes {
				if _, ok := table[p]; !ok {
					errs = append(errs, fmt.Errorf("%s is installed but its process %s is not in the table (%v)", id, p, inTable[id]))
				}
			}
		}
	}
	return states, errors.Join(errs...)
}

// TestRegistrySnapshotsSeeWholeInstalls: a goroutine installs and
// uninstalls two packages in a loop while real store.Snapshot copies are
// taken with the registry as an extra directory: by the test, each once
// something changed since the last (at whatever instant that falls), and
// by the installer itself after every change of the registry's files (at
// every boundary between groups, so a group split in two is caught every
// time). Every snapshot must hold each package's archive and record
// together or neither, with the store-side records that go with them
// (checkSnapshot).
func TestRegistrySnapshotsSeeWholeInstalls(t *testing.T) {
	n := newSnapNode(t)
	zips := []struct {
		id  kernel.PackageId
		zip []byte
	}{
		{echoPkg, zipOf(t, filepath.Join(n.examples, "echo"))},
		{kernel.PackageId{Package: "counter", Publisher: "examples"}, zipOf(t, filepath.Join(n.examples, "counter"))},
	}
	pkgs := []kernel.PackageId{zips[0].id, zips[1].id}

	var mu sync.Mutex
	seen := map[string]int{}
	taken := 0
	var problems []error
	snap := func(who string) error {
		mu.Lock()
		taken++
		into := filepath.Join(n.tmp, fmt.Sprintf("snap-%d", taken))
		mu.Unlock()
		if err := store.Snapshot(n.st, n.drives, into, map[string]string{"packages": filepath.Join(n.tmp, "packages")}); err != nil {
			return err
		}
		states, err := checkSnapshot(into, pkgs)
		mu.Lock()
		for id, state := range states {
			seen[who+" "+id.Package+" "+state]++
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("%s snapshot %s: %w", who, into, err))
		}
		mu.Unlock()
		return os.RemoveAll(into)
	}
	install.AfterChange(n.reg, func() {
		if err := snap("installer"); err != nil {
			t.Error(err)
		}
	})

	const minRounds, minSnapshots = 3, 20
	stop := make(chan struct{})
	var rounds sync.WaitGroup // done once minRounds have been made
	rounds.Add(minRounds)
	errc := make(chan error, 1)
	go func() {
		errc <- func() error {
			for i := 0; ; i++ {
				for _, z := range zips {
					if _, already, err := n.reg.Install(z.zip, install.Approval{All: true}); err != nil || already {
						return fmt.Errorf("round %d: install %s: already %v, %v", i, z.id, already, err)
					}
				}
				for _, z := range zips {
					if _, err := n.reg.Uninstall(context.Background(), z.id); err != nil {
						return fmt.Errorf("round %d: uninstall %s: %v", i, z.id, err)
					}
				}
				if i < minRounds {
					rounds.Done()
				}
				select {
				case <-stop:
					return nil
				default:
				}
			}
		}()
	}()
	enough := make(chan struct{})
	go func() { rounds.Wait(); close(enough) }()

	// As a backup scheduler would, the test takes its next snapshot once
	// something changed since the last began.
	for s := 1; ; s++ {
		seq := n.changes.Seq()
		if err := snap("test"); err != nil {
			t.Fatal(err)
		}
		if s >= minSnapshots && closed(enough) {
			break
		}
		select {
		case <-n.changes.Changed(seq):
		case err := <-errc:
			t.Fatalf("the installer stopped: %v", err)
		}
	}
	close(stop)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, err := range problems {
		t.Error(err)
	}
	t.Logf("%d snapshots; package states seen, by who took the snapshot: %v", taken, seen)
}

// closed reports whether ch is closed, without waiting.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestRegistryNotesChanges: installs and uninstalls note their file
// changes in the registry's Changes, once per group (two each: the archive
// with the record marked installing, then installed; the record marked
// removing, then both files gone); inspecting and listing note nothing.
func TestRegistryNotesChanges(t *testing.T) {
	n := newRegNode(t)
	var c store.Changes // the registry's alone, apart from the store's
	n.reg.UseChanges(&c)
	zip := n.exampleZip("echo", nil)
	if _, err := n.reg.Inspect(zip); err != nil {
		t.Fatal(err)
	}
	n.reg.List()
	n.reg.Get(echoPkg)
	if s := c.Seq(); s != 0 {
		t.Fatalf("Inspect, List and Get noted %d changes", s)
	}
	ch := c.Changed(0)
	n.install(zip, install.Approval{All: true})
	if s := c.Seq(); s != 2 {
		t.Fatalf("install noted %d changes, want 2", s)
	}
	<-ch // closed by the install's changes
	if _, already, err := n.reg.Install(zip, install.Approval{All: true}); err != nil || !already {
		t.Fatalf("second install: already %v, %v", already, err)
	}
	if s := c.Seq(); s != 2 {
		t.Fatalf("an install of what is installed noted %d changes", s-2)
	}
	if _, err := n.reg.Uninstall(context.Background(), echoPkg); err != nil {
		t.Fatal(err)
	}
	if s := c.Seq(); s != 4 {
		t.Fatalf("uninstall noted %d changes, want 2", s-2)
	}
}
