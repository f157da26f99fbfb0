package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"filippo.io/age"

	"github.com/weftos/weft/backup/object"
	"github.com/weftos/weft/backup/repo"
	"github.com/weftos/weft/store"
)

var (
	// ErrBusy is the error of an operation that writes to the
	// repositories (run, init, forget, prune, key changes, verify) while
	// another runs.
	ErrBusy = errors.New("backup: another backup operation is running")
	// ErrNoTarget is the error of naming a target the config does not
	// declare, or of an engine with none.
	ErrNoTarget = errors.New("backup: no such target")
	// ErrNotInitialized is a target's error when its bucket holds no
	// repository yet.
	ErrNotInitialized = errors.New("no repository there yet: run weft backup init")
	// ErrKeyMismatch is a target's error when its repository was made
	// with another master key than the others' (initialised apart), so a
	// run cannot share its blobs.
	ErrKeyMismatch = errors.New("its repository has another master key than the run's first target: back it up on its own (--target)")
	// ErrOwnKey is RemoveKey's error for the key file the node's own key
	// opens: the node could not back up any more.
	ErrOwnKey = errors.New("it is the key file this node opens the repository with: removing it would stop its backups")
)

// Config configures an Engine.
type Config struct {
	Targets []Target
	Key     *Key
	Source  Source
	// DataDir is the node's data dir; snapshots are staged in its
	// StagingDir.
	DataDir string
	// What each snapshot's manifest records.
	NodeID, Version, Hostname string
	// Interval, when positive, runs a backup that long after the last
	// run began.
	Interval time.Duration
	// AfterWrite, when positive, runs a backup once Changes has seen a
	// write and then none for AfterWrite, or 10×AfterWrite after the
	// first write not yet backed up, whichever comes first.
	AfterWrite time.Duration
	Changes    *store.Changes
	// PackSize is the repositories' pack size; 0 is repo's default.
	PackSize int
	Logger   *slog.Logger
}

// Engine runs a node's backups. Its methods are safe for concurrent use;
// the operations that write to the repositories run one at a time.
type Engine struct {
	cfg Config
	log *slog.Logger

	op sync.Mutex // held by the operation writing to the repositories

	mu       sync.Mutex // guards the fields below
	repos    map[string]*repo.Repo
	status   map[string]*TargetStatus
	running  string // what op runs ("run", "prune", …); "" when idle
	progress Progress
	nextRun  time.Time

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// TargetStatus is what the engine knows of a target since the node
// started.
type TargetStatus struct {
	Name         string
	LastAttempt  time.Time // when the last run that included it began
	LastSuccess  time.Time // when the last run that succeeded on it began
	LastSnapshot string
	LastBytes    uint64 // of the files the last successful run's snapshot holds
	LastAdded    uint64 // bytes of packs the last successful run uploaded
	LastError    string // of the last run, "" when it succeeded
	Runs         uint64
	Failures     uint64
	Uploaded     uint64 // bytes put by runs
}

// Status is the engine's state.
type Status struct {
	Targets    []TargetStatus
	Running    string    // the operation running, "" when idle
	Progress   Progress  // of the run running
	NextRun    time.Time // of the schedule; zero when none is due
	Interval   time.Duration
	AfterWrite time.Duration
}

// Progress is what a run has done so far.
type Progress struct {
	Phase        string // "stage", "open", "upload", "done"
	TotalBytes   uint64
	TotalFiles   uint64
	ScannedBytes uint64
	ScannedFiles uint64
	Targets      []TargetProgress
}

// TargetProgress is a run's progress on one target.
type TargetProgress struct {
	Name          string
	NewBytes      uint64 // plaintext the target lacked
	UploadedBytes uint64 // packs and indexes put
	Err           string // set once the target failed
}

// New returns an engine over cfg's targets. It removes what an
// interrupted run left in the staging directory, and makes no request.
func New(cfg Config) (*Engine, error) {
	if cfg.Key == nil {
		return nil, errors.New("backup: no key")
	}
	seen := map[string]bool{}
	for _, t := range cfg.Targets {
		if seen[t.Name] {
			return nil, fmt.Errorf("backup: target %s declared twice", t.Name)
		}
		seen[t.Name] = true
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := CleanStaging(cfg.DataDir); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, repos: map[string]*repo.Repo{}, status: map[string]*TargetStatus{}}
	for _, t := range cfg.Targets {
		e.status[t.Name] = &TargetStatus{Name: t.Name}
	}
	return e, nil
}

// Targets names the targets, in declaration order.
func (e *Engine) Targets() []string {
	names := make([]string, len(e.cfg.Targets))
	for i, t := range e.cfg.Targets {
		names[i] = t.Name
	}
	return names
}

// KeyKind says what the node's key is ("X25519" or "scrypt") and, for an
// identity, its recipient.
func (e *Engine) KeyKind() (kind, recipient string) {
	if k := e.cfg.Key; k.identity != nil {
		return k.Kind(), k.String()
	}
	return e.cfg.Key.Kind(), ""
}

// pick returns the targets named, or all when names is empty.
func (e *Engine) pick(names []string) ([]Target, error) {
	if len(e.cfg.Targets) == 0 {
		return nil, fmt.Errorf("%w: none declared ([[backup.targets]] in weftd.toml)", ErrNoTarget)
	}
	if len(names) == 0 {
		return e.cfg.Targets, nil
	}
	var ts []Target
	for _, n := range names {
		i := slices.IndexFunc(e.cfg.Targets, func(t Target) bool { return t.Name == n })
		if i < 0 {
			return nil, fmt.Errorf("%w: %.40q (declared: %v)", ErrNoTarget, n, e.Targets())
		}
		if !slices.ContainsFunc(ts, func(t Target) bool { return t.Name == n }) {
			ts = append(ts, e.cfg.Targets[i])
		}
	}
	return ts, nil
}

// begin takes the operation lock without waiting.
func (e *Engine) begin(what string) (end func(), err error) {
	if !e.op.TryLock() {
		e.mu.Lock()
		r := e.running
		e.mu.Unlock()
		return nil, fmt.Errorf("%w (%s)", ErrBusy, r)
	}
	e.mu.Lock()
	e.running = what
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		e.running = ""
		e.progress = Progress{}
		e.mu.Unlock()
		e.op.Unlock()
	}, nil
}

