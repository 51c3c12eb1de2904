package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxSDBody bounds an HTTP-SD answer; Prometheus itself applies no limit,
// but a harness should not read an endless body.
const maxSDBody = 16 << 20

// sdGroup is one target group of Prometheus HTTP service discovery
// (docs/http_sd.md): targets are host:port, labels may set the scheme and
// metrics path through __scheme__ and __metrics_path__.
type sdGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// parseSD turns an HTTP-SD document into the /metrics URLs it describes,
// without duplicates and in document order.
func parseSD(r io.Reader) ([]string, error) {
	var groups []sdGroup
	if err := json.NewDecoder(io.LimitReader(r, maxSDBody)).Decode(&groups); err != nil {
		return nil, fmt.Errorf("decode http_sd document: %w", err)
	}
	seen := map[string]bool{}
	var urls []string
	for gi, g := range groups {
		scheme := labelOr(g.Labels, "__scheme__", "http")
		path := labelOr(g.Labels, "__metrics_path__", "/metrics")
		for _, t := range g.Targets {
			if t == "" || strings.Contains(t, "/") {
				return nil, fmt.Errorf("http_sd group %d: target %q is not host:port", gi, t)
			}
			u := scheme + "://" + t + ensureSlash(path)
			if !seen[u] {
				seen[u] = true
				urls = append(urls, u)
			}
		}
	}
	return urls, nil
}

func labelOr(labels map[string]string, name, def string) string {
	if v := labels[name]; v != "" {
		return v
	}
	return def
}

func ensureSlash(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return "/" + p
}

// discover fetches sdURL and returns the peers' /metrics URLs.
func discover(ctx context.Context, client *http.Client, sdURL string) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sdURL, nil)
	if err != nil {
		return nil, fmt.Errorf("http_sd request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch http_sd %s: %w", sdURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch http_sd %s: status %d", sdURL, resp.StatusCode)
	}
	urls, err := parseSD(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("http_sd %s: %w", sdURL, err)
	}
	if len(urls) == 0 {
		return nil, errors.New("http_sd " + sdURL + " lists no targets")
	}
	return urls, nil
}
