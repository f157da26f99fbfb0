package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/weftos/weft/backup/s3"
	"github.com/weftos/weft/internal/s3test"
)

// backupConfig declares two targets on s (its first two buckets) with
// the credentials in credsFile, and the backup key in keyFile.
func backupConfig(s *s3test.Server, keyFile, credsFile string, extra string) string {
	return fmt.Sprintf(`
[backup]
key_file = %q

[[backup.targets]]
name = "one"
endpoint = %q
bucket = %q
prefix = "node"
region = %q
credentials_file = %q

[[backup.targets]]
name = "two"
endpoint = %q
bucket = %q
region = %q
credentials_file = %q
%s`, keyFile, s.Endpoint, s.Buckets[0], s.Region, credsFile, s.Endpoint, s.Buckets[1], s.Region, credsFile, extra)
}

// backupSetup starts an S3 server with two buckets and writes a backup
// key, a credentials file and a config file declaring both buckets.
func backupSetup(t *testing.T, extra string) (s *s3test.Server, conf, keyFile string) {
	t.Helper()
	s = s3test.Start(t, 2)
	etc := t.TempDir()
	keyFile = filepath.Join(etc, "backup.key")
	if out, errOut, code := runTool(t, nil, weftdBin, "backup-key", keyFile); code != 0 || !strings.Contains(out, "age1") {
		t.Fatalf("weftd backup-key: %q %q %d", out, errOut, code)
	}
	creds := filepath.Join(etc, "s3.credentials")
	if err := os.WriteFile(creds, fmt.Appendf(nil, "access_key_id = %q\nsecret_access_key = %q\n", s.AccessKey, s.SecretKey), 0o600); err != nil {
		t.Fatal(err)
	}
	conf = filepath.Join(etc, "weftd.toml")
	if err := os.WriteFile(conf, []byte(backupConfig(s, keyFile, creds, extra)), 0o644); err != nil {
		t.Fatal(err)
	}
	return s, conf, keyFile
}

var ageSecret = regexp.MustCompile(`AGE-SECRET-KEY-1[0-9A-Z]+`)

