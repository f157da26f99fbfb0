// Package backup owns a node's backups: what a backup of a running node
// holds and how it is staged, the targets (S3-compatible buckets) and the
// key material that opens their repositories, the runs (on demand, on a
// schedule, after writes), listing, verifying, forgetting and pruning, and
// the offline restore of a snapshot into an empty data dir. The repository
// format is backup/repo's; docs/backup.md describes both.
package backup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
)

// MinPassphrase is the shortest passphrase a key file may hold.
const MinPassphrase = 12

// Key is the key material that opens a node's repositories: an age
// X25519 identity, or a passphrase (through scrypt). The node's key file
// holds one of the two.
type Key struct {
	identity   *age.X25519Identity // one of identity and passphrase
	passphrase string
}

// ParseKey reads key material: an age identity file (an
// "AGE-SECRET-KEY-1…" line; lines starting with # are comments), or
// else a passphrase, the file's first line, of at least MinPassphrase
// bytes. It never puts the material in its errors.
func ParseKey(data []byte) (*Key, error) {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		lines = append(lines, strings.TrimRight(sc.Text(), "\r"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("backup key: %w", err)
	}
	var ids []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if strings.HasPrefix(t, "AGE-SECRET-KEY-1") {
			ids = append(ids, t)
		}
	}
	switch {
	case len(ids) > 1:
		return nil, errors.New("backup key: more than one age identity: a key file holds one")
	case len(ids) == 1:
		id, err := age.ParseX25519Identity(ids[0])
		if err != nil {
			return nil, errors.New("backup key: the AGE-SECRET-KEY line is not a valid age X25519 identity")
		}
		return &Key{identity: id}, nil
	}
	if len(lines) == 0 || lines[0] == "" {
		return nil, errors.New("backup key: empty: want an age identity (AGE-SECRET-KEY-1…) or a passphrase")
	}
	if len(lines) > 1 && strings.TrimSpace(strings.Join(lines[1:], "")) != "" {
		return nil, errors.New("backup key: a passphrase is one line: the file has more")
	}
	if len(lines[0]) < MinPassphrase {
		return nil, fmt.Errorf("backup key: a passphrase of %d bytes; want at least %d", len(lines[0]), MinPassphrase)
	}
	return &Key{passphrase: lines[0]}, nil
}

// LoadKey reads the key file at path, refusing one that others than its
// owner and group may read or write.
func LoadKey(path string) (*Key, error) {
	data, err := ReadSecretFile(path)
	if err != nil {
		return nil, fmt.Errorf("backup key: %w", err)
	}
	k, err := ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return k, nil
}

// ReadSecretFile reads a file that holds a secret, refusing one that is
// not a regular file or that others may read or write (the Debian
// package's are 0640 root:weft).
func ReadSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		return nil, fmt.Errorf("%s has mode %04o: others may read or write it; want 0640 or 0600 (chmod o= %s)", path, fi.Mode().Perm(), path)
	}
	const max = 64 << 10
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if len(data) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return data, nil
}

// GenerateKey returns a new age identity as a key file's contents.
func GenerateKey() ([]byte, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	return []byte("# weft backup key: an age X25519 identity. Keep a copy away from this machine.\n# recipient: " + id.Recipient().String() + "\n" + id.String() + "\n"), nil
}

// Identities are what opens a repository with this key.
func (k *Key) Identities() []age.Identity {
	if k.identity != nil {
		return []age.Identity{k.identity}
	}
	id, err := age.NewScryptIdentity(k.passphrase)
	if err != nil { // only for an empty passphrase, which ParseKey refuses
		panic(err)
	}
	return []age.Identity{id}
}

// Recipient is what a key file is wrapped for so that this key opens it.
func (k *Key) Recipient() age.Recipient {
	if k.identity != nil {
		return k.identity.Recipient()
	}
	rc, err := age.NewScryptRecipient(k.passphrase)
	if err != nil {
		panic(err)
	}
	return rc
}

// Kind says what the key is, "X25519" or "scrypt", as key files name their
// recipients.
func (k *Key) Kind() string {
	if k.identity != nil {
		return "X25519"
	}
	return "scrypt"
}

// String names the key without its secret: the recipient of an identity,
// "passphrase" otherwise.
func (k *Key) String() string {
	if k.identity != nil {
		return k.identity.Recipient().String()
	}
	return "passphrase"
}

// ParseRecipient reads an age X25519 recipient ("age1…"), the public half
// of an identity kept elsewhere.
func ParseRecipient(s string) (age.Recipient, error) {
	rc, err := age.ParseX25519Recipient(strings.TrimSpace(s))
	if err != nil {
		// Not echoed: what was given where a recipient goes may be a
		// secret (an identity, a passphrase).
		return nil, fmt.Errorf("recipient of %d characters: not an age X25519 recipient (age1…, 62 characters)", len(s))
	}
	return rc, nil
}
