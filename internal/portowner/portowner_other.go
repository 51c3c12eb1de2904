//go:build !linux

package portowner

func listens(int, int) (bool, error) { return false, ErrUnsupported }
