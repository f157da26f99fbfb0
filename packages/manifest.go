package packages

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/weftos/weft/internal/echoed"
	"github.com/weftos/weft/kernel"
)

// ParseMetadata parses and validates metadata.json. Errors are *Error.
func ParseMetadata(data []byte) (kernel.PackageId, string, error) {
	id, version, err := parseMetadata(data)
	if err != nil {
		return kernel.PackageId{}, "", &Error{File: MetadataFile, Err: err}
	}
	return id, version, nil
}

func parseMetadata(data []byte) (kernel.PackageId, string, error) {
	raw, err := decodeJSON(data)
	if err != nil {
		return kernel.PackageId{}, "", err
	}
	m, err := object(raw, "package_name", "publisher", "version")
	if err != nil {
		return kernel.PackageId{}, "", err
	}
	var id kernel.PackageId
	var version string
	for _, f := range []struct {
		name string
		dst  *string
	}{{"package_name", &id.Package}, {"publisher", &id.Publisher}, {"version", &version}} {
		v, ok := m[f.name]
		if !ok {
			return kernel.PackageId{}, "", fmt.Errorf("%s: missing", f.name)
		}
		if *f.dst, err = jsonString(v); err != nil {
			return kernel.PackageId{}, "", fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if err := id.Validate(); err != nil {
		var ne *kernel.NameError
		if errors.As(err, &ne) && ne.Part == "package" {
			return kernel.PackageId{}, "", fmt.Errorf("package_name: %w", err)
		}
		return kernel.PackageId{}, "", fmt.Errorf("publisher: %w", err)
	}
	if id.Publisher == ReservedPublisher {
		return kernel.PackageId{}, "", fmt.Errorf("publisher: %q is reserved for the node's own packages (%s)", ReservedPublisher, id)
	}
	if err := ValidateVersion(version); err != nil {
		return kernel.PackageId{}, "", fmt.Errorf("version: %w", err)
	}
	return id, version, nil
}

// ValidateVersion checks a package version: MAJOR.MINOR.PATCH[-PRE] as the
// package documentation describes.
func ValidateVersion(v string) error {
	if len(v) > MaxVersionLen {
		return fmt.Errorf("%d bytes long, at most %d allowed", len(v), MaxVersionLen)
	}
	core, pre, hasPre := strings.Cut(v, "-")
	nums := strings.Split(core, ".")
	if len(nums) != 3 {
		return fmt.Errorf("%q is not MAJOR.MINOR.PATCH[-PRE]", v)
	}
	for i, n := range nums {
		if err := checkNumber(n, 9); err != nil {
			return fmt.Errorf("%q: %s %w", v, []string{"major", "minor", "patch"}[i], err)
		}
	}
	if !hasPre {
		return nil
	}
	for _, id := range strings.Split(pre, ".") {
		if id == "" {
			return fmt.Errorf("%q: empty pre-release identifier", v)
		}
		numeric := true
		for i := 0; i < len(id); i++ {
			c := id[i]
			switch {
			case '0' <= c && c <= '9':
			case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '-':
				numeric = false
			default:
				return fmt.Errorf("%q: character %q is not allowed in a pre-release (only [0-9A-Za-z-] and '.')", v, c)
			}
		}
		if numeric && len(id) > 1 && id[0] == '0' {
			return fmt.Errorf("%q: numeric pre-release identifier %q has a leading zero", v, id)
		}
	}
	return nil
}

func checkNumber(n string, maxDigits int) error {
	if n == "" {
		return errors.New("is empty")
	}
	if len(n) > maxDigits {
		return fmt.Errorf("has more than %d digits", maxDigits)
	}
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return fmt.Errorf("%q is not a decimal number", n)
		}
	}
	if len(n) > 1 && n[0] == '0' {
		return fmt.Errorf("%q has a leading zero", n)
	}
	return nil
}

