package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"connectrpc.com/connect"

	"github.com/weftos/weft/api/weftv1"
)

var cmdStore = &command{
	name:    "store",
	usage:   "weft store ls PKG [DRIVE[/DIR...]] | cat /PKG/DRIVE/PATH [--offset N] [--length N] | rm PKG DRIVE",
	summary: "look into the drives of a package",
	details: `Store shows what a package ("package:publisher") keeps in its drives, as
the node's owner.

  weft store ls PKG
      the package's drives, one per line
  weft store ls PKG DRIVE[/DIR...]
      a directory of a drive (the drive's root without DIR): NAME, SIZE in
      bytes and MODIFIED (local time); directories end with "/"
  weft store cat /PKG/DRIVE/PATH
      write the file PATH of DRIVE, of package PKG, to stdout exactly as
      stored, with nothing added, as in
      weft store cat /chat:alice.os/media/2026/cat.jpg > cat.jpg
  weft store rm PKG DRIVE
      delete the drive DRIVE with all its files, and revoke every copy of
      the read and write capabilities on it (an uninstalled package's
      drives stay until removed)

Flags of cat:
  --offset N    start at byte N of the file (default 0)
  --length N    write at most N bytes (default 0: to the end)

Cat reads 4 MiB a call, each bounded by --timeout, so it writes a file of
any size; a file written to while cat reads it may come out mixed.

With --json the node's ListDrivesResponse, ReadDirResponse or
RemoveDriveResponse is printed; cat writes the file's bytes even then.

Examples:
  weft store ls chat:alice.os
  weft store ls chat:alice.os media/2026
  weft store cat /chat:alice.os/notes/todo.txt
  weft store cat /chat:alice.os/logs/app.log --offset 1024 --length 512
  weft store rm chat:alice.os cache
  weft --json store ls chat:alice.os media | jq -r '.entries[].name'
`,
	run: runStore,
}

// catPathForm is the shape weft store cat wants, for its usage errors.
const catPathForm = "/package:publisher/drive/path/to/file"

func runStore(ctx context.Context, r *runner, args []string) error {
	sub, args, err := subcommand(args, "ls, cat or rm")
	if err != nil {
		return err
	}
	switch sub {
	case "ls":
		return storeLs(ctx, r, args)
	case "cat":
		return storeCat(ctx, r, args)
	case "rm":
		return storeRm(ctx, r, args)
	}
	return usagef("unknown subcommand %q: want ls, cat or rm", sub)
}

func storeRm(ctx context.Context, r *runner, args []string) error {
	pos, err := exactArgs(newFlagSet(), args, 2, 2, "PKG and DRIVE")
	if err != nil {
		return err
	}
	c, cctx, cancel, err := r.dialCall(ctx, 0)
	if err != nil {
		return err
	}
	defer cancel()
	resp, err := c.store.RemoveDrive(cctx, connect.NewRequest(&weftv1.RemoveDriveRequest{Package: pos[0], Drive: pos[1]}))
	if err != nil {
		return &nodeError{op: "store rm " + pos[0] + " " + pos[1], err: err}
	}
	if r.g.json {
		return r.printJSON(resp.Msg)
	}
	_, err = fmt.Fprintf(r.env.Stdout, "removed drive %s of %s (%s revoked)\n", pos[1], pos[0], capabilities(resp.Msg.GetRevoked()))
	return err
}

// capabilities is "1 capability" or "N capabilities".
func capabilities(n uint32) string {
	if n == 1 {
		return "1 capability"
	}
	return strconv.FormatUint(uint64(n), 10) + " capabilities"
}

// subcommand splits args into a subcommand and what follows it. A flag
// before the subcommand may only ask for help.
func subcommand(args []string, want string) (string, []string, error) {
	if len(args) > 0 && (len(args[0]) < 2 || args[0][0] != '-') {
		return args[0], args[1:], nil
	}
	if _, err := exactArgs(newFlagSet(), args, 0, 0, ""); err != nil {
		return "", nil, err
	}
	return "", nil, usagef("missing subcommand: %s", want)
}

