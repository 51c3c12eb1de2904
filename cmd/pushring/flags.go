package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/common/promslog"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/pushring/pushring/api"
	"github.com/pushring/pushring/cluster"
	"github.com/pushring/pushring/ingest"
	"github.com/pushring/pushring/store"
)

// defaultListenAddress is the Pushgateway's port, so scrape configs and
// pushers keep working after the binary is swapped.
const defaultListenAddress = ":9091"

// config is everything the command line sets.
type config struct {
	listen        listValue
	webConfigFile string
	systemdSocket bool
	localAssets   string
	version       bool
	logLevel      *promslog.Level
	logFormat     *promslog.Format
	// gcPercent is --runtime.gogc; gcPercentGiven, whether the command
	// line gave it (a GOGC in the environment wins over the default only).
	gcPercent      int
	gcPercentGiven bool
	// gcMinHeadroom is --runtime.gc-min-headroom-bytes.
	gcMinHeadroom int64

	server  serverConfig
	api     api.Config
	ingest  ingest.Config
	store   store.Config
	persist store.PersistConfig

	cluster cluster.Config

	onStart func(startedPeer) // tests: told the bound addresses; see runWith
}

// newFlagSet registers every flag with the Pushgateway's names and
// defaults. Parse errors and help are returned, never printed: run decides
// where output goes.
func newFlagSet(cfg *config) *flag.FlagSet {
	fs := flag.NewFlagSet("pushring", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}

	cfg.listen = listValue{values: []string{defaultListenAddress}, isDefault: true}
	fs.Var(&cfg.listen, "web.listen-address",
		"Address on which to expose metrics and the web interface. Repeatable for multiple addresses.")
	fs.StringVar(&cfg.webConfigFile, "web.config.file", "",
		"Path to a configuration file that can enable TLS or authentication (Prometheus exporter-toolkit web configuration).")
	fs.BoolVar(&cfg.systemdSocket, "web.systemd-socket", false,
		"Use systemd socket activation listeners instead of port listeners (Linux only).")
	fs.StringVar(&cfg.localAssets, "web.local-assets", "",
		"Accepted for compatibility with Debian's Pushgateway package and ignored: pushring's status page needs no asset files.")
	cfg.server.registerFlags(fs)
	cfg.api.RegisterFlags(fs)
	cfg.persist.RegisterFlags(fs)
	cfg.ingest.RegisterFlags(fs)
	cfg.store.RegisterFlags(fs)
	cfg.cluster.RegisterFlags(fs)

	cfg.logLevel = promslog.NewLevel()
	fs.Var(cfg.logLevel, "log.level", "Only log messages with the given severity or above. One of: ["+
		strings.Join(promslog.LevelFlagOptions, ", ")+"]")
	cfg.logFormat = promslog.NewFormat()
	_ = cfg.logFormat.Set(promslog.FormatFlagOptions[0]) // "logfmt" is valid
	fs.Var(cfg.logFormat, "log.format", "Output format of log messages. One of: ["+
		strings.Join(promslog.FormatFlagOptions, ", ")+"]")
	fs.IntVar(&cfg.gcPercent, flagGCPercent, defaultGCPercent,
		"Garbage collector target (GOGC): how far the heap may grow past what the last collection left, in percent. A GOGC environment variable takes precedence over the default, this flag over both.")
	fs.Int64Var(&cfg.gcMinHeadroom, flagGCMinHeadroom, defaultGCMinHeadroom,
		"Least growth of the heap between garbage collections, in bytes: while the live heap is small, the collector's target is raised above GOGC so that it does not collect more often than this much garbage. 0 leaves GOGC alone.")
	fs.BoolVar(&cfg.version, "version", false, "Show the version and exit.")

	addNegations(fs)
	return fs
}

// validate checks the whole configuration before anything starts.
func (c *config) validate() error {
	if !c.systemdSocket && len(c.listen.values) == 0 {
		return errors.New("no --web.listen-address given")
	}
	for _, addr := range c.listen.values {
		if strings.HasPrefix(addr, "vsock://") {
			return fmt.Errorf("--web.listen-address %q: vsock listeners are not supported", addr)
		}
	}
	if c.gcPercent < 1 {
		return fmt.Errorf("invalid --%s %d: must be at least 1", flagGCPercent, c.gcPercent)
	}
	if c.gcMinHeadroom < 0 {
		return fmt.Errorf("invalid --%s %d: must be 0 (none) or more", flagGCMinHeadroom, c.gcMinHeadroom)
	}
	if c.webConfigFile != "" {
		if err := web.Validate(c.webConfigFile); err != nil {
			return fmt.Errorf("--web.config.file: %w", err)
		}
	}
	c.api.MaxBodyBytes = c.ingest.MaxBodyBytes // the api reads bodies before the ingester
	// The body deadline replaces the connection's read deadline, so it
	// must not outlast --web.read-timeout.
	if c.server.ReadTimeout > 0 && c.api.BodyTimeout > c.server.ReadTimeout {
		c.api.BodyTimeout = c.server.ReadTimeout
	}
	return errors.Join(c.server.validate(), c.api.Validate(), c.ingest.Validate(), c.store.Validate(), c.persist.Validate(),
		c.validateCluster())
}

