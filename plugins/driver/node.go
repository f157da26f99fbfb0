package driver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/api/driverv1"
	"github.com/weftos/weft/api/weftv1"
)

// NodeConn is weftd's side of the contract as a driver reaches it: over
// gRPC from a subprocess, or directly when the driver runs in weftd. Its
// methods are those of driverv1.NodeServer.
type NodeConn interface {
	Send(context.Context, *driverv1.SendRequest) (*driverv1.SendResponse, error)
	Store(context.Context, *driverv1.StoreRequest) (*driverv1.StoreResponse, error)
	Log(context.Context, *driverv1.LogRequest) (*driverv1.LogResponse, error)
}

// Node is what a driver talks to: it sends requests in the driver's name
// (with the capabilities the driver holds), reaches the databases and
// drives the driver has capabilities on, and logs to weftd's log. Safe
// for concurrent use.
type Node struct{ conn NodeConn }

// NewNode makes a Node over conn; for transports and tests.
func NewNode(conn NodeConn) *Node { return &Node{conn: conn} }

// Message is a request a driver sends.
type Message struct {
	// Target is "node@name:package:publisher" ("our@…" for this node).
	Target   string
	Body     []byte
	Metadata string
	// Timeout is how long to wait for the answer; 0 sends without
	// expecting one.
	Timeout time.Duration
	// Capabilities to attach: ones the driver holds or issues (its own
	// messaging capability, issuer its own address, lets the target
	// message it back).
	Capabilities []*weftv1.Capability
	Blob         *weftv1.Blob
}

// Answer is the response to a request a driver sent.
type Answer struct {
	// ID is the request's id.
	ID           uint64
	Body         []byte
	Metadata     string
	Capabilities []*weftv1.Capability
	Blob         *weftv1.Blob
}

// SendError is why a request could not be delivered or answered: the
// kernel's SendError, as every edge carries it.
type SendError struct {
	Kind   weftv1.SendErrorKind
	Target string
	Detail string
}

func (e *SendError) Error() string {
	return fmt.Sprintf("driver: send to %s: %s: %s", e.Target, KindName(e.Kind), e.Detail)
}

// KindName is the name docs and the kernel give a SendError kind:
// "timeout", "no_capability", ….
func KindName(k weftv1.SendErrorKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "SEND_ERROR_KIND_"))
}

// Send sends m and, when m.Timeout is set, waits for its answer (or ctx).
// A request that could not be delivered or answered returns a
// *SendError; a malformed one (a bad target, a capability the driver
// neither holds nor issues) another error. Without a timeout the Answer
// holds only the request's id.
func (n *Node) Send(ctx context.Context, m Message) (*Answer, error) {
	req := &driverv1.SendRequest{
		Target: m.Target,
		Request: &weftv1.Request{
			Body:         m.Body,
			Capabilities: m.Capabilities,
		},
		Blob: m.Blob,
	}
	if m.Metadata != "" {
		req.Request.Metadata = &m.Metadata
	}
	if m.Timeout > 0 {
		req.Request.ExpectsResponse = durationpb.New(m.Timeout)
	}
	resp, err := n.conn.Send(ctx, req)
	if err != nil {
		return nil, err
	}
	if e := resp.GetError(); e != nil {
		return nil, &SendError{Kind: e.GetKind(), Target: e.GetTarget(), Detail: e.GetDetail()}
	}
	r := resp.GetResponse()
	return &Answer{ID: resp.GetId(), Body: r.GetBody(), Metadata: r.GetMetadata(), Capabilities: r.GetCapabilities(), Blob: resp.GetBlob()}, nil
}

// Log writes msg to weftd's log in the driver's name. It reports nothing
// back: a log line that cannot be written is dropped.
func (n *Node) Log(ctx context.Context, level slog.Level, msg string) {
	l := driverv1.LogLevel_LOG_LEVEL_INFO
	switch {
	case level < slog.LevelInfo:
		l = driverv1.LogLevel_LOG_LEVEL_DEBUG
	case level >= slog.LevelError:
		l = driverv1.LogLevel_LOG_LEVEL_ERROR
	case level >= slog.LevelWarn:
		l = driverv1.LogLevel_LOG_LEVEL_WARN
	}
	_, _ = n.conn.Log(ctx, &driverv1.LogRequest{Level: l, Message: msg})
}

// StoreError is a store operation's failure: a WEFT_E* code of
// docs/abi.md (abi.EPERM for a capability the driver lacks, abi.ENONE
// for a key a database does not have, …) and what the node said.
type StoreError struct {
	Code   int32
	Detail string
}

func (e *StoreError) Error() string { return "driver: store: " + e.Detail }

// Is matches a StoreError by code, so that errors.Is(err, ErrNoKey)
// works whatever the detail.
func (e *StoreError) Is(target error) bool {
	t, ok := target.(*StoreError)
	return ok && t.Code == e.Code
}

// ErrNoKey matches the error Get returns for a key a database does not
// have; ErrNotFound one for a file or directory a drive does not have.
var (
	ErrNoKey    error = &StoreError{Code: abi.ENONE, Detail: "no such key"}
	ErrNotFound error = &StoreError{Code: abi.ENOTFOUND, Detail: "not found"}
)

