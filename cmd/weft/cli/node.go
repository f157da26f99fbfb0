package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/internal/units"
)

var cmdStatus = &command{
	name:    "status",
	usage:   "weft status",
	summary: "show the node's id, version, uptime and counts",
	details: `Status asks the node for its id, weftd's version, its uptime, the
addresses other nodes reach it at (full multiaddrs ending in /p2p/NODE_ID,
relayed ones included, for weft peers connect on another node; "network
off" when weftd runs with --p2p-listen none), how many processes and
packages it has, and how many messages it has routed, failed sends by
kind and restarts since it started; and, for each backup target,
its last successful run, how long ago, its snapshot and size, and the
last run's error (weft backup status has more).

Examples:
  weft status
  weft --json status | jq -r .nodeId
  weft --json status | jq -r '.listenAddrs[]'
`,
	run: runStatus,
}

func runStatus(ctx context.Context, r *runner, args []string) error {
	if _, err := noArgs(args); err != nil {
		return err
	}
	c, cctx, cancel, err := r.dialCall(ctx, 0)
	if err != nil {
		return err
	}
	defer cancel()
	resp, err := c.node.GetInfo(cctx, connect.NewRequest(&weftv1.GetInfoRequest{}))
	if err != nil {
		return &nodeError{op: "status", err: err}
	}
	info := resp.Msg
	if r.g.json {
		return r.printJSON(info)
	}
	tw := tabwriter.NewWriter(r.env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "node\t%s\n", info.GetNodeId())
	fmt.Fprintf(tw, "version\t%s\n", info.GetVersion())
	up := info.GetUptime().AsDuration().Round(time.Second)
	if info.GetStarted() != nil {
		fmt.Fprintf(tw, "uptime\t%s (since %s)\n", up, info.GetStarted().AsTime().Local().Format(time.RFC3339))
	} else {
		fmt.Fprintf(tw, "uptime\t%s\n", up)
	}
	switch {
	case !info.GetNetwork():
		fmt.Fprintf(tw, "network\toff\n")
	case len(info.GetListenAddrs()) == 0:
		fmt.Fprintf(tw, "network\ton, listening nowhere (dials out only)\n")
	default:
		for i, a := range info.GetListenAddrs() {
			key := ""
			if i == 0 {
				key = "listen"
			}
			fmt.Fprintf(tw, "%s\t%s\n", key, a)
		}
	}
	fmt.Fprintf(tw, "processes\t%d (%d running)\n", info.GetProcesses(), info.GetProcessesRunning())
	fmt.Fprintf(tw, "packages\t%d\n", info.GetPackages())
	fmt.Fprintf(tw, "messages\t%d routed\n", info.GetMessagesRouted())
	fmt.Fprintf(tw, "send errors\t%s\n", countsText(info.GetSendErrors()))
	fmt.Fprintf(tw, "restarts\t%d\n", info.GetRestarts())
	for _, b := range info.GetBackups() {
		fmt.Fprintf(tw, "backup %s\t%s\n", b.GetTarget(), backupLine(b, time.Now()))
	}
	return tw.Flush()
}

// backupLine says how a backup target stands: its last success, its age
// and size, and the last run's error.
func backupLine(b *weftv1.BackupTargetStatus, now time.Time) string {
	line := "no successful run since weftd started"
	if ls := b.GetLastSuccess(); ls != nil {
		line = fmt.Sprintf("last success %s ago (%s), snapshot %s, %s", now.Sub(ls.AsTime()).Round(time.Second),
			ls.AsTime().Local().Format(time.RFC3339), shortID(b.GetLastSnapshot()), units.Bytes(b.GetLastBytes()))
	}
	if e := b.GetLastError(); e != "" {
		line += "; last run failed: " + oneLine(e)
	}
	return line
}

// countsText writes counts by kind as "kind=n kind=n", sorted, or "none".
func countsText(m map[string]uint64) string {
	var parts []string
	for k, n := range m {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

var cmdVersion = &command{
	name:    "version",
	usage:   "weft version",
	summary: "print the weft command's version",
	details: `Version prints the version of this weft command (not the node's: see
weft status).

Examples:
  weft version
  weft --json version
`,
	run: func(_ context.Context, r *runner, args []string) error {
		if _, err := noArgs(args); err != nil {
			return err
		}
		if r.g.json {
			b, err := json.Marshal(struct {
				Version string `json:"version"`
			}{Version})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(r.env.Stdout, "%s\n", b)
			return err
		}
		_, err := fmt.Fprintln(r.env.Stdout, "weft", Version)
		return err
	},
}

// noArgs parses the flags of a command that takes none and no arguments.
func noArgs(args []string) ([]string, error) {
	return exactArgs(newFlagSet(), args, 0, 0, "")
}

// exactArgs parses args with fs and checks that from min to max
// positional arguments remain; what names them for a message.
func exactArgs(fs *flagSet, args []string, min, max int, what string) ([]string, error) {
	pos, err := fs.parse(args, true)
	if err != nil {
		return nil, err
	}
	if fs.help {
		return nil, errHelp
	}
	switch {
	case len(pos) < min:
		return nil, usagef("missing %s", what)
	case len(pos) > max:
		return nil, usagef("unexpected argument %q", pos[max])
	}
	return pos, nil
}
