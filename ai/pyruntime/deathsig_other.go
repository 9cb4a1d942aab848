//go:build !linux

package pyruntime

import "os/exec"

// setDeathSignal does nothing off Linux: the process exits when its stdin
// closes, unless a model hangs it.
func setDeathSignal(*exec.Cmd) {}