// open returns the target's repository, opened once and kept.
func (e *Engine) open(ctx context.Context, t Target) (*repo.Repo, error) {
	e.mu.Lock()
	r := e.repos[t.Name]
	e.mu.Unlock()
	if r != nil {
		return r, nil
	}
	r, err := repo.Open(ctx, t.Backend, e.cfg.Key.Identities()...)
	if errors.Is(err, repo.ErrNoRepo) {
		return nil, ErrNotInitialized
	}
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.repos[t.Name] = r
	e.mu.Unlock()
	return r, nil
}

// forget drops the kept repository of a target, to be opened again (its
// indexes reloaded) by the next operation.
func (e *Engine) forget(name string) {
	e.mu.Lock()
	delete(e.repos, name)
	e.mu.Unlock()
}

// perTarget calls do, in order, with each target named (all when none)
// and its repository, or the error of opening it (reopened first, its
// indexes read again, when fresh), and returns what do returned for each.
func perTarget[R any](ctx context.Context, e *Engine, names []string, fresh bool, do func(t Target, r *repo.Repo, err error) R) ([]R, error) {
	ts, err := e.pick(names)
	if err != nil {
		return nil, err
	}
	out := make([]R, len(ts))
	for i, t := range ts {
		if fresh {
			e.forget(t.Name)
		}
		r, err := e.open(ctx, t)
		out[i] = do(t, r, err)
	}
	return out, nil
}

// InitResult is Init's outcome on one target.
type InitResult struct {
	Target  string
	Created bool // false: a repository was there, and is left as it was
	Err     error
}

