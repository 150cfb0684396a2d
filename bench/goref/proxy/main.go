// proxy: the Go reference that bench/compare_anchor.sh measures tunless against. One
// wireguard-go device (Debian's library) whose TUN is a gVisor stack (tun.go), and
// armon/go-socks5 dialing through that stack: the architecture of wireproxy and of tailscaled
// in userspace-networking mode. A reference point for benchmarks, not a product: one peer,
// SOCKS5 CONNECT to IP literals only, no authentication.
//
//	proxy -private-key-file KEY -address 100.64.0.3 -peer-public-key PUB \
//	      -peer-endpoint 127.0.0.1:51820 -listen-port 51873 -allowed-ips 100.64.0.0/10 \
//	      -listen 127.0.0.1:1081
//
// Flow: flags, the stack, the device configured through its UAPI text, 7 MiB UDP buffers
// (udpbuf.go), then the SOCKS5 server until SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof" // -pprof: profiling the reference side of a benchmark
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	socks5 "github.com/armon/go-socks5"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
)

type options struct {
	keyFile, peerKey, endpoint, listen string
	pprof                              string
	addresses, allowed                 []string
	listenPort, keepalive, mtu, udpBuf int
	sack, verbose                      bool
}

func main() {
	log.SetFlags(0)
	o := parseFlags()
	if o.pprof != "" {
		go func() { log.Printf("proxy: pprof: %v", http.ListenAndServe(o.pprof, nil)) }()
	}
	tunDev, err := newStackTUN(parseAddrs(o.addresses), o.mtu, o.sack)
	if err != nil {
		log.Fatalf("proxy: stack: %v", err)
	}
	level := device.LogLevelError
	if o.verbose {
		level = device.LogLevelVerbose
	}
	dev := device.NewDevice(tunDev, conn.NewDefaultBind(), device.NewLogger(level, "wg: "))
	if err := dev.IpcSet(uapiConfig(o)); err != nil {
		log.Fatalf("proxy: wireguard config: %v", err)
	}
	if err := dev.Up(); err != nil {
		log.Fatalf("proxy: wireguard up: %v", err)
	}
	// The device opened its UDP sockets in Up; Debian's library predates upstream's 7 MiB.
	sized := 0
	if o.udpBuf > 0 {
		sized = growUDPBuffers(o.udpBuf)
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		log.Fatalf("proxy: listen: %v", err)
	}
	log.Printf("proxy: socks5=%s address=%s peer=%s udp_sockbuf=%d sockets=%d",
		ln.Addr(), strings.Join(o.addresses, ","), o.endpoint, o.udpBuf, sized)
	go serveSOCKS(ln, tunDev)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	ln.Close()
	dev.Close()
}

func parseFlags() options {
	var o options
	var addrs, allowed string
	flag.StringVar(&o.keyFile, "private-key-file", "", "file holding this node's private key (base64)")
	flag.StringVar(&addrs, "address", "100.64.0.1", "this node's tunnel addresses, comma separated")
	flag.StringVar(&o.peerKey, "peer-public-key", "", "the peer's public key (base64)")
	flag.StringVar(&o.endpoint, "peer-endpoint", "127.0.0.1:51820", "the peer's UDP host:port")
	flag.IntVar(&o.listenPort, "listen-port", 0, "local WireGuard UDP port (0: any)")
	flag.StringVar(&allowed, "allowed-ips", "100.64.0.0/10", "the peer's allowed IPs, comma separated")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:1081", "SOCKS5 listen address")
	flag.IntVar(&o.keepalive, "keepalive", 0, "persistent keepalive seconds (0: off)")
	flag.IntVar(&o.mtu, "mtu", 1420, "tunnel MTU")
	flag.IntVar(&o.udpBuf, "udp-sockbuf", 7<<20,
		"SO_RCVBUF/SO_SNDBUF of the WireGuard UDP sockets, as upstream wireguard-go sets since 2023 (0: kernel default)")
	flag.BoolVar(&o.sack, "sack", true, "TCP SACK in the stack, as upstream wireguard-go's netstack since 2023")
	flag.BoolVar(&o.verbose, "v", false, "wireguard-go's verbose log")
	flag.StringVar(&o.pprof, "pprof", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060)")
	flag.Parse()
	o.addresses, o.allowed = splitComma(addrs), splitComma(allowed)
	if o.keyFile == "" || o.peerKey == "" {
		log.Fatal("proxy: -private-key-file and -peer-public-key are required")
	}
	return o
}

func splitComma(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseAddrs(list []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range list {
		a, err := netip.ParseAddr(s)
		if err != nil {
			log.Fatalf("proxy: -address %q: %v", s, err)
		}
		out = append(out, a)
	}
	return out
}

// keyHex turns a base64 key into the hex form wireguard-go's UAPI wants.
func keyHex(what, b64 string) string {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil || len(raw) != 32 {
		log.Fatalf("proxy: %s: not a base64 32-byte key", what)
	}
	return hex.EncodeToString(raw)
}

// uapiConfig is the device's whole configuration in wireguard-go's UAPI set syntax.
func uapiConfig(o options) string {
	key, err := os.ReadFile(o.keyFile)
	if err != nil {
		log.Fatalf("proxy: %v", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "private_key=%s\n", keyHex("private key", string(key)))
	if o.listenPort != 0 {
		fmt.Fprintf(&b, "listen_port=%d\n", o.listenPort)
	}
	fmt.Fprintf(&b, "public_key=%s\nendpoint=%s\n", keyHex("peer public key", o.peerKey), o.endpoint)
	if o.keepalive > 0 {
		fmt.Fprintf(&b, "persistent_keepalive_interval=%d\n", o.keepalive)
	}
	for _, p := range o.allowed {
		fmt.Fprintf(&b, "allowed_ip=%s\n", p)
	}
	return b.String()
}

// literalOnly keeps go-socks5 from resolving names through the host's resolver.
type literalOnly struct{}

func (literalOnly) Resolve(ctx context.Context, name string) (context.Context, net.IP, error) {
	if ip := net.ParseIP(name); ip != nil {
		return ctx, ip, nil
	}
	return ctx, nil, fmt.Errorf("name %q: the reference resolves no names", name)
}

func serveSOCKS(ln net.Listener, t *stackTUN) {
	srv, err := socks5.New(&socks5.Config{
		Resolver: literalOnly{},
		Logger:   log.New(io.Discard, "", 0),
		Dial:     t.DialContext,
	})
	if err != nil {
		log.Fatalf("proxy: socks5: %v", err)
	}
	if err := srv.Serve(ln); err != nil && !strings.Contains(err.Error(), "closed") {
		log.Fatalf("proxy: socks5: %v", err)
	}
}
