// sockbuf: gives every UDP socket of another process SO_RCVBUF/SO_SNDBUF of -size bytes (the
// FORCE variants: root), through pidfd_getfd (Linux 5.6). The benchmarks give the stock
// wireguard-go peer the same 7 MiB as both proxies, or the peer's receive queue decides the
// figures.
//
//	sockbuf -pid PID [-size 7340032]
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

func main() {
	pid := flag.Int("pid", 0, "the process whose UDP sockets to resize")
	size := flag.Int("size", 7<<20, "buffer bytes")
	flag.Parse()
	if *pid <= 0 {
		fail(2, "usage: sockbuf -pid PID [-size BYTES]")
	}
	pidfd, err := unix.PidfdOpen(*pid, 0)
	if err != nil {
		fail(1, "sockbuf: pidfd_open: %v", err)
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", *pid))
	if err != nil {
		fail(1, "sockbuf: %v", err)
	}
	n := 0
	for _, e := range ents {
		if theirs, err := strconv.Atoi(e.Name()); err == nil && resize(*pid, pidfd, theirs, *size) {
			n++
		}
	}
	if n == 0 {
		fail(1, "sockbuf: pid %d has no UDP socket", *pid)
	}
}

// resize duplicates the target's descriptor into this process; the options apply to the
// socket both descriptors share.
func resize(pid, pidfd, theirs, size int) bool {
	fd, err := unix.PidfdGetfd(pidfd, theirs, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	typ, err1 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	dom, err2 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err1 != nil || err2 != nil || typ != unix.SOCK_DGRAM ||
		(dom != unix.AF_INET && dom != unix.AF_INET6) {
		return false
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size)
	rcv, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	snd, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
	fmt.Printf("sockbuf: pid=%d fd=%d rcvbuf=%d sndbuf=%d\n", pid, theirs, rcv, snd)
	return true
}

func fail(code int, format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(code)
}
