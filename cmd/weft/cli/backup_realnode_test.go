package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/backup"
	"github.com/weftos/weft/backup/object"
	"github.com/weftos/weft/backup/repo"
	"github.com/weftos/weft/controlapi"
	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/store"
)

// failPuts fails every Put while failing is set: a target that is down.
type failPuts struct {
	object.Backend
	mu      sync.Mutex
	failing bool
}

func (f *failPuts) set(failing bool) {
	f.mu.Lock()
	f.failing = failing
	f.mu.Unlock()
}

func (f *failPuts) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	f.mu.Lock()
	failing := f.failing
	f.mu.Unlock()
	if failing {
		return errors.New("injected: the bucket refuses writes")
	}
	return f.Backend.Put(ctx, name, r, size)
}

// serveBackupNode serves the control API of a real kernel and store
// whose backups go to targets, by a real engine; it returns the socket
// and the engine's key file (a secret no output may hold).
func serveBackupNode(t *testing.T, targets ...backup.Target) (sock string, keyFile []byte) {
	t.Helper()
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	usage := store.NewUsage(0)
	barrier := new(store.Barrier)
	st, err := store.Open(filepath.Join(dataDir, store.FileName), store.Options{Usage: usage, Barrier: barrier})
	if err != nil {
		t.Fatal(err)
	}
	drives, err := store.OpenDrives(filepath.Join(dataDir, "drives"), usage)
	if err != nil {
		t.Fatal(err)
	}
	drives.UseBarrier(barrier)
	k, err := kernel.New(kernel.Config{Keyring: key, State: st, Table: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := k.Close(ctx); err != nil {
			t.Errorf("close kernel: %v", err)
		}
		st.Close()
		if err := drives.Close(); err != nil {
			t.Errorf("close drives: %v", err)
		}
	})
	keyFile, err = backup.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	bkey, err := backup.ParseKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := backup.New(backup.Config{Targets: targets, Key: bkey, Source: backup.Source{Store: st, Drives: drives},
		DataDir: dataDir, NodeID: key.NodeID(), Version: "1.2.3-test"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := controlapi.New(controlapi.Config{Kernel: k, Store: st, Drives: drives, Backups: eng})
	if err != nil {
		t.Fatal(err)
	}
	return serveHandler(t, h), keyFile
}

// fields is a table row's cells.
func fields(out, prefix string) []string {
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, prefix) {
			return strings.Fields(l)
		}
	}
	return nil
}

