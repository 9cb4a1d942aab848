package imagetest

import (
	"os"
	"syscall"
)

// ownerUID is the file's owner (-1 where the platform does not say).
func ownerUID(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
