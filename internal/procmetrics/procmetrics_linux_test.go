package procmetrics

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Without IpExt lines in netstat (or without the two counters) the
// network families read 0, as client_golang's do, rather than going
// missing.
func TestOctetsWithoutIpExt(t *testing.T) {
	for _, body := range []string{
		"TcpExt: SyncookiesSent\nTcpExt: 0\n",
		"TcpExt: SyncookiesSent\nTcpExt: 0\nIpExt: InNoRoutes\nIpExt: 3\n",
	} {
		in, out, err := octetsOf([]byte(body))
		require.NoError(t, err)
		require.Zero(t, in)
		require.Zero(t, out)
	}
	in, out, err := octetsOf([]byte("IpExt: InNoRoutes InOctets OutOctets\nIpExt: 1 2345 6789\n"))
	require.NoError(t, err)
	require.Equal(t, 2345.0, in)
	require.Equal(t, 6789.0, out)
	_, _, err = octetsOf([]byte("IpExt: InOctets OutOctets\nIpExt: 1\n"))
	require.Error(t, err)
}
