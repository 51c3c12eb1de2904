package ingest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/store"
)

// writeRules writes a rules file into dir and returns its path.
func writeRules(t *testing.T, dir, text string) string {
	t.Helper()
	path := filepath.Join(dir, "ttl.yml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	return path
}

func mustParseRules(t *testing.T, text string) *ttlRules {
	t.Helper()
	rs, err := parseRules([]byte(text))
	require.NoError(t, err)
	return rs
}

func TestParseRules(t *testing.T) {
	tests := []struct {
		name      string
		text      string
		wantRules int
		wantErr   string // exact text; "" for success
		contains  string // for YAML decoder errors, whose wording is the library's
	}{
		{name: "empty file", text: "", wantRules: 0},
		{name: "comments only", text: "# no rules yet\n", wantRules: 0},
		{name: "empty list", text: "rules: []\n", wantRules: 0},
		{name: "null list", text: "rules:\n", wantRules: 0},
		{name: "every field", wantRules: 3, text: `
rules:
  - job: "batch-.*"
    labels:
      instance: "edge-.*"
      zone: "eu-.*|"
    ttl: 10m
  - job: nightly
    ttl: 0
  - job: ".+"
    ttl: 1h30m
`},
		{name: "unquoted integer zero ttl", text: "rules:\n  - job: j\n    ttl: 0\n", wantRules: 1},
		{name: "ttl at the maximum", text: "rules:\n  - job: j\n    ttl: 87600h\n", wantRules: 1},
		{name: "ttl in days and weeks", text: "rules:\n  - job: j\n    ttl: 2d\n  - job: k\n    ttl: 1w\n", wantRules: 2},

		{name: "not yaml", text: "rules: [\n", contains: "yaml:"},
		{name: "unknown top-level field", text: "rule:\n  - job: j\n    ttl: 1m\n", contains: `line 1: unknown field "rule" at the top level`},
		{name: "unknown rule field", text: "rules:\n  - job: j\n    ttl: 1m\n    expire: 2m\n", contains: `line 4: unknown field "expire" in a rule`},
		{name: "rules not a list", text: "rules: 5\n", contains: "line 1: want a list of rules, got a number (5)"},
		{name: "labels not a map", text: "rules:\n  - job: j\n    labels: [a]\n    ttl: 1m\n", contains: "line 3: want a map of label names to regexes, got a list"},
		{name: "two documents", text: "rules: []\n---\nrules: []\n",
			wantErr: "more than one YAML document; put every rule under one rules key"},
		{name: "missing job", text: "rules:\n  - job: j\n    ttl: 1m\n  - ttl: 1m\n",
			wantErr: `rules[1].job: missing; every rule needs a job regex (".+" matches every job)`},
		{name: "empty job", text: "rules:\n  - job: \"\"\n    ttl: 1m\n",
			wantErr: `rules[0].job: missing; every rule needs a job regex (".+" matches every job)`},
		{name: "bad job regex", text: "rules:\n  - job: \"batch-(\"\n    ttl: 1m\n",
			wantErr: "rules[0].job: invalid regex \"batch-(\": error parsing regexp: missing closing ): `batch-(`"},
		{name: "regex escaping the anchors", text: "rules:\n  - job: \"a)|(b\"\n    ttl: 1m\n",
			wantErr: "rules[0].job: invalid regex \"a)|(b\": error parsing regexp: unexpected ): `a)|(b`"},
		{name: "bad label regex", text: "rules:\n  - job: j\n    labels:\n      instance: \"[\"\n    ttl: 1m\n",
			wantErr: "rules[0].labels.instance: invalid regex \"[\": error parsing regexp: missing closing ]: `[`"},
		{name: "job under labels", text: "rules:\n  - job: j\n    labels:\n      job: x\n    ttl: 1m\n",
			wantErr: "rules[0].labels.job: the job is matched by the rule's job field, not under labels"},
		{name: "invalid label name", text: "rules:\n  - job: j\n    labels:\n      a-b: x\n    ttl: 1m\n",
			wantErr: "rules[0].labels.a-b: not a grouping label name; names match [a-zA-Z_][a-zA-Z0-9_]* and do not start with __"},
		{name: "reserved label name", text: "rules:\n  - job: j\n    labels:\n      __name__: x\n    ttl: 1m\n",
			wantErr: "rules[0].labels.__name__: not a grouping label name; names match [a-zA-Z_][a-zA-Z0-9_]* and do not start with __"},
		{name: "missing ttl", text: "rules:\n  - job: j\n",
			wantErr: "rules[0].ttl: missing; every rule needs a ttl such as 10m, or 0 for never"},
		{name: "null ttl", text: "rules:\n  - job: j\n    ttl:\n",
			wantErr: "rules[0].ttl: missing; every rule needs a ttl such as 10m, or 0 for never"},
		{name: "ttl without unit", text: "rules:\n  - job: j\n    ttl: 600\n",
			wantErr: `rules[0].ttl: "600": not a duration such as 90s, 5m, 1h30m, 2d or 1w`},
		{name: "ttl garbage", text: "rules:\n  - job: j\n    ttl: soon\n",
			wantErr: `rules[0].ttl: "soon": not a duration such as 90s, 5m, 1h30m, 2d or 1w`},
		{name: "negative ttl", text: "rules:\n  - job: j\n    ttl: -5m\n",
			wantErr: `rules[0].ttl: "-5m": negative; use 0 for a group that never expires`},
		{name: "ttl too long", text: "rules:\n  - job: j\n    ttl: 87601h\n",
			wantErr: `rules[0].ttl: "87601h": longer than the maximum of 87600h0m0s (10 years); use 0 for a group that never expires`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := parseRules([]byte(tt.text))
			switch {
			case tt.wantErr != "":
				require.EqualError(t, err, tt.wantErr)
				require.Nil(t, rs)
			case tt.contains != "":
				require.ErrorContains(t, err, tt.contains)
				require.Nil(t, rs)
			default:
				require.NoError(t, err)
				require.Equal(t, tt.wantRules, rs.len())
			}
		})
	}
}

