package cli

import (
	"context"
	"fmt"
	"text/tabwriter"

	"connectrpc.com/connect"

	"github.com/weftos/weft/api/weftv1"
)

var cmdCaps = &command{
	name:    "caps",
	usage:   "weft caps list PROCESS | grant PROCESS ISSUER [PARAMS] | revoke ISSUER [PARAMS]",
	summary: "list, grant and revoke capabilities",
	details: `Caps lists the capabilities a process holds, grants one, or revokes one
from every holder, as the node's owner.

  weft caps list PROCESS
      the capabilities PROCESS ("name:package:publisher") holds: issuer
      and params
  weft caps grant PROCESS ISSUER [PARAMS]
      give PROCESS the capability ISSUER ("node@name:package:publisher")
      issues with PARAMS
  weft caps revoke ISSUER [PARAMS]
      take the capability from every process that holds it

PARAMS is JSON, default "messaging" (the right to message ISSUER). In a
shell, quote it: '"messaging"', '{"kind":"read"}'.

Examples:
  weft caps list chat:chat:alice.os
  weft caps grant chat:chat:alice.os our@echo:echo:examples
  weft caps grant chat:chat:alice.os our@vfs:sys:weft '{"drive":"/notes:examples/notes","kind":"read"}'
  weft caps revoke our@echo:echo:examples '"messaging"'
`,
	run: runCaps,
}

func runCaps(ctx context.Context, r *runner, args []string) error {
	pos, err := exactArgs(newFlagSet(), args, 1, 4, "subcommand: list, grant or revoke")
	if err != nil {
		return err
	}
	sub, pos := pos[0], pos[1:]
	var (
		min, max int
		what     string
	)
	switch sub {
	case "list":
		min, max, what = 1, 1, "PROCESS"
	case "grant":
		min, max, what = 2, 3, "PROCESS and ISSUER"
	case "revoke":
		min, max, what = 1, 2, "ISSUER"
	default:
		return usagef("unknown subcommand %q: want list, grant or revoke", sub)
	}
	switch {
	case len(pos) < min:
		return usagef("caps %s: missing %s", sub, what)
	case len(pos) > max:
		return usagef("caps %s: unexpected argument %q", sub, pos[max])
	}
	var params string
	switch sub {
	case "grant":
		params, err = paramsArg(at(pos, 2), "grant")
	case "revoke":
		params, err = paramsArg(at(pos, 1), "revoke")
	}
	if err != nil {
		return err
	}
	c, cctx, cancel, err := r.dialCall(ctx, 0)
	if err != nil {
		return err
	}
	defer cancel()
	out := r.env.Stdout

	switch sub {
	case "list":
		resp, err := c.caps.ListCapabilities(cctx, connect.NewRequest(&weftv1.ListCapabilitiesRequest{Process: pos[0]}))
		if err != nil {
			return &nodeError{op: "caps list " + pos[0], err: err}
		}
		if r.g.json {
			return r.printJSON(resp.Msg)
		}
		node := r.nodeID(ctx, c)
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ISSUER\tPARAMS")
		for _, cp := range resp.Msg.GetCapabilities() {
			fmt.Fprintf(tw, "%s\t%s\n", ourAddr(cp.GetIssuer(), node), cp.GetParams())
		}
		return tw.Flush()

	case "grant":
		resp, err := c.caps.GrantCapability(cctx, connect.NewRequest(&weftv1.GrantCapabilityRequest{
			Process:    pos[0],
			Capability: &weftv1.Capability{Issuer: pos[1], Params: params},
		}))
		if err != nil {
			return &nodeError{op: "caps grant " + pos[0], err: err}
		}
		if r.g.json {
			return r.printJSON(resp.Msg)
		}
		cp := resp.Msg.GetCapability()
		_, err = fmt.Fprintf(out, "granted %s %s to %s\n", cp.GetIssuer(), cp.GetParams(), pos[0])
		return err

	default: // revoke
		resp, err := c.caps.RevokeCapability(cctx, connect.NewRequest(&weftv1.RevokeCapabilityRequest{
			Capability: &weftv1.Capability{Issuer: pos[0], Params: params},
		}))
		if err != nil {
			return &nodeError{op: "caps revoke " + pos[0], err: err}
		}
		if r.g.json {
			return r.printJSON(resp.Msg)
		}
		_, err = fmt.Fprintf(out, "revoked %s %s\n", pos[0], params)
		return err
	}
}

// at returns pos[i], or "" past its end.
func at(pos []string, i int) string {
	if i < len(pos) {
		return pos[i]
	}
	return ""
}
