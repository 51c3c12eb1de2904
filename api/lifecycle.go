package api

import (
	"net/http"
	"net/http/pprof"
	"strings"
)

// healthy serves /-/healthy and /-/ready. pushring has no global write
// queue that could fill up, so a peer that answers is healthy and ready.
func (a *API) healthy(w http.ResponseWriter, _ *http.Request) error {
	writeText(w, http.StatusOK, "OK")
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

// quitMethod answers GET /-/quit. The Pushgateway registers it without the
// route prefix, which is a bug; we register it under the prefix like every
// other route.
func quitMethod(http.ResponseWriter, *http.Request) error { return errQuitMethod }

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
