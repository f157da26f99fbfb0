package repo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/weftos/weft/backup/object"
	"github.com/weftos/weft/internal/echoed"
)

// SnapshotInfo is a snapshot and its manifest.
type SnapshotInfo struct {
	ID       ID
	Manifest *Manifest
}

// SnapshotList returns every snapshot with its manifest, newest first
// (by the manifest's time, then id).
func (r *Repo) SnapshotList(ctx context.Context) ([]SnapshotInfo, error) {
	ids, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]SnapshotInfo, 0, len(ids))
	for _, id := range ids {
		m, err := r.LoadSnapshot(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, SnapshotInfo{ID: id, Manifest: m})
	}
	slices.SortStableFunc(out, func(a, b SnapshotInfo) int {
		if c := b.Manifest.Time.Compare(a.Manifest.Time); c != 0 {
			return c
		}
		return slices.Compare(b.ID[:], a.ID[:])
	})
	return out, nil
}

// KeepPolicy says which snapshots Forget keeps, as restic's forget does:
// the Last newest, and the newest snapshot of each of the Hourly (Daily,
// …) most recent hours (days, …) that have one. Times are in UTC; weeks
// are ISO weeks. A snapshot kept by any rule is kept.
type KeepPolicy struct {
	Last, Hourly, Daily, Weekly, Monthly, Yearly int
}

// bucketOf is what makes two snapshots fall in one period of a rule.
type bucketOf func(time.Time) int

var keepRules = []struct {
	n      func(KeepPolicy) int
	bucket bucketOf
}{
	{func(p KeepPolicy) int { return p.Hourly }, func(t time.Time) int { return int(t.Unix() / 3600) }},
	{func(p KeepPolicy) int { return p.Daily }, func(t time.Time) int { return t.Year()*1000 + t.YearDay() }},
	{func(p KeepPolicy) int { return p.Weekly }, func(t time.Time) int { y, w := t.ISOWeek(); return y*100 + w }},
	{func(p KeepPolicy) int { return p.Monthly }, func(t time.Time) int { return t.Year()*100 + int(t.Month()) }},
	{func(p KeepPolicy) int { return p.Yearly }, func(t time.Time) int { return t.Year() }},
}

// Apply splits snaps (newest first) into those p keeps and those it does
// not, both newest first.
func (p KeepPolicy) Apply(snaps []SnapshotInfo) (keep, remove []SnapshotInfo) {
	kept := make([]bool, len(snaps))
	for i := range min(p.Last, len(snaps)) {
		kept[i] = true
	}
	for _, rule := range keepRules {
		n := rule.n(p)
		last, used := 0, 0
		for i, s := range snaps {
			if used >= n {
				break
			}
			b := rule.bucket(s.Manifest.Time.UTC())
			if used > 0 && b == last {
				continue
			}
			kept[i], last = true, b
			used++
		}
	}
	for i, s := range snaps {
		if kept[i] {
			keep = append(keep, s)
		} else {
			remove = append(remove, s)
		}
	}
	return keep, remove
}

// Forget removes the snapshots p does not keep, holding the repository's
// lock, and returns those kept and those removed, newest first. With
// dryRun it removes nothing and only reads, without the lock. A policy of
// all zeros is refused: it would remove every snapshot. The data only the
// removed snapshots held stays until Prune.
func (r *Repo) Forget(ctx context.Context, p KeepPolicy, dryRun bool) (keep, remove []SnapshotInfo, err error) {
	if p == (KeepPolicy{}) {
		return nil, nil, fmt.Errorf("forget: no keep rule: it would remove every snapshot")
	}
	for _, n := range []int{p.Last, p.Hourly, p.Daily, p.Weekly, p.Monthly, p.Yearly} {
		if n < 0 {
			return nil, nil, fmt.Errorf("forget: a negative keep count")
		}
	}
	return r.forget(ctx, dryRun, func(snaps []SnapshotInfo) (keep, remove []SnapshotInfo, err error) {
		keep, remove = p.Apply(snaps)
		return keep, remove, nil
	})
}