// Init makes a repository on every target that has none, all with one
// master key and one chunking (those of a repository already on a
// target, if any), so that runs seal each blob once for all of them. Its
// key files open with the node's key and with each of recipients. A
// target that has a repository is left as it is.
func (e *Engine) Init(ctx context.Context, recipients []age.Recipient) ([]InitResult, error) {
	end, err := e.begin("init")
	if err != nil {
		return nil, err
	}
	defer end()
	ts, err := e.pick(nil)
	if err != nil {
		return nil, err
	}
	res := make([]InitResult, len(ts))
	var mk *repo.MasterKey
	var params repo.Params
	for i, t := range ts {
		res[i].Target = t.Name
		r, err := e.open(ctx, t)
		switch {
		case errors.Is(err, ErrNotInitialized):
			continue
		case err != nil:
			res[i].Err = err
		case mk == nil:
			mk, params = r.Key(), r.Params()
		}
	}
	if mk == nil {
		if mk, err = repo.NewKey(); err != nil {
			return nil, err
		}
		if params, err = repo.NewParams(); err != nil {
			return nil, err
		}
	}
	rcs := append([]age.Recipient{e.cfg.Key.Recipient()}, recipients...)
	for i, t := range ts {
		if res[i].Err != nil {
			continue
		}
		if _, err := e.open(ctx, t); !errors.Is(err, ErrNotInitialized) {
			continue
		}
		r, err := repo.Init(ctx, t.Backend, mk, params, rcs...)
		if err != nil {
			res[i].Err = err
			continue
		}
		res[i].Created = true
		e.mu.Lock()
		e.repos[t.Name] = r
		e.mu.Unlock()
		e.log.Info("backup repository created", "target", t.Name, "repository", r.ID())
	}
	return res, nil
}

// RunResult is a run's outcome on one target.
type RunResult struct {
	Target   string
	Snapshot string // the new snapshot's id; "" when it failed
	Manifest *repo.Manifest
	Stats    repo.WriteStats
	Err      error
}

// Run backs the node up to the targets named (all when none): it stages
// a snapshot of the node, reads and chunks it once, and stores it in
// every target's repository. A target that fails does not stop the
// others; each one's outcome is in the results. progress, when set, is
// called as the run goes (on the run's goroutine; it must not block
// long). Run fails only when no target could be tried (ErrBusy, an
// unknown target, a failed staging).
func (e *Engine) Run(ctx context.Context, targets []string, progress func(Progress)) ([]RunResult, error) {
	end, err := e.begin("run")
	if err != nil {
		return nil, err
	}
	defer end()
	return e.run(ctx, targets, progress)
}

func (e *Engine) run(ctx context.Context, targets []string, progress func(Progress)) ([]RunResult, error) {
	ts, err := e.pick(targets)
	if err != nil {
		return nil, err
	}
	started := time.Now()
	p := Progress{Phase: "stage", Targets: make([]TargetProgress, len(ts))}
	names := make([]string, len(ts))
	for i, t := range ts {
		p.Targets[i].Name, names[i] = t.Name, t.Name
	}
	e.log.Info("backup run started", "targets", names)
	report := func() {
		e.mu.Lock()
		e.progress = p
		e.progress.Targets = slices.Clone(p.Targets)
		e.mu.Unlock()
		if progress != nil {
			progress(p)
		}
	}
	report()
	staging := filepath.Join(e.cfg.DataDir, StagingDir)
	dir, err := stage(e.cfg.Source, staging)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(filepath.Dir(dir))
	// A run churns through buffers; the Go runtime would keep the heap
	// they freed (docs/performance.md: the peak RSS without a memory
	// limit). Give it back to the system once the run is over, as weftd
	// does after a large request: a node backs up rarely, and between
	// runs the memory is better with the guests.
	defer debug.FreeOSMemory()

	p.Phase = "open"
	report()
	res := make([]RunResult, len(ts))
	var repos []*repo.Repo
	var idx []int // res index of each of repos
	var first *repo.Repo
	for i, t := range ts {
		res[i].Target = t.Name
		r, err := e.open(ctx, t)
		if err == nil && first != nil && !sameKey(first, r) {
			err = ErrKeyMismatch
		}
		if err != nil {
			res[i].Err = err
			p.Targets[i].Err = err.Error()
			continue
		}
		if first == nil {
			first = r
		}
		repos = append(repos, r)
		idx = append(idx, i)
	}
	if len(repos) > 0 {
		p.Phase = "upload"
		report()
		opts := repo.BackupOptions{Time: started, NodeID: e.cfg.NodeID, WeftVersion: e.cfg.Version, Hostname: e.cfg.Hostname, PackSize: e.cfg.PackSize,
			Progress: func(rp repo.Progress) {
				p.TotalBytes, p.TotalFiles, p.ScannedBytes, p.ScannedFiles = rp.TotalBytes, rp.TotalFiles, rp.ScannedBytes, rp.ScannedFiles
				for j, tp := range rp.Targets {
					t := &p.Targets[idx[j]]
					t.NewBytes, t.UploadedBytes = tp.NewBytes, tp.UploadedBytes
					if tp.Failed != nil {
						t.Err = tp.Failed.Error()
					}
				}
				report()
			}}
		results, errs := repo.BackupMany(ctx, dir, repos, opts)
		for j := range repos {
			i := idx[j]
			if errs[j] != nil {
				res[i].Err = errs[j]
				p.Targets[i].Err = errs[j].Error()
				// Its index in memory may hold packs that never made it.
				e.forget(ts[i].Name)
				continue
			}
			res[i].Snapshot, res[i].Manifest, res[i].Stats = results[j].Snapshot.String(), results[j].Manifest, results[j].Stats
		}
	}
	p.Phase = "done"
	report()
	e.record(started, res)
	return res, nil
}

