package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"filippo.io/age"
	"github.com/schollz/progressbar/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/internal/units"
)

var cmdBackup = &command{
	name:    "backup",
	usage:   "weft backup init|run|ls|status|verify|forget|prune|key [flags]",
	summary: "back the node up to its S3 targets, list, verify, forget, prune, keys",
	details: `Backup drives the node's encrypted backups to the targets weftd.toml
declares ([[backup.targets]]; docs/backup.md). Commands that take
--target NAME (repeatable) work on those targets only; without it, on all.

  weft backup init [--recipient age1...]...
      make a repository on every target that has none. Without
      --recipient, weft generates a recovery key here, sends the node only
      its public half, and prints it ONCE: keep it away from the machine;
      with it and the bucket, weftd restore brings the node back. With
      --recipient, those identities (yours already) open the repositories
      too, and nothing secret is printed.
  weft backup run [--target NAME]...
      back up now; a progress bar on a terminal, lines otherwise; each
      target's outcome at the end; exit status 2 if any target failed
  weft backup ls [--target NAME]...
      each target's snapshots, newest first
  weft backup status
      each target's last run, its age and size, its last error; the
      schedule; what runs now
  weft backup verify [--read-data] [--target NAME]...
      check every snapshot's blobs are indexed and their packs there; with
      --read-data download, decrypt and check every pack; exit status 2 if
      anything is missing or corrupt
  weft backup forget --keep-last N [--keep-hourly N] [--keep-daily N]
                     [--keep-weekly N] [--keep-monthly N] [--keep-yearly N]
                     [--dry-run] [--target NAME]...
      forget the snapshots the rules do not keep (restic's rules, in UTC);
      at least one rule is required
  weft backup forget [--dry-run] [--target NAME]... ID...
      forget the snapshots named (ids as ls shows them, 8 digits at least),
      whatever the rules would keep: one a lost pack broke, say; exit
      status 2 if an id names no snapshot on any target
  weft backup prune [--target NAME]...
      delete what no snapshot references (after forget)
  weft backup key list [--target NAME]...
  weft backup key add RECIPIENT [--target NAME]...
  weft backup key remove --target NAME ID
      the key files that open each repository; the node's own and a
      repository's last cannot be removed

Only one of init, run, verify, forget, prune and key add/remove runs at a
time on a node; another fails "aborted" (try again when it ends; ls,
status and key list go on). Long operations have no timeout unless
--timeout is given; interrupting weft backup run (Ctrl-C) stops the run
on the node too, and the next run uploads only what is still missing.
With --json the node's response is printed (for run, one RunBackupEvent
a line, the last with the results; init's recovery key, if any, goes to
stderr, so stdout stays JSON).

Examples:
  weft backup init > recovery-key.txt
  weft backup run
  weft backup forget --keep-daily 7 --keep-weekly 4 --keep-monthly 12 && weft backup prune
  weft --json backup ls | jq -r '.targets[].snapshots[0].id'
`,
	run: runBackup,
}

func runBackup(ctx context.Context, r *runner, args []string) error {
	if len(args) == 0 {
		return usagef("missing subcommand: want init, run, ls, status, verify, forget, prune or key")
	}
	sub, args := args[0], args[1:]
	if sub == "--help" || sub == "-h" || sub == "help" {
		return errHelp
	}
	switch sub {
	case "init":
		return backupInit(ctx, r, args)
	case "run":
		return backupRun(ctx, r, args)
	case "ls":
		return backupLs(ctx, r, args)
	case "status":
		return backupStatus(ctx, r, args)
	case "verify":
		return backupVerify(ctx, r, args)
	case "forget":
		return backupForget(ctx, r, args)
	case "prune":
		return backupPrune(ctx, r, args)
	case "key":
		return backupKey(ctx, r, args)
	}
	return usagef("unknown subcommand %q: want init, run, ls, status, verify, forget, prune or key", sub)
}

// longCall bounds a call that may take long (a run, a verify, a prune)
// only by an explicit --timeout.
func (r *runner) longCall(ctx context.Context, explicit bool) (*conn, context.Context, context.CancelFunc, error) {
	c, err := r.dial()
	if err != nil {
		return nil, nil, nil, err
	}
	if explicit && r.g.timeout > 0 {
		cctx, cancel := context.WithTimeout(ctx, r.g.timeout)
		return c, cctx, cancel, nil
	}
	cctx, cancel := context.WithCancel(ctx)
	return c, cctx, cancel, nil
}

