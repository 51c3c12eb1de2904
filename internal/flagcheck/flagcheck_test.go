package flagcheck

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDurations(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    Duration
		want string
	}{
		{"positive", Duration{Flag: "a", Value: time.Second}, ""},
		{"zero refused", Duration{Flag: "a"}, "--a must be positive, got 0s"},
		{"negative refused", Duration{Flag: "a", Value: -time.Second}, "--a must be positive, got -1s"},
		{"zero allowed", Duration{Flag: "b", ZeroOK: true}, ""},
		{"negative with zero allowed", Duration{Flag: "b", Value: -time.Millisecond, ZeroOK: true}, "--b must not be negative, got -1ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Durations(tc.d)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tc.want)
		})
	}
}

func TestDurationsNamesEveryBadFlag(t *testing.T) {
	err := Durations(Duration{Flag: "a"}, Duration{Flag: "b", Value: time.Second}, Duration{Flag: "c", Value: -1, ZeroOK: true})
	require.EqualError(t, err, "--a must be positive, got 0s\n--c must not be negative, got -1ns")
}
