package cli

import (
	"context"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"filippo.io/age"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weftos/weft/api/weftv1"
)

func (f *fakeNode) InitBackups(_ context.Context, req *connect.Request[weftv1.InitBackupsRequest]) (*connect.Response[weftv1.InitBackupsResponse], error) {
	if err := f.record("InitBackups", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	return connect.NewResponse(&weftv1.InitBackupsResponse{Targets: []*weftv1.InitBackupsResult{
		{Target: "one", Created: true}, {Target: "two", Error: "s3 target \"two\": connection refused"},
	}}), nil
}

func (f *fakeNode) RunBackup(_ context.Context, req *connect.Request[weftv1.RunBackupRequest], stream *connect.ServerStream[weftv1.RunBackupEvent]) error {
	if err := f.record("RunBackup", req.Header(), req.Msg); err != nil {
		return err
	}
	for _, ev := range []*weftv1.RunBackupEvent{
		{Phase: "stage"},
		{Phase: "upload", TotalBytes: 1 << 20, TotalFiles: 4, ScannedBytes: 1 << 19, ScannedFiles: 2,
			Targets: []*weftv1.BackupTargetProgress{{Target: "one", UploadedBytes: 1000}, {Target: "two", Error: "down"}}},
		{Phase: "done", TotalBytes: 1 << 20, TotalFiles: 4, ScannedBytes: 1 << 20, ScannedFiles: 4, Results: []*weftv1.BackupRunResult{
			{Target: "one", UploadedBytes: 2048, Snapshot: &weftv1.BackupSnapshot{Id: strings.Repeat("ab", 32), Files: 4, Bytes: 1 << 20, Time: timestamppb.Now()}},
			{Target: "two", Error: "s3 target \"two\": connection refused"},
		}},
	} {
		if err := stream.Send(ev); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeNode) ForgetSnapshots(_ context.Context, req *connect.Request[weftv1.ForgetSnapshotsRequest]) (*connect.Response[weftv1.ForgetSnapshotsResponse], error) {
	if err := f.record("ForgetSnapshots", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	return connect.NewResponse(&weftv1.ForgetSnapshotsResponse{Targets: []*weftv1.ForgetSnapshotsResult{{Target: "one"}}}), nil
}

func TestBackupInitMakesTheRecoveryKeyHere(t *testing.T) {
	f := &fakeNode{}
	sock := serve(t, f)
	res := weft(t, sock, "backup", "init")
	if res.code != ExitNode || !strings.Contains(res.stderr, "failed on 1 target") {
		t.Fatalf("init with a target failing: %+v", res)
	}
	if !strings.Contains(res.stdout, "one: repository created") || !strings.Contains(res.stdout, "two: failed: s3 target") {
		t.Fatalf("stdout: %s", res.stdout)
	}
	line := ""
	for _, l := range strings.Split(res.stdout, "\n") {
		if strings.HasPrefix(l, "AGE-SECRET-KEY-1") {
			line = l
		}
	}
	id, err := age.ParseX25519Identity(line)
	if err != nil {
		t.Fatalf("no recovery key printed: %v\n%s", err, res.stdout)
	}
	req := f.last("InitBackups").(*weftv1.InitBackupsRequest)
	if len(req.GetRecipients()) != 1 || req.GetRecipients()[0] != id.Recipient().String() {
		t.Fatalf("sent %v, want the printed key's recipient only", req.GetRecipients())
	}

	// With a recipient of one's own, nothing secret is printed.
	own, _ := age.GenerateX25519Identity()
	res = weft(t, sock, "backup", "init", "--recipient", own.Recipient().String())
	if strings.Contains(res.stdout+res.stderr, "AGE-SECRET-KEY") {
		t.Fatalf("printed a secret: %+v", res)
	}
	if req := f.last("InitBackups").(*weftv1.InitBackupsRequest); req.GetRecipients()[0] != own.Recipient().String() {
		t.Fatalf("sent %v", req.GetRecipients())
	}
}

func TestBackupRun(t *testing.T) {
	f := &fakeNode{}
	sock := serve(t, f)
	res := weft(t, sock, "backup", "run", "--target", "one", "--target", "two")
	if res.code != ExitNode {
		t.Fatalf("run with a target failing: %+v", res)
	}
	if req := f.last("RunBackup").(*weftv1.RunBackupRequest); strings.Join(req.GetTargets(), ",") != "one,two" {
		t.Fatalf("targets sent: %v", req.GetTargets())
	}
	// Not a terminal: phases and progress as lines on stderr, the outcome
	// on stdout.
	for _, want := range []string{"backup: stage", "backup: read 512.0 KiB of 1.0 MiB (50%), 2 of 4 files; one 1000 B up, two failed"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
		}
	}
	for _, want := range []string{"one     abababababab  4      1.0 MiB  2.0 KiB", "two     -", "connection refused"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, res.stdout)
		}
	}
	// Stderr on a terminal gets a bar (bytes, percent, redrawn in place)
	// instead of lines.
	res = invocation{stderrTerminal: true}.run(context.Background(), "--socket", sock, "backup", "run")
	if res.code != ExitNode || !strings.Contains(res.stdout, "abababababab") {
		t.Fatalf("run on a terminal: %+v", res)
	}
	if !strings.HasPrefix(res.stderr, "backup: stage\n") || !strings.Contains(res.stderr, "\r") || !strings.Contains(res.stderr, "50%") ||
		!strings.Contains(res.stderr, "512 KiB/1.0 MiB") || strings.Contains(res.stderr, "backup: read") {
		t.Errorf("no bar on a terminal's stderr: %q", res.stderr)
	}
	// Stdin on a terminal but stderr to a file (2>log): lines, no bar.
	res = invocation{terminal: true}.run(context.Background(), "--socket", sock, "backup", "run")
	if !strings.Contains(res.stderr, "backup: read 512.0 KiB") || strings.Contains(res.stderr, "\r") {
		t.Errorf("a bar on stderr that is not a terminal: %q", res.stderr)
	}
	// --json: one event a line, the last with the results.
	res = weft(t, sock, "--json", "backup", "run")
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if res.code != ExitNode || len(lines) != 3 || !strings.Contains(lines[2], `"results"`) {
		t.Fatalf("--json run: %+v", res)
	}
	for _, l := range lines {
		ev := &weftv1.RunBackupEvent{}
		if err := protojson.Unmarshal([]byte(l), ev); err != nil || ev.GetPhase() == "" {
			t.Fatalf("--json run: line %q: %v", l, err)
		}
	}
}

