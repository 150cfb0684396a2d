// sockclient: the SOCKS5 client of the connection benchmarks (CONNECT to an IP literal, no
// authentication).
//
//	sockclient rr   -socks ADDR -target IP:PORT -n N
//	    N times in a row: connect to the proxy, CONNECT, "GET /small", read to EOF, close.
//	    Prints "rr n=N total_s=... p50_us=... p90_us=... p99_us=... max_us=..." (bench/table.py
//	    reads it).
//	sockclient idle -socks ADDR -target IP:PORT -n N -hold 600s
//	    opens N tunnels, prints "READY n=N ...", holds them for -hold, closes them.
//
// -socks "" connects straight to the target, for reference runs.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sort"
	"time"
)

var (
	proxy   = flag.String("socks", "127.0.0.1:1081", "SOCKS5 proxy (\"\": direct)")
	target  = flag.String("target", "100.64.0.2:8000", "destination IP:port")
	count   = flag.Int("n", 1000, "rr: requests; idle: tunnels")
	hold    = flag.Duration("hold", 10*time.Second, "idle: how long the tunnels stay open")
	path    = flag.String("path", "/small", "rr: the HTTP path requested")
	timeout = flag.Duration("timeout", 10*time.Second, "connect + SOCKS5 handshake limit")
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: sockclient rr|idle [flags]")
		os.Exit(2)
	}
	flag.CommandLine.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "rr":
		err = requests()
	case "idle":
		err = idle()
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sockclient:", err)
		os.Exit(1)
	}
}

// open returns a connection to the target, through the proxy unless -socks is empty.
func open() (net.Conn, error) {
	if *proxy == "" {
		return net.DialTimeout("tcp", *target, *timeout)
	}
	c, err := net.DialTimeout("tcp", *proxy, *timeout)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(*timeout))
	if err = handshake(c); err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// handshake waits for the method reply before sending CONNECT, as curl does.
func handshake(c net.Conn) error {
	dst, err := netip.ParseAddrPort(*target)
	if err != nil {
		return err
	}
	if _, err := c.Write([]byte{5, 1, 0}); err != nil {
		return err
	}
	var method [2]byte
	if _, err := io.ReadFull(c, method[:]); err != nil {
		return err
	}
	if method[0] != 5 || method[1] != 0 {
		return fmt.Errorf("greeting refused: %d %d", method[0], method[1])
	}
	req := []byte{5, 1, 0, 1}
	if ip := dst.Addr().Unmap(); ip.Is4() {
		req = append(req, ip.AsSlice()...)
	} else {
		req[3] = 4
		req = append(req, ip.AsSlice()...)
	}
	req = binary.BigEndian.AppendUint16(req, dst.Port())
	if _, err := c.Write(req); err != nil {
		return err
	}
	var head [4]byte // version, status, reserved, address type
	if _, err := io.ReadFull(c, head[:]); err != nil {
		return err
	}
	if head[1] != 0 {
		return fmt.Errorf("connect refused: status %d", head[1])
	}
	return skipBoundAddr(c, head[3])
}

func skipBoundAddr(c net.Conn, atyp byte) error {
	n := 0
	switch atyp {
	case 1:
		n = 4
	case 4:
		n = 16
	case 3:
		var l [1]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return err
		}
		n = int(l[0])
	default:
		return errors.New("reply: bad address type")
	}
	_, err := io.ReadFull(c, make([]byte, n+2))
	return err
}

func requests() error {
	req := []byte("GET " + *path + " HTTP/1.1\r\nHost: " + *target + "\r\nConnection: close\r\n\r\n")
	lat := make([]time.Duration, 0, *count)
	start := time.Now()
	for i := 0; i < *count; i++ {
		t0 := time.Now()
		if err := request(req); err != nil {
			return fmt.Errorf("request %d: %v", i, err)
		}
		lat = append(lat, time.Since(t0))
	}
	total := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	at := func(q float64) int64 { return lat[int(float64(len(lat)-1)*q)].Microseconds() }
	fmt.Printf("rr n=%d total_s=%.3f per_req_us=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
		*count, total.Seconds(), float64(total.Microseconds())/float64(*count),
		at(.5), at(.9), at(.99), lat[len(lat)-1].Microseconds())
	return nil
}

func request(req []byte) error {
	c, err := open()
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write(req); err != nil {
		return err
	}
	resp, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 200")) {
		return fmt.Errorf("response %q", resp)
	}
	return nil
}

func idle() error {
	conns := make([]net.Conn, 0, *count)
	start := time.Now()
	var slowest time.Duration
	for i := 0; i < *count; i++ {
		t0 := time.Now()
		c, err := open()
		if err != nil {
			return fmt.Errorf("tunnel %d: %v", i, err)
		}
		if d := time.Since(t0); d > slowest {
			slowest = d
		}
		conns = append(conns, c)
	}
	fmt.Printf("READY idle n=%d open_s=%.3f max_dial_ms=%d\n", len(conns),
		time.Since(start).Seconds(), slowest.Milliseconds())
	os.Stdout.Sync()
	time.Sleep(*hold)
	for _, c := range conns {
		c.Close()
	}
	fmt.Println("closed")
	return nil
}
