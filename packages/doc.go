// Package packages loads a weft package — a directory or a zip file holding
// metadata.json, manifest.json and Wasm modules — and validates all of it
// (names, version, manifest, capabilities, paths, sizes, every module's
// exports) before anything is installed or started. It owns the package
// formats; it neither installs nor runs anything.
//
// # Formats
//
// metadata.json (every field required, no other field allowed):
//
//	{"package_name": "echo", "publisher": "examples", "version": "0.1.0"}
//
// package_name and publisher follow the kernel's name rules
// (kernel.PackageId.Validate); the publisher weft is reserved for the
// node (sys:weft, drivers:weft). The
// version is MAJOR.MINOR.PATCH, optionally followed by -PRE: each of MAJOR,
// MINOR and PATCH is a decimal number without leading zeros (0 itself is
// fine) of at most 9 digits; PRE is one or more dot-separated identifiers of
// [0-9A-Za-z-], none empty, and a purely numeric one has no leading zeros
// (SemVer 2.0.0 §9). Build metadata (+...) is refused. At most
// MaxVersionLen bytes.
//
// manifest.json is a JSON array of 1 to Limits.ProcessesPerPackage
// processes (Kinode's fields; docs/manifest.md is the reference):
//
//	{
//	  "process_name": "echo",
//	  "process_wasm_path": "/echo.wasm",
//	  "on_exit": "Restart" | "None" | {"Requests": [{"target": "our@x:y:z", "body": "<base64>", "metadata": "..."}]},
//	  "request_networking": false,
//	  "request_capabilities": ["x:y:z", {"process": "x:y:z", "params": <JSON>}],
//	  "grant_capabilities": ["x:y:z", {"process": "x:y:z", "params": <JSON>}],
//	  "public": true
//	}
//
// process_name and process_wasm_path are required; on_exit defaults to
// "None", the others to false or empty. An on_exit request's body is
// base64 (standard, padded) and may be omitted; its target is an address
// (node@name:package:publisher, node may be "our"). JSON field names match exactly (not
// case-insensitively, as encoding/json would), and unknown or duplicate
// fields are refused at every level.
//
// A request_capabilities string "x:y:z" asks for x:y:z's messaging
// capability; an object asks for the capability issued by "process" (a
// process id on this node, or an address node@name:package:publisher) with
// those params. A grant_capabilities string "x:y:z" gives process x:y:z
// this process's messaging capability; an object gives process "process"
// (on this node) the capability issued by this process with those params.
// Params are kept in canonical form (kernel.CanonicalParams).
//
// process_wasm_path names a module inside the package: an optional leading
// "/", then slash-separated segments, none empty, "." or "..", with no
// backslash, colon or control character, ending in ".wasm".
//
// # Modules
//
// Every file whose name ends in ".wasm" is a module (a process may spawn a
// child from any module of its package), and each must be at most
// Limits.MaxModuleBytes, compile (wazero, compiled only, never
// instantiated), ask for no more memory than Limits.MemoryPerProcess, and
// export what docs/abi.md requires: memory "memory", func "init" () -> i32
// and, for the ABI versions N it declares, funcs "weft_abi_vN" () -> (),
// at least one of a version this node speaks (ABIVersions). Other files
// are ignored but counted against MaxPackageBytes and MaxFiles.
//
// # Errors
//
// A package that is refused for its content yields an *Error naming the
// file and the field; processes are counted from 1, list indices from 0:
//
//	manifest.json: process 2 ("chain"): request_capabilities[0]: invalid process name in "Bad:x:y": ...
package packages
