// Command pushring is the binary: a drop-in, faster, shardable
// replacement for the Prometheus Pushgateway, with its flags, routes and
// persistence file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/common/version"

	"github.com/pushring/pushring/api"
	"github.com/pushring/pushring/cluster"
	"github.com/pushring/pushring/ingest"
	"github.com/pushring/pushring/internal/procmetrics"
	"github.com/pushring/pushring/store"
)

// programName names the binary in the version output and build info metric.
const programName = "pushring"

// devVersion is the version of a binary built without release ldflags
// (-X github.com/prometheus/common/version.Version=...), such as `go run`.
const devVersion = "0.1.0-dev"

func main() {
	if version.Version == "" {
		version.Version = devVersion
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", programName, err)
		os.Exit(1)
	}
}

// run parses args and serves until ctx is done (SIGINT/SIGTERM in main) or
// a permitted /-/quit request; a clean shutdown returns nil. --help and
// --version print to stdout and return nil; logs go to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runWith(ctx, args, stdout, stderr, nil)
}

// startedPeer describes a peer that is up: its bound HTTP and gossip
// addresses (the gossip address is empty for a single peer).
type startedPeer struct {
	httpAddr, gossipAddr string
}

// runWith is run that also reports, to onStart if not nil, the bound
// addresses of the peer once it serves: in-process tests listen on port 0.
func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, onStart func(startedPeer)) error {
	var cfg config
	cfg.onStart = onStart
	fs := newFlagSet(&cfg)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, fs)
			return nil
		}
		return fmt.Errorf("%w; try --help", flagError(err))
	}
	fs.Visit(func(f *flag.Flag) { cfg.gcPercentGiven = cfg.gcPercentGiven || f.Name == flagGCPercent })
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q; try --help", fs.Arg(0))
	}
	if cfg.version {
		fmt.Fprintln(stdout, version.Print(programName))
		return nil
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	logger := promslog.New(&promslog.Config{Level: cfg.logLevel, Format: cfg.logFormat, Writer: stderr})
	cfg.api.Flags = flagValues(fs)
	return serve(ctx, &cfg, logger)
}

// gateway is the wired process: every component and what runs it.
type gateway struct {
	reg       *prometheus.Registry
	store     *store.Store
	persister *store.Persister
	ingester  *ingest.Ingester
	cluster   *cluster.Cluster
	api       *api.API
}

// serve wires the components, loads the persistence file, then runs the
// HTTP servers, the cluster and the persister until shutdown.
func serve(ctx context.Context, cfg *config, logger *slog.Logger) error {
	logger.Info("starting pushring", "version", version.Info())
	logger.Info("build context", "build_context", version.BuildContext())
	setGCPercent(cfg.gcPercent, cfg.gcPercentGiven, logger)
	defer startGCHeadroom(cfg.gcMinHeadroom, logger)()
	// Before wire: the api sizes its memory budget from the limit.
	setMemoryLimit("/", logger)
	listeners, err := openListeners(cfg)
	if err != nil {
		return err
	}
	defer closeAll(listeners)
	gw, err := wire(cfg, listeners[0].Addr().String(), logger)
	if err != nil {
		return err
	}
	if _, err := gw.persister.Load(); err != nil {
		gw.cluster.Close()
		return err
	}

	// Actors are interrupted in this order: hand over and leave the
	// cluster while HTTP still serves (and forwards), then drain HTTP,
	// then stop the peer protocol, and persist last.
	var g runGroup
	addStopper(&g, ctx, gw.api.Quit(), logger)
	addReloader(&g, reloadAll{gw.ingester, gw.cluster}, logger)
	addLeave(&g, gw.cluster)
	for _, l := range listeners {
		addServer(&g, l, newServer(gw.api.Handler(), cfg.server, logger), cfg, logger)
	}
	addCluster(&g, gw.cluster)
	addExpiry(&g, gw.store)
	addPersister(&g, gw.persister)
	if cfg.onStart != nil {
		sp := startedPeer{httpAddr: listeners[0].Addr().String()}
		for _, p := range gw.cluster.Status(ctx, false).Peers {
			if p.Self {
				sp.gossipAddr = p.GossipAddr
			}
		}
		cfg.onStart(sp) // the listeners are bound: requests wait in their backlog until served
	}
	err = g.run()
	logger.Info("pushring stopped")
	return err
}

