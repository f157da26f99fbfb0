package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/weftos/weft/api/weftv1"
)

var cmdPs = &command{
	name:    "ps",
	usage:   "weft ps [PACKAGE]",
	summary: "list processes",
	details: `Ps lists the node's processes, or only those of PACKAGE
("package:publisher"): id, state, restarts, messages waiting in the
mailbox, requests awaiting responses, whether it is public, and why it last
stopped if it failed.

Examples:
  weft ps
  weft ps chat:alice.os
  weft --json ps | jq -r '.processes[] | select(.state == "PROCESS_STATE_RUNNING") | .id'
`,
	run: runPs,
}

func runPs(ctx context.Context, r *runner, args []string) error {
	pos, err := exactArgs(newFlagSet(), args, 0, 1, "")
	if err != nil {
		return err
	}
	req := &weftv1.ListProcessesRequest{}
	if len(pos) == 1 {
		req.Package = pos[0]
	}
	c, cctx, cancel, err := r.dialCall(ctx, 0)
	if err != nil {
		return err
	}
	defer cancel()
	resp, err := c.procs.ListProcesses(cctx, connect.NewRequest(req))
	if err != nil {
		return &nodeError{op: "ps", err: err}
	}
	if r.g.json {
		return r.printJSON(resp.Msg)
	}
	tw := tabwriter.NewWriter(r.env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tRESTARTS\tMAILBOX\tPENDING\tPUBLIC\tLAST ERROR")
	for _, p := range resp.Msg.GetProcesses() {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", p.GetId(), stateName(p.GetState()),
			p.GetRestarts(), p.GetMailboxDepth(), p.GetPending(), yesNo(p.GetPublic()), oneLine(p.GetLastError()))
	}
	return tw.Flush()
}

// stateName is a ProcessState as people read it: "running".
func stateName(s weftv1.ProcessState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "PROCESS_STATE_"))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// oneLine keeps a table cell on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

var cmdKill = &command{
	name:    "kill",
	usage:   "weft kill PROCESS",
	summary: "stop a process",
	details: `Kill stops a process ("name:package:publisher"); its on_exit does not
apply, and everything it owed an answer gets a killed error. An installed
process stays in the table, killed, until restarted or uninstalled.

Examples:
  weft kill chat:chat:alice.os
`,
	run: func(ctx context.Context, r *runner, args []string) error {
		return processCall(ctx, r, args, "kill", "killed",
			func(ctx context.Context, c *conn, id string) (*weftv1.ProcessInfo, proto.Message, error) {
				resp, err := c.procs.KillProcess(ctx, connect.NewRequest(&weftv1.KillProcessRequest{Process: id}))
				if err != nil {
					return nil, nil, err
				}
				return resp.Msg.GetProcess(), resp.Msg, nil
			})
	},
}

var cmdRestart = &command{
	name:    "restart",
	usage:   "weft restart PROCESS",
	summary: "stop a process if it runs and start it again",
	details: `Restart stops a process ("name:package:publisher") if it runs, and starts
it again.

Examples:
  weft restart chat:chat:alice.os
`,
	run: func(ctx context.Context, r *runner, args []string) error {
		return processCall(ctx, r, args, "restart", "restarted",
			func(ctx context.Context, c *conn, id string) (*weftv1.ProcessInfo, proto.Message, error) {
				resp, err := c.procs.RestartProcess(ctx, connect.NewRequest(&weftv1.RestartProcessRequest{Process: id}))
				if err != nil {
					return nil, nil, err
				}
				return resp.Msg.GetProcess(), resp.Msg, nil
			})
	},
}

// processCall runs kill or restart: call with the one PROCESS argument,
// then print what happened.
func processCall(ctx context.Context, r *runner, args []string, verb, done string,
	call func(context.Context, *conn, string) (*weftv1.ProcessInfo, proto.Message, error)) error {
	pos, err := exactArgs(newFlagSet(), args, 1, 1, "PROCESS (name:package:publisher)")
	if err != nil {
		return err
	}
	c, cctx, cancel, err := r.dialCall(ctx, 0)
	if err != nil {
		return err
	}
	defer cancel()
	info, msg, err := call(cctx, c, pos[0])
	if err != nil {
		return &nodeError{op: verb + " " + pos[0], err: err}
	}
	if r.g.json {
		return r.printJSON(msg)
	}
	_, err = fmt.Fprintf(r.env.Stdout, "%s %s (%s)\n", done, pos[0], stateName(info.GetState()))
	return err
}
