package storetest

import (
	"errors"
	"io/fs"
	"testing"
)

func TestInstant(t *testing.T) {
	for _, c := range []struct {
		state, kv, file []int
		ok              bool
	}{
		{[]int{0}, []int{0}, []int{0}, true},
		{[]int{5}, []int{5}, []int{5}, true},
		{[]int{5}, []int{4}, []int{4}, true},  // the kv pair of step 5 not yet written
		{[]int{5}, []int{5}, []int{4}, true},  // nor its file
		{[]int{5}, []int{4}, []int{5}, false}, // a file ahead of its kv pair
		{[]int{5}, []int{6}, []int{4}, false}, // a kv pair ahead of its state
		{[]int{5}, []int{3}, []int{3}, false}, // two steps apart
		{[]int{2, 7}, []int{2, 7}, []int{2, 5}, false},
	} {
		if err := Instant(c.state, c.kv, c.file); (err == nil) != c.ok {
			t.Errorf("Instant(%v, %v, %v) = %v, want ok %v", c.state, c.kv, c.file, err, c.ok)
		}
	}
}

func TestVersion(t *testing.T) {
	if n, err := Version(FileVersion(42), nil); n != 42 || err != nil {
		t.Errorf("whole version: %d, %v", n, err)
	}
	if n, err := Version(nil, fs.ErrNotExist); n != 0 || err != nil {
		t.Errorf("missing file: %d, %v", n, err)
	}
	mixed := append(FileVersion(3)[:100:100], FileVersion(4)[100:]...)
	for _, b := range [][]byte{mixed, FileVersion(3)[:2000], []byte("x")} {
		if _, err := Version(b, nil); err == nil {
			t.Errorf("Version of %d bytes that are not one version: no error", len(b))
		}
	}
	if _, err := Version(nil, errors.New("disk")); err == nil {
		t.Error("a read error passed")
	}
}
