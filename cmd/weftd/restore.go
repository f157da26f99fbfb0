package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/weftos/weft/backup"
	"github.com/weftos/weft/daemon"
	"github.com/weftos/weft/internal/units"
)

const restoreUsage = `Usage: weftd restore --key FILE --data-dir DIR (--target NAME | --endpoint URL --bucket B) [flags]

weftd restore brings a node back from a backup when its machine is lost:
it needs only the bucket and the key, not the old node nor a running
weftd. It restores into an empty data dir (made 0700 if missing), which it
locks meanwhile; it stages everything inside it, checks every blob, the
node key against the snapshot's node id and the database, and only then
moves it into place. A failed restore leaves the directory as it found it.
A weftd started on the data dir then is the same node: same node id,
packages, processes, state, key-value data, drive files and grants.

Run it as the user weftd runs as (sudo -u weft weftd restore …), or as
root: then what it restores takes the data dir's owner.

The target, one of:
  --target NAME          a [[backup.targets]] of the config file (--config)
  --endpoint URL         or a bucket named here: its endpoint (https://…;
  --bucket BUCKET        http:// only when said), bucket, prefix and region,
  --prefix PREFIX        with credentials from --credentials-file or
  --region REGION        AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY

Flags:
  --config FILE          the config file naming --target (default %s)
  --credentials-file F   TOML with access_key_id and secret_access_key
  --key FILE             the backup key: an age identity or a passphrase
                         file (default: WEFT_BACKUP_KEY from the environment)
  --snapshot ID          a snapshot id (8 or more hex digits) or latest
                         (default latest)
  --data-dir DIR         where the node goes; must be empty or missing
  --config-out FILE      also write the config file the snapshot holds here

Exit status: 0 when the node is restored, 1 if the restore failed, 2 for
bad usage.
`

const defaultConfigPath = "/etc/weft/weftd.toml"

func doRestore(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("weftd restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintf(fs.Output(), restoreUsage, defaultConfigPath) }
	configFile := fs.String("config", defaultConfigPath, "")
	targetName := fs.String("target", "", "")
	var tc backup.TargetConfig
	fs.StringVar(&tc.Endpoint, "endpoint", "", "")
	fs.StringVar(&tc.Bucket, "bucket", "", "")
	fs.StringVar(&tc.Prefix, "prefix", "", "")
	fs.StringVar(&tc.Region, "region", "", "")
	fs.StringVar(&tc.CredentialsFile, "credentials-file", "", "")
	keyFile := fs.String("key", "", "")
	snapshot := fs.String("snapshot", "latest", "")
	dataDir := fs.String("data-dir", "", "")
	configOut := fs.String("config-out", "", "")
	help := fs.Bool("help", false, "")
	fs.BoolVar(help, "h", false, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *help {
		fmt.Fprintf(stdout, restoreUsage, defaultConfigPath)
		return 0
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "weftd restore: "+format+"\n", a...)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q", fs.Arg(0))
	case *dataDir == "":
		return usageErr("--data-dir is required")
	case *targetName != "" && (tc.Endpoint != "" || tc.Bucket != ""):
		return usageErr("give --target or --endpoint and --bucket, not both")
	case *targetName == "" && (tc.Endpoint == "" || tc.Bucket == ""):
		return usageErr("give --target NAME (from the config file) or --endpoint and --bucket")
	}
	if *targetName != "" {
		cfg := daemon.DefaultConfig()
		if err := daemon.LoadConfig(&cfg, *configFile); err != nil {
			return usageErr("%v", err)
		}
		found := false
		for _, t := range cfg.Backup.Targets {
			if t.Name == *targetName {
				tc, found = t, true
			}
		}
		if !found {
			return usageErr("%s declares no backup target %q", *configFile, *targetName)
		}
	} else {
		tc.Name = "restore"
	}
	var key *backup.Key
	var err error
	if *keyFile != "" {
		key, err = backup.LoadKey(*keyFile)
	} else if v := os.Getenv(daemon.BackupKeyEnv); v != "" {
		key, err = backup.ParseKey([]byte(v))
	} else {
		return usageErr("--key FILE is required (or %s in the environment)", daemon.BackupKeyEnv)
	}
	if err != nil {
		fmt.Fprintln(stderr, "weftd restore:", err)
		return 1
	}
	target, err := backup.OpenTarget(tc, os.Getenv, nil)
	if err != nil {
		fmt.Fprintln(stderr, "weftd restore:", err)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var last time.Time
	res, err := daemon.Restore(ctx, daemon.RestoreOptions{
		Target: target, Key: key, Snapshot: *snapshot, DataDir: *dataDir, ConfigOut: *configOut,
		Progress: func(done, total uint64) {
			if time.Since(last) < time.Second && done < total {
				return
			}
			last = time.Now()
			fmt.Fprintf(stderr, "weftd restore: %s of %s\n", units.Bytes(done), units.Bytes(total))
		},
	})
	if err != nil {
		fmt.Fprintln(stderr, "weftd restore:", err)
		var inUse *daemon.InUseError
		if errors.As(err, &inUse) {
			fmt.Fprintln(stderr, "weftd restore: stop that weftd first")
		}
		return 1
	}
	m := res.Snapshot.Manifest
	fmt.Fprintf(stdout, "restored snapshot %s (%s, weft %s, %d files, %s) of node %s into %s\n",
		res.Snapshot.ID, m.Time.Format(time.RFC3339), m.WeftVersion, m.Files, units.Bytes(m.Bytes), res.NodeID, *dataDir)
	return 0
}

const backupKeyUsage = `Usage: weftd backup-key FILE

weftd backup-key makes a new backup key: an age X25519 identity, written
to FILE with mode 0640 (it never replaces a file). Point [backup] key_file
at it; as root, then chown root:weft FILE. Keep a copy away from the
machine: restoring a lost node needs it (or another key added with weft
backup key add). It prints the key's public recipient.
`

func doBackupKey(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] == "" || args[0][0] == '-' {
		if len(args) == 1 && (args[0] == "--help" || args[0] == "-h") {
			fmt.Fprint(stdout, backupKeyUsage)
			return 0
		}
		fmt.Fprint(stderr, backupKeyUsage)
		return 2
	}
	data, err := backup.GenerateKey()
	if err == nil {
		err = writeNew(args[0], data, 0o640)
	}
	if err != nil {
		fmt.Fprintln(stderr, "weftd backup-key:", err)
		return 1
	}
	k, err := backup.ParseKey(data)
	if err != nil {
		fmt.Fprintln(stderr, "weftd backup-key:", err)
		return 1
	}
	fmt.Fprintf(stdout, "backup key written to %s; its recipient is %s\n", args[0], k)
	return 0
}

// writeNew writes a new file, never replacing one, and syncs it.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}
