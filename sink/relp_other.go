//go:build !linux

package sink

import "net"

// quickAck is Linux-only (TCP_QUICKACK); elsewhere delayed ACKs may slow RELP down.
func quickAck(net.Conn) {}
