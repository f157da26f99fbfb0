package store

// The drive tests are inside the package: they reach the write hook that
// simulates a failing disk, and the path normaliser for the fuzz target.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	tpkg   = "chat:alice.os"
	tdrive = "files"
)

// newDrives opens drives in a fresh directory with the given quota, and
// one drive tpkg/tdrive in it.
func newDrives(t testing.TB, quota int64) (*Drives, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "drives")
	d, err := OpenDrives(dir, NewUsage(quota))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if err := d.Create(tpkg, tdrive); err != nil {
		t.Fatal(err)
	}
	return d, dir
}

// diskBytes sums the regular files of pkg's drives as found on disk.
func diskBytes(t *testing.T, dir, pkg string) int64 {
	t.Helper()
	n, err := treeBytes(filepath.Join(dir, pkg), false)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return n
}

// checkUsage fails unless the counted bytes of pkg equal its bytes on disk.
func checkUsage(t *testing.T, d *Drives, dir, pkg string) {
	t.Helper()
	if got, want := d.usage.Used(pkg), diskBytes(t, dir, pkg); got != want {
		t.Fatalf("usage of %s = %d, files on disk hold %d", pkg, got, want)
	}
}

func mustRead(t *testing.T, d *Drives, p string) []byte {
	t.Helper()
	b, err := d.ReadFile(tpkg, tdrive, p)
	if err != nil {
		t.Fatalf("ReadFile(%q): %v", p, err)
	}
	return b
}

func TestDrivesCreateListRemove(t *testing.T) {
	d, dir := newDrives(t, 0)
	if err := d.Create(tpkg, tdrive); !errors.Is(err, ErrDriveExists) {
		t.Fatalf("second Create = %v, want ErrDriveExists", err)
	}
	if err := d.Create(tpkg, "a-2"); err != nil {
		t.Fatal(err)
	}
	if err := d.Create("other:bob.os", "files"); err != nil {
		t.Fatal(err)
	}
	got, err := d.List(tpkg)
	if err != nil || !slices.Equal(got, []string{"a-2", "files"}) {
		t.Fatalf("List = %q, %v", got, err)
	}
	if got, err := d.List("nobody:x"); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("List of a package without drives = %#v, %v; want empty", got, err)
	}
	for _, pkg := range []string{"", ".", "..", "nocolon", ":x", "x:", ".a:b", "A:b", "a/b:c", "a:b/../c", "a b:c", "a:b\x00", strings.Repeat("a", 255) + ":b"} {
		if err := d.Create(pkg, "x"); !errors.Is(err, ErrBadName) {
			t.Errorf("Create(%q, x) = %v, want ErrBadName", pkg, err)
		}
		if _, err := d.List(pkg); !errors.Is(err, ErrBadName) {
			t.Errorf("List(%q) = %v, want ErrBadName", pkg, err)
		}
		if err := d.WriteFile(pkg, "x", "f", nil); !errors.Is(err, ErrBadName) {
			t.Errorf("WriteFile(%q, x) = %v, want ErrBadName", pkg, err)
		}
	}
	for _, name := range []string{"", ".", "..", "A", "a_b", "a.b", "a/b", "a:b", strings.Repeat("a", 65)} {
		if err := d.Create(tpkg, name); !errors.Is(err, ErrBadName) {
			t.Errorf("Create(%q) = %v, want ErrBadName", name, err)
		}
		if _, err := d.ReadFile(tpkg, name, "f"); !errors.Is(err, ErrBadName) {
			t.Errorf("ReadFile(%q) = %v, want ErrBadName", name, err)
		}
	}
	if err := d.Create(tpkg, strings.Repeat("a", 64)); err != nil {
		t.Fatalf("64-byte drive name: %v", err)
	}

	if err := d.WriteFile(tpkg, "a-2", "d/f", []byte("12345")); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile(tpkg, tdrive, "g", []byte("abc")); err != nil {
		t.Fatal(err)
	}
	if u := d.usage.Used(tpkg); u != 8 {
		t.Fatalf("usage = %d, want 8", u)
	}
	if err := d.Remove(tpkg, "a-2"); err != nil {
		t.Fatal(err)
	}
	if u := d.usage.Used(tpkg); u != 3 {
		t.Fatalf("usage after Remove = %d, want 3", u)
	}
	checkUsage(t, d, dir, tpkg)
	if _, err := d.ReadFile(tpkg, "a-2", "d/f"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("read in a removed drive = %v, want ErrNotExist", err)
	}
	if err := d.WriteFile(tpkg, "a-2", "f", nil); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("write in a removed drive = %v, want ErrNotExist", err)
	}
	if err := d.Remove(tpkg, "a-2"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("second Remove = %v, want ErrNotExist", err)
	}
	if err := d.Remove(tpkg, "never"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Remove of a drive never made = %v, want ErrNotExist", err)
	}
	ents, err := os.ReadDir(filepath.Join(dir, tpkg))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), reservedPrefix) {
			t.Fatalf("Remove left %s behind", e.Name())
		}
	}
	// A drive made again under the removed name starts empty.
	if err := d.Create(tpkg, "a-2"); err != nil {
		t.Fatal(err)
	}
	if ents, err := d.ReadDir(tpkg, "a-2", "/"); err != nil || len(ents) != 0 {
		t.Fatalf("recreated drive holds %v, %v", ents, err)
	}

	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
	if _, err := d.ReadFile(tpkg, tdrive, "g"); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadFile after Close = %v, want ErrClosed", err)
	}
	if err := d.Create(tpkg, "new"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Create after Close = %v, want ErrClosed", err)
	}

	// Reopening counts what is there.
	d2, err := OpenDrives(dir, NewUsage(0))
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if u := d2.usage.Used(tpkg); u != 3 {
		t.Fatalf("usage after reopen = %d, want 3", u)
	}
	if got := mustRead(t, d2, "g"); string(got) != "abc" {
		t.Fatalf("after reopen g = %q", got)
	}
}