// Every weft backup command against a real engine over two targets, one
// of which goes down for a run: exit codes, tables, --json, and no secret
// in any output but the recovery key init prints once.
func TestBackupOnRealNode(t *testing.T) {
	memA := object.NewMem("a")
	b := &failPuts{Backend: object.NewMem("b")}
	sock, nodeKey := serveBackupNode(t, backup.Target{Name: "a", Backend: memA}, backup.Target{Name: "b", Backend: b})
	var outputs []string // of every command but init
	run := func(args ...string) result {
		t.Helper()
		res := weft(t, sock, args...)
		outputs = append(outputs, res.stdout, res.stderr)
		return res
	}
	run("kv", "set", "notes:acme", "db", "k", "v").want(t, ExitOK)

	// Before init: each target says what to run; the command fails.
	res := run("backup", "run")
	res.wantErr(t, ExitNode, "backup run: failed on 2 target(s)")
	if strings.Count(res.stdout, "run weft backup init") != 2 {
		t.Fatalf("run before init:\n%s", res.stdout)
	}

	// init makes the recovery key here and prints it once; it opens the
	// repository without the node's key.
	res = weft(t, sock, "backup", "init")
	res.want(t, ExitOK, "a: repository created", "b: repository created", "shown once")
	var recovery *age.X25519Identity
	for l := range strings.Lines(res.stdout) {
		if id, err := age.ParseX25519Identity(strings.TrimSpace(l)); err == nil {
			recovery = id
		}
	}
	if recovery == nil {
		t.Fatalf("init printed no recovery key:\n%s", res.stdout)
	}
	if _, err := repo.Open(t.Context(), memA, recovery); err != nil {
		t.Fatalf("the printed recovery key does not open target a: %v", err)
	}
	res = weft(t, sock, "backup", "init")
	res.want(t, ExitOK, "a: a repository is already there")
	if strings.Contains(res.stdout+res.stderr, "AGE-SECRET-KEY") {
		t.Fatalf("init with nothing created printed a key nothing uses:\n%s", res.stdout)
	}

	res = run("backup", "run")
	res.want(t, ExitOK)
	if strings.Count(res.stderr, "(100%)") != 1 {
		t.Errorf("run: want the 100%% line once:\n%s", res.stderr)
	}
	for _, target := range []string{"a", "b"} {
		if f := fields(res.stdout, target+" "); len(f) < 5 || len(f[1]) != 12 {
			t.Fatalf("run: no snapshot for %s:\n%s", target, res.stdout)
		}
	}

	// b down: a still gets its snapshot; the outcome names b's error.
	b.set(true)
	res = run("backup", "run")
	res.wantErr(t, ExitNode, "failed on 1 target(s)")
	if f := fields(res.stdout, "a "); len(f) < 2 || f[1] == "-" {
		t.Fatalf("run with b down: a has no snapshot:\n%s", res.stdout)
	}
	if !strings.Contains(res.stdout, "refuses writes") {
		t.Fatalf("run with b down: b's error missing:\n%s", res.stdout)
	}
	b.set(false)

	res = run("backup", "ls", "--target", "a")
	res.want(t, ExitOK, "1.2.3-test")
	if n := strings.Count(res.stdout, "\na "); n != 2 {
		t.Fatalf("ls a: %d snapshots, want 2:\n%s", n, res.stdout)
	}
	res = run("--json", "backup", "ls")
	res.want(t, ExitOK)
	var ls weftv1.ListSnapshotsResponse
	if err := protojson.Unmarshal([]byte(res.stdout), &ls); err != nil {
		t.Fatalf("--json ls: %v\n%s", err, res.stdout)
	}
	if l := ls.GetTargets(); len(l) != 2 || len(l[0].GetSnapshots()) != 2 || len(l[1].GetSnapshots()) != 1 ||
		len(l[0].GetSnapshots()[0].GetId()) != 64 || l[0].GetSnapshots()[0].GetNodeId() == "" {
		t.Fatalf("--json ls: %v", &ls)
	}
	// Stable names: protojson's, every field present.
	for _, name := range []string{`"targets"`, `"snapshots"`, `"nodeId"`, `"weftVersion"`, `"addedBytes"`, `"error"`} {
		if !strings.Contains(res.stdout, name) {
			t.Errorf("--json ls lacks %s", name)
		}
	}

	run("backup", "verify", "--read-data").want(t, ExitOK, "a: ok: 2 snapshots", "b: ok: 1 snapshots")

	run("backup", "forget", "--keep-last", "1", "--dry-run", "--target", "a").want(t, ExitOK, "a: keeps 1, would forget 1")
	if res := run("--json", "backup", "ls", "--target", "a"); strings.Count(res.stdout, `"id"`) != 2 {
		t.Fatalf("a dry run forgot:\n%s", res.stdout)
	}
	run("backup", "forget", "--keep-last", "1", "--target", "a").want(t, ExitOK, "a: keeps 1, forgot 1")
	run("backup", "prune", "--target", "a").want(t, ExitOK, "a: freed")
	run("backup", "verify", "--target", "a").want(t, ExitOK, "a: ok: 1 snapshots")

	// Forgetting by id: b's one snapshot, named by a prefix, on every
	// target: a holds no such id and says so; an id no target holds
	// fails; ids and rules together are refused.
	bID := ls.GetTargets()[1].GetSnapshots()[0].GetId()
	run("backup", "forget", "--dry-run", bID[:12]).want(t, ExitOK, "a: keeps 1, would forget 0", bID[:12]+" names no snapshot here", "b: keeps 0, would forget 1")
	run("backup", "forget", bID[:12]).want(t, ExitOK, "b: keeps 0, forgot 1\n  "+bID[:12])
	run("backup", "forget", bID).wantErr(t, ExitNode, "no snapshot on any target is named "+bID)
	run("backup", "forget", "--keep-last", "1", bID).wantErr(t, ExitUsage, "not both")
	run("backup", "forget", "latest").wantErr(t, ExitUsage, `"latest" is not a snapshot id`)
	if res := run("--json", "backup", "ls"); strings.Count(res.stdout, `"id"`) != 1 {
		t.Fatalf("after forgetting b's snapshot by id:\n%s", res.stdout)
	}

	// Keys: the node's and the recovery key on each target; one added
	// and removed; the node's own refused; an unknown one not found.
	res = run("backup", "key", "list")
	res.want(t, ExitOK)
	if n := strings.Count(res.stdout, "X25519"); n != 4 {
		t.Fatalf("key list: %d keys, want 2 a target:\n%s", n, res.stdout)
	}
	other, _ := age.GenerateX25519Identity()
	run("backup", "key", "add", other.Recipient().String(), "--target", "a").want(t, ExitOK, "a ")
	res = run("--json", "backup", "key", "list", "--target", "a")
	var keys weftv1.ListBackupKeysResponse
	if err := protojson.Unmarshal([]byte(res.stdout), &keys); err != nil || len(keys.GetTargets()) != 1 || len(keys.GetTargets()[0].GetKeys()) != 3 {
		t.Fatalf("--json key list: %v\n%s", err, res.stdout)
	}
	removed := 0
	for _, k := range keys.GetTargets()[0].GetKeys() {
		res := run("backup", "key", "remove", "--target", "a", k.GetId())
		switch res.code {
		case ExitOK:
			removed++
			if !strings.Contains(res.stdout, "a: key "+k.GetId()[:12]+" removed") {
				t.Errorf("key remove: %s", res.stdout)
			}
		case ExitNode:
			// The node's own (failed_precondition), or, once two have
			// gone, the last.
			res.wantErr(t, ExitNode, "failed_precondition")
		default:
			t.Fatalf("key remove: %+v", res)
		}
	}
	if removed != 2 {
		t.Fatalf("removed %d keys, want the added and the recovery key", removed)
	}
	run("backup", "key", "remove", "--target", "a", strings.Repeat("ab", 32)).wantErr(t, ExitNode, "not_found")
	run("backup", "key", "remove", "--target", "nope", strings.Repeat("ab", 32)).wantErr(t, ExitNode, "not_found", `"nope"`)
	run("backup", "key", "add", "age1nope").wantErr(t, ExitNode, "invalid_argument: recipient")

	res = run("backup", "status")
	res.want(t, ExitOK, "key:       X25519 age1", "schedule:  on demand")
	if f := fields(res.stdout, "b "); len(f) < 2 || f[len(f)-1] == "-" || !strings.Contains(res.stdout, "refuses writes") {
		t.Errorf("status: b's last error missing:\n%s", res.stdout)
	}
	res = run("--json", "backup", "status")
	var st weftv1.GetBackupStatusResponse
	if err := protojson.Unmarshal([]byte(res.stdout), &st); err != nil {
		t.Fatalf("--json status: %v\n%s", err, res.stdout)
	}
	if ts := st.GetTargets(); len(ts) != 2 || ts[0].GetRuns() != 3 || ts[1].GetFailures() != 2 || st.GetKeyKind() != "X25519" {
		t.Fatalf("--json status: %v", &st)
	}

	// Nothing secret anywhere: not the node's backup key, not a recovery
	// key, not an age identity of any kind.
	all := strings.Join(outputs, "\n")
	for _, l := range bytes.Split(nodeKey, []byte("\n")) {
		if s := string(l); strings.HasPrefix(s, "AGE-SECRET-KEY-") && strings.Contains(all, s) {
			t.Errorf("an output holds the node's backup key")
		}
	}
	if strings.Contains(all, "AGE-SECRET-KEY") || strings.Contains(all, recovery.String()) {
		t.Errorf("an output holds a secret key")
	}
}

