package controlapi

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/api/weftv1/weftv1connect"
	"github.com/weftos/weft/backup"
	"github.com/weftos/weft/internal/echoed"
)

// mutating lists the procedures that change the node: each call to one
// writes an audit line.
var mutating = map[string]bool{
	weftv1connect.PackageServiceInstallPackageProcedure:      true,
	weftv1connect.PackageServiceUninstallPackageProcedure:    true,
	weftv1connect.ProcessServiceKillProcessProcedure:         true,
	weftv1connect.ProcessServiceRestartProcessProcedure:      true,
	weftv1connect.MessageServiceSendProcedure:                true,
	weftv1connect.CapabilityServiceGrantCapabilityProcedure:  true,
	weftv1connect.CapabilityServiceRevokeCapabilityProcedure: true,
	weftv1connect.StoreServiceKVSetProcedure:                 true,
	weftv1connect.StoreServiceKVDeleteProcedure:              true,
	weftv1connect.StoreServiceDropDatabaseProcedure:          true,
	weftv1connect.StoreServiceRemoveDriveProcedure:           true,
	weftv1connect.DriverServiceRestartDriverProcedure:        true,
	weftv1connect.BackupServiceInitBackupsProcedure:          true,
	weftv1connect.BackupServiceRunBackupProcedure:            true,
	weftv1connect.BackupServiceVerifyBackupsProcedure:        true,
	weftv1connect.BackupServiceForgetSnapshotsProcedure:      true,
	weftv1connect.BackupServicePruneBackupsProcedure:         true,
	weftv1connect.BackupServiceAddBackupKeyProcedure:         true,
	weftv1connect.BackupServiceRemoveBackupKeyProcedure:      true,
	weftv1connect.PeerServiceConnectPeerProcedure:            true,
	weftv1connect.PeerServiceDisconnectPeerProcedure:         true,
	weftv1connect.PeerServicePingPeerProcedure:               true,
	weftv1connect.PeerServiceSetAliasProcedure:               true,
	weftv1connect.PeerServiceRemoveAliasProcedure:            true,
}

// auditInterceptor writes one line at Info, message "audit", for every
// call to a mutating procedure: the procedure, the peer (see ConnContext),
// the call's key arguments and its outcome, "ok" or the code the client
// got.
type auditInterceptor struct{ log *slog.Logger }

func (a auditInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		procedure := req.Spec().Procedure
		if !mutating[procedure] {
			return next(ctx, req)
		}
		res, err := next(ctx, req)
		attrs := []slog.Attr{slog.String("procedure", procedure), peerAttr(ctx)}
		var resMsg any
		if res != nil {
			resMsg = res.Any()
		}
		attrs = append(attrs, auditArgs(req.Any(), resMsg)...)
		outcome := "ok"
		if err != nil {
			outcome = connect.CodeOf(err).String()
		}
		attrs = append(attrs, slog.String("outcome", outcome))
		a.log.LogAttrs(ctx, slog.LevelInfo, "audit", attrs...)
		return res, err
	}
}

func (a auditInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler audits the mutating streams (RunBackup) by
// procedure, peer and outcome, and passes the others (Tap) through.
func (a auditInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		procedure := conn.Spec().Procedure
		if !mutating[procedure] {
			return next(ctx, conn)
		}
		err := next(ctx, conn)
		outcome := "ok"
		if err != nil {
			outcome = connect.CodeOf(err).String()
		}
		a.log.LogAttrs(ctx, slog.LevelInfo, "audit", slog.String("procedure", procedure), peerAttr(ctx), slog.String("outcome", outcome))
		return err
	}
}

