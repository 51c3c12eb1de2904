package ingest

import (
	"flag"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfigFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    Config
		wantErr string
	}{
		{"defaults", nil, Config{MaxBodyBytes: DefaultMaxBodyBytes}, ""},
		{"disable check", []string{"--push.disable-consistency-check"}, Config{DisableConsistencyCheck: true, MaxBodyBytes: DefaultMaxBodyBytes}, ""},
		{"no limit", []string{"--push.max-body-bytes=0"}, Config{}, ""},
		{"negative limit", []string{"--push.max-body-bytes=-1"}, Config{MaxBodyBytes: -1}, "--push.max-body-bytes must be 0 (no limit) or positive, got -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg Config
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			cfg.RegisterFlags(fs)
			require.NoError(t, fs.Parse(tt.args))
			require.Equal(t, tt.want, cfg)
			if tt.wantErr == "" {
				require.NoError(t, cfg.Validate())
			} else {
				require.EqualError(t, cfg.Validate(), tt.wantErr)
			}
		})
	}
}