// wire builds the components. The own registry is gathered once before the
// store exists, so the store knows the names and types of the gateway's own
// families and keeps pushes from clashing with them. httpAddr is the bound
// HTTP address the peer advertises to its cluster.
func wire(cfg *config, httpAddr string, logger *slog.Logger) (*gateway, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		procmetrics.New(), // client_golang's process families, cheaper per scrape
		versioncollector.NewCollector(programName),
	)
	reserved, err := store.ReservedFamilies(reg)
	if err != nil {
		return nil, err
	}
	storeCfg := storeConfig(cfg)
	storeCfg.Reserved = reserved
	st, err := store.New(storeCfg, logger.With("component", "store"), reg)
	if err != nil {
		return nil, err
	}
	persister, err := store.NewPersister(cfg.persist, st, logger.With("component", "persistence"), reg)
	if err != nil {
		return nil, err
	}
	ing, err := ingest.New(cfg.ingest, st, time.Now, logger.With("component", "ingest"), reg)
	if err != nil {
		return nil, err
	}
	admission := api.NewAdmission(cfg.api.MaxInflight, cfg.api.MaxQueueWait)
	budget := api.NewBudget(cfg.api, ing)
	cl, err := cluster.New(cfg.clusterConfig(), cluster.Deps{
		Ingester: ing, Store: st, Admission: admission, Budget: budget, Answer: api.Answer, HTTPAddr: httpAddr,
	}, logger.With("component", "cluster"), reg)
	if err != nil {
		return nil, err
	}
	st.SetExposure(cl.Exposure())
	apiCfg := cfg.api
	apiCfg.BuildInfo = buildInfo()
	apiCfg.StartTime = time.Now()
	a, err := api.New(apiCfg, api.Deps{
		Pusher: cl, Ingester: reloadAll{ing, cl}, Store: st, Cluster: clusterViews{cl}, Admission: admission, Budget: budget, Own: reg,
	}, logger.With("component", "api"), reg)
	if err != nil {
		cl.Close()
		return nil, err
	}
	return &gateway{reg: reg, store: st, persister: persister, ingester: ing, cluster: cl, api: a}, nil
}

// buildInfo is the build_information object of /api/v1/status.
func buildInfo() map[string]string {
	return map[string]string{
		"version":   version.Version,
		"revision":  version.GetRevision(),
		"branch":    version.Branch,
		"buildUser": version.BuildUser,
		"buildDate": version.BuildDate,
		"goVersion": version.GoVersion,
	}
}

// addStopper adds the actor that returns when the process should stop: ctx
// done (a signal in main) or a /-/quit request.
func addStopper(g *runGroup, ctx context.Context, quit <-chan struct{}, logger *slog.Logger) {
	stop := make(chan struct{})
	g.add("stopper", func() error {
		select {
		case <-ctx.Done():
			logger.Info("received a stop signal, exiting gracefully")
		case <-quit:
			logger.Info("received a termination request via the web, exiting gracefully")
		case <-stop:
		}
		return nil
	}, func() { close(stop) })
}

// addReloader adds the actor that re-reads the TTL rules file and the
// gossip key file on SIGHUP. A broken file keeps what is in force; either
// way the process goes on, and the outcome is logged. It stops listening
// for SIGHUP when interrupted.
func addReloader(g *runGroup, ing interface{ ReloadRules() error }, logger *slog.Logger) {
	hup := make(chan os.Signal, 1) // signal.Notify drops signals it cannot deliver; one pending reload is enough
	signal.Notify(hup, syscall.SIGHUP)
	stop := make(chan struct{})
	g.add("reloader", func() error {
		defer signal.Stop(hup)
		for {
			select {
			case <-hup:
				logger.Info("received SIGHUP, reloading the TTL rules and the gossip keys")
				_ = ing.ReloadRules() // logged by the ingester and the membership, with the file and the error
			case <-stop:
				return nil
			}
		}
	}, func() { close(stop) })
}

// addExpiry adds the actor that removes groups whose TTL ran out. It stops
// after the HTTP servers have drained.
func addExpiry(g *runGroup, st *store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	g.add("expiry", func() error { return st.RunExpiry(ctx, store.RealClock{}) }, cancel)
}

// addPersister adds the persister; it is interrupted after the HTTP servers
// have drained, and writes the file once more when it stops.
func addPersister(g *runGroup, p *store.Persister) {
	ctx, cancel := context.WithCancel(context.Background())
	g.add("persister", func() error { return p.Run(ctx) }, cancel)
}
