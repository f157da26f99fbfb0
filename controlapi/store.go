package controlapi

import (
	"context"
	"errors"
	"fmt"
	"math"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/store"
)

// errNoStorage answers storage calls on a node served without its
// key-value store or its drives.
var errNoStorage = connect.NewError(connect.CodeUnavailable, errors.New("storage is not configured on this node"))

// KVScan's page size when the request leaves it at 0, and the largest one
// it may ask for.
const (
	defaultScanLimit = 100
	maxScanLimit     = store.MaxKVScanPairs
)

func (s *server) ListDatabases(_ context.Context, req *connect.Request[weftv1.ListDatabasesRequest]) (*connect.Response[weftv1.ListDatabasesResponse], error) {
	pkg, err := s.kvPackage(req.Msg.GetPackage())
	if err != nil {
		return nil, err
	}
	dbs, err := s.st.DBs(pkg)
	if err != nil {
		return nil, blame(err, "package", "")
	}
	return connect.NewResponse(&weftv1.ListDatabasesResponse{Databases: dbs}), nil
}

func (s *server) KVGet(_ context.Context, req *connect.Request[weftv1.KVGetRequest]) (*connect.Response[weftv1.KVGetResponse], error) {
	pkg, err := s.kvPackage(req.Msg.GetPackage())
	if err != nil {
		return nil, err
	}
	v, ok, err := s.st.KVGet(pkg, req.Msg.GetDatabase(), req.Msg.GetKey())
	if err != nil {
		return nil, blame(err, "database", "key")
	}
	return connect.NewResponse(&weftv1.KVGetResponse{Found: ok, Value: v}), nil
}

func (s *server) KVSet(_ context.Context, req *connect.Request[weftv1.KVSetRequest]) (*connect.Response[weftv1.KVSetResponse], error) {
	pkg, err := s.kvPackage(req.Msg.GetPackage())
	if err != nil {
		return nil, err
	}
	db, key, value := req.Msg.GetDatabase(), req.Msg.GetKey(), req.Msg.GetValue()
	created := false
	err = s.st.KVSet(pkg, db, key, value)
	if errors.Is(err, store.ErrNoDB) {
		// The store checks the key and the value before it looks for the
		// database, so a bad write creates nothing.
		switch err = s.st.CreateDB(pkg, db); {
		case err == nil:
			created = true
		case errors.Is(err, store.ErrDBExists):
			// Another call created it meanwhile.
		default:
			return nil, blame(err, "database", "key")
		}
		err = s.st.KVSet(pkg, db, key, value)
	}
	if errors.Is(err, store.ErrValueTooLarge) {
		return nil, field("value", err)
	}
	if err != nil {
		return nil, blame(err, "database", "key")
	}
	return connect.NewResponse(&weftv1.KVSetResponse{Created: created}), nil
}

func (s *server) KVDelete(_ context.Context, req *connect.Request[weftv1.KVDeleteRequest]) (*connect.Response[weftv1.KVDeleteResponse], error) {
	pkg, err := s.kvPackage(req.Msg.GetPackage())
	if err != nil {
		return nil, err
	}
	if err := s.st.KVDelete(pkg, req.Msg.GetDatabase(), req.Msg.GetKey()); err != nil {
		return nil, blame(err, "database", "key")
	}
	return connect.NewResponse(&weftv1.KVDeleteResponse{}), nil
}

func (s *server) DropDatabase(_ context.Context, req *connect.Request[weftv1.DropDatabaseRequest]) (*connect.Response[weftv1.DropDatabaseResponse], error) {
	pkg, err := s.kvPackage(req.Msg.GetPackage())
	if err != nil {
		return nil, err
	}
	n, err := s.ps.DropDB(pkg, req.Msg.GetDatabase())
	if err != nil {
		return nil, blame(err, "database", "")
	}
	return connect.NewResponse(&weftv1.DropDatabaseResponse{Revoked: uint32(n)}), nil
}

func (s *server) KVScan(_ context.Context, req *connect.Request[weftv1.KVScanRequest]) (*connect.Response[weftv1.KVScanResponse], error) {
	pkg, err := s.kvPackage(req.Msg.GetPackage())
	if err != nil {
		return nil, err
	}
	limit := int(min(req.Msg.GetLimit(), math.MaxInt32))
	switch {
	case limit == 0:
		limit = defaultScanLimit
	case limit > maxScanLimit:
		return nil, field("limit", fmt.Errorf("%d is more than %d; page on with after", limit, maxScanLimit))
	}
	prefix, after := req.Msg.GetPrefix(), req.Msg.GetAfter()
	// The store says which of the two is too long, but not as a field.
	if len(prefix) > store.MaxKeyBytes {
		return nil, field("prefix", fmt.Errorf("%d bytes, the longest key is %d", len(prefix), store.MaxKeyBytes))
	}
	if len(after) > store.MaxKeyBytes {
		return nil, field("after", fmt.Errorf("%d bytes, the longest key is %d", len(after), store.MaxKeyBytes))
	}
	pairs, more, err := s.st.KVScan(pkg, req.Msg.GetDatabase(), prefix, after, limit)
	if err != nil {
		return nil, blame(err, "database", "prefix")
	}
	out := make([]*weftv1.KVPair, len(pairs))
	for i, p := range pairs {
		out[i] = &weftv1.KVPair{Key: p.Key, Value: p.Value}
	}
	return connect.NewResponse(&weftv1.KVScanResponse{Pairs: out, More: more}), nil
}

