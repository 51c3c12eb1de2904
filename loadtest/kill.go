package loadtest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"
)

// KillReport is what -kill-peer-after did to its peer. Times are seconds
// since the pushes started.
type KillReport struct {
	Peer        string  `json:"peer"`
	KilledAt    float64 `json:"killed_at_seconds"`              // SIGKILL was sent
	InFlight    int64   `json:"pushes_in_flight"`               // pushes on their way to it then, as far as the harness could tell
	RestartedAt float64 `json:"restarted_at_seconds,omitempty"` // the new process was started
	ReadyAt     float64 `json:"ready_at_seconds,omitempty"`     // it answered /-/ready and was back in service
	NewPorts    bool    `json:"new_ports,omitempty"`            // its old ports could not be bound again
	Error       string  `json:"error,omitempty"`
}

// killer kills one spawned peer during the push phase and starts it again
// later, playing both the crash and the endpoints controller: the peer
// leaves the router's service the moment it is killed and comes back once
// its new process answers /-/ready, as a pod's endpoint does.
type killer struct {
	cfg    *Config
	t      *target
	r      *router
	start  time.Time // the push phase's start
	logger *slog.Logger
	rep    KillReport
}

// startKiller runs k on a goroutine of its own; wait returns its report
// once it is done. Its waits end with ctx, and a restart is bounded by
// -ready-timeout.
func startKiller(ctx context.Context, k *killer) (wait func() *KillReport) {
	var wg sync.WaitGroup
	wg.Go(func() { k.run(ctx) })
	return func() *KillReport {
		wg.Wait()
		return &k.rep
	}
}

func (k *killer) run(ctx context.Context) {
	i := k.cfg.KillPeer
	k.rep.Peer = k.t.procs[i].name
	if !sleepUntil(ctx, k.start.Add(k.cfg.KillAfter)) {
		k.rep.Error = "the run ended before the kill"
		return
	}
	if err := k.kill(i); err != nil {
		k.rep.Error = err.Error()
		return
	}
	if k.cfg.RestartAfter == 0 {
		// It stays dead: the check scrapes the peers that are left.
		k.t.scrapeURLs = append(k.t.scrapeURLs[:i:i], k.t.scrapeURLs[i+1:]...)
		return
	}
	if !sleepUntil(ctx, k.start.Add(secondsToDuration(k.rep.KilledAt)+k.cfg.RestartAfter)) {
		k.rep.Error = "the run ended before the restart"
		return
	}
	if err := k.restart(ctx, i); err != nil {
		// The peer stays down, so the check fails on its scrape.
		k.rep.Error = err.Error()
	}
}

// kill takes peer i out of service, then SIGKILLs it and waits until it is
// reaped.
func (k *killer) kill(i int) error {
	p, e := k.t.procs[i], k.r.eps[i]
	e.takeOut()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %s: %w", p.name, err)
	}
	k.rep.KilledAt = time.Since(k.start).Seconds()
	k.rep.InFlight = e.inflight.Load()
	<-p.exited
	k.logger.Info("killed peer", "name", p.name, "pid", p.cmd.Process.Pid, "after", secondsToDuration(k.rep.KilledAt).Round(time.Millisecond), "pushes_in_flight", k.rep.InFlight)
	return nil
}

// restart starts peer i again with the same name and flags, on its old
// ports when they are free and else on new ones, and puts it back in
// service once it is ready.
func (k *killer) restart(ctx context.Context, i int) error {
	k.rep.RestartedAt = time.Since(k.start).Seconds()
	p, err := k.t.respawn(ctx, i, false)
	if err != nil {
		k.logger.Warn("restart on the old ports failed; trying new ones", "name", k.t.procs[i].name, "err", err)
		k.rep.NewPorts = true
		if p, err = k.t.respawn(ctx, i, true); err != nil {
			return fmt.Errorf("restart %s: %w", k.t.procs[i].name, err)
		}
	}
	k.t.replace(i, p)
	if err := k.r.eps[i].setBase(p.baseURL()); err != nil {
		return err
	}
	k.r.eps[i].putBack()
	k.rep.ReadyAt = time.Since(k.start).Seconds()
	k.logger.Info("restarted peer is ready", "name", p.name, "pid", p.cmd.Process.Pid, "addr", p.addr,
		"ready_after", secondsToDuration(k.rep.ReadyAt-k.rep.RestartedAt).Round(time.Millisecond))
	return nil
}

// sleepUntil waits until at; false when ctx ended first.
func sleepUntil(ctx context.Context, at time.Time) bool {
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func secondsToDuration(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