func TestDriveFileOps(t *testing.T) {
	d, dir := newDrives(t, 0)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// WriteFile, overwrite, leading slash and relative are the same file.
	must(d.WriteFile(tpkg, tdrive, "/docs/a.txt", []byte("hello")))
	if got := mustRead(t, d, "docs/a.txt"); string(got) != "hello" {
		t.Fatalf("read = %q", got)
	}
	must(d.WriteFile(tpkg, tdrive, "docs//./a.txt", []byte("hi")))
	if got := mustRead(t, d, "/docs/a.txt/"); string(got) != "hi" {
		t.Fatalf("after overwrite = %q", got)
	}
	must(d.WriteFile(tpkg, tdrive, "empty", nil))
	if got := mustRead(t, d, "empty"); got == nil || len(got) != 0 {
		t.Fatalf("empty file reads %#v", got)
	}

	// Append creates, then appends.
	must(d.Append(tpkg, tdrive, "log/1", []byte("ab")))
	must(d.Append(tpkg, tdrive, "log/1", []byte("cd")))
	must(d.Append(tpkg, tdrive, "log/1", nil))
	if got := mustRead(t, d, "log/1"); string(got) != "abcd" {
		t.Fatalf("after appends = %q", got)
	}

	// WriteAt inside, across the end, past the end (a hole of zeros).
	must(d.WriteAt(tpkg, tdrive, "log/1", 1, []byte("XY")))
	must(d.WriteAt(tpkg, tdrive, "log/1", 3, []byte("ZW")))
	must(d.WriteAt(tpkg, tdrive, "log/1", 8, []byte("!")))
	must(d.WriteAt(tpkg, tdrive, "log/1", 100, nil)) // writes nothing, extends nothing
	if got := mustRead(t, d, "log/1"); string(got) != "aXYZW\x00\x00\x00!" {
		t.Fatalf("after WriteAt = %q", got)
	}
	must(d.WriteAt(tpkg, tdrive, "new-at", 2, []byte("q")))
	if got := mustRead(t, d, "new-at"); string(got) != "\x00\x00q" {
		t.Fatalf("WriteAt of a new file = %q", got)
	}

	// ReadAt ranges.
	for _, c := range []struct {
		off  int64
		n    int
		want string
	}{{0, 3, "aXY"}, {4, 100, "W\x00\x00\x00!"}, {8, 1, "!"}, {9, 5, ""}, {50, 5, ""}, {2, 0, ""}} {
		got, err := d.ReadAt(tpkg, tdrive, "log/1", c.off, c.n)
		if err != nil || string(got) != c.want || got == nil {
			t.Errorf("ReadAt(%d, %d) = %q, %v; want %q", c.off, c.n, got, err, c.want)
		}
	}
	if _, err := d.ReadAt(tpkg, tdrive, "log/1", -1, 1); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("ReadAt(-1) = %v, want ErrInvalid", err)
	}
	if _, err := d.ReadAt(tpkg, tdrive, "log/1", 0, -1); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("ReadAt(n=-1) = %v, want ErrInvalid", err)
	}
	if err := d.WriteAt(tpkg, tdrive, "log/1", -1, []byte("x")); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("WriteAt(-1) = %v, want ErrInvalid", err)
	}

	// Mkdir (with parents, idempotent), ReadDir, Stat.
	must(d.Mkdir(tpkg, tdrive, "x/y/z"))
	must(d.Mkdir(tpkg, tdrive, "x/y"))
	if err := d.Mkdir(tpkg, tdrive, "empty/sub"); !errors.Is(err, ErrBadPath) {
		t.Errorf("Mkdir under a file = %v, want ErrBadPath", err)
	}
	ents, err := d.ReadDir(tpkg, tdrive, "")
	must(err)
	var names []string
	for _, e := range ents {
		names = append(names, fmt.Sprintf("%s:%v:%d", e.Name, e.Dir, e.Size))
		if e.ModTime.IsZero() {
			t.Errorf("%s has no mtime", e.Name)
		}
	}
	if want := []string{"docs:true:0", "empty:false:0", "log:true:0", "new-at:false:3", "x:true:0"}; !slices.Equal(names, want) {
		t.Fatalf("ReadDir = %q, want %q", names, want)
	}
	if _, err := d.ReadDir(tpkg, tdrive, "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadDir of a missing dir = %v", err)
	}
	st, err := d.Stat(tpkg, tdrive, "log/1")
	if err != nil || st.Name != "1" || st.Dir || st.Size != 9 {
		t.Fatalf("Stat = %+v, %v", st, err)
	}
	st, err = d.Stat(tpkg, tdrive, "/")
	if err != nil || st.Name != "" || !st.Dir {
		t.Fatalf("Stat(/) = %+v, %v", st, err)
	}
	if _, err := d.Stat(tpkg, tdrive, "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat(missing) = %v", err)
	}
	if _, err := d.ReadFile(tpkg, tdrive, "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadFile(missing) = %v", err)
	}
	if _, err := d.ReadFile(tpkg, tdrive, "x"); !errors.Is(err, ErrBadPath) {
		t.Fatalf("ReadFile(dir) = %v, want ErrBadPath", err)
	}
	for _, err := range []error{
		d.WriteFile(tpkg, tdrive, "x", nil),
		d.Append(tpkg, tdrive, "x", nil),
		d.WriteAt(tpkg, tdrive, "x", 0, nil),
		d.WriteFile(tpkg, tdrive, "/", nil),
		d.WriteFile(tpkg, tdrive, "empty/under-a-file", nil),
	} {
		if !errors.Is(err, ErrBadPath) {
			t.Errorf("write onto a directory or under a file = %v, want ErrBadPath", err)
		}
	}
	checkUsage(t, d, dir, tpkg)

	// Rename: a file, into a new directory, over a file, a directory.
	must(d.Rename(tpkg, tdrive, "docs/a.txt", "moved/b.txt"))
	if got := mustRead(t, d, "moved/b.txt"); string(got) != "hi" {
		t.Fatalf("renamed = %q", got)
	}
	if _, err := d.Stat(tpkg, tdrive, "docs/a.txt"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("old name after Rename: %v", err)
	}
	must(d.Rename(tpkg, tdrive, "moved/b.txt", "new-at"))
	if got := mustRead(t, d, "new-at"); string(got) != "hi" {
		t.Fatalf("renamed over = %q", got)
	}
	checkUsage(t, d, dir, tpkg)
	must(d.Rename(tpkg, tdrive, "x", "docs/x2"))
	if st, err := d.Stat(tpkg, tdrive, "docs/x2/y/z"); err != nil || !st.Dir {
		t.Fatalf("moved dir: %+v %v", st, err)
	}
	must(d.Rename(tpkg, tdrive, "new-at", "/new-at/"))
	for _, c := range [][2]string{{"missing", "m2"}, {"/", "r"}, {"log", "/"}, {"docs", "docs/x2/in"}, {"..", "a"}} {
		err := d.Rename(tpkg, tdrive, c[0], c[1])
		if err == nil {
			t.Errorf("Rename(%q, %q) succeeded", c[0], c[1])
		}
	}

	// RemovePath: a file, a non-empty directory (refused unless recursive).
	must(d.RemovePath(tpkg, tdrive, "new-at", false))
	if err := d.RemovePath(tpkg, tdrive, "new-at", false); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("second RemovePath = %v", err)
	}
	must(d.WriteFile(tpkg, tdrive, "docs/x2/y/f", []byte("1234567")))
	if err := d.RemovePath(tpkg, tdrive, "docs", false); err == nil {
		t.Fatal("RemovePath of a non-empty directory without recursive succeeded")
	}
	if err := d.RemovePath(tpkg, tdrive, "/", true); !errors.Is(err, ErrBadPath) {
		t.Fatalf("RemovePath(/) = %v, want ErrBadPath", err)
	}
	before := d.usage.Used(tpkg)
	must(d.RemovePath(tpkg, tdrive, "docs", true))
	if got := d.usage.Used(tpkg); got != before-7 {
		t.Fatalf("usage after recursive remove = %d, want %d", got, before-7)
	}
	checkUsage(t, d, dir, tpkg)
	must(d.RemovePath(tpkg, tdrive, "log/1", false))
	must(d.RemovePath(tpkg, tdrive, "log", false))
	must(d.RemovePath(tpkg, tdrive, "empty", false))
	must(d.RemovePath(tpkg, tdrive, "/moved", false))
	if ents, err := d.ReadDir(tpkg, tdrive, "/"); err != nil || len(ents) != 0 {
		t.Fatalf("drive after removing all = %+v, %v", ents, err)
	}
	if u := d.usage.Used(tpkg); u != 0 {
		t.Fatalf("usage of an empty drive = %d", u)
	}

	// Modes: directories 0700, files 0600.
	must(d.WriteFile(tpkg, tdrive, "m/f", []byte("x")))
	for p, want := range map[string]fs.FileMode{".": 0o700, "m": 0o700, "m/f": 0o600} {
		fi, err := os.Stat(filepath.Join(dir, tpkg, tdrive, p))
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("mode of %s = %v, %v; want %v", p, fi.Mode().Perm(), err, want)
		}
	}
}

