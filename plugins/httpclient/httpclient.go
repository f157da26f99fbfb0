// Package httpclient is the in-tree http-client driver,
// http-client:drivers:weft, as a library (plugins/cmd/http-client serves
// it): outbound HTTP for processes, to the hosts its configuration
// allows. docs/drivers.md, "The http-client driver", says the same for
// users.
//
// # Protocol
//
// A request's body is JSON, and its blob (if any) is the HTTP request's
// body; its mime is the Content-Type unless the headers give one:
//
//	{"method":"GET","url":"https://api.example.com/x","headers":{"Accept":["text/plain"]},"timeout":"10s"}
//
// method is one of GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS
// (default GET); url is http or https; headers and timeout are optional.
// The answer's body is JSON, and its blob the HTTP response's body (mime
// from its Content-Type; no blob for an empty body):
//
//	{"status":200,"headers":{"Content-Type":["text/plain"]}}
//
// Failures are answered in the body, as a driver answers what went
// wrong:
//
//	{"error":"a sentence","kind":"KIND"}
//
// with KIND one of bad_request (the request is malformed), refused (a
// host or address the configuration does not allow), too_large (the
// request's blob over max_request_bytes, or the response's body over
// max_response_bytes: nothing of it is returned), timeout, busy
// (max_in_flight requests are under way; try again) and transport (the
// connection or the exchange failed).
//
// # What is allowed
//
// The configuration's allow list names hosts: "example.com" (any port),
// "api.example.com:8443" (that port only), "*.example.org" (any
// subdomain of example.org, not example.org itself), or IP addresses,
// "10.0.0.5" or "127.0.0.1:8080" or "[::1]:8080". A request, and every
// redirect it follows, must name an allowed host. And every address it
// connects to is checked as the connection is made (after DNS, so a name
// that resolves somewhere else later gains nothing): a loopback, private
// (RFC 1918, unique local), link-local, unspecified or multicast address
// is refused unless the list names that address itself. Proxies from
// the environment are not used.
//
// # Configuration
//
//	allow               []  hosts, as above; empty allows nothing
//	timeout             "30s"  the longest a request may take (a request's
//	                    own timeout, and its requester's, may only shorten it)
//	max_request_bytes   8388608  the request's blob
//	max_response_bytes  8388608  the response's body (at most 256 MiB; the
//	                    node's max_blob_bytes bounds what it can carry, 16 MiB by default)
//	max_redirects       5
//	max_in_flight       64  requests under way at once; past it, busy
//
// Unknown keys fail Start.
package httpclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/plugins/driver"
)

// Defaults and bounds of the configuration.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultMaxRequestBytes  = 8 << 20
	DefaultMaxResponseBytes = 8 << 20
	MaxResponseBytes        = 256 << 20
	DefaultMaxRedirects     = 5
	DefaultMaxInFlight      = 64
)

// Kinds of failure, as answers name them.
const (
	KindBadRequest = "bad_request"
	KindRefused    = "refused"
	KindTooLarge   = "too_large"
	KindTimeout    = "timeout"
	KindBusy       = "busy"
	KindTransport  = "transport"
)

var methods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true}

// New returns the http-client driver.
func New() driver.Driver { return &client{} }

type client struct {
	cfg      config
	allow    allowList
	http     *http.Client
	inFlight atomic.Int64
}

type config struct {
	Allow            []string `json:"allow"`
	Timeout          string   `json:"timeout"`
	MaxRequestBytes  int64    `json:"max_request_bytes"`
	MaxResponseBytes int64    `json:"max_response_bytes"`
	MaxRedirects     *int     `json:"max_redirects"`
	MaxInFlight      int64    `json:"max_in_flight"`

	timeout time.Duration
}

func parseConfig(b []byte) (config, allowList, error) {
	var c config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, nil, fmt.Errorf("http-client: config: %w", err)
	}
	c.timeout = DefaultTimeout
	if c.Timeout != "" {
		d, err := time.ParseDuration(c.Timeout)
		if err != nil || d <= 0 {
			return c, nil, fmt.Errorf("http-client: config: timeout %q is not a positive duration", c.Timeout)
		}
		c.timeout = d
	}
	for _, f := range []struct {
		v        *int64
		def, max int64
		key      string
	}{
		{&c.MaxRequestBytes, DefaultMaxRequestBytes, driver.MaxMessageBytes / 2, "max_request_bytes"},
		{&c.MaxResponseBytes, DefaultMaxResponseBytes, MaxResponseBytes, "max_response_bytes"},
		{&c.MaxInFlight, DefaultMaxInFlight, 1 << 16, "max_in_flight"},
	} {
		switch {
		case *f.v == 0:
			*f.v = f.def
		case *f.v < 0 || *f.v > f.max:
			return c, nil, fmt.Errorf("http-client: config: %s %d is outside 1 to %d", f.key, *f.v, f.max)
		}
	}
	if c.MaxRedirects == nil {
		n := DefaultMaxRedirects
		c.MaxRedirects = &n
	} else if *c.MaxRedirects < 0 || *c.MaxRedirects > 100 {
		return c, nil, fmt.Errorf("http-client: config: max_redirects %d is outside 0 to 100", *c.MaxRedirects)
	}
	allow, err := parseAllow(c.Allow)
	if err != nil {
		return c, nil, fmt.Errorf("http-client: config: %w", err)
	}
	return c, allow, nil
}

