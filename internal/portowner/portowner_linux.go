package portowner

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// tcpListen is the state column of a listening socket in /proc/net/tcp.
const tcpListen = "0A"

func listens(pid, port int) (bool, error) {
	proc := "/proc/" + strconv.Itoa(pid)
	inodes := map[string]bool{}
	for _, table := range []string{"/net/tcp", "/net/tcp6"} {
		err := listeners(proc+table, port, inodes)
		if errors.Is(err, fs.ErrNotExist) && table == "/net/tcp6" {
			continue // a kernel without IPv6
		}
		if err != nil {
			return false, err
		}
	}
	if len(inodes) == 0 {
		return false, nil
	}
	fds, err := os.ReadDir(proc + "/fd")
	if err != nil {
		return false, err
	}
	for _, fd := range fds {
		link, err := os.Readlink(proc + "/fd/" + fd.Name())
		if err != nil {
			continue // closed since the directory was read
		}
		if inode, ok := strings.CutPrefix(link, "socket:["); ok && inodes[strings.TrimSuffix(inode, "]")] {
			return true, nil
		}
	}
	return false, nil
}

// listeners adds to inodes the socket inode of every listening socket on
// port in the table at path (/proc/PID/net/tcp or tcp6). A row reads
// "sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout
// inode ...", the local address as HEXADDR:HEXPORT.
func listeners(path string, port int, inodes map[string]bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 {
			return fmt.Errorf("%s: short row %q", path, sc.Text())
		}
		if fields[3] != tcpListen {
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if !ok {
			return fmt.Errorf("%s: local address %q has no port", path, fields[1])
		}
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil {
			return fmt.Errorf("%s: local address %q: %w", path, fields[1], err)
		}
		if int(p) == port {
			inodes[fields[9]] = true
		}
	}
	return sc.Err()
}
