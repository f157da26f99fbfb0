// Package echoed shortens values from outside the node (names, addresses,
// paths, fields of requests and manifests) before an error or a log line
// repeats them, so that a huge value never comes back whole: the one
// helper every layer uses for it.
package echoed

import (
	"strconv"
	"unicode/utf8"
)

// MaxBytes is how much of a value from outside the node (a name, an
// address, a field of a request or a manifest) an error or a log line
// repeats: Truncate keeps at most this many bytes of it.
const MaxBytes = 256

// Truncate returns s, a value from outside the node, shortened for an
// error message or a log line: s itself when it is at most MaxBytes
// long, otherwise its first MaxBytes bytes or fewer, cut between
// runes so that valid UTF-8 stays valid, followed by a marker saying how
// many bytes were cut: "…(1048320 bytes cut)". Whoever echoes what a
// client, a guest or a package sent uses it, so that a huge value never
// comes back whole.
func Truncate(s string) string { return TruncateTo(s, MaxBytes) }

// TruncateTo is Truncate with a bound of n bytes (at least 0) instead of
// MaxBytes, for text that holds several values, such as a whole error
// message.
func TruncateTo(s string, n int) string {
	if n < 0 {
		n = 0
	}
	if len(s) <= n {
		return s
	}
	// Step back to the start of the rune that the cut would split, at most
	// utf8.UTFMax-1 bytes. Bytes that are not UTF-8 are cut where they fall.
	cut := n
	for back := 0; back < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(s[cut]); back++ {
		cut--
	}
	if !utf8.RuneStart(s[cut]) {
		cut = n
	}
	unit := " bytes cut)"
	if len(s)-cut == 1 {
		unit = " byte cut)"
	}
	return s[:cut] + "…(" + strconv.Itoa(len(s)-cut) + unit
}
