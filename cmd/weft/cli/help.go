package cli

import (
	"context"
	"fmt"
	"strings"
)

// A command is one of weft's commands.
type command struct {
	name    string
	usage   string // the usage line, "weft send ADDRESS BODY [flags]"
	summary string // one line for `weft help`
	details string // description, flags and examples for `weft help CMD`
	run     func(ctx context.Context, r *runner, args []string) error
}

func (c *command) help() string {
	return fmt.Sprintf("Usage: %s\n\n%s", c.usage, c.details)
}

// commands lists weft's commands in the order `weft help` shows them. It
// is filled in by init, as run functions refer back to it through help.
var commands []*command

func init() {
	commands = []*command{
		cmdStatus, cmdVersion,
		cmdInstall, cmdUninstall, cmdPackages,
		cmdPs, cmdKill, cmdRestart,
		cmdDrivers,
		cmdBackup,
		cmdSend, cmdTap,
		cmdPeers,
		cmdCaps,
		cmdStore, cmdKv,
		cmdHelp,
	}
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

var cmdHelp = &command{
	name:    "help",
	usage:   "weft help [COMMAND]",
	summary: "show help for weft or for one command",
	details: `Help shows the commands, global flags and exit codes, or, given a command,
that command's usage, flags and examples. "weft COMMAND --help" does the same.

Examples:
  weft help
  weft help send
`,
	run: runHelp,
}

func runHelp(_ context.Context, r *runner, args []string) error {
	fs := newFlagSet()
	pos, err := fs.parse(args, true)
	if err != nil {
		return err
	}
	if fs.help {
		return errHelp
	}
	switch len(pos) {
	case 0:
		fmt.Fprint(r.env.Stdout, mainHelp())
		return nil
	case 1:
		c := lookup(pos[0])
		if c == nil {
			return usagef("unknown command %q", pos[0])
		}
		fmt.Fprint(r.env.Stdout, c.help())
		return nil
	}
	return usagef("want at most one command, got %d arguments", len(pos))
}

func mainUsage() string {
	return "Usage: weft [global flags] COMMAND [arguments and flags]\nRun 'weft help' for the list of commands.\n"
}

func mainHelp() string {
	var b strings.Builder
	b.WriteString(`weft drives a weft node through its control API.

Usage: weft [global flags] COMMAND [arguments and flags]

Global flags come before the command; a command's own flags may come
anywhere after it, before or after its arguments ("--" ends the flags).

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(&b, `
Global flags:
  --socket PATH       the node's Unix socket (default: $WEFT_SOCKET, else
                      %s)
  --json              print JSON (protojson) for scripts instead of tables
  --timeout DUR       bound on each call to the node (default %s; 0: none);
                      tap is not bounded, and send adds its --await to it
  --addr URL          reach the node over TCP at https://HOST:PORT instead
                      of the socket; the token comes from $WEFT_TOKEN or
                      --token-file
  --token-file FILE   read the bearer token for --addr from FILE
  --ca FILE           trust the PEM certificate(s) in FILE for --addr
  -h, --help          show this help

Exit codes:
  0  success
  1  usage: bad command, flag or argument, unreadable input, or an install
     not approved
  2  the node refused or failed the call, or could not be reached; weft kv
     get: the key is not there
  3  weft send: the request failed (timeout, offline, no_such_process, ...)

Examples:
  weft status
  weft install build/examples/echo --approve-all
  weft ps echo:examples
  weft drivers
  weft send our@echo:echo:examples hello
  weft --json ps | jq '.processes[].id'
  weft kv get chat:alice.os settings theme
  WEFT_SOCKET=./.weft/weftd.sock weft tap

Run 'weft help COMMAND' for a command's flags and examples.
`, DefaultSocket, DefaultTimeout)
	return b.String()
}
