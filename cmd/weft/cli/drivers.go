package cli

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"

	"connectrpc.com/connect"

	"github.com/weftos/weft/api/weftv1"
)

var cmdDrivers = &command{
	name:    "drivers",
	usage:   "weft drivers [restart NAME]",
	summary: "list the native drivers, or restart one",
	details: `Drivers lists the node's native drivers, those weftd.toml declares. Each
runs as the process NAME:drivers:weft, so weft ps lists it too; this adds
what only a driver has.

  weft drivers
      every declared driver, refused ones included: NAME, STATE ("refused"
      when weftd would not start it), PID of its subprocess ("-" when none
      runs, and for a driver in weftd's own process), RESTARTS by its
      on_exit, CALLS (requests handed to it), and LAST ERROR/REFUSED: why
      its process last failed, or why weftd refused to start it (a binary
      whose SHA-256 is not the declared one, naming both sums; a missing
      binary)
  weft drivers restart NAME
      stop driver NAME ("timer", not "timer:drivers:weft") if it runs and
      start it again; a refused driver's binary is checked again, and the
      call fails if it is refused again

With --json the node's ListDriversResponse or RestartDriverResponse is
printed, with every field: the binary's path and declared SHA-256,
whether it runs in weftd, failures and refused operations.

Examples:
  weft drivers
  weft drivers restart timer
  weft --json drivers | jq -r '.drivers[] | select(.refused != "") | .name'
`,
	run: runDrivers,
}

func runDrivers(ctx context.Context, r *runner, args []string) error {
	pos, err := exactArgs(newFlagSet(), args, 0, 2, "")
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return driversList(ctx, r)
	case pos[0] != "restart":
		return usagef("unknown subcommand %q: want restart, or nothing to list", pos[0])
	case len(pos) == 1:
		return usagef("drivers restart: missing NAME")
	}
	return driversRestart(ctx, r, pos[1])
}

func driversList(ctx context.Context, r *runner) error {
	c, cctx, cancel, err := r.dialCall(ctx, 0)
	if err != nil {
		return err
	}
	defer cancel()
	resp, err := c.drivers.ListDrivers(cctx, connect.NewRequest(&weftv1.ListDriversRequest{}))
	if err != nil {
		return &nodeError{op: "drivers", err: err}
	}
	if r.g.json {
		return r.printJSON(resp.Msg)
	}
	tw := tabwriter.NewWriter(r.env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tPID\tRESTARTS\tCALLS\tLAST ERROR/REFUSED")
	for _, d := range resp.Msg.GetDrivers() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", d.GetName(), driverState(d), pidText(d.GetPid()),
			d.GetRestarts(), d.GetCalls(), oneLine(driverError(d)))
	}
	return tw.Flush()
}

func driversRestart(ctx context.Context, r *runner, name string) error {
	c, cctx, cancel, err := r.dialCall(ctx, 0)
	if err != nil {
		return err
	}
	defer cancel()
	resp, err := c.drivers.RestartDriver(cctx, connect.NewRequest(&weftv1.RestartDriverRequest{Name: name}))
	if err != nil {
		return &nodeError{op: "drivers restart " + name, err: err}
	}
	if r.g.json {
		return r.printJSON(resp.Msg)
	}
	_, err = fmt.Fprintf(r.env.Stdout, "restarted %s (%s)\n", name, driverState(resp.Msg.GetDriver()))
	return err
}

// driverState is a driver's state as people read it: its process's, or
// "refused".
func driverState(d *weftv1.DriverInfo) string {
	if d.GetRefused() != "" {
		return "refused"
	}
	return stateName(d.GetState())
}

// driverError is why a driver was refused, else why its process last
// failed.
func driverError(d *weftv1.DriverInfo) string {
	if d.GetRefused() != "" {
		return d.GetRefused()
	}
	return d.GetLastError()
}

// pidText is a pid for a table: "-" for none.
func pidText(pid uint32) string {
	if pid == 0 {
		return "-"
	}
	return strconv.FormatUint(uint64(pid), 10)
}
