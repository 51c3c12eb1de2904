package loadtest

import (
	"bytes"
	"context"
	"fmt"
)

// ScrapeReport is the scrape measurement (-mode=scrape): after every group
// was pushed once, Scrapes timed scrapes of each peer, and the memory the
// spawned target needed to hold the series.
type ScrapeReport struct {
	Series              int      `json:"series"`  // series of the run's job exposed by all peers (first scrape), push-time gauges included
	Scrapes             int      `json:"scrapes"` // per peer
	Bytes               int      `json:"bytes"`   // one scrape of every peer, on the wire
	Latency             Latency  `json:"latency"` // one scrape of one peer
	Errors              []string `json:"errors,omitempty"`
	RSSBeforeBytes      uint64   `json:"rss_before_bytes,omitempty"` // spawned targets only, summed over peers
	RSSAfterFillBytes   uint64   `json:"rss_after_fill_bytes,omitempty"`
	RSSAfterScrapeBytes uint64   `json:"rss_after_scrape_bytes,omitempty"`
	RSSPerSeriesBytes   float64  `json:"rss_per_series_bytes,omitempty"` // (after fill − before) / series
}

// measureScrapes times cfg.Scrapes scrapes of every peer and reads the
// target's memory around them.
func measureScrapes(ctx context.Context, cfg *Config, sc scraper, peers []string, t *target, rssBefore uint64) *ScrapeReport {
	rep := &ScrapeReport{Scrapes: cfg.Scrapes, RSSBeforeBytes: rssBefore}
	rep.RSSAfterFillBytes = t.rss()
	var h Histogram
	for i := range cfg.Scrapes {
		for _, url := range peers {
			res, err := sc.fetch(ctx, url)
			if err != nil {
				rep.Errors = append(rep.Errors, fmt.Sprintf("scrape %d: %v", i, err))
				continue
			}
			h.Record(res.took)
			if i == 0 {
				rep.Bytes += res.wire
				rep.Series += countJobSeries(res.body, cfg.Job)
			}
		}
	}
	rep.Latency = summarize(&h)
	rep.RSSAfterScrapeBytes = t.rss()
	// Per series actually stored: with a series limit, or failed pushes,
	// that is fewer than groups × series per group.
	if rssBefore > 0 && rep.RSSAfterFillBytes > rssBefore && rep.Series > 0 {
		rep.RSSPerSeriesBytes = float64(rep.RSSAfterFillBytes-rssBefore) / float64(rep.Series)
	}
	return rep
}

// countJobSeries counts the sample lines of a text exposition that carry
// job="<job>": the series the run pushed, as the target stores them.
func countJobSeries(body []byte, job string) int {
	needle := []byte(`job="` + job + `"`)
	n := 0
	for line := range bytes.SplitSeq(body, []byte("\n")) {
		if len(line) > 0 && line[0] != '#' && bytes.Contains(line, needle) {
			n++
		}
	}
	return n
}