func storeLs(ctx context.Context, r *runner, args []string) error {
	pos, err := exactArgs(newFlagSet(), args, 1, 2, "PKG")
	if err != nil {
		return err
	}
	pkg := pos[0]
	var drive, dir string
	if len(pos) == 2 {
		drive, dir, _ = strings.Cut(strings.TrimPrefix(pos[1], "/"), "/")
		if drive == "" {
			return usagef("bad directory %q: want DRIVE or DRIVE/DIR/...", pos[1])
		}
	}
	c, cctx, cancel, err := r.dialCall(ctx, 0)
	if err != nil {
		return err
	}
	defer cancel()
	out := r.env.Stdout

	if len(pos) == 1 {
		resp, err := c.store.ListDrives(cctx, connect.NewRequest(&weftv1.ListDrivesRequest{Package: pkg}))
		if err != nil {
			return &nodeError{op: "store ls " + pkg, err: err}
		}
		if r.g.json {
			return r.printJSON(resp.Msg)
		}
		for _, d := range resp.Msg.GetDrives() {
			if _, err := fmt.Fprintln(out, d); err != nil {
				return err
			}
		}
		return nil
	}

	resp, err := c.store.ReadDir(cctx, connect.NewRequest(&weftv1.ReadDirRequest{Package: pkg, Drive: drive, Path: dir}))
	if err != nil {
		return &nodeError{op: "store ls " + pkg + " " + pos[1], err: err}
	}
	if r.g.json {
		return r.printJSON(resp.Msg)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSIZE\tMODIFIED")
	for _, e := range resp.Msg.GetEntries() {
		name, size := e.GetName(), strconv.FormatUint(e.GetSize(), 10)
		if e.GetDir() {
			name, size = name+"/", "-"
		}
		modified := "-"
		if e.GetModified() != nil {
			modified = e.GetModified().AsTime().Local().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", quoteUnprintable(name), size, modified)
	}
	return tw.Flush()
}

func storeCat(ctx context.Context, r *runner, args []string) error {
	fs := newFlagSet()
	var offset, length uint64
	fs.uintVar(&offset, math.MaxInt64, "offset")
	fs.uintVar(&length, math.MaxInt64, "length")
	pos, err := exactArgs(fs, args, 1, 1, "PATH ("+catPathForm+")")
	if err != nil {
		return err
	}
	pkg, drive, path, err := parseFilePath(pos[0])
	if err != nil {
		return err
	}
	c, err := r.dial()
	if err != nil {
		return err
	}
	// Read catChunk bytes a call until the file, or --length, ends.
	for {
		n := catChunk
		if length > 0 {
			n = min(n, length)
		}
		data, err := readChunk(ctx, r, c, &weftv1.ReadFileRequest{
			Package: pkg, Drive: drive, Path: path, Offset: offset, Length: n,
		})
		if err != nil {
			return &nodeError{op: "store cat " + pos[0], err: err}
		}
		if _, err := r.env.Stdout.Write(data); err != nil {
			return err
		}
		if uint64(len(data)) < n {
			return nil // the file ended
		}
		offset += n
		if length > 0 {
			if length -= n; length == 0 {
				return nil
			}
		}
	}
}

// catChunk is the most weft store cat asks for in one call.
var catChunk uint64 = 4 << 20

// readChunk makes one ReadFile call, bounded by --timeout.
func readChunk(ctx context.Context, r *runner, c *conn, req *weftv1.ReadFileRequest) ([]byte, error) {
	cctx, cancel := r.callContext(ctx, 0)
	defer cancel()
	resp, err := c.store.ReadFile(cctx, connect.NewRequest(req))
	if err != nil {
		return nil, err
	}
	if uint64(len(resp.Msg.GetData())) > req.GetLength() {
		return nil, fmt.Errorf("asked for %d bytes, the node sent %d", req.GetLength(), len(resp.Msg.GetData()))
	}
	return resp.Msg.GetData(), nil
}

// parseFilePath splits "/package:publisher/drive/path/to/file" into its
// package, drive and path inside the drive. A malformed p is a
// *usageError showing the form wanted.
func parseFilePath(p string) (pkg, drive, path string, err error) {
	bad := func(why string) error {
		return usagef("bad PATH %q: %s; want %s", p, why, catPathForm)
	}
	rest, ok := strings.CutPrefix(p, "/")
	if !ok {
		return "", "", "", bad("it must start with /")
	}
	segs := strings.Split(rest, "/")
	if name, publisher, ok := strings.Cut(segs[0], ":"); !ok || name == "" || publisher == "" {
		return "", "", "", bad("no package:publisher")
	}
	if len(segs) < 2 || segs[1] == "" {
		return "", "", "", bad("no drive")
	}
	if len(segs) < 3 || segs[len(segs)-1] == "" {
		return "", "", "", bad("no file in the drive")
	}
	for _, s := range segs[2:] {
		if s == "" {
			return "", "", "", bad("empty name between slashes")
		}
	}
	return segs[0], segs[1], strings.Join(segs[2:], "/"), nil
}

var cmdKv = &command{
	name:    "kv",
	usage:   "weft kv ls PKG [DB [PREFIX]] [--values] | get PKG DB KEY | set PKG DB KEY VALUE | delete PKG DB KEY | drop PKG DB",
	summary: "read and edit the key-value databases of a package",
	details: `Kv lists, reads and edits what a package ("package:publisher") keeps in
its key-value databases, as the node's owner.

  weft kv ls PKG
      the package's databases, one per line
  weft kv ls PKG DB [PREFIX] [--values]
      the keys of DB (those that start with PREFIX), one per line in key
      order; with --values, KEY<TAB>VALUE
  weft kv get PKG DB KEY
      print KEY's value as it is, followed by a newline; a missing KEY
      prints "weft: kv get: KEY not found" on stderr and exits with 2
  weft kv set PKG DB KEY VALUE
      set KEY to VALUE, taken literally ("-" reads it from stdin, exactly
      as given); DB is created if it is missing
  weft kv delete PKG DB KEY
      delete KEY; a missing KEY is not an error
  weft kv drop PKG DB
      delete the database DB with all its keys, and revoke every copy of
      the read and write capabilities on it (an uninstalled package's
      databases stay until dropped)

Keys and values are bytes. ls prints a key or value as text when it is
printable UTF-8 (no tabs, newlines or control characters) and does not
start with a double quote; otherwise it prints it quoted, Go-style
("\x00id\n"). A KEY or PREFIX argument that starts with a double quote is
read back the same way, so what ls prints can be pasted. A VALUE that
starts with "-" goes after "--".

With --json the node's responses are printed: ListDatabasesResponse,
KVScanResponse (every page in one), KVGetResponse (still exiting with 2
when the key is missing), KVSetResponse, KVDeleteResponse,
DropDatabaseResponse; bytes are base64.

Flags of ls:
  --values    print each key's value after it, separated by a tab

Examples:
  weft kv ls chat:alice.os
  weft kv ls chat:alice.os messages 2026- --values
  weft kv get chat:alice.os settings theme
  weft kv set chat:alice.os settings theme dark
  weft kv set chat:alice.os settings motd - < motd.txt
  weft kv delete chat:alice.os settings '"\x00legacy"'
  weft kv drop chat:alice.os cache
  weft --json kv get chat:alice.os settings theme | jq -r .value | base64 -d
`,
	run: runKv,
}

// kvPage is how many pairs weft kv ls asks for at a time.
const kvPage = 1000

func runKv(ctx context.Context, r *runner, args []string) error {
	sub, args, err := subcommand(args, "ls, get, set, delete or drop")
	if err != nil {
		return err
	}
	fs := newFlagSet()
	var values bool
	var lo, hi int
	var what string
	switch sub {
	case "ls":
		fs.boolVar(&values, "values")
		lo, hi, what = 1, 3, "PKG"
	case "get", "delete":
		lo, hi, what = 3, 3, "PKG, DB and KEY"
	case "set":
		lo, hi, what = 4, 4, "PKG, DB, KEY and VALUE"
	case "drop":
		lo, hi, what = 2, 2, "PKG and DB"
	default:
		return usagef("unknown subcommand %q: want ls, get, set, delete or drop", sub)
	}
	pos, err := exactArgs(fs, args, lo, hi, what)
	if err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			ue.msg = "kv " + sub + ": " + ue.msg
		}
		return err
	}
	var key []byte
	if len(pos) >= 3 {
		if key, err = parseKey(pos[2]); err != nil {
			return err
		}
	}
	var value []byte
	if sub == "set" {
		value = []byte(pos[3])
		if pos[3] == "-" {
			if value, err = io.ReadAll(r.env.Stdin); err != nil {
				return fmt.Errorf("read VALUE from stdin: %w", err)
			}
		}
	}
	c, cctx, cancel, err := r.dialCall(ctx, 0)
	if err != nil {
		return err
	}
	defer cancel()
	out := r.env.Stdout
	op := "kv " + sub + " " + strings.Join(pos[:min(len(pos), 3)], " ")

	switch sub {
	case "ls":
		if len(pos) == 1 {
			resp, err := c.store.ListDatabases(cctx, connect.NewRequest(&weftv1.ListDatabasesRequest{Package: pos[0]}))
			if err != nil {
				return &nodeError{op: op, err: err}
			}
			if r.g.json {
				return r.printJSON(resp.Msg)
			}
			for _, db := range resp.Msg.GetDatabases() {
				if _, err := fmt.Fprintln(out, db); err != nil {
					return err
				}
			}
			return nil
		}
		return kvLs(cctx, r, c, op, pos[0], pos[1], key, values)

	case "get":
		resp, err := c.store.KVGet(cctx, connect.NewRequest(&weftv1.KVGetRequest{Package: pos[0], Database: pos[1], Key: key}))
		if err != nil {
			return &nodeError{op: op, err: err}
		}
		if r.g.json {
			if err := r.printJSON(resp.Msg); err != nil {
				return err
			}
		}
		if !resp.Msg.GetFound() {
			return &nodeError{op: "kv get", err: fmt.Errorf("%s not found", quoteUnprintable(string(key)))}
		}
		if r.g.json {
			return nil
		}
		_, err = out.Write(append(resp.Msg.GetValue(), '\n'))
		return err

	case "set":
		resp, err := c.store.KVSet(cctx, connect.NewRequest(&weftv1.KVSetRequest{Package: pos[0], Database: pos[1], Key: key, Value: value}))
		if err != nil {
			return &nodeError{op: op, err: err}
		}
		if r.g.json {
			return r.printJSON(resp.Msg)
		}
		if resp.Msg.GetCreated() {
			fmt.Fprintf(out, "created database %s of %s\n", pos[1], pos[0])
		}
		_, err = fmt.Fprintf(out, "set %s\n", quoteUnprintable(string(key)))
		return err

	case "drop":
		resp, err := c.store.DropDatabase(cctx, connect.NewRequest(&weftv1.DropDatabaseRequest{Package: pos[0], Database: pos[1]}))
		if err != nil {
			return &nodeError{op: op, err: err}
		}
		if r.g.json {
			return r.printJSON(resp.Msg)
		}
		_, err = fmt.Fprintf(out, "dropped database %s of %s (%s revoked)\n", pos[1], pos[0], capabilities(resp.Msg.GetRevoked()))
		return err

	default: // delete
		resp, err := c.store.KVDelete(cctx, connect.NewRequest(&weftv1.KVDeleteRequest{Package: pos[0], Database: pos[1], Key: key}))
		if err != nil {
			return &nodeError{op: op, err: err}
		}
		if r.g.json {
			return r.printJSON(resp.Msg)
		}
		_, err = fmt.Fprintf(out, "deleted %s\n", quoteUnprintable(string(key)))
		return err
	}
}