// sameKey reports whether two repositories seal alike: one master key,
// one chunking.
func sameKey(a, b *repo.Repo) bool {
	probe := []byte("weft: same key?")
	return a.Key().BlobID(probe) == b.Key().BlobID(probe) && a.Params() == b.Params()
}

// record keeps a run's outcome in the targets' status, and logs it.
func (e *Engine) record(started time.Time, res []RunResult) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range res {
		st := e.status[r.Target]
		st.LastAttempt = started
		st.Runs++
		if r.Err != nil {
			st.Failures++
			st.LastError = r.Err.Error()
			e.log.Error("backup failed", "target", r.Target, "err", r.Err)
			continue
		}
		st.LastError = ""
		st.LastSuccess, st.LastSnapshot = started, r.Snapshot
		st.LastBytes, st.LastAdded = r.Manifest.Bytes, r.Stats.PackBytes
		st.Uploaded += r.Stats.PackBytes
		e.log.Info("backup done", "target", r.Target, "snapshot", r.Snapshot, "bytes", r.Manifest.Bytes,
			"uploaded", r.Stats.PackBytes, "took", time.Since(started).Round(time.Millisecond))
	}
}

// Status returns the engine's state.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Status{Running: e.running, Progress: e.progress, NextRun: e.nextRun, Interval: e.cfg.Interval, AfterWrite: e.cfg.AfterWrite}
	s.Progress.Targets = slices.Clone(e.progress.Targets)
	for _, t := range e.cfg.Targets {
		s.Targets = append(s.Targets, *e.status[t.Name])
	}
	return s
}

// SnapshotList is a target's snapshots, newest first, or its error.
type SnapshotList struct {
	Target    string
	Snapshots []repo.SnapshotInfo
	Err       error
}

// Snapshots lists the snapshots of the targets named (all when none).
// It runs beside other operations.
func (e *Engine) Snapshots(ctx context.Context, targets []string) ([]SnapshotList, error) {
	return perTarget(ctx, e, targets, false, func(t Target, r *repo.Repo, err error) SnapshotList {
		l := SnapshotList{Target: t.Name}
		if err == nil {
			l.Snapshots, err = r.SnapshotList(ctx)
		}
		l.Err = err
		return l
	})
}

// VerifyResult is Verify's outcome on one target.
type VerifyResult struct {
	Target string
	Check  *repo.CheckResult
	Err    error
}

// Verify checks the repositories of the targets named (all when none):
// every blob each snapshot needs is indexed and its pack is there; with
// readData, every pack is downloaded, decrypted and checked.
func (e *Engine) Verify(ctx context.Context, targets []string, readData bool) ([]VerifyResult, error) {
	end, err := e.begin("verify")
	if err != nil {
		return nil, err
	}
	defer end()
	// Reopened: check what the bucket holds now.
	return perTarget(ctx, e, targets, true, func(t Target, r *repo.Repo, err error) VerifyResult {
		v := VerifyResult{Target: t.Name}
		if err == nil {
			v.Check, err = r.Check(ctx, readData)
		}
		v.Err = err
		return v
	})
}

// ForgetResult is Forget's outcome on one target.
type ForgetResult struct {
	Target        string
	Keep, Removed []repo.SnapshotInfo
	// Missing are the ids of ForgetSelection.IDs that name no snapshot on
	// this target.
	Missing []string
	Err     error
}

// ForgetSelection says which snapshots Forget removes: those named by
// IDs (ids or unique prefixes of at least 8 hex digits, as weft backup ls
// shows them), or, when IDs is empty, those Keep does not keep.
type ForgetSelection struct {
	Keep repo.KeepPolicy
	IDs  []string
}

