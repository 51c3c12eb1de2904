package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/pushring/pushring/internal/flagcheck"
)

// serverConfig holds the HTTP server limits (docs/design.md, "Bounded").
// Every listener's server gets the same.
type serverConfig struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
}

// Server flag names, quoted in validation errors.
const (
	flagReadHeaderTimeout = "web.read-header-timeout"
	flagReadTimeout       = "web.read-timeout"
	flagWriteTimeout      = "web.write-timeout"
	flagIdleTimeout       = "web.idle-timeout"
	flagMaxHeaderBytes    = "web.max-header-bytes"
)

// Defaults of the server limits, and why.
const (
	// defaultReadHeaderTimeout bounds how long a client may take to send
	// its headers, so stalled or dribbling connections (slowloris) are cut
	// off and cost no more than a socket for a few seconds. Any real
	// client sends its headers in one packet.
	defaultReadHeaderTimeout = 10 * time.Second
	// defaultReadTimeout bounds reading a whole request. A push body of the
	// default 16 MiB limit needs well under a minute on any link a pusher
	// should be using.
	defaultReadTimeout = time.Minute
	// defaultWriteTimeout bounds writing a response (it runs from the end
	// of the request headers). A minute covers a scrape of a full peer; a
	// pprof CPU profile must ask for less than that.
	defaultWriteTimeout = time.Minute
	// defaultIdleTimeout closes keep-alive connections nobody uses, which
	// also lets kube-proxy rebalance long-lived pushers across peers.
	defaultIdleTimeout = 2 * time.Minute
	// defaultMaxHeaderBytes bounds the request line and headers. Push
	// clients send a handful of short headers; 64 KiB leaves room for long
	// grouping paths and auth tokens while keeping a connection's header
	// buffer small (net/http's default is 1 MiB).
	defaultMaxHeaderBytes = 64 << 10
	// shutdownTimeout bounds draining in-flight requests at shutdown;
	// Kubernetes' default grace period is 30 s, of which this leaves some
	// for the final persist.
	shutdownTimeout = 20 * time.Second
)

// registerFlags registers the server limits with their defaults.
func (c *serverConfig) registerFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.ReadHeaderTimeout, flagReadHeaderTimeout, defaultReadHeaderTimeout,
		"Maximum time to read the request headers; slower clients are disconnected.")
	fs.DurationVar(&c.ReadTimeout, flagReadTimeout, defaultReadTimeout,
		"Maximum time to read a whole request, body included.")
	fs.DurationVar(&c.WriteTimeout, flagWriteTimeout, defaultWriteTimeout,
		"Maximum time from the end of the request headers to the end of the response.")
	fs.DurationVar(&c.IdleTimeout, flagIdleTimeout, defaultIdleTimeout,
		"Maximum time a keep-alive connection may wait for its next request.")
	fs.IntVar(&c.MaxHeaderBytes, flagMaxHeaderBytes, defaultMaxHeaderBytes,
		"Maximum size of the request line and headers, in bytes; larger requests get 431.")
}

// validate rejects limits that would switch a bound off: net/http reads 0
// as "no timeout" (or its own default), which is what these flags exist
// to prevent.
func (c *serverConfig) validate() error {
	errs := []error{flagcheck.Durations(
		flagcheck.Duration{Flag: flagReadHeaderTimeout, Value: c.ReadHeaderTimeout},
		flagcheck.Duration{Flag: flagReadTimeout, Value: c.ReadTimeout},
		flagcheck.Duration{Flag: flagWriteTimeout, Value: c.WriteTimeout},
		flagcheck.Duration{Flag: flagIdleTimeout, Value: c.IdleTimeout},
	)}
	if c.MaxHeaderBytes < 1<<10 {
		errs = append(errs, fmt.Errorf("invalid --%s %d: must be at least 1024", flagMaxHeaderBytes, c.MaxHeaderBytes))
	}
	return errors.Join(errs...)
}

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

// newServer returns an HTTP server with every limit set. Each listener
// gets its own server: web.Serve installs its TLS and auth wrapper on the
// server it is given, so sharing one would wrap the handler twice and race.
//
// Besides HTTP/1 and HTTP/2 over TLS it serves HTTP/2 without TLS to
// clients that start with the HTTP/2 preface (h2c with prior knowledge),
// as gRPC-style and some proxy clients do; before, such a connection was
// dropped without an answer. The same limits apply to every protocol.
func newServer(h http.Handler, c serverConfig, logger *slog.Logger) *http.Server {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Server{
		Protocols:         &protocols,
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
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