func TestRulesMatch(t *testing.T) {
	rs := mustParseRules(t, `
rules:
  - job: batch
    ttl: 1m
  - job: "a|b"
    ttl: 2m
  - job: edge
    labels:
      instance: "edge-.*"
      zone: "eu-.*"
    ttl: 3m
  - job: opt
    labels:
      zone: "eu-.*|"
    ttl: 4m
  - job: present
    labels:
      zone: ".+"
    ttl: 5m
  - job: absent
    labels:
      zone: ""
    ttl: 6m
  - job: "batch.*"
    ttl: 7m
  - job: never
    ttl: 0
`)
	tests := []struct {
		name   string
		labels map[string]string
		want   time.Duration
		wantOK bool
	}{
		{"job only", map[string]string{"job": "batch"}, time.Minute, true},
		{"other labels do not matter without matchers", map[string]string{"job": "batch", "instance": "x"}, time.Minute, true},
		{"anchored at the end: batch is not batch-2", map[string]string{"job": "batch-2"}, 7 * time.Minute, true},
		{"anchored at the start", map[string]string{"job": "xbatch"}, 0, false},
		{"alternation is anchored as a whole", map[string]string{"job": "ab"}, 0, false},
		{"alternation matches either", map[string]string{"job": "b"}, 2 * time.Minute, true},
		{"job and every label", map[string]string{"job": "edge", "instance": "edge-7", "zone": "eu-west"}, 3 * time.Minute, true},
		{"job but one label differs", map[string]string{"job": "edge", "instance": "core-7", "zone": "eu-west"}, 0, false},
		{"job but a label absent", map[string]string{"job": "edge", "instance": "edge-7"}, 0, false},
		{"absent label matches a regex matching empty", map[string]string{"job": "opt"}, 4 * time.Minute, true},
		{"present label still matched", map[string]string{"job": "opt", "zone": "eu-1"}, 4 * time.Minute, true},
		{"present label not matching", map[string]string{"job": "opt", "zone": "us-1"}, 0, false},
		{"absent label does not match .+", map[string]string{"job": "present"}, 0, false},
		{"present label matches .+", map[string]string{"job": "present", "zone": "z"}, 5 * time.Minute, true},
		{"empty regex matches absence", map[string]string{"job": "absent"}, 6 * time.Minute, true},
		{"empty regex matches an empty value", map[string]string{"job": "absent", "zone": ""}, 6 * time.Minute, true},
		{"empty regex refuses a value", map[string]string{"job": "absent", "zone": "z"}, 0, false},
		{"first match wins", map[string]string{"job": "batch"}, time.Minute, true},
		{"zero ttl is a match", map[string]string{"job": "never"}, 0, true},
		{"no rule", map[string]string{"job": "other"}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := rs.match(store.NewGroupKey(tt.labels).Labels())
			require.Equal(t, tt.wantOK, ok)
			require.Equal(t, tt.want, got)
		})
	}
	var none *ttlRules
	_, ok := none.match(store.NewGroupKey(map[string]string{"job": "batch"}).Labels())
	require.False(t, ok)
}