func (s *server) ListDrives(_ context.Context, req *connect.Request[weftv1.ListDrivesRequest]) (*connect.Response[weftv1.ListDrivesResponse], error) {
	pkg, err := s.drivePackage(req.Msg.GetPackage())
	if err != nil {
		return nil, err
	}
	drives, err := s.drives.List(pkg)
	if err != nil {
		return nil, driveErr(err, "package")
	}
	return connect.NewResponse(&weftv1.ListDrivesResponse{Drives: drives}), nil
}

func (s *server) RemoveDrive(_ context.Context, req *connect.Request[weftv1.RemoveDriveRequest]) (*connect.Response[weftv1.RemoveDriveResponse], error) {
	pkg, err := s.drivePackage(req.Msg.GetPackage())
	if err != nil {
		return nil, err
	}
	n, err := s.ps.RemoveDrive(pkg, req.Msg.GetDrive())
	if err != nil {
		return nil, driveErr(err, "drive")
	}
	return connect.NewResponse(&weftv1.RemoveDriveResponse{Revoked: uint32(n)}), nil
}

func (s *server) ReadDir(_ context.Context, req *connect.Request[weftv1.ReadDirRequest]) (*connect.Response[weftv1.ReadDirResponse], error) {
	pkg, err := s.drivePackage(req.Msg.GetPackage())
	if err != nil {
		return nil, err
	}
	entries, err := s.drives.ReadDir(pkg, req.Msg.GetDrive(), req.Msg.GetPath())
	if err != nil {
		return nil, driveErr(err, "drive")
	}
	out := make([]*weftv1.DirEntry, len(entries))
	for i, e := range entries {
		out[i] = &weftv1.DirEntry{Name: e.Name, Dir: e.Dir, Size: uint64(max(e.Size, 0))}
		if !e.ModTime.IsZero() {
			out[i].Modified = timestamppb.New(e.ModTime)
		}
	}
	return connect.NewResponse(&weftv1.ReadDirResponse{Entries: out}), nil
}

func (s *server) ReadFile(_ context.Context, req *connect.Request[weftv1.ReadFileRequest]) (*connect.Response[weftv1.ReadFileResponse], error) {
	pkg, err := s.drivePackage(req.Msg.GetPackage())
	if err != nil {
		return nil, err
	}
	drive, path := req.Msg.GetDrive(), req.Msg.GetPath()
	off, length := req.Msg.GetOffset(), req.Msg.GetLength()
	if off > math.MaxInt64 {
		return nil, field("offset", fmt.Errorf("%d is past the end of any file", off))
	}
	if length > store.MaxDriveWriteBytes {
		return nil, field("length", fmt.Errorf("%d bytes, the most one call reads is %d", length, store.MaxDriveWriteBytes))
	}
	var data []byte
	switch {
	case length == 0 && off == 0:
		data, err = s.drives.ReadFile(pkg, drive, path)
	case length == 0:
		// From offset to the end.
		var st store.DirEntry
		if st, err = s.drives.Stat(pkg, drive, path); err != nil {
			break
		}
		rest := max(st.Size-int64(off), 0)
		if rest > store.MaxDriveWriteBytes {
			err = fmt.Errorf("%w: %d bytes from offset %d", store.ErrValueTooLarge, rest, off)
			break
		}
		data, err = s.drives.ReadAt(pkg, drive, path, int64(off), int(rest))
	default:
		data, err = s.drives.ReadAt(pkg, drive, path, int64(off), int(length))
	}
	if errors.Is(err, store.ErrValueTooLarge) {
		return nil, field("length", fmt.Errorf("the file is larger than %d bytes, the most one call reads: read a range with offset and length", store.MaxDriveWriteBytes))
	}
	if err != nil {
		return nil, driveErr(err, "drive")
	}
	return connect.NewResponse(&weftv1.ReadFileResponse{Data: data}), nil
}

// kvPackage checks that the node has a key-value store and that pkg is a
// package id, and returns it as the store names packages.
func (s *server) kvPackage(pkg string) (string, error) {
	if s.st == nil {
		return "", errNoStorage
	}
	return parsePackage(pkg)
}

// drivePackage is kvPackage for the drives.
func (s *server) drivePackage(pkg string) (string, error) {
	if s.drives == nil {
		return "", errNoStorage
	}
	return parsePackage(pkg)
}

func parsePackage(pkg string) (string, error) {
	id, err := kernel.ParsePackageId(pkg)
	if err != nil {
		return "", field("package", err)
	}
	return id.String(), nil
}

// blame names the request field a store error is about: a bad name is
// nameField's (the package was checked before the store saw it), a bad
// key keyField's, a bad path the path's. Other errors pass unchanged.
func blame(err error, nameField, keyField string) error {
	switch {
	case errors.Is(err, store.ErrBadName):
		return field(nameField, err)
	case errors.Is(err, store.ErrBadKey) && keyField != "":
		return field(keyField, err)
	case errors.Is(err, store.ErrBadPath):
		return field("path", err)
	}
	return err
}

// driveErr is blame for the drives, and marks the error as theirs so that
// its fs.ErrNotExist maps to CodeNotFound.
func driveErr(err error, nameField string) error {
	return &driveError{err: blame(err, nameField, "")}
}
