// tun.go: the proxy's TUN device is a gVisor network stack, not a kernel interface.
//
// Debian's wireguard-go library (0.0.20220316) has no tun/netstack package, so this file joins
// the two: wireguard-go's device reads plaintext packets to encrypt with Read and hands
// decrypted ones to Write. Write injects a packet into the stack on the caller's goroutine (the
// device's receive goroutine runs TCP input), as upstream's tun/netstack does. The stack's
// output reaches Read through an unbuffered channel filled from the link endpoint's notifier,
// so a stack that outruns the encryption waits for it instead of dropping packets.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.zx2c4.com/wireguard/tun"

	"gvisor.dev/gvisor/pkg/bufferv2"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

const nicID = 1

// stackTUN is both the tun.Device given to wireguard-go and the dialer the SOCKS5 server uses.
type stackTUN struct {
	stk    *stack.Stack
	link   *channel.Endpoint
	out    chan stack.PacketBufferPtr // stack -> Read, unbuffered
	done   chan struct{}              // closed by Close: Read and WriteNotify stop waiting
	events chan tun.Event
	mtu    int
}

// newStackTUN builds the stack with the given local addresses. sack turns on TCP SACK, which
// gVisor leaves off by default and upstream wireguard-go's netstack turns on since 2023.
func newStackTUN(addrs []netip.Addr, mtu int, sack bool) (*stackTUN, error) {
	t := &stackTUN{
		stk: stack.New(stack.Options{
			NetworkProtocols: []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
			TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol,
				icmp.NewProtocol4, icmp.NewProtocol6},
			HandleLocal: true,
		}),
		link:   channel.New(1024, uint32(mtu), ""),
		out:    make(chan stack.PacketBufferPtr),
		done:   make(chan struct{}),
		events: make(chan tun.Event, 4),
		mtu:    mtu,
	}
	if sack {
		opt := tcpip.TCPSACKEnabled(true)
		if err := t.stk.SetTransportProtocolOption(tcp.ProtocolNumber, &opt); err != nil {
			return nil, fmt.Errorf("tcp sack: %v", err)
		}
	}
	t.link.AddNotify(t)
	if err := t.stk.CreateNIC(nicID, t.link); err != nil {
		return nil, fmt.Errorf("create nic: %v", err)
	}
	if err := t.addAddresses(addrs); err != nil {
		return nil, err
	}
	t.events <- tun.EventUp
	return t, nil
}

// addAddresses assigns each address and a default route for its family: everything the stack
// sends leaves through the one NIC, towards wireguard-go's allowed IPs.
func (t *stackTUN) addAddresses(addrs []netip.Addr) error {
	routed := map[tcpip.NetworkProtocolNumber]bool{}
	for _, a := range addrs {
		proto, subnet := tcpip.NetworkProtocolNumber(ipv4.ProtocolNumber), header.IPv4EmptySubnet
		if a.Is6() {
			proto, subnet = ipv6.ProtocolNumber, header.IPv6EmptySubnet
		}
		pa := tcpip.ProtocolAddress{Protocol: proto,
			AddressWithPrefix: tcpip.Address(a.AsSlice()).WithPrefix()}
		if err := t.stk.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
			return fmt.Errorf("address %v: %v", a, err)
		}
		if !routed[proto] {
			t.stk.AddRoute(tcpip.Route{Destination: subnet, NIC: nicID})
			routed[proto] = true
		}
	}
	return nil
}

// WriteNotify runs on the stack's goroutine each time it queues an outgoing packet; handing the
// packet over blocks until wireguard-go's TUN reader takes it.
func (t *stackTUN) WriteNotify() {
	pkt := t.link.Read()
	if pkt.IsNil() {
		return
	}
	select {
	case t.out <- pkt:
	case <-t.done:
		pkt.DecRef()
	}
}

// Read gives wireguard-go the next packet the stack sent, copied once into its buffer.
func (t *stackTUN) Read(buf []byte, offset int) (int, error) {
	var pkt stack.PacketBufferPtr
	select {
	case pkt = <-t.out:
	case <-t.done:
		return 0, os.ErrClosed
	}
	n := 0
	for _, s := range pkt.AsSlices() {
		n += copy(buf[offset+n:], s)
	}
	pkt.DecRef()
	return n, nil
}

// Write hands one decrypted packet to the stack, by its IP version.
func (t *stackTUN) Write(buf []byte, offset int) (int, error) {
	p := buf[offset:]
	if len(p) == 0 {
		return 0, nil
	}
	var proto tcpip.NetworkProtocolNumber
	switch p[0] >> 4 {
	case 4:
		proto = header.IPv4ProtocolNumber
	case 6:
		proto = header.IPv6ProtocolNumber
	default:
		return len(buf), nil
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: bufferv2.MakeWithData(p)})
	t.link.InjectInbound(proto, pkt)
	pkt.DecRef()
	return len(buf), nil
}

func (t *stackTUN) File() *os.File         { return nil }
func (t *stackTUN) Flush() error           { return nil }
func (t *stackTUN) MTU() (int, error)      { return t.mtu, nil }
func (t *stackTUN) Name() (string, error)  { return "goref", nil }
func (t *stackTUN) Events() chan tun.Event { return t.events }

func (t *stackTUN) Close() error {
	close(t.done)
	t.stk.RemoveNIC(nicID)
	t.link.Close()
	close(t.events)
	return nil
}

// DialContext opens a TCP connection through the stack. Destinations are IP literals: the
// reference resolves no names (a host resolver would bypass the tunnel).
func (t *stackTUN) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if network != "tcp" && network != "tcp4" && network != "tcp6" {
		return nil, fmt.Errorf("dial %s %s: only tcp", network, address)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil, errors.New("dial " + address + ": not an IP literal and port")
	}
	ip := ap.Addr().Unmap()
	proto := tcpip.NetworkProtocolNumber(ipv4.ProtocolNumber)
	if ip.Is6() {
		proto = ipv6.ProtocolNumber
	}
	dst := tcpip.FullAddress{NIC: nicID, Addr: tcpip.Address(ip.AsSlice()), Port: ap.Port()}
	return gonet.DialContextTCP(ctx, t.stk, dst, proto)
}