// ForgetIDs removes the snapshots ids name (each an id or a unique prefix
// of one, as FindSnapshot takes), as Forget does, and returns those kept
// and those removed, newest first, and the ids that name no snapshot here
// (not an error: a snapshot's id differs from one repository to the
// next). An id that names several is an error, and nothing is removed.
func (r *Repo) ForgetIDs(ctx context.Context, ids []string, dryRun bool) (keep, remove []SnapshotInfo, missing []string, err error) {
	if len(ids) == 0 {
		return nil, nil, nil, fmt.Errorf("forget: no snapshot named")
	}
	for _, id := range ids {
		// Not "latest": an id is what ls showed, never what a run since
		// may have made newest.
		if err := CheckIDPrefix(id); err != nil {
			return nil, nil, nil, fmt.Errorf("forget: snapshot %q: want %w", echoed.Truncate(id), err)
		}
	}
	keep, remove, err = r.forget(ctx, dryRun, func(snaps []SnapshotInfo) (keep, remove []SnapshotInfo, err error) {
		missing = missing[:0]
		gone := make(map[ID]bool)
		for _, want := range ids {
			s, err := FindSnapshot(snaps, want)
			if errors.Is(err, ErrNoSnapshot) {
				missing = append(missing, want)
				continue
			}
			if err != nil {
				return nil, nil, err
			}
			gone[s.ID] = true
		}
		for _, s := range snaps {
			if gone[s.ID] {
				remove = append(remove, s)
			} else {
				keep = append(keep, s)
			}
		}
		return keep, remove, nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return keep, remove, missing, nil
}

// forget lists the snapshots, lets choose split them, and deletes those
// it removes: holding the lock, or with dryRun without it, deleting none.
func (r *Repo) forget(ctx context.Context, dryRun bool, choose func([]SnapshotInfo) (keep, remove []SnapshotInfo, err error)) (keep, remove []SnapshotInfo, err error) {
	if !dryRun {
		l, err := r.Lock(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("forget: %w", err)
		}
		defer func() {
			if uerr := l.Unlock(context.WithoutCancel(ctx)); err == nil && uerr != nil {
				err = fmt.Errorf("forget: %w", uerr)
			}
		}()
	}
	snaps, err := r.SnapshotList(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("forget: %w", err)
	}
	keep, remove, err = choose(snaps)
	if err != nil {
		return nil, nil, fmt.Errorf("forget: %w", err)
	}
	if dryRun {
		return keep, remove, nil
	}
	for _, s := range remove {
		if err := r.b.Delete(ctx, snapshotName(s.ID)); err != nil && !isNotFound(err) {
			return nil, nil, fmt.Errorf("forget %v: %w", s.ID, err)
		}
	}
	return keep, remove, nil
}

// CheckIDPrefix says whether s can name a snapshot: an id, or a prefix of
// one of at least 8 hex digits.
func CheckIDPrefix(s string) error {
	if len(s) < 8 || len(s) > 2*len(ID{}) || strings.Trim(strings.ToLower(s), "0123456789abcdef") != "" {
		return errors.New("8 to 64 hex digits of an id")
	}
	return nil
}

// ErrNoSnapshot is FindSnapshot's error when nothing matches.
var ErrNoSnapshot = errors.New("no such snapshot")

// FindSnapshot picks from snaps (newest first) the one want names:
// "latest" or "" for the newest, else an id or a unique prefix of one of
// at least 8 hex digits.
func FindSnapshot(snaps []SnapshotInfo, want string) (SnapshotInfo, error) {
	if want == "" || want == "latest" {
		if len(snaps) == 0 {
			return SnapshotInfo{}, fmt.Errorf("%w: the repository holds none", ErrNoSnapshot)
		}
		return snaps[0], nil
	}
	if err := CheckIDPrefix(want); err != nil {
		return SnapshotInfo{}, fmt.Errorf("snapshot %q: want latest, or %w", echoed.Truncate(want), err)
	}
	lower := strings.ToLower(want)
	var found []SnapshotInfo
	for _, s := range snaps {
		if strings.HasPrefix(s.ID.String(), lower) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return SnapshotInfo{}, fmt.Errorf("snapshot %s: %w in the repository", lower, ErrNoSnapshot)
	case 1:
		return found[0], nil
	}
	return SnapshotInfo{}, fmt.Errorf("snapshot %s: %d snapshots begin so: give more digits", lower, len(found))
}

func isNotFound(err error) bool { return errors.Is(err, object.ErrNotFound) }
