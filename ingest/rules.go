package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/pushring/pushring/store"
)

// A TTL rules file (--push.ttl-rules-file) looks like this:
//
//	rules:
//	  - job: "batch-.*"     # required; a regex
//	    labels:             # optional; other grouping labels, each a regex
//	      instance: "edge-.*"
//	    ttl: 10m            # required; a Go duration, 0 = never expires
//
// Every regex is fully anchored, as in Prometheus relabelling: "batch"
// matches the job "batch" and not "batch-2". A label the grouping key does
// not have is matched as the empty string, so only a regex that matches ""
// matches its absence. The first rule that matches a group's key wins.

// rulesFileYAML is the file's schema; decoding is strict, so a misspelt
// field is an error rather than a silently ignored rule.
type rulesFileYAML struct {
	Rules []ruleYAML `yaml:"rules"`
}

// ruleYAML is one rule as written. TTL is a string (any YAML scalar
// decodes into one) so that "0" and "10m" take the same path through
// time.ParseDuration, and a pointer so that a missing ttl is an error
// rather than a zero.
type ruleYAML struct {
	Job    string            `yaml:"job"`
	Labels map[string]string `yaml:"labels"`
	TTL    *string           `yaml:"ttl"`
}

// ttlRules is one loaded rules file. It is never modified once built, so
// the Ingester swaps whole values behind an atomic pointer and pushes read
// it without a lock. A nil *ttlRules has no rules.
type ttlRules struct {
	rules []ttlRule
}

// ttlRule is one compiled rule.
type ttlRule struct {
	job    *regexp.Regexp
	labels []labelMatcher // in name order, so a rule's errors are reported in a fixed order
	ttl    time.Duration
}

// labelMatcher matches the value of one grouping label.
type labelMatcher struct {
	name string
	re   *regexp.Regexp
}

// len returns the number of rules.
func (rs *ttlRules) len() int {
	if rs == nil {
		return 0
	}
	return len(rs.rules)
}

// match returns the TTL of the first rule matching the grouping labels ls
// (a key's Labels), and whether one did. It is linear in the rules; files
// hold a handful of them.
func (rs *ttlRules) match(ls []store.Label) (time.Duration, bool) {
	if rs.len() == 0 {
		return 0, false
	}
	for i := range rs.rules {
		if rs.rules[i].matches(ls) {
			return rs.rules[i].ttl, true
		}
	}
	return 0, false
}

// matches reports whether the rule matches the grouping labels ls.
func (r *ttlRule) matches(ls []store.Label) bool {
	if !r.job.MatchString(labelValue(ls, jobLabel)) {
		return false
	}
	for _, m := range r.labels {
		if !m.re.MatchString(labelValue(ls, m.name)) {
			return false
		}
	}
	return true
}

// labelValue returns the value of label name in ls, "" if it is absent.
func labelValue(ls []store.Label, name string) string {
	for _, l := range ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// loadRules reads and compiles a rules file; "" means no rules. The error
// names the flag and the file, and parseRules' errors the rule and field.
func loadRules(file string) (*ttlRules, error) {
	if file == "" {
		return &ttlRules{}, nil
	}
	data, err := os.ReadFile(file)
	if err == nil {
		var rs *ttlRules
		if rs, err = parseRules(data); err == nil {
			return rs, nil
		}
	}
	return nil, fmt.Errorf("load --%s=%q: %w", flagTTLRulesFile, file, err)
}

// parseRules decodes a rules file strictly and compiles its rules. An empty
// file has no rules.
func parseRules(data []byte) (*ttlRules, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f rulesFileYAML
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return &ttlRules{}, nil
		}
		return nil, rulesYAMLError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document; put every rule under one rules key")
	}
	rs := &ttlRules{rules: make([]ttlRule, 0, len(f.Rules))}
	for i, ry := range f.Rules {
		r, err := compileRule(ry)
		if err != nil {
			return nil, fmt.Errorf("rules[%d].%w", i, err)
		}
		rs.rules = append(rs.rules, r)
	}
	return rs, nil
}

// compileRule checks and compiles one rule. Its errors start with the
// field's path within the rule, for parseRules to prefix with the rule's.
func compileRule(ry ruleYAML) (ttlRule, error) {
	if ry.Job == "" {
		return ttlRule{}, errors.New("job: missing; every rule needs a job regex (\".+\" matches every job)")
	}
	job, err := compileAnchored(ry.Job)
	if err != nil {
		return ttlRule{}, fmt.Errorf("job: %w", err)
	}
	r := ttlRule{job: job, labels: make([]labelMatcher, 0, len(ry.Labels))}
	names := make([]string, 0, len(ry.Labels))
	for name := range ry.Labels {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		m, err := compileMatcher(name, ry.Labels[name])
		if err != nil {
			return ttlRule{}, fmt.Errorf("labels.%s: %w", name, err)
		}
		r.labels = append(r.labels, m)
	}
	if ry.TTL == nil {
		return ttlRule{}, errors.New("ttl: missing; every rule needs a ttl such as 10m, or 0 for never")
	}
	if r.ttl, err = parseTTL(*ry.TTL); err != nil {
		return ttlRule{}, fmt.Errorf("ttl: %q: %w", *ry.TTL, err)
	}
	return r, nil
}

// compileMatcher compiles the regex of grouping label name.
func compileMatcher(name, expr string) (labelMatcher, error) {
	switch {
	case name == jobLabel:
		return labelMatcher{}, errors.New("the job is matched by the rule's job field, not under labels")
	case !validLabelName(name):
		return labelMatcher{}, errors.New("not a grouping label name; names match [a-zA-Z_][a-zA-Z0-9_]* and do not start with __")
	}
	re, err := compileAnchored(expr)
	if err != nil {
		return labelMatcher{}, err
	}
	return labelMatcher{name: name, re: re}, nil
}

// compileAnchored compiles expr so that it must match a whole value. expr
// is compiled alone first, so the error shows what the operator wrote and
// an expression such as "a)|(b" cannot escape the anchors.
func compileAnchored(expr string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(expr); err != nil {
		return nil, fmt.Errorf("invalid regex %q: %w", expr, err)
	}
	return regexp.Compile("^(?:" + expr + ")$")
}

// parseTTL parses a TTL (parseDuration) and checks its range.
func parseTTL(s string) (time.Duration, error) {
	d, err := parseDuration(s)
	if err != nil {
		return 0, err
	}
	return d, checkTTL(d)
}

// parseDuration parses a duration in Go's syntax (90s, 1h30m, 1.5h) or in
// Prometheus' (model.ParseDuration: also d, w and y units, e.g. 2d or 1w),
// the syntax of the Pushgateway's TTL forks.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0, errors.New("not a duration such as 90s, 5m, 1h30m, 2d or 1w")
	}
	return time.Duration(d), nil
}

// checkTTL rejects a TTL that is negative or longer than MaxTTL.
func checkTTL(d time.Duration) error {
	switch {
	case d < 0:
		return errors.New("negative; use 0 for a group that never expires")
	case d > MaxTTL:
		return fmt.Errorf("longer than the maximum of %s (10 years); use 0 for a group that never expires", MaxTTL)
	}
	return nil
}
