package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/weftos/weft/internal/echoed"
)

// Limits of the drives.
const (
	// MaxDriveWriteBytes is the most one WriteFile, Append or WriteAt
	// writes, and the most one ReadFile or ReadAt returns: 64 MiB. A write
	// is handed over whole in memory; bigger files are built with Append or
	// WriteAt and read with ReadAt.
	MaxDriveWriteBytes = 64 << 20
	// MaxDrivePathBytes is the longest path inside a drive, in bytes.
	MaxDrivePathBytes = 4096
	// MaxDriveSegmentBytes is the longest name of one file or directory.
	MaxDriveSegmentBytes = 255
	// MaxDriveNameBytes is the longest drive name.
	MaxDriveNameBytes = 64
	// maxDrivePackageBytes is the longest package name that can have
	// drives: the name is a directory's.
	maxDrivePackageBytes = 255
)

// Errors of the drives, for errors.Is. A malformed package or drive name
// wraps ErrBadName (shared with the key-value databases); missing drives,
// files and directories wrap fs.ErrNotExist; a write past the package's quota wraps
// ErrQuota; an oversized read or write wraps ErrValueTooLarge; a negative
// offset or length wraps fs.ErrInvalid.
var (
	// ErrBadPath: a path inside a drive is malformed, names a reserved
	// entry, would leave the drive (".." or a symbolic link pointing out),
	// names the drive's root or a directory where a file is needed, or
	// passes through a file where a directory is needed.
	ErrBadPath = errors.New("invalid path")
	// ErrDriveExists: Create of a drive that exists.
	ErrDriveExists = errors.New("drive exists")
)

// reservedPrefix starts the names the drives keep for themselves: temporary
// files of atomic writes, drives being removed. Paths and names with it are
// refused, directory listings leave such entries out, OpenDrives deletes
// them.
const reservedPrefix = ".weft-"

// DirEntry describes a file or directory in a drive.
type DirEntry struct {
	Name    string    // base name; "" for the drive's root
	Dir     bool      // a directory
	Size    int64     // bytes of a file; 0 for a directory
	ModTime time.Time // last modification
}

// Drives holds every package's file drives in one directory:
// <dir>/<package:publisher>/<drive>/<path>. Every file access goes through
// an os.Root opened on the drive's directory, so no path or symbolic link
// reaches outside the drive. File bytes count against the package's quota
// in the Usage shared with the key-value store.
//
// Methods are safe for concurrent use. Writes to one file are serialised;
// writes to different files of a drive run in parallel; Rename,
// RemovePath and Remove exclude all other calls on their drive while they
// run.
// Reads see each WriteFile whole (old or new content), but may see an
// Append or WriteAt in progress partly done, as with any file.
type Drives struct {
	dir   string
	root  *os.Root
	usage *Usage

	// barrier holds writers off while a snapshot links files: every
	// mutating call holds it shared (share), Snapshot and Barrier hold it
	// exclusively. OpenDrives makes one; UseBarrier swaps in one shared
	// with a Store.
	barrier atomic.Pointer[Barrier]
	// changes is noted by every mutating call that returns nil (share).
	// OpenDrives makes one; UseChanges swaps in one shared with a Store.
	changes atomic.Pointer[Changes]

	mu     sync.Mutex // guards drives, closed
	drives map[string]*openDrive
	closed bool

	// hook, when set (by tests), runs at named points of a write; an
	// error it returns is treated as an I/O error at that point.
	hook func(stage string) error
}

// openDrive is one open drive.
type openDrive struct {
	pkg  string
	root *os.Root

	// mu: Rename, RemovePath and Remove take it exclusively; every other
	// call shares it.
	mu   sync.RWMutex
	gone bool // removed; guarded by mu

	fmu   sync.Mutex // guards files
	files map[string]*fileLock
}

type fileLock struct {
	mu   sync.Mutex
	refs int
}

