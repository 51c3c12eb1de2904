package loadtest

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// field is one row of the table: a label and how to read it from a Report.
type field struct {
	label string
	value func(Report) string
}

// reportFields lists the table rows for runs; check and scrape rows appear
// only when some run has those sections.
func reportFields(runs []Report) []field {
	fs := pushFields()
	for _, r := range runs {
		if r.Kill != nil {
			fs = append(fs, killFields()...)
			break
		}
	}
	for _, r := range runs {
		if r.Check != nil {
			fs = append(fs, checkFields()...)
			break
		}
	}
	for _, r := range runs {
		if r.Scrape != nil {
			fs = append(fs, scrapeFields()...)
			break
		}
	}
	return fs
}

func pushFields() []field {
	return []field{
		{"mode", func(r Report) string { return fmt.Sprintf("%s %s/%s", r.Mode, r.Method, r.Format) }},
		{"groups × series", func(r Report) string { return fmt.Sprintf("%d × %d", r.Groups, r.SeriesPerGroup) }},
		{"duration", func(r Report) string { return fmt.Sprintf("%.1fs", r.DurationSeconds) }},
		{"pushes ok/sent", func(r Report) string { return fmt.Sprintf("%d/%d", r.Succeeded, r.Pushes) }},
		{"pushes/s", func(r Report) string { return fmt.Sprintf("%.0f", r.PushesPerSecond) }},
		{"series/s", func(r Report) string { return fmt.Sprintf("%.0f", r.SeriesPerSecond) }},
		{"MB sent", func(r Report) string { return fmt.Sprintf("%.1f", float64(r.BytesSent)/1e6) }},
		{"latency p50/p90/p99", func(r Report) string {
			return fmt.Sprintf("%s/%s/%s ms", num(r.Latency.P50MS), num(r.Latency.P90MS), num(r.Latency.P99MS))
		}},
		{"latency max", func(r Report) string { return num(r.Latency.MaxMS) + " ms" }},
		{"schedule lag p99", func(r Report) string {
			if r.ScheduleLag == nil {
				return "-"
			}
			return num(r.ScheduleLag.P99MS) + " ms"
		}},
		{"skipped ticks", func(r Report) string { return strconv.FormatUint(r.SkippedTicks, 10) }},
		{"errors", func(r Report) string { return errorText(r.Errors) }},
		{"failed by code (with Retry-After)", func(r Report) string { return codesText(r.Errors) }},
		{"client goroutines left", func(r Report) string { return strconv.Itoa(r.Goroutines) }},
	}
}

func checkFields() []field {
	c := func(get func(*CheckReport) string) func(Report) string {
		return func(r Report) string {
			if r.Check == nil {
				return "-"
			}
			return get(r.Check)
		}
	}
	n := func(v int) string { return strconv.Itoa(v) }
	return []field{
		{"check peers", c(func(k *CheckReport) string { return n(len(k.Peers)) })},
		{"check groups ok/expected", c(func(k *CheckReport) string { return fmt.Sprintf("%d/%d", k.OKGroups, k.Expected) })},
		// Nodes none of whose pushes was acknowledged: the check can't
		// expect their groups, but the table must not hide them.
		{"never acknowledged", c(func(k *CheckReport) string { return n(k.Unacked) })},
		{"missing", c(func(k *CheckReport) string { return n(k.Missing) })},
		{"duplicated", c(func(k *CheckReport) string { return n(k.Duplicated) })},
		{"stale", c(func(k *CheckReport) string { return n(k.Stale) })},
		{"incomplete", c(func(k *CheckReport) string { return n(k.Incomplete) })},
		{"lapsed (ttl ran out first)", c(func(k *CheckReport) string { return n(k.Lapsed) })},
		{"churned expired/total", c(func(k *CheckReport) string { return fmt.Sprintf("%d/%d", k.Expired, k.Churned) })},
		{"extra groups", c(func(k *CheckReport) string { return n(k.Extra) })},
		{"first scrape ok/expected", c(func(k *CheckReport) string {
			if k.First == nil {
				return "-"
			}
			return fmt.Sprintf("%d/%d", k.First.OKGroups, k.First.Expected)
		})},
		{"check waited", c(func(k *CheckReport) string {
			if k.First == nil {
				return "-"
			}
			return fmt.Sprintf("%.1fs", k.WaitedSeconds)
		})},
		{"check", c(func(k *CheckReport) string { return passFail(k.OK) })},
	}
}

func scrapeFields() []field {
	s := func(get func(*ScrapeReport) string) func(Report) string {
		return func(r Report) string {
			if r.Scrape == nil {
				return "-"
			}
			return get(r.Scrape)
		}
	}
	return []field{
		{"series stored", s(func(k *ScrapeReport) string { return strconv.Itoa(k.Series) })},
		{"scrape MB", s(func(k *ScrapeReport) string { return fmt.Sprintf("%.1f", float64(k.Bytes)/1e6) })},
		{"scrape p50/p99", s(func(k *ScrapeReport) string {
			return fmt.Sprintf("%s/%s ms", num(k.Latency.P50MS), num(k.Latency.P99MS))
		})},
		{"RSS after fill", s(func(k *ScrapeReport) string { return mib(k.RSSAfterFillBytes) })},
		{"RSS after scrapes", s(func(k *ScrapeReport) string { return mib(k.RSSAfterScrapeBytes) })},
		{"RSS per series", s(func(k *ScrapeReport) string {
			if k.RSSPerSeriesBytes == 0 {
				return "-"
			}
			return fmt.Sprintf("%.0f B", k.RSSPerSeriesBytes)
		})},
	}
}

func errorText(e ErrorCounts) string {
	if e.Total == 0 {
		return "0"
	}
	var parts []string
	for _, c := range []struct {
		name string
		n    uint64
	}{{"timeout", e.Timeout}, {"conn", e.Connection}, {"4xx", e.Status4xx}, {"5xx", e.Status5xx}, {"canceled", e.Canceled}, {"killed", e.Killed}, {"other", e.Other}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", c.name, c.n))
		}
	}
	return fmt.Sprintf("%d (%s)", e.Total, strings.Join(parts, " "))
}

// codesText lists the failed pushes by status code, each with how many
// of them carried Retry-After: "503×12 (12)".
func codesText(e ErrorCounts) string {
	if len(e.StatusCodes) == 0 {
		return "-"
	}
	var parts []string
	for _, code := range slices.Sorted(maps.Keys(e.StatusCodes)) {
		parts = append(parts, fmt.Sprintf("%s×%d (%d)", code, e.StatusCodes[code], e.RetryAfter[code]))
	}
	return strings.Join(parts, " ")
}

func killFields() []field {
	k := func(get func(*KillReport) string) func(Report) string {
		return func(r Report) string {
			if r.Kill == nil {
				return "-"
			}
			return get(r.Kill)
		}
	}
	at := func(s float64) string {
		if s == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1fs", s)
	}
	return []field{
		{"killed peer", k(func(r *KillReport) string { return r.Peer })},
		{"killed/restarted/ready at", k(func(r *KillReport) string {
			s := at(r.KilledAt) + "/" + at(r.RestartedAt) + "/" + at(r.ReadyAt)
			if r.NewPorts {
				s += " (new ports)"
			}
			return s
		})},
		{"pushes in flight to it at the kill", k(func(r *KillReport) string { return strconv.FormatInt(r.InFlight, 10) })},
		{"kill error", k(func(r *KillReport) string {
			if r.Error == "" {
				return "-"
			}
			return oneLine(r.Error, 60)
		})},
	}
}

func num(v float64) string {
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func mib(b uint64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}
