package daemon_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftos/weft/backup"
	"github.com/weftos/weft/daemon"
)

// A data dir an interrupted restore left is refused, naming the marker.
func TestRunRefusesAnInterruptedRestore(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, backup.RestoreMarker), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := startErr(t, dir)
	if err == nil || !strings.Contains(err.Error(), backup.RestoreMarker) || !strings.Contains(err.Error(), "restore again") {
		t.Fatalf("Run on an interrupted restore = %v", err)
	}
}

// A node with targets needs a key it can read safely, and credentials;
// a target that is down does not stop it (no request is made at start),
// and what an earlier run staged is removed.
func TestBackupsAtStart(t *testing.T) {
	target := backup.TargetConfig{Name: "off-site", Endpoint: "http://127.0.0.1:1", Bucket: "b"}
	keyDir := t.TempDir()
	key := filepath.Join(keyDir, "backup.key")
	gen, err := backup.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	withTarget := func(keyFile string) func(*daemon.Config) {
		return func(c *daemon.Config) {
			c.Backup.KeyFile = keyFile
			c.Backup.Targets = []backup.TargetConfig{target}
		}
	}

	if _, err := startWith(t, t.TempDir(), withTarget(key)); err == nil || !strings.Contains(err.Error(), "weftd backup-key") {
		t.Fatalf("no key file: %v", err)
	}
	os.WriteFile(key, gen, 0o644)
	os.Chmod(key, 0o644)
	if _, err := startWith(t, t.TempDir(), withTarget(key)); err == nil || !strings.Contains(err.Error(), "others may read") {
		t.Fatalf("a key others may read: %v", err)
	}
	os.Chmod(key, 0o600)
	if _, err := startWith(t, t.TempDir(), withTarget(key)); err == nil || !strings.Contains(err.Error(), "WEFT_BACKUP_OFF_SITE_ACCESS_KEY_ID") {
		t.Fatalf("no credentials: %v", err)
	}
	t.Setenv("WEFT_BACKUP_OFF_SITE_ACCESS_KEY_ID", "id")
	t.Setenv("WEFT_BACKUP_OFF_SITE_SECRET_ACCESS_KEY", "s3cr3t-value")
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, backup.StagingDir, "run-1", "node"), 0o700); err != nil {
		t.Fatal(err)
	}
	n, err := startWith(t, dir, withTarget(key))
	if err != nil {
		t.Fatalf("a node whose target is down: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, backup.StagingDir)); !os.IsNotExist(err) {
		t.Errorf("the staging directory after start: %v", err)
	}
	if err := n.stop(t); err != nil {
		t.Fatal(err)
	}
	logs := n.logs.String()
	if !strings.Contains(logs, "backups configured") || strings.Contains(logs, "s3cr3t") {
		t.Errorf("logs:\n%s", logs)
	}

	// The key may come from the environment instead.
	t.Setenv(daemon.BackupKeyEnv, "a passphrase long enough")
	n, err = startWith(t, t.TempDir(), withTarget(""))
	if err != nil {
		t.Fatalf("key from the environment: %v", err)
	}
	n.stop(t)
}