// TestDriveConfinement: nothing outside the drive can be reached, not by
// "..", absolute paths, NUL bytes, nor symbolic links planted in the drive.
func TestDriveConfinement(t *testing.T) {
	d, dir := newDrives(t, 0)
	if err := d.Create("other:bob.os", "files"); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile("other:bob.os", "files", "secret", []byte("bob's")); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(filepath.Dir(dir), "outside")
	if err := os.MkdirAll(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("top secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	driveDir := filepath.Join(dir, tpkg, tdrive)
	for name, target := range map[string]string{
		"out-rel":   "../../../outside",
		"out-abs":   outside,
		"out-file":  filepath.Join(outside, "secret"),
		"sibling":   "../../other:bob.os/files",
		"drive-up":  "..",
		"etc":       "/etc",
		"inside-ok": "real",
	} {
		if err := os.Symlink(target, filepath.Join(driveDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.WriteFile(tpkg, tdrive, "real/f", []byte("in")); err != nil {
		t.Fatal(err)
	}

	escapes := []string{"out-rel/secret", "out-abs/secret", "out-file", "sibling/secret", "drive-up/files/real/f", "etc/passwd"}
	for _, p := range escapes {
		if b, err := d.ReadFile(tpkg, tdrive, p); !errors.Is(err, ErrBadPath) {
			t.Errorf("ReadFile(%q) = %q, %v; want ErrBadPath", p, b, err)
		}
		if b, err := d.ReadAt(tpkg, tdrive, p, 0, 10); !errors.Is(err, ErrBadPath) {
			t.Errorf("ReadAt(%q) = %q, %v; want ErrBadPath", p, b, err)
		}
		if _, err := d.Stat(tpkg, tdrive, p); !errors.Is(err, ErrBadPath) {
			t.Errorf("Stat(%q) = %v; want ErrBadPath", p, err)
		}
		if err := d.Append(tpkg, tdrive, p, []byte("pwned")); !errors.Is(err, ErrBadPath) {
			t.Errorf("Append(%q) = %v, want ErrBadPath", p, err)
		}
		if err := d.WriteAt(tpkg, tdrive, p, 0, []byte("pwned")); !errors.Is(err, ErrBadPath) {
			t.Errorf("WriteAt(%q) = %v, want ErrBadPath", p, err)
		}
		if strings.Contains(p, "/") {
			if err := d.WriteFile(tpkg, tdrive, p, []byte("pwned")); !errors.Is(err, ErrBadPath) {
				t.Errorf("WriteFile(%q) = %v, want ErrBadPath", p, err)
			}
		}
		if err := d.WriteFile(tpkg, tdrive, p+"/new", []byte("pwned")); err == nil {
			t.Errorf("WriteFile(%q) succeeded", p+"/new")
		}
		if err := d.Mkdir(tpkg, tdrive, p+"/newdir"); err == nil {
			t.Errorf("Mkdir(%q) succeeded", p+"/newdir")
		}
		if _, err := d.ReadDir(tpkg, tdrive, p); err == nil {
			t.Errorf("ReadDir(%q) succeeded", p)
		}
		if err := d.Rename(tpkg, tdrive, p, "stolen"); err == nil && !strings.Contains(p, "/") {
			// Renaming the link itself is allowed (it is an entry of the
			// drive); what must not happen is reaching through it.
			if err := d.Rename(tpkg, tdrive, "stolen", p); err != nil {
				t.Fatal(err)
			}
		} else if err == nil {
			t.Errorf("Rename(%q) succeeded", p)
		}
		if err := d.RemovePath(tpkg, tdrive, p+"/x", true); err == nil {
			t.Errorf("RemovePath(%q) succeeded", p+"/x")
		}
	}
	for _, p := range []string{"../x", "a/../../x", "..", "/..", "a/..", "x\x00y", "\x00", "a\x7fb", "a\nb"} {
		if _, err := d.ReadFile(tpkg, tdrive, p); !errors.Is(err, ErrBadPath) {
			t.Errorf("ReadFile(%q) = %v; want ErrBadPath", p, err)
		}
		if err := d.WriteFile(tpkg, tdrive, p, []byte("x")); !errors.Is(err, ErrBadPath) {
			t.Errorf("WriteFile(%q) = %v; want ErrBadPath", p, err)
		}
	}
	// WriteFile of the link itself replaces the link (an entry of the
	// drive) by a file; the target is untouched.
	if err := d.WriteFile(tpkg, tdrive, "out-file", []byte("mine")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(driveDir, "out-file")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("out-file after WriteFile: %v, %v", fi, err)
	}
	// An absolute path is a path inside the drive, never the host's.
	if err := d.WriteFile(tpkg, tdrive, "/tmp/abs", []byte("in")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(driveDir, "tmp", "abs")); err != nil {
		t.Fatalf("absolute path did not land in the drive: %v", err)
	}
	if _, err := d.ReadFile(tpkg, tdrive, "/proc/self/environ"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadFile(/proc/self/environ) = %v, want ErrNotExist", err)
	}
	// A link that stays inside the drive works.
	if got := mustRead(t, d, "inside-ok/f"); string(got) != "in" {
		t.Fatalf("inside link read %q", got)
	}
	// Nothing outside changed.
	if b, err := os.ReadFile(filepath.Join(outside, "secret")); err != nil || string(b) != "top secret" {
		t.Fatalf("outside secret = %q, %v", b, err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 1 {
		t.Fatalf("outside now holds %d entries", len(ents))
	}
	if b, err := d.ReadFile("other:bob.os", "files", "secret"); err != nil || string(b) != "bob's" {
		t.Fatalf("other package's file = %q, %v", b, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "other:bob.os", "files")); len(ents) != 1 {
		t.Fatalf("other package's drive now holds %d entries", len(ents))
	}
	if _, err := os.Stat("/etc/passwd/pwned"); err == nil {
		t.Fatal("wrote under /etc")
	}
}

func TestDriveOddNames(t *testing.T) {
	d, _ := newDrives(t, 0)
	ok := []string{"héllo wörld.txt", "日本語/ファイル", "a b/c  d", ".hidden", "..dots", "...", "-dash", "back\\slash", "quote\"'`", "star*?[]", "weft-no-dot", strings.Repeat("n", 255), "emoji-😀"}
	for _, p := range ok {
		if err := d.WriteFile(tpkg, tdrive, p, []byte(p)); err != nil {
			t.Errorf("WriteFile(%q): %v", p, err)
			continue
		}
		if got := mustRead(t, d, p); string(got) != p {
			t.Errorf("ReadFile(%q) = %q", p, got)
		}
	}
	// A path of exactly MaxDrivePathBytes is accepted; one byte more is not.
	seg := strings.Repeat("s", 200)
	long := strings.Repeat(seg+"/", MaxDrivePathBytes/201)
	long += strings.Repeat("t", MaxDrivePathBytes-len(long))
	if len(long) != MaxDrivePathBytes {
		t.Fatalf("test path is %d bytes", len(long))
	}
	if err := d.WriteFile(tpkg, tdrive, long, []byte("deep")); err != nil {
		t.Fatalf("path of %d bytes: %v", len(long), err)
	}
	bad := []string{strings.Repeat("n", 256), long + "u", "\xff\xfe", "a/\xc0/b", "tab\there", "c1\u0085", ".weft-tmp-x", "a/.weft-removed"}
	for _, p := range bad {
		if err := d.WriteFile(tpkg, tdrive, p, nil); !errors.Is(err, ErrBadPath) {
			t.Errorf("WriteFile(%.40q) = %v, want ErrBadPath", p, err)
		}
		if _, err := d.Stat(tpkg, tdrive, p); !errors.Is(err, ErrBadPath) {
			t.Errorf("Stat(%.40q) = %v, want ErrBadPath", p, err)
		}
	}
}

func TestDriveOversized(t *testing.T) {
	d, _ := newDrives(t, 0)
	if err := d.WriteFile(tpkg, tdrive, "f", []byte("keep")); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, MaxDriveWriteBytes+1)
	for name, err := range map[string]error{
		"WriteFile": d.WriteFile(tpkg, tdrive, "f", big),
		"Append":    d.Append(tpkg, tdrive, "f", big),
		"WriteAt":   d.WriteAt(tpkg, tdrive, "f", 0, big),
	} {
		if !errors.Is(err, ErrValueTooLarge) {
			t.Errorf("%s of %d bytes = %v, want ErrValueTooLarge", name, len(big), err)
		}
	}
	if _, err := d.ReadAt(tpkg, tdrive, "f", 0, MaxDriveWriteBytes+1); !errors.Is(err, ErrValueTooLarge) {
		t.Errorf("ReadAt of %d bytes = %v, want ErrValueTooLarge", MaxDriveWriteBytes+1, err)
	}
	if got := mustRead(t, d, "f"); string(got) != "keep" {
		t.Fatalf("after refused writes f = %q", got)
	}
	// A file grown past MaxDriveWriteBytes is read with ReadAt, not whole.
	if err := d.WriteAt(tpkg, tdrive, "sparse", MaxDriveWriteBytes, []byte("end")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadFile(tpkg, tdrive, "sparse"); !errors.Is(err, ErrValueTooLarge) {
		t.Errorf("ReadFile of a %d-byte file = %v, want ErrValueTooLarge", MaxDriveWriteBytes+3, err)
	}
	if got, err := d.ReadAt(tpkg, tdrive, "sparse", MaxDriveWriteBytes-1, 10); err != nil || string(got) != "\x00end" {
		t.Errorf("ReadAt at the end = %q, %v", got, err)
	}
	if testing.Short() {
		return
	}
	if err := d.WriteFile(tpkg, tdrive, "max", big[:MaxDriveWriteBytes]); err != nil {
		t.Fatalf("WriteFile of exactly MaxDriveWriteBytes: %v", err)
	}
	if got, err := d.ReadFile(tpkg, tdrive, "max"); err != nil || len(got) != MaxDriveWriteBytes {
		t.Fatalf("ReadFile of exactly MaxDriveWriteBytes: %d bytes, %v", len(got), err)
	}
}

func TestDriveQuota(t *testing.T) {
	d, dir := newDrives(t, 100)
	if err := d.Create(tpkg, "second"); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	quota := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, ErrQuota) {
			t.Fatalf("%s = %v, want ErrQuota", name, err)
		}
	}
	must(d.WriteFile(tpkg, tdrive, "a", bytes.Repeat([]byte("a"), 60)))
	quota("WriteFile of a new 50-byte file", d.WriteFile(tpkg, tdrive, "b", bytes.Repeat([]byte("b"), 50)))
	if _, err := d.Stat(tpkg, tdrive, "b"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("refused WriteFile left a file: %v", err)
	}
	quota("WriteFile in another drive", d.WriteFile(tpkg, "second", "b", bytes.Repeat([]byte("b"), 41)))
	// Replacing counts only the growth: 60 → 100 fits.
	must(d.WriteFile(tpkg, tdrive, "a", bytes.Repeat([]byte("A"), 100)))
	quota("Append at a full quota", d.Append(tpkg, tdrive, "a", []byte("x")))
	quota("Append creating a file", d.Append(tpkg, tdrive, "c", []byte("x")))
	quota("Append creating directories", d.Append(tpkg, tdrive, "cdir/c", []byte("x")))
	quota("WriteAt creating directories", d.WriteAt(tpkg, tdrive, "cdir/c", 0, []byte("x")))
	quota("WriteFile creating directories", d.WriteFile(tpkg, tdrive, "cdir/c", []byte("x")))
	for _, p := range []string{"c", "cdir"} {
		if _, err := d.Stat(tpkg, tdrive, p); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("refused write left %s: %v", p, err)
		}
	}
	quota("WriteAt past the end", d.WriteAt(tpkg, tdrive, "a", 99, []byte("xy")))
	quota("WriteAt making a hole", d.WriteAt(tpkg, tdrive, "d", 1000, []byte("x")))
	if got := mustRead(t, d, "a"); !bytes.Equal(got, bytes.Repeat([]byte("A"), 100)) {
		t.Fatalf("refused writes changed a: %q", got)
	}
	// Overwriting in place costs nothing; empty files cost nothing.
	must(d.WriteAt(tpkg, tdrive, "a", 98, []byte("zz")))
	must(d.WriteFile(tpkg, tdrive, "empty", nil))
	// Shrinking gives bytes back.
	must(d.WriteFile(tpkg, tdrive, "a", bytes.Repeat([]byte("s"), 10)))
	must(d.Append(tpkg, tdrive, "a", bytes.Repeat([]byte("t"), 50)))
	must(d.WriteFile(tpkg, "second", "b", bytes.Repeat([]byte("b"), 40)))
	if u := d.usage.Used(tpkg); u != 100 {
		t.Fatalf("usage = %d, want 100", u)
	}
	checkUsage(t, d, dir, tpkg)
	// Another package has its own quota.
	must(d.Create("other:bob.os", "files"))
	must(d.WriteFile("other:bob.os", "files", "f", bytes.Repeat([]byte("o"), 100)))
	// The quota covers what the key-value store counts in the same Usage.
	must(d.RemovePath(tpkg, tdrive, "a", false))
	must(d.usage.Reserve(tpkg, 50)) // as a key-value write would
	quota("WriteFile past the shared quota", d.WriteFile(tpkg, tdrive, "a", bytes.Repeat([]byte("a"), 11)))
	must(d.WriteFile(tpkg, tdrive, "a", bytes.Repeat([]byte("a"), 10)))

	// A lowered quota: the opener counts what is there, writes beyond it
	// fail, deletes succeed.
	must(d.Close())
	d2, err := OpenDrives(dir, NewUsage(20))
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if u := d2.usage.Used(tpkg); u != 50 {
		t.Fatalf("reopened usage = %d, want 50", u)
	}
	quota("WriteFile over a lowered quota", d2.WriteFile(tpkg, tdrive, "z", []byte("z")))
	must(d2.RemovePath(tpkg, tdrive, "a", false))
	must(d2.Remove(tpkg, "second"))
	if u := d2.usage.Used(tpkg); u != 0 {
		t.Fatalf("usage after deletes = %d, want 0", u)
	}
	must(d2.WriteFile(tpkg, tdrive, "z", []byte("z")))
}

// TestDriveWriteFailures simulates a disk failing at each point of a
// write: the old content survives whole, no temporary file is left, and
// the quota is given back.
func TestDriveWriteFailures(t *testing.T) {
	d, dir := newDrives(t, 1000)
	driveDir := filepath.Join(dir, tpkg, tdrive)
	if err := d.WriteFile(tpkg, tdrive, "dir/f", []byte("old content")); err != nil {
		t.Fatal(err)
	}
	errDisk := errors.New("simulated disk failure")
	for _, c := range []struct {
		stage string
		write func(p string) error
	}{
		{"temp-written", func(p string) error { return d.WriteFile(tpkg, tdrive, p, []byte("new, longer content")) }},
		{"before-rename", func(p string) error { return d.WriteFile(tpkg, tdrive, p, []byte("new, longer content")) }},
		{"write", func(p string) error { return d.Append(tpkg, tdrive, p, []byte(" and more")) }},
		{"write", func(p string) error { return d.WriteAt(tpkg, tdrive, p, 11, []byte("stuff that grows it")) }},
	} {
		used := d.usage.Used(tpkg)
		var hits atomic.Int32
		d.hook = func(stage string) error {
			if stage == c.stage {
				hits.Add(1)
				return errDisk
			}
			return nil
		}
		for _, p := range []string{"dir/f", "dir/new"} {
			if err := c.write(p); !errors.Is(err, errDisk) {
				t.Fatalf("%s of %s with a failure at %s = %v", c.stage, p, c.stage, err)
			}
		}
		d.hook = nil
		if hits.Load() != 2 {
			t.Fatalf("hook %s ran %d times", c.stage, hits.Load())
		}
		if got := mustRead(t, d, "dir/f"); string(got) != "old content" {
			t.Fatalf("after a failure at %s the file holds %q", c.stage, got)
		}
		if _, err := d.Stat(tpkg, tdrive, "dir/new"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("after a failure at %s a new file exists: %v", c.stage, err)
		}
		if u := d.usage.Used(tpkg); u != used {
			t.Fatalf("after a failure at %s usage = %d, want %d", c.stage, u, used)
		}
		ents, err := os.ReadDir(filepath.Join(driveDir, "dir"))
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 1 {
			t.Fatalf("after a failure at %s dir holds %d entries", c.stage, len(ents))
		}
	}
	checkUsage(t, d, dir, tpkg)
}

// TestOpenDrivesCleansUp: temporary files and half-removed drives that a
// crash left are deleted and not counted; files are counted.
func TestOpenDrivesCleansUp(t *testing.T) {
	d, dir := newDrives(t, 0)
	if err := d.WriteFile(tpkg, tdrive, "a/b", []byte("12345")); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	leftovers := []string{
		filepath.Join(dir, tpkg, tdrive, "a", reservedPrefix+"tmp-0123"),
		filepath.Join(dir, tpkg, tdrive, reservedPrefix+"tmp-4567"),
		filepath.Join(dir, tpkg, reservedPrefix+"removed-x-89ab", "f"),
	}
	for _, p := range leftovers {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("leftover bytes"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Not a package: left alone, not counted.
	if err := os.WriteFile(filepath.Join(dir, "stray"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	usage := NewUsage(0)
	d2, err := OpenDrives(dir, usage)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if u := usage.Used(tpkg); u != 5 {
		t.Fatalf("usage = %d, want 5", u)
	}
	for _, p := range leftovers {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("leftover %s still there: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, tpkg, reservedPrefix+"removed-x-89ab")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("half-removed drive still there: %v", err)
	}
	if _, err := OpenDrives(dir, nil); err == nil {
		t.Error("OpenDrives with nil usage succeeded")
	}
	if _, err := OpenDrives("", NewUsage(0)); err == nil {
		t.Error("OpenDrives of an empty path succeeded")
	}
}

// TestDrivesConcurrent hammers one drive from many goroutines under -race:
// appends to a shared file, whole writes of a shared file read back by
// readers, private files, directory churn, and drive listing.
func TestDrivesConcurrent(t *testing.T) {
	d, dir := newDrives(t, 0)
	const (
		workers = 8
		rounds  = 40
		recLen  = 16
	)
	record := func(w, i int) []byte { return fmt.Appendf(nil, "w%02d-i%04d------\n", w, i)[:recLen] }
	whole := func(w, i int) []byte { return bytes.Repeat([]byte{byte('a' + w)}, 10+i) }
	if err := d.WriteFile(tpkg, tdrive, "shared", whole(0, 0)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*workers)
	stop := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := fmt.Sprintf("own/%d", w)
			for i := range rounds {
				if err := d.Append(tpkg, tdrive, "log", record(w, i)); err != nil {
					errs <- err
					return
				}
				if err := d.WriteFile(tpkg, tdrive, "shared", whole(w, i)); err != nil {
					errs <- err
					return
				}
				if err := d.WriteAt(tpkg, tdrive, own, int64(i*recLen), record(w, i)); err != nil {
					errs <- err
					return
				}
				tmp := fmt.Sprintf("tmp/%d/%d", w, i)
				if err := d.WriteFile(tpkg, tdrive, tmp, []byte("t")); err != nil {
					errs <- err
					return
				}
				if err := d.Rename(tpkg, tdrive, tmp, tmp+"-moved"); err != nil {
					errs <- err
					return
				}
				if err := d.RemovePath(tpkg, tdrive, tmp+"-moved", false); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				b, err := d.ReadFile(tpkg, tdrive, "shared")
				if err != nil {
					errs <- err
					return
				}
				if len(b) < 10 || !bytes.Equal(b, bytes.Repeat(b[:1], len(b))) {
					errs <- fmt.Errorf("read a mixed whole write: %q", b)
					return
				}
				if _, err := d.ReadDir(tpkg, tdrive, "/"); err != nil {
					errs <- err
					return
				}
				if _, err := d.List(tpkg); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	log := mustRead(t, d, "log")
	if len(log) != workers*rounds*recLen {
		t.Fatalf("log is %d bytes, want %d", len(log), workers*rounds*recLen)
	}
	seen := make(map[string]bool)
	next := make([]int, workers)
	for i := 0; i < len(log); i += recLen {
		rec := log[i : i+recLen]
		var w, n int
		if _, err := fmt.Sscanf(string(rec), "w%02d-i%04d", &w, &n); err != nil {
			t.Fatalf("torn record %q: %v", rec, err)
		}
		if seen[string(rec)] || n != next[w] {
			t.Fatalf("record %q out of order or repeated", rec)
		}
		seen[string(rec)] = true
		next[w]++
	}
	for w := range workers {
		want := make([]byte, 0, rounds*recLen)
		for i := range rounds {
			want = append(want, record(w, i)...)
		}
		if got := mustRead(t, d, fmt.Sprintf("own/%d", w)); !bytes.Equal(got, want) {
			t.Fatalf("own/%d = %q", w, got)
		}
	}
	checkUsage(t, d, dir, tpkg)
}

func TestDriveSnapshot(t *testing.T) {
	d, dir := newDrives(t, 0)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(d.Create("other:bob.os", "data"))
	must(d.WriteFile(tpkg, tdrive, "a", []byte("a1")))
	must(d.WriteFile(tpkg, tdrive, "dir/b", []byte("b1")))
	must(d.WriteFile(tpkg, tdrive, "c", []byte("c1")))
	must(d.WriteFile(tpkg, tdrive, "e", []byte("e1")))
	must(d.WriteFile("other:bob.os", "data", "x", []byte("x1")))
	must(d.Mkdir(tpkg, tdrive, "emptydir"))
	used := d.usage.Used(tpkg)

	snap := filepath.Join(filepath.Dir(dir), "snap1")
	must(d.Snapshot(snap))
	if u := d.usage.Used(tpkg); u != used {
		t.Fatalf("Snapshot changed usage: %d → %d", used, u)
	}
	// Every kind of later write leaves the snapshot as it was.
	must(d.Append(tpkg, tdrive, "a", []byte("+more")))
	must(d.WriteAt(tpkg, tdrive, "dir/b", 0, []byte("B2")))
	must(d.WriteFile(tpkg, tdrive, "c", []byte("c2")))
	must(d.RemovePath(tpkg, tdrive, "e", false))
	must(d.Rename(tpkg, tdrive, "emptydir", "renamed"))
	must(d.WriteAt("other:bob.os", "data", "x", 2, []byte("!")))
	must(d.WriteFile(tpkg, tdrive, "new", []byte("n")))
	want := map[string]string{
		tpkg + "/" + tdrive + "/a":     "a1",
		tpkg + "/" + tdrive + "/dir/b": "b1",
		tpkg + "/" + tdrive + "/c":     "c1",
		tpkg + "/" + tdrive + "/e":     "e1",
		"other:bob.os/data/x":          "x1",
	}
	got := readTree(t, snap)
	if !mapsEqual(got, want) {
		t.Fatalf("snapshot holds %q, want %q", got, want)
	}
	if fi, err := os.Stat(filepath.Join(snap, tpkg, tdrive, "emptydir")); err != nil || !fi.IsDir() {
		t.Fatalf("empty directory missing from the snapshot: %v", err)
	}
	for p, w := range map[string]string{"a": "a1+more", "dir/b": "B2", "c": "c2", "new": "n"} {
		if g := mustRead(t, d, p); string(g) != w {
			t.Fatalf("live %s = %q, want %q", p, g, w)
		}
	}
	checkUsage(t, d, dir, tpkg)
	// The live files no longer share storage with the snapshot.
	for _, p := range []string{"a", "dir/b", "c"} {
		fi, err := os.Stat(filepath.Join(dir, tpkg, tdrive, p))
		if err != nil || linkCount(fi) != 1 {
			t.Fatalf("live %s has %d links, %v", p, linkCount(fi), err)
		}
	}
	// A second snapshot, with the first still there.
	snap2 := filepath.Join(filepath.Dir(dir), "snap2")
	must(d.Snapshot(snap2))
	must(d.Append(tpkg, tdrive, "a", []byte("!")))
	if g := readTree(t, snap2)[tpkg+"/"+tdrive+"/a"]; g != "a1+more" {
		t.Fatalf("second snapshot a = %q", g)
	}
	if !mapsEqual(readTree(t, snap), want) {
		t.Fatal("first snapshot changed")
	}

	if err := d.Snapshot(snap); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Snapshot into an existing directory = %v, want ErrExist", err)
	}
	if err := d.Snapshot(filepath.Join(dir, "inside")); err == nil {
		t.Fatal("Snapshot inside the drives directory succeeded")
	}
	// The barrier holds writers off until released.
	release := d.Barrier()
	done := make(chan error, 1)
	go func() { done <- d.WriteFile(tpkg, tdrive, "held", []byte("h")) }()
	select {
	case err := <-done:
		t.Fatalf("write finished while the barrier was held: %v", err)
	default:
	}
	if b, err := d.ReadFile(tpkg, tdrive, "c"); err != nil || string(b) != "c2" {
		t.Fatalf("read under the barrier = %q, %v", b, err)
	}
	release()
	release() // twice is harmless
	must(<-done)
}

// readTree returns the regular files under dir by slash path.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := make(map[string]string)
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestDriveSnapshotConcurrent takes snapshots while writers append,
// write in place and replace files. Each writer's file goes through
// numbered versions; each snapshot must hold, for every file, exactly one
// whole version: no older than the last one finished before Snapshot was
// called, no newer than the last one started before it returned. Every
// snapshot is checked again at the end, after all later writes.
func TestDriveSnapshotConcurrent(t *testing.T) {
	d, dir := newDrives(t, 0)
	const (
		perMode   = 3
		versions  = 60
		snapshots = 8
		block     = 4096
	)
	type writer struct {
		path     string
		write    func(v int) error
		content  func(v int) []byte // the file after version v
		started  atomic.Int64
		finished atomic.Int64
	}
	rec := func(v int) []byte { return fmt.Appendf(nil, "%015d\n", v) }
	var ws []*writer
	for i := range perMode {
		app := &writer{path: fmt.Sprintf("append/%d", i)}
		app.write = func(v int) error { return d.Append(tpkg, tdrive, app.path, rec(v)) }
		app.content = func(v int) []byte {
			var b []byte
			for k := 1; k <= v; k++ {
				b = append(b, rec(k)...)
			}
			return b
		}
		at := &writer{path: fmt.Sprintf("at/%d", i)}
		at.write = func(v int) error { return d.WriteAt(tpkg, tdrive, at.path, 0, bytes.Repeat([]byte{byte(v)}, block)) }
		at.content = func(v int) []byte { return bytes.Repeat([]byte{byte(v)}, block) }
		whole := &writer{path: fmt.Sprintf("whole/%d", i)}
		whole.write = func(v int) error { return d.WriteFile(tpkg, tdrive, whole.path, bytes.Repeat(rec(v), v)) }
		whole.content = func(v int) []byte { return bytes.Repeat(rec(v), v) }
		ws = append(ws, app, at, whole)
	}
	// Version 0: every file exists, empty for appends.
	for _, w := range ws {
		if err := d.WriteFile(tpkg, tdrive, w.path, w.content(0)); err != nil {
			t.Fatal(err)
		}
	}
	// progress counts finished versions of all writers, so that the
	// snapshots can be spread over the writers' run.
	var (
		progressMu sync.Mutex
		progress   int
		failed     bool
		progressed = sync.NewCond(&progressMu)
	)
	var wg sync.WaitGroup
	errs := make(chan error, len(ws)+1)
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := 1; v <= versions; v++ {
				w.started.Store(int64(v))
				err := w.write(v)
				if err == nil {
					w.finished.Store(int64(v))
				}
				progressMu.Lock()
				progress++
				failed = failed || err != nil
				progressed.Broadcast()
				progressMu.Unlock()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	type bounds struct{ lo, hi []int64 }
	snapDirs := make([]string, 0, snapshots)
	snapBounds := make([]bounds, 0, snapshots)
	for s := range snapshots {
		progressMu.Lock()
		for progress < s*len(ws)*versions/snapshots && !failed {
			progressed.Wait()
		}
		progressMu.Unlock()
		b := bounds{lo: make([]int64, len(ws)), hi: make([]int64, len(ws))}
		for i, w := range ws {
			b.lo[i] = w.finished.Load()
		}
		into := filepath.Join(filepath.Dir(dir), fmt.Sprintf("snap-%d", s))
		if err := d.Snapshot(into); err != nil {
			t.Fatal(err)
		}
		for i, w := range ws {
			b.hi[i] = w.started.Load()
		}
		snapDirs = append(snapDirs, into)
		snapBounds = append(snapBounds, b)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	check := func(when string) {
		spread := 0
		for s, into := range snapDirs {
			for i, w := range ws {
				got, err := os.ReadFile(filepath.Join(into, tpkg, tdrive, w.path))
				if err != nil {
					t.Fatalf("%s: snapshot %d: %v", when, s, err)
				}
				lo, hi := snapBounds[s].lo[i], snapBounds[s].hi[i]
				match := -1
				for v := lo; v <= hi; v++ {
					if bytes.Equal(got, w.content(int(v))) {
						match = int(v)
						break
					}
				}
				if match < 0 {
					t.Fatalf("%s: snapshot %d: %s (%d bytes) is no version between %d and %d", when, s, w.path, len(got), lo, hi)
				}
				spread += match
			}
		}
		if spread == 0 {
			t.Fatalf("%s: every snapshot saw only the initial versions; the test checked nothing", when)
		}
	}
	check("at the end")
	for i, w := range ws {
		if got := mustRead(t, d, w.path); !bytes.Equal(got, w.content(versions)) {
			t.Fatalf("live %s (%d) is not the last version", w.path, i)
		}
	}
	checkUsage(t, d, dir, tpkg)
}

func BenchmarkDriveWriteFile(b *testing.B) {
	d, _ := newDrives(b, 0)
	data := bytes.Repeat([]byte("x"), 4096)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := d.WriteFile(tpkg, tdrive, "f", data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDriveAppend(b *testing.B) {
	d, _ := newDrives(b, 0)
	data := bytes.Repeat([]byte("x"), 4096)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := d.Append(tpkg, tdrive, "f", data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDriveReadFile(b *testing.B) {
	d, _ := newDrives(b, 0)
	data := bytes.Repeat([]byte("x"), 4096)
	if err := d.WriteFile(tpkg, tdrive, "f", data); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := d.ReadFile(tpkg, tdrive, "f"); err != nil {
			b.Fatal(err)
		}
	}
}

// The kill-and-reopen test of the drives re-executes the test binary as a
// child that writes in a loop; init turns the binary into that child when
// driveCrashEnv names the drives directory (before TestMain runs).
const (
	driveCrashEnv      = "WEFT_DRIVES_CRASH_DIR"
	driveCrashStartEnv = "WEFT_DRIVES_CRASH_START"
)

func init() {
	if dir := os.Getenv(driveCrashEnv); dir != "" {
		os.Exit(driveCrashChild(dir, os.Getenv(driveCrashStartEnv)))
	}
}

// The child's operations, by number n: WriteFile of "whole", Append to
// "log", WriteAt of "at", in turn.
func crashRecord(n int) []byte { return fmt.Appendf(nil, "%015d\n", n) }
func crashWhole(n int) []byte  { return bytes.Repeat(crashRecord(n), n%50+1) }
func crashBlock(n int) []byte  { return bytes.Repeat([]byte{byte(n%251 + 1)}, 4096) }

func crashOp(d *Drives, n int) error {
	switch n % 3 {
	case 0:
		return d.WriteFile(tpkg, tdrive, "dir/whole", crashWhole(n))
	case 1:
		return d.Append(tpkg, tdrive, "dir/log", crashRecord(n))
	default:
		return d.WriteAt(tpkg, tdrive, "at", 0, crashBlock(n))
	}
}

// driveCrashChild performs operations from start on, forever, printing
// each one's number once it returned.
func driveCrashChild(dir, start string) int {
	n, err := strconv.Atoi(start)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	d, err := OpenDrives(dir, NewUsage(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	for ; ; n++ {
		if err := crashOp(d, n); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Println(n)
	}
}

// TestDriveCrashKillReopen SIGKILLs a child writing to a drive after a
// random number of its reports, reopens the drives and checks that every
// reported write is there, whole: a WriteFile holds the last reported
// version or the one in flight, never a mix; the log holds every reported
// append, plus at most a prefix of the one in flight; the in-place block
// holds the last reported version, each byte of it possibly already from
// the one in flight. OpenDrives must leave no temporary file and count
// exactly the bytes on disk. SIGKILL keeps the page cache, so this proves
// atomicity and acknowledgement order, not survival of a power loss.
func TestDriveCrashKillReopen(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rounds := 12
	if testing.Short() {
		rounds = 4
	}
	if v := os.Getenv("WEFT_DRIVE_CRASH_KILLS"); v != "" {
		if rounds, err = strconv.Atoi(v); err != nil || rounds < 1 {
			t.Fatalf("WEFT_DRIVE_CRASH_KILLS=%q: want a positive integer", v)
		}
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv("WEFT_CRASH_SEED"); s != "" {
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seed %d (WEFT_CRASH_SEED replays it)", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))

	dir := filepath.Join(t.TempDir(), "drives")
	d, err := OpenDrives(dir, NewUsage(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Create(tpkg, tdrive); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// The model: what each file must hold (nil: absent).
	var whole, at, log []byte
	next, total := 1, 0
	for round := range rounds {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), driveCrashEnv+"="+dir, fmt.Sprintf("%s=%d", driveCrashStartEnv, next))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		last := next - 1
		sc := bufio.NewScanner(out)
		report := func() bool {
			if !sc.Scan() {
				return false
			}
			n, err := strconv.Atoi(sc.Text())
			if err != nil || n != last+1 {
				t.Fatalf("round %d: child reported %q after %d", round, sc.Text(), last)
			}
			last = n
			return true
		}
		kill := rng.IntN(60) // 0: while the child starts
		for range kill {
			if !report() {
				break
			}
		}
		_ = cmd.Process.Kill()
		for report() { // reports already written before the kill count too
		}
		werr := cmd.Wait()
		var exit *exec.ExitError
		if !errors.As(werr, &exit) || exit.ExitCode() != -1 {
			t.Fatalf("round %d: child ended by itself: %v\n%s", round, werr, stderr.Bytes())
		}
		for n := next; n <= last; n++ {
			switch n % 3 {
			case 0:
				whole = crashWhole(n)
			case 1:
				log = append(log, crashRecord(n)...)
			default:
				at = crashBlock(n)
			}
		}
		total += last - next + 1
		flight := last + 1

		usage := NewUsage(0)
		d, err := OpenDrives(dir, usage)
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		read := func(p string) []byte {
			b, err := d.ReadFile(tpkg, tdrive, p)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			return b
		}
		got := read("dir/whole")
		switch {
		case bytes.Equal(got, whole) && (got == nil) == (whole == nil):
		case flight%3 == 0 && bytes.Equal(got, crashWhole(flight)):
			whole = got
		default:
			t.Fatalf("round %d: whole holds %d bytes %.40q, want version of the last report or of op %d", round, len(got), got, flight)
		}
		got = read("dir/log")
		if !bytes.HasPrefix(got, log) {
			t.Fatalf("round %d: log lost reported appends: %d bytes, want at least %d", round, len(got), len(log))
		}
		if rest := got[len(log):]; len(rest) > 0 {
			if flight%3 != 1 || !bytes.HasPrefix(crashRecord(flight), rest) {
				t.Fatalf("round %d: log ends with %q after the reported appends (in flight: op %d)", round, rest, flight)
			}
			log = got // the in-flight append, whole or in part, is there now
		}
		got = read("at")
		if flight%3 == 2 {
			nw := crashBlock(flight)
			ok := len(got) >= len(at) && len(got) <= len(nw)
			for i := 0; ok && i < len(got); i++ {
				ok = got[i] == nw[i] || i < len(at) && got[i] == at[i]
			}
			if !ok {
				t.Fatalf("round %d: at holds %d bytes, neither the last reported block nor the one in flight", round, len(got))
			}
			at = got
		} else if !bytes.Equal(got, at) {
			t.Fatalf("round %d: at holds %d bytes %.20q, want the last reported block", round, len(got), got)
		}
		err = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
			if err == nil && strings.HasPrefix(e.Name(), reservedPrefix) {
				err = fmt.Errorf("leftover %s after OpenDrives", p)
			}
			return err
		})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if u, n := usage.Used(tpkg), diskBytes(t, dir, tpkg); u != n {
			t.Fatalf("round %d: OpenDrives counted %d bytes, the files hold %d", round, u, n)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		next = flight + 1
	}
	if total == 0 {
		t.Fatal("the child never reported a write; the test checked nothing")
	}
	t.Logf("%d kills, %d reported writes", rounds, total)
}

// TestDrivesConcurrentQuota: goroutines racing for the last of a quota;
// exactly as many writes win as fit.
func TestDrivesConcurrentQuota(t *testing.T) {
	d, dir := newDrives(t, 1000)
	const workers = 16
	var wg sync.WaitGroup
	var won, lost atomic.Int32
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if w%2 == 0 {
				err = d.WriteFile(tpkg, tdrive, fmt.Sprintf("f%d", w), bytes.Repeat([]byte("x"), 100))
			} else {
				err = d.Append(tpkg, tdrive, "shared", bytes.Repeat([]byte("y"), 100))
			}
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, ErrQuota):
				lost.Add(1)
			default:
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if won.Load() != 10 || lost.Load() != workers-10 {
		t.Fatalf("%d writes won and %d lost, want 10 and %d", won.Load(), lost.Load(), workers-10)
	}
	checkUsage(t, d, dir, tpkg)
}

// TestDriveRemoveWhileWriting removes and re-creates a drive while
// goroutines write to it: every write succeeds or finds no drive, and the
// usage ends equal to the bytes on disk.
func TestDriveRemoveWhileWriting(t *testing.T) {
	d, dir := newDrives(t, 0)
	const workers = 6
	stop := make(chan struct{})
	errs := make(chan error, workers+1)
	var wg sync.WaitGroup
	var wrote atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				switch i % 3 {
				case 0:
					err = d.WriteFile(tpkg, tdrive, fmt.Sprintf("d%d/f", w), bytes.Repeat([]byte("w"), i%100))
				case 1:
					err = d.Append(tpkg, tdrive, fmt.Sprintf("log%d", w), []byte("record\n"))
				default:
					err = d.WriteAt(tpkg, tdrive, fmt.Sprintf("at%d", w), int64(i%50), []byte("at"))
				}
				if err == nil {
					wrote.Add(1)
				} else if !errors.Is(err, fs.ErrNotExist) {
					errs <- err
					return
				}
			}
		}()
	}
	for range 20 {
		// Wait for some writes to land in this incarnation of the drive.
		for start := wrote.Load(); wrote.Load() < start+int64(workers); {
			select {
			case err := <-errs:
				t.Fatal(err)
			default:
			}
			runtime.Gosched()
		}
		if err := d.Remove(tpkg, tdrive); err != nil {
			t.Fatal(err)
		}
		if err := d.Create(tpkg, tdrive); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkUsage(t, d, dir, tpkg)
	if err := d.Remove(tpkg, tdrive); err != nil {
		t.Fatal(err)
	}
	if u := d.usage.Used(tpkg); u != 0 {
		t.Fatalf("usage after removing every drive = %d", u)
	}
}
