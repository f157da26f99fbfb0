package controlapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"filippo.io/age"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/backup"
	"github.com/weftos/weft/backup/repo"
)

// Backups is what the BackupService needs of the node's backup engine;
// *backup.Engine is one.
type Backups interface {
	Init(ctx context.Context, recipients []age.Recipient) ([]backup.InitResult, error)
	Run(ctx context.Context, targets []string, progress func(backup.Progress)) ([]backup.RunResult, error)
	Snapshots(ctx context.Context, targets []string) ([]backup.SnapshotList, error)
	Verify(ctx context.Context, targets []string, readData bool) ([]backup.VerifyResult, error)
	Forget(ctx context.Context, targets []string, sel backup.ForgetSelection, dryRun bool) ([]backup.ForgetResult, error)
	Prune(ctx context.Context, targets []string) ([]backup.PruneResult, error)
	Keys(ctx context.Context, targets []string) ([]backup.KeyList, error)
	AddKey(ctx context.Context, targets []string, rc age.Recipient) ([]backup.KeyList, error)
	RemoveKey(ctx context.Context, target, id string) error
	Status() backup.Status
	KeyKind() (kind, recipient string)
}

// errNoBackups answers backup calls on a node with no target declared.
var errNoBackups = connect.NewError(connect.CodeFailedPrecondition,
	errors.New("backups are not configured on this node: declare [[backup.targets]] in weftd.toml (docs/backup.md)"))

// maxForgetIDs bounds the snapshot ids of one ForgetSnapshots call.
const maxForgetIDs = 1000

// runEvery bounds how often RunBackup sends a progress event.
const runEvery = 200 * time.Millisecond

// isIdentity reports whether s looks like an age identity, a secret key
// ("AGE-SECRET-KEY-1…", "AGE-PLUGIN-…"), rather than a recipient
// ("age1…"): pasted by mistake, it must not be echoed or logged.
func isIdentity(s string) bool {
	return strings.HasPrefix(strings.ToUpper(strings.TrimSpace(s)), "AGE-")
}