// targetsFlag parses a subcommand's flags with a repeatable --target.
func targetsFlag(fs *flagSet, targets *[]string) *flagSet {
	fs.stringsVar(targets, "target")
	return fs
}

// failedTargets counts the per-target outcomes that carry an error.
func failedTargets[T interface{ GetError() string }](ts []T) int {
	n := 0
	for _, t := range ts {
		if t.GetError() != "" {
			n++
		}
	}
	return n
}

// targetFailed is the error of a command whose work failed on a target:
// the output said which; the exit status says so too.
func targetFailed(op string, n int) error {
	return &nodeError{op: op, err: fmt.Errorf("failed on %d target(s); see above", n)}
}

func backupInit(ctx context.Context, r *runner, args []string) error {
	var recipients []string
	fs := newFlagSet()
	fs.stringsVar(&recipients, "recipient")
	if _, err := exactArgs(fs, args, 0, 0, ""); err != nil {
		return err
	}
	for _, rc := range recipients {
		if err := checkRecipient("--recipient", rc); err != nil {
			return err
		}
	}
	var recovery *age.X25519Identity
	if len(recipients) == 0 {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			return err
		}
		recovery, recipients = id, []string{id.Recipient().String()}
	}
	c, cctx, cancel, err := r.longCall(ctx, false)
	if err != nil {
		return err
	}
	defer cancel()
	resp, err := c.backups.InitBackups(cctx, connect.NewRequest(&weftv1.InitBackupsRequest{Recipients: recipients}))
	if err != nil {
		return &nodeError{op: "backup init", err: err}
	}
	failed, created := 0, 0
	for _, t := range resp.Msg.GetTargets() {
		if t.GetError() != "" {
			failed++
		}
		if t.GetCreated() {
			created++
		}
	}
	if r.g.json {
		if err := r.printJSON(resp.Msg); err != nil {
			return err
		}
	} else {
		for _, t := range resp.Msg.GetTargets() {
			switch {
			case t.GetError() != "":
				fmt.Fprintf(r.env.Stdout, "%s: failed: %s\n", t.GetTarget(), oneLine(t.GetError()))
			case t.GetCreated():
				fmt.Fprintf(r.env.Stdout, "%s: repository created\n", t.GetTarget())
			default:
				fmt.Fprintf(r.env.Stdout, "%s: a repository is already there; left as it is\n", t.GetTarget())
			}
		}
	}
	if recovery != nil && created > 0 {
		// The one place this secret ever shows: it never went to the node.
		w := r.env.Stdout
		if r.g.json {
			w = r.env.Stderr
		}
		fmt.Fprintf(w, "\nRecovery key for the repositories just created. Keep it away from this\nmachine: with it and the bucket, weftd restore brings the node back.\nIt is shown once.\n\n%s\n", recovery)
	}
	if failed > 0 {
		return targetFailed("backup init", failed)
	}
	return nil
}

