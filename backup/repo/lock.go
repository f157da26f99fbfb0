package repo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/weftos/weft/backup/object"
)

// A lock expires LockTTL after it was last refreshed, so a dead holder's
// lock stops excluding others; a holder refreshes it every LockRefresh.
const (
	LockTTL     = 30 * time.Minute
	LockRefresh = 5 * time.Minute
)

// Lock is an exclusive lock on a repository, held by one run.
type Lock struct {
	r         *Repo
	name      string
	created   time.Time
	refreshed time.Time
}

// Lock takes the repository's lock: it fails with ErrLocked, naming the
// holder, while another unexpired lock is there.
func (r *Repo) Lock(ctx context.Context) (*Lock, error) {
	if err := r.checkNoLock(ctx, ""); err != nil {
		return nil, err
	}
	var rnd [16]byte
	rand.Read(rnd[:])
	now := r.now()
	l := &Lock{r: r, name: locksDir + hex.EncodeToString(rnd[:]), created: now}
	if err := l.write(ctx, now); err != nil {
		return nil, err
	}
	// Two runs may have written theirs at once: both see the other and
	// give way.
	if err := r.checkNoLock(ctx, l.name); err != nil {
		r.b.Delete(context.WithoutCancel(ctx), l.name)
		return nil, err
	}
	return l, nil
}

func (r *Repo) checkNoLock(ctx context.Context, own string) error {
	now := r.now()
	return r.b.List(ctx, locksDir, func(in object.Info) error {
		if in.Name == own {
			return nil
		}
		raw, err := object.ReadAll(ctx, r.b, in.Name)
		if err != nil {
			if errors.Is(err, object.ErrNotFound) {
				return nil // removed since the listing
			}
			return fmt.Errorf("read lock %s: %w", in.Name, err)
		}
		p, err := r.mk.open(adLock, raw)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrLocked, corrupt(r.b, in.Name, err))
		}
		lf, err := decodeLock(p)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrLocked, corrupt(r.b, in.Name, err))
		}
		if now.After(lf.Expires) {
			return nil
		}
		return fmt.Errorf("%w by %s (pid %d) since %s, until %s (%s)", ErrLocked, lf.Holder, lf.PID,
			lf.Created.Format(time.RFC3339), lf.Expires.Format(time.RFC3339), in.Name)
	})
}

func (l *Lock) write(ctx context.Context, now time.Time) error {
	host, _ := os.Hostname()
	lj, _ := json.Marshal(lockFile{Holder: host, PID: os.Getpid(), Created: l.created.UTC(), Expires: now.Add(LockTTL).UTC()})
	if err := put(ctx, l.r.b, l.name, l.r.mk.seal(nil, adLock, lj)); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	l.refreshed = now
	return nil
}

// Refresh pushes the lock's expiry LockTTL from now.
func (l *Lock) Refresh(ctx context.Context) error { return l.write(ctx, l.r.now()) }

func (l *Lock) refreshIfDue(ctx context.Context) error {
	if now := l.r.now(); now.Sub(l.refreshed) >= LockRefresh {
		return l.write(ctx, now)
	}
	return nil
}

// confirm refreshes the lock and checks that no other unexpired lock is
// there: before a run deletes anything, it makes sure that its lock did
// not expire (a stalled request) and let another run in.
func (l *Lock) confirm(ctx context.Context) error {
	if err := l.Refresh(ctx); err != nil {
		return err
	}
	return l.r.checkNoLock(ctx, l.name)
}

// Unlock removes the lock.
func (l *Lock) Unlock(ctx context.Context) error {
	if err := l.r.b.Delete(ctx, l.name); err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	return nil
}
