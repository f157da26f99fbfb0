package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/packages/pkgzip"
)

var cmdInstall = &command{
	name:    "install",
	usage:   "weft install DIR|ZIP [--approve-all] [--approve 'PROCESS ISSUER [PARAMS]']...",
	summary: "install a package from a directory or a zip archive",
	details: `Install uploads a package and starts its processes. A directory is zipped
first (metadata.json and manifest.json at its root, beside the Wasm
modules); a file is sent as it is, and must be such a zip archive.

The package's processes get only the capabilities approved. Without
--approve-all or --approve, weft asks the node which capabilities the
package requests: if none, it installs; if some and stdin is a terminal,
it lists them and asks "Approve all of these? [y/N]"; otherwise it fails
(exit 1), listing them. Installing the version already installed changes
nothing and says so.

Flags:
  --approve-all           approve every capability the package requests
  --approve SPEC          approve one requested capability; repeatable.
                          SPEC is 'PROCESS ISSUER [PARAMS]', separated by
                          spaces, PARAMS being the rest of SPEC as JSON
                          (default "messaging")

Examples:
  weft install build/examples/echo
  weft install chain.zip --approve-all
  weft install build/examples/chain --approve 'chain:chain:examples our@echo:echo:examples'
  weft install ./files --approve 'files:files:alice.os our@vfs:sys:weft {"drive":"/notes:examples/notes","kind":"read"}'
`,
	run: runInstall,
}

func runInstall(ctx context.Context, r *runner, args []string) error {
	fs := newFlagSet()
	var approveAll bool
	var approveSpecs []string
	fs.boolVar(&approveAll, "approve-all")
	fs.stringsVar(&approveSpecs, "approve")
	pos, err := exactArgs(fs, args, 1, 1, "package directory or zip archive")
	if err != nil {
		return err
	}
	if approveAll && len(approveSpecs) > 0 {
		return usagef("--approve-all and --approve exclude each other")
	}
	var approve []*weftv1.RequestedCapability
	for _, s := range approveSpecs {
		rc, err := parseApprove(s)
		if err != nil {
			return err
		}
		approve = append(approve, rc)
	}
	src := pos[0]
	archive, err := readPackage(src)
	if err != nil {
		return err
	}
	c, err := r.dial()
	if err != nil {
		return err
	}
	op := "install " + src

	req := &weftv1.InstallPackageRequest{
		Archive:    &weftv1.PackageArchive{Zip: archive},
		ApproveAll: approveAll,
		Approve:    approve,
	}
	if !approveAll && len(approve) == 0 {
		cctx, cancel := r.callContext(ctx, 0)
		defer cancel()
		resp, err := c.packages.InspectPackage(cctx, connect.NewRequest(&weftv1.InspectPackageRequest{Archive: req.Archive}))
		if err != nil {
			return &nodeError{op: "inspect " + src, err: err}
		}
		pkg := resp.Msg.GetPackage()
		requested := pkg.GetRequested()
		reinstall := resp.Msg.GetInstalledVersion() != "" && resp.Msg.GetInstalledVersion() == pkg.GetVersion()
		if len(requested) > 0 && !reinstall {
			what := fmt.Sprintf("%s %s requests these capabilities:\n%s", pkg.GetId(), pkg.GetVersion(), capsTable(requested))
			if !r.env.isTerminal() {
				return fmt.Errorf("install %s: %s"+
					"pass --approve-all to approve them all, or --approve 'PROCESS ISSUER [PARAMS]' for each one to approve; nothing installed", src, what)
			}
			fmt.Fprintf(r.env.Stderr, "%sApprove all of these? [y/N] ", what)
			answer, err := readLine(ctx, r.env.Stdin)
			if err != nil {
				return fmt.Errorf("install %s: read answer: %w; nothing installed", src, err)
			}
			switch strings.ToLower(strings.TrimSpace(answer)) {
			case "y", "yes":
				req.ApproveAll = true
			default:
				return fmt.Errorf("install %s: not approved; nothing installed", src)
			}
		}
	}

	cctx, cancel := r.callContext(ctx, 0)
	defer cancel()
	resp, err := c.packages.InstallPackage(cctx, connect.NewRequest(req))
	if err != nil {
		return &nodeError{op: op, err: err}
	}
	if r.g.json {
		return r.printJSON(resp.Msg)
	}
	pkg := resp.Msg.GetPackage()
	w := r.env.Stdout
	if resp.Msg.GetAlreadyInstalled() {
		_, err := fmt.Fprintf(w, "%s %s already installed\n", pkg.GetId(), pkg.GetVersion())
		return err
	}
	fmt.Fprintf(w, "installed %s %s\n", pkg.GetId(), pkg.GetVersion())
	fmt.Fprintln(w, "processes:")
	for _, p := range pkg.GetProcesses() {
		fmt.Fprintf(w, "  %s\n", p)
	}
	if len(pkg.GetApproved()) == 0 {
		_, err := fmt.Fprintln(w, "approved capabilities: none")
		return err
	}
	fmt.Fprintln(w, "approved capabilities:")
	_, err = fmt.Fprint(w, capsTable(pkg.GetApproved()))
	return err
}