// Forget removes, on the targets named (all when none), the snapshots sel
// picks. With dryRun it only says which. A snapshot's id is its target's:
// an id that names nothing on a target is in that target's Missing.
func (e *Engine) Forget(ctx context.Context, targets []string, sel ForgetSelection, dryRun bool) ([]ForgetResult, error) {
	switch {
	case len(sel.IDs) > 0 && sel.Keep != (repo.KeepPolicy{}):
		return nil, errors.New("backup: forget: give snapshot ids or keep rules, not both")
	case len(sel.IDs) == 0 && sel.Keep == (repo.KeepPolicy{}):
		return nil, errors.New("backup: forget: no keep rule: it would forget every snapshot")
	}
	end, err := e.begin("forget")
	if err != nil {
		return nil, err
	}
	defer end()
	return perTarget(ctx, e, targets, false, func(t Target, r *repo.Repo, err error) ForgetResult {
		f := ForgetResult{Target: t.Name}
		if err == nil {
			if len(sel.IDs) > 0 {
				f.Keep, f.Removed, f.Missing, err = r.ForgetIDs(ctx, sel.IDs, dryRun)
			} else {
				f.Keep, f.Removed, err = r.Forget(ctx, sel.Keep, dryRun)
			}
		}
		f.Err = err
		return f
	})
}

// PruneResult is Prune's outcome on one target.
type PruneResult struct {
	Target string
	Result *repo.PruneResult
	Err    error
}

// Prune removes from the targets named (all when none) what no snapshot
// references. It holds each repository's lock, so a run of another
// node's engine on the same bucket waits for it rather than losing blobs.
func (e *Engine) Prune(ctx context.Context, targets []string) ([]PruneResult, error) {
	end, err := e.begin("prune")
	if err != nil {
		return nil, err
	}
	defer end()
	return perTarget(ctx, e, targets, false, func(t Target, r *repo.Repo, err error) PruneResult {
		p := PruneResult{Target: t.Name}
		if err == nil {
			p.Result, err = r.Prune(ctx)
			e.forget(t.Name) // its indexes were rewritten
		}
		p.Err = err
		return p
	})
}

// KeyList is a target's key files, or its error.
type KeyList struct {
	Target string
	Keys   []repo.KeyInfo
	Err    error
}

// Keys lists the key files of the targets named (all when none).
func (e *Engine) Keys(ctx context.Context, targets []string) ([]KeyList, error) {
	return perTarget(ctx, e, targets, false, func(t Target, r *repo.Repo, err error) KeyList {
		l := KeyList{Target: t.Name}
		if err == nil {
			l.Keys, err = r.ListKeys(ctx)
		}
		l.Err = err
		return l
	})
}

// AddKey adds to every target named (all when none) a key file that opens
// with rc's identity.
func (e *Engine) AddKey(ctx context.Context, targets []string, rc age.Recipient) ([]KeyList, error) {
	end, err := e.begin("key add")
	if err != nil {
		return nil, err
	}
	defer end()
	return perTarget(ctx, e, targets, false, func(t Target, r *repo.Repo, err error) KeyList {
		l := KeyList{Target: t.Name}
		if err == nil {
			var k repo.KeyInfo
			if k, err = r.AddKey(ctx, rc); err == nil {
				l.Keys = []repo.KeyInfo{k}
			}
		}
		l.Err = err
		return l
	})
}

// RemoveKey removes key file id from target. It refuses the last key of
// a repository, and the one the node's own key opens (the node could
// not back up any more).
func (e *Engine) RemoveKey(ctx context.Context, target, id string) error {
	end, err := e.begin("key remove")
	if err != nil {
		return err
	}
	defer end()
	ts, err := e.pick([]string{target})
	if err != nil {
		return err
	}
	r, err := e.open(ctx, ts[0])
	if err != nil {
		return err
	}
	if e.opensWith(ctx, ts[0].Backend, id) {
		return fmt.Errorf("backup: key %s: %w", id, ErrOwnKey)
	}
	return r.RemoveKey(ctx, id)
}

// opensWith reports whether key file id (keys/<id>, docs/backup.md) opens
// with the node's key.
func (e *Engine) opensWith(ctx context.Context, b object.Backend, id string) bool {
	raw, err := object.ReadAll(ctx, b, "keys/"+id)
	if err != nil {
		return false
	}
	_, err = age.Decrypt(bytes.NewReader(raw), e.cfg.Key.Identities()...)
	return err == nil
}
