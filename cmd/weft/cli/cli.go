// Package cli is the weft command: it parses a command line and drives a
// node's control API.
//
// Main runs one command line and returns its exit code; cmd/weft is a thin
// wrapper around it, so the whole command runs in-process in tests.
package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/weftos/weft/api/weftv1"
)

// Version is the CLI's version, set with
// -ldflags "-X github.com/weftos/weft/cmd/weft/cli.Version=1.2.3".
var Version = "dev"

// The exit codes of Main, as documented in `weft help`.
const (
	ExitOK        = 0 // success
	ExitUsage     = 1 // bad command line or local input; nothing was asked of the node, or the user declined
	ExitNode      = 2 // the node refused or failed the call, or could not be reached
	ExitSendError = 3 // weft send: the request failed (SendResponse.error is set)
)

// DefaultSocket is where the installed weftd listens.
const DefaultSocket = "/run/weft/weftd.sock"

// DefaultTimeout bounds each call to the node unless --timeout says
// otherwise.
const DefaultTimeout = 30 * time.Second

// Env is what a command line runs against: its standard streams and
// environment.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv looks up an environment variable (WEFT_SOCKET, WEFT_TOKEN);
	// nil means an empty environment.
	Getenv func(string) string
	// IsTerminal reports whether Stdin is an interactive terminal, where
	// weft install may ask for approval; nil means it is not.
	IsTerminal func() bool
	// StderrIsTerminal reports whether Stderr is a terminal, where weft
	// backup run draws a progress bar; nil means it is not.
	StderrIsTerminal func() bool
}

func (e Env) getenv(k string) string {
	if e.Getenv == nil {
		return ""
	}
	return e.Getenv(k)
}

func (e Env) isTerminal() bool { return e.IsTerminal != nil && e.IsTerminal() }

func (e Env) stderrIsTerminal() bool { return e.StderrIsTerminal != nil && e.StderrIsTerminal() }

// globals are the flags that come before the command.
type globals struct {
	socket     string
	socketFrom string // how socket was chosen: "--socket", "WEFT_SOCKET" or "the default"
	json       bool
	timeout    time.Duration
	addr       string
	tokenFile  string
	ca         string
}

// flagSet returns the global flags, set into g.
func (g *globals) flagSet() *flagSet {
	fs := newFlagSet()
	fs.stringVar(&g.socket, "socket")
	fs.boolVar(&g.json, "json")
	fs.durationVar(&g.timeout, "timeout")
	fs.stringVar(&g.addr, "addr")
	fs.stringVar(&g.tokenFile, "token-file")
	fs.stringVar(&g.ca, "ca")
	return fs
}

// isGlobalFlag reports whether name is one of the global flags' names.
func isGlobalFlag(name string) bool {
	_, ok := new(globals).flagSet().defs[name]
	return ok && name != "help" && name != "h"
}

// A runner runs one command line.
type runner struct {
	env  Env
	g    globals
	conn *conn // made on first use
}

// Main runs the weft command line args (without the program name) and
// returns its exit code (ExitOK, ExitUsage, ExitNode or ExitSendError).
// Cancelling ctx stops a running call; weft tap then exits with ExitOK.
func Main(ctx context.Context, args []string, env Env) int {
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	r := &runner{env: env, g: globals{timeout: DefaultTimeout}}
	defer r.close()

	fs := r.g.flagSet()
	rest, err := fs.parse(args, false)
	if err != nil {
		return r.fail(nil, err)
	}
	if fs.help {
		fmt.Fprint(env.Stdout, mainHelp())
		return ExitOK
	}
	if len(rest) == 0 {
		fmt.Fprint(env.Stderr, mainUsage())
		return ExitUsage
	}
	switch {
	case r.g.socket != "":
		r.g.socketFrom = "--socket"
	case env.getenv("WEFT_SOCKET") != "":
		r.g.socket, r.g.socketFrom = env.getenv("WEFT_SOCKET"), "WEFT_SOCKET"
	default:
		r.g.socket, r.g.socketFrom = DefaultSocket, "the default"
	}

	cmd := lookup(rest[0])
	if cmd == nil {
		fmt.Fprintf(env.Stderr, "weft: unknown command %q\nRun 'weft help' for the list of commands.\n", rest[0])
		return ExitUsage
	}
	return r.fail(cmd, cmd.run(ctx, r, rest[1:]))
}

