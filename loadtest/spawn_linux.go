package loadtest

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill a spawned target when the harness
// dies without cleaning up (kill -9, a crash), so no gateway is left
// listening on a loopback port.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
