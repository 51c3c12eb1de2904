package api

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/common/version"

	"github.com/pushring/pushring/ingest"
)

// statusData is the status page.
type statusData struct {
	uiBase
	Build             []nameValue
	StartTime         string
	Flags             []nameValue
	PersistenceFile   string
	PersistenceLast   string
	PersistenceErrors string
	DefaultTTL        string
	RulesFile         string
	Rules             []ingest.TTLRule
}

// Self-metrics the status page reads back.
const (
	persistLastSuccessMetric = "pushring_persistence_last_success_timestamp_seconds"
	persistWritesMetric      = "pushring_persistence_writes_total"
)

// statusPage serves the build, the start time, every flag, persistence and
// the TTL rules in force.
func (a *API) statusPage(w http.ResponseWriter, r *http.Request) error {
	now := time.Now()
	d := statusData{
		uiBase:          a.uiBase(r, "Status", "status"),
		Build:           sortedPairs(a.cfg.BuildInfo),
		StartTime:       whenText(a.cfg.StartTime, now),
		Flags:           sortedPairs(a.cfg.Flags),
		PersistenceFile: a.cfg.Flags["persistence.file"],
		PersistenceLast: "never since the start",
		DefaultTTL:      cmp.Or(a.cfg.Flags["push.ttl"], "0s"),
		RulesFile:       a.cfg.Flags["push.ttl-rules-file"],
		Rules:           a.ingester.TTLRules(),
	}
	if len(d.Build) == 0 {
		d.Build = []nameValue{{"version", cmp.Or(version.Version, "unknown")}}
	}
	if d.DefaultTTL == "0s" {
		d.DefaultTTL = "0s: groups never expire unless a rule or header says so"
	}
	if d.PersistenceFile == "" {
		d.PersistenceLast = "no file"
	}
	a.persistenceFacts(&d, now)
	return a.render(w, http.StatusOK, "status", d)
}

// persistenceFacts reads the last successful write and the failed writes
// from the gateway's own metrics.
func (a *API) persistenceFacts(d *statusData, now time.Time) {
	if a.own == nil || d.PersistenceFile == "" {
		return
	}
	mfs, err := a.own.Gather()
	if err != nil {
		d.PersistenceLast = "unknown: " + err.Error()
		return
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case persistLastSuccessMetric:
			if len(mf.GetMetric()) > 0 {
				if t, ok := unixTime(mf.Metric[0].GetGauge().GetValue()); ok {
					d.PersistenceLast = whenText(t, now)
				}
			}
		case persistWritesMetric:
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == "result" && lp.GetValue() == "error" && m.GetCounter().GetValue() > 0 {
						d.PersistenceErrors = fmt.Sprintf("%g since the start (see the log)", m.GetCounter().GetValue())
					}
				}
			}
		}
	}
}

// sortedPairs is m sorted by key.
func sortedPairs(m map[string]string) []nameValue {
	out := make([]nameValue, 0, len(m))
	for k, v := range m {
		out = append(out, nameValue{k, v})
	}
	slices.SortFunc(out, func(x, y nameValue) int { return cmp.Compare(x.Name, y.Name) })
	return out
}
