package maild

import (
	"net/netip"
	"reflect"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pipegate/pipegate/gateway"
	"github.com/pipegate/pipegate/internal/yamlconf"
	"github.com/pipegate/pipegate/route/config"
	"github.com/pipegate/pipegate/tlsconf"
)

// fileConfig is the YAML file of `pipegate mail --config FILE` and
// `pipegate imap --config FILE`; see docs/mail.md and docs/imap.md for
// every field.
type fileConfig struct {
	Listen              []listenConfig        `yaml:"listen"`
	TLS                 *yamlconf.ServerTLS   `yaml:"tls"`
	BackendTLS          *backendTLSConfig     `yaml:"backend_tls"`
	RoutesFile          string                `yaml:"routes_file"`
	RouteSources        []config.SourceConfig `yaml:"route_sources"`
	RouteCache          config.CacheConfig    `yaml:"route_cache"`
	Pools               map[string]poolConfig `yaml:"pools"`
	AllowPlaintextAuth  bool                  `yaml:"allow_plaintext_auth"`
	LoginTrusted        []string              `yaml:"login_trusted_networks"`
	OAuth               bool                  `yaml:"oauth"`
	IMAP4rev2           bool                  `yaml:"imap4rev2"` // IMAP's
	Hostname            string                `yaml:"hostname"`
	Greeting            string                `yaml:"greeting"` // IMAP's
	POP3                POP3Config            `yaml:"pop3"`
	Sieve               SieveConfig           `yaml:"sieve"`
	Submission          SubmissionConfig      `yaml:"submission"`
	LoginTimeout        yamlconf.Duration     `yaml:"login_timeout"`
	MaxLoginFailures    int                   `yaml:"max_login_failures"`
	MaxConnections      int                   `yaml:"max_connections"`
	MaxConnectionsPerIP int                   `yaml:"max_connections_per_ip"`
	MaxPreLoginPerIP    *int                  `yaml:"max_prelogin_connections_per_ip"` // nil: the default
	UsernameChars       *string               `yaml:"username_chars"`                  // nil: Dovecot's; "": any printable UTF-8
	UsernameFormat      string                `yaml:"username_format"`
	DefaultDomain       string                `yaml:"default_domain"`
	AllowMasterUsers    bool                  `yaml:"allow_master_users"`
	AuthFailureDelay    yamlconf.Duration     `yaml:"auth_failure_delay"`
	TLSOnGoroutines     bool                  `yaml:"tls_on_goroutines"`
	AuthPenalty         *penaltyConfig        `yaml:"auth_penalty"`
	DialTimeout         yamlconf.Duration     `yaml:"dial_timeout"`
	BackendTimeout      yamlconf.Duration     `yaml:"backend_timeout"`
	IdleTimeout         yamlconf.Duration     `yaml:"idle_timeout"`
	MaxLifetime         yamlconf.Duration     `yaml:"max_lifetime"`
	HalfCloseLinger     yamlconf.Duration     `yaml:"half_close_linger"`
	DrainTimeout        yamlconf.Duration     `yaml:"drain_timeout"`
	DrainSpread         *yamlconf.Duration    `yaml:"drain_spread"` // nil: DefaultDrainSpread
	MetricsAddr         string                `yaml:"metrics_addr"`
	Log                 struct {
		Format string `yaml:"format"`
		Level  string `yaml:"level"`
	} `yaml:"log"`
}

