package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzDrivePath: any string, used as a path inside a drive, is either
// refused with ErrBadPath or names a place inside the drive; a write to it
// lands there and nowhere else. The drive holds a symbolic link pointing
// outside it, which no path may pass through. Never panics.
//
//weft:fuzzslow 20
func FuzzDrivePath(f *testing.F) {
	for _, s := range []string{
		"a", "/a/b", "a//b/./c/", "..", "../x", "a/../../x", "/", "", ".",
		"link/secret", "link", "x\x00y", "é/ü", strings.Repeat("z", 256), ".weft-tmp-1",
	} {
		f.Add(s)
	}
	d, dir := newDrives(f, 0)
	base := filepath.Dir(dir)
	driveDir := filepath.Join(dir, tpkg, tdrive)
	outside := filepath.Join(base, "outside")
	if err := os.Mkdir(outside, 0o700); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
		f.Fatal(err)
	}
	link := filepath.Join(driveDir, "link")
	plant := func(t testing.TB) {
		if fi, err := os.Lstat(link); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			return
		}
		if err := os.RemoveAll(link); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, link); err != nil {
			t.Fatal(err)
		}
	}
	plant(f)

	f.Fuzz(func(t *testing.T, p string) {
		c, err := cleanDrivePath(p)
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("cleanDrivePath(%q) = %v, not ErrBadPath", p, err)
			}
			if err := d.WriteFile(tpkg, tdrive, p, []byte("x")); !errors.Is(err, ErrBadPath) {
				t.Fatalf("WriteFile(%q) = %v, want ErrBadPath", p, err)
			}
			if _, err := d.Stat(tpkg, tdrive, p); !errors.Is(err, ErrBadPath) {
				t.Fatalf("Stat(%q) = %v, want ErrBadPath", p, err)
			}
			return
		}
		if c != "." {
			if !filepath.IsLocal(c) || strings.HasPrefix(c, "/") || strings.HasSuffix(c, "/") || strings.Contains(c, "//") {
				t.Fatalf("cleanDrivePath(%q) = %q, not a clean local path", p, c)
			}
			for _, s := range strings.Split(c, "/") {
				if s == "." || s == ".." || len(s) > MaxDriveSegmentBytes || strings.HasPrefix(s, reservedPrefix) {
					t.Fatalf("cleanDrivePath(%q) = %q, has segment %q", p, c, s)
				}
			}
		}
		if c2, err := cleanDrivePath(c); err != nil || c2 != c {
			t.Fatalf("cleanDrivePath not idempotent: %q → %q → %q, %v", p, c, c2, err)
		}
		if len(p) < MaxDrivePathBytes {
			if c2, err := cleanDrivePath("/" + p); err != nil || c2 != c {
				t.Fatalf("leading slash changes %q: %q vs %q, %v", p, c, c2, err)
			}
		}

		data := []byte("data:" + p)
		err = d.WriteFile(tpkg, tdrive, p, data)
		through := strings.HasPrefix(c, "link/")
		switch {
		case c == ".":
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("WriteFile of the root %q = %v, want ErrBadPath", p, err)
			}
		case through:
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("WriteFile(%q) through a link out = %v, want ErrBadPath", p, err)
			}
		case err == nil:
			got, rerr := os.ReadFile(filepath.Join(driveDir, filepath.FromSlash(c)))
			if rerr != nil || !bytes.Equal(got, data) {
				t.Fatalf("WriteFile(%q) did not land at %q: %q, %v", p, c, got, rerr)
			}
			if got, rerr := d.ReadFile(tpkg, tdrive, p); rerr != nil || !bytes.Equal(got, data) {
				t.Fatalf("ReadFile(%q) = %q, %v", p, got, rerr)
			}
		default:
			// Too long for the file system, say; an error is fine so long
			// as nothing escaped, which is checked below.
		}
		// Leave the drive as it was: only the link.
		if c != "." && !through {
			top := strings.SplitN(c, "/", 2)[0]
			if top != "link" {
				if err := d.RemovePath(tpkg, tdrive, top, true); err != nil && !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("clean up %q: %v", top, err)
				}
			}
		}
		plant(t)
		for dirPath, want := range map[string][]string{base: {"drives", "outside"}, outside: {"secret"}, driveDir: {"link"}} {
			ents, err := os.ReadDir(dirPath)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			if strings.Join(names, "\n") != strings.Join(want, "\n") {
				t.Fatalf("after %q, %s holds %q, want %q", p, dirPath, names, want)
			}
		}
		if b, err := os.ReadFile(filepath.Join(outside, "secret")); err != nil || string(b) != "secret" {
			t.Fatalf("after %q the outside file holds %q, %v", p, b, err)
		}
	})
}
