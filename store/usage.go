package store

import (
	"errors"
	"fmt"
	"sync"
)

// DefaultPackageQuota is the logical bytes one package may keep in its
// key-value databases and drives together when no quota is configured:
// 1 GiB.
const DefaultPackageQuota = 1 << 30

// ErrQuota: a write would take the package past its quota. Nothing of the
// write was applied.
var ErrQuota = errors.New("package storage quota exceeded")

// Usage counts the logical bytes each package keeps (key and value bytes
// in its databases; file bytes in its drives) against one quota per
// package. The key-value store and the drives share one Usage, so that the
// quota covers both. Safe for concurrent use.
type Usage struct {
	quota int64
	mu    sync.Mutex
	used  map[string]int64
}

// NewUsage returns a Usage with quota bytes per package (zero or less:
// DefaultPackageQuota) and nothing counted.
func NewUsage(quota int64) *Usage {
	if quota <= 0 {
		quota = DefaultPackageQuota
	}
	return &Usage{quota: quota, used: make(map[string]int64)}
}

// Quota is the per-package quota in bytes.
func (u *Usage) Quota() int64 { return u.quota }

// Used reports the bytes pkg keeps.
func (u *Usage) Used(pkg string) int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.used[pkg]
}

// Reserve counts delta more bytes for pkg (delta may be negative, which
// always succeeds). A positive delta that would take pkg past the quota
// fails with ErrQuota and counts nothing. A writer reserves before it
// writes and gives the reservation back (Reserve(pkg, -delta)) if the
// write fails.
func (u *Usage) Reserve(pkg string, delta int64) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := u.used[pkg] + delta
	if delta > 0 && n > u.quota {
		return fmt.Errorf("%w: %s keeps %d bytes, the write adds %d, the quota is %d", ErrQuota, pkg, u.used[pkg], delta, u.quota)
	}
	if n <= 0 {
		delete(u.used, pkg)
		return nil
	}
	u.used[pkg] = n
	return nil
}

// Add counts n bytes for pkg that are already stored, without checking
// the quota: what an opener finds on disk (a quota lowered since is
// enforced on the next write).
func (u *Usage) Add(pkg string, n int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.used[pkg] += n
}