// readLine reads a line from in, giving up when ctx is done (the user
// pressed Ctrl-C at the prompt); the read itself is then abandoned.
func readLine(ctx context.Context, in io.Reader) (string, error) {
	type answer struct {
		line string
		err  error
	}
	ch := make(chan answer, 1)
	go func() {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err == io.EOF {
			err = nil
		}
		ch <- answer{line, err}
	}()
	select {
	case a := <-ch:
		return a.line, a.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// readPackage returns the zip archive of the package at path: a directory
// zipped, or a file as it is.
func readPackage(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read package: %w", err)
	}
	if fi.IsDir() {
		b, err := pkgzip.Dir(path)
		if err != nil {
			return nil, fmt.Errorf("zip package %s: %w", path, err)
		}
		return b, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read package: %w", err)
	}
	return b, nil
}

// parseApprove parses an --approve value, "PROCESS ISSUER [PARAMS]".
func parseApprove(s string) (*weftv1.RequestedCapability, error) {
	process, rest := cutField(s)
	issuer, params := cutField(rest)
	if process == "" || issuer == "" {
		return nil, usagef("--approve %q: want 'PROCESS ISSUER [PARAMS]'", s)
	}
	params, err := paramsArg(params, "--approve "+process+" "+issuer)
	if err != nil {
		return nil, err
	}
	return &weftv1.RequestedCapability{
		Process:    process,
		Capability: &weftv1.Capability{Issuer: issuer, Params: params},
	}, nil
}

// cutField returns the first whitespace-separated field of s and the rest
// of s after it, trimmed.
func cutField(s string) (field, rest string) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' })
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i:])
}

// paramsArg checks capability params given on the command line: JSON,
// "messaging" (the JSON string) when empty.
func paramsArg(params, what string) (string, error) {
	params = strings.TrimSpace(params)
	if params == "" {
		return `"messaging"`, nil
	}
	if !json.Valid([]byte(params)) {
		return "", usagef("%s: PARAMS %s is not JSON (a string needs its quotes: '\"messaging\"')", what, params)
	}
	return params, nil
}

// capsTable lists requested capabilities, one a line, indented.
func capsTable(rcs []*weftv1.RequestedCapability) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, rc := range rcs {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", rc.GetProcess(), rc.GetCapability().GetIssuer(), rc.GetCapability().GetParams())
	}
	tw.Flush()
	return b.String()
}

var cmdUninstall = &command{
	name:    "uninstall",
	usage:   "weft uninstall [--purge] PACKAGE",
	summary: "stop and forget an installed package",
	details: `Uninstall stops the package's processes, then forgets them, the package's
files, its processes' state and the capabilities they held. PACKAGE is
"package:publisher". The package's key-value databases and drives stay,
as apt remove keeps a package's data, unless --purge is given: then they
are deleted too, with every capability on them. A package uninstalled
before, whose data stayed, may be purged later.

Flags:
  --purge   also delete the package's databases and drives

Examples:
  weft uninstall echo:examples
  weft uninstall --purge notes:examples
`,
	run: runUninstall,
}

func runUninstall(ctx context.Context, r *runner, args []string) error {
	fs := newFlagSet()
	var purge bool
	fs.boolVar(&purge, "purge")
	pos, err := exactArgs(fs, args, 1, 1, "PACKAGE (package:publisher)")
	if err != nil {
		return err
	}
	c, cctx, cancel, err := r.dialCall(ctx, 0)
	if err != nil {
		return err
	}
	defer cancel()
	resp, err := c.packages.UninstallPackage(cctx, connect.NewRequest(&weftv1.UninstallPackageRequest{Package: pos[0], Purge: purge}))
	if err != nil {
		return &nodeError{op: "uninstall " + pos[0], err: err}
	}
	if r.g.json {
		return r.printJSON(resp.Msg)
	}
	verb := "uninstalled"
	if purge {
		verb = "purged"
	}
	fmt.Fprintf(r.env.Stdout, "%s %s\n", verb, pos[0])
	for _, p := range resp.Msg.GetProcesses() {
		fmt.Fprintf(r.env.Stdout, "  stopped %s\n", p)
	}
	for _, db := range resp.Msg.GetDatabases() {
		fmt.Fprintf(r.env.Stdout, "  dropped database %s\n", db)
	}
	for _, d := range resp.Msg.GetDrives() {
		fmt.Fprintf(r.env.Stdout, "  removed drive %s\n", d)
	}
	return nil
}

var cmdPackages = &command{
	name:    "packages",
	usage:   "weft packages",
	summary: "list the installed packages",
	details: `Packages lists the installed packages: id, version, processes and when
each was installed.

Examples:
  weft packages
  weft --json packages | jq -r '.packages[].id'
`,
	run: runPackages,
}

func runPackages(ctx context.Context, r *runner, args []string) error {
	if _, err := noArgs(args); err != nil {
		return err
	}
	c, cctx, cancel, err := r.dialCall(ctx, 0)
	if err != nil {
		return err
	}
	defer cancel()
	resp, err := c.packages.ListPackages(cctx, connect.NewRequest(&weftv1.ListPackagesRequest{}))
	if err != nil {
		return &nodeError{op: "packages", err: err}
	}
	if r.g.json {
		return r.printJSON(resp.Msg)
	}
	tw := tabwriter.NewWriter(r.env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tVERSION\tPROCESSES\tINSTALLED")
	for _, p := range resp.Msg.GetPackages() {
		installed := "-"
		if p.GetInstalled() != nil {
			installed = p.GetInstalled().AsTime().Local().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.GetId(), p.GetVersion(), strings.Join(p.GetProcesses(), ","), installed)
	}
	return tw.Flush()
}
