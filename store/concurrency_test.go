package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/weftos/weft/store"
)

// hammerValue is what goroutine g writes in iteration i; the padding makes
// a torn or mixed value fail decodeHammer.
func hammerValue(g, i int) []byte {
	v := fmt.Appendf(nil, "g=%d i=%d|", g, i)
	return append(v, bytes.Repeat([]byte{byte(g), byte(i)}, 100+g*10)...)
}

func decodeHammer(v []byte) (g, i int, err error) {
	head, _, _ := bytes.Cut(v, []byte("|"))
	if _, err := fmt.Sscanf(string(head), "g=%d i=%d", &g, &i); err != nil {
		return 0, 0, fmt.Errorf("bad value %.40q: %v", v, err)
	}
	if !bytes.Equal(v, hammerValue(g, i)) {
		return 0, 0, fmt.Errorf("corrupt value for g=%d i=%d", g, i)
	}
	return g, i, nil
}

// TestConcurrentAccess hammers one store from many goroutines: writers
// set their own state, a shared state and their own process record and
// read their own writes back; readers read everything meanwhile. Every
// value read must be whole, every goroutine must see its own last write,
// and the end state must be each writer's last write.
func TestConcurrentAccess(t *testing.T) {
	const writers, readers, iterations = 8, 8, 20
	s := openTemp(t)
	own := func(g int) string { return fmt.Sprintf("own-%d:hammer:test", g) }
	const shared = "shared:hammer:test"

	errs := make(chan error, writers+readers)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range iterations {
				v := hammerValue(g, i)
				if err := s.SetState(own(g), v); err != nil {
					errs <- err
					return
				}
				got, ok, err := s.GetState(own(g))
				if err != nil || !ok || !bytes.Equal(got, v) {
					errs <- fmt.Errorf("writer %d iteration %d: read own state %.20q, %v, %v", g, i, got, ok, err)
					return
				}
				if err := s.SetState(shared, v); err != nil {
					errs <- err
					return
				}
				if err := s.PutProcess(own(g), v); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for r := range readers {
		wg.Go(func() {
			for range iterations * 4 {
				for g := range writers {
					v, ok, err := s.GetState(own(g))
					if err != nil {
						errs <- err
						return
					}
					if ok {
						if gg, _, err := decodeHammer(v); err != nil || gg != g {
							errs <- fmt.Errorf("reader %d: state of %s: g=%d, %v", r, own(g), gg, err)
							return
						}
					}
				}
				if v, ok, err := s.GetState(shared); err != nil {
					errs <- err
					return
				} else if ok {
					if _, _, err := decodeHammer(v); err != nil {
						errs <- fmt.Errorf("reader %d: shared state: %v", r, err)
						return
					}
				}
				procs, err := s.Processes()
				if err != nil {
					errs <- err
					return
				}
				for k, v := range procs {
					if _, _, err := decodeHammer(v); err != nil {
						errs <- fmt.Errorf("reader %d: record %s: %v", r, k, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	procs, err := s.Processes()
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != writers {
		t.Errorf("%d process records, want %d", len(procs), writers)
	}
	for g := range writers {
		want := hammerValue(g, iterations-1)
		if v, _, err := s.GetState(own(g)); err != nil || !bytes.Equal(v, want) {
			t.Errorf("final state of %s: %.20q, %v", own(g), v, err)
		}
		if !bytes.Equal(procs[own(g)], want) {
			t.Errorf("final record of %s: %.20q", own(g), procs[own(g)])
		}
	}
	// The last write to the shared key was some writer's last write.
	v, _, err := s.GetState(shared)
	if _, i, derr := decodeHammer(v); err != nil || derr != nil || i != iterations-1 {
		t.Errorf("final shared state: i=%d, %v, %v", i, err, derr)
	}
}

// TestCloseWhileBusy closes the store while goroutines use it: every call
// either succeeds or fails with ErrClosed, and none hangs.
func TestCloseWhileBusy(t *testing.T) {
	s := openTemp(t)
	const workers = 8
	var started, done sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		started.Add(1)
		done.Go(func() {
			key := fmt.Sprintf("w%d:busy:test", w)
			first := true
			for i := 0; ; i++ {
				var err error
				switch i % 3 {
				case 0:
					err = s.SetState(key, []byte("v"))
				case 1:
					_, _, err = s.GetState(key)
				case 2:
					_, err = s.Processes()
				}
				if first {
					started.Done()
					first = false
				}
				if errors.Is(err, store.ErrClosed) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	started.Wait()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	done.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