func TestLoadRules(t *testing.T) {
	dir := t.TempDir()
	rs, err := loadRules("")
	require.NoError(t, err)
	require.Equal(t, 0, rs.len())

	missing := filepath.Join(dir, "missing.yml")
	_, err = loadRules(missing)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.ErrorContains(t, err, `load --push.ttl-rules-file="`+missing+`": open `)

	bad := writeRules(t, dir, "rules:\n  - job: j\n    ttl: 1\n")
	_, err = loadRules(bad)
	require.EqualError(t, err, `load --push.ttl-rules-file="`+bad+`": rules[0].ttl: "1": not a duration such as 90s, 5m, 1h30m, 2d or 1w`)

	good := writeRules(t, dir, "rules:\n  - job: j\n    ttl: 1m\n")
	rs, err = loadRules(good)
	require.NoError(t, err)
	require.Equal(t, 1, rs.len())
}

// A rules file that does not fit the schema is explained in the file's
// terms, with the line, and never with a Go type name.
func TestRulesFileErrorsInYAMLTerms(t *testing.T) {
	cases := []struct{ name, file, want string }{
		{"unknown field in a rule", "rules:\n  - job: j\n    ttl: 2m\n    extra: 1\n",
			`line 4: unknown field "extra" in a rule (a rule has job, labels and ttl)`},
		{"unknown top-level field", "rule:\n  - job: j\n",
			`line 1: unknown field "rule" at the top level (the file has one key, rules)`},
		{"rules not a list", "rules: abc\n", "line 1: want a list of rules, got a string (abc)"},
		{"rule not a map", "rules:\n  - abc\n", "line 2: want a rule (a map with job, labels and ttl), got a string (abc)"},
		{"job a list", "rules:\n  - job: [a]\n    ttl: 1m\n", "line 2: want a single value, got a list"},
		{"labels not a map", "rules:\n  - job: j\n    labels: x\n    ttl: 1m\n",
			"line 3: want a map of label names to regexes, got a string (x)"},
		{"file a list", "- a\n", "line 1: want a map with a rules key, got a list"},
		{"two errors", "rules:\n  - job: j\n    ttl: {a: 1}\n    extra: 1\n",
			`line 3: want a single value, got a map; line 4: unknown field "extra" in a rule (a rule has job, labels and ttl)`},
		{"syntax error, already in YAML terms", "rules: [\n", "yaml: line 1: did not find expected node content"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseRules([]byte(c.file))
			require.EqualError(t, err, c.want)
			require.NotContains(t, err.Error(), "ingest.")
		})
	}
}
