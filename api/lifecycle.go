package api

import (
	"net/http"
	"net/http/pprof"
	"strings"
)

// healthy serves /-/healthy: a process that answers is healthy. It stays a
// constant, so a liveness probe never restarts a peer that is merely busy.
func (a *API) healthy(w http.ResponseWriter, _ *http.Request) error {
	writeText(w, http.StatusOK, "OK")
	return nil
}

// ready serves /-/ready: not ready until the peer has joined its cluster
// and its view of the members settled, once it is leaving, and while every
// push slot is taken and pushes wait for one, so a load balancer steers new
// pushers to other peers. It reads a few flags and never waits.
func (a *API) ready(w http.ResponseWriter, _ *http.Request) error {
	if err := a.cluster.Ready(); err != nil {
		writeText(w, http.StatusServiceUnavailable, err.Error())
		return nil
	}
	if a.admit.saturated() {
		writeText(w, http.StatusServiceUnavailable, "overloaded")
		return nil
	}
	writeText(w, http.StatusOK, "OK")
	return nil
}

// reloadHandler serves PUT and POST /-/reload: with --web.enable-lifecycle
// it re-reads the TTL rules file, as SIGHUP does. A broken file keeps the
// rules in force and is a 500 whose body is the ingester's error, which
// names the file, the rule and the field. The ingester logs the outcome.
func (a *API) reloadHandler(w http.ResponseWriter, _ *http.Request) error {
	if !a.cfg.EnableLifecycle {
		return errLifecycleDisabled
	}
	if err := a.ingester.ReloadRules(); err != nil {
		return &statusError{code: http.StatusInternalServerError, text: err.Error()}
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// quitHandler serves PUT and POST /-/quit: with --web.enable-lifecycle it
// asks the process to shut down gracefully (Quit is closed, once).
func (a *API) quitHandler(w http.ResponseWriter, _ *http.Request) error {
	if !a.cfg.EnableLifecycle {
		return errLifecycleDisabled
	}
	writeText(w, http.StatusOK, "Requesting termination... Goodbye!")
	a.quitOnce.Do(func() { close(a.quit) })
	return nil
}

// lifecycleMethod answers GET /-/quit and GET /-/reload. The Pushgateway
// registers GET /-/quit without the route prefix, which is a bug; we
// register both under the prefix like every other route.
func lifecycleMethod(http.ResponseWriter, *http.Request) error { return errQuitMethod }

// pprofHandler serves /debug/pprof/ on our own mux. pprof.Index finds a named
// profile only below the unprefixed /debug/pprof/, so the name is taken
// from the pattern, which works under any route prefix.
func pprofHandler(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if strings.HasSuffix(r.URL.Path, "/symbol") && name == "" {
		name = "symbol" // POST /debug/pprof/symbol has no wildcard
	}
	switch name {
	case "":
		pprof.Index(w, r)
	case "cmdline":
		pprof.Cmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		pprof.Handler(name).ServeHTTP(w, r)
	}
	return nil
}

// writeText writes a short text/plain answer without a trailing newline.
func writeText(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(text))
}
