package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// KeyFile is the name of the key file in the directory given to
// LoadOrCreate.
const KeyFile = "node.key"

const (
	pemType = "PRIVATE KEY"
	// maxKeyFileSize bounds what LoadOrCreate reads; a PEM PKCS#8 Ed25519
	// key is 119 bytes.
	maxKeyFileSize = 16 << 10
)

// Key is a node's Ed25519 key. It signs as the node and verifies what any
// node signed. A Key is safe for concurrent use.
type Key struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
	id   string
}

func newKey(priv ed25519.PrivateKey) *Key {
	pub := priv.Public().(ed25519.PublicKey)
	return &Key{priv: priv, pub: pub, id: NodeID(pub)}
}

// Generate returns a new random key, kept only in memory.
func Generate() (*Key, error) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("identity: generate key: %w", err)
	}
	return newKey(priv), nil
}

// NodeID returns this node's id.
func (k *Key) NodeID() string { return k.id }

// Public returns a copy of this node's public key.
func (k *Key) Public() ed25519.PublicKey { return bytes.Clone(k.pub) }

// PrivateKey returns a copy of this node's Ed25519 private key. The network
// transport (p2p/) needs it: the node's network identity is this key, so
// peers authenticate the node by it. Nothing else should.
func (k *Key) PrivateKey() ed25519.PrivateKey { return bytes.Clone(k.priv) }

// Sign returns the Ed25519 signature of msg by this node's key.
func (k *Key) Sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// Verify reports whether sig is a valid Ed25519 signature of msg by the key
// that node names. It returns false, and never panics, for a malformed node
// id or signature.
func (k *Key) Verify(node string, msg, sig []byte) bool {
	pub := k.pub
	if node != k.id {
		var err error
		if pub, err = PublicKeyFromNodeID(node); err != nil {
			return false
		}
	}
	return ed25519.Verify(pub, msg, sig)
}

// String returns the node id, so that printing a Key never prints the
// private key.
func (k *Key) String() string { return "identity.Key(" + k.id + ")" }

// GoString is String, for %#v.
func (k *Key) GoString() string { return k.String() }

// LoadOrCreate returns the key stored in dir/node.key, creating dir (mode
// 0700) and the key file (mode 0600) if they do not exist; created reports
// whether it made a new key. It never overwrites an existing key file. It
// refuses a key file that group or others may access, and one that is not
// a PEM "PRIVATE KEY" block holding a PKCS#8 Ed25519 key; those errors name
// the file.
func LoadOrCreate(dir string) (k *Key, created bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("identity: create key directory: %w", err)
	}
	path := filepath.Join(dir, KeyFile)
	k, err = load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	k, err = create(dir, path)
	if errors.Is(err, fs.ErrExist) {
		// Another process made the key between our load and create: use
		// theirs.
		k, err = load(path)
		return k, false, err
	}
	if err != nil {
		return nil, false, err
	}
	return k, true, nil
}

// Load returns the key stored in dir/node.key, with the checks of
// LoadOrCreate, and never creates one.
func Load(dir string) (*Key, error) { return load(filepath.Join(dir, KeyFile)) }

// load reads the key file at path. An error wraps fs.ErrNotExist only if
// the file does not exist.
func load(path string) (*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("identity: open key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("identity: stat key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("identity: key file %s is not a regular file (mode %s)", path, fi.Mode())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("identity: key file %s has mode %04o, which lets group or others access it; run chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("identity: read key file: %w", err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("identity: key file %s is larger than %d bytes, not a PEM Ed25519 key", path, maxKeyFileSize)
	}
	priv, err := parseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("identity: key file %s: %w", path, err)
	}
	return newKey(priv), nil
}

func parseKeyFile(data []byte) (ed25519.PrivateKey, error) {
	block, rest := pem.Decode(data)
	switch {
	case block == nil:
		return nil, errors.New("no PEM block, want a PEM PKCS#8 Ed25519 private key")
	case block.Type != pemType:
		return nil, fmt.Errorf("PEM block type %q, want %q", block.Type, pemType)
	case len(block.Headers) != 0:
		return nil, errors.New("PEM block has headers (an encrypted key?), want a plain PKCS#8 key")
	case len(bytes.TrimSpace(rest)) != 0:
		return nil, errors.New("data after the PEM block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not a PKCS#8 private key: %w", err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("holds a %T, want an Ed25519 key", key)
	}
	return priv, nil
}

// create writes a new key to path crash-safely: the key goes to a temporary
// file in dir, which is synced and then linked to path, and dir is synced.
// Linking rather than renaming means an existing path is never replaced,
// even by a concurrent create; that case returns an error wrapping
// fs.ErrExist.
func create(dir, path string) (_ *Key, err error) {
	k, err := Generate()
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return nil, fmt.Errorf("identity: encode key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der})

	tmp, err := os.CreateTemp(dir, "."+KeyFile+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("identity: create key file: %w", err)
	}
	tmpPath := tmp.Name()
	defer func() {
		if tmp != nil {
			tmp.Close()
		}
		// After a successful link this removes the temporary name only.
		if rmErr := os.Remove(tmpPath); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) && err == nil {
			err = fmt.Errorf("identity: remove temporary key file: %w", rmErr)
		}
		if err == nil {
			err = syncDir(dir)
		}
	}()
	// CreateTemp already uses 0600; say so explicitly, whatever the umask.
	if err := tmp.Chmod(0o600); err != nil {
		return nil, fmt.Errorf("identity: create key file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return nil, fmt.Errorf("identity: write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("identity: sync key file: %w", err)
	}
	err = tmp.Close()
	tmp = nil
	if err != nil {
		return nil, fmt.Errorf("identity: close key file: %w", err)
	}
	if err := linkNoReplace(tmpPath, path); err != nil {
		return nil, err
	}
	return k, nil
}

// linkNoReplace gives tmpPath the name path, failing with an error that
// wraps fs.ErrExist if path exists.
func linkNoReplace(tmpPath, path string) error {
	err := os.Link(tmpPath, path)
	if err == nil {
		return nil
	}
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("identity: install key file: %w", err)
	}
	// Some file systems have no hard links. Fall back to a rename, which
	// replaces silently, so look first; only a concurrent create in the
	// moment between the two could still be replaced.
	if _, statErr := os.Lstat(path); !errors.Is(statErr, fs.ErrNotExist) {
		if statErr == nil {
			statErr = fs.ErrExist
		}
		return fmt.Errorf("identity: install key file %s: %w", path, statErr)
	}
	if err := os.Rename(tmpPath, path); err != nil {
		return fmt.Errorf("identity: install key file: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("identity: sync key directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("identity: sync key directory: %w", err)
	}
	return nil
}
