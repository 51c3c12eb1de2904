package portowner

import (
	"net"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestListensOnlyForTheHolder(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "tcp6" {
				addr = "[::1]:0"
			}
			l, err := net.Listen(network, addr)
			if network == "tcp6" && err != nil {
				t.Skipf("no IPv6 loopback here: %v", err)
			}
			require.NoError(t, err)
			port := l.Addr().(*net.TCPAddr).Port

			mine, err := Listens(os.Getpid(), port)
			require.NoError(t, err)
			require.True(t, mine, "this process listens on %d", port)

			// Another live process does not hold it.
			other := exec.Command("sleep", "60")
			require.NoError(t, other.Start())
			t.Cleanup(func() { _ = other.Process.Kill(); _ = other.Wait() })
			theirs, err := Listens(other.Process.Pid, port)
			require.NoError(t, err)
			require.False(t, theirs, "sleep holds no socket on %d", port)

			// A connected socket on the port is not a listener: once
			// the listener is closed, the accepted and dialled ends of a
			// connection to it remain, and do not count.
			c, err := net.Dial(network, l.Addr().String())
			require.NoError(t, err)
			defer c.Close()
			s, err := l.Accept()
			require.NoError(t, err)
			defer s.Close()
			require.NoError(t, l.Close())
			mine, err = Listens(os.Getpid(), port)
			require.NoError(t, err)
			require.False(t, mine, "only connections remain on %d", port)
		})
	}
}

func TestListensForAGoneProcessIsAnError(t *testing.T) {
	gone := exec.Command("true")
	require.NoError(t, gone.Run())
	_, err := Listens(gone.Process.Pid, 1)
	require.Error(t, err)
}
