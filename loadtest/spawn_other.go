//go:build !linux

package loadtest

import "os/exec"

// setDeathSignal is Linux-only (Pdeathsig); elsewhere a harness killed
// with -9 leaves its spawned targets running.
func setDeathSignal(*exec.Cmd) {}
