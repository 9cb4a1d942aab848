package tee

import (
	"fmt"
	"os"
	"syscall"

	"github.com/hf/nsm"
	"github.com/hf/nsm/request"
	"github.com/hf/nsm/response"
)

// nsmSend opens an NSM session on dev, sends req (CBOR over the NSM
// ioctl) and closes the session.
func nsmSend(dev string, req request.Request) (response.Response, error) {
	s, err := nsm.OpenSession(nsm.Options{
		Open:    func() (nsm.FileDescriptor, error) { return os.Open(dev) },
		Syscall: syscall.Syscall,
	})
	if err != nil {
		return response.Response{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	res, err := s.Send(req)
	if cerr := s.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("closing %s: %w", dev, cerr)
	}
	return res, err
}
