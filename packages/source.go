package packages

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/weftos/weft/internal/echoed"
	"github.com/weftos/weft/kernel"
)

// LoadDir loads the package in directory dir. Files are read through an
// os.Root, so no path, symbolic links included, reaches outside dir. A
// refusal for the package's content is an *Error.
func LoadDir(dir string, lim kernel.Limits) (*Package, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("load package: %w", err)
	}
	defer root.Close()
	var files []entry
	var total int64
	n := 0
	err = fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name == "." {
			return nil
		}
		if n++; n > MaxFiles {
			return errorf("", "package has more than %d files and directories", MaxFiles)
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		total += fi.Size()
		if total > MaxPackageBytes {
			return errorf("", "package holds more than %d bytes", MaxPackageBytes)
		}
		files = append(files, entry{name: name, size: fi.Size()})
		return nil
	})
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, fmt.Errorf("load package: %w", err)
	}
	return load(dirSource{root}, files, lim)
}

type dirSource struct{ root *os.Root }

func (s dirSource) read(name string, max int64) ([]byte, error) {
	// Stat first: opening a FIFO would block, and a device never ends.
	fi, err := s.root.Stat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &Error{File: name, Err: fmt.Errorf("not a regular file (%s)", fi.Mode().Type())}
	}
	if fi.Size() > max {
		return nil, &Error{File: name, Err: fmt.Errorf("%d bytes, at most %d allowed", fi.Size(), max)}
	}
	f, err := s.root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAtMost(f, max)
}

// LoadZip loads the package in the zip archive r of size bytes. Entries
// must have relative paths that stay inside the package, no duplicates
// and no symbolic links or other special files; the archive and the sum
// of its entries' uncompressed sizes are bounded by MaxPackageBytes, and
// no entry is ever inflated beyond the size its header declares. A
// refusal for the package's content is an *Error.
func LoadZip(r io.ReaderAt, size int64, lim kernel.Limits) (*Package, error) {
	if size < 0 || size > MaxPackageBytes {
		return nil, errorf("", "zip archive is %d bytes, at most %d allowed", size, MaxPackageBytes)
	}
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		// ErrInsecurePath (with GODEBUG=zipinsecurepath=0) comes with a
		// usable reader; the checks below name the entry.
		return nil, errorf("", "not a valid zip archive: %w", err)
	}
	if len(zr.File) > MaxFiles {
		return nil, errorf("", "zip archive has %d entries, at most %d allowed", len(zr.File), MaxFiles)
	}
	byName := make(map[string]*zip.File, len(zr.File))
	var files []entry
	var total uint64
	for _, f := range zr.File {
		name, isDir, err := zipEntryName(f.Name)
		if err != nil {
			return nil, errorf("", "zip entry %q: %w", echoed.Truncate(f.Name), err)
		}
		mode := f.Mode()
		switch {
		case mode&fs.ModeSymlink != 0:
			return nil, errorf("", "zip entry %q: symbolic links are not allowed", echoed.Truncate(f.Name))
		case mode.IsDir() || isDir:
			isDir = true
		case !mode.IsRegular():
			return nil, errorf("", "zip entry %q: not a regular file (%s)", echoed.Truncate(f.Name), mode.Type())
		}
		if _, dup := byName[name]; dup {
			return nil, errorf("", "zip entry %q: %q appears twice", echoed.Truncate(f.Name), echoed.Truncate(name))
		}
		byName[name] = f
		if isDir {
			if f.UncompressedSize64 != 0 {
				return nil, errorf("", "zip entry %q: a directory with content", echoed.Truncate(f.Name))
			}
			continue
		}
		if f.UncompressedSize64 > MaxPackageBytes-total {
			return nil, errorf("", "zip archive holds more than %d bytes uncompressed", MaxPackageBytes)
		}
		total += f.UncompressedSize64
		files = append(files, entry{name: name, size: int64(f.UncompressedSize64)})
	}
	slices.SortFunc(files, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	return load(zipSource(byName), files, lim)
}

// zipEntryName checks an entry's name and returns it cleaned, without a
// directory's trailing "/".
func zipEntryName(name string) (string, bool, error) {
	if name == "" {
		return "", false, errors.New("empty name")
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '\\':
			return "", false, errors.New("backslash in the name")
		case c < 0x20 || c == 0x7f:
			return "", false, fmt.Errorf("control character %q in the name", c)
		}
	}
	if name[0] == '/' {
		return "", false, errors.New("absolute path")
	}
	if len(name) >= 2 && name[1] == ':' {
		return "", false, errors.New("drive letter in the name")
	}
	isDir := strings.HasSuffix(name, "/")
	for _, seg := range strings.Split(strings.TrimSuffix(name, "/"), "/") {
		if seg == ".." {
			return "", false, errors.New(`".." in the path: it would leave the package`)
		}
	}
	clean := path.Clean(name)
	if clean == "." {
		return "", false, errors.New("names the package root")
	}
	return clean, isDir, nil
}

type zipSource map[string]*zip.File

func (s zipSource) read(name string, max int64) ([]byte, error) {
	f := s[name]
	if f.UncompressedSize64 > uint64(max) {
		return nil, &Error{File: name, Err: fmt.Errorf("%d bytes, at most %d allowed", f.UncompressedSize64, max)}
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// Read at most one byte past the declared size: archive/zip refuses
	// an entry that inflates beyond it (a lying header, a zip bomb), and
	// checks the CRC when it reaches the end.
	b, err := readAtMost(rc, int64(f.UncompressedSize64))
	if errors.Is(err, zip.ErrFormat) || errors.Is(err, errTooLarge) {
		return nil, fmt.Errorf("inflates past the %d bytes its header declares, or is corrupt: %w", f.UncompressedSize64, err)
	}
	if err != nil {
		return nil, err
	}
	if uint64(len(b)) != f.UncompressedSize64 {
		return nil, fmt.Errorf("entry holds %d bytes, its header says %d", len(b), f.UncompressedSize64)
	}
	return b, nil
}
