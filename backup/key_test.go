package backup_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftos/weft/backup"
)

func TestParseKey(t *testing.T) {
	gen, err := backup.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	id, err := backup.ParseKey(gen)
	if err != nil || id.Kind() != "X25519" || !strings.HasPrefix(id.String(), "age1") {
		t.Fatalf("generated key: %v, %v", id, err)
	}
	if !strings.Contains(string(gen), "# recipient: "+id.String()) {
		t.Fatalf("the generated file does not name its recipient:\n%s", gen)
	}
	secret := strings.TrimSpace(string(gen[strings.Index(string(gen), "AGE-SECRET-KEY-1"):]))
	pass, err := backup.ParseKey([]byte("correct horse battery staple\n"))
	if err != nil || pass.Kind() != "scrypt" || pass.String() != "passphrase" {
		t.Fatalf("passphrase: %v, %v", pass, err)
	}
	for _, c := range []struct {
		name, in, want string
	}{
		{"empty", "", "empty"},
		{"blank line", "\n", "empty"},
		{"short passphrase", "hunter2\n", "at least 12"},
		{"two lines", "a long enough passphrase\nand more\n", "one line"},
		{"two identities", secret + "\n" + secret + "\n", "more than one"},
		{"bad identity", "AGE-SECRET-KEY-1QQQQ\n", "not a valid"},
	} {
		_, err := backup.ParseKey([]byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
		if err != nil && (strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), secret)) {
			t.Errorf("%s: the error holds the secret: %v", c.name, err)
		}
	}
	// Comments and blank lines around an identity are fine.
	if k, err := backup.ParseKey([]byte("# mine\n\n" + secret + "\n\n")); err != nil || k.String() != id.String() {
		t.Fatalf("identity with comments: %v", err)
	}
}

func TestLoadKeyModes(t *testing.T) {
	dir := t.TempDir()
	gen, _ := backup.GenerateKey()
	for _, c := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o600, true}, {0o640, true}, {0o644, false}, {0o602, false}} {
		p := filepath.Join(dir, c.mode.String())
		if err := os.WriteFile(p, gen, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, c.mode)
		_, err := backup.LoadKey(p)
		if (err == nil) != c.ok {
			t.Errorf("mode %04o: %v", c.mode, err)
		}
	}
	if _, err := backup.LoadKey(dir); err == nil {
		t.Error("a directory loaded as a key")
	}
	if _, err := backup.LoadKey(filepath.Join(dir, "missing")); !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestCredentials(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	tc := backup.TargetConfig{Name: "off-site", Endpoint: "https://s3.example", Bucket: "b"}

	if _, err := tc.LoadCredentials(getenv); err == nil || !strings.Contains(err.Error(), "WEFT_BACKUP_OFF_SITE_ACCESS_KEY_ID") {
		t.Fatalf("no credentials: %v", err)
	}
	env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = "aws-id", "aws-secret"
	if c, err := tc.LoadCredentials(getenv); err != nil || c.AccessKeyID != "aws-id" {
		t.Fatalf("AWS_ fallback: %+v, %v", c, err)
	}
	env["WEFT_BACKUP_OFF_SITE_ACCESS_KEY_ID"], env["WEFT_BACKUP_OFF_SITE_SECRET_ACCESS_KEY"] = "own-id", "own-secret"
	if c, err := tc.LoadCredentials(getenv); err != nil || c.AccessKeyID != "own-id" || c.SecretAccessKey != "own-secret" {
		t.Fatalf("per-target env: %+v, %v", c, err)
	}

	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		os.Chmod(p, mode)
		return p
	}
	tc.CredentialsFile = write("ok", "access_key_id = \"file-id\"\nsecret_access_key = \"file-secret\"\n", 0o640)
	if c, err := tc.LoadCredentials(getenv); err != nil || c.AccessKeyID != "file-id" {
		t.Fatalf("file: %+v, %v", c, err)
	}
	for _, c := range []struct {
		name, body string
		mode       os.FileMode
		want       string
	}{
		{"world", "access_key_id = \"a\"\nsecret_access_key = \"s3cr3t-value\"\n", 0o644, "others may read"},
		{"nottoml", "secret_access_key = s3cr3t-value\n", 0o600, "not TOML"},
		{"unknown", "access_key_id = \"a\"\nsecret_access_key = \"s3cr3t-value\"\npassword = \"x\"\n", 0o600, "unknown key"},
		{"partial", "access_key_id = \"a\"\n", 0o600, "want access_key_id and secret_access_key"},
	} {
		tc.CredentialsFile = write(c.name, c.body, c.mode)
		_, err := tc.LoadCredentials(getenv)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: the error holds the secret: %v", c.name, err)
		}
	}

	for _, bad := range []backup.TargetConfig{
		{Name: "", Endpoint: "e", Bucket: "b"},
		{Name: "Upper", Endpoint: "e", Bucket: "b"},
		{Name: "ok", Bucket: "b"},
		{Name: "ok", Endpoint: "e"},
	} {
		if err := bad.Check(); err == nil {
			t.Errorf("%+v passed Check", bad)
		}
	}
}

// FuzzParseKey: key material never panics the parser, and an error never
// holds the material.
func FuzzParseKey(f *testing.F) {
	gen, _ := backup.GenerateKey()
	f.Add(gen)
	f.Add([]byte("correct horse battery staple\n"))
	f.Add([]byte("# comment\nAGE-SECRET-KEY-1\n"))
	f.Add([]byte(""))
	f.Add([]byte("\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := backup.ParseKey(data)
		if err != nil {
			// Material of a few characters may occur in any message
			// (a "12" in "at least 12"): only longer material counts.
			if m := strings.TrimSpace(string(data)); len(m) >= 8 && strings.Contains(err.Error(), m) {
				t.Fatalf("the error holds the input: %v", err)
			}
			return
		}
		if k.Recipient() == nil || len(k.Identities()) != 1 {
			t.Fatal("a parsed key without a recipient or identity")
		}
	})
}

// A bad recipient is refused without echoing it: what is given where a
// recipient goes may be a secret.
func TestParseRecipientDoesNotEcho(t *testing.T) {
	for _, in := range []string{"age1nope", "correct horse battery staple", "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"} {
		_, err := backup.ParseRecipient(in)
		if err == nil {
			t.Fatalf("ParseRecipient(%q) succeeded", in)
		}
		if strings.Contains(err.Error(), in) || !strings.Contains(err.Error(), "not an age X25519 recipient") {
			t.Fatalf("ParseRecipient(%q): %v", in, err)
		}
	}
}