func TestBackupUsage(t *testing.T) {
	f := &fakeNode{}
	sock := serve(t, f)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"backup"}, "missing subcommand"},
		{[]string{"backup", "frob"}, `unknown subcommand "frob"`},
		{[]string{"backup", "forget"}, "at least one --keep-* rule"},
		{[]string{"backup", "forget", "--keep-last", "x"}, "--keep-last"},
		{[]string{"backup", "forget", "--keep-last", "1", "0123abcd"}, "ids or --keep-* rules, not both"},
		{[]string{"backup", "key"}, "missing subcommand"},
		{[]string{"backup", "key", "remove", "abc"}, "exactly one --target"},
		{[]string{"backup", "key", "add"}, "RECIPIENT"},
		{[]string{"backup", "run", "extra"}, `unexpected argument "extra"`},
	} {
		res := weft(t, sock, tc.args...)
		res.wantErr(t, ExitUsage, tc.want)
	}
	// A secret key where a recipient goes: refused here, not repeated.
	secret, _ := age.GenerateX25519Identity()
	for _, args := range [][]string{
		{"backup", "init", "--recipient", secret.String()},
		{"backup", "key", "add", strings.ToLower(secret.String())},
	} {
		res := weft(t, sock, args...)
		res.wantErr(t, ExitUsage, "that is a secret key", "nothing was sent")
		if strings.Contains(strings.ToUpper(res.stdout+res.stderr), secret.String()) {
			t.Errorf("%v repeated the secret: %+v", args, res)
		}
	}
	if len(f.calls) != 0 {
		t.Fatalf("a usage error called the node: %v", f.calls)
	}
	if res := weft(t, sock, "backup", "--help"); res.code != ExitOK || !strings.Contains(res.stdout, "weft backup init") {
		t.Fatalf("help: %+v", res)
	}
	res := weft(t, sock, "backup", "forget", "--keep-daily", "7", "--keep-weekly", "4", "--dry-run")
	if res.code != ExitOK || !strings.Contains(res.stdout, "would forget 0") {
		t.Fatalf("forget: %+v", res)
	}
	req := f.last("ForgetSnapshots").(*weftv1.ForgetSnapshotsRequest)
	if req.GetKeepDaily() != 7 || req.GetKeepWeekly() != 4 || !req.GetDryRun() || req.GetKeepLast() != 0 {
		t.Fatalf("forget sent %v", req)
	}
}