// ParseManifest parses and validates manifest.json for package pkg. It
// does not look at the modules. Errors are *Error.
func ParseManifest(data []byte, pkg kernel.PackageId, lim kernel.Limits) ([]Process, error) {
	lim = lim.WithDefaults()
	procs, err := parseManifest(data, pkg, lim)
	if err != nil {
		return nil, &Error{File: ManifestFile, Err: err}
	}
	return procs, nil
}

func parseManifest(data []byte, pkg kernel.PackageId, lim kernel.Limits) ([]Process, error) {
	if err := pkg.Validate(); err != nil {
		return nil, fmt.Errorf("package: %w", err)
	}
	raw, err := decodeJSON(data)
	if err != nil {
		return nil, err
	}
	entries, err := jsonArray(raw)
	if err != nil {
		return nil, err
	}
	switch {
	case len(entries) == 0:
		return nil, errors.New("lists no process")
	case len(entries) > lim.ProcessesPerPackage:
		return nil, fmt.Errorf("lists %d processes, at most %d allowed (processes_per_package)", len(entries), lim.ProcessesPerPackage)
	}
	procs := make([]Process, 0, len(entries))
	for i, e := range entries {
		p, err := parseProcess(e, pkg, lim)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", processLabel(i, p.Name), err)
		}
		if j := slices.IndexFunc(procs, func(q Process) bool { return q.Name == p.Name }); j >= 0 {
			return nil, fmt.Errorf("%s: process_name: same as process %d", processLabel(i, p.Name), j+1)
		}
		procs = append(procs, p)
	}
	return procs, nil
}

// parseProcess parses one manifest entry. On error, the returned Process
// holds the name when it was read.
func parseProcess(raw json.RawMessage, pkg kernel.PackageId, lim kernel.Limits) (Process, error) {
	var p Process
	m, err := object(raw, "process_name", "process_wasm_path", "on_exit", "request_networking",
		"request_capabilities", "grant_capabilities", "public")
	if err != nil {
		if v, ok := m["process_name"]; ok {
			if name, err := jsonString(v); err == nil && utf8.ValidString(name) && len(name) <= kernel.MaxNameLen {
				p.Name = name // for the error's label
			}
		}
		return p, err
	}

	v, ok := m["process_name"]
	if !ok {
		return p, errors.New("process_name: missing")
	}
	name, err := jsonString(v)
	if err != nil {
		return p, fmt.Errorf("process_name: %w", err)
	}
	if utf8.ValidString(name) && len(name) <= kernel.MaxNameLen {
		p.Name = name // for the error's label, even when invalid
	}
	p.ID = kernel.ProcessId{Name: name, Package: pkg.Package, Publisher: pkg.Publisher}
	if err := p.ID.Validate(); err != nil {
		return p, fmt.Errorf("process_name: %w", err)
	}
	self := kernel.Address{Node: kernel.OurNode, Process: p.ID}

	v, ok = m["process_wasm_path"]
	if !ok {
		return p, errors.New("process_wasm_path: missing")
	}
	s, err := jsonString(v)
	if err != nil {
		return p, fmt.Errorf("process_wasm_path: %w", err)
	}
	if p.WasmPath, err = CleanWasmPath(s); err != nil {
		return p, fmt.Errorf("process_wasm_path: %w", err)
	}

	if v, ok := m["on_exit"]; ok {
		if p.OnExit, err = parseOnExit(v, lim); err != nil {
			return p, fmt.Errorf("on_exit: %w", err)
		}
	}
	if v, ok := m["request_networking"]; ok {
		if p.RequestNetworking, err = jsonBool(v); err != nil {
			return p, fmt.Errorf("request_networking: %w", err)
		}
	}
	if v, ok := m["public"]; ok {
		if p.Public, err = jsonBool(v); err != nil {
			return p, fmt.Errorf("public: %w", err)
		}
	}
	if v, ok := m["request_capabilities"]; ok {
		if p.RequestCapabilities, err = parseRequests(v, lim); err != nil {
			return p, fmt.Errorf("request_capabilities%w", err)
		}
	}
	if v, ok := m["grant_capabilities"]; ok {
		if p.GrantTo, p.GrantCapabilities, err = parseGrants(v, self, lim); err != nil {
			return p, fmt.Errorf("grant_capabilities%w", err)
		}
	}
	return p, nil
}

