package loadtest

import (
	"context"
	"fmt"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// maxProblems bounds how many problem descriptions a CheckReport keeps.
const maxProblems = 10

// CheckReport is the completeness check of one run: which pushed groups
// the peers expose, how often and with which values.
type CheckReport struct {
	Peers      []PeerScrape `json:"peers"`
	Expected   int          `json:"expected"`   // groups with an acknowledged push that must be exposed
	OKGroups   int          `json:"groups_ok"`  // exposed once, last value, all metrics
	Missing    int          `json:"missing"`    // exposed by no peer
	Duplicated int          `json:"duplicated"` // exposed more than once across peers
	Stale      int          `json:"stale"`      // exposed once with an older seq than the last acknowledged
	Incomplete int          `json:"incomplete"` // exposed once with fewer or more metrics than pushed
	Unacked    int          `json:"unacked"`    // every push failed: nothing to expect
	Lapsed     int          `json:"lapsed"`     // live, but its TTL ran out before the check scraped: not judged
	Churned    int          `json:"churned"`    // acknowledged, stopped halfway, with a TTL: must expire
	Expired    int          `json:"expired"`    // churned groups gone by TTL + grace
	Extra      int          `json:"extra"`      // groups of the job nobody pushed in this run
	OK         bool         `json:"ok"`
	Problems   []string     `json:"problems,omitempty"`
	// First is the first scrape's verdict when it found problems and
	// -check-wait made the check scrape again; the fields above are then
	// the last scrape's, WaitedSeconds after the first.
	First         *CheckReport `json:"first_scrape,omitempty"`
	WaitedSeconds float64      `json:"waited_seconds,omitempty"`
}

// PeerScrape is one peer's /metrics as the check saw it (last scrape).
type PeerScrape struct {
	URL    string `json:"url"`
	Groups int    `json:"groups"` // groups of the job it exposes
	Bytes  int    `json:"bytes"`
	Error  string `json:"error,omitempty"`
}

// exposure is what the peers expose of one group.
type exposure struct {
	seqs    []float64 // one per exposed copy of the seq gauge
	peers   []string  // the peer of each copy in seqs
	metrics int       // metrics of the pushed families, all copies
}

// checker scrapes the peers and compares them with the nodes.
type checker struct {
	cfg   *Config
	sc    scraper
	peers []string
	nodes []*node
}

// run checks the live groups now and, with -check-wait, again every
// second until they are all fine or the wait is over; then it waits
// (bounded) for churned groups to expire when a TTL was sent.
func (c *checker) run(ctx context.Context) *CheckReport {
	start := time.Now()
	rep, seen := c.checkLive(ctx)
	if !rep.liveOK() && c.cfg.CheckWait > 0 {
		first := *rep
		deadline := start.Add(c.cfg.CheckWait)
		for !rep.liveOK() && time.Now().Before(deadline) && sleepUntil(ctx, minTime(time.Now().Add(time.Second), deadline)) {
			rep, seen = c.checkLive(ctx)
		}
		rep.First, rep.WaitedSeconds = &first, time.Since(start).Seconds()
	}
	c.awaitExpiry(ctx, rep, seen)
	rep.OK = rep.liveOK() && rep.Expired == rep.Churned
	return rep
}

// checkLive scrapes every peer once and judges the live groups.
func (c *checker) checkLive(ctx context.Context) (*CheckReport, map[string]*exposure) {
	rep := &CheckReport{}
	scraped := time.Now()
	seen := c.scrapeAll(ctx, rep)
	c.compareLive(rep, seen, scraped)
	c.countExtra(rep, seen)
	return rep, seen
}

// liveOK reports whether every live group was fine and every peer answered.
func (r *CheckReport) liveOK() bool {
	return r.Expected > 0 && r.OKGroups == r.Expected && peersOK(r.Peers)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// scrapeAll scrapes every peer and indexes the job's groups by instance.
func (c *checker) scrapeAll(ctx context.Context, rep *CheckReport) map[string]*exposure {
	seen := map[string]*exposure{}
	rep.Peers = rep.Peers[:0]
	for _, url := range c.peers {
		ps := PeerScrape{URL: url}
		if err := c.scrapePeer(ctx, url, seen, &ps); err != nil {
			ps.Error = err.Error()
		}
		rep.Peers = append(rep.Peers, ps)
	}
	return seen
}

func (c *checker) scrapePeer(ctx context.Context, url string, seen map[string]*exposure, ps *PeerScrape) error {
	sctx, cancel := context.WithTimeout(ctx, c.cfg.ScrapeTimeout)
	defer cancel()
	res, err := c.sc.fetch(sctx, url)
	if err != nil {
		return err
	}
	ps.Bytes = res.wire
	fams, err := parseExposition(res.body)
	if err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	groups := map[string]bool{}
	for _, name := range pushedFamilies {
		if mf := fams[name]; mf != nil {
			c.index(mf, url, seen, groups)
		}
	}
	ps.Groups = len(groups)
	return nil
}

// index adds mf's metrics of the run's job, scraped from peer, to seen.
func (c *checker) index(mf *dto.MetricFamily, peer string, seen map[string]*exposure, groups map[string]bool) {
	for _, m := range mf.GetMetric() {
		job, inst := groupLabels(m)
		if job != c.cfg.Job {
			continue
		}
		e := seen[inst]
		if e == nil {
			e = &exposure{}
			seen[inst] = e
		}
		e.metrics++
		groups[inst] = true
		if mf.GetName() == SeqMetric {
			e.seqs = append(e.seqs, m.GetGauge().GetValue())
			e.peers = append(e.peers, peer)
		}
	}
}

func groupLabels(m *dto.Metric) (job, instance string) {
	for _, l := range m.GetLabel() {
		switch l.GetName() {
		case "job":
			job = l.GetValue()
		case "instance":
			instance = l.GetValue()
		}
	}
	return job, instance
}

// expectGone reports whether n's group must expire rather than stay: it
// was stored (acknowledged) once, then stopped, and carries a TTL.
func (c *checker) expectGone(n *node) bool { return n.churned && c.cfg.TTL > 0 && n.acked > 0 }

// compareLive classifies every group that must still be exposed when the
// scrape started at scraped.
func (c *checker) compareLive(rep *CheckReport, seen map[string]*exposure, scraped time.Time) {
	want := metricsPerGroup(c.cfg.Series)
	for _, n := range c.nodes {
		switch {
		case n.acked == 0:
			if n.attempted > 0 {
				rep.Unacked++
			}
			continue
		case c.expectGone(n):
			rep.Churned++
			continue
		case c.cfg.TTL > 0 && scraped.After(n.ackedSent.Add(c.cfg.TTL)):
			// The check came too late to tell expiry from loss (a very
			// short -ttl, or a slow scrape).
			rep.Lapsed++
			continue
		}
		rep.Expected++
		v, why := judge(n, seen[n.name], want)
		rep.count(v, why)
	}
}

// verdict is the outcome of checking one live group.
type verdict int

const (
	groupOK verdict = iota
	groupMissing
	groupDuplicated
	groupStale
	groupIncomplete
)

// judge says what is wrong with one live group's exposure, and why.
func judge(n *node, e *exposure, want int) (verdict, string) {
	switch {
	case e == nil || len(e.seqs) == 0:
		return groupMissing, fmt.Sprintf("missing: %s (last acknowledged seq %d)", n.name, n.acked)
	case len(e.seqs) > 1:
		return groupDuplicated, fmt.Sprintf("duplicated: %s exposed %d times (%v)", n.name, len(e.seqs), e.peers)
	case e.seqs[0] < float64(n.acked) || e.seqs[0] > float64(n.attempted):
		return groupStale, fmt.Sprintf("stale: %s exposes seq %v at %s, last acknowledged %d (last sent %d)", n.name, e.seqs[0], e.peers[0], n.acked, n.attempted)
	case e.metrics != want:
		return groupIncomplete, fmt.Sprintf("incomplete: %s exposes %d of %d pushed metrics", n.name, e.metrics, want)
	}
	return groupOK, ""
}

// count adds a verdict to the report and keeps the first problems' texts.
func (r *CheckReport) count(v verdict, why string) {
	counters := map[verdict]*int{
		groupOK: &r.OKGroups, groupMissing: &r.Missing, groupDuplicated: &r.Duplicated,
		groupStale: &r.Stale, groupIncomplete: &r.Incomplete,
	}
	*counters[v]++
	if why != "" && len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, why)
	}
}

