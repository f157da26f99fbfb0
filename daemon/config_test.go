package daemon_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/weftos/weft/backup"
	"github.com/weftos/weft/daemon"
)

// TestDefaultConfigFileIsTheDefaults keeps the documented config file and
// the code's defaults one and the same.
func TestDefaultConfigFileIsTheDefaults(t *testing.T) {
	var got daemon.Config
	if err := daemon.ParseConfig(&got, "weftd.toml", daemon.DefaultConfigFile); err != nil {
		t.Fatal(err)
	}
	want := daemon.DefaultConfig()
	want.Version = ""
	if !reflect.DeepEqual(got, want) {
		t.Errorf("weftd.toml parses to\n%+v\nwant DefaultConfig()\n%+v", got, want)
	}
}

func TestConfigRoundTrip(t *testing.T) {
	cfg := daemon.DefaultConfig()
	cfg.Install = []string{"a", "b"}
	cfg.Limits.GuestCPUTime = 2 * time.Second
	b, err := cfg.MarshalTOML()
	if err != nil {
		t.Fatal(err)
	}
	var back daemon.Config
	if err := daemon.ParseConfig(&back, "printed", b); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	back.Version = cfg.Version
	if !reflect.DeepEqual(back, cfg) {
		t.Errorf("printed config reads back as\n%+v\nwant\n%+v\n%s", back, cfg, b)
	}
}

func TestParseConfigRefuses(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"data_dri = \"/x\"\n", "unknown key data_dri"},
		{"[limits]\nmailbox_lenght = 3\n", "unknown key limits.mailbox_lenght"},
		{"socket = 3\n", "socket"},
		{"log_level = \"loud\"\n", "log_level"},
		{"shutdown_timeout = \"soon\"\n", "shutdown_timeout"},
		{"data_dir = \n", "line 1"},
		{"[backup]\nkey = \"x\"\n", "unknown key backup.key"},
		{"[[backup.targets]]\nname = \"a\"\nsecret_access_key = \"x\"\n", "unknown key backup.targets.secret_access_key"},
	} {
		cfg := daemon.DefaultConfig()
		err := daemon.ParseConfig(&cfg, "f.toml", []byte(tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "f.toml") {
			t.Errorf("ParseConfig(%q) = %v, want an error naming f.toml and %q", tc.file, err, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*daemon.Config)
		want string
	}{
		{"listen without TLS", func(c *daemon.Config) { c.Listen = "127.0.0.1:0" }, "needs tls_cert and tls_key"},
		{"TLS without listen", func(c *daemon.Config) { c.TLSCert = "c" }, "listen is not"},
		{"metrics off loopback", func(c *daemon.Config) { c.MetricsListen = "0.0.0.0:9464" }, "not a loopback address"},
		{"bad log format", func(c *daemon.Config) { c.LogFormat = "xml" }, "log_format"},
		{"no data dir", func(c *daemon.Config) { c.DataDir = "" }, "data_dir"},
		{"bad limit", func(c *daemon.Config) { c.Limits.MailboxLength = -1 }, "limits"},
		{"backup target without bucket", func(c *daemon.Config) {
			c.Backup.Targets = []backup.TargetConfig{{Name: "a", Endpoint: "https://s3"}}
		}, "no bucket"},
		{"backup target twice", func(c *daemon.Config) {
			c.Backup.Targets = []backup.TargetConfig{{Name: "a", Endpoint: "e", Bucket: "b"}, {Name: "a", Endpoint: "e", Bucket: "c"}}
		}, "declared twice"},
		{"backup target bad name", func(c *daemon.Config) {
			c.Backup.Targets = []backup.TargetConfig{{Name: "A B", Endpoint: "e", Bucket: "b"}}
		}, "backup target name"},
		{"after_write too short", func(c *daemon.Config) { c.Backup.AfterWrite = time.Millisecond }, "after_write"},
		{"negative interval", func(c *daemon.Config) { c.Backup.Interval = -time.Second }, "backup.interval"},
	} {
		cfg := daemon.DefaultConfig()
		tc.edit(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want %q", tc.name, err, tc.want)
		}
	}
	for _, ok := range []string{"127.0.0.1:9464", "[::1]:0", "localhost:9464"} {
		cfg := daemon.DefaultConfig()
		cfg.MetricsListen = ok
		if err := cfg.Validate(); err != nil {
			t.Errorf("metrics_listen %s: %v", ok, err)
		}
	}
}

func TestSetLimit(t *testing.T) {
	cfg := daemon.DefaultConfig()
	if err := cfg.SetLimit("mailbox_length", "7"); err != nil {
		t.Fatal(err)
	}
	if err := cfg.SetLimit("guest_cpu_time", "250ms"); err != nil {
		t.Fatal(err)
	}
	if cfg.Limits.MailboxLength != 7 || cfg.Limits.GuestCPUTime != 250*time.Millisecond {
		t.Errorf("limits = %+v", cfg.Limits)
	}
	for _, bad := range [][2]string{{"nope", "1"}, {"mailbox_length", "lots"}, {"x]\nsocket", "1"}, {"", "1"}} {
		if err := cfg.SetLimit(bad[0], bad[1]); err == nil {
			t.Errorf("SetLimit(%q, %q) succeeded", bad[0], bad[1])
		}
	}
}

// FuzzParseConfig: any bytes either parse (and then validate or not,
// without panicking, and print as a file that reads back the same) or are
// refused with an error naming the file.
func FuzzParseConfig(f *testing.F) {
	f.Add(daemon.DefaultConfigFile)
	f.Add([]byte("data_dir = \"/x\"\n[limits]\nguest_cpu_time = \"1s\"\n"))
	f.Add([]byte("install = [\"a\", \"b\"]\nlog_level = \"debug\"\n"))
	f.Add([]byte("[limits]\nmailbox_length = -1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := daemon.DefaultConfig()
		if err := daemon.ParseConfig(&cfg, "fuzz.toml", data); err != nil {
			if !strings.Contains(err.Error(), "fuzz.toml") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		_ = cfg.Validate()
		b, err := cfg.MarshalTOML()
		if err != nil {
			return // a value TOML cannot hold (NaN log rate, say) is not printable
		}
		back := daemon.DefaultConfig()
		if err := daemon.ParseConfig(&back, "printed", b); err != nil {
			t.Fatalf("printed config does not read back: %v\n%s", err, b)
		}
	})
}

func TestValidateRefusesANaNRate(t *testing.T) {
	cfg := daemon.DefaultConfig()
	if err := daemon.ParseConfig(&cfg, "f.toml", []byte("[limits]\nlog_lines_per_second = nan\n")); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "log_lines_per_second") {
		t.Errorf("Validate = %v, want log_lines_per_second refused", err)
	}
}
