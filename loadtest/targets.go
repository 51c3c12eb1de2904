package loadtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// target is what one run drives: where to push, where to scrape, and the
// processes behind it when the harness spawned them.
type target struct {
	name       string
	pushURLs   []string
	scrapeURLs []string // empty: derive from -sd-url, -scrape-urls or pushURLs
	procs      []*process
	// respawn starts peer i again after it was killed, on its old ports or
	// (fresh) on new ones, and returns it once ready; nil when the target
	// cannot.
	respawn func(ctx context.Context, i int, fresh bool) (*process, error)
}

// targetSpec starts a target just before its run; stop undoes start.
type targetSpec struct {
	name  string
	start func(ctx context.Context) (*target, error)
}

// targetSpecs lists the targets cfg asks for, in run order: spawned
// pushring peers, the spawned Pushgateway, or else the given URLs.
func targetSpecs(cfg *Config, dir string, logger *slog.Logger) []targetSpec {
	var specs []targetSpec
	if cfg.Spawn > 0 {
		specs = append(specs, targetSpec{"pushring", func(ctx context.Context) (*target, error) {
			return spawnPushring(ctx, cfg, dir, logger)
		}})
	}
	if cfg.SpawnPushgateway {
		specs = append(specs, targetSpec{"pushgateway", func(ctx context.Context) (*target, error) {
			return spawnPushgateway(ctx, cfg, dir, logger)
		}})
	}
	if len(specs) == 0 {
		specs = append(specs, targetSpec{"target", func(context.Context) (*target, error) {
			return &target{name: "target", pushURLs: cfg.URLs}, nil
		}})
	}
	return specs
}

// spawnPushring starts cfg.Spawn pushring peers, building the binary first
// unless -gateway-bin names one.
func spawnPushring(ctx context.Context, cfg *Config, dir string, logger *slog.Logger) (*target, error) {
	bin := cfg.GatewayBin
	if bin == "" {
		var err error
		if bin, err = buildGateway(ctx, cfg.SourceDir, dir); err != nil {
			return nil, err
		}
	}
	var clusterPorts []int
	if cfg.Spawn > 1 {
		if !supportsCluster(ctx, bin) {
			return nil, fmt.Errorf("-spawn %d: %w", cfg.Spawn, ErrNoClusterFlags)
		}
		var err error
		if clusterPorts, err = ports(cfg.Spawn); err != nil {
			return nil, err
		}
	}
	httpPorts, err := ports(cfg.Spawn)
	if err != nil {
		return nil, err
	}
	extra := splitFlags(cfg.TargetFlags)
	procs, err := spawnSet(ctx, cfg, "pushring", bin, dir, httpPorts, func(i int) []string {
		return peerArgs(i, httpPorts, clusterPorts, extra)
	}, logger)
	if err != nil {
		return nil, err
	}
	t := processTarget("pushring", procs)
	t.respawn = func(ctx context.Context, i int, fresh bool) (*process, error) {
		h, c := httpPorts, clusterPorts
		if fresh {
			ps, err := ports(2)
			if err != nil {
				return nil, err
			}
			h, c = slices.Clone(h), slices.Clone(c)
			h[i], c[i] = ps[0], ps[1]
		}
		name := procs[i].name
		return startReady(ctx, cfg, name, bin, peerArgs(i, h, c, extra), loopback(h[i]),
			filepath.Join(dir, fmt.Sprintf("%s.restart-%d.log", name, time.Now().UnixNano())))
	}
	return t, nil
}

// spawnPushgateway starts the real Pushgateway on loopback without
// persistence, so a side-by-side run starts from the same empty state.
func spawnPushgateway(ctx context.Context, cfg *Config, dir string, logger *slog.Logger) (*target, error) {
	if _, err := os.Stat(cfg.PushgatewayBin); err != nil {
		return nil, fmt.Errorf("-spawn-pushgateway: %w (set -pushgateway-bin)", err)
	}
	extra := splitFlags(cfg.PushgatewayFlags)
	httpPorts, err := ports(1)
	if err != nil {
		return nil, err
	}
	procs, err := spawnSet(ctx, cfg, "pushgateway", cfg.PushgatewayBin, dir, httpPorts, func(i int) []string {
		return append([]string{"--web.listen-address=" + loopback(httpPorts[i]), "--persistence.file="}, extra...)
	}, logger)
	if err != nil {
		return nil, err
	}
	return processTarget("pushgateway", procs), nil
}

// processTarget pushes to and scrapes every spawned peer.
func processTarget(name string, procs []*process) *target {
	t := &target{name: name, procs: procs}
	for _, p := range procs {
		t.pushURLs = append(t.pushURLs, p.baseURL())
		t.scrapeURLs = append(t.scrapeURLs, p.baseURL()+"/metrics")
	}
	return t
}

// replace puts p, a restart of peer i, in its place.
func (t *target) replace(i int, p *process) {
	t.procs[i] = p
	t.pushURLs[i] = p.baseURL()
	t.scrapeURLs[i] = p.baseURL() + "/metrics"
}

// stop stops the target's processes, if any.
func (t *target) stop() { stopAll(t.procs) }

// rss sums the resident memory of the target's processes; 0 when it has
// none or /proc cannot be read.
func (t *target) rss() uint64 {
	var sum uint64
	for _, p := range t.procs {
		v, err := readRSS(p.cmd.Process.Pid)
		if err != nil {
			return 0
		}
		sum += v
	}
	return sum
}