// TestBackupAndRestoreEndToEnd: a node with the notes example backs up to
// two buckets of a real S3 server through weft backup; weftd is killed in
// the middle of a run and the next run completes; a target that is down
// fails alone; the node is restored offline with weftd restore, from
// either bucket, with the node's key or the recovery key weft backup init
// printed, into an empty data dir, and a weftd started on it is the same
// node with the same notes, index, grants and drive files. Credentials
// never show in the config weftd prints, its logs or the CLI's output.
func TestBackupAndRestoreEndToEnd(t *testing.T) {
	s, conf, keyFile := backupSetup(t, "")
	data := t.TempDir()
	n := startNode(t, data, "--config", conf, "--install", exampleDir(t, "notes"))
	nodeID := n.ready["node_id"]
	send := func(n *node, body string) string {
		t.Helper()
		out, errOut, code := n.weft(t, "send", "our@notes:notes:examples", body, "--await", "10s")
		if code != 0 {
			t.Fatalf("weft send %s: code %d, stderr %q", body, code, errOut)
		}
		return strings.TrimSuffix(out, "\n")
	}
	if got := send(n, `{"op":"put","id":"groceries","text":"Groceries\nmilk, eggs"}`); got != `{"ok":true}` {
		t.Fatalf("put: %s", got)
	}

	// Another user of bucket one, under another prefix: never touched.
	other, err := s3.New(s3.Config{Name: "other", Endpoint: s.Endpoint, Bucket: s.Buckets[0], Prefix: "other", Region: s.Region, AccessKey: s.AccessKey, SecretKey: s.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Put(context.Background(), "keep-me", strings.NewReader("not weft's"), 10); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := n.weft(t, "backup", "init")
	if code != 0 {
		t.Fatalf("weft backup init: %q %q %d", out, errOut, code)
	}
	recovery := ageSecret.FindString(out)
	if recovery == "" {
		t.Fatalf("weft backup init printed no key to keep:\n%s", out)
	}
	recoveryFile := filepath.Join(t.TempDir(), "recovery.key")
	if err := os.WriteFile(recoveryFile, []byte(recovery+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := n.weft(t, "backup", "run"); code != 0 {
		t.Fatalf("weft backup run: %q %q %d", out, errOut, code)
	}

	// A large drive file, so that the next run takes a while, and weftd
	// killed while it runs.
	big := make([]byte, 48<<20)
	rand.Read(big)
	bigPath := filepath.Join(data, "drives", "notes:examples", "notes", "big.bin")
	n.stop(t)
	if err := os.WriteFile(bigPath, big, 0o600); err != nil {
		t.Fatal(err)
	}
	n = startNode(t, data, "--config", conf)
	run := exec.Command(weftBin, "--socket", n.sock, "backup", "run")
	var runOut bytes.Buffer
	run.Stdout, run.Stderr = &runOut, &runOut
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	n.waitFor(t, "the run to begin", func(l string) bool { return strings.Contains(l, `"backup run started"`) })
	n.signal(t, syscall.SIGKILL)
	n.wait(t)
	run.Wait()
	if run.ProcessState.ExitCode() == 0 && !strings.Contains(runOut.String(), "one") {
		t.Logf("the run ended before the kill: %s", runOut.String())
	}

	// The next weftd cleans what the killed run staged, and the next run
	// stores everything; both repositories verify, reading every pack.
	n = startNode(t, data, "--config", conf)
	if _, err := os.Stat(filepath.Join(data, ".backup-staging")); err == nil {
		t.Fatal("the staging directory survived a start")
	}
	if got := send(n, `{"op":"put","id":"ideas","text":"Ideas"}`); got != `{"ok":true}` {
		t.Fatalf("put: %s", got)
	}
	if out, errOut, code := n.weft(t, "backup", "run"); code != 0 {
		t.Fatalf("weft backup run after the kill: %q %q %d", out, errOut, code)
	}
	if out, errOut, code := n.weft(t, "backup", "verify", "--read-data"); code != 0 {
		t.Fatalf("weft backup verify --read-data: %q %q %d", out, errOut, code)
	}
	out, _, code = n.weft(t, "backup", "ls")
	if code != 0 || !strings.Contains(out, "one") || !strings.Contains(out, "two") {
		t.Fatalf("weft backup ls: %q %d", out, code)
	}
	// Forget all but the newest, prune, and all still verifies; the other
	// prefix's object is still there.
	if out, errOut, code := n.weft(t, "backup", "forget", "--keep-last", "1"); code != 0 || !strings.Contains(out, "keeps 1") {
		t.Fatalf("weft backup forget: %q %q %d", out, errOut, code)
	}
	if out, errOut, code := n.weft(t, "backup", "prune"); code != 0 || !strings.Contains(out, "freed") {
		t.Fatalf("weft backup prune: %q %q %d", out, errOut, code)
	}
	if out, errOut, code := n.weft(t, "backup", "verify", "--read-data"); code != 0 {
		t.Fatalf("weft backup verify after prune: %q %q %d", out, errOut, code)
	}
	if in, err := other.Stat(context.Background(), "keep-me"); err != nil || in.Size != 10 {
		t.Fatalf("the other prefix's object: %v, %v", in, err)
	}
	capsBefore, _, _ := n.weft(t, "caps", "list", "notes:notes:examples")
	n.stop(t)

	// Nothing secret in what weftd printed or logged, nor in its config.
	printed, _, _ := runTool(t, nil, weftdBin, "--config", conf, "--print-config")
	for _, where := range []string{printed, n.stderr(), out} {
		if strings.Contains(where, s.SecretKey) || strings.Contains(where, "AGE-SECRET-KEY") {
			t.Fatalf("a secret was printed:\n%s", where)
		}
	}

	// A restore killed halfway leaves the data dir as it was (its staging
	// and lock file aside), and the next restore into it completes.
	killed := filepath.Join(t.TempDir(), "killed")
	cmd := exec.Command(weftdBin, "restore", "--data-dir", killed, "--config", conf, "--target", "one", "--key", keyFile)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 64)
	stderr.Read(line) // the first progress line: it is downloading
	cmd.Process.Kill()
	cmd.Wait()
	ents, _ := os.ReadDir(killed)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if !slices.Contains(left, "weft.db") {
		for _, name := range left {
			if name != "weftd.lock" && name != ".backup-staging" {
				t.Fatalf("a killed restore left %v", left)
			}
		}
		if out, errOut, code := runTool(t, nil, weftdBin, "restore", "--data-dir", killed, "--config", conf, "--target", "one", "--key", keyFile); code != 0 {
			t.Fatalf("restore after a killed one: %q %q %d", out, errOut, code)
		}
	} else {
		t.Logf("the restore finished before it was killed: %v", left)
	}
	if got, err := os.ReadFile(filepath.Join(killed, "drives", "notes:examples", "notes", "big.bin")); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("the big drive file after a killed restore and another: %d bytes, %v", len(got), err)
	}

	// Restore from each bucket, with either key, into an empty data dir.
	for _, c := range []struct {
		name string
		args []string
		env  []string
	}{
		{"target one, node key", []string{"--config", conf, "--target", "one", "--key", keyFile}, nil},
		{"bucket two by hand, recovery key", []string{"--endpoint", s.Endpoint, "--bucket", s.Buckets[1], "--region", s.Region, "--key", recoveryFile},
			[]string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "restored")
			out, errOut, code := runTool(t, c.env, weftdBin, append([]string{"restore", "--data-dir", dst}, c.args...)...)
			if code != 0 || !strings.Contains(out, fmt.Sprint(nodeID)) {
				t.Fatalf("weftd restore: %q %q %d", out, errOut, code)
			}
			if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o700 {
				t.Fatalf("restored data dir: %v", err)
			}
			got, err := os.ReadFile(filepath.Join(dst, "drives", "notes:examples", "notes", "big.bin"))
			if err != nil || !bytes.Equal(got, big) {
				t.Fatalf("the big drive file: %d bytes, %v", len(got), err)
			}
			// Into a non-empty dir: refused, and the dir left alone.
			if _, errOut, code := runTool(t, c.env, weftdBin, append([]string{"restore", "--data-dir", dst}, c.args...)...); code != 1 || !strings.Contains(errOut, "not empty") {
				t.Fatalf("restore over a node: %q %d", errOut, code)
			}
			m := startNode(t, dst)
			if m.ready["node_id"] != nodeID {
				t.Fatalf("restored node id %v, want %v", m.ready["node_id"], nodeID)
			}
			if got := send(m, `{"op":"get","id":"groceries"}`); got != "Groceries\nmilk, eggs" {
				t.Fatalf("restored note: %q", got)
			}
			if got := send(m, `{"op":"get","id":"ideas"}`); got != "Ideas" {
				t.Fatalf("restored note: %q", got)
			}
			if out, _, code := m.weft(t, "kv", "get", "notes:examples", "index", "ideas"); code != 0 || !strings.Contains(out, `"title":"Ideas"`) {
				t.Fatalf("restored index: %q %d", out, code)
			}
			if caps, _, _ := m.weft(t, "caps", "list", "notes:notes:examples"); caps != capsBefore {
				t.Fatalf("restored grants:\n%s\nwant\n%s", caps, capsBefore)
			}
			m.stop(t)
		})
	}
}

