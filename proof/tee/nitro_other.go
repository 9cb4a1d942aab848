//go:build !linux

package tee

import (
	"fmt"
	"runtime"

	"github.com/hf/nsm/request"
	"github.com/hf/nsm/response"
)

// nsmSend fails: Nitro Enclaves run Linux, and the NSM client only builds
// there.
func nsmSend(dev string, _ request.Request) (response.Response, error) {
	return response.Response{}, fmt.Errorf("%w: no NSM client on %s (Nitro Enclaves run Linux)", ErrUnavailable, runtime.GOOS)
}
