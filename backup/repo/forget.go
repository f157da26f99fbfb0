package repo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/weftos/weft/backup/object"
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
	if dryRun {
		snaps, err := r.SnapshotList(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("forget: %w", err)
		}
		keep, remove = p.Apply(snaps)
		return keep, remove, nil
	}
	l, err := r.Lock(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("forget: %w", err)
	}
	defer func() {
		if uerr := l.Unlock(context.WithoutCancel(ctx)); err == nil && uerr != nil {
			err = fmt.Errorf("forget: %w", uerr)
		}
	}()
	snaps, err := r.SnapshotList(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("forget: %w", err)
	}
	keep, remove = p.Apply(snaps)
	for _, s := range remove {
		if err := r.b.Delete(ctx, snapshotName(s.ID)); err != nil && !isNotFound(err) {
			return nil, nil, fmt.Errorf("forget %v: %w", s.ID, err)
		}
	}
	return keep, remove, nil
}

func isNotFound(err error) bool { return errors.Is(err, object.ErrNotFound) }