// OpenDrives opens (creating it with mode 0700 when missing) the drives
// directory dir and counts every package's file bytes into usage. It
// deletes what an interrupted write or drive removal left behind:
// temporary files and directories whose names start with ".weft-".
func OpenDrives(dir string, usage *Usage) (*Drives, error) {
	if dir == "" {
		return nil, errors.New("store: open drives: empty path")
	}
	if usage == nil {
		return nil, errors.New("store: open drives: nil usage")
	}
	missing := missingDirs(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: open drives %q: %w", dir, err)
	}
	for _, m := range missing {
		if err := syncDir(filepath.Dir(m)); err != nil {
			return nil, fmt.Errorf("store: open drives %q: %w", dir, err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("store: open drives %q: %w", dir, err)
	}
	used, err := scanDrives(dir)
	if err != nil {
		_ = root.Close()
		return nil, fmt.Errorf("store: open drives %q: %w", dir, err)
	}
	for pkg, n := range used {
		usage.Add(pkg, n)
	}
	d := &Drives{dir: dir, root: root, usage: usage, drives: make(map[string]*openDrive)}
	d.barrier.Store(new(Barrier))
	d.changes.Store(new(Changes))
	return d, nil
}

// scanDrives sums the file bytes of each package and deletes reserved
// leftovers. Entries that are not valid package or drive names are left
// alone and not counted; symbolic links are neither followed nor counted.
func scanDrives(dir string) (map[string]int64, error) {
	used := make(map[string]int64)
	pkgs, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, p := range pkgs {
		if !p.IsDir() || checkDrivePackage(p.Name()) != nil {
			continue
		}
		pdir := filepath.Join(dir, p.Name())
		drives, err := os.ReadDir(pdir)
		if err != nil {
			return nil, err
		}
		for _, dr := range drives {
			if strings.HasPrefix(dr.Name(), reservedPrefix) {
				if err := os.RemoveAll(filepath.Join(pdir, dr.Name())); err != nil {
					return nil, err
				}
				continue
			}
			if !dr.IsDir() || checkDriveName(dr.Name()) != nil {
				continue
			}
			n, err := treeBytes(filepath.Join(pdir, dr.Name()), true)
			if err != nil {
				return nil, err
			}
			used[p.Name()] += n
		}
	}
	return used, nil
}

// treeBytes sums the sizes of the regular files under dir, not following
// symbolic links, and deletes reserved entries when clean is set.
func treeBytes(dir string, clean bool) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if clean && p != dir && strings.HasPrefix(e.Name(), reservedPrefix) {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if e.Type().IsRegular() {
			fi, err := e.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}

// Close closes the drives. Calls after it fail with ErrClosed.
func (d *Drives) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return fmt.Errorf("store: close drives %q: %w", d.dir, ErrClosed)
	}
	d.closed = true
	drives := d.drives
	d.drives = nil
	d.mu.Unlock()
	// Wait for the calls in flight on each drive (not holding d.mu, which
	// Remove takes while it holds a drive's lock).
	for _, dr := range drives {
		dr.mu.Lock()
		dr.gone = true
		_ = dr.root.Close()
		dr.mu.Unlock()
	}
	return d.root.Close()
}

// Create makes the drive named drive of package pkg, durably. It fails
// with ErrDriveExists when the drive exists.
func (d *Drives) Create(pkg, drive string) (err error) {
	fail := func(err error) error { return fmt.Errorf("store: create drive %s/%s: %w", pkg, drive, err) }
	if err := checkDriveNames(pkg, drive); err != nil {
		return fail(err)
	}
	defer d.share()(&err)
	if err := d.checkOpen(); err != nil {
		return fail(err)
	}
	if err := d.root.Mkdir(pkg, 0o700); err == nil {
		if err := syncRootDir(d.root, "."); err != nil {
			return fail(err)
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return fail(err)
	}
	name := pkg + "/" + drive
	if err := d.root.Mkdir(name, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fail(ErrDriveExists)
		}
		return fail(err)
	}
	if err := syncRootDir(d.root, pkg); err != nil {
		return fail(err)
	}
	return nil
}

// List returns the names of pkg's drives, sorted. A package without
// drives has none (an empty list, no error).
func (d *Drives) List(pkg string) ([]string, error) {
	fail := func(err error) error { return fmt.Errorf("store: list drives of %s: %w", pkg, err) }
	if err := checkDrivePackage(pkg); err != nil {
		return nil, fail(err)
	}
	if err := d.checkOpen(); err != nil {
		return nil, fail(err)
	}
	f, err := d.root.Open(pkg)
	if errors.Is(err, fs.ErrNotExist) {
		return []string{}, nil
	}
	if err != nil {
		return nil, fail(err)
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, fail(err)
	}
	names := []string{}
	for _, e := range ents {
		if e.IsDir() && checkDriveName(e.Name()) == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// Remove deletes the drive and everything in it and gives its bytes back
// to the package's quota. Once the call returns, the drive is gone
// durably (it is renamed away and the rename fsynced first; the deletion
// of the files follows, and OpenDrives finishes one a crash interrupted).
func (d *Drives) Remove(pkg, drive string) (err error) {
	fail := func(err error) error { return fmt.Errorf("store: remove drive %s/%s: %w", pkg, drive, err) }
	if err := checkDriveNames(pkg, drive); err != nil {
		return fail(err)
	}
	defer d.share()(&err)
	dr, err := d.open(pkg, drive)
	if err != nil {
		return fail(err)
	}
	dr.mu.Lock()
	defer dr.mu.Unlock()
	if dr.gone {
		return fail(fs.ErrNotExist)
	}
	n, err := treeBytes(filepath.Join(d.dir, pkg, drive), false)
	if err != nil {
		return fail(err)
	}
	trash := pkg + "/" + reservedPrefix + "removed-" + drive + "-" + randomSuffix()
	if err := d.root.Rename(pkg+"/"+drive, trash); err != nil {
		return fail(err)
	}
	d.mu.Lock()
	if d.drives[pkg+"/"+drive] == dr {
		delete(d.drives, pkg+"/"+drive)
	}
	d.mu.Unlock()
	dr.gone = true
	_ = dr.root.Close()
	d.release(pkg, n)
	if err := syncRootDir(d.root, pkg); err != nil {
		return fail(err)
	}
	if err := d.root.RemoveAll(trash); err != nil {
		return fail(fmt.Errorf("delete files (OpenDrives retries): %w", err))
	}
	return nil
}

// WriteFile replaces the file at path with data, creating it and its
// parent directories when missing. It is atomic: data goes to a temporary
// file in the same directory, which is fsynced and renamed over the file,
// and then the directory is fsynced. When it returns nil the new content
// survives a crash; after a crash or an error the file holds either its
// old content or the new, whole, never a mix.
func (d *Drives) WriteFile(pkg, drive, path string, data []byte) error {
	return d.write("write file", pkg, drive, path, len(data), func(dr *openDrive, p string) error {
		return d.writeFile(dr, p, data)
	})
}

// Append adds data at the end of the file at path, creating the file and
// its parent directories when missing. When it returns nil the data is
// fsynced (and, for a new file, its directory entry too). On an error the
// file is truncated back to its old length (a new file is deleted). A
// reader may see an append in progress.
func (d *Drives) Append(pkg, drive, path string, data []byte) error {
	return d.write("append", pkg, drive, path, len(data), func(dr *openDrive, p string) error {
		return d.writeInPlace(dr, p, -1, data)
	})
}

// WriteAt writes data into the file at path at byte offset off, creating
// the file and its parent directories when missing and extending the file
// when the write reaches past its end (a gap reads as zeros and counts
// against the quota). When it returns nil the data is fsynced (and, for a
// new file, its directory entry too). On an error the file's length is
// restored, but bytes of the range it overwrote may hold old or new data:
// an in-place write is not atomic.
func (d *Drives) WriteAt(pkg, drive, path string, off int64, data []byte) error {
	if off < 0 || off > math.MaxInt64-int64(len(data)) {
		return fmt.Errorf("store: write at %s/%s %q: offset %d: %w", pkg, drive, echoed.Truncate(path), off, fs.ErrInvalid)
	}
	return d.write("write at", pkg, drive, path, len(data), func(dr *openDrive, p string) error {
		return d.writeInPlace(dr, p, off, data)
	})
}

// write runs a file write: checks, the barrier, the drive and the file's
// lock.
func (d *Drives) write(op, pkg, driveName, path string, n int, fn func(dr *openDrive, p string) error) (err error) {
	fail := func(err error) error {
		return fmt.Errorf("store: %s %s/%s %q: %w", op, pkg, driveName, echoed.Truncate(path), err)
	}
	if n > MaxDriveWriteBytes {
		return fail(fmt.Errorf("%w: %d bytes, limit is %d (MaxDriveWriteBytes)", ErrValueTooLarge, n, MaxDriveWriteBytes))
	}
	p, err := cleanDrivePath(path)
	if err != nil {
		return fail(err)
	}
	if p == "." {
		return fail(fmt.Errorf("%w: the drive's root is a directory", ErrBadPath))
	}
	defer d.share()(&err)
	err = d.withDrive(pkg, driveName, false, func(dr *openDrive) error {
		unlock := dr.lockFile(p)
		defer unlock()
		return fn(dr, p)
	})
	if err != nil {
		return fail(err)
	}
	return nil
}

func (d *Drives) writeFile(dr *openDrive, p string, data []byte) error {
	dir := path.Dir(p)
	var old int64
	switch fi, err := dr.root.Lstat(p); {
	case err == nil && fi.IsDir():
		return fmt.Errorf("%w: is a directory", ErrBadPath)
	case err == nil && fi.Mode().IsRegular():
		old = fi.Size()
	case err == nil:
		// A symbolic link (only an administrator can plant one): the
		// rename replaces the link, not its target; nothing was counted.
	case !errors.Is(err, fs.ErrNotExist):
		return rootErr(err)
	}
	grow := int64(len(data)) - old
	if grow > 0 {
		if err := d.usage.Reserve(dr.pkg, grow); err != nil {
			return err
		}
	}
	tmp := path.Join(dir, reservedPrefix+"tmp-"+randomSuffix())
	err := mkdirAllDurable(dr.root, dir)
	if err == nil {
		err = d.writeTemp(dr.root, tmp, data)
	}
	if err == nil {
		err = d.at("before-rename")
	}
	if err == nil {
		err = dr.root.Rename(tmp, p)
	}
	if err != nil {
		_ = dr.root.Remove(tmp)
		if grow > 0 {
			d.release(dr.pkg, grow)
		}
		return rootErr(err)
	}
	if grow < 0 {
		d.release(dr.pkg, -grow)
	}
	return syncRootDir(dr.root, dir)
}

// writeTemp writes data to a new file tmp and fsyncs it.
func (d *Drives) writeTemp(root *os.Root, tmp string, data []byte) error {
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = d.at("temp-written")
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeInPlace appends (off < 0) or writes at off.
func (d *Drives) writeInPlace(dr *openDrive, p string, off int64, data []byte) error {
	dir := path.Dir(p)
	growth := func(size int64) int64 {
		if len(data) == 0 {
			return 0 // an empty write does not extend the file
		}
		return max(0, off+int64(len(data))-size)
	}
	var (
		grow    int64
		size    int64
		created bool
	)
	f, err := dr.root.OpenFile(p, os.O_RDWR, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// A new file: reserve first, so that a refused write creates
		// nothing, not even the parent directories.
		off = max(off, 0)
		grow = growth(0)
		if err := d.usage.Reserve(dr.pkg, grow); err != nil {
			return err
		}
		err = mkdirAllDurable(dr.root, dir)
		if err == nil {
			f, err = dr.root.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		}
		if err != nil {
			d.release(dr.pkg, grow)
			return rootErr(err)
		}
		created = true
	case err != nil:
		return rootErr(err)
	}
	defer func() { _ = f.Close() }()
	if !created {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%w: not a regular file", ErrBadPath)
		}
		if linkCount(fi) != 1 {
			// A snapshot shares this file: copy it, so that the write
			// changes only the live file.
			if err := d.breakLink(dr.root, p, f); err != nil {
				return err
			}
			_ = f.Close()
			if f, err = dr.root.OpenFile(p, os.O_RDWR, 0); err != nil {
				return rootErr(err)
			}
		}
		size = fi.Size()
		if off < 0 {
			off = size
		}
		grow = growth(size)
		if err := d.usage.Reserve(dr.pkg, grow); err != nil {
			return err
		}
	}
	_, err = f.WriteAt(data, off)
	if err == nil {
		err = d.at("write")
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil && created {
		err = syncRootDir(dr.root, dir)
	}
	if err != nil {
		if created {
			_ = dr.root.Remove(p)
		} else if terr := f.Truncate(size); terr == nil {
			_ = f.Sync()
		}
		d.release(dr.pkg, grow)
		return rootErr(err)
	}
	return nil
}

// breakLink replaces the file p, open as f, by a copy of itself, so that
// other hard links to the old file (a snapshot's) keep the old content.
func (d *Drives) breakLink(root *os.Root, p string, f *os.File) error {
	tmp := path.Join(path.Dir(p), reservedPrefix+"tmp-"+randomSuffix())
	t, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(t, io.NewSectionReader(f, 0, math.MaxInt64))
	if err == nil {
		err = t.Sync()
	}
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, p)
	}
	if err != nil {
		_ = root.Remove(tmp)
		return fmt.Errorf("copy a file a snapshot shares: %w", err)
	}
	return syncRootDir(root, path.Dir(p))
}

// ReadFile returns the content of the file at path, which must be at most
// MaxDriveWriteBytes long (read longer files with ReadAt).
func (d *Drives) ReadFile(pkg, drive, path string) ([]byte, error) {
	var out []byte
	err := d.read("read file", pkg, drive, path, func(dr *openDrive, p string) error {
		f, fi, err := openRegular(dr.root, p)
		if err != nil {
			return err
		}
		defer f.Close()
		if fi.Size() > MaxDriveWriteBytes {
			return fmt.Errorf("%w: file is %d bytes, limit is %d (MaxDriveWriteBytes); read it with ReadAt", ErrValueTooLarge, fi.Size(), MaxDriveWriteBytes)
		}
		// The file as long as it was when opened: an append that lands
		// while it is read is left out, a truncation ends it early.
		buf := make([]byte, fi.Size())
		n, err := io.ReadFull(f, buf)
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = nil
		}
		out = buf[:n]
		return err
	})
	return out, err
}

// ReadAt returns up to n bytes of the file at path from offset off: fewer
// when the file ends first, none (and no error) when off is at or past its
// end. n is at most MaxDriveWriteBytes.
func (d *Drives) ReadAt(pkg, drive, path string, off int64, n int) ([]byte, error) {
	if off < 0 || n < 0 {
		return nil, fmt.Errorf("store: read at %s/%s %q: offset %d, length %d: %w", pkg, drive, echoed.Truncate(path), off, n, fs.ErrInvalid)
	}
	if n > MaxDriveWriteBytes {
		return nil, fmt.Errorf("store: read at %s/%s %q: %w: %d bytes, limit is %d (MaxDriveWriteBytes)", pkg, drive, echoed.Truncate(path), ErrValueTooLarge, n, MaxDriveWriteBytes)
	}
	var out []byte
	err := d.read("read at", pkg, drive, path, func(dr *openDrive, p string) error {
		f, fi, err := openRegular(dr.root, p)
		if err != nil {
			return err
		}
		defer f.Close()
		size := fi.Size()
		if off >= size {
			out = []byte{}
			return nil
		}
		buf := make([]byte, min(int64(n), size-off))
		m, err := f.ReadAt(buf, off)
		if errors.Is(err, io.EOF) {
			err = nil
		}
		out = buf[:m]
		return err
	})
	return out, err
}

// Mkdir creates the directory at path and any missing parents, durably.
// A directory that exists is not an error; a file in the way is.
func (d *Drives) Mkdir(pkg, drive, path string) (err error) {
	fail := func(err error) error {
		return fmt.Errorf("store: mkdir %s/%s %q: %w", pkg, drive, echoed.Truncate(path), err)
	}
	p, err := cleanDrivePath(path)
	if err != nil {
		return fail(err)
	}
	defer d.share()(&err)
	err = d.withDrive(pkg, drive, false, func(dr *openDrive) error {
		return mkdirAllDurable(dr.root, p)
	})
	if err != nil {
		return fail(err)
	}
	return nil
}

// ReadDir lists the directory at path ("" or "/" for the drive's root),
// sorted by name.
func (d *Drives) ReadDir(pkg, drive, path string) ([]DirEntry, error) {
	var out []DirEntry
	err := d.read("read dir", pkg, drive, path, func(dr *openDrive, p string) error {
		f, err := dr.root.Open(p)
		if err != nil {
			return rootErr(err)
		}
		defer f.Close()
		ents, err := f.ReadDir(-1)
		if err != nil {
			return err
		}
		out = make([]DirEntry, 0, len(ents))
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), reservedPrefix) {
				continue
			}
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted since listed
			}
			if err != nil {
				return err
			}
			if !fi.IsDir() && !fi.Mode().IsRegular() {
				continue
			}
			out = append(out, entry(fi))
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
		return nil
	})
	return out, err
}

