package backup

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/weftos/weft/backup/object"
	"github.com/weftos/weft/backup/s3"
)

// TargetConfig declares one bucket backups go to ([[backup.targets]] in
// weftd.toml). It holds no secret: the credentials come from
// CredentialsFile or the environment.
type TargetConfig struct {
	Name     string `toml:"name"`
	Endpoint string `toml:"endpoint"`
	Bucket   string `toml:"bucket"`
	Prefix   string `toml:"prefix"`
	Region   string `toml:"region"`
	// CredentialsFile holds access_key_id and secret_access_key (TOML),
	// mode 0640 or stricter. Empty: the environment (EnvPrefix(Name)+
	// "ACCESS_KEY_ID" and "SECRET_ACCESS_KEY", else AWS_ACCESS_KEY_ID and
	// AWS_SECRET_ACCESS_KEY).
	CredentialsFile string `toml:"credentials_file"`
}

var targetName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// Check checks what can be checked without the network or the
// credentials.
func (c TargetConfig) Check() error {
	if !targetName.MatchString(c.Name) {
		return fmt.Errorf("backup target name %.40q: want 1 to 32 of [a-z0-9-], starting with a letter or digit", c.Name)
	}
	if c.Endpoint == "" {
		return fmt.Errorf("backup target %s: no endpoint", c.Name)
	}
	if c.Bucket == "" {
		return fmt.Errorf("backup target %s: no bucket", c.Name)
	}
	return nil
}

// EnvPrefix is the prefix of the environment variables that hold target
// name's credentials: "WEFT_BACKUP_OFFSITE_" for "offsite".
func EnvPrefix(name string) string {
	return "WEFT_BACKUP_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_"
}

// Credentials are a target's static S3 credentials.
type Credentials struct {
	AccessKeyID     string `toml:"access_key_id"`
	SecretAccessKey string `toml:"secret_access_key"`
	SessionToken    string `toml:"session_token"`
}

// LoadCredentials reads the target's credentials from its file or the
// environment (getenv; nil means os.Getenv). Errors never hold a secret.
func (c TargetConfig) LoadCredentials(getenv func(string) string) (Credentials, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var cr Credentials
	if c.CredentialsFile != "" {
		data, err := ReadSecretFile(c.CredentialsFile)
		if err != nil {
			return cr, fmt.Errorf("backup target %s: credentials: %w", c.Name, err)
		}
		md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cr)
		if err != nil {
			// toml's message may quote the file: say only where.
			var perr toml.ParseError
			if errors.As(err, &perr) {
				return cr, fmt.Errorf("backup target %s: credentials file %s: not TOML (line %d)", c.Name, c.CredentialsFile, perr.Position.Line)
			}
			return cr, fmt.Errorf("backup target %s: credentials file %s: want access_key_id and secret_access_key as strings", c.Name, c.CredentialsFile)
		}
		if und := md.Undecoded(); len(und) > 0 {
			return cr, fmt.Errorf("backup target %s: credentials file %s: unknown key %s", c.Name, c.CredentialsFile, und[0])
		}
		if cr.AccessKeyID == "" || cr.SecretAccessKey == "" {
			return cr, fmt.Errorf("backup target %s: credentials file %s: want access_key_id and secret_access_key", c.Name, c.CredentialsFile)
		}
		return cr, nil
	}
	p := EnvPrefix(c.Name)
	cr = Credentials{AccessKeyID: getenv(p + "ACCESS_KEY_ID"), SecretAccessKey: getenv(p + "SECRET_ACCESS_KEY"), SessionToken: getenv(p + "SESSION_TOKEN")}
	if cr.AccessKeyID == "" && cr.SecretAccessKey == "" {
		cr = Credentials{AccessKeyID: getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: getenv("AWS_SECRET_ACCESS_KEY"), SessionToken: getenv("AWS_SESSION_TOKEN")}
	}
	if cr.AccessKeyID == "" || cr.SecretAccessKey == "" {
		return cr, fmt.Errorf("backup target %s: no credentials: set credentials_file, or %sACCESS_KEY_ID and %sSECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) in weftd's environment", c.Name, p, p)
	}
	return cr, nil
}

// Target is one opened target.
type Target struct {
	Name    string
	Backend object.Backend
}

// OpenTarget loads the target's credentials and returns its backend. It
// makes no request: a target that is down fails the runs, not the node.
func OpenTarget(c TargetConfig, getenv func(string) string, transport http.RoundTripper) (Target, error) {
	if err := c.Check(); err != nil {
		return Target{}, err
	}
	cr, err := c.LoadCredentials(getenv)
	if err != nil {
		return Target{}, err
	}
	b, err := s3.New(s3.Config{Name: c.Name, Endpoint: c.Endpoint, Bucket: c.Bucket, Prefix: c.Prefix, Region: c.Region,
		AccessKey: cr.AccessKeyID, SecretKey: cr.SecretAccessKey, SessionToken: cr.SessionToken, Transport: transport})
	if err != nil {
		return Target{}, err
	}
	return Target{Name: c.Name, Backend: b}, nil
}
