package loadtest

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeAccept asks for the text format every Pushgateway-compatible
// target serves, so the check never depends on content negotiation.
const scrapeAccept = "text/plain;version=0.0.4;q=1,*/*;q=0.1"

// scraper fetches /metrics pages the way Prometheus does.
type scraper struct {
	client *http.Client
	gzip   bool // ask for gzip and count compressed bytes
}

// scrapeResult is one fetched page.
type scrapeResult struct {
	body []byte // decompressed
	wire int    // bytes on the wire
	took time.Duration
}

// fetch GETs url and reads the whole answer.
func (s scraper) fetch(ctx context.Context, url string) (scrapeResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return scrapeResult{}, fmt.Errorf("scrape request: %w", err)
	}
	req.Header.Set("Accept", scrapeAccept)
	if s.gzip {
		req.Header.Set("Accept-Encoding", "gzip") // set by hand, so the transport leaves it compressed
	}
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		return scrapeResult{}, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil {
		return scrapeResult{}, fmt.Errorf("scrape %s: read: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return scrapeResult{}, fmt.Errorf("scrape %s: status %d: %.200s", url, resp.StatusCode, raw)
	}
	body, err := maybeGunzip(raw, resp.Header.Get("Content-Encoding"))
	if err != nil {
		return scrapeResult{}, fmt.Errorf("scrape %s: %w", url, err)
	}
	return scrapeResult{body: body, wire: len(raw), took: took}, nil
}

func maybeGunzip(raw []byte, encoding string) ([]byte, error) {
	if encoding != "gzip" {
		return raw, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	defer zr.Close()
	body, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	return body, nil
}

// parseExposition parses a text-format page.
func parseExposition(body []byte) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parse exposition: %w", err)
	}
	return fams, nil
}
