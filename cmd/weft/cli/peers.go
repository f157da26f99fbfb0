package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/internal/units"
)

var cmdPeers = &command{
	name: "peers",
	usage: `weft peers
       weft peers connect MULTIADDR
       weft peers disconnect NODE
       weft peers ping NODE
       weft peers alias [NAME NODE_ID]
       weft peers alias -d NAME`,
	summary: "list, connect, ping and alias other nodes",
	details: `Peers shows and steers this node's connections to other nodes. NODE is a
node id (k51...) or an alias of this node's.

  weft peers
      the connected nodes: NODE (its alias when it has one, else its id),
      VIA (direct, or relayed when every connection goes through a relay),
      ADDRESS (of a connection; "(+N)" more), LATENCY (the moving average
      of its round trips, "-" before one was measured), IN and OUT (bytes
      and messages since it connected) and ERRORS (frames that failed, and
      frames that claimed another node, dropped)
  weft peers connect MULTIADDR
      connect to the node at MULTIADDR, a full address ending in
      /p2p/NODE_ID as the other node's weft status lists it, e.g.
      /ip4/203.0.113.7/tcp/9047/p2p/k51...; the node keeps the address
      and dials it again whenever it has a message for that node
  weft peers disconnect NODE
      close every connection to NODE (a message to it dials it again)
  weft peers ping NODE
      one round trip to NODE, connecting first if needed
  weft peers alias NAME NODE_ID
      let NAME ([a-z0-9.-], neither "our" nor a node id) stand for the node
      in addresses, for this node's processes and the API alike:
      weft send NAME@echo:echo:examples hi; replaces an alias of that name
  weft peers alias
      list the aliases
  weft peers alias -d NAME
      forget the alias NAME

A node whose network is off (weftd --p2p-listen none) refuses them all.
With --json the node's response is printed, with every field.

Examples:
  weft peers connect /ip4/192.0.2.10/tcp/9047/p2p/k51qzi5uqu5dh...
  weft peers alias alice k51qzi5uqu5dh...
  weft peers ping alice
  weft --json peers | jq -r '.peers[].nodeId'
`,
	run: runPeers,
}

func runPeers(ctx context.Context, r *runner, args []string) error {
	fs := newFlagSet()
	var del bool
	fs.boolVar(&del, "d", "delete")
	pos, err := exactArgs(fs, args, 0, 3, "")
	if err != nil {
		return err
	}
	sub := ""
	if len(pos) > 0 {
		sub, pos = pos[0], pos[1:]
	}
	if del && sub != "alias" {
		return usagef("-d goes with alias: weft peers alias -d NAME")
	}
	one := func(what string) (string, error) {
		switch {
		case len(pos) == 0:
			return "", usagef("peers %s: missing %s", sub, what)
		case len(pos) > 1:
			return "", usagef("peers %s: unexpected argument %q", sub, pos[1])
		}
		return pos[0], nil
	}
	switch sub {
	case "":
		if len(pos) > 0 {
			return usagef("unexpected argument %q", pos[0])
		}
		return peersList(ctx, r)
	case "connect":
		addr, err := one("MULTIADDR")
		if err != nil {
			return err
		}
		return peersConnect(ctx, r, addr)
	case "disconnect":
		node, err := one("NODE")
		if err != nil {
			return err
		}
		return peersDisconnect(ctx, r, node)
	case "ping":
		node, err := one("NODE")
		if err != nil {
			return err
		}
		return peersPing(ctx, r, node)
	case "alias":
		switch {
		case del:
			name, err := one("NAME")
			if err != nil {
				return err
			}
			return peersUnalias(ctx, r, name)
		case len(pos) == 0:
			return peersAliases(ctx, r)
		case len(pos) == 1:
			return usagef("peers alias: missing NODE_ID after %s", pos[0])
		}
		return peersAlias(ctx, r, pos[0], pos[1])
	}
	return usagef("unknown subcommand %q: want connect, disconnect, ping or alias, or nothing to list", sub)
}

func peersList(ctx context.Context, r *runner) error {
	c, cctx, cancel, err := r.dialCall(ctx, 0)
	if err != nil {
		return err
	}
	defer cancel()
	resp, err := c.peers.ListPeers(cctx, connect.NewRequest(&weftv1.ListPeersRequest{}))
	if err != nil {
		return &nodeError{op: "peers", err: err}
	}
	if r.g.json {
		return r.printJSON(resp.Msg)
	}
	tw := tabwriter.NewWriter(r.env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tVIA\tADDRESS\tLATENCY\tIN\tOUT\tERRORS")
	for _, p := range resp.Msg.GetPeers() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", peerName(p), via(p.GetRelayed()), addrText(p.GetAddrs()),
			latencyText(p), traffic(p.GetBytesIn(), p.GetMessagesIn()), traffic(p.GetBytesOut(), p.GetMessagesOut()),
			errorsText(p))
	}
	return tw.Flush()
}

// peerName is a peer as the table names it: its first alias, else its id.
func peerName(p *weftv1.Peer) string {
	if a := p.GetAliases(); len(a) > 0 {
		return a[0]
	}
	return p.GetNodeId()
}

