package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/api/weftv1/weftv1connect"
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

// peerCall makes one PeerService call (op names it in errors) and prints
// its answer: the response as JSON with --json, else text of it.
func peerCall[M proto.Message](ctx context.Context, r *runner, op string, call func(context.Context, weftv1connect.PeerServiceClient) (M, error), text func(M) string) error {
	c, cctx, cancel, err := r.dialCall(ctx, 0)
	if err != nil {
		return err
	}
	defer cancel()
	m, err := call(cctx, c.peers)
	if err != nil {
		return &nodeError{op: op, err: err}
	}
	if r.g.json {
		return r.printJSON(m)
	}
	_, err = io.WriteString(r.env.Stdout, text(m))
	return err
}

// msg is a unary call's response message, or its error.
func msg[M any](res *connect.Response[M], err error) (*M, error) {
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

func peersList(ctx context.Context, r *runner) error {
	return peerCall(ctx, r, "peers", func(ctx context.Context, c weftv1connect.PeerServiceClient) (*weftv1.ListPeersResponse, error) {
		return msg(c.ListPeers(ctx, connect.NewRequest(&weftv1.ListPeersRequest{})))
	}, func(m *weftv1.ListPeersResponse) string {
		var b strings.Builder
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tVIA\tADDRESS\tLATENCY\tIN\tOUT\tERRORS")
		for _, p := range m.GetPeers() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", peerName(p), via(p.GetRelayed()), addrText(p.GetAddrs()),
				latencyText(p), traffic(p.GetBytesIn(), p.GetMessagesIn()), traffic(p.GetBytesOut(), p.GetMessagesOut()),
				errorsText(p))
		}
		tw.Flush()
		return b.String()
	})
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
	return peerCall(ctx, r, "peers connect", func(ctx context.Context, c weftv1connect.PeerServiceClient) (*weftv1.ConnectPeerResponse, error) {
		return msg(c.ConnectPeer(ctx, connect.NewRequest(&weftv1.ConnectPeerRequest{Addr: addr})))
	}, func(m *weftv1.ConnectPeerResponse) string { return "connected to " + m.GetNodeId() + "\n" })
}

func peersDisconnect(ctx context.Context, r *runner, node string) error {
	return peerCall(ctx, r, "peers disconnect "+node, func(ctx context.Context, c weftv1connect.PeerServiceClient) (*weftv1.DisconnectPeerResponse, error) {
		return msg(c.DisconnectPeer(ctx, connect.NewRequest(&weftv1.DisconnectPeerRequest{Node: node})))
	}, func(m *weftv1.DisconnectPeerResponse) string { return "disconnected from " + m.GetNodeId() + "\n" })
}

func peersPing(ctx context.Context, r *runner, node string) error {
	return peerCall(ctx, r, "peers ping "+node, func(ctx context.Context, c weftv1connect.PeerServiceClient) (*weftv1.PingPeerResponse, error) {
		return msg(c.PingPeer(ctx, connect.NewRequest(&weftv1.PingPeerRequest{Node: node})))
	}, func(m *weftv1.PingPeerResponse) string {
		return fmt.Sprintf("%s: %s\n", m.GetNodeId(), roundRTT(m.GetRtt().AsDuration()))
	})
}

func peersAlias(ctx context.Context, r *runner, name, node string) error {
	return peerCall(ctx, r, "peers alias "+name, func(ctx context.Context, c weftv1connect.PeerServiceClient) (*weftv1.SetAliasResponse, error) {
		return msg(c.SetAlias(ctx, connect.NewRequest(&weftv1.SetAliasRequest{Name: name, Node: node})))
	}, func(*weftv1.SetAliasResponse) string { return name + " is " + node + "\n" })
}

func peersUnalias(ctx context.Context, r *runner, name string) error {
	return peerCall(ctx, r, "peers alias -d "+name, func(ctx context.Context, c weftv1connect.PeerServiceClient) (*weftv1.RemoveAliasResponse, error) {
		return msg(c.RemoveAlias(ctx, connect.NewRequest(&weftv1.RemoveAliasRequest{Name: name})))
	}, func(*weftv1.RemoveAliasResponse) string { return "removed alias " + name + "\n" })
}

func peersAliases(ctx context.Context, r *runner) error {
	return peerCall(ctx, r, "peers alias", func(ctx context.Context, c weftv1connect.PeerServiceClient) (*weftv1.ListAliasesResponse, error) {
		return msg(c.ListAliases(ctx, connect.NewRequest(&weftv1.ListAliasesRequest{})))
	}, func(m *weftv1.ListAliasesResponse) string {
		var b strings.Builder
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ALIAS\tNODE")
		for _, a := range m.GetAliases() {
			fmt.Fprintf(tw, "%s\t%s\n", a.GetName(), a.GetNodeId())
		}
		tw.Flush()
		return b.String()
	})
}