// validateCluster checks the cluster flags with what they depend on.
func (c *config) validateCluster() error {
	cc := c.clusterConfig()
	return cc.Validate()
}

// goFlagErrors match the messages of package flag, which spell a flag
// with one dash; flagError rewrites them in the --flag form --help uses.
var goFlagErrors = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`^flag provided but not defined: -+(.*)$`), "unknown flag --$1"},
	{regexp.MustCompile(`^flag needs an argument: -+(.*)$`), "--$1 needs a value"},
	{regexp.MustCompile(`^invalid (boolean )?value (".*") for (?:flag )?-+([^:]+): (.*)$`), "invalid value $2 for --$3: $4"},
	{regexp.MustCompile(`^bad flag syntax: (.*)$`), "bad flag syntax: $1; flags look like --name=value"},
}

// flagError rewords a parse error of package flag in the --flag style.
func flagError(err error) error {
	msg := err.Error()
	for _, e := range goFlagErrors {
		if e.re.MatchString(msg) {
			return errors.New(e.re.ReplaceAllString(msg, e.repl))
		}
	}
	return err
}

// negationPrefix turns --name into --no-name for every bool flag, the form
// kingpin (and so the Pushgateway) accepts.
const negationPrefix = "no-"

// addNegations registers --no-<name> for every bool flag registered so far.
func addNegations(fs *flag.FlagSet) {
	var bools []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if isBoolFlag(f) {
			bools = append(bools, f)
		}
	})
	for _, f := range bools {
		fs.Var(negatedBool{f.Value}, negationPrefix+f.Name, "Negation of --"+f.Name+".")
	}
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// negatedBool sets the bool flag it wraps to the opposite of its argument.
type negatedBool struct{ target flag.Value }

func (n negatedBool) IsBoolFlag() bool { return true }

func (n negatedBool) String() string { return "" }

func (n negatedBool) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	return n.target.Set(strconv.FormatBool(!b))
}

// listValue is a repeatable string flag: the first use replaces the
// default, later uses append.
type listValue struct {
	values    []string
	isDefault bool
}

func (l *listValue) String() string { return strings.Join(l.values, ",") }

func (l *listValue) Set(s string) error {
	if l.isDefault {
		l.values, l.isDefault = nil, false
	}
	l.values = append(l.values, s)
	return nil
}

// isInternalFlag reports whether a flag is left out of the status API's
// flags map: help-like flags and the --no- forms, as the Pushgateway leaves
// out kingpin's boilerplate flags.
func isInternalFlag(name string) bool {
	return name == "version" || strings.HasPrefix(name, negationPrefix)
}

// flagValues returns every flag's current value for /api/v1/status.
func flagValues(fs *flag.FlagSet) map[string]string {
	m := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		if !isInternalFlag(f.Name) {
			m[f.Name] = f.Value.String()
		}
	})
	return m
}

// printUsage writes the help text in kingpin's layout.
func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: pushring [<flags>]\n\n")
	fmt.Fprintf(w, "A drop-in, faster, shardable replacement for the Prometheus Pushgateway.\n\n")
	fmt.Fprintf(w, "Flags:\n  -h, --[no-]help\n      Show context-sensitive help.\n")
	var flags []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.HasPrefix(f.Name, negationPrefix) {
			flags = append(flags, f)
		}
	})
	sort.SliceStable(flags, func(i, j int) bool { return flags[i].Name < flags[j].Name })
	for _, f := range flags {
		printFlag(w, f)
	}
}

func printFlag(w io.Writer, f *flag.Flag) {
	if isBoolFlag(f) {
		fmt.Fprintf(w, "  --[no-]%s\n", f.Name)
	} else {
		fmt.Fprintf(w, "  --%s=%s\n", f.Name, placeholder(f.Name))
	}
	help := f.Usage
	if f.DefValue != "" && !isBoolFlag(f) {
		help += " (default: " + f.DefValue + ")"
	}
	fmt.Fprintf(w, "      %s\n", help)
}

// placeholder names a flag's value in the help text, e.g. FILE for
// --persistence.file.
func placeholder(name string) string {
	parts := strings.FieldsFunc(name, func(r rune) bool { return r == '.' || r == '-' })
	return strings.ToUpper(parts[len(parts)-1])
}
