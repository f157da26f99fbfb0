//go:build race

package store_test

// raceEnabled reports a -race build, under which the race detector's
// bookkeeping makes 64 MiB copies take seconds.
const raceEnabled = true
