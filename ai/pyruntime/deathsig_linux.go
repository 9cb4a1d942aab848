package pyruntime

import (
	"os/exec"
	"syscall"
)

// setDeathSignal has the kernel kill the runtime process when the worker
// dies, so that a process running a hung model (which would never read
// its closed stdin) is not left behind.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