// recipient parses the age recipient in field name of a request. Its
// error repeats the value, but not a secret key given by mistake.
func recipient(name, s string) (age.Recipient, error) {
	if isIdentity(s) {
		return nil, field(name, errors.New("a secret key (AGE-…), not a recipient: give its public half (age1…, as age-keygen -y prints it); the node kept no copy"))
	}
	rc, err := backup.ParseRecipient(s)
	if err != nil {
		return nil, field(name, err)
	}
	return rc, nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (s *server) InitBackups(ctx context.Context, req *connect.Request[weftv1.InitBackupsRequest]) (*connect.Response[weftv1.InitBackupsResponse], error) {
	if s.backups == nil {
		return nil, errNoBackups
	}
	var rcs []age.Recipient
	for i, r := range req.Msg.GetRecipients() {
		rc, err := recipient(fmt.Sprintf("recipients[%d]", i), r)
		if err != nil {
			return nil, err
		}
		rcs = append(rcs, rc)
	}
	res, err := s.backups.Init(ctx, rcs)
	if err != nil {
		return nil, err
	}
	out := &weftv1.InitBackupsResponse{}
	for _, r := range res {
		out.Targets = append(out.Targets, &weftv1.InitBackupsResult{Target: r.Target, Created: r.Created, Error: errString(r.Err)})
	}
	return connect.NewResponse(out), nil
}

func (s *server) RunBackup(ctx context.Context, req *connect.Request[weftv1.RunBackupRequest], stream *connect.ServerStream[weftv1.RunBackupEvent]) error {
	if s.backups == nil {
		return errNoBackups
	}
	// Progress comes on the run's goroutine; the stream is written here,
	// so a slow client slows its events, not the run.
	q := &runEvents{wake: make(chan struct{}, 1)}
	type outcome struct {
		res []backup.RunResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := s.backups.Run(ctx, req.Msg.GetTargets(), q.add)
		done <- outcome{res, err}
	}()
	var last *weftv1.RunBackupEvent // the last sent
	var lastAt time.Time
	send := func(evs []*weftv1.RunBackupEvent) error {
		for _, ev := range evs {
			if err := stream.Send(ev); err != nil {
				return err
			}
			last, lastAt = ev, time.Now()
		}
		return nil
	}
	// due fires when a report held back by the throttle may go.
	timer := time.NewTimer(runEvery)
	timer.Stop()
	defer timer.Stop()
	var due <-chan time.Time
	flush := func() error {
		evs, wait := q.take(last, lastAt)
		if wait > 0 && due == nil {
			timer.Reset(wait)
			due = timer.C
		}
		return send(evs)
	}
	for {
		var err error
		select {
		case <-q.wake:
			err = flush()
		case <-due:
			due = nil
			err = flush()
		case o := <-done:
			if o.err != nil {
				return o.err
			}
			evs := q.rest()
			var final *weftv1.RunBackupEvent
			switch {
			case len(evs) > 0:
				final, evs = evs[len(evs)-1], evs[:len(evs)-1]
			case last != nil:
				final = proto.CloneOf(last)
			default:
				final = &weftv1.RunBackupEvent{Phase: "done"}
			}
			if err := send(evs); err != nil {
				return err
			}
			for _, r := range o.res {
				final.Results = append(final.Results, runResult(r))
			}
			return stream.Send(final)
		}
		if err != nil {
			return err
		}
	}
}

// runEvents carries a run's progress from the engine's goroutine to the
// stream's. It keeps the latest report of each phase not yet sent, so the
// throttle and a slow client merge reports within a phase but never lose
// a phase, however fast it went.
type runEvents struct {
	mu      sync.Mutex
	pending []*weftv1.RunBackupEvent // each of another phase than the one before
	wake    chan struct{}
}

// add is the engine's progress function.
func (q *runEvents) add(p backup.Progress) {
	ev := progressEvent(p)
	q.mu.Lock()
	if n := len(q.pending); n > 0 && q.pending[n-1].GetPhase() == ev.GetPhase() {
		q.pending[n-1] = ev
	} else {
		q.pending = append(q.pending, ev)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns the reports to send now, given the last sent and when.
// A report of a new phase goes at once; another of the phase last sent,
// runEvery after that one: until then take holds it and says how long
// to wait. The report of the "done" phase is held for the last event,
// which carries the results.
func (q *runEvents) take(last *weftv1.RunBackupEvent, lastAt time.Time) (evs []*weftv1.RunBackupEvent, wait time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.pending)
	if n > 0 && q.pending[n-1].GetPhase() == "done" {
		n--
	}
	if n == 1 && last != nil && q.pending[0].GetPhase() == last.GetPhase() {
		if wait = runEvery - time.Since(lastAt); wait > 0 {
			return nil, wait
		}
	}
	evs = q.pending[:n:n]
	q.pending = q.pending[n:]
	return evs, 0
}

// rest returns every report not yet sent.
func (q *runEvents) rest() []*weftv1.RunBackupEvent {
	q.mu.Lock()
	defer q.mu.Unlock()
	evs := q.pending
	q.pending = nil
	return evs
}

func progressEvent(p backup.Progress) *weftv1.RunBackupEvent {
	ev := &weftv1.RunBackupEvent{Phase: p.Phase, TotalBytes: p.TotalBytes, TotalFiles: p.TotalFiles, ScannedBytes: p.ScannedBytes, ScannedFiles: p.ScannedFiles}
	for _, t := range p.Targets {
		ev.Targets = append(ev.Targets, &weftv1.BackupTargetProgress{Target: t.Name, NewBytes: t.NewBytes, UploadedBytes: t.UploadedBytes, Error: t.Err})
	}
	return ev
}

func runResult(r backup.RunResult) *weftv1.BackupRunResult {
	out := &weftv1.BackupRunResult{Target: r.Target, Error: errString(r.Err)}
	if r.Err == nil && r.Manifest != nil {
		id, _ := repo.ParseID(r.Snapshot)
		out.Snapshot = snapshot(repo.SnapshotInfo{ID: id, Manifest: r.Manifest})
		out.UploadedBytes = r.Stats.PackBytes
		out.BlobsAdded, out.BlobsReused = uint64(r.Stats.BlobsAdded), uint64(r.Stats.BlobsReused)
	}
	return out
}

func snapshot(s repo.SnapshotInfo) *weftv1.BackupSnapshot {
	m := s.Manifest
	return &weftv1.BackupSnapshot{Id: s.ID.String(), Time: timestamppb.New(m.Time), NodeId: m.NodeID, Hostname: m.Hostname,
		WeftVersion: m.WeftVersion, Files: m.Files, Dirs: m.Dirs, Bytes: m.Bytes, AddedBytes: m.AddedBytes, Tags: m.Tags}
}

func snapshots(ss []repo.SnapshotInfo) []*weftv1.BackupSnapshot {
	out := make([]*weftv1.BackupSnapshot, 0, len(ss))
	for _, s := range ss {
		out = append(out, snapshot(s))
	}
	return out
}

func (s *server) ListSnapshots(ctx context.Context, req *connect.Request[weftv1.ListSnapshotsRequest]) (*connect.Response[weftv1.ListSnapshotsResponse], error) {
	if s.backups == nil {
		return nil, errNoBackups
	}
	lists, err := s.backups.Snapshots(ctx, req.Msg.GetTargets())
	if err != nil {
		return nil, err
	}
	out := &weftv1.ListSnapshotsResponse{}
	for _, l := range lists {
		out.Targets = append(out.Targets, &weftv1.TargetSnapshots{Target: l.Target, Snapshots: snapshots(l.Snapshots), Error: errString(l.Err)})
	}
	return connect.NewResponse(out), nil
}

func (s *server) VerifyBackups(ctx context.Context, req *connect.Request[weftv1.VerifyBackupsRequest]) (*connect.Response[weftv1.VerifyBackupsResponse], error) {
	if s.backups == nil {
		return nil, errNoBackups
	}
	res, err := s.backups.Verify(ctx, req.Msg.GetTargets(), req.Msg.GetReadData())
	if err != nil {
		return nil, err
	}
	out := &weftv1.VerifyBackupsResponse{}
	for _, r := range res {
		v := &weftv1.VerifyBackupsResult{Target: r.Target, Error: errString(r.Err)}
		if c := r.Check; c != nil {
			v.Ok = r.Err == nil && c.OK()
			v.Problems = c.Problems
			v.Snapshots = uint32(len(c.Snapshots))
			v.UnreferencedPacks = uint32(len(c.Unreferenced))
			for _, sc := range c.Snapshots {
				if len(sc.Problems) > 0 {
					v.Broken = append(v.Broken, &weftv1.BrokenSnapshot{Id: sc.ID.String(), Problems: sc.Problems})
				}
			}
		}
		out.Targets = append(out.Targets, v)
	}
	return connect.NewResponse(out), nil
}

func (s *server) ForgetSnapshots(ctx context.Context, req *connect.Request[weftv1.ForgetSnapshotsRequest]) (*connect.Response[weftv1.ForgetSnapshotsResponse], error) {
	if s.backups == nil {
		return nil, errNoBackups
	}
	m := req.Msg
	n := func(v uint32) int { return int(min(v, math.MaxInt32)) }
	p := repo.KeepPolicy{Last: n(m.GetKeepLast()), Hourly: n(m.GetKeepHourly()), Daily: n(m.GetKeepDaily()),
		Weekly: n(m.GetKeepWeekly()), Monthly: n(m.GetKeepMonthly()), Yearly: n(m.GetKeepYearly())}
	ids := m.GetSnapshotIds()
	switch {
	case len(ids) > 0 && p != (repo.KeepPolicy{}):
		return nil, field("snapshot_ids", errors.New("give snapshot ids or keep rules, not both"))
	case len(ids) == 0 && p == (repo.KeepPolicy{}):
		return nil, field("keep_last", errors.New("no keep rule is set: forgetting would remove every snapshot"))
	case len(ids) > maxForgetIDs:
		return nil, field("snapshot_ids", fmt.Errorf("%d ids: at most %d a call", len(ids), maxForgetIDs))
	}
	for _, id := range ids {
		if err := repo.CheckIDPrefix(id); err != nil {
			return nil, field("snapshot_ids", fmt.Errorf("want %w", err))
		}
	}
	res, err := s.backups.Forget(ctx, m.GetTargets(), backup.ForgetSelection{Keep: p, IDs: ids}, m.GetDryRun())
	if err != nil {
		return nil, err
	}
	out := &weftv1.ForgetSnapshotsResponse{}
	for _, r := range res {
		out.Targets = append(out.Targets, &weftv1.ForgetSnapshotsResult{Target: r.Target, Kept: snapshots(r.Keep), Removed: snapshots(r.Removed),
			Missing: r.Missing, Error: errString(r.Err)})
	}
	return connect.NewResponse(out), nil
}

func (s *server) PruneBackups(ctx context.Context, req *connect.Request[weftv1.PruneBackupsRequest]) (*connect.Response[weftv1.PruneBackupsResponse], error) {
	if s.backups == nil {
		return nil, errNoBackups
	}
	res, err := s.backups.Prune(ctx, req.Msg.GetTargets())
	if err != nil {
		return nil, err
	}
	out := &weftv1.PruneBackupsResponse{}
	for _, r := range res {
		p := &weftv1.PruneBackupsResult{Target: r.Target, Error: errString(r.Err)}
		if pr := r.Result; pr != nil {
			p.PacksDeleted, p.PacksRepacked, p.PacksKept = uint32(pr.PacksDeleted), uint32(pr.PacksRepacked), uint32(pr.PacksKept)
			p.BlobsRemoved, p.BytesFreed = uint32(pr.BlobsRemoved), pr.BytesFreed
		}
		out.Targets = append(out.Targets, p)
	}
	return connect.NewResponse(out), nil
}

func keyLists(ls []backup.KeyList) []*weftv1.TargetBackupKeys {
	var out []*weftv1.TargetBackupKeys
	for _, l := range ls {
		t := &weftv1.TargetBackupKeys{Target: l.Target, Error: errString(l.Err)}
		for _, k := range l.Keys {
			t.Keys = append(t.Keys, &weftv1.BackupKey{Id: k.ID, Kinds: k.Kinds})
		}
		out = append(out, t)
	}
	return out
}

func (s *server) ListBackupKeys(ctx context.Context, req *connect.Request[weftv1.ListBackupKeysRequest]) (*connect.Response[weftv1.ListBackupKeysResponse], error) {
	if s.backups == nil {
		return nil, errNoBackups
	}
	ls, err := s.backups.Keys(ctx, req.Msg.GetTargets())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&weftv1.ListBackupKeysResponse{Targets: keyLists(ls)}), nil
}

func (s *server) AddBackupKey(ctx context.Context, req *connect.Request[weftv1.AddBackupKeyRequest]) (*connect.Response[weftv1.AddBackupKeyResponse], error) {
	if s.backups == nil {
		return nil, errNoBackups
	}
	rc, err := recipient("recipient", req.Msg.GetRecipient())
	if err != nil {
		return nil, err
	}
	ls, err := s.backups.AddKey(ctx, req.Msg.GetTargets(), rc)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&weftv1.AddBackupKeyResponse{Targets: keyLists(ls)}), nil
}

