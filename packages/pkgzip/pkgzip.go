// Package pkgzip makes the zip archive of a package directory that the
// control API takes. Standard library only, so that the weft CLI can use it
// without pulling in the Wasm runtime.
package pkgzip

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Bounds on what Dir archives; the same as packages.MaxPackageBytes and
// packages.MaxFiles, which the node enforces on the archive it receives.
const (
	// MaxBytes bounds the total uncompressed size of the files.
	MaxBytes = 256 << 20
	// MaxFiles bounds the number of files.
	MaxFiles = 4096
)

// modTime is every entry's modification time, so that the same files make
// the same archive.
var modTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// Dir returns a zip archive of every regular file under dir, in a form
// that depends only on the files' relative paths and contents: entries
// named by their path relative to dir with forward slashes, sorted,
// Deflate-compressed, mode 0644, modified 1980-01-01 00:00 UTC.
// Directories are not entries. A symbolic link or other special file
// anywhere under dir is refused, naming its path, as is a tree of more
// than MaxFiles files or MaxBytes bytes.
func Dir(dir string) ([]byte, error) {
	type file struct {
		name string // relative, slash-separated
		path string // on disk
	}
	var files []file
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := d.Type()
		switch {
		case mode.IsDir():
			return nil
		case mode.IsRegular():
		case mode&fs.ModeSymlink != 0:
			return fmt.Errorf("pkgzip: %s: symbolic links are not allowed in a package", path)
		default:
			return fmt.Errorf("pkgzip: %s: not a regular file (%v)", path, mode)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if len(files) >= MaxFiles {
			return fmt.Errorf("pkgzip: %s: more than %d files", dir, MaxFiles)
		}
		if total += info.Size(); total > MaxBytes {
			return fmt.Errorf("pkgzip: %s: files larger than %d bytes in total", dir, MaxBytes)
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		files = append(files, file{name: filepath.ToSlash(rel), path: path})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.name, b.name) })

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	var written int64
	for _, f := range files {
		hdr := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: modTime}
		hdr.SetMode(0o644)
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			return nil, fmt.Errorf("pkgzip: %s: %w", f.path, err)
		}
		n, err := copyFile(w, f.path, MaxBytes-written)
		written += n
		if err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("pkgzip: %w", err)
	}
	return buf.Bytes(), nil
}

// copyFile copies the regular file at path to w, failing once more than
// room bytes have been read (a file that grew since the walk).
func copyFile(w io.Writer, path string, room int64) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !info.Mode().IsRegular() {
		return 0, fmt.Errorf("pkgzip: %s: not a regular file (%v)", path, info.Mode().Type())
	}
	n, err := io.Copy(w, io.LimitReader(f, room+1))
	if err != nil {
		return n, fmt.Errorf("pkgzip: %s: %w", path, err)
	}
	if n > room {
		return n, fmt.Errorf("pkgzip: %s: files larger than %d bytes in total", path, MaxBytes)
	}
	return n, nil
}
