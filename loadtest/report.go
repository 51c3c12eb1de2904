package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary is what one invocation produces: a Report per target, in the
// order they ran. Its JSON shape (-json) is stable; fields are only added.
type Summary struct {
	Runs []Report `json:"runs"`
}

// Report is the outcome of one run against one target.
type Report struct {
	Target          string        `json:"target"` // "pushring", "pushgateway" or "url"
	URLs            []string      `json:"urls"`
	Mode            Mode          `json:"mode"`
	Groups          int           `json:"groups"`
	SeriesPerGroup  int           `json:"series_per_group"`
	Format          Format        `json:"format"`
	Method          Method        `json:"method"`
	DurationSeconds float64       `json:"duration_seconds"` // measured push phase
	Pushes          uint64        `json:"pushes"`           // attempted
	Succeeded       uint64        `json:"succeeded"`
	PushesPerSecond float64       `json:"pushes_per_second"` // succeeded per second
	SeriesPerSecond float64       `json:"series_per_second"`
	BytesSent       uint64        `json:"bytes_sent"`
	SkippedTicks    uint64        `json:"skipped_ticks"` // fleet: ticks a busy node missed
	Latency         Latency       `json:"latency"`       // successful pushes
	ScheduleLag     *Latency      `json:"schedule_lag,omitempty"`
	Errors          ErrorCounts   `json:"errors"`
	Goroutines      int           `json:"client_goroutines"` // left after the run, above the baseline
	Kill            *KillReport   `json:"kill,omitempty"`
	Check           *CheckReport  `json:"check,omitempty"`
	Scrape          *ScrapeReport `json:"scrape,omitempty"`
}

// Latency summarises a Histogram in milliseconds.
type Latency struct {
	Count  uint64  `json:"count"`
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P99MS  float64 `json:"p99_ms"`
	MaxMS  float64 `json:"max_ms"`
}

// ErrorCounts counts failed pushes by class (see ErrorClass).
type ErrorCounts struct {
	Total       uint64            `json:"total"`
	Timeout     uint64            `json:"timeout"`
	Connection  uint64            `json:"connection"`
	Status4xx   uint64            `json:"status_4xx"`
	Status5xx   uint64            `json:"status_5xx"`
	Canceled    uint64            `json:"canceled"`
	Killed      uint64            `json:"killed_in_flight"` // on their way to a peer when the harness killed it
	Other       uint64            `json:"other"`
	StatusCodes map[string]uint64 `json:"status_codes"`
	// RetryAfter counts, by status code, the failed pushes whose answer
	// carried a Retry-After header.
	RetryAfter map[string]uint64 `json:"retry_after"`
	Samples    []string          `json:"samples,omitempty"`
}

// summarize reads a histogram into a Latency.
func summarize(h *Histogram) Latency {
	return Latency{
		Count: h.Count(), MeanMS: ms(h.Mean()), P50MS: ms(h.Quantile(.5)),
		P90MS: ms(h.Quantile(.9)), P99MS: ms(h.Quantile(.99)), MaxMS: ms(h.Max()),
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// WriteJSON writes the summary as indented JSON.
func WriteJSON(w io.Writer, s Summary) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	return nil
}

// WriteTable writes the summary as a table with one column per run, then
// the error samples and check findings of each run.
func WriteTable(w io.Writer, s Summary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := []string{""}
	for _, r := range s.Runs {
		header = append(header, r.Target)
	}
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	for _, row := range tableRows(s.Runs) {
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	for _, r := range s.Runs {
		writeFindings(w, r)
	}
	return nil
}

// tableRows renders the runs' figures row by row, skipping sections (check,
// scrape) that no run has.
func tableRows(runs []Report) [][]string {
	var rows [][]string
	for _, f := range reportFields(runs) {
		row := []string{f.label}
		for _, r := range runs {
			row = append(row, f.value(r))
		}
		rows = append(rows, row)
	}
	return rows
}

// writeFindings lists a run's error samples and check problems.
func writeFindings(w io.Writer, r Report) {
	for _, e := range r.Errors.Samples {
		fmt.Fprintf(w, "%s error: %s\n", r.Target, e)
	}
	if r.Kill != nil && r.Kill.Error != "" {
		fmt.Fprintf(w, "%s kill of %s: %s\n", r.Target, r.Kill.Peer, r.Kill.Error)
	}
	if r.Scrape != nil {
		for _, e := range r.Scrape.Errors {
			fmt.Fprintf(w, "%s scrape error: %s\n", r.Target, e)
		}
	}
	if r.Check == nil {
		return
	}
	if r.Check.First != nil {
		for _, p := range r.Check.First.Problems {
			fmt.Fprintf(w, "%s check, first scrape: %s\n", r.Target, p)
		}
	}
	for _, p := range r.Check.Problems {
		fmt.Fprintf(w, "%s check: %s\n", r.Target, p)
	}
	for _, p := range r.Check.Peers {
		if p.Error != "" {
			fmt.Fprintf(w, "%s scrape %s: %s\n", r.Target, p.URL, p.Error)
		}
	}
}
