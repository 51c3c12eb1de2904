package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/prometheus/exporter-toolkit/web"
)

// HTTP server limits (shared/DESIGN.md decision 9). Constants for now; a
// later change turns them into flags.
const (
	// readHeaderTimeout bounds how long a client may take to send its
	// headers, so idle half-open connections cannot pile up (slowloris).
	readHeaderTimeout = 10 * time.Second
	// readTimeout bounds reading a whole request. A push body of the
	// default 16 MiB limit needs well under a minute on any link a pusher
	// should be using.
	readTimeout = time.Minute
	// writeTimeout bounds writing a response. It must exceed the slowest
	// legitimate answer: pprof's default 30 s CPU profile and a scrape of a
	// full peer.
	writeTimeout = 2 * time.Minute
	// idleTimeout closes keep-alive connections nobody uses, which also
	// lets kube-proxy rebalance long-lived pushers across peers.
	idleTimeout = 2 * time.Minute
	// maxHeaderBytes is net/http's default, stated so it is a decision.
	maxHeaderBytes = 1 << 20
	// shutdownTimeout bounds draining in-flight requests at shutdown;
	// Kubernetes' default grace period is 30 s, of which this leaves some
	// for the final persist.
	shutdownTimeout = 20 * time.Second
)

// openListeners opens the listeners the flags ask for: systemd's when
// --web.systemd-socket is set, otherwise one TCP listener per
// --web.listen-address. On error none is left open.
func openListeners(cfg *config) ([]net.Listener, error) {
	if cfg.systemdSocket {
		return systemdListeners()
	}
	var ls []net.Listener
	for _, addr := range cfg.listen.values {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll(ls)
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

func systemdListeners() ([]net.Listener, error) {
	all, err := activation.Listeners()
	if err != nil {
		return nil, fmt.Errorf("systemd socket activation: %w", err)
	}
	var ls []net.Listener
	for _, l := range all {
		if l != nil { // descriptors that are not stream sockets
			ls = append(ls, l)
		}
	}
	if len(ls) == 0 {
		return nil, errors.New("systemd socket activation: no listening sockets passed")
	}
	return ls, nil
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		_ = l.Close()
	}
}

// newServer returns an HTTP server with every timeout set. Each listener
// gets its own server: web.Serve installs its TLS and auth wrapper on the
// server it is given, so sharing one would wrap the handler twice and race.
func newServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// addServer adds an actor serving srv on l (with TLS and basic auth from
// --web.config.file) until a graceful shutdown drains it.
func addServer(g *runGroup, l net.Listener, srv *http.Server, cfg *config, logger *slog.Logger) {
	flags := &web.FlagConfig{
		WebListenAddresses: &cfg.listen.values,
		WebSystemdSocket:   &cfg.systemdSocket,
		WebConfigFile:      &cfg.webConfigFile,
	}
	addr := l.Addr().String()
	g.add("http server "+addr, func() error {
		logger.Info("listening", "address", addr)
		err := web.Serve(l, srv, flags, logger)
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}, func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			logger.Warn("graceful HTTP shutdown incomplete, closing connections", "address", addr, "err", err)
			_ = srv.Close()
		}
		_ = l.Close() // in case web.Serve failed before serving
	})
}