type listenConfig struct {
	Addr           string   `yaml:"addr"`
	Protocol       string   `yaml:"protocol"` // a key of the Protocols; "": imap
	TLS            bool     `yaml:"tls"`
	AcceptProxy    bool     `yaml:"accept_proxy"`
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// POP3Config is the file's pop3: block, the POP3 listeners' own options.
type POP3Config struct {
	Greeting     string   `yaml:"greeting"`
	Capabilities []string `yaml:"capabilities"` // added to the pre-login CAPA ("TOP", "UIDL")
}

// SieveConfig is the file's sieve: block, the ManageSieve listeners' own
// options.
type SieveConfig struct {
	Greeting       string `yaml:"greeting"`
	Implementation string `yaml:"implementation"`
}

// SubmissionConfig is the file's submission: block, the submission
// listeners' own options.
type SubmissionConfig struct {
	Greeting   string   `yaml:"greeting"`
	Extensions []string `yaml:"extensions"` // EHLO keywords before AUTH ("SIZE 52428800", "8BITMIME")
}

// backendTLSConfig is backend_tls: the shared client block, and
// insecure_skip_verify for tests.
type backendTLSConfig struct {
	yamlconf.ClientTLS `yaml:",inline"`
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

type penaltyConfig struct {
	Base   yamlconf.Duration `yaml:"base"`
	Max    yamlconf.Duration `yaml:"max"`
	Forget yamlconf.Duration `yaml:"forget"`
	// Redis keeps the counts in Redis, shared by several instances
	// behind one load balancer (docs/instances.md).
	Redis *struct {
		yamlconf.Redis `yaml:",inline"`
		Prefix         string `yaml:"prefix"` // default limit.DefaultRedisPrefix
	} `yaml:"redis"`
}

// DefaultDrainTimeout is drain_timeout's default; the other defaults
// are the servers'.
const DefaultDrainTimeout = 30 * time.Second

// DefaultDrainSpread is drain_spread's default: the sessions left near the
// end of a drain are closed over this window (at most half the drain).
const DefaultDrainSpread = 10 * time.Second

// The commands that run the mail daemon: `pipegate mail` serves every
// protocol of its Protocols, `pipegate imap` IMAP only. Settings.Command
// is one of them: it prefixes the log's messages.
const (
	CommandMail = "mail"
	CommandIMAP = "imap"
)

// Settings is a checked config: paths absolute, durations parsed. Load
// makes it; the protocols' constructors read their own blocks (POP3,
// Sieve, Submission) from it.
type Settings struct {
	File      string        // the config file, for messages
	Command   string        // CommandMail or CommandIMAP: the log's prefix
	doc       *yamlconf.Doc // for the messages of what is loaded later
	protocols Protocols     // what each listener's protocol names
	loaded    fileConfig    // the file as it was read, to tell a SIGHUP what changed

	Listen     []Listener
	TLS        *tlsconf.ServerFiles // nil without tls:
	BackendTLS tlsconf.ClientFiles
	Routes     config.Spec
	Pools      []Pool // by name

	AllowPlaintextAuth bool
	// LoginTrustedNetworks may send XCLIENT (POP3, ManageSieve,
	// submission): the client's address and the proxy TTL of a proxy in
	// front, as Dovecot's login_trusted_networks.
	LoginTrustedNetworks []netip.Prefix
	OAuth                bool
	IMAP4rev2            bool
	Hostname             string
	Greeting             string // IMAP's
	POP3                 POP3Config
	Sieve                SieveConfig
	Submission           SubmissionConfig
	LoginTimeout         time.Duration
	MaxLoginFailures     int
	MaxConnections       int
	MaxConnectionsPerIP  int
	MaxPreLoginPerIP     int // 0: no limit
	Accounts             gateway.AccountRules
	AuthFailureDelay     time.Duration // 0: none
	TLSOnGoroutines      bool          // pipe.Engine.TLSOnGoroutines
	Penalty              *Penalty      // nil: the defaults, in-process
	DialTimeout          time.Duration
	BackendTimeout       time.Duration
	IdleTimeout          time.Duration
	MaxLifetime          time.Duration
	HalfCloseLinger      time.Duration
	DrainTimeout         time.Duration
	DrainSpread          time.Duration // gateway.Server.DrainSpread
	MetricsAddr          string
	LogFormat, LogLevel  string
}

// Listener is a checked listen: entry.
type Listener struct {
	Addr        string
	Protocol    string // a key of the Protocols
	TLS         bool
	AcceptProxy bool
	Trusted     []netip.Prefix
}

// Penalty is a checked auth_penalty: block.
type Penalty struct {
	Base, Max, Forget time.Duration
	Redis             *redis.Options // nil: in-process counts
	RedisPrefix       string
}

// Load reads and checks the config file at path for command
// (CommandMail, or CommandIMAP: IMAP listeners only) whose listeners may
// name the protocols: syntax, fields, values, and that the files it names
// can be read (New and Check load them). Errors name the file, the line,
// the field and the problem: "FILE:LINE: FIELD: problem".
func Load(path, command string, protocols Protocols) (*Settings, error) {
	var fc fileConfig
	doc, err := yamlconf.Load(path, &fc)
	if err != nil {
		return nil, err
	}
	if reflect.ValueOf(fc).IsZero() {
		return nil, doc.Errorf("", "empty file (want at least listen: and routes_file: or route_sources:)")
	}
	c := &checker{doc: doc, command: command, protocols: protocols}
	s := c.check(&fc)
	if err := c.errs.Err(); err != nil {
		return nil, err
	}
	s.loaded = fc
	return s, nil
}