// kvLs prints the keys of db starting with prefix, and their values if
// asked, paging through KVScan until the node says there are no more.
// With --json it prints all the pages as one KVScanResponse.
func kvLs(ctx context.Context, r *runner, c *conn, op, pkg, db string, prefix []byte, values bool) error {
	all := &weftv1.KVScanResponse{}
	var after []byte
	for {
		resp, err := c.store.KVScan(ctx, connect.NewRequest(&weftv1.KVScanRequest{
			Package: pkg, Database: db, Prefix: prefix, After: after, Limit: kvPage,
		}))
		if err != nil {
			return &nodeError{op: op, err: err}
		}
		pairs := resp.Msg.GetPairs()
		if r.g.json {
			all.Pairs = append(all.Pairs, pairs...)
		} else {
			for _, p := range pairs {
				line := quoteUnprintable(string(p.GetKey()))
				if values {
					line += "\t" + quoteUnprintable(string(p.GetValue()))
				}
				if _, err := fmt.Fprintln(r.env.Stdout, line); err != nil {
					return err
				}
			}
		}
		if !resp.Msg.GetMore() {
			break
		}
		if len(pairs) == 0 {
			return &nodeError{op: op, err: errors.New("the node said there were more keys but sent none")}
		}
		after = pairs[len(pairs)-1].GetKey()
	}
	if r.g.json {
		return r.printJSON(all)
	}
	return nil
}

// parseKey is a KEY or PREFIX argument as bytes: taken literally, unless
// it starts with a double quote, when it is a Go quoted string (as
// quoteUnprintable prints it).
func parseKey(s string) ([]byte, error) {
	if !strings.HasPrefix(s, `"`) {
		return []byte(s), nil
	}
	k, err := strconv.Unquote(s)
	if err != nil {
		return nil, usagef("bad quoted key %s: want a Go quoted string such as %q", s, "\x00id")
	}
	return []byte(k), nil
}

// quoteUnprintable returns s as it is when it reads as text on one line
// and cannot be taken for a quoted string, and quoted Go-style otherwise
// (the empty string too, so that it shows).
func quoteUnprintable(s string) string {
	if s == "" || strings.HasPrefix(s, `"`) || !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, c := range s {
		if !unicode.IsPrint(c) {
			return strconv.Quote(s)
		}
	}
	return s
}
