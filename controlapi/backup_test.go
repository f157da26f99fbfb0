package controlapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"filippo.io/age"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/backup"
	"github.com/weftos/weft/backup/object"
)

// downBackend fails every call while down is set.
type downBackend struct {
	object.Backend
	mu   sync.Mutex
	down bool
}

func (d *downBackend) isDown() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return errors.New("injected: the target is down")
	}
	return nil
}

func (d *downBackend) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := d.isDown(); err != nil {
		return err
	}
	return d.Backend.Put(ctx, name, r, size)
}

func (d *downBackend) List(ctx context.Context, prefix string, fn func(object.Info) error) error {
	if err := d.isDown(); err != nil {
		return err
	}
	return d.Backend.List(ctx, prefix, fn)
}

// runBackup runs a backup, failing the test unless the run ends with an
// event carrying its results.
func runBackup(t *testing.T, n *node, targets ...string) []*weftv1.RunBackupEvent {
	t.Helper()
	evs, err := receiveRun(ctxT(t), n, targets...)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// receiveRun is runBackup for any goroutine: it returns what failed.
func receiveRun(ctx context.Context, n *node, targets ...string) ([]*weftv1.RunBackupEvent, error) {
	stream, err := n.bak.RunBackup(ctx, connect.NewRequest(&weftv1.RunBackupRequest{Targets: targets}))
	if err != nil {
		return nil, err
	}
	var evs []*weftv1.RunBackupEvent
	for stream.Receive() {
		evs = append(evs, stream.Msg())
	}
	if err := stream.Err(); err != nil {
		return evs, fmt.Errorf("RunBackup: %w", err)
	}
	if len(evs) == 0 || evs[len(evs)-1].GetResults() == nil {
		return evs, fmt.Errorf("RunBackup sent no result: %v", evs)
	}
	return evs, nil
}

func TestBackupService(t *testing.T) {
	a := object.NewMem("a")
	b := &downBackend{Backend: object.NewMem("b")}
	n := newNode(t, nodeOptions{backupTargets: []backup.Target{{Name: "a", Backend: a}, {Name: "b", Backend: b}}})
	ctx := ctxT(t)
	if _, err := n.stor.KVSet(ctx, connect.NewRequest(&weftv1.KVSetRequest{Package: "notes:acme", Database: "db", Key: []byte("k"), Value: []byte("v")})); err != nil {
		t.Fatal(err)
	}

	// Before init, a run reports each target's missing repository.
	evs := runBackup(t, n)
	for _, r := range evs[len(evs)-1].GetResults() {
		if !strings.Contains(r.GetError(), "weft backup init") {
			t.Fatalf("run before init: %v", r)
		}
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.bak.InitBackups(ctx, connect.NewRequest(&weftv1.InitBackupsRequest{Recipients: []string{"not-a-recipient"}})); err == nil {
		t.Fatal("init with a bad recipient")
	} else {
		wantCode(t, err, connect.CodeInvalidArgument, "recipients[0]")
	}
	init, err := n.bak.InitBackups(ctx, connect.NewRequest(&weftv1.InitBackupsRequest{Recipients: []string{id.Recipient().String()}}))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range init.Msg.GetTargets() {
		if !r.GetCreated() || r.GetError() != "" {
			t.Fatalf("init: %v", r)
		}
	}

	evs = runBackup(t, n)
	last := evs[len(evs)-1]
	if last.GetPhase() != "done" || len(last.GetResults()) != 2 || last.GetTotalBytes() == 0 {
		t.Fatalf("last event: %v", last)
	}
	// Every phase is seen, in order, however fast it went; the results
	// come once, last.
	var phases []string
	for i, ev := range evs {
		if len(phases) == 0 || phases[len(phases)-1] != ev.GetPhase() {
			phases = append(phases, ev.GetPhase())
		}
		if i < len(evs)-1 && ev.GetResults() != nil {
			t.Fatalf("results before the last event: %v", evs)
		}
	}
	if strings.Join(phases, ",") != "stage,open,upload,done" {
		t.Fatalf("phases %v, want stage, open, upload, done", phases)
	}
	for _, r := range last.GetResults() {
		if r.GetError() != "" || len(r.GetSnapshot().GetId()) != 64 || r.GetUploadedBytes() == 0 || r.GetSnapshot().GetNodeId() == "" {
			t.Fatalf("result: %v", r)
		}
	}

	// One target down: the other gets its snapshot; the run is no error.
	b.mu.Lock()
	b.down = true
	b.mu.Unlock()
	evs = runBackup(t, n)
	res := evs[len(evs)-1].GetResults()
	if res[0].GetError() != "" || !strings.Contains(res[1].GetError(), "the target is down") {
		t.Fatalf("run with b down: %v", res)
	}
	st, err := n.bak.GetBackupStatus(ctx, connect.NewRequest(&weftv1.GetBackupStatusRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if ts := st.Msg.GetTargets(); ts[0].GetRuns() != 3 || ts[0].GetLastError() != "" || ts[0].GetLastSuccess() == nil ||
		ts[1].GetFailures() != 2 || !strings.Contains(ts[1].GetLastError(), "down") || st.Msg.GetKeyKind() != "X25519" || !strings.HasPrefix(st.Msg.GetKeyRecipient(), "age1") {
		t.Fatalf("status: %v", st.Msg)
	}
	b.mu.Lock()
	b.down = false
	b.mu.Unlock()

	ls, err := n.bak.ListSnapshots(ctx, connect.NewRequest(&weftv1.ListSnapshotsRequest{Targets: []string{"a"}}))
	if err != nil {
		t.Fatal(err)
	}
	if l := ls.Msg.GetTargets(); len(l) != 1 || len(l[0].GetSnapshots()) != 2 {
		t.Fatalf("ls a: %v", ls.Msg)
	}
	if _, err := n.bak.ListSnapshots(ctx, connect.NewRequest(&weftv1.ListSnapshotsRequest{Targets: []string{"nope"}})); err == nil {
		t.Fatal("ls of an unknown target")
	} else {
		wantCode(t, err, connect.CodeNotFound, "nope")
	}

	vr, err := n.bak.VerifyBackups(ctx, connect.NewRequest(&weftv1.VerifyBackupsRequest{ReadData: true}))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vr.Msg.GetTargets() {
		if !v.GetOk() || v.GetError() != "" || v.GetSnapshots() == 0 {
			t.Fatalf("verify: %v", v)
		}
	}

	if _, err := n.bak.ForgetSnapshots(ctx, connect.NewRequest(&weftv1.ForgetSnapshotsRequest{})); err == nil {
		t.Fatal("forget without a rule")
	} else {
		wantCode(t, err, connect.CodeInvalidArgument, "keep")
	}
	for _, req := range []*weftv1.ForgetSnapshotsRequest{
		{KeepLast: 1, SnapshotIds: []string{"0123abcd"}},
		{SnapshotIds: []string{"latest"}},
		{SnapshotIds: []string{strings.Repeat("z", 1<<20)}},
		{SnapshotIds: make([]string, 1001)},
	} {
		_, err := n.bak.ForgetSnapshots(ctx, connect.NewRequest(req))
		wantCode(t, err, connect.CodeInvalidArgument, "snapshot_ids")
		if err != nil && len(err.Error()) > 1024 {
			t.Errorf("forget's error repeats what it was sent: %d bytes", len(err.Error()))
		}
	}
	fr, err := n.bak.ForgetSnapshots(ctx, connect.NewRequest(&weftv1.ForgetSnapshotsRequest{Targets: []string{"a"}, KeepLast: 1, DryRun: true}))
	if err != nil {
		t.Fatal(err)
	}
	if f := fr.Msg.GetTargets()[0]; len(f.GetKept()) != 1 || len(f.GetRemoved()) != 1 {
		t.Fatalf("forget dry run: %v", f)
	}
	fr, err = n.bak.ForgetSnapshots(ctx, connect.NewRequest(&weftv1.ForgetSnapshotsRequest{Targets: []string{"a"}, KeepLast: 1}))
	if err != nil || fr.Msg.GetTargets()[0].GetError() != "" {
		t.Fatalf("forget: %v, %v", fr, err)
	}
	pr, err := n.bak.PruneBackups(ctx, connect.NewRequest(&weftv1.PruneBackupsRequest{Targets: []string{"a"}}))
	if err != nil || pr.Msg.GetTargets()[0].GetError() != "" {
		t.Fatalf("prune: %v, %v", pr, err)
	}

	// Keys: two each (the node's and the recipient's); add a third;
	// neither the node's own nor an unknown one can go.
	keys, err := n.bak.ListBackupKeys(ctx, connect.NewRequest(&weftv1.ListBackupKeysRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if k := keys.Msg.GetTargets(); len(k) != 2 || len(k[0].GetKeys()) != 2 {
		t.Fatalf("keys: %v", keys.Msg)
	}
	other, _ := age.GenerateX25519Identity()
	added, err := n.bak.AddBackupKey(ctx, connect.NewRequest(&weftv1.AddBackupKeyRequest{Recipient: other.Recipient().String()}))
	if err != nil {
		t.Fatal(err)
	}
	newID := added.Msg.GetTargets()[0].GetKeys()[0].GetId()
	if _, err := n.bak.RemoveBackupKey(ctx, connect.NewRequest(&weftv1.RemoveBackupKeyRequest{Target: "a", Id: newID})); err != nil {
		t.Fatal(err)
	}
	if _, err := n.bak.RemoveBackupKey(ctx, connect.NewRequest(&weftv1.RemoveBackupKeyRequest{Target: "a", Id: newID})); err == nil {
		t.Fatal("removed a key twice")
	} else {
		wantCode(t, err, connect.CodeNotFound)
	}
	keys, _ = n.bak.ListBackupKeys(ctx, connect.NewRequest(&weftv1.ListBackupKeysRequest{Targets: []string{"a"}}))
	var own string
	for _, k := range keys.Msg.GetTargets()[0].GetKeys() {
		if _, err := n.bak.RemoveBackupKey(ctx, connect.NewRequest(&weftv1.RemoveBackupKeyRequest{Target: "a", Id: k.GetId()})); err != nil {
			wantCode(t, err, connect.CodeFailedPrecondition)
			own = k.GetId()
		}
	}
	if own == "" {
		t.Fatal("the node's own key file was removed")
	}
	if _, err := n.bak.RemoveBackupKey(ctx, connect.NewRequest(&weftv1.RemoveBackupKeyRequest{Target: "a", Id: "zz"})); err == nil {
		t.Fatal("removed a key with a bad id")
	} else {
		wantCode(t, err, connect.CodeInvalidArgument, "id")
	}

	// Mutating calls are audited; nothing secret in the logs.
	audits := n.logs.records(t, "audit")
	seen := map[string]bool{}
	for _, r := range audits {
		seen[r["procedure"].(string)] = true
	}
	for _, p := range []string{"/weft.v1.BackupService/RunBackup", "/weft.v1.BackupService/InitBackups", "/weft.v1.BackupService/PruneBackups", "/weft.v1.BackupService/RemoveBackupKey"} {
		if !seen[p] {
			t.Errorf("no audit line for %s", p)
		}
	}
}

func TestBackupServiceNotConfigured(t *testing.T) {
	n := newNode(t, nodeOptions{})
	_, err := n.bak.GetBackupStatus(ctxT(t), connect.NewRequest(&weftv1.GetBackupStatusRequest{}))
	wantCode(t, err, connect.CodeFailedPrecondition, "[[backup.targets]]")
	stream, err := n.bak.RunBackup(ctxT(t), connect.NewRequest(&weftv1.RunBackupRequest{}))
	if err == nil {
		for stream.Receive() {
		}
		err = stream.Err()
	}
	wantCode(t, err, connect.CodeFailedPrecondition, "not configured")
}

// gateBackend blocks every Put while its gate is shut.
type gateBackend struct {
	object.Backend
	mu   sync.Mutex
	gate chan struct{} // nil: open
	hit  chan struct{} // closed by the first Put that waits
	once sync.Once
}

func (g *gateBackend) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate, g.hit = make(chan struct{}), make(chan struct{})
	g.once = sync.Once{}
}

func (g *gateBackend) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.gate)
	g.gate = nil
}

func (g *gateBackend) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	g.mu.Lock()
	gate, hit := g.gate, g.hit
	if gate != nil {
		g.once.Do(func() { close(hit) })
	}
	g.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.Backend.Put(ctx, name, r, size)
}

func TestBackupServiceBusy(t *testing.T) {
	g := &gateBackend{Backend: object.NewMem("g")}
	n := newNode(t, nodeOptions{backupTargets: []backup.Target{{Name: "g", Backend: g}}})
	ctx := ctxT(t)
	if _, err := n.bak.InitBackups(ctx, connect.NewRequest(&weftv1.InitBackupsRequest{})); err != nil {
		t.Fatal(err)
	}
	g.shut()
	type run struct {
		evs []*weftv1.RunBackupEvent
		err error
	}
	done := make(chan run, 1)
	go func() {
		evs, err := receiveRun(ctx, n)
		done <- run{evs, err}
	}()
	<-g.hit

	// While the run waits on its target: another operation is ABORTED,
	// naming what runs; status and listing go on, status with the run's
	// progress.
	_, err := n.bak.PruneBackups(ctx, connect.NewRequest(&weftv1.PruneBackupsRequest{}))
	wantCode(t, err, connect.CodeAborted, "another backup operation is running", "run")
	stream, err := n.bak.RunBackup(ctx, connect.NewRequest(&weftv1.RunBackupRequest{}))
	if err == nil {
		for stream.Receive() {
		}
		err = stream.Err()
	}
	wantCode(t, err, connect.CodeAborted)
	st, err := n.bak.GetBackupStatus(ctx, connect.NewRequest(&weftv1.GetBackupStatusRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if st.Msg.GetRunning() != "run" || st.Msg.GetProgress().GetPhase() != "upload" {
		t.Fatalf("status during a run: %v", st.Msg)
	}
	if _, err := n.bak.ListSnapshots(ctx, connect.NewRequest(&weftv1.ListSnapshotsRequest{})); err != nil {
		t.Fatalf("ls during a run: %v", err)
	}

	g.open()
	first := <-done
	if first.err != nil {
		t.Fatal(first.err)
	}
	if r := first.evs[len(first.evs)-1].GetResults(); len(r) != 1 || r[0].GetError() != "" {
		t.Fatalf("the run: %v", r)
	}
	if _, err := n.bak.PruneBackups(ctx, connect.NewRequest(&weftv1.PruneBackupsRequest{})); err != nil {
		t.Fatalf("prune after the run: %v", err)
	}
	var outcomes []string
	for _, r := range n.logs.records(t, "audit") {
		if r["procedure"] == "/weft.v1.BackupService/PruneBackups" || r["procedure"] == "/weft.v1.BackupService/RunBackup" {
			outcomes = append(outcomes, r["outcome"].(string))
		}
	}
	if strings.Join(outcomes, ",") != "aborted,aborted,ok,ok" {
		t.Errorf("audit outcomes %v, want the refused calls aborted, then run and prune ok", outcomes)
	}
}

// A call on one target fails with that target's error, coded: one with
// no repository yet is FAILED_PRECONDITION and says what to run.
func TestBackupServiceNotInitialized(t *testing.T) {
	n := newNode(t, nodeOptions{backupTargets: []backup.Target{{Name: "a", Backend: object.NewMem("a")}}})
	_, err := n.bak.RemoveBackupKey(ctxT(t), connect.NewRequest(&weftv1.RemoveBackupKeyRequest{Target: "a", Id: strings.Repeat("ab", 32)}))
	wantCode(t, err, connect.CodeFailedPrecondition, "weft backup init")
	ls, err := n.bak.ListBackupKeys(ctxT(t), connect.NewRequest(&weftv1.ListBackupKeysRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if l := ls.Msg.GetTargets(); len(l) != 1 || !strings.Contains(l[0].GetError(), "weft backup init") {
		t.Fatalf("keys before init: %v", ls.Msg)
	}
}

// A secret key sent where a recipient goes is refused without being
// repeated, in the error or the audit log.
func TestBackupServiceSecretForRecipient(t *testing.T) {
	n := newNode(t, nodeOptions{backupTargets: []backup.Target{{Name: "a", Backend: object.NewMem("a")}}})
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	secret := id.String()
	_, err = n.bak.InitBackups(ctxT(t), connect.NewRequest(&weftv1.InitBackupsRequest{Recipients: []string{id.Recipient().String(), " " + strings.ToLower(secret)}}))
	wantCode(t, err, connect.CodeInvalidArgument, "recipients[1]", "secret key")
	if strings.Contains(strings.ToUpper(err.Error()), secret) {
		t.Errorf("init's error repeats the secret: %v", err)
	}
	_, err = n.bak.AddBackupKey(ctxT(t), connect.NewRequest(&weftv1.AddBackupKeyRequest{Recipient: secret}))
	wantCode(t, err, connect.CodeInvalidArgument, "recipient", "secret key")
	if strings.Contains(err.Error(), secret) {
		t.Errorf("key add's error repeats the secret: %v", err)
	}
	audits := n.logs.records(t, "audit")
	if len(audits) != 2 {
		t.Fatalf("audit lines: %v", audits)
	}
	if audits[1]["recipient_bytes"] != float64(len(secret)) || audits[1]["recipient"] != nil {
		t.Errorf("key add's audit line: %v", audits[1])
	}
	n.logs.mu.Lock()
	logs := n.logs.buf.String()
	n.logs.mu.Unlock()
	if strings.Contains(strings.ToUpper(logs), secret) {
		t.Errorf("the log holds the secret:\n%s", logs)
	}
}