func (s *server) RemoveBackupKey(ctx context.Context, req *connect.Request[weftv1.RemoveBackupKeyRequest]) (*connect.Response[weftv1.RemoveBackupKeyResponse], error) {
	if s.backups == nil {
		return nil, errNoBackups
	}
	if req.Msg.GetTarget() == "" {
		return nil, field("target", errors.New("empty: name the target whose key file goes"))
	}
	if _, err := repo.ParseID(req.Msg.GetId()); err != nil {
		return nil, field("id", err)
	}
	if err := s.backups.RemoveKey(ctx, req.Msg.GetTarget(), req.Msg.GetId()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&weftv1.RemoveBackupKeyResponse{}), nil
}

func (s *server) GetBackupStatus(context.Context, *connect.Request[weftv1.GetBackupStatusRequest]) (*connect.Response[weftv1.GetBackupStatusResponse], error) {
	if s.backups == nil {
		return nil, errNoBackups
	}
	st := s.backups.Status()
	out := &weftv1.GetBackupStatusResponse{Running: st.Running, Interval: durationpb.New(st.Interval), AfterWrite: durationpb.New(st.AfterWrite)}
	out.KeyKind, out.KeyRecipient = s.backups.KeyKind()
	if st.Running == "run" {
		out.Progress = progressEvent(st.Progress)
	}
	if !st.NextRun.IsZero() {
		out.NextRun = timestamppb.New(st.NextRun)
	}
	out.Targets = targetStatuses(st)
	return connect.NewResponse(out), nil
}

// targetStatuses is each target's status, as GetBackupStatus and GetInfo
// report it.
func targetStatuses(st backup.Status) []*weftv1.BackupTargetStatus {
	ts := func(t time.Time) *timestamppb.Timestamp {
		if t.IsZero() {
			return nil
		}
		return timestamppb.New(t)
	}
	var out []*weftv1.BackupTargetStatus
	for _, t := range st.Targets {
		out = append(out, &weftv1.BackupTargetStatus{Target: t.Name, LastAttempt: ts(t.LastAttempt), LastSuccess: ts(t.LastSuccess),
			LastSnapshot: t.LastSnapshot, LastBytes: t.LastBytes, LastUploadedBytes: t.LastAdded, LastError: t.LastError,
			Runs: t.Runs, Failures: t.Failures, UploadedBytes: t.Uploaded})
	}
	return out
}