// fail reports err, if any, on stderr and returns the exit code it means.
func (r *runner) fail(cmd *command, err error) int {
	if err == nil {
		return ExitOK
	}
	stderr := r.env.Stderr
	if errors.Is(err, errHelp) {
		fmt.Fprint(r.env.Stdout, cmd.help())
		return ExitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		if cmd == nil {
			fmt.Fprintf(stderr, "weft: %s\n%s", ue.msg, mainUsage())
			return ExitUsage
		}
		fmt.Fprintf(stderr, "weft %s: %s\n", cmd.name, ue.msg)
		if isGlobalFlag(ue.flag) {
			fmt.Fprintf(stderr, "--%s is a global flag: put it before the command, as in weft --%s %s ...\n", ue.flag, ue.flag, cmd.name)
		}
		fmt.Fprintf(stderr, "Usage: %s\nRun 'weft help %s' for more.\n", cmd.usage, cmd.name)
		return ExitUsage
	}
	var ne *nodeError
	if errors.As(err, &ne) {
		fmt.Fprintf(stderr, "weft: %s\n", ne.Error())
		if h := r.hint(ne); h != "" {
			fmt.Fprintf(stderr, "weft: %s\n", h)
		}
		return ExitNode
	}
	var se *sendError
	if errors.As(err, &se) {
		fmt.Fprintf(stderr, "weft: %s\n", se.Error())
		return ExitSendError
	}
	fmt.Fprintf(stderr, "weft: %v\n", err)
	return ExitUsage
}

// hint says what may help after the node call ne failed.
func (r *runner) hint(ne *nodeError) string {
	var unknownCA x509.UnknownAuthorityError
	var badCert *tls.CertificateVerificationError
	if errors.As(ne.err, &unknownCA) || errors.As(ne.err, &badCert) {
		return "the node's certificate is not trusted: pass --ca FILE with the certificate weftd serves"
	}
	switch connect.CodeOf(ne.err) {
	case connect.CodeUnavailable:
		if answered(ne.err) {
			return "" // the node answered: its message names what is unavailable (a backup target)
		}
		if r.g.addr != "" {
			return fmt.Sprintf("is weftd running and listening at %s?", r.g.addr)
		}
		return fmt.Sprintf("is weftd running? socket: %s (%s)", r.g.socket, r.socketFromText())
	case connect.CodeDeadlineExceeded:
		return fmt.Sprintf("no answer within --timeout %s; pass a longer --timeout before the command", r.g.timeout)
	case connect.CodeUnauthenticated:
		return "check the token (WEFT_TOKEN or --token-file)"
	}
	return ""
}

// answered reports whether err is an error the node sent, rather than one
// of reaching it: only an answer carries the response's headers.
func answered(err error) bool {
	var ce *connect.Error
	return errors.As(err, &ce) && len(ce.Meta()) > 0
}

func (r *runner) socketFromText() string {
	if r.g.socketFrom == "the default" {
		return "the default; set WEFT_SOCKET or pass --socket to choose another"
	}
	return "from " + r.g.socketFrom
}

// errHelp is returned by a command asked for --help.
var errHelp = errors.New("help requested")

// A usageError is a bad command line: exit code ExitUsage, with the
// command's usage line.
type usageError struct {
	msg  string
	flag string // the unknown flag, without dashes, if that is the error
}

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{msg: fmt.Sprintf(format, a...)} }

// A nodeError is a call to the node that failed, or a node that cannot be
// reached: exit code ExitNode.
type nodeError struct {
	op  string // what failed, e.g. "install ./chat"
	err error
}

func (e *nodeError) Error() string { return e.op + ": " + e.err.Error() }
func (e *nodeError) Unwrap() error { return e.err }

// A sendError is a request that weft send made and that failed: exit code
// ExitSendError.
type sendError struct {
	target string
	e      *weftv1.SendError
}

func (e *sendError) Error() string {
	target := e.e.GetTarget()
	if target == "" {
		target = e.target
	}
	msg := fmt.Sprintf("send to %s: %s", target, kindName(e.e.GetKind()))
	if d := e.e.GetDetail(); d != "" {
		msg += ": " + d
	}
	return msg
}

// kindName is a SendErrorKind as people and scripts write it:
// SEND_ERROR_KIND_NO_SUCH_PROCESS is "no_such_process".
func kindName(k weftv1.SendErrorKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "SEND_ERROR_KIND_"))
}

// printJSON writes m as indented protojson, every field included.
func (r *runner) printJSON(m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	_, err = fmt.Fprintf(r.env.Stdout, "%s\n", b)
	return err
}

// dialCall dials the node (dial) and bounds one unary call on it
// (callContext); the caller defers cancel.
func (r *runner) dialCall(ctx context.Context, extra time.Duration) (*conn, context.Context, context.CancelFunc, error) {
	c, err := r.dial()
	if err != nil {
		return nil, nil, nil, err
	}
	cctx, cancel := r.callContext(ctx, extra)
	return c, cctx, cancel, nil
}

// callContext bounds one unary call by --timeout (zero: no bound), plus
// extra for a call that waits on purpose.
func (r *runner) callContext(ctx context.Context, extra time.Duration) (context.Context, context.CancelFunc) {
	if r.g.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, r.g.timeout+extra)
}
