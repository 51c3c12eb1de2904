package ingest

import (
	"encoding/base64"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/common/model"

	"github.com/pushring/pushring/store"
)

const (
	// base64Suffix marks a URL label name (or the job route) whose value is
	// URL-safe base64.
	base64Suffix = "@base64"
	// reservedPrefix starts label names that belong to Prometheus itself.
	reservedPrefix = "__"
	jobLabel       = "job"
	instanceLabel  = "instance"
)

// ParseGroupingPath parses the escaped URL path after "<prefix>/metrics",
// e.g. "/job/batch/instance@base64/aG9zdA==", into a grouping key with the
// Pushgateway's rules and error texts.
//
// The path is split on "/" before each component is percent-decoded, so an
// escaped "%2F" stays inside its label value; the Pushgateway decodes first
// and rejects such paths. A path that is not a push route wraps ErrNotFound;
// every other error wraps ErrBadRequest.
//
// Label names are legacy names, as without --push.enable-utf8-names.
func ParseGroupingPath(escapedPath string) (store.GroupKey, error) {
	return parseGroupingPath(escapedPath, false)
}

// parseGroupingPath is ParseGroupingPath; with utf8Names (the
// Pushgateway's --push.enable-utf8-names) a label name may be U__-escaped
// (model.ValueEncodingEscaping), also before @base64, and is taken once
// unescaped if it is valid UTF-8.
func parseGroupingPath(escapedPath string, utf8Names bool) (store.GroupKey, error) {
	ls, err := parseGroupingLabels(escapedPath, utf8Names)
	if err != nil {
		return store.GroupKey{}, err
	}
	return store.KeyFromLabels(ls), nil
}

// parseGroupingLabels returns the grouping labels of a push path in URL
// order with the job last, so that it wins over a "job" pair in the path.
// Checks run in the Pushgateway's order: job encoding, labels, empty job.
func parseGroupingLabels(escapedPath string, utf8Names bool) ([]store.Label, error) {
	rest, jobIsBase64, ok := cutRoute(escapedPath)
	if !ok {
		return nil, &requestError{kind: ErrNotFound, cause: errPageNotFound}
	}
	escJob, _, _ := strings.Cut(rest, "/")
	job, err := decodeJob(escJob, jobIsBase64)
	if err != nil {
		return nil, err
	}
	ls, err := splitLabels(rest[len(escJob):], utf8Names)
	if err != nil {
		return nil, err
	}
	if job == "" {
		return nil, badRequest("job name is required")
	}
	ls = append(ls, store.Label{Name: jobLabel, Value: job})
	return ls, checkUTF8(ls)
}

// cutRoute strips the route component ("job" or "job@base64", possibly
// percent-encoded) and returns what follows it: "<JOB>{/<name>/<value>}".
func cutRoute(escapedPath string) (rest string, jobIsBase64, ok bool) {
	p, ok := strings.CutPrefix(escapedPath, "/")
	if !ok {
		return "", false, false
	}
	route, rest, ok := strings.Cut(p, "/")
	if !ok {
		return "", false, false
	}
	switch name, _ := url.PathUnescape(route); name {
	case jobLabel:
		return rest, false, true
	case jobLabel + base64Suffix:
		return rest, true, true
	}
	return "", false, false
}

// decodeJob percent-decodes the job component and, on the job@base64 route,
// base64-decodes it.
func decodeJob(escJob string, isBase64 bool) (string, error) {
	job, err := unescape(escJob)
	if err != nil || !isBase64 {
		return job, err
	}
	decoded, err := decodeBase64(job)
	if err != nil {
		// As in the Pushgateway, the partial decode is what gets printed.
		return "", badRequest("invalid base64 encoding in job name %q: %v", decoded, err)
	}
	return decoded, nil
}

// splitLabels parses "/<name>/<value>..." (escaped). "" and "/" carry no
// labels; "/a/" is a="" as in the Pushgateway.
func splitLabels(labels string, utf8Names bool) ([]store.Label, error) {
	if len(labels) <= 1 {
		return make([]store.Label, 0, 1), nil
	}
	rest := labels[1:]
	n := strings.Count(rest, "/") + 1
	if n%2 != 0 {
		return nil, badRequest("odd number of components in label string %q", displayPath(labels))
	}
	ls := make([]store.Label, 0, n/2+1) // +1 for the job appended by the caller
	for range n / 2 {
		var name, value string
		name, rest, _ = strings.Cut(rest, "/")
		value, rest, _ = strings.Cut(rest, "/")
		l, err := parseLabel(name, value, utf8Names)
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// parseLabel decodes one escaped name/value pair of the path.
func parseLabel(escName, escValue string, utf8Names bool) (store.Label, error) {
	name, err := unescape(escName)
	if err != nil {
		return store.Label{}, err
	}
	trimmed, isBase64 := strings.CutSuffix(name, base64Suffix)
	labelName, ok := trimmed, validLabelName(trimmed)
	if utf8Names {
		labelName = model.UnescapeName(trimmed, model.ValueEncodingEscaping)
		ok = model.UTF8Validation.IsValidLabelName(labelName) && !strings.HasPrefix(trimmed, reservedPrefix)
	}
	if !ok {
		return store.Label{}, badRequest("improper label name %q", trimmed)
	}
	value, err := unescape(escValue)
	if err != nil {
		return store.Label{}, err
	}
	if !isBase64 {
		return store.Label{Name: labelName, Value: value}, nil
	}
	decoded, err := decodeBase64(value)
	if err != nil {
		return store.Label{}, badRequest("invalid base64 encoding for label %s=%q: %v", trimmed, value, err)
	}
	return store.Label{Name: labelName, Value: decoded}, nil
}

// decodeBase64 decodes the URL-safe alphabet with any number of trailing
// '=' ignored, which accepts what Go (unpadded), Python and Java (padded) and
// the Pushgateway UI (one '=' too many) send; "=" alone is the empty string.
// On error the bytes decoded before the bad input are returned.
func decodeBase64(s string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	return string(b), err
}

// unescape percent-decodes one path component; '+' stays a literal '+'.
func unescape(s string) (string, error) {
	v, err := url.PathUnescape(s)
	if err != nil {
		return "", asBadRequest(err)
	}
	return v, nil
}

// displayPath renders an escaped label path the way the Pushgateway prints
// it in errors: decoded, as its router saw it.
func displayPath(escaped string) string {
	if v, err := url.PathUnescape(escaped); err == nil {
		return v
	}
	return escaped
}

// validLabelName reports whether s is a legacy Prometheus label name
// ([a-zA-Z_][a-zA-Z0-9_]*) outside the reserved "__" namespace.
func validLabelName(s string) bool {
	if s == "" || strings.HasPrefix(s, reservedPrefix) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// checkUTF8 rejects grouping label values that are not valid UTF-8. The
// Pushgateway accepts them and then fails every scrape; here
// they are refused up front, which also keeps 0xFF, the key separator, out
// of every GroupKey.
func checkUTF8(ls []store.Label) error {
	for _, l := range ls {
		if !utf8.ValidString(l.Value) {
			return &invalidUTF8Error{name: l.Name, value: l.Value}
		}
	}
	return nil
}
