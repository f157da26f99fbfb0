package controlapi

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/kernel/pbconv"
	"github.com/weftos/weft/packages"
	"github.com/weftos/weft/packages/install"
	"github.com/weftos/weft/store"
)

// errNoRegistry answers package calls on a node served without a
// registry.
var errNoRegistry = connect.NewError(connect.CodeUnavailable, errors.New("this node serves no package registry"))

func (s *server) InspectPackage(_ context.Context, req *connect.Request[weftv1.InspectPackageRequest]) (*connect.Response[weftv1.InspectPackageResponse], error) {
	if s.reg == nil {
		return nil, errNoRegistry
	}
	zip, err := archive(req.Msg.GetArchive())
	if err != nil {
		return nil, err
	}
	pkg, err := s.reg.Inspect(zip)
	if err != nil {
		return nil, err
	}
	out := &weftv1.InspectPackageResponse{Package: packageInfo(pkg)}
	if cur, ok := s.reg.Get(pkg.ID); ok {
		out.InstalledVersion = cur.Version
	}
	return connect.NewResponse(out), nil
}

func (s *server) InstallPackage(_ context.Context, req *connect.Request[weftv1.InstallPackageRequest]) (*connect.Response[weftv1.InstallPackageResponse], error) {
	if s.reg == nil {
		return nil, errNoRegistry
	}
	zip, err := archive(req.Msg.GetArchive())
	if err != nil {
		return nil, err
	}
	ok := install.Approval{All: req.Msg.GetApproveAll()}
	for i, a := range req.Msg.GetApprove() {
		path := fmt.Sprintf("approve[%d]", i)
		id, err := parseProcess(path+".process", a.GetProcess())
		if err != nil {
			return nil, err
		}
		c, err := pbconv.CapabilityRef(a.GetCapability())
		if err != nil {
			return nil, inField(path, err)
		}
		ok.Capabilities = append(ok.Capabilities, packages.CapabilityRequest{Process: id, Capability: c})
	}
	pkg, already, err := s.reg.Install(zip, ok)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&weftv1.InstallPackageResponse{Package: packageInfo(pkg), AlreadyInstalled: already}), nil
}

func (s *server) ListPackages(_ context.Context, _ *connect.Request[weftv1.ListPackagesRequest]) (*connect.Response[weftv1.ListPackagesResponse], error) {
	if s.reg == nil {
		return nil, errNoRegistry
	}
	var out []*weftv1.PackageInfo
	for _, p := range s.reg.List() {
		out = append(out, packageInfo(p))
	}
	return connect.NewResponse(&weftv1.ListPackagesResponse{Packages: out}), nil
}

func (s *server) UninstallPackage(ctx context.Context, req *connect.Request[weftv1.UninstallPackageRequest]) (*connect.Response[weftv1.UninstallPackageResponse], error) {
	id, err := kernel.ParsePackageId(req.Msg.GetPackage())
	if err != nil {
		return nil, field("package", err)
	}
	if s.reg == nil {
		return nil, errNoRegistry
	}
	purge := req.Msg.GetPurge()
	removed, err := s.reg.Uninstall(ctx, id)
	notInstalled := errors.Is(err, install.ErrNotInstalled)
	if err != nil && !(purge && notInstalled) {
		return nil, err
	}
	out := &weftv1.UninstallPackageResponse{}
	for _, p := range removed {
		out.Processes = append(out.Processes, p.String())
	}
	if purge {
		if out.Databases, out.Drives, err = s.purge(id.String()); err != nil {
			return nil, err
		}
		if notInstalled && len(out.Databases) == 0 && len(out.Drives) == 0 {
			return nil, fmt.Errorf("purge %s: %w: and it has no databases or drives", id, install.ErrNotInstalled)
		}
	}
	return connect.NewResponse(out), nil
}

// purge drops every database and removes every drive of pkg, revoking
// the capabilities on them, and returns their names. A node without
// storage has nothing to purge.
func (s *server) purge(pkg string) (dbs, drives []string, err error) {
	if s.st != nil {
		names, err := s.st.DBs(pkg)
		if err != nil {
			return nil, nil, blame(err, "package", "")
		}
		for _, db := range names {
			if _, err := s.ps.DropDB(pkg, db); err != nil && !errors.Is(err, store.ErrNoDB) {
				return dbs, nil, fmt.Errorf("purge %s: database %s: %w", pkg, db, err)
			}
			dbs = append(dbs, db)
		}
	}
	if s.drives != nil {
		names, err := s.drives.List(pkg)
		if err != nil {
			return dbs, nil, driveErr(err, "package")
		}
		for _, d := range names {
			if _, err := s.ps.RemoveDrive(pkg, d); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return dbs, drives, fmt.Errorf("purge %s: drive %s: %w", pkg, d, err)
			}
			drives = append(drives, d)
		}
	}
	return dbs, drives, nil
}

// archive returns the zip of a package archive, refusing none.
func archive(a *weftv1.PackageArchive) ([]byte, error) {
	if len(a.GetZip()) == 0 {
		return nil, field("archive.zip", errors.New("missing: send the package as a zip archive"))
	}
	return a.GetZip(), nil
}

// packageInfo is the API's form of a package. It lives here, not in
// kernel/pbconv, because a package is the registry's record, not a kernel
// type; the kernel values inside it convert through pbconv.
func packageInfo(p install.Installed) *weftv1.PackageInfo {
	out := &weftv1.PackageInfo{
		Id:        p.ID.String(),
		Version:   p.Version,
		Requested: requested(p.Requested),
		Approved:  requested(p.Approved),
	}
	for _, id := range p.Processes {
		out.Processes = append(out.Processes, id.String())
	}
	if !p.Installed.IsZero() {
		out.Installed = timestamppb.New(p.Installed)
	}
	return out
}

func requested(rs []packages.CapabilityRequest) []*weftv1.RequestedCapability {
	var out []*weftv1.RequestedCapability
	for _, r := range rs {
		out = append(out, &weftv1.RequestedCapability{
			Process:    r.Process.String(),
			Capability: pbconv.UnsignedCapability(r.Capability),
		})
	}
	return out
}