func (c *client) Start(_ context.Context, s driver.Start) error {
	cfg, allow, err := parseConfig(s.Config)
	if err != nil {
		return err
	}
	c.cfg, c.allow = cfg, allow
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: allow.control}
	c.http = &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          64,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: cfg.timeout,
		},
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if len(via) > *cfg.MaxRedirects {
				return &failure{KindRefused, fmt.Sprintf("more than %d redirects (max_redirects)", *cfg.MaxRedirects)}
			}
			return allow.checkURL(r.URL)
		},
	}
	return nil
}

// failure is an answered failure: what went wrong, and its kind.
type failure struct{ kind, msg string }

func (f *failure) Error() string { return f.msg }

func answerFailure(err error) *driver.Response {
	var f *failure
	if !errors.As(err, &f) {
		f = &failure{KindTransport, err.Error()}
	}
	return driver.ReplyJSON(map[string]string{"error": f.msg, "kind": f.kind})
}

// request is a request's body.
type request struct {
	Method  string              `json:"method"`
	URL     string              `json:"url"`
	Headers map[string][]string `json:"headers"`
	Timeout string              `json:"timeout"`

	u       *url.URL
	timeout time.Duration
}

// parseRequest decodes and checks a request's body; it knows nothing of
// the configuration.
func parseRequest(b []byte) (*request, error) {
	var r request
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, &failure{KindBadRequest, "the body is not {\"method\",\"url\",\"headers\",\"timeout\"}: " + err.Error()}
	}
	if dec.More() {
		return nil, &failure{KindBadRequest, "the body holds more than one JSON value"}
	}
	if r.Method == "" {
		r.Method = "GET"
	}
	if !methods[r.Method] {
		return nil, &failure{KindBadRequest, fmt.Sprintf("method %q: want GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS", trim(r.Method))}
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return nil, &failure{KindBadRequest, "url: " + err.Error()}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, &failure{KindBadRequest, fmt.Sprintf("url %q: the scheme must be http or https", trim(r.URL))}
	}
	if u.Hostname() == "" {
		return nil, &failure{KindBadRequest, fmt.Sprintf("url %q has no host", trim(r.URL))}
	}
	if u.User != nil {
		return nil, &failure{KindBadRequest, "url: credentials in the url are refused; send an Authorization header"}
	}
	r.u = u
	for k, vs := range r.Headers {
		if !validHeaderName(k) {
			return nil, &failure{KindBadRequest, fmt.Sprintf("header name %q is not a token", trim(k))}
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") {
				return nil, &failure{KindBadRequest, fmt.Sprintf("header %s: a value holds a line break or NUL", k)}
			}
		}
	}
	if r.Timeout != "" {
		d, err := time.ParseDuration(r.Timeout)
		if err != nil || d <= 0 {
			return nil, &failure{KindBadRequest, fmt.Sprintf("timeout %q is not a positive duration", trim(r.Timeout))}
		}
		r.timeout = d
	}
	return &r, nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// trim cuts a value echoed in an error.
func trim(s string) string {
	if len(s) > 256 {
		return s[:256] + "…"
	}
	return s
}

func (c *client) Handle(ctx context.Context, dr *driver.Request) *driver.Response {
	if !dr.WantsResponse() {
		return nil // no one would see the answer: do nothing on the network
	}
	if c.inFlight.Add(1) > c.cfg.MaxInFlight {
		c.inFlight.Add(-1)
		return answerFailure(&failure{KindBusy, fmt.Sprintf("%d requests are under way (max_in_flight)", c.cfg.MaxInFlight)})
	}
	defer c.inFlight.Add(-1)
	resp, err := c.do(ctx, dr)
	if err != nil {
		return answerFailure(err)
	}
	return resp
}