// awaitExpiry re-scrapes until every churned group is gone or the last one
// is TTLGrace past its deadline, and counts the expired ones.
func (c *checker) awaitExpiry(ctx context.Context, rep *CheckReport, seen map[string]*exposure) {
	if rep.Churned == 0 {
		return
	}
	deadline := c.expiryDeadline()
	poll := min(max(c.cfg.TTL/4, 50*time.Millisecond), time.Second)
	for c.stillExposed(seen) > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(poll, time.Until(deadline))):
		}
		seen = c.scrapeAll(ctx, rep) // a failing peer then fails the check
	}
	left := c.stillExposed(seen)
	rep.Expired = rep.Churned - left
	if left > 0 && len(rep.Problems) < maxProblems {
		rep.Problems = append(rep.Problems, fmt.Sprintf("not expired: %d churned groups still exposed %v after their last push (ttl %v + grace %v)",
			left, time.Since(deadline.Add(-c.cfg.TTL-c.cfg.TTLGrace)).Round(time.Millisecond), c.cfg.TTL, c.cfg.TTLGrace))
	}
}

// expiryDeadline is the latest time a churned group may still be exposed.
func (c *checker) expiryDeadline() time.Time {
	var last time.Time
	for _, n := range c.nodes {
		if c.expectGone(n) && n.ackedAt.After(last) {
			last = n.ackedAt
		}
	}
	if last.IsZero() {
		last = time.Now()
	}
	return last.Add(c.cfg.TTL + c.cfg.TTLGrace)
}

func (c *checker) stillExposed(seen map[string]*exposure) int {
	left := 0
	for _, n := range c.nodes {
		if c.expectGone(n) && seen[n.name] != nil {
			left++
		}
	}
	return left
}

// countExtra counts exposed groups of the job that no node of this run is.
func (c *checker) countExtra(rep *CheckReport, seen map[string]*exposure) {
	names := make([]string, 0, len(c.nodes))
	for _, n := range c.nodes {
		names = append(names, n.name)
	}
	slices.Sort(names)
	for inst := range seen {
		if _, found := slices.BinarySearch(names, inst); !found {
			rep.Extra++
		}
	}
}

func peersOK(peers []PeerScrape) bool {
	for _, p := range peers {
		if p.Error != "" {
			return false
		}
	}
	return len(peers) > 0
}
