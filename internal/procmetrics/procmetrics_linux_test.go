package procmetrics

import (
	"io"
	"net"
	"syscall"
	"testing"
	"time"

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

// The files kept open are read anew on every collection: the CPU time
// grows while the test burns CPU, and so do the bytes received after a
// loopback exchange.
func TestCollectionsReadAnew(t *testing.T) {
	c := New().(*collector)
	first := gather(t, c)
	cpu0 := value(first["process_cpu_seconds_total"])
	deadline := time.Now().Add(10 * time.Second)
	x := 0
	for value(gather(t, c)["process_cpu_seconds_total"]) <= cpu0 {
		require.True(t, time.Now().Before(deadline), "the CPU time never grew")
		for i := range 1_000_000 {
			x += i
		}
	}
	_ = x

	in0 := value(gather(t, c)["process_network_receive_bytes_total"])
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	received := make(chan int64)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			received <- 0
			return
		}
		n, _ := io.Copy(io.Discard, conn)
		conn.Close()
		received <- n
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	_, err = conn.Write(make([]byte, 256<<10))
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	// The kernel counts the bytes on their way in, before the reader gets
	// them: once it has all of them, they are counted.
	require.Equal(t, int64(256<<10), <-received)
	require.Greater(t, value(gather(t, c)["process_network_receive_bytes_total"]), in0, "the received bytes grew")

	// A read that fails (here: a directory in place of the file) leaves
	// the families out once; the file is opened again for the next one.
	require.NoError(t, syscall.Close(c.files.stat))
	dir, err := syscall.Open(t.TempDir(), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	require.NoError(t, err)
	c.files.stat = dir
	require.NotContains(t, gather(t, c), "process_cpu_seconds_total")
	require.Equal(t, -1, c.files.stat, "the failed file is closed")
	require.Contains(t, gather(t, c), "process_cpu_seconds_total")
	require.GreaterOrEqual(t, c.files.stat, 0)
}
