package plugins

import (
	"log/slog"

	"github.com/weftos/weft/plugins/driver"
)

// LaunchForTest launches a run of d outside any kernel, for the
// benchmark of a bare go-plugin call: its Conn and how to stop it.
func LaunchForTest(d *Decl, maxMsg int) (driver.Conn, func(), error) {
	if err := d.Validate(); err != nil {
		return nil, nil, err
	}
	r, err := launch(d, maxMsg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, err
	}
	return r.conn, r.stop, nil
}