// TestBackupTargetDown: a run to a target that is down fails on it alone,
// and says so; the others get their snapshot.
func TestBackupTargetDown(t *testing.T) {
	down := `
[[backup.targets]]
name = "down"
endpoint = "http://127.0.0.1:1"
bucket = "nowhere"
region = "us-east-1"
credentials_file = %q
`
	_, conf, _ := backupSetup(t, "")
	creds := filepath.Join(filepath.Dir(conf), "s3.credentials")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, down, creds)
	f.Close()
	n := startNode(t, t.TempDir(), "--config", conf)
	out, errOut, code := n.weft(t, "backup", "init")
	if code == 0 || !strings.Contains(out+errOut, "down") {
		t.Fatalf("weft backup init with a target down: %q %q %d", out, errOut, code)
	}
	out, errOut, code = n.weft(t, "backup", "run")
	if code != 2 || !strings.Contains(errOut, "failed on 1 target") {
		t.Fatalf("weft backup run with a target down: %q %q %d", out, errOut, code)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(l)
		switch f[0] {
		case "down":
			if f[1] != "-" || !strings.Contains(l, "127.0.0.1:1") {
				t.Errorf("the down target's line: %q", l)
			}
		case "one", "two":
			if len(f[1]) != 12 {
				t.Errorf("a healthy target's line: %q", l)
			}
		default:
			t.Errorf("line %q", l)
		}
	}
	out, _, code = n.weft(t, "backup", "ls", "--target", "one", "--target", "two")
	if code != 0 || strings.Contains(out, "(none)") || strings.Count(out, "\n") != 3 {
		t.Fatalf("weft backup ls: %q %d", out, code)
	}
	// weft status shows each target's last success, or none.
	out, _, code = n.weft(t, "status")
	if code != 0 || !strings.Contains(out, "backup one") || !strings.Contains(out, "last success") || !strings.Contains(out, "backup down") || !strings.Contains(out, "last run failed") {
		t.Fatalf("weft status: %q %d", out, code)
	}
	// weft backup status says which failed, and when each last succeeded.
	out, _, code = n.weft(t, "backup", "status")
	if code != 0 || !strings.Contains(out, "down") || !strings.Contains(out, "never") {
		t.Fatalf("weft backup status: %q %d", out, code)
	}
	n.stop(t)
}
