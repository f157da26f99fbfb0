// Package install starts the processes of a loaded package
// (packages.Package, already validated in full by packages.Load) on a
// kernel, through a Wasm host, with the capabilities its user approved.
// It owns the install step: compiling every module, choosing each
// process's capabilities, applying the package's grants, undoing a
// partial install, and the Data record a process is persisted with; and,
// in Registry, the node's installed packages: their archives and install
// records on disk, and their processes after a restart. It does not load
// packages (packages does).
//
// # Order
//
// Before anything starts, Start checks the approval (below), that no
// process of the package is already on the node (kernel.ErrExists),
// every grant target (below), that the Wasm host accepts every module of
// the package (wasm.CheckModule: a module importing what the node does
// not provide is a *packages.Error naming the module), and compiles
// every module (any that fails to compile fails the install, naming it).
// (Registry.Inspect and Registry.Install make the same module check right
// after loading the archive, before anything is written.) Start then
// starts every process of the manifest in manifest order, applies the
// grants, and only then lets the processes run: until every process of
// the package is in the table and every grant is in place, each process
// waits before its init is called (messages sent to it meanwhile wait in
// its mailbox), so no process of the package finds another missing. If
// anything fails after the first process started, Start removes
// (kernel.Kernel.Remove) every process it started and revokes the grants
// it made, so nothing half-installed remains, and returns the error.
//
// # Approval
//
// A process holds, from the start, exactly the capabilities it requested
// (packages.Package.Requested: the network capability for
// request_networking, then request_capabilities) that its user approved:
// all of them when Approval.All is set, otherwise those listed in
// Approval.Capabilities. A capability requested but not approved is not
// held; one approved but not requested (by that process) is refused with
// ErrNotRequested before anything compiles or starts. The approval's
// issuer may name this node by its id or as "our"; params are compared in
// canonical form.
//
// Grants need no approval: they give away capabilities the package's own
// processes issue. grant_capabilities "x:y:z" (packages.Process.GrantTo)
// gives process x:y:z the granting process's messaging capability; the
// object form (packages.Process.GrantCapabilities) gives process "process"
// the capability issued by the granting process with those params. A
// grant's target must be a process of the package or a process already on
// the node: the kernel keeps capabilities only for processes in its table,
// and a grant silently dropped or left pending would make a package work
// or not depending on install order. A target that is neither refuses the
// install with ErrGrantTarget before anything starts. A grant to a process outside the
// package is persisted with that process's record (if it is persisted).
//
// # Data
//
// Every process is started with kernel.Spec.Persist set, so it is in the
// persisted process table, and with Spec.Data set to this JSON object,
// from which Registry.Restore makes the process again after a restart
// (kernel.Kernel.Restore, its Resolver):
//
//	{"package": "echo:examples", "version": "0.1.0", "wasm_path": "echo.wasm"}
//
// package is the package id (package:publisher), version its metadata's
// version, wasm_path the process's module: its key in
// packages.Package.Modules (relative, no leading "/"). ParseData decodes it
// (refusing unknown fields); the Registry keeps the package's files and
// resolves spawns within the same package, as Start does.
//
// # Registry
//
// A Registry keeps, in its directory (mode 0700), for package p:pub its
// archive p@pub.zip, the zip exactly as uploaded, and its install record
// p@pub.json (files 0600; names are [a-z0-9-] and publishers add '.', so
// '@' cannot be mistaken):
//
//	{"id": "echo:examples", "version": "0.1.0", "state": "installed",
//	 "processes": ["echo:echo:examples"], "requested": [...], "approved": [...],
//	 "grants": [...], "installed": "2026-01-02T15:04:05Z", "archive_sha256": "..."}
//
// Capabilities in it are {"process", "issuer", "params"}: the requesting
// process (for grants, the holder), the issuer's address and the
// canonical params. Every file is written crash-safely: a temporary file
// (.tmp-*), fsync, rename, fsync of the directory.
//
// Install writes the archive, then the record in state "installing", then
// starts the processes (Start), then rewrites the record as "installed".
// Uninstall rewrites it as "removing" first, then removes the processes
// and revokes the install's grants, then deletes the archive and the
// record. OpenRegistry deletes temporary files, archives without a
// record and the archives of records not "installed"; Restore (or the
// next Install of that package) forgets those records' processes
// (kernel.Kernel.Forget), revokes their grants and deletes the records.
// So a crash at any point leaves, after OpenRegistry and Restore, either
// the whole install (or uninstall) or nothing of it.
package install