// Stat describes the file or directory at path ("" or "/" for the drive's
// root, whose Name is "").
func (d *Drives) Stat(pkg, drive, path string) (DirEntry, error) {
	var out DirEntry
	err := d.read("stat", pkg, drive, path, func(dr *openDrive, p string) error {
		fi, err := dr.root.Stat(p)
		if err != nil {
			return rootErr(err)
		}
		out = entry(fi)
		if p == "." {
			out.Name = ""
		}
		return nil
	})
	return out, err
}

// Rename moves the file or directory from to to, creating to's parent
// directories, replacing a file at to (whose bytes go back to the quota)
// or an empty directory. When it returns nil the move is durable (both
// directories fsynced).
func (d *Drives) Rename(pkg, drive, from, to string) (err error) {
	fail := func(err error) error {
		return fmt.Errorf("store: rename %s/%s %q to %q: %w", pkg, drive, echoed.Truncate(from), echoed.Truncate(to), err)
	}
	pf, err := cleanDrivePath(from)
	if err != nil {
		return fail(err)
	}
	pt, err := cleanDrivePath(to)
	if err != nil {
		return fail(err)
	}
	if pf == "." || pt == "." {
		return fail(fmt.Errorf("%w: cannot rename the drive's root", ErrBadPath))
	}
	if pf == pt {
		_, err := d.Stat(pkg, drive, pf)
		return err
	}
	if strings.HasPrefix(pt, pf+"/") {
		return fail(fmt.Errorf("%w: cannot move a directory into itself", ErrBadPath))
	}
	defer d.share()(&err)
	err = d.withDrive(pkg, drive, true, func(dr *openDrive) error {
		if _, err := dr.root.Lstat(pf); err != nil {
			return rootErr(err)
		}
		var replaced int64
		if fi, err := dr.root.Lstat(pt); err == nil && fi.Mode().IsRegular() {
			replaced = fi.Size()
		}
		if err := mkdirAllDurable(dr.root, path.Dir(pt)); err != nil {
			return err
		}
		if err := dr.root.Rename(pf, pt); err != nil {
			return rootErr(err)
		}
		d.release(dr.pkg, replaced)
		if err := syncRootDir(dr.root, path.Dir(pt)); err != nil {
			return err
		}
		if path.Dir(pf) != path.Dir(pt) {
			return syncRootDir(dr.root, path.Dir(pf))
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	return nil
}

// RemovePath deletes the file or directory name, durably, and gives
// its bytes back to the quota. A directory must be empty unless recursive
// is set. Removing the drive's root is refused: use Remove.
func (d *Drives) RemovePath(pkg, drive, name string, recursive bool) (err error) {
	fail := func(err error) error {
		return fmt.Errorf("store: remove %s/%s %q: %w", pkg, drive, echoed.Truncate(name), err)
	}
	p, err := cleanDrivePath(name)
	if err != nil {
		return fail(err)
	}
	if p == "." {
		return fail(fmt.Errorf("%w: cannot remove the drive's root (remove the drive)", ErrBadPath))
	}
	defer d.share()(&err)
	err = d.withDrive(pkg, drive, true, func(dr *openDrive) error {
		fi, err := dr.root.Lstat(p)
		if err != nil {
			return rootErr(err)
		}
		if !fi.IsDir() || !recursive {
			if err := dr.root.Remove(p); err != nil {
				return rootErr(err)
			}
			if fi.Mode().IsRegular() {
				d.release(dr.pkg, fi.Size())
			}
			return syncRootDir(dr.root, path.Dir(p))
		}
		before, err := rootTreeBytes(dr.root, p)
		if err != nil {
			return err
		}
		rerr := dr.root.RemoveAll(p)
		after := int64(0)
		if rerr != nil {
			// Give back what was deleted before the failure.
			if after, err = rootTreeBytes(dr.root, p); err != nil {
				after = 0
			}
		}
		d.release(dr.pkg, before-after)
		if rerr != nil {
			return rootErr(rerr)
		}
		return syncRootDir(dr.root, path.Dir(p))
	})
	if err != nil {
		return fail(err)
	}
	return nil
}

// rootTreeBytes sums the regular files under p inside root.
func rootTreeBytes(root *os.Root, p string) (int64, error) {
	var n int64
	err := fs.WalkDir(root.FS(), p, func(_ string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if e.Type().IsRegular() {
			fi, err := e.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}

// Barrier holds every writer of the drives off until release is called
// (calls that mutate wait; reads go on), and returns once the writes in
// flight have finished. While it is held, the drives' files do not change.
// It holds d's Barrier (see UseBarrier), so the writes of a Store sharing
// it wait too. Do not call a mutating method of d or of such a Store, nor
// Snapshot, from the goroutine that holds it: they would wait for the
// release forever.
func (d *Drives) Barrier() (release func()) {
	return d.barrier.Load().Hold()
}

// Snapshot makes a point-in-time copy of every drive in the directory
// into, which must not exist and must be on the same file system as the
// drives: it holds the Barrier while it recreates the directories and
// hard-links every file into <into>/<package>/<drive>/<path>. Linking
// costs no file data, and later writes never reach the snapshot: WriteFile
// replaces a file by rename, and Append and WriteAt first copy a file that
// has more than one link. The snapshot is not fsynced (it is for reading
// now, e.g. by a backup, not for surviving a crash); delete it with
// os.RemoveAll when done, so that writes stop paying for the copies.
func (d *Drives) Snapshot(into string) error {
	fail := func(err error) error { return fmt.Errorf("store: snapshot drives into %q: %w", into, err) }
	if err := d.checkOpen(); err != nil {
		return fail(err)
	}
	if abs, err := filepath.Abs(into); err != nil {
		return fail(err)
	} else if base, err := filepath.Abs(d.dir); err != nil {
		return fail(err)
	} else if rel, err := filepath.Rel(base, abs); err == nil && filepath.IsLocal(rel) {
		return fail(errors.New("the snapshot cannot be inside the drives directory"))
	}
	release := d.Barrier()
	defer release()
	if err := d.linkInto(into); err != nil {
		return fail(err)
	}
	return nil
}

// linkInto makes the directory into and recreates the drives in it, every
// file hard-linked. The caller holds the barrier.
func (d *Drives) linkInto(into string) error {
	if err := os.Mkdir(into, 0o700); err != nil {
		return err
	}
	return filepath.WalkDir(d.dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == d.dir {
			return nil
		}
		rel, err := filepath.Rel(d.dir, p)
		if err != nil {
			return err
		}
		if strings.HasPrefix(e.Name(), reservedPrefix) {
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		dst := filepath.Join(into, rel)
		switch {
		case e.IsDir():
			return os.Mkdir(dst, 0o700)
		case e.Type().IsRegular():
			return os.Link(p, dst)
		}
		return nil // symbolic links and the like are not drive content
	})
}

// read runs a read: checks, the drive (shared).
func (d *Drives) read(op, pkg, driveName, path string, fn func(dr *openDrive, p string) error) error {
	fail := func(err error) error {
		return fmt.Errorf("store: %s %s/%s %q: %w", op, pkg, driveName, echoed.Truncate(path), err)
	}
	p, err := cleanDrivePath(path)
	if err != nil {
		return fail(err)
	}
	err = d.withDrive(pkg, driveName, false, func(dr *openDrive) error { return fn(dr, p) })
	if err != nil {
		return fail(err)
	}
	return nil
}

// withDrive runs fn with the drive open and its lock held (exclusively
// when excl).
func (d *Drives) withDrive(pkg, name string, excl bool, fn func(dr *openDrive) error) error {
	if err := checkDriveNames(pkg, name); err != nil {
		return err
	}
	dr, err := d.open(pkg, name)
	if err != nil {
		return err
	}
	if excl {
		dr.mu.Lock()
		defer dr.mu.Unlock()
	} else {
		dr.mu.RLock()
		defer dr.mu.RUnlock()
	}
	if dr.gone {
		return fmt.Errorf("drive %s/%s: %w", pkg, name, fs.ErrNotExist)
	}
	return fn(dr)
}

// open returns the open drive, opening its root on first use.
func (d *Drives) open(pkg, name string) (*openDrive, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	key := pkg + "/" + name
	if dr := d.drives[key]; dr != nil {
		return dr, nil
	}
	r, err := d.root.OpenRoot(key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("drive %s/%s: %w", pkg, name, fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	dr := &openDrive{pkg: pkg, root: r, files: make(map[string]*fileLock)}
	d.drives[key] = dr
	return dr, nil
}

func (d *Drives) checkOpen() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	return nil
}

// release gives n bytes of pkg back to the quota.
func (d *Drives) release(pkg string, n int64) {
	if n > 0 {
		_ = d.usage.Reserve(pkg, -n) // a negative delta cannot fail
	}
}

// at runs the test hook for stage.
func (d *Drives) at(stage string) error {
	if d.hook == nil {
		return nil
	}
	return d.hook(stage)
}

// lockFile locks the file p of the drive and returns its unlock.
func (dr *openDrive) lockFile(p string) (unlock func()) {
	dr.fmu.Lock()
	l := dr.files[p]
	if l == nil {
		l = &fileLock{}
		dr.files[p] = l
	}
	l.refs++
	dr.fmu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		dr.fmu.Lock()
		if l.refs--; l.refs == 0 {
			delete(dr.files, p)
		}
		dr.fmu.Unlock()
	}
}

func entry(fi fs.FileInfo) DirEntry {
	e := DirEntry{Name: fi.Name(), Dir: fi.IsDir(), ModTime: fi.ModTime()}
	if !e.Dir {
		e.Size = fi.Size()
	}
	return e
}

// mkdirAllDurable creates dir and its missing parents inside root, fsyncing
// the parent of each directory it creates.
func mkdirAllDurable(root *os.Root, dir string) error {
	if dir == "." {
		return nil
	}
	if fi, err := root.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%w: %q is a file", ErrBadPath, dir)
		}
		return nil
	}
	cur := "."
	for _, seg := range strings.Split(dir, "/") {
		next := path.Join(cur, seg)
		err := root.Mkdir(next, 0o700)
		switch {
		case err == nil:
			if err := syncRootDir(root, cur); err != nil {
				return err
			}
		case errors.Is(err, fs.ErrExist):
			fi, serr := root.Stat(next)
			if serr != nil {
				return rootErr(serr)
			}
			if !fi.IsDir() {
				return fmt.Errorf("%w: %q is a file", ErrBadPath, next)
			}
		default:
			return rootErr(err)
		}
		cur = next
	}
	return nil
}

// syncRootDir fsyncs the directory dir inside root.
func syncRootDir(root *os.Root, dir string) error {
	f, err := root.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", rootErr(err))
	}
	return syncClose(f, dir)
}

// openRegular opens the file at p for reading and returns it with its
// FileInfo; a directory there is refused with ErrBadPath.
func openRegular(root *os.Root, p string) (*os.File, os.FileInfo, error) {
	f, err := root.Open(p)
	if err != nil {
		return nil, nil, rootErr(err)
	}
	fi, err := f.Stat()
	if err == nil && fi.IsDir() {
		err = fmt.Errorf("%w: is a directory", ErrBadPath)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// rootErr adds ErrBadPath to os.Root's refusal of a path that leaves the
// root (a symbolic link pointing out of the drive). os does not export
// that error, so it is recognised by its text; TestDriveConfinement fails
// if the text changes.
func rootErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Err != nil && pe.Err.Error() == "path escapes from parent" {
		return fmt.Errorf("%w: %w", ErrBadPath, err)
	}
	if errors.Is(err, syscall.EISDIR) {
		return fmt.Errorf("%w: is a directory: %w", ErrBadPath, err)
	}
	if errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%w: a file where a directory is needed: %w", ErrBadPath, err)
	}
	var le *os.LinkError
	if errors.As(err, &le) && le.Err != nil && le.Err.Error() == "path escapes from parent" {
		return fmt.Errorf("%w: %w", ErrBadPath, err)
	}
	return err
}

// linkCount is the number of hard links to the file fi describes, read
// from the platform's stat structure (a field Nlink on Unix systems); 0
// where the platform does not say, which makes writers copy the file
// before changing it in place, as if a snapshot shared it.
func linkCount(fi fs.FileInfo) uint64 {
	v := reflect.ValueOf(fi.Sys())
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return 0
	}
	f := v.FieldByName("Nlink")
	if !f.IsValid() || !f.CanUint() {
		return 0
	}
	return f.Uint()
}

func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func checkDriveNames(pkg, drive string) error {
	if err := checkDrivePackage(pkg); err != nil {
		return err
	}
	return checkDriveName(drive)
}

// checkDrivePackage accepts "package:publisher" names: 1 to 255 bytes of
// [a-z0-9.:-] with a ':' that is neither first nor last, not starting
// with '.'.
func checkDrivePackage(pkg string) error {
	if pkg == "" || len(pkg) > maxDrivePackageBytes {
		return fmt.Errorf("%w: package %.64q is %d bytes, want 1 to %d", ErrBadName, pkg, len(pkg), maxDrivePackageBytes)
	}
	for i := 0; i < len(pkg); i++ {
		c := pkg[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == ':' || c == '-') {
			return fmt.Errorf("%w: package %.64q: byte %#x at %d is not one of [a-z0-9.:-]", ErrBadName, pkg, c, i)
		}
	}
	colon := strings.IndexByte(pkg, ':')
	if colon <= 0 || colon == len(pkg)-1 || pkg[0] == '.' {
		return fmt.Errorf("%w: package %q is not package:publisher", ErrBadName, pkg)
	}
	return nil
}

// checkDriveName accepts 1 to 64 bytes of [a-z0-9-].
func checkDriveName(name string) error {
	if name == "" || len(name) > MaxDriveNameBytes {
		return fmt.Errorf("%w: drive %.64q is %d bytes, want 1 to %d", ErrBadName, name, len(name), MaxDriveNameBytes)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("%w: drive %.64q: byte %#x at %d is not one of [a-z0-9-]", ErrBadName, name, c, i)
		}
	}
	return nil
}

// cleanDrivePath normalises a path inside a drive: segments separated by
// "/", an optional leading "/", empty and "." segments dropped. It returns
// the path relative to the drive's root ("." for the root itself) or an
// error wrapping ErrBadPath for a path that is longer than
// MaxDrivePathBytes, is not UTF-8, holds a control character (NUL
// included), has a ".." segment, a segment longer than
// MaxDriveSegmentBytes, or a segment starting with ".weft-".
func cleanDrivePath(p string) (string, error) {
	if len(p) > MaxDrivePathBytes {
		return "", fmt.Errorf("%w: %d bytes, limit is %d", ErrBadPath, len(p), MaxDrivePathBytes)
	}
	if !utf8.ValidString(p) {
		return "", fmt.Errorf("%w: not UTF-8", ErrBadPath)
	}
	for _, r := range p {
		if r < 0x20 || r >= 0x7f && r < 0xa0 {
			return "", fmt.Errorf("%w: control character %U", ErrBadPath, r)
		}
	}
	segs := make([]string, 0, strings.Count(p, "/")+1)
	for _, s := range strings.Split(p, "/") {
		switch {
		case s == "" || s == ".":
			continue
		case s == "..":
			return "", fmt.Errorf("%w: \"..\" is not allowed", ErrBadPath)
		case len(s) > MaxDriveSegmentBytes:
			return "", fmt.Errorf("%w: name of %d bytes, limit is %d", ErrBadPath, len(s), MaxDriveSegmentBytes)
		case strings.HasPrefix(s, reservedPrefix):
			return "", fmt.Errorf("%w: names starting with %q are reserved", ErrBadPath, reservedPrefix)
		}
		segs = append(segs, s)
	}
	if len(segs) == 0 {
		return ".", nil
	}
	return strings.Join(segs, "/"), nil
}