func via(relayed bool) string {
	if relayed {
		return "relayed"
	}
	return "direct"
}

// addrText is the first address, and how many more there are.
func addrText(addrs []string) string {
	switch len(addrs) {
	case 0:
		return "-"
	case 1:
		return addrs[0]
	}
	return fmt.Sprintf("%s (+%d)", addrs[0], len(addrs)-1)
}

func latencyText(p *weftv1.Peer) string {
	if p.GetLatency() == nil {
		return "-"
	}
	return roundRTT(p.GetLatency().AsDuration()).String()
}

// roundRTT keeps a round trip's three leading digits.
func roundRTT(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func traffic(bytes, messages uint64) string {
	return fmt.Sprintf("%s/%d msg", units.Bytes(bytes), messages)
}

func errorsText(p *weftv1.Peer) string {
	var parts []string
	parts = append(parts, fmt.Sprint(p.GetErrors()))
	if n := p.GetSpoofed(); n > 0 {
		parts = append(parts, fmt.Sprintf("%d spoofed", n))
	}
	if n := p.GetRateLimited(); n > 0 {
		parts = append(parts, fmt.Sprintf("%d rate-limited", n))
	}
	return strings.Join(parts, ", ")
}

func peersConnect(ctx context.Context, r *runner, addr string) error {
	c, cctx, cancel, err := r.dialCall(ctx, 0)
	if err != nil {
		return err
	}
	defer cancel()
	resp, err := c.peers.ConnectPeer(cctx, connect.NewRequest(&weftv1.ConnectPeerRequest{Addr: addr}))
	if err != nil {
		return &nodeError{op: "peers connect", err: err}
	}
	if r.g.json {
		return r.printJSON(resp.Msg)
	}
	_, err = fmt.Fprintf(r.env.Stdout, "connected to %s\n", resp.Msg.GetNodeId())
	return err
}

func peersDisconnect(ctx context.Context, r *runner, node string) error {
	c, cctx, cancel, err := r.dialCall(ctx, 0)
	if err != nil {
		return err
	}
	defer cancel()
	resp, err := c.peers.DisconnectPeer(cctx, connect.NewRequest(&weftv1.DisconnectPeerRequest{Node: node}))
	if err != nil {
		return &nodeError{op: "peers disconnect " + node, err: err}
	}
	if r.g.json {
		return r.printJSON(resp.Msg)
	}
	_, err = fmt.Fprintf(r.env.Stdout, "disconnected from %s\n", resp.Msg.GetNodeId())
	return err
}

func peersPing(ctx context.Context, r *runner, node string) error {
	c, cctx, cancel, err := r.dialCall(ctx, 0)
	if err != nil {
		return err
	}
	defer cancel()
	resp, err := c.peers.PingPeer(cctx, connect.NewRequest(&weftv1.PingPeerRequest{Node: node}))
	if err != nil {
		return &nodeError{op: "peers ping " + node, err: err}
	}
	if r.g.json {
		return r.printJSON(resp.Msg)
	}
	_, err = fmt.Fprintf(r.env.Stdout, "%s: %s\n", resp.Msg.GetNodeId(), roundRTT(resp.Msg.GetRtt().AsDuration()))
	return err
}

func peersAlias(ctx context.Context, r *runner, name, node string) error {
	c, cctx, cancel, err := r.dialCall(ctx, 0)
	if err != nil {
		return err
	}
	defer cancel()
	resp, err := c.peers.SetAlias(cctx, connect.NewRequest(&weftv1.SetAliasRequest{Name: name, Node: node}))
	if err != nil {
		return &nodeError{op: "peers alias " + name, err: err}
	}
	if r.g.json {
		return r.printJSON(resp.Msg)
	}
	_, err = fmt.Fprintf(r.env.Stdout, "%s is %s\n", name, node)
	return err
}

func peersUnalias(ctx context.Context, r *runner, name string) error {
	c, cctx, cancel, err := r.dialCall(ctx, 0)
	if err != nil {
		return err
	}
	defer cancel()
	resp, err := c.peers.RemoveAlias(cctx, connect.NewRequest(&weftv1.RemoveAliasRequest{Name: name}))
	if err != nil {
		return &nodeError{op: "peers alias -d " + name, err: err}
	}
	if r.g.json {
		return r.printJSON(resp.Msg)
	}
	_, err = fmt.Fprintf(r.env.Stdout, "removed alias %s\n", name)
	return err
}

func peersAliases(ctx context.Context, r *runner) error {
	c, cctx, cancel, err := r.dialCall(ctx, 0)
	if err != nil {
		return err
	}
	defer cancel()
	resp, err := c.peers.ListAliases(cctx, connect.NewRequest(&weftv1.ListAliasesRequest{}))
	if err != nil {
		return &nodeError{op: "peers alias", err: err}
	}
	if r.g.json {
		return r.printJSON(resp.Msg)
	}
	tw := tabwriter.NewWriter(r.env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ALIAS\tNODE")
	for _, a := range resp.Msg.GetAliases() {
		fmt.Fprintf(tw, "%s\t%s\n", a.GetName(), a.GetNodeId())
	}
	return tw.Flush()
}
