package echoed_test

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/weftos/weft/internal/echoed"
)

// checkTruncated checks TruncateTo(s, n) = got: s itself when it fits;
// otherwise a prefix of s of at most n bytes, short of n by less than a
// rune, then "…(N bytes cut)" (or "byte") with N the bytes left out; valid
// UTF-8 stays valid. It returns the prefix kept.
func checkTruncated(t *testing.T, s string, n int, got string) string {
	t.Helper()
	if len(s) <= max(n, 0) {
		if got != s {
			t.Fatalf("TruncateTo(%d bytes, %d) = %q, want it unchanged", len(s), n, got)
		}
		return s
	}
	i := strings.LastIndex(got, "…(")
	if i < 0 || !strings.HasSuffix(got, " cut)") {
		t.Fatalf("TruncateTo(%d bytes, %d) = %q: no marker", len(s), n, got)
	}
	head := got[:i]
	count, unit, _ := strings.Cut(got[i+len("…("):len(got)-len(" cut)")], " ")
	cut, err := strconv.Atoi(count)
	if err != nil || cut != len(s)-len(head) || unit != map[bool]string{true: "byte", false: "bytes"}[cut == 1] {
		t.Fatalf("TruncateTo(%d bytes, %d) = %q: the marker does not say %d bytes cut", len(s), n, got, len(s)-len(head))
	}
	if !strings.HasPrefix(s, head) || len(head) > max(n, 0) || len(head) < n-(utf8.UTFMax-1) {
		t.Fatalf("TruncateTo(%d bytes, %d) keeps %d bytes %q, want a prefix of %d to %d bytes", len(s), n, len(head), head, n-(utf8.UTFMax-1), n)
	}
	if utf8.ValidString(s) && !utf8.ValidString(got) {
		t.Fatalf("TruncateTo(%q, %d) = %q is not UTF-8", s, n, got)
	}
	return head
}

func TestTruncate(t *testing.T) {
	for _, s := range []string{"", "x", strings.Repeat("a", echoed.MaxBytes), strings.Repeat("é", echoed.MaxBytes/2)} {
		if got := echoed.Truncate(s); got != s {
			t.Errorf("Truncate(%d bytes) = %q, want it unchanged", len(s), got)
		}
	}
	long := strings.Repeat("a", echoed.MaxBytes+1)
	if got, want := echoed.Truncate(long), long[:echoed.MaxBytes]+"…(1 byte cut)"; got != want {
		t.Errorf("Truncate(%d bytes) = %q, want %q", len(long), got, want)
	}
	huge := strings.Repeat("x", 1<<20)
	if got, want := echoed.Truncate(huge), huge[:echoed.MaxBytes]+"…(1048320 bytes cut)"; got != want {
		t.Errorf("Truncate(1 MiB) = %q, want %q", got, want)
	}
	if n := len(echoed.Truncate(huge + huge)); n > echoed.MaxBytes+32 {
		t.Errorf("Truncate(2 MiB) is %d bytes", n)
	}
}

// TestTruncateRunes cuts strings of runes of every width at every offset
// inside a rune: the cut falls before the rune it would split.
func TestTruncateRunes(t *testing.T) {
	const n = echoed.MaxBytes
	for _, r := range []string{"é", "€", "𝄞"} { // 2, 3 and 4 bytes
		for pad := range len(r) {
			s := strings.Repeat("a", pad) + strings.Repeat(r, n) // the cut falls pad bytes into a rune
			got := echoed.Truncate(s)
			head := checkTruncated(t, s, n, got)
			if want := n - (n-pad)%len(r); len(head) != want {
				t.Errorf("Truncate(%q repeated after %d bytes) keeps %d bytes, want %d", r, pad, len(head), want)
			}
		}
	}
	// Bytes that are not UTF-8 are cut where they fall.
	s := strings.Repeat("\x80", 2*n)
	if head := checkTruncated(t, s, n, echoed.Truncate(s)); len(head) != n {
		t.Errorf("Truncate of %d continuation bytes keeps %d, want %d", len(s), len(head), n)
	}
	s = strings.Repeat("a", n-1) + "\xf0\x9d" + strings.Repeat("a", n) // a rune's first two bytes, then ASCII
	if head := checkTruncated(t, s, n, echoed.Truncate(s)); len(head) != n-1 {
		t.Errorf("Truncate of a rune broken at the cut keeps %d bytes, want %d", len(head), n-1)
	}
}

func TestTruncateTo(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc…(1 byte cut)"},
		{"abcd", 0, "…(4 bytes cut)"},
		{"abcd", -1, "…(4 bytes cut)"},
		{"é", 1, "…(2 bytes cut)"},
		{"", 0, ""},
	} {
		if got := echoed.TruncateTo(tc.s, tc.n); got != tc.want {
			t.Errorf("TruncateTo(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

// FuzzTruncate holds TruncateTo to checkTruncated's rules for any text and
// any bound. The seed corpus is in testdata/fuzz/FuzzTruncate.
func FuzzTruncate(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string, n int16) {
		checkTruncated(t, s, int(n), echoed.TruncateTo(s, int(n)))
		if len(s) <= echoed.MaxBytes {
			if got := echoed.Truncate(s); got != s {
				t.Fatalf("Truncate(%q) = %q", s, got)
			}
		} else {
			checkTruncated(t, s, echoed.MaxBytes, echoed.Truncate(s))
		}
	})
}
