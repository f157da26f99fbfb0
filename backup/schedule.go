package backup

import (
	"context"
	"errors"
	"time"
)

// maxDelayFactor bounds how long writes that never pause hold back an
// after-write run: it starts at most maxDelayFactor×AfterWrite after the
// first write it is for.
const maxDelayFactor = 10

// Start runs backups on the schedule of the config (Interval, AfterWrite)
// until Close. Without either it does nothing. A run the schedule wants
// while another operation runs is tried again AfterWrite later (or at the
// next interval).
func (e *Engine) Start() {
	if e.stop != nil || (e.cfg.Interval <= 0 && (e.cfg.AfterWrite <= 0 || e.cfg.Changes == nil)) || len(e.cfg.Targets) == 0 {
		return
	}
	e.stop, e.done = make(chan struct{}), make(chan struct{})
	go e.schedule()
}

// Close stops the schedule, canceling a scheduled run in progress, and
// waits for it to end.
func (e *Engine) Close() {
	if e.stop == nil {
		return
	}
	e.closeOnce.Do(func() { close(e.stop) })
	<-e.done
}

func (e *Engine) schedule() {
	defer close(e.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-e.stop
		cancel()
	}()

	var interval *time.Timer
	setNext := func(from time.Time) {
		if e.cfg.Interval <= 0 {
			return
		}
		next := from.Add(e.cfg.Interval)
		e.mu.Lock()
		e.nextRun = next
		e.mu.Unlock()
		if interval == nil {
			interval = time.NewTimer(time.Until(next))
		} else {
			interval.Reset(time.Until(next))
		}
	}
	setNext(time.Now())

	afterWrite := e.cfg.AfterWrite > 0 && e.cfg.Changes != nil
	var seen uint64 // Changes.Seq of the last run's start
	if afterWrite {
		seen = e.cfg.Changes.Seq()
	}
	var quiet *time.Timer
	var firstWrite time.Time // of the writes not backed up; zero: none

	for {
		var tick, calm <-chan time.Time
		var changed <-chan struct{}
		if interval != nil {
			tick = interval.C
		}
		if afterWrite {
			changed = e.cfg.Changes.Changed(seen)
		}
		if quiet != nil {
			calm = quiet.C
		}
		why := ""
		select {
		case <-ctx.Done():
			return
		case <-tick:
			why = "interval"
		case <-calm:
			why = "after writes"
		case <-changed:
			seen = e.cfg.Changes.Seq()
			now := time.Now()
			if firstWrite.IsZero() {
				firstWrite = now
			}
			wait := e.cfg.AfterWrite
			if limit := firstWrite.Add(maxDelayFactor * e.cfg.AfterWrite).Sub(now); limit < wait {
				wait = max(limit, 0)
			}
			if quiet == nil {
				quiet = time.NewTimer(wait)
			} else {
				quiet.Reset(wait)
			}
			continue
		}
		if quiet != nil {
			quiet.Stop()
			quiet = nil
		}
		firstWrite = time.Time{}
		started := time.Now()
		if afterWrite {
			seen = e.cfg.Changes.Seq() // the run holds what came before
		}
		if !e.scheduledRun(ctx, why) && afterWrite {
			quiet = time.NewTimer(e.cfg.AfterWrite) // busy: try again
			firstWrite = started
		}
		setNext(started)
	}
}

// scheduledRun runs a backup for the schedule, and logs what stopped it.
// It returns false when another operation was running.
func (e *Engine) scheduledRun(ctx context.Context, why string) bool {
	end, err := e.begin("run")
	if err != nil {
		e.log.Info("scheduled backup postponed", "why", why, "err", err)
		return false
	}
	defer end()
	e.log.Info("scheduled backup", "why", why)
	if _, err := e.run(ctx, nil, nil); err != nil && !errors.Is(err, context.Canceled) {
		e.log.Error("scheduled backup failed", "err", err)
	}
	return true
}
