package api

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/pushring/pushring/store"
)

// groupFilter selects groups by their grouping labels: label matchers as
// in PromQL (job=~"batch.*", instance!="") and a free text that some label
// name or value must contain, ignoring case.
type groupFilter struct {
	matchers []labelMatcher
	text     string // lower case; "" matches every group
}

// labelMatcher is one matcher of a filter.
type labelMatcher struct {
	name  string
	op    string // =, !=, =~, !~
	value string
	re    *regexp.Regexp // for =~ and !~, anchored
}

// all reports whether the filter passes every group.
func (f groupFilter) all() bool { return len(f.matchers) == 0 && f.text == "" }

// matches reports whether the grouping labels ls pass the filter. A label
// the group does not have is matched as the empty string, as in PromQL.
func (f groupFilter) matches(ls []store.Label) bool {
	for _, m := range f.matchers {
		v := ""
		for _, l := range ls {
			if l.Name == m.name {
				v = l.Value
				break
			}
		}
		if !m.matches(v) {
			return false
		}
	}
	if f.text == "" {
		return true
	}
	for _, l := range ls {
		if strings.Contains(strings.ToLower(l.Name), f.text) || strings.Contains(strings.ToLower(l.Value), f.text) {
			return true
		}
	}
	return false
}

func (m labelMatcher) matches(v string) bool {
	switch m.op {
	case "=":
		return v == m.value
	case "!=":
		return v != m.value
	case "=~":
		return m.re.MatchString(v)
	default: // "!~"
		return !m.re.MatchString(v)
	}
}

// parseFilter parses the match and text of the groups page. match is a
// comma-separated list of matchers, optionally in braces; each value is a
// double-quoted Go string literal.
func parseFilter(match, text string) (groupFilter, error) {
	f := groupFilter{text: strings.ToLower(strings.TrimSpace(text))}
	s := strings.TrimSpace(match)
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}"))
	for s != "" {
		m, rest, err := parseMatcher(s)
		if err != nil {
			return groupFilter{}, fmt.Errorf("invalid label filter %q: %w", match, err)
		}
		f.matchers = append(f.matchers, m)
		s = strings.TrimSpace(rest)
		if s == "" {
			break
		}
		if s[0] != ',' {
			return groupFilter{}, fmt.Errorf("invalid label filter %q: expected a comma before %q", match, s)
		}
		s = strings.TrimSpace(s[1:])
	}
	return f, nil
}

// labelNameRE matches a label name at the start of a matcher: a legacy
// name, or any quoted name.
var labelNameRE = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*|"(?:[^"\\]|\\.)*")\s*(=~|!~|!=|=)\s*`)

// parseMatcher parses the matcher at the start of s and returns the rest.
func parseMatcher(s string) (labelMatcher, string, error) {
	loc := labelNameRE.FindStringSubmatchIndex(s)
	if loc == nil {
		return labelMatcher{}, "", fmt.Errorf(`expected name="value", name!="value", name=~"regex" or name!~"regex" at %q`, s)
	}
	m := labelMatcher{name: s[loc[2]:loc[3]], op: s[loc[4]:loc[5]]}
	if strings.HasPrefix(m.name, `"`) {
		m.name, _ = strconv.Unquote(m.name) // the expression matched a valid literal
	}
	rest := s[loc[1]:]
	q, err := strconv.QuotedPrefix(rest)
	if err != nil || !strings.HasPrefix(q, `"`) {
		return labelMatcher{}, "", fmt.Errorf("the value of %s must be a double-quoted string, at %q", m.name, rest)
	}
	m.value, _ = strconv.Unquote(q) // QuotedPrefix checked it
	if m.op == "=~" || m.op == "!~" {
		if _, err := regexp.Compile(m.value); err != nil {
			return labelMatcher{}, "", fmt.Errorf("invalid regex for %s: %w", m.name, err)
		}
		m.re = regexp.MustCompile("^(?:" + m.value + ")$")
	}
	return m, rest[len(q):], nil
}
