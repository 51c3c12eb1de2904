package loadtest

import (
	"context"
	"fmt"
)

// ScrapeReport is the scrape measurement (-mode=scrape): after every group
// was pushed once, Scrapes timed scrapes of each peer, and the memory the
// spawned target needed to hold the series.
type ScrapeReport struct {
	Series              int      `json:"series"`  // groups × series per group
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
	rep := &ScrapeReport{Series: cfg.Nodes * cfg.Series, Scrapes: cfg.Scrapes, RSSBeforeBytes: rssBefore}
	rep.RSSAfterFillBytes = t.rss()
	if rssBefore > 0 && rep.RSSAfterFillBytes > rssBefore {
		rep.RSSPerSeriesBytes = float64(rep.RSSAfterFillBytes-rssBefore) / float64(rep.Series)
	}
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
			}
		}
	}
	rep.Latency = summarize(&h)
	rep.RSSAfterScrapeBytes = t.rss()
	return rep
}
