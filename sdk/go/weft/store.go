package weft

import (
	"strings"
	"time"

	"github.com/weftos/weft/abi"
)

// The store (docs/abi.md, "The store"): every operation is one call of
// the store host function with an encoded abi.StoreOp. Databases
// (Database, kv.go) and drives (FileDrive, drive.go) build the ops; this
// file performs them and builds their capabilities.

const (
	// storeResSize is the result buffer kept between store calls: a
	// result that fits is copied out of it, a larger one is read with
	// store_result straight into a buffer of its exact size.
	storeResSize = 16 << 10
	// keepStoreOut bounds the store-op encoding kept for the next call:
	// a 1 MiB value or file write reuses its buffer, a 64 MiB one does
	// not pin its size.
	keepStoreOut = 2 << 20
)

// store performs op and returns its result in a slice of its own (nil
// when empty). A result larger than the kept buffer was kept by the node
// and is read with store_result, as docs/abi.md says. Failures are
// *Errors named after the op ("kv_get", …).
func (s *state) store(op *abi.StoreOp) ([]byte, error) {
	return s.storeAppend(op, nil, false)
}

// storeAppend performs op and appends its result to dst. With into set
// and room in dst, the node writes the result straight into dst's spare
// capacity; otherwise it lands in the kept buffer and is copied.
func (s *state) storeAppend(op *abi.StoreOp, dst []byte, into bool) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	enc := abi.AppendStoreOp(s.storeOut[:0], op)
	if cap(enc) > keepStoreOut {
		s.storeOut = nil
	} else {
		s.storeOut = enc[:0]
	}
	out := dst[len(dst):cap(dst)]
	direct := into && len(out) > 0
	if !direct {
		if s.storeRes == nil {
			s.storeRes = make([]byte, storeResSize)
		}
		out = s.storeRes
	}
	n := s.node.store(enc, out)
	switch {
	case n < 0:
		return dst, s.fail(abi.StoreOpName(op.Op), n)
	case n == 0:
		return dst, nil
	case int(n) <= len(out) && direct:
		return dst[:len(dst)+int(n)], nil
	case int(n) <= len(out):
		return append(dst, out[:n]...), nil
	}
	// The node kept the result: read it into dst, grown to fit.
	if free := cap(dst) - len(dst); free < int(n) {
		dst = append(dst[:cap(dst)], make([]byte, int(n)-free)...)[:len(dst)]
	}
	buf := dst[len(dst) : len(dst)+int(n)]
	got := s.node.storeResult(buf)
	if got < 0 {
		return dst, s.fail(abi.StoreOpName(op.Op), got)
	}
	if int(got) != len(buf) {
		return dst, &Error{Code: abi.EINTERNAL, Op: abi.StoreOpName(op.Op), Detail: "the kept store result changed size"}
	}
	return dst[:len(dst)+int(n)], nil
}

// StoreCall performs one store operation as docs/abi.md encodes it and
// returns its result, encoded (abi.DecodeKVScan, abi.DecodeNames, …
// read it), in a slice of the caller's. Databases and drives (KV, Drive)
// are built on it; use it for what they do not offer. Failures are
// *Errors named after the op.
func StoreCall(op *abi.StoreOp) ([]byte, error) { return sdk.store(op) }

// decodeFail is the error for a result the SDK cannot decode.
func decodeFail(op uint8, err error) error {
	return &Error{Code: abi.EINTERNAL, Op: abi.StoreOpName(op), Detail: err.Error()}
}

// invalid is the error for an argument refused before calling the node.
func invalid(op uint8, detail string) error {
	return &Error{Code: abi.EINVAL, Op: abi.StoreOpName(op), Detail: detail}
}

// names performs kv_list or drive_list.
func names(op uint8) ([]string, error) {
	b, err := sdk.store(&abi.StoreOp{Op: op})
	if err != nil {
		return nil, err
	}
	ns, err := abi.DecodeNames(b)
	if err != nil {
		return nil, decodeFail(op, err)
	}
	return ns, nil
}

// ---- capabilities

// The issuers of store capabilities on this node (the kernel resolves
// "our" when a process attaches one).
const (
	kvIssuer  = "our@kv:sys:weft"
	vfsIssuer = "our@vfs:sys:weft"
)

// Kinds of store capability.
const (
	kindRead  = "read"
	kindWrite = "write"
)

// kvCapability is the capability of kind on database db of package pkg
// (docs/abi.md): params {"db":DB,"kind":KIND,"package":PKG} in the
// canonical form the node checks for.
func kvCapability(pkg, db, kind string) Capability {
	return Capability{Issuer: kvIssuer,
		Params: `{"db":` + jsonString(db) + `,"kind":` + jsonString(kind) + `,"package":` + jsonString(resolvePackage(pkg)) + `}`}
}

// driveCapability is the capability of kind on drive of package pkg:
// params {"drive":"/PKG/DRIVE","kind":KIND}.
func driveCapability(pkg, drive, kind string) Capability {
	return Capability{Issuer: vfsIssuer,
		Params: `{"drive":` + jsonString("/"+resolvePackage(pkg)+"/"+drive) + `,"kind":` + jsonString(kind) + `}`}
}

// resolvePackage returns pkg, or for "" this process's own package
// (package:publisher, from Self; "" if the node would not say).
func resolvePackage(pkg string) string {
	if pkg != "" {
		return pkg
	}
	return ownPackage(Self())
}

// ownPackage returns the package:publisher of an address
// node@name:package:publisher.
func ownPackage(addr string) string {
	_, id, ok := strings.Cut(addr, "@")
	if !ok {
		return ""
	}
	_, pkg, ok := strings.Cut(id, ":")
	if !ok {
		return ""
	}
	return pkg
}

// jsonString quotes s as a JSON string in the node's canonical form
// (kernel.CanonicalParams): only the escapes JSON requires, short ones
// where JSON has them.
func jsonString(s string) string {
	const hex = "0123456789abcdef"
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			clean = false
			break
		}
	}
	if clean {
		return `"` + s + `"`
	}
	b := make([]byte, 0, len(s)+8)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '\r':
			b = append(b, `\r`...)
		case c == '\t':
			b = append(b, `\t`...)
		case c == '\b':
			b = append(b, `\b`...)
		case c == '\f':
			b = append(b, `\f`...)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return string(append(b, '"'))
}

// ---- entries

// DirEntry is a file or directory of a drive (ReadDir, Stat).
type DirEntry struct {
	Name    string // base name; "" for the drive's root
	IsDir   bool
	Size    int64     // bytes of a file; 0 for a directory
	ModTime time.Time // last modification; zero when the node does not know
}

func fromABIEntry(e *abi.DirEntry) DirEntry {
	d := DirEntry{Name: e.Name, IsDir: e.Dir, Size: int64(e.Size)}
	if e.ModTime != 0 {
		d.ModTime = time.Unix(0, e.ModTime)
	}
	return d
}

// ABI returns e in the ABI's form (what abi.AppendDirEntry encodes).
func (e DirEntry) ABI() abi.DirEntry {
	d := abi.DirEntry{Name: e.Name, Dir: e.IsDir, Size: uint64(e.Size)}
	if !e.ModTime.IsZero() {
		d.ModTime = e.ModTime.UnixNano()
	}
	return d
}
