package plugins

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/weftos/weft/plugins/driver"
)

// run is one launched run of a driver: its Conn, and how it ends.
type run struct {
	conn driver.Conn
	pid  int // 0 in-process
	// exited is closed when the subprocess has exited; nil in-process.
	exited <-chan struct{}
	// stop ends the subprocess (gracefully, then by force); a no-op
	// in-process.
	stop func()
}

// launch starts a run of d: its subprocess, or its in-process driver.
// maxMsg bounds one gRPC message either way across the subprocess's
// connection.
func launch(d *Decl, maxMsg int, log *slog.Logger) (*run, error) {
	if d.Factory != nil {
		return &run{conn: driver.Local(d.Factory()), stop: func() {}}, nil
	}
	return launchProcess(d, maxMsg, log)
}

// ErrChecksum is the error of a binary whose SHA-256 is not its
// declaration's.
var ErrChecksum = errors.New("checksum mismatch")

// Checksum returns the SHA-256 of the file at path, hex.
func Checksum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkBinary says, naming both sums, whether path's SHA-256 is want.
func checkBinary(name, path, want string) error {
	got, err := Checksum(path)
	if err != nil {
		return fmt.Errorf("driver %s: binary: %w", name, err)
	}
	if got != strings.ToLower(want) {
		return fmt.Errorf("driver %s: %w: %s has SHA-256 %s, its declaration says %s; refused", name, ErrChecksum, path, got, strings.ToLower(want))
	}
	return nil
}

func launchProcess(d *Decl, maxMsg int, log *slog.Logger) (*run, error) {
	sum, err := hex.DecodeString(d.SHA256)
	if err != nil {
		return nil, fmt.Errorf("driver %s: sha256: %w", d.Name, err)
	}
	cmd := exec.Command(d.Path)
	cmd.Env = []string{} // nothing of weftd's environment
	cmd.SysProcAttr = sysProcAttr()
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  driver.Handshake,
		Plugins:          driver.PluginSet(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		SecureConfig:     &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		StartTimeout:     d.StartTimeout,
		Logger:           hclogTo(log),
		SyncStdout:       lineWriter(log, slog.LevelInfo, "stdout"),
		SyncStderr:       lineWriter(log, slog.LevelWarn, "stderr"),
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(maxMsg), grpc.MaxCallSendMsgSize(maxMsg))},
	})
	// The kernel sends the driver SIGKILL when the thread that forked it
	// ends (Pdeathsig is per thread on Linux), so fork from a thread kept
	// for the driver's whole life: weftd's death, even by SIGKILL, takes
	// its drivers with it.
	started := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if _, err := client.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		waitExit(cmd.Process.Pid, client)
		close(exited)
	}()
	if err := <-started; err != nil {
		client.Kill()
		return nil, launchErr(d, err)
	}
	pid := cmd.Process.Pid
	if err := setLimits(pid, d.Limits); err != nil {
		client.Kill()
		return nil, fmt.Errorf("driver %s: limits: %w", d.Name, err)
	}
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, launchErr(d, err)
	}
	raw, err := rpc.Dispense(driver.PluginName)
	if err != nil {
		client.Kill()
		return nil, launchErr(d, err)
	}
	conn, ok := raw.(*driver.Client)
	if !ok {
		client.Kill()
		return nil, fmt.Errorf("driver %s: the plugin is a %T, not a driver", d.Name, raw)
	}
	var once sync.Once
	return &run{conn: conn, pid: pid, exited: exited, stop: func() { once.Do(client.Kill) }}, nil
}

// launchErr says what went wrong launching d in terms of weft.
func launchErr(d *Decl, err error) error {
	switch {
	case errors.Is(err, plugin.ErrChecksumsDoNotMatch):
		if e := checkBinary(d.Name, d.Path, d.SHA256); e != nil {
			return e
		}
		return fmt.Errorf("driver %s: %w: %s changed while it was checked; refused", d.Name, ErrChecksum, d.Path)
	case strings.Contains(strings.ToLower(err.Error()), "incompatible api version"):
		return fmt.Errorf("driver %s: %s speaks another version of the driver protocol (weftd speaks %d): %w", d.Name, d.Path, driver.ProtocolVersion, err)
	case strings.Contains(err.Error(), "Unrecognized remote plugin message"), strings.Contains(err.Error(), "exited before we could connect"), strings.Contains(err.Error(), "timeout while waiting for plugin to start"):
		return fmt.Errorf("driver %s: %s is not a weft driver (it did not answer the driver handshake, protocol %d): %w", d.Name, d.Path, driver.ProtocolVersion, err)
	}
	return fmt.Errorf("driver %s: launch %s: %w", d.Name, d.Path, err)
}

// hclogTo adapts go-plugin's logging to log: go-plugin's own lines, and
// the lines a driver writes to its stderr (JSON from driver.Serve's
// logger, or plain text).
func hclogTo(log *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "go-plugin",
		Level:      hclog.Info,
		Output:     &hclogWriter{log: log},
		JSONFormat: true,
	})
}

// hclogWriter turns hclog's JSON lines into slog records.
type hclogWriter struct{ log *slog.Logger }

func (w *hclogWriter) Write(p []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimSpace(string(p)), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			w.log.Info(line)
			continue
		}
		level := slog.LevelInfo
		switch rec["@level"] {
		case "trace", "debug":
			level = slog.LevelDebug
		case "warn":
			level = slog.LevelWarn
		case "error":
			level = slog.LevelError
		}
		msg, _ := rec["@message"].(string)
		var attrs []any
		for k, v := range rec {
			if !strings.HasPrefix(k, "@") {
				attrs = append(attrs, k, v)
			}
		}
		w.log.Log(context.Background(), level, msg, attrs...)
	}
	return len(p), nil
}

// lineWriter logs each line written to it, as the driver's stream.
func lineWriter(log *slog.Logger, level slog.Level, stream string) io.Writer {
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 4096), 64<<10)
		for sc.Scan() {
			log.Log(context.Background(), level, sc.Text(), "stream", stream)
		}
		_ = pr.CloseWithError(sc.Err())
	}()
	return pw
}
