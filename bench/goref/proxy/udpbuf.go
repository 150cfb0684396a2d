// udpbuf.go: upstream wireguard-go gives its UDP sockets 7 MiB buffers since 2023; the Debian
// library does not, and its Linux bind opens the sockets itself with no hook. Without the
// larger buffers a loopback benchmark measures receive-queue drops, so after the device is up
// every UDP socket of this process is resized (the FORCE variants pass net.core.*mem_max as
// root; the plain ones are the fallback otherwise).
package main

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func growUDPBuffers(size int) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || !isUDPSocket(fd) {
			continue
		}
		for _, opt := range []int{unix.SO_RCVBUF, unix.SO_SNDBUF, unix.SO_RCVBUFFORCE, unix.SO_SNDBUFFORCE} {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, size)
		}
		n++
	}
	return n
}

func isUDPSocket(fd int) bool {
	if link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); err != nil ||
		!strings.HasPrefix(link, "socket:") {
		return false
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil || typ != unix.SOCK_DGRAM {
		return false
	}
	dom, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	return err == nil && (dom == unix.AF_INET || dom == unix.AF_INET6)
}
