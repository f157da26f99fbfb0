package weft

import (
	"strconv"

	"github.com/weftos/weft/abi"
)

// FileDrive is a drive of a package: a tree of files and directories,
// addressed by relative, /-separated paths ("notes/a.md"; "" or "/" is
// the root). Every operation needs a capability the process holds (read
// for ReadFile, ReadAt, ReadDir and Stat; write for the rest); OpenDrive
// gives its caller both on its own package's drives. A FileDrive is a
// name, not a connection: making one costs nothing.
type FileDrive struct {
	pkg, name string
}

// OpenDrive opens drive name of this process's package, creating it when
// missing, and gives the process read and write capabilities on it (a
// new drive's go to every process of the package).
func OpenDrive(name string) (*FileDrive, error) {
	d := Drive("", name)
	if err := d.Open(); err != nil {
		return nil, err
	}
	return d, nil
}

// Drive names drive name of package pkg ("package:publisher"; "" for
// this process's own) without calling the node. Using it needs
// capabilities on it.
func Drive(pkg, name string) *FileDrive { return &FileDrive{pkg: pkg, name: name} }

// Drives returns the names of this process's package's drives.
func Drives() ([]string, error) { return names(abi.StoreDrList) }

// RemoveDrive deletes drive name of this process's package:
// Drive("", name).Drop().
func RemoveDrive(name string) error { return Drive("", name).Drop() }

// Open creates the drive when missing and gives the process read and
// write capabilities on it, as OpenDrive does. The node opens only the
// process's own package's drives (ErrPerm for another's).
func (d *FileDrive) Open() error {
	_, err := sdk.store(&abi.StoreOp{Op: abi.StoreDrOpen, Package: d.pkg, Name: d.name})
	return err
}

// Drop deletes the drive with all its files and revokes every copy of
// its capabilities. Only this process's package's own, with the write
// capability.
func (d *FileDrive) Drop() error {
	_, err := sdk.store(&abi.StoreOp{Op: abi.StoreDrRemove, Package: d.pkg, Name: d.name})
	return err
}

// Package returns the drive's package ("" for this process's own, as
// given to Drive or OpenDrive).
func (d *FileDrive) Package() string { return d.pkg }

// Name returns the drive's name.
func (d *FileDrive) Name() string { return d.name }

func (d *FileDrive) op(op uint8, path string) abi.StoreOp {
	return abi.StoreOp{Op: op, Package: d.pkg, Name: d.name, Key: []byte(path)}
}

func (d *FileDrive) do(op *abi.StoreOp) error {
	_, err := sdk.store(op)
	return err
}

// WriteFile replaces the file at path with data, atomically (a reader
// sees the old content or the new), making parent directories.
func (d *FileDrive) WriteFile(path string, data []byte) error {
	op := d.op(abi.StoreFsWrite, path)
	op.Value = data
	return d.do(&op)
}

// Append appends data to the file at path, creating it when missing.
func (d *FileDrive) Append(path string, data []byte) error {
	op := d.op(abi.StoreFsWrite, path)
	op.Flags, op.Value = abi.StoreAppend, data
	return d.do(&op)
}

// WriteAt writes data into the file at path starting at byte off,
// creating it when missing.
func (d *FileDrive) WriteAt(path string, off int64, data []byte) error {
	if off < 0 {
		return invalid(abi.StoreFsWrite, "offset "+strconv.FormatInt(off, 10)+" is negative")
	}
	op := d.op(abi.StoreFsWrite, path)
	op.Flags, op.Value, op.Offset = abi.StoreAt, data, uint64(off)
	return d.do(&op)
}

// ReadFile returns the content of the file at path (at most 64 MiB).
func (d *FileDrive) ReadFile(path string) ([]byte, error) {
	op := d.op(abi.StoreFsRead, path)
	b, err := sdk.store(&op)
	if err == nil && b == nil {
		b = []byte{}
	}
	return b, err
}

// ReadAt returns up to n bytes of the file at path from byte off: fewer
// past the end of the file, none from beyond it.
func (d *FileDrive) ReadAt(path string, off int64, n int) ([]byte, error) {
	if off < 0 || n < 0 {
		return nil, invalid(abi.StoreFsRead, "offset "+strconv.FormatInt(off, 10)+" or length "+strconv.Itoa(n)+" is negative")
	}
	op := d.op(abi.StoreFsRead, path)
	op.Flags, op.Offset, op.Length = abi.StoreRange, uint64(off), uint64(n)
	b, err := sdk.store(&op)
	if err == nil && b == nil {
		b = []byte{}
	}
	return b, err
}

// ReadDir returns the entries of the directory at path ("" for the
// root), sorted by name.
func (d *FileDrive) ReadDir(path string) ([]DirEntry, error) {
	op := d.op(abi.StoreFsList, path)
	b, err := sdk.store(&op)
	if err != nil {
		return nil, err
	}
	es, err := abi.DecodeDirEntries(b)
	if err != nil {
		return nil, decodeFail(abi.StoreFsList, err)
	}
	out := make([]DirEntry, len(es))
	for i := range es {
		out[i] = fromABIEntry(&es[i])
	}
	return out, nil
}

// Stat returns the entry of path.
func (d *FileDrive) Stat(path string) (DirEntry, error) {
	op := d.op(abi.StoreFsStat, path)
	b, err := sdk.store(&op)
	if err != nil {
		return DirEntry{}, err
	}
	e, err := abi.DecodeDirEntry(b)
	if err != nil {
		return DirEntry{}, decodeFail(abi.StoreFsStat, err)
	}
	return fromABIEntry(&e), nil
}

// Mkdir makes the directory at path and its parents; an existing
// directory is fine.
func (d *FileDrive) Mkdir(path string) error {
	op := d.op(abi.StoreFsMkdir, path)
	return d.do(&op)
}

// Rename renames from to to.
func (d *FileDrive) Rename(from, to string) error {
	op := d.op(abi.StoreFsRename, from)
	op.Value = []byte(to)
	return d.do(&op)
}

// Remove removes the file or empty directory at path.
func (d *FileDrive) Remove(path string) error {
	op := d.op(abi.StoreFsRemove, path)
	return d.do(&op)
}

// RemoveAll removes the file or directory at path with everything in it.
func (d *FileDrive) RemoveAll(path string) error {
	op := d.op(abi.StoreFsRemove, path)
	op.Flags = abi.StoreRecursive
	return d.do(&op)
}

// ReadCapability returns the capability to read the drive, to attach to a
// message (the process must hold it itself).
func (d *FileDrive) ReadCapability() Capability { return driveCapability(d.pkg, d.name, kindRead) }

// WriteCapability returns the capability to write the drive (it does not
// let its holder read).
func (d *FileDrive) WriteCapability() Capability { return driveCapability(d.pkg, d.name, kindWrite) }