func (n *Node) store(ctx context.Context, op *abi.StoreOp) ([]byte, error) {
	resp, err := n.conn.Store(ctx, &driverv1.StoreRequest{Op: abi.AppendStoreOp(nil, op)})
	if err != nil {
		return nil, err
	}
	if resp.GetCode() != 0 {
		return nil, &StoreError{Code: resp.GetCode(), Detail: resp.GetError()}
	}
	return resp.GetResult(), nil
}

// KVPair is a key and its value.
type KVPair = abi.KVPair

// DirEntry is a file or directory of a drive.
type DirEntry = abi.DirEntry

// KV is a key-value database of a package, named, not connected: making
// one costs nothing, and every operation needs a capability the driver
// holds (OpenKV gives it both on its own package's databases).
type KV struct {
	n         *Node
	pkg, name string
}

// KV names database name of package pkg ("" for the driver's own,
// drivers:weft).
func (n *Node) KV(pkg, name string) *KV { return &KV{n: n, pkg: pkg, name: name} }

// OpenKV opens database name of the driver's own package, creating it
// when missing; its contents outlive the driver's runs and the node's
// restarts.
func (n *Node) OpenKV(ctx context.Context, name string) (*KV, error) {
	db := n.KV("", name)
	_, err := n.store(ctx, &abi.StoreOp{Op: abi.StoreKVOpen, Name: name})
	if err != nil {
		return nil, err
	}
	return db, nil
}

func (db *KV) op(op uint8) abi.StoreOp { return abi.StoreOp{Op: op, Package: db.pkg, Name: db.name} }

// Get returns key's value, or an error matching ErrNoKey.
func (db *KV) Get(ctx context.Context, key []byte) ([]byte, error) {
	op := db.op(abi.StoreKVGet)
	op.Key = key
	v, err := db.n.store(ctx, &op)
	if err == nil && v == nil {
		v = []byte{}
	}
	return v, err
}

// Set sets key to value, durably.
func (db *KV) Set(ctx context.Context, key, value []byte) error {
	op := db.op(abi.StoreKVSet)
	op.Key, op.Value = key, value
	_, err := db.n.store(ctx, &op)
	return err
}

// Delete removes key; a missing key is not an error.
func (db *KV) Delete(ctx context.Context, key []byte) error {
	op := db.op(abi.StoreKVDelete)
	op.Key = key
	_, err := db.n.store(ctx, &op)
	return err
}

// Scan returns the pairs whose keys start with prefix, in key order,
// after key after (nil: from the first), at most limit (0: as many as the
// node gives at once); more reports that there are further pairs.
func (db *KV) Scan(ctx context.Context, prefix, after []byte, limit int) (pairs []KVPair, more bool, err error) {
	if limit < 0 {
		return nil, false, errors.New("driver: scan: negative limit")
	}
	op := db.op(abi.StoreKVScan)
	op.Key, op.Value, op.Length = prefix, after, uint64(limit)
	b, err := db.n.store(ctx, &op)
	if err != nil {
		return nil, false, err
	}
	return abi.DecodeKVScan(b)
}

// All returns every pair whose key starts with prefix, page by page.
func (db *KV) All(ctx context.Context, prefix []byte) ([]KVPair, error) {
	var out []KVPair
	var after []byte
	for {
		pairs, more, err := db.Scan(ctx, prefix, after, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, pairs...)
		if !more || len(pairs) == 0 {
			return out, nil
		}
		after = pairs[len(pairs)-1].Key
	}
}

// Drive is a file drive of a package, named, not connected, like KV.
type Drive struct {
	n         *Node
	pkg, name string
}

// Drive names drive name of package pkg ("" for the driver's own).
func (n *Node) Drive(pkg, name string) *Drive { return &Drive{n: n, pkg: pkg, name: name} }

// OpenDrive opens drive name of the driver's own package, creating it
// when missing.
func (n *Node) OpenDrive(ctx context.Context, name string) (*Drive, error) {
	d := n.Drive("", name)
	if _, err := n.store(ctx, &abi.StoreOp{Op: abi.StoreDrOpen, Name: name}); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Drive) op(op uint8, path string) abi.StoreOp {
	return abi.StoreOp{Op: op, Package: d.pkg, Name: d.name, Key: []byte(path)}
}

// WriteFile replaces the file at path with data, atomically.
func (d *Drive) WriteFile(ctx context.Context, path string, data []byte) error {
	op := d.op(abi.StoreFsWrite, path)
	op.Value = data
	_, err := d.n.store(ctx, &op)
	return err
}

// ReadFile returns the file at path, or an error matching ErrNotFound.
func (d *Drive) ReadFile(ctx context.Context, path string) ([]byte, error) {
	op := d.op(abi.StoreFsRead, path)
	b, err := d.n.store(ctx, &op)
	if err == nil && b == nil {
		b = []byte{}
	}
	return b, err
}

// ReadDir lists the directory at path ("" is the drive's root).
func (d *Drive) ReadDir(ctx context.Context, path string) ([]DirEntry, error) {
	op := d.op(abi.StoreFsList, path)
	b, err := d.n.store(ctx, &op)
	if err != nil {
		return nil, err
	}
	return abi.DecodeDirEntries(b)
}

// Remove removes the file or empty directory at path.
func (d *Drive) Remove(ctx context.Context, path string) error {
	op := d.op(abi.StoreFsRemove, path)
	_, err := d.n.store(ctx, &op)
	return err
}
