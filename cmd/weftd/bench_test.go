package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/api/weftv1/weftv1connect"
)

// BenchmarkSendEcho is `weft send our@echo:echo:examples hello --await 5s`
// without the process start: one Send call over the Unix socket with the
// generated Connect client, through the kernel to the Wasm echo and back.
// serial is the latency of one call at a time; parallel16 is 16 clients
// calling at once (ns/op is then wall time per call, so calls per second
// is 1e9 / ns/op).
func BenchmarkSendEcho(b *testing.B) {
	n := startNode(b, b.TempDir(), "--install", exampleDir(b, "echo"))
	req := &weftv1.SendRequest{
		Target:  "our@echo:echo:examples",
		Request: &weftv1.Request{Body: []byte("hello"), ExpectsResponse: durationpb.New(5 * time.Second)},
	}
	send := func(c weftv1connect.MessageServiceClient) error {
		resp, err := c.Send(context.Background(), connect.NewRequest(req))
		if err != nil {
			return err
		}
		if string(resp.Msg.GetResponse().GetBody()) != "hello" {
			return fmt.Errorf("echo answered %v", resp.Msg)
		}
		return nil
	}
	b.Run("serial", func(b *testing.B) {
		c := weftv1connect.NewMessageServiceClient(unixClient(n.sock), "http://weftd")
		for b.Loop() {
			if err := send(c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel16", func(b *testing.B) {
		b.SetParallelism(8) // × GOMAXPROCS (2 here) = 16 clients
		b.RunParallel(func(pb *testing.PB) {
			hc := unixClient(n.sock)
			defer hc.CloseIdleConnections()
			c := weftv1connect.NewMessageServiceClient(hc, "http://weftd")
			for pb.Next() {
				if err := send(c); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkGetInfo is the floor of an API call over the socket: the same
// client and transport as BenchmarkSendEcho, a call that touches no
// process.
func BenchmarkGetInfo(b *testing.B) {
	n := startNode(b, b.TempDir())
	c := weftv1connect.NewNodeServiceClient(unixClient(n.sock), "http://weftd")
	for b.Loop() {
		if _, err := c.GetInfo(context.Background(), connect.NewRequest(&weftv1.GetInfoRequest{})); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStartupToReady is weftd's start, from exec to READY=1 on the
// notify socket, on a data dir with the examples installed (their
// compiled code cached, as after the first start), then SIGTERM and exit.
func BenchmarkStartupToReady(b *testing.B) {
	dir := b.TempDir()
	var install []string
	for _, e := range []string{"echo", "counter", "chain", "spawner", "cecho"} {
		install = append(install, "--install", exampleDir(b, e))
	}
	startNode(b, dir, install...).stop(b)

	nsockDir, err := os.MkdirTemp("", "wd")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(nsockDir)
	nsock := filepath.Join(nsockDir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: nsock, Net: "unixgram"})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	sock := filepath.Join(nsockDir, "weftd.sock")
	buf := make([]byte, 4096)
	for b.Loop() {
		cmd := exec.Command(weftdBin, "--data-dir", dir, "--socket", sock, "--log-level", "error", loopbackP2P[0], loopbackP2P[1])
		cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+nsock)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		for {
			conn.SetReadDeadline(time.Now().Add(failAfter))
			n, err := conn.Read(buf)
			if err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				b.Fatalf("no READY=1: %v", err)
			}
			if strings.Contains(string(buf[:n]), "READY=1") {
				break
			}
		}
		b.StopTimer()
		cmd.Process.Signal(os.Interrupt)
		if err := cmd.Wait(); err != nil {
			b.Fatalf("weftd: %v", err)
		}
		b.StartTimer()
	}
}

// BenchmarkOperatorCallUnderFlood is the operator's GetInfo over the Unix
// socket while an attacker holds N connections that say nothing: over
// TCP (the TLS listener, no token), and over the Unix socket itself
// (from the operator's own uid, so every new connection there evicts an
// idle one). idle-0 is the baseline.
func BenchmarkOperatorCallUnderFlood(b *testing.B) {
	certFile, keyFile, _ := selfSigned(b)
	n := startNode(b, b.TempDir(), "--listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile)
	tcp := n.ready["listen"].(string)
	for _, tc := range []struct {
		name    string
		network string
		addr    string
		conns   int
	}{
		{"idle-0", "", "", 0},
		{"tcp-idle-1000", "tcp", tcp, 1000},
		{"unix-idle-1000", "unix", n.sock, 1000},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var flood []net.Conn
			defer func() {
				for _, c := range flood {
					c.Close()
				}
			}()
			for range tc.conns {
				c, err := net.Dial(tc.network, tc.addr)
				if err != nil {
					b.Fatal(err)
				}
				flood = append(flood, c)
			}
			hc := unixClient(n.sock)
			defer hc.CloseIdleConnections()
			c := weftv1connect.NewNodeServiceClient(hc, "http://weftd")
			for b.Loop() {
				if _, err := c.GetInfo(context.Background(), connect.NewRequest(&weftv1.GetInfoRequest{})); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