func (c *client) do(ctx context.Context, dr *driver.Request) (*driver.Response, error) {
	r, err := parseRequest(dr.Body())
	if err != nil {
		return nil, err
	}
	if err := c.allow.checkURL(r.u); err != nil {
		return nil, err
	}
	timeout := c.cfg.timeout
	if r.timeout > 0 && r.timeout < timeout {
		timeout = r.timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	blob := dr.Blob()
	if blob != nil {
		if int64(len(blob.GetBytes())) > c.cfg.MaxRequestBytes {
			return nil, &failure{KindTooLarge, fmt.Sprintf("the request's blob is %d bytes, at most %d (max_request_bytes)", len(blob.GetBytes()), c.cfg.MaxRequestBytes)}
		}
		body = bytes.NewReader(blob.GetBytes())
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.u.String(), body)
	if err != nil {
		return nil, &failure{KindBadRequest, err.Error()}
	}
	for k, vs := range r.Headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if blob != nil && blob.GetMime() != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", blob.GetMime())
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, transportErr(ctx, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxResponseBytes+1))
	if err != nil {
		return nil, transportErr(ctx, err)
	}
	if int64(len(b)) > c.cfg.MaxResponseBytes {
		return nil, &failure{KindTooLarge, fmt.Sprintf("the response's body is over %d bytes (max_response_bytes)", c.cfg.MaxResponseBytes)}
	}
	out := driver.ReplyJSON(map[string]any{"status": resp.StatusCode, "headers": resp.Header})
	if len(b) > 0 {
		mt := resp.Header.Get("Content-Type")
		if parsed, _, err := mime.ParseMediaType(mt); err == nil {
			mt = parsed
		} else {
			mt = "application/octet-stream"
		}
		out.Blob = &weftv1.Blob{Mime: mt, Bytes: b}
	}
	return out, nil
}

// transportErr names a failed exchange: a refusal of ours, the deadline,
// or the network's.
func transportErr(ctx context.Context, err error) error {
	var f *failure
	if errors.As(err, &f) {
		return f
	}
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return &failure{KindTimeout, "the request took longer than its timeout"}
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Timeout() {
		return &failure{KindTimeout, ue.Error()}
	}
	return &failure{KindTransport, err.Error()}
}

// allowList is the parsed allow list.
type allowList []allowEntry

type allowEntry struct {
	host     string // lower case; "" for an address entry
	wildcard bool   // host is a suffix: *.host
	addr     netip.Addr
	port     string // "" for any
}

func parseAllow(list []string) (allowList, error) {
	var out allowList
	for _, s := range list {
		e, err := parseAllowEntry(s)
		if err != nil {
			return nil, fmt.Errorf("allow %q: %w", trim(s), err)
		}
		out = append(out, e)
	}
	return out, nil
}

func parseAllowEntry(s string) (allowEntry, error) {
	var e allowEntry
	host := s
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return e, fmt.Errorf("port %q is not a port", p)
		}
		host, e.port = h, p
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	if a, err := netip.ParseAddr(host); err == nil {
		e.addr = a.Unmap()
		return e, nil
	}
	host = strings.ToLower(host)
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		e.wildcard, host = true, rest
	}
	if host == "" || strings.ContainsAny(host, "*/@ ") {
		return e, errors.New("want a host, host:port, *.domain or an IP address")
	}
	e.host = host
	return e, nil
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// checkURL refuses a URL whose host the list does not allow.
func (l allowList) checkURL(u *url.URL) error {
	host, port := strings.ToLower(u.Hostname()), portOf(u)
	addr, err := netip.ParseAddr(host)
	isAddr := err == nil
	for _, e := range l {
		if e.port != "" && e.port != port {
			continue
		}
		switch {
		case e.addr.IsValid():
			if isAddr && addr.Unmap() == e.addr {
				return nil
			}
		case e.wildcard:
			if strings.HasSuffix(host, "."+e.host) {
				return nil
			}
		case host == e.host:
			return nil
		}
	}
	return &failure{KindRefused, fmt.Sprintf("host %s (port %s) is not in the driver's allow list", trim(host), port)}
}

// control checks each address the driver connects to, after DNS: an
// address that is not public must be named by the list itself.
func (l allowList) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &failure{KindRefused, fmt.Sprintf("connecting to %s: %v", address, err)}
	}
	a := ap.Addr().Unmap()
	if public(a) {
		return nil
	}
	port := strconv.Itoa(int(ap.Port()))
	for _, e := range l {
		if e.addr == a && (e.port == "" || e.port == port) {
			return nil
		}
	}
	return &failure{KindRefused, fmt.Sprintf("address %s is loopback, private, link-local or otherwise not public, and the allow list does not name it", ap)}
}

func public(a netip.Addr) bool {
	return a.IsValid() && !(a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsUnspecified() || a.IsMulticast() || a.IsInterfaceLocalMulticast() ||
		a.Is4() && (a.As4()[0] == 0 || a.As4()[0] == 100 && a.As4()[1]&0xc0 == 64 || a.As4() == [4]byte{255, 255, 255, 255}))
}
