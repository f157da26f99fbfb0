// Command probe is a driver for the tests of package plugins: what it
// does is named by each request's body ("echo", "crash", "hang", …).
// Built as a file whose name ends in -v2, it speaks protocol version 2,
// which weftd does not.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/plugins/driver"
)

type probe struct {
	node *driver.Node
	self string
	hung atomic.Bool
}

func (p *probe) Start(ctx context.Context, s driver.Start) error {
	var cfg struct {
		FailStart bool `json:"fail_start"`
	}
	if err := json.Unmarshal(s.Config, &cfg); err != nil {
		return err
	}
	if cfg.FailStart {
		return errors.New("told to fail")
	}
	p.node, p.self = s.Node, s.Address
	fmt.Println("probe started as", s.Address)
	return nil
}

func (p *probe) Health(ctx context.Context) error {
	if p.hung.Load() {
		<-ctx.Done()
		select {} // hang for good
	}
	return nil
}

func (p *probe) Handle(ctx context.Context, r *driver.Request) *driver.Response {
	cmd, arg, _ := strings.Cut(string(r.Body()), " ")
	switch cmd {
	case "echo":
		return &driver.Response{Body: r.Body(), Blob: r.Blob(), Metadata: r.Metadata()}
	case "pid":
		return driver.Reply([]byte(strconv.Itoa(os.Getpid())))
	case "block":
		<-ctx.Done()
		return nil
	case "crash":
		os.Exit(7)
	case "hang":
		p.hung.Store(true)
		select {}
	case "stderr":
		fmt.Fprintln(os.Stderr, arg)
		return driver.Reply(nil)
	case "log":
		p.node.Log(ctx, slog.LevelWarn, arg)
		return driver.Reply(nil)
	case "send": // send TARGET BODY, awaiting the answer
		target, body, _ := strings.Cut(arg, " ")
		a, err := p.node.Send(ctx, driver.Message{Target: target, Body: []byte(body), Timeout: 10 * time.Second})
		return answer(a, err)
	case "sendcap": // send TARGET BODY, with this driver's messaging capability attached
		target, body, _ := strings.Cut(arg, " ")
		a, err := p.node.Send(ctx, driver.Message{Target: target, Body: []byte(body), Timeout: 10 * time.Second,
			Capabilities: []*weftv1.Capability{{Issuer: p.self, Params: `"messaging"`}}})
		return answer(a, err)
	case "flood": // flood TARGET N: N requests without waiting
		target, n, _ := strings.Cut(arg, " ")
		count, _ := strconv.Atoi(n)
		var ok, failed int
		for range count {
			if _, err := p.node.Send(ctx, driver.Message{Target: target, Body: []byte("x")}); err != nil {
				failed++
			} else {
				ok++
			}
		}
		return driver.Reply(fmt.Appendf(nil, "ok %d failed %d", ok, failed))
	case "big": // big N: send a body of N bytes to itself's caller... to TARGET
		target, n, _ := strings.Cut(arg, " ")
		size, _ := strconv.Atoi(n)
		_, err := p.node.Send(ctx, driver.Message{Target: target, Body: make([]byte, size)})
		return answer(nil, err)
	case "bigreply":
		size, _ := strconv.Atoi(arg)
		return driver.Reply(make([]byte, size))
	case "kv": // kv KEY VALUE: set, then get back
		key, value, _ := strings.Cut(arg, " ")
		db, err := p.node.OpenKV(ctx, "probe")
		if err != nil {
			return answer(nil, err)
		}
		if value != "" {
			if err := db.Set(ctx, []byte(key), []byte(value)); err != nil {
				return answer(nil, err)
			}
		}
		v, err := db.Get(ctx, []byte(key))
		if err != nil {
			return answer(nil, err)
		}
		return driver.Reply(v)
	case "kvother": // kvother PKG DB KEY: read another package's database
		f := strings.Fields(arg)
		_, err := p.node.KV(f[0], f[1]).Get(ctx, []byte(f[2]))
		return answer(nil, err)
	}
	return driver.Reply(r.Body()) // anything else is echoed
}

func answer(a *driver.Answer, err error) *driver.Response {
	if err != nil {
		return driver.Reply([]byte("error: " + err.Error()))
	}
	if a == nil {
		return driver.Reply([]byte("ok"))
	}
	return driver.Reply(a.Body)
}

func main() {
	if strings.HasSuffix(filepath.Base(os.Args[0]), "-v2") {
		hs := driver.Handshake
		hs.ProtocolVersion = 2
		plugin.Serve(&plugin.ServeConfig{HandshakeConfig: hs, Plugins: driver.PluginSet(&probe{}), GRPCServer: plugin.DefaultGRPCServer})
		return
	}
	driver.Serve(&probe{})
}
