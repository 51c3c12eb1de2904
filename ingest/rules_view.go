package ingest

import (
	"strings"
	"time"
)

// TTLRule is one TTL rule in force, as the status page shows it: the
// regexes as the operator wrote them (each matches a whole value).
type TTLRule struct {
	Job    string
	Labels []RuleLabel // in name order
	TTL    time.Duration
}

// RuleLabel is the regex a rule matches one grouping label with.
type RuleLabel struct {
	Name, Regex string
}

// TTLRules returns the TTL rules in force, in the order they are tried.
func (in *Ingester) TTLRules() []TTLRule {
	rs := in.rules.Load()
	out := make([]TTLRule, 0, rs.len())
	for i := range rs.len() {
		r := &rs.rules[i]
		v := TTLRule{Job: unanchored(r.job.String()), TTL: r.ttl}
		for _, m := range r.labels {
			v.Labels = append(v.Labels, RuleLabel{Name: m.name, Regex: unanchored(m.re.String())})
		}
		out = append(out, v)
	}
	return out
}

// unanchored is the regex compileAnchored was given.
func unanchored(re string) string {
	return strings.TrimSuffix(strings.TrimPrefix(re, "^(?:"), ")$")
}