// auditArgs are the key arguments of a mutating call (res is nil when it
// failed). Bodies, blobs and archives are logged by size only; names and
// other strings of the request, by echoed.
func auditArgs(req, res any) []slog.Attr {
	switch m := req.(type) {
	case *weftv1.InstallPackageRequest:
		attrs := []slog.Attr{
			slog.Int("archive_bytes", len(m.GetArchive().GetZip())),
			slog.Bool("approve_all", m.GetApproveAll()),
			slog.Int("approve", len(m.GetApprove())),
		}
		if r, ok := res.(*weftv1.InstallPackageResponse); ok {
			attrs = append(attrs,
				slog.String("package", r.GetPackage().GetId()),
				slog.String("version", r.GetPackage().GetVersion()),
				slog.Bool("already_installed", r.GetAlreadyInstalled()))
		}
		return attrs
	case *weftv1.UninstallPackageRequest:
		attrs := []slog.Attr{echoAttr("package", m.GetPackage()), slog.Bool("purge", m.GetPurge())}
		if r, ok := res.(*weftv1.UninstallPackageResponse); ok && m.GetPurge() {
			attrs = append(attrs, slog.Any("databases", r.GetDatabases()), slog.Any("drives", r.GetDrives()))
		}
		return attrs
	case *weftv1.KillProcessRequest:
		return []slog.Attr{echoAttr("process", m.GetProcess())}
	case *weftv1.RestartProcessRequest:
		return []slog.Attr{echoAttr("process", m.GetProcess())}
	case *weftv1.SendRequest:
		attrs := []slog.Attr{
			echoAttr("target", m.GetTarget()),
			slog.Int("body_bytes", len(m.GetRequest().GetBody())),
			slog.Int("capabilities", len(m.GetRequest().GetCapabilities())),
		}
		if r, ok := res.(*weftv1.SendResponse); ok {
			attrs = append(attrs, slog.Uint64("id", r.GetId()))
			if e := r.GetError(); e != nil {
				attrs = append(attrs, slog.String("send_error", e.GetKind().String()))
			}
		}
		return attrs
	case *weftv1.GrantCapabilityRequest:
		return []slog.Attr{
			echoAttr("process", m.GetProcess()),
			echoAttr("issuer", m.GetCapability().GetIssuer()),
			echoAttr("params", m.GetCapability().GetParams()),
		}
	case *weftv1.KVSetRequest:
		attrs := []slog.Attr{
			echoAttr("package", m.GetPackage()),
			echoAttr("database", m.GetDatabase()),
			slog.Int("key_bytes", len(m.GetKey())),
			slog.Int("value_bytes", len(m.GetValue())),
		}
		if r, ok := res.(*weftv1.KVSetResponse); ok {
			attrs = append(attrs, slog.Bool("created", r.GetCreated()))
		}
		return attrs
	case *weftv1.KVDeleteRequest:
		return []slog.Attr{
			echoAttr("package", m.GetPackage()),
			echoAttr("database", m.GetDatabase()),
			slog.Int("key_bytes", len(m.GetKey())),
		}
	case *weftv1.DropDatabaseRequest:
		attrs := []slog.Attr{echoAttr("package", m.GetPackage()), echoAttr("database", m.GetDatabase())}
		if r, ok := res.(*weftv1.DropDatabaseResponse); ok {
			attrs = append(attrs, slog.Int("revoked", int(r.GetRevoked())))
		}
		return attrs
	case *weftv1.RemoveDriveRequest:
		attrs := []slog.Attr{echoAttr("package", m.GetPackage()), echoAttr("drive", m.GetDrive())}
		if r, ok := res.(*weftv1.RemoveDriveResponse); ok {
			attrs = append(attrs, slog.Int("revoked", int(r.GetRevoked())))
		}
		return attrs
	case *weftv1.RestartDriverRequest:
		return []slog.Attr{echoAttr("driver", m.GetName())}
	case *weftv1.InitBackupsRequest:
		return []slog.Attr{slog.Int("recipients", len(m.GetRecipients()))}
	case *weftv1.VerifyBackupsRequest:
		return []slog.Attr{slog.Int("targets", len(m.GetTargets())), slog.Bool("read_data", m.GetReadData())}
	case *weftv1.ForgetSnapshotsRequest:
		return []slog.Attr{slog.Int("targets", len(m.GetTargets())), slog.Bool("dry_run", m.GetDryRun()),
			slog.Any("keep", []uint32{m.GetKeepLast(), m.GetKeepHourly(), m.GetKeepDaily(), m.GetKeepWeekly(), m.GetKeepMonthly(), m.GetKeepYearly()})}
	case *weftv1.PruneBackupsRequest:
		return []slog.Attr{slog.Int("targets", len(m.GetTargets()))}
	case *weftv1.AddBackupKeyRequest:
		// The recipient only if it is one: a secret key or passphrase
		// sent in its place stays out of the log.
		if _, err := backup.ParseRecipient(m.GetRecipient()); err != nil {
			return []slog.Attr{slog.Int("recipient_bytes", len(m.GetRecipient()))}
		}
		return []slog.Attr{echoAttr("recipient", m.GetRecipient())}
	case *weftv1.RemoveBackupKeyRequest:
		return []slog.Attr{echoAttr("target", m.GetTarget()), echoAttr("id", m.GetId())}
	case *weftv1.ConnectPeerRequest:
		attrs := []slog.Attr{echoAttr("addr", m.GetAddr())}
		if r, ok := res.(*weftv1.ConnectPeerResponse); ok {
			attrs = append(attrs, slog.String("node", r.GetNodeId()))
		}
		return attrs
	case *weftv1.DisconnectPeerRequest:
		return []slog.Attr{echoAttr("node", m.GetNode())}
	case *weftv1.PingPeerRequest:
		return []slog.Attr{echoAttr("node", m.GetNode())}
	case *weftv1.SetAliasRequest:
		return []slog.Attr{echoAttr("alias", m.GetName()), echoAttr("node", m.GetNode())}
	case *weftv1.RemoveAliasRequest:
		return []slog.Attr{echoAttr("alias", m.GetName())}
	case *weftv1.RevokeCapabilityRequest:
		return []slog.Attr{
			echoAttr("issuer", m.GetCapability().GetIssuer()),
			echoAttr("params", m.GetCapability().GetParams()),
		}
	}
	return nil
}

// echoAttr is a string of the request as the audit line repeats it: cut by
// echoed.Truncate, as the client may have sent any length.
func echoAttr(key, value string) slog.Attr { return slog.String(key, echoed.Truncate(value)) }