// downTarget is a target that stayed down through its retries.
type downTarget struct{ object.Backend }

func (downTarget) err() error {
	return fmt.Errorf("s3 target \"down\": %w: dial tcp 127.0.0.1:9: connection refused (after 3 tries)", object.ErrUnavailable)
}
func (d downTarget) Put(context.Context, string, io.Reader, int64) error { return d.err() }
func (d downTarget) Get(context.Context, string, int64, int64) (io.ReadCloser, error) {
	return nil, d.err()
}
func (d downTarget) Stat(context.Context, string) (object.Info, error)           { return object.Info{}, d.err() }
func (d downTarget) List(context.Context, string, func(object.Info) error) error { return d.err() }
func (d downTarget) Delete(context.Context, string) error                        { return d.err() }
func (downTarget) String() string                                                { return "down" }

// A target that is down fails a call on it as unavailable, naming the
// target; weft does not ask whether weftd runs, since it answered.
func TestBackupTargetDown(t *testing.T) {
	sock, _ := serveBackupNode(t, backup.Target{Name: "down", Backend: downTarget{}})
	res := weft(t, sock, "backup", "key", "remove", "--target", "down", strings.Repeat("ab", 32))
	res.wantErr(t, ExitNode, "unavailable", `"down"`, "connection refused")
	if strings.Contains(res.stderr, "weftd running") {
		t.Fatalf("the hint blames the node, which answered:\n%s", res.stderr)
	}
}

// A node with no backup target answers every weft backup command with
// failed_precondition, saying what to declare.
func TestBackupNotConfigured(t *testing.T) {
	sock := serveNode(t)
	for _, args := range [][]string{{"backup", "status"}, {"backup", "run"}, {"backup", "ls"}, {"backup", "key", "list"}} {
		weft(t, sock, args...).wantErr(t, ExitNode, "failed_precondition: backups are not configured", "[[backup.targets]]")
	}
	// init asks nothing of a node that cannot use it, so a recovery key
	// made for it is never printed.
	res := weft(t, sock, "backup", "init")
	res.wantErr(t, ExitNode, "not configured")
	if strings.Contains(res.stdout+res.stderr, "AGE-SECRET-KEY") {
		t.Fatalf("init printed a key no repository uses:\n%s", res.stdout)
	}
}
