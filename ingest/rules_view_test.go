package ingest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TTLRules shows the rules in force as the operator wrote them, and
// follows a reload.
func TestTTLRulesView(t *testing.T) {
	dir := t.TempDir()
	file := writeRules(t, dir, "rules:\n  - job: \"batch-(a|b)\"\n    labels:\n      zone: \"eu-.*\"\n      instance: \"\"\n    ttl: 10m\n  - job: \".*\"\n    ttl: 0\n")
	in, _ := newTestIngester(t, Config{TTLRulesFile: file}, &fakeStore{})
	require.Equal(t, []TTLRule{
		{Job: "batch-(a|b)", Labels: []RuleLabel{{Name: "instance", Regex: ""}, {Name: "zone", Regex: "eu-.*"}}, TTL: 10 * time.Minute},
		{Job: ".*"},
	}, in.TTLRules())

	writeRules(t, dir, "rules: []\n")
	require.NoError(t, in.ReloadRules())
	require.Empty(t, in.TTLRules())

	none, _ := newTestIngester(t, Config{}, &fakeStore{})
	require.Empty(t, none.TTLRules())
}
