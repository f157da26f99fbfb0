// Package object owns the one interface between the backup repository
// and where its objects are kept: a flat namespace of named, immutable
// byte objects (an S3 bucket under a prefix, or memory in tests). It
// knows nothing of what the objects hold.
package object

import (
	"context"
	"errors"
	"io"
)

// ErrNotFound is the error of Get, Stat and Delete for a name that is not
// there.
var ErrNotFound = errors.New("object not found")

// ErrUnavailable is wrapped by a failure that may pass later but did not
// within the implementation's retries: the place is down, unreachable, or
// kept answering with errors of its own.
var ErrUnavailable = errors.New("target unavailable")

// ErrDenied is wrapped by a refusal of the credentials: the place
// answered, and will keep answering so until they are fixed.
var ErrDenied = errors.New("target refused the credentials")

// Info is what a listing says of an object.
type Info struct {
	Name string
	Size int64
}

// Backend is one place objects are kept. Names are slash-separated paths
// relative to the backend's root ("data/3f/3f9a…"). Objects are written
// whole and never changed in place: Put of an existing name replaces it
// atomically (a reader sees the old object or the new one).
//
// Every method is safe for concurrent use. A transient failure is
// retried by the implementation; what it returns is final.
type Backend interface {
	// Put stores size bytes read from r as name. size is -1 when unknown.
	Put(ctx context.Context, name string, r io.Reader, size int64) error
	// Get returns the object's bytes from offset, length of them (-1: to
	// the end). The caller closes the reader.
	Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error)
	// Stat says whether name exists, and its size.
	Stat(ctx context.Context, name string) (Info, error)
	// List calls fn for every object whose name begins with prefix, in
	// lexical order; an error from fn ends the listing and is returned.
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// Delete removes name; ErrNotFound when it is not there.
	Delete(ctx context.Context, name string) error
	// String names the backend in messages (never with credentials).
	String() string
}

// ReadAll returns a whole object.
func ReadAll(ctx context.Context, b Backend, name string) ([]byte, error) {
	r, err := b.Get(ctx, name, 0, -1)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}
