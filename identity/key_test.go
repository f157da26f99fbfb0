package identity_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/weftos/weft/identity"
)

// keyring is the kernel's view of a node key.
type keyring interface {
	NodeID() string
	Sign(msg []byte) []byte
	Verify(node string, msg, sig []byte) bool
}

var _ keyring = (*identity.Key)(nil)

// The key of RFC 8410 section 10.3, as openssl genpkey writes one.
const (
	rfc8410Key = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC
-----END PRIVATE KEY-----
`
	rfc8410NodeID = "k51qzi5uqu5dgtovut2uo9kmf51ueisa8lm88rb9iv703b0c6iq2asheuh7jdt"
)

func flipBit(b []byte, bit int) []byte {
	b = bytes.Clone(b)
	b[bit/8] ^= 1 << (bit % 8)
	return b
}

func TestSignVerify(t *testing.T) {
	k, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	other, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("capability: messaging from node@chat:chat:example.weft")
	sig := k.Sign(msg)
	otherSig := other.Sign(msg)
	id := k.NodeID()
	// The id of k's key with one bit of the key flipped: well formed, but
	// another key.
	flippedKeyID := identity.NodeID(flipBit(k.Public(), 77))
	// One bit flipped in the id's text.
	flippedTextID := string(flipBit([]byte(id), 8*40))

	tests := []struct {
		name string
		node string
		msg  []byte
		sig  []byte
		want bool
	}{
		{"own signature", id, msg, sig, true},
		{"other node's signature, checked here", other.NodeID(), msg, otherSig, true},
		{"empty message", id, nil, k.Sign(nil), true},
		{"flipped bit in message", id, flipBit(msg, 3), sig, false},
		{"flipped last bit in message", id, flipBit(msg, 8*len(msg)-1), sig, false},
		{"flipped bit in signature R", id, msg, flipBit(sig, 5), false},
		{"flipped bit in signature S", id, msg, flipBit(sig, 8*40), false},
		{"flipped bit in node id key", flippedKeyID, msg, sig, false},
		{"flipped bit in node id text", flippedTextID, msg, sig, false},
		{"signed by another node", id, msg, otherSig, false},
		{"claimed by another node", other.NodeID(), msg, sig, false},
		{"nil signature", id, msg, nil, false},
		{"short signature", id, msg, sig[:63], false},
		{"long signature", id, msg, append(bytes.Clone(sig), 0), false},
		{"zero signature", id, msg, make([]byte, 64), false},
		{"empty node id", "", msg, sig, false},
		{"malformed node id", "k123", msg, sig, false},
		{"upper-case node id", strings.ToUpper(id), msg, sig, false},
		{"node id with prefix trimmed", id[1:], msg, sig, false},
		{"garbage everywhere", "\xff\x00", []byte{0}, []byte{1, 2, 3}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := k.Verify(tt.node, tt.msg, tt.sig); got != tt.want {
				t.Errorf("Verify(%q, %q, %x) = %v, want %v", tt.node, tt.msg, tt.sig, got, tt.want)
			}
		})
	}
	if !ed25519.Verify(k.Public(), msg, sig) {
		t.Error("Sign does not make a plain Ed25519 signature")
	}
}

func TestKeyAccessors(t *testing.T) {
	k, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	pub := k.Public()
	if got := identity.NodeID(pub); got != k.NodeID() {
		t.Errorf("NodeID() = %q, NodeID(Public()) = %q", k.NodeID(), got)
	}
	pub[0] ^= 0xff
	if k.Public().Equal(pub) {
		t.Error("changing the slice Public returned changed the key")
	}
	priv := k.PrivateKey()
	if !priv.Public().(ed25519.PublicKey).Equal(k.Public()) {
		t.Error("PrivateKey is not the key's private half")
	}
	if sig := ed25519.Sign(priv, []byte("m")); !k.Verify(k.NodeID(), []byte("m"), sig) {
		t.Error("a signature by PrivateKey does not verify as the node's")
	}
	priv[0] ^= 0xff
	if k.PrivateKey().Equal(priv) {
		t.Error("changing the slice PrivateKey returned changed the key")
	}
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %s %#v", k, k, k, k)} {
		if !strings.Contains(s, k.NodeID()) || strings.Contains(s, "[") {
			t.Errorf("printing a Key gives %q, want its node id and no key bytes", s)
		}
	}
}

func TestLoadOrCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "identity")
	k1, created, err := identity.LoadOrCreate(dir)
	if err != nil {
		t.Fatalf("LoadOrCreate(new dir): %v", err)
	}
	if !created {
		t.Error("first LoadOrCreate: created = false, want true")
	}
	path := filepath.Join(dir, identity.KeyFile)
	for _, c := range []struct {
		path string
		want os.FileMode
	}{{dir, os.ModeDir | 0o700}, {path, 0o600}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != c.want {
			t.Errorf("%s has mode %s, want %s", c.path, fi.Mode(), c.want)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" || len(rest) != 0 {
		t.Fatalf("key file is not one PEM PRIVATE KEY block:\n%s", data)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("key file is not PKCS#8: %v", err)
	}
	if priv, ok := parsed.(ed25519.PrivateKey); !ok || !priv.Public().(ed25519.PublicKey).Equal(k1.Public()) {
		t.Fatalf("key file holds %T, not the key LoadOrCreate returned", parsed)
	}

	k2, created, err := identity.LoadOrCreate(dir)
	if err != nil {
		t.Fatalf("second LoadOrCreate: %v", err)
	}
	if created {
		t.Error("second LoadOrCreate: created = true, want false")
	}
	if k2.NodeID() != k1.NodeID() || !bytes.Equal(k2.Sign([]byte("x")), k1.Sign([]byte("x"))) {
		t.Errorf("second LoadOrCreate gave node %s, first gave %s", k2.NodeID(), k1.NodeID())
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, data) {
		t.Error("second LoadOrCreate changed the key file")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("key directory holds %v, want only %s", entries, identity.KeyFile)
	}
}

func TestLoadOrCreateExistingDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if _, created, err := identity.LoadOrCreate(dir); err != nil || !created {
		t.Fatalf("LoadOrCreate(existing empty dir) = created %v, %v", created, err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("LoadOrCreate changed the mode of an existing dir: %v %v", fi.Mode(), err)
	}
}

func TestLoadOrCreateReadsExistingKey(t *testing.T) {
	dir := t.TempDir()
	writeKeyFile(t, dir, rfc8410Key, 0o600)
	k, created, err := identity.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Error("created = true for an existing key")
	}
	if k.NodeID() != rfc8410NodeID {
		t.Errorf("node id %s, want %s", k.NodeID(), rfc8410NodeID)
	}
}

func TestLoadOrCreateConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "id")
	const n = 16
	var (
		wg      sync.WaitGroup
		ids     [n]string
		created [n]bool
		errs    [n]error
	)
	for i := range n {
		wg.Go(func() {
			var k *identity.Key
			k, created[i], errs[i] = identity.LoadOrCreate(dir)
			if k != nil {
				ids[i] = k.NodeID()
			}
		})
	}
	wg.Wait()
	creators := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("LoadOrCreate %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Errorf("LoadOrCreate %d gave node %s, LoadOrCreate 0 gave %s", i, ids[i], ids[0])
		}
		if created[i] {
			creators++
		}
	}
	if creators != 1 {
		t.Errorf("%d calls say they created the key, want 1", creators)
	}
}

func TestLoadOrCreateRefusesOpenPermissions(t *testing.T) {
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o602, 0o620, 0o610, 0o601, 0o644, 0o666, 0o777} {
		t.Run(fmt.Sprintf("%04o", mode), func(t *testing.T) {
			dir := t.TempDir()
			path := writeKeyFile(t, dir, rfc8410Key, mode)
			k, _, err := identity.LoadOrCreate(dir)
			if err == nil {
				t.Fatalf("LoadOrCreate with key file mode %04o succeeded (node %s)", mode, k.NodeID())
			}
			for _, want := range []string{path, fmt.Sprintf("mode %04o", mode), "chmod 600 " + path} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			checkUnchanged(t, path, rfc8410Key)
		})
	}
	for _, mode := range []os.FileMode{0o600, 0o400, 0o700} {
		dir := t.TempDir()
		writeKeyFile(t, dir, rfc8410Key, mode)
		if _, _, err := identity.LoadOrCreate(dir); err != nil {
			t.Errorf("key file mode %04o: %v", mode, err)
		}
	}
}

func TestLoadOrCreateRefusesBadKeyFile(t *testing.T) {
	der := func(key any) []byte {
		b, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pemOf := func(typ string, b []byte, headers map[string]string) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Headers: headers, Bytes: b}))
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecSEC1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	_, edPriv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	edDER := der(edPriv)
	pubDER, err := x509.MarshalPKIXPublicKey(edPriv.Public())
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"empty", "", "no PEM block"},
		{"garbage", "this is not a key\n", "no PEM block"},
		{"raw seed", string(edPriv.Seed()), "no PEM block"},
		{"raw DER", string(edDER), "no PEM block"},
		{"truncated PEM", rfc8410Key[:40], "no PEM block"},
		{"public key", pemOf("PUBLIC KEY", pubDER, nil), `PEM block type "PUBLIC KEY", want "PRIVATE KEY"`},
		{"SEC1 EC key", pemOf("EC PRIVATE KEY", ecSEC1, nil), `PEM block type "EC PRIVATE KEY"`},
		{"OpenSSH key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n", `PEM block type "OPENSSH PRIVATE KEY"`},
		{"encrypted", pemOf("PRIVATE KEY", edDER, map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}), "headers"},
		{"two keys", rfc8410Key + pemOf("PRIVATE KEY", edDER, nil), "data after the PEM block"},
		{"trailing garbage", rfc8410Key + "x", "data after the PEM block"},
		{"garbage DER", pemOf("PRIVATE KEY", []byte("not DER at all"), nil), "not a PKCS#8 private key"},
		{"truncated DER", pemOf("PRIVATE KEY", edDER[:len(edDER)-1], nil), "not a PKCS#8 private key"},
		{"ECDSA PKCS#8", pemOf("PRIVATE KEY", der(ecKey), nil), "holds a *ecdsa.PrivateKey, want an Ed25519 key"},
		{"X25519 PKCS#8", pemOf("PRIVATE KEY", der(x25519), nil), "holds a *ecdh.PrivateKey, want an Ed25519 key"},
		{"huge", strings.Repeat("A", 1<<20), "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeKeyFile(t, dir, tt.content, 0o600)
			k, created, err := identity.LoadOrCreate(dir)
			if err == nil {
				t.Fatalf("LoadOrCreate succeeded (node %s, created %v)", k.NodeID(), created)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to name %s and say %q", err, path, tt.want)
			}
			checkUnchanged(t, path, tt.content)
		})
	}
}

func TestLoadOrCreateRefusesNonFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, identity.KeyFile)
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	_, _, err := identity.LoadOrCreate(dir)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("LoadOrCreate with a directory as key file: %v", err)
	}

	// A dangling symlink is an existing name: it is not replaced.
	dir = t.TempDir()
	path = filepath.Join(dir, identity.KeyFile)
	if err := os.Symlink(filepath.Join(dir, "missing"), path); err != nil {
		t.Fatal(err)
	}
	if _, _, err := identity.LoadOrCreate(dir); err == nil {
		t.Fatal("LoadOrCreate with a dangling symlink as key file succeeded")
	}
	if target, err := os.Readlink(path); err != nil || target != filepath.Join(dir, "missing") {
		t.Fatalf("the symlink was replaced: %q %v", target, err)
	}
}

func TestLoadOrCreateUncreatableDir(t *testing.T) {
	// A data dir whose path is a regular file cannot be created or written
	// into, whoever runs the test (root included).
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{file, filepath.Join(file, "sub")} {
		if _, _, err := identity.LoadOrCreate(dir); err == nil {
			t.Fatalf("LoadOrCreate(%s) succeeded", dir)
		}
	}
}

func writeKeyFile(t *testing.T, dir, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, identity.KeyFile)
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

func checkUnchanged(t *testing.T, path, content string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("key file: %v", err)
	}
	if string(got) != content {
		t.Error("LoadOrCreate changed the key file it refused")
	}
}

func BenchmarkSign(b *testing.B) {
	k, err := identity.Generate()
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 256)
	b.ReportAllocs()
	for b.Loop() {
		k.Sign(msg)
	}
}

func BenchmarkVerify(b *testing.B) {
	k, err := identity.Generate()
	if err != nil {
		b.Fatal(err)
	}
	other, err := identity.Generate()
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 256)
	for _, bc := range []struct {
		name string
		node *identity.Key
	}{{"own", k}, {"other", other}} {
		sig := bc.node.Sign(msg)
		id := bc.node.NodeID()
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !k.Verify(id, msg, sig) {
					b.Fatal("Verify = false")
				}
			}
		})
	}
}