func backupRun(ctx context.Context, r *runner, args []string) error {
	var targets []string
	if _, err := exactArgs(targetsFlag(newFlagSet(), &targets), args, 0, 0, ""); err != nil {
		return err
	}
	c, cctx, cancel, err := r.longCall(ctx, true)
	if err != nil {
		return err
	}
	defer cancel()
	stream, err := c.backups.RunBackup(cctx, connect.NewRequest(&weftv1.RunBackupRequest{Targets: targets}))
	if err != nil {
		return &nodeError{op: "backup run", err: err}
	}
	defer stream.Close()
	show := newRunProgress(r)
	var last *weftv1.RunBackupEvent
	for stream.Receive() {
		last = stream.Msg()
		if r.g.json {
			if err := r.printJSONLine(last); err != nil {
				return err
			}
			continue
		}
		show.update(last)
	}
	show.finish()
	if err := stream.Err(); err != nil {
		return &nodeError{op: "backup run", err: err}
	}
	if last == nil {
		return &nodeError{op: "backup run", err: fmt.Errorf("the node ended the run without a result")}
	}
	failed := failedTargets(last.GetResults())
	if !r.g.json {
		tw := tabwriter.NewWriter(r.env.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "TARGET\tSNAPSHOT\tFILES\tSIZE\tUPLOADED\tERROR")
		for _, res := range last.GetResults() {
			s := res.GetSnapshot()
			if res.GetError() != "" {
				fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t%s\n", res.GetTarget(), oneLine(res.GetError()))
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t\n", res.GetTarget(), shortID(s.GetId()), s.GetFiles(), units.Bytes(s.GetBytes()), units.Bytes(res.GetUploadedBytes()))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if failed > 0 {
		return targetFailed("backup run", failed)
	}
	return nil
}

// printJSONLine prints m as one line of JSON: a stream's events, one a
// line, as weft tap prints its envelopes.
func (r *runner) printJSONLine(m proto.Message) error {
	b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	_, err = fmt.Fprintf(r.env.Stdout, "%s\n", b)
	return err
}

// runProgress shows a run's progress on stderr: a bar with bytes and ETA
// when stderr is a terminal, a line every few seconds otherwise.
type runProgress struct {
	r        *runner
	bar      *progressbar.ProgressBar
	phase    string
	lastLine time.Time
	line     string // the last line printed
}

func newRunProgress(r *runner) *runProgress { return &runProgress{r: r} }

func (p *runProgress) update(ev *weftv1.RunBackupEvent) {
	w := p.r.env.Stderr
	if ev.GetPhase() != p.phase {
		p.phase = ev.GetPhase()
		if p.bar == nil && ev.GetPhase() != "done" {
			fmt.Fprintf(w, "backup: %s\n", ev.GetPhase())
		}
	}
	if ev.GetPhase() != "upload" && ev.GetPhase() != "done" || ev.GetTotalBytes() == 0 {
		return
	}
	if p.r.env.stderrIsTerminal() {
		if p.bar == nil {
			p.bar = progressbar.NewOptions64(int64(ev.GetTotalBytes()),
				progressbar.OptionSetWriter(w),
				progressbar.OptionSetDescription("backup"),
				progressbar.OptionShowBytes(true),
				progressbar.OptionShowCount(),
				progressbar.OptionUseIECUnits(true),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionShowElapsedTimeOnFinish(),
				progressbar.OptionSetWidth(30),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish())
		}
		p.bar.Set64(int64(ev.GetScannedBytes()))
		return
	}
	if time.Since(p.lastLine) < 2*time.Second && ev.GetScannedBytes() < ev.GetTotalBytes() {
		return
	}
	p.lastLine = time.Now()
	var up []string
	for _, t := range ev.GetTargets() {
		s := fmt.Sprintf("%s %s up", t.GetTarget(), units.Bytes(t.GetUploadedBytes()))
		if t.GetError() != "" {
			s = t.GetTarget() + " failed"
		}
		up = append(up, s)
	}
	line := fmt.Sprintf("backup: read %s of %s (%d%%), %d of %d files; %s\n", units.Bytes(ev.GetScannedBytes()), units.Bytes(ev.GetTotalBytes()),
		ev.GetScannedBytes()*100/ev.GetTotalBytes(), ev.GetScannedFiles(), ev.GetTotalFiles(), strings.Join(up, ", "))
	if line != p.line { // the last event repeats the last report
		p.line = line
		fmt.Fprint(w, line)
	}
}

func (p *runProgress) finish() {
	if p.bar != nil {
		p.bar.Finish()
		fmt.Fprintln(p.r.env.Stderr)
	}
}

func backupLs(ctx context.Context, r *runner, args []string) error {
	var targets []string
	if _, err := exactArgs(targetsFlag(newFlagSet(), &targets), args, 0, 0, ""); err != nil {
		return err
	}
	c, cctx, cancel, err := r.longCall(ctx, true)
	if err != nil {
		return err
	}
	defer cancel()
	resp, err := c.backups.ListSnapshots(cctx, connect.NewRequest(&weftv1.ListSnapshotsRequest{Targets: targets}))
	if err != nil {
		return &nodeError{op: "backup ls", err: err}
	}
	if r.g.json {
		return r.printJSON(resp.Msg)
	}
	tw := tabwriter.NewWriter(r.env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tSNAPSHOT\tTIME\tFILES\tSIZE\tADDED\tVERSION")
	failed := 0
	for _, t := range resp.Msg.GetTargets() {
		if t.GetError() != "" {
			failed++
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\terror: %s\n", t.GetTarget(), oneLine(t.GetError()))
			continue
		}
		if len(t.GetSnapshots()) == 0 {
			fmt.Fprintf(tw, "%s\t(none)\t\t\t\t\t\n", t.GetTarget())
		}
		for _, s := range t.GetSnapshots() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", t.GetTarget(), shortID(s.GetId()), s.GetTime().AsTime().Local().Format(time.DateTime),
				s.GetFiles(), units.Bytes(s.GetBytes()), units.Bytes(s.GetAddedBytes()), s.GetWeftVersion())
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		return targetFailed("backup ls", failed)
	}
	return nil
}

func backupStatus(ctx context.Context, r *runner, args []string) error {
	if _, err := exactArgs(newFlagSet(), args, 0, 0, ""); err != nil {
		return err
	}
	c, cctx, cancel, err := r.dialCall(ctx, 0)
	if err != nil {
		return err
	}
	defer cancel()
	resp, err := c.backups.GetBackupStatus(cctx, connect.NewRequest(&weftv1.GetBackupStatusRequest{}))
	if err != nil {
		return &nodeError{op: "backup status", err: err}
	}
	if r.g.json {
		return r.printJSON(resp.Msg)
	}
	m := resp.Msg
	w := r.env.Stdout
	key := m.GetKeyKind()
	if m.GetKeyRecipient() != "" {
		key += " " + m.GetKeyRecipient()
	}
	fmt.Fprintf(w, "key:       %s\n", key)
	sched := "on demand"
	if d := m.GetInterval().AsDuration(); d > 0 {
		sched = "every " + d.String()
	}
	if d := m.GetAfterWrite().AsDuration(); d > 0 {
		sched += ", " + d.String() + " after writes"
	}
	fmt.Fprintf(w, "schedule:  %s\n", sched)
	if m.GetNextRun() != nil {
		fmt.Fprintf(w, "next run:  %s\n", m.GetNextRun().AsTime().Local().Format(time.DateTime))
	}
	if m.GetRunning() != "" {
		fmt.Fprintf(w, "running:   %s\n", m.GetRunning())
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tLAST SUCCESS\tAGE\tSNAPSHOT\tSIZE\tUPLOADED\tRUNS\tFAILURES\tLAST ERROR")
	now := time.Now()
	for _, t := range m.GetTargets() {
		when, age := "never (since start)", "-"
		if t.GetLastSuccess() != nil {
			ls := t.GetLastSuccess().AsTime()
			when, age = ls.Local().Format(time.DateTime), now.Sub(ls).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", t.GetTarget(), when, age, shortID(t.GetLastSnapshot()),
			units.Bytes(t.GetLastBytes()), units.Bytes(t.GetLastUploadedBytes()), t.GetRuns(), t.GetFailures(), oneLine(t.GetLastError()))
	}
	return tw.Flush()
}

func backupVerify(ctx context.Context, r *runner, args []string) error {
	var targets []string
	var readData bool
	fs := targetsFlag(newFlagSet(), &targets)
	fs.boolVar(&readData, "read-data")
	if _, err := exactArgs(fs, args, 0, 0, ""); err != nil {
		return err
	}
	c, cctx, cancel, err := r.longCall(ctx, true)
	if err != nil {
		return err
	}
	defer cancel()
	resp, err := c.backups.VerifyBackups(cctx, connect.NewRequest(&weftv1.VerifyBackupsRequest{Targets: targets, ReadData: readData}))
	if err != nil {
		return &nodeError{op: "backup verify", err: err}
	}
	bad := 0
	for _, v := range resp.Msg.GetTargets() {
		if !v.GetOk() {
			bad++
		}
	}
	if r.g.json {
		if err := r.printJSON(resp.Msg); err != nil {
			return err
		}
	} else {
		w := r.env.Stdout
		for _, v := range resp.Msg.GetTargets() {
			switch {
			case v.GetError() != "":
				fmt.Fprintf(w, "%s: could not verify: %s\n", v.GetTarget(), oneLine(v.GetError()))
			case v.GetOk():
				extra := ""
				if n := v.GetUnreferencedPacks(); n > 0 {
					extra = fmt.Sprintf(" (%d unindexed packs: prune removes them)", n)
				}
				fmt.Fprintf(w, "%s: ok: %d snapshots%s\n", v.GetTarget(), v.GetSnapshots(), extra)
			default:
				fmt.Fprintf(w, "%s: PROBLEMS\n", v.GetTarget())
				for _, p := range v.GetProblems() {
					fmt.Fprintf(w, "  %s\n", oneLine(p))
				}
				for _, b := range v.GetBroken() {
					fmt.Fprintf(w, "  snapshot %s:\n", shortID(b.GetId()))
					for _, p := range b.GetProblems() {
						fmt.Fprintf(w, "    %s\n", oneLine(p))
					}
				}
			}
		}
	}
	if bad > 0 {
		return targetFailed("backup verify", bad)
	}
	return nil
}

func backupForget(ctx context.Context, r *runner, args []string) error {
	var targets []string
	var last, hourly, daily, weekly, monthly, yearly uint64
	var dryRun bool
	fs := targetsFlag(newFlagSet(), &targets)
	const most = 1 << 20
	fs.uintVar(&last, most, "keep-last")
	fs.uintVar(&hourly, most, "keep-hourly")
	fs.uintVar(&daily, most, "keep-daily")
	fs.uintVar(&weekly, most, "keep-weekly")
	fs.uintVar(&monthly, most, "keep-monthly")
	fs.uintVar(&yearly, most, "keep-yearly")
	fs.boolVar(&dryRun, "dry-run")
	ids, err := exactArgs(fs, args, 0, 1000, "")
	if err != nil {
		return err
	}
	for _, id := range ids {
		if len(id) < 8 || len(id) > 64 || strings.Trim(strings.ToLower(id), "0123456789abcdef") != "" {
			return usagef("forget: %q is not a snapshot id: give 8 to 64 of its hex digits, as weft backup ls shows them", id)
		}
	}
	rules := last+hourly+daily+weekly+monthly+yearly > 0
	switch {
	case len(ids) > 0 && rules:
		return usagef("forget: give snapshot ids or --keep-* rules, not both")
	case len(ids) == 0 && !rules:
		return usagef("forget: give at least one --keep-* rule (without one it would forget every snapshot), or the ids of the snapshots to forget")
	}
	c, cctx, cancel, err := r.longCall(ctx, true)
	if err != nil {
		return err
	}
	defer cancel()
	resp, err := c.backups.ForgetSnapshots(cctx, connect.NewRequest(&weftv1.ForgetSnapshotsRequest{Targets: targets,
		KeepLast: uint32(last), KeepHourly: uint32(hourly), KeepDaily: uint32(daily), KeepWeekly: uint32(weekly),
		KeepMonthly: uint32(monthly), KeepYearly: uint32(yearly), DryRun: dryRun, SnapshotIds: ids}))
	if err != nil {
		return &nodeError{op: "backup forget", err: err}
	}
	failed := failedTargets(resp.Msg.GetTargets())
	if r.g.json {
		if err := r.printJSON(resp.Msg); err != nil {
			return err
		}
	} else {
		verb := "forgot"
		if dryRun {
			verb = "would forget"
		}
		for _, t := range resp.Msg.GetTargets() {
			if t.GetError() != "" {
				fmt.Fprintf(r.env.Stdout, "%s: failed: %s\n", t.GetTarget(), oneLine(t.GetError()))
				continue
			}
			fmt.Fprintf(r.env.Stdout, "%s: keeps %d, %s %d\n", t.GetTarget(), len(t.GetKept()), verb, len(t.GetRemoved()))
			for _, id := range t.GetMissing() {
				fmt.Fprintf(r.env.Stdout, "  %s names no snapshot here\n", id)
			}
			for _, s := range t.GetRemoved() {
				fmt.Fprintf(r.env.Stdout, "  %s %s\n", shortID(s.GetId()), s.GetTime().AsTime().Local().Format(time.DateTime))
			}
		}
	}
	if failed > 0 {
		return targetFailed("backup forget", failed)
	}
	if nowhere := missingEverywhere(ids, resp.Msg.GetTargets()); len(nowhere) > 0 {
		return &nodeError{op: "backup forget", err: fmt.Errorf("no snapshot on any target is named %s", strings.Join(nowhere, ", "))}
	}
	return nil
}

// missingEverywhere returns the ids that every target said name nothing.
func missingEverywhere(ids []string, targets []*weftv1.ForgetSnapshotsResult) []string {
	var out []string
	for _, id := range ids {
		everywhere := len(targets) > 0
		for _, t := range targets {
			everywhere = everywhere && slices.Contains(t.GetMissing(), id)
		}
		if everywhere {
			out = append(out, id)
		}
	}
	return out
}

func backupPrune(ctx context.Context, r *runner, args []string) error {
	var targets []string
	if _, err := exactArgs(targetsFlag(newFlagSet(), &targets), args, 0, 0, ""); err != nil {
		return err
	}
	c, cctx, cancel, err := r.longCall(ctx, true)
	if err != nil {
		return err
	}
	defer cancel()
	resp, err := c.backups.PruneBackups(cctx, connect.NewRequest(&weftv1.PruneBackupsRequest{Targets: targets}))
	if err != nil {
		return &nodeError{op: "backup prune", err: err}
	}
	failed := failedTargets(resp.Msg.GetTargets())
	if r.g.json {
		if err := r.printJSON(resp.Msg); err != nil {
			return err
		}
	} else {
		for _, t := range resp.Msg.GetTargets() {
			if t.GetError() != "" {
				fmt.Fprintf(r.env.Stdout, "%s: failed: %s\n", t.GetTarget(), oneLine(t.GetError()))
				continue
			}
			fmt.Fprintf(r.env.Stdout, "%s: freed %s: %d packs deleted, %d repacked, %d kept\n", t.GetTarget(), units.Bytes(t.GetBytesFreed()),
				t.GetPacksDeleted(), t.GetPacksRepacked(), t.GetPacksKept())
		}
	}
	if failed > 0 {
		return targetFailed("backup prune", failed)
	}
	return nil
}

func backupKey(ctx context.Context, r *runner, args []string) error {
	if len(args) == 0 {
		return usagef("key: missing subcommand: want list, add or remove")
	}
	sub, args := args[0], args[1:]
	var targets []string
	fs := targetsFlag(newFlagSet(), &targets)
	switch sub {
	case "list":
		if _, err := exactArgs(fs, args, 0, 0, ""); err != nil {
			return err
		}
		c, cctx, cancel, err := r.longCall(ctx, true)
		if err != nil {
			return err
		}
		defer cancel()
		resp, err := c.backups.ListBackupKeys(cctx, connect.NewRequest(&weftv1.ListBackupKeysRequest{Targets: targets}))
		if err != nil {
			return &nodeError{op: "backup key list", err: err}
		}
		return r.printKeys(resp.Msg.GetTargets(), resp.Msg)
	case "add":
		pos, err := exactArgs(fs, args, 1, 1, "RECIPIENT")
		if err != nil {
			return err
		}
		if err := checkRecipient("RECIPIENT", pos[0]); err != nil {
			return err
		}
		c, cctx, cancel, err := r.longCall(ctx, true)
		if err != nil {
			return err
		}
		defer cancel()
		resp, err := c.backups.AddBackupKey(cctx, connect.NewRequest(&weftv1.AddBackupKeyRequest{Targets: targets, Recipient: pos[0]}))
		if err != nil {
			return &nodeError{op: "backup key add", err: err}
		}
		return r.printKeys(resp.Msg.GetTargets(), resp.Msg)
	case "remove":
		pos, err := exactArgs(fs, args, 1, 1, "ID")
		if err != nil {
			return err
		}
		if len(targets) != 1 {
			return usagef("key remove: give exactly one --target (key ids are per target)")
		}
		c, cctx, cancel, err := r.longCall(ctx, true)
		if err != nil {
			return err
		}
		defer cancel()
		resp, err := c.backups.RemoveBackupKey(cctx, connect.NewRequest(&weftv1.RemoveBackupKeyRequest{Target: targets[0], Id: pos[0]}))
		if err != nil {
			return &nodeError{op: "backup key remove", err: err}
		}
		if r.g.json {
			return r.printJSON(resp.Msg)
		}
		_, err = fmt.Fprintf(r.env.Stdout, "%s: key %s removed\n", targets[0], shortID(pos[0]))
		return err
	}
	return usagef("key: unknown subcommand %q: want list, add or remove", sub)
}

func (r *runner) printKeys(ts []*weftv1.TargetBackupKeys, msg proto.Message) error {
	if r.g.json {
		return r.printJSON(msg)
	}
	tw := tabwriter.NewWriter(r.env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tKEY\tKIND")
	failed := 0
	for _, t := range ts {
		if t.GetError() != "" {
			failed++
			fmt.Fprintf(tw, "%s\t-\terror: %s\n", t.GetTarget(), oneLine(t.GetError()))
		}
		for _, k := range t.GetKeys() {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", t.GetTarget(), k.GetId(), strings.Join(k.GetKinds(), ","))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		return targetFailed("backup key", failed)
	}
	return nil
}

// checkRecipient refuses an age identity (a secret key, "AGE-…") given
// where its public recipient ("age1…") goes, before anything is sent:
// the secret stays on this machine, and the message does not repeat it.
func checkRecipient(what, s string) error {
	if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(s)), "AGE-") {
		return usagef("%s: that is a secret key (AGE-…), not a recipient: give its public half (age1…, as age-keygen -y FILE prints it); nothing was sent", what)
	}
	return nil
}

// shortID is an id's first 12 hex digits, as tables show it; "-" for
// none.
func shortID(id string) string {
	if id == "" {
		return "-"
	}
	return id[:min(12, len(id))]
}