// capEntry is one entry of request_capabilities or grant_capabilities:
// either a bare process id (messaging) or {"process", "params"}.
type capEntry struct {
	process string
	params  string // canonical; empty for the bare form
}

// parseCapList parses a capability list. Its errors start with "[i]: " or
// ": " so that the caller can put the field's name in front.
func parseCapList(raw json.RawMessage, lim kernel.Limits) ([]capEntry, error) {
	items, err := jsonArray(raw)
	if err != nil {
		return nil, fmt.Errorf(": %w", err)
	}
	if len(items) > MaxCapabilitiesPerProcess {
		return nil, fmt.Errorf(": %d entries, at most %d allowed", len(items), MaxCapabilitiesPerProcess)
	}
	out := make([]capEntry, 0, len(items))
	for i, it := range items {
		e, err := parseCapEntry(it, lim)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func parseCapEntry(raw json.RawMessage, lim kernel.Limits) (capEntry, error) {
	if jsonKind(raw) == "string" {
		s, err := jsonString(raw)
		return capEntry{process: s}, err
	}
	if jsonKind(raw) != "object" {
		return capEntry{}, fmt.Errorf("want a process id string or {\"process\", \"params\"}, got %s", jsonKind(raw))
	}
	m, err := object(raw, "process", "params")
	if err != nil {
		return capEntry{}, err
	}
	var e capEntry
	v, ok := m["process"]
	if !ok {
		return capEntry{}, errors.New("process: missing")
	}
	if e.process, err = jsonString(v); err != nil {
		return capEntry{}, fmt.Errorf("process: %w", err)
	}
	v, ok = m["params"]
	if !ok {
		return capEntry{}, errors.New("params: missing")
	}
	if e.params, err = kernel.CanonicalParams(string(v), lim.MaxCapabilityParamsBytes); err != nil {
		return capEntry{}, fmt.Errorf("params: %w", err)
	}
	return e, nil
}

func parseRequests(raw json.RawMessage, lim kernel.Limits) ([]kernel.Capability, error) {
	entries, err := parseCapList(raw, lim)
	if err != nil {
		return nil, err
	}
	var out []kernel.Capability
	for i, e := range entries {
		c := kernel.Capability{Params: e.params}
		if e.params == "" {
			c.Params = kernel.MessagingParams
			pid, err := kernel.ParseProcessId(e.process)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			c.Issuer = kernel.Address{Node: kernel.OurNode, Process: pid}
		} else if strings.Contains(e.process, "@") {
			if c.Issuer, err = kernel.ParseAddress(e.process); err != nil {
				return nil, fmt.Errorf("[%d]: process: %w", i, err)
			}
		} else {
			pid, err := kernel.ParseProcessId(e.process)
			if err != nil {
				return nil, fmt.Errorf("[%d]: process: %w", i, err)
			}
			c.Issuer = kernel.Address{Node: kernel.OurNode, Process: pid}
		}
		if j := slices.Index(out, c); j >= 0 {
			return nil, fmt.Errorf("[%d]: same capability as [%d]", i, j)
		}
		out = append(out, c)
	}
	return out, nil
}

func parseGrants(raw json.RawMessage, self kernel.Address, lim kernel.Limits) ([]kernel.ProcessId, []Grant, error) {
	entries, err := parseCapList(raw, lim)
	if err != nil {
		return nil, nil, err
	}
	var to []kernel.ProcessId
	var grants []Grant
	for i, e := range entries {
		field := ""
		if e.params != "" {
			field = "process: "
		}
		pid, err := parseLocalProcess(e.process)
		if err != nil {
			return nil, nil, fmt.Errorf("[%d]: %s%w", i, field, err)
		}
		if e.params == "" {
			if slices.Contains(to, pid) {
				return nil, nil, fmt.Errorf("[%d]: %s is listed twice", i, pid)
			}
			to = append(to, pid)
			continue
		}
		g := Grant{To: pid, Capability: kernel.Capability{Issuer: self, Params: e.params}}
		if slices.Contains(grants, g) {
			return nil, nil, fmt.Errorf("[%d]: the same grant is listed twice", i)
		}
		grants = append(grants, g)
	}
	return to, grants, nil
}

// parseLocalProcess parses name:package:publisher or our@name:package:publisher.
func parseLocalProcess(s string) (kernel.ProcessId, error) {
	if !strings.Contains(s, "@") {
		return kernel.ParseProcessId(s)
	}
	a, err := kernel.ParseAddress(s)
	if err != nil {
		return kernel.ProcessId{}, err
	}
	if a.Node != kernel.OurNode {
		return kernel.ProcessId{}, fmt.Errorf("%q: capabilities are granted on install to processes of this node only (node %q)", echoed.Truncate(s), kernel.OurNode)
	}
	return a.Process, nil
}

func parseOnExit(raw json.RawMessage, lim kernel.Limits) (kernel.OnExit, error) {
	switch jsonKind(raw) {
	case "string":
		s, _ := jsonString(raw)
		switch s {
		case "None":
			return kernel.OnExit{Kind: kernel.OnExitNone}, nil
		case "Restart":
			return kernel.OnExit{Kind: kernel.OnExitRestart}, nil
		}
		return kernel.OnExit{}, fmt.Errorf(`unknown policy %q (want "None", "Restart" or {"Requests": [...]})`, echoed.Truncate(s))
	case "object":
	default:
		return kernel.OnExit{}, fmt.Errorf(`want "None", "Restart" or {"Requests": [...]}, got %s`, jsonKind(raw))
	}
	m, err := object(raw, "Requests")
	if err != nil {
		return kernel.OnExit{}, err
	}
	v, ok := m["Requests"]
	if !ok {
		return kernel.OnExit{}, errors.New("Requests: missing")
	}
	items, err := jsonArray(v)
	if err != nil {
		return kernel.OnExit{}, fmt.Errorf("Requests: %w", err)
	}
	if len(items) > kernel.MaxExitRequests {
		return kernel.OnExit{}, fmt.Errorf("Requests: %d requests, at most %d allowed", len(items), kernel.MaxExitRequests)
	}
	out := kernel.OnExit{Kind: kernel.OnExitRequests}
	for i, it := range items {
		r, err := parseExitRequest(it, lim)
		if err != nil {
			return kernel.OnExit{}, fmt.Errorf("Requests[%d]: %w", i, err)
		}
		out.Requests = append(out.Requests, r)
	}
	return out, nil
}

func parseExitRequest(raw json.RawMessage, lim kernel.Limits) (kernel.ExitRequest, error) {
	m, err := object(raw, "target", "body", "metadata")
	if err != nil {
		return kernel.ExitRequest{}, err
	}
	var r kernel.ExitRequest
	v, ok := m["target"]
	if !ok {
		return r, errors.New("target: missing")
	}
	s, err := jsonString(v)
	if err != nil {
		return r, fmt.Errorf("target: %w", err)
	}
	if r.Target, err = kernel.ParseAddress(s); err != nil {
		return r, fmt.Errorf("target: %w", err)
	}
	if v, ok := m["body"]; ok {
		if jsonKind(v) != "string" {
			return r, fmt.Errorf("body: want a base64 string, got %s", jsonKind(v))
		}
		if err := json.Unmarshal(v, &r.Body); err != nil {
			return r, fmt.Errorf("body: not base64: %w", err)
		}
		if len(r.Body) > lim.MaxBodyBytes {
			return r, fmt.Errorf("body: %d bytes, at most %d allowed (max_body_bytes)", len(r.Body), lim.MaxBodyBytes)
		}
	}
	if v, ok := m["metadata"]; ok {
		if r.Metadata, err = jsonString(v); err != nil {
			return r, fmt.Errorf("metadata: %w", err)
		}
		if len(r.Metadata) > lim.MaxMetadataBytes {
			return r, fmt.Errorf("metadata: %d bytes, at most %d allowed (max_metadata_bytes)", len(r.Metadata), lim.MaxMetadataBytes)
		}
	}
	return r, nil
}

// CleanWasmPath checks a module path from a manifest and returns it
// relative to the package root, without the optional leading "/". The
// rules are in the package documentation.
func CleanWasmPath(p string) (string, error) {
	if len(p) > MaxWasmPathLen {
		return "", fmt.Errorf("path is %d bytes long, at most %d allowed", len(p), MaxWasmPathLen)
	}
	rel := strings.TrimPrefix(p, "/")
	echo := echoed.Truncate(p) // for the errors
	if rel == "" {
		return "", fmt.Errorf("%q names no file", echo)
	}
	for i := 0; i < len(rel); i++ {
		switch c := rel[i]; {
		case c == '\\':
			return "", fmt.Errorf("%q holds a backslash; separate directories with '/'", echo)
		case c == ':':
			return "", fmt.Errorf("%q holds a ':'", echo)
		case c < 0x20 || c == 0x7f:
			return "", fmt.Errorf("%q holds control character %q", echo, c)
		}
	}
	if !utf8.ValidString(rel) {
		return "", fmt.Errorf("%q is not valid UTF-8", echo)
	}
	for _, seg := range strings.Split(rel, "/") {
		switch seg {
		case "":
			return "", fmt.Errorf("%q has an empty segment (or more than one leading '/')", echo)
		case ".", "..":
			return "", fmt.Errorf("%q has a %q segment; a module path must stay inside the package and be written plainly", echo, seg)
		}
	}
	base := rel[strings.LastIndexByte(rel, '/')+1:]
	if !strings.HasSuffix(base, ".wasm") || base == ".wasm" {
		return "", fmt.Errorf("%q does not name a .wasm file", echo)
	}
	return rel, nil
}

// Strict JSON: field names match exactly, unknown and duplicate fields are
// refused, and values must have the expected JSON type (null included).

// decodeJSON reads exactly one JSON value from data.
func decodeJSON(data []byte) (json.RawMessage, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		if err == io.EOF {
			return nil, errors.New("empty")
		}
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not valid JSON: data after the value")
	}
	return raw, nil
}

// object returns the members of a JSON object, refusing unknown and
// duplicate keys. On such a refusal it returns the known members too (for
// an error message's context), and the first offence.
func object(raw json.RawMessage, known ...string) (map[string]json.RawMessage, error) {
	if k := jsonKind(raw); k != "object" {
		return nil, fmt.Errorf("want a JSON object, got %s", k)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // '{'
		return nil, err
	}
	m := make(map[string]json.RawMessage)
	var offence error
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("object key is %v, not a string", tok)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%s: %w", echoed.Truncate(key), err)
		}
		switch _, dup := m[key]; {
		case offence != nil:
		case !slices.Contains(known, key):
			offence = fmt.Errorf("unknown field %q (known: %s)", echoed.Truncate(key), strings.Join(known, ", "))
		case dup:
			offence = fmt.Errorf("field %q appears twice", key)
		default:
			m[key] = v
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, err
	}
	return m, offence
}

func jsonArray(raw json.RawMessage) ([]json.RawMessage, error) {
	if k := jsonKind(raw); k != "array" {
		return nil, fmt.Errorf("want a JSON array, got %s", k)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, err
	}
	return items, nil
}

func jsonString(raw json.RawMessage) (string, error) {
	if k := jsonKind(raw); k != "string" {
		return "", fmt.Errorf("want a string, got %s", k)
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

func jsonBool(raw json.RawMessage) (bool, error) {
	if k := jsonKind(raw); k != "boolean" {
		return false, fmt.Errorf("want true or false, got %s", k)
	}
	var b bool
	err := json.Unmarshal(raw, &b)
	return b, err
}

// jsonKind names the type of a JSON value by its first byte.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}
