package sink

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// RELP wire format, as librelp (rsyslog's imrelp/omrelp) speaks it (librelp doc/relp.md):
//
//	FRAME   = TXNR SP COMMAND SP DATALEN [SP DATA] LF   ; no SP and no DATA when DATALEN is 0
//	TXNR    = 1*9DIGIT   ; 1, 2, 3, ... per session, wrapping from 999999999 to 1; 0 = server hint
//	COMMAND = 1*32ALPHA  ; open, syslog, close from the client; rsp, serverclose from the server
//	DATALEN = 1*9DIGIT   ; octets in DATA
//
// A "rsp" frame carries the TXNR of the command it answers, and DATA = "200 OK" or
// "500 reason", followed for "open" by LF and the accepted offers, one "name=value" per line.
// imrelp answers "close" with an empty rsp and then sends "0 serverclose 0".

const (
	relpMaxTxnr  = 999_999_999
	relpMaxDigit = 9  // longest TXNR and DATALEN
	relpMaxCmd   = 32 // longest COMMAND
	// relpMaxRspData bounds what we accept from a server in one frame. Answers are a status
	// line plus, for open, a few offers: far below this. A larger DATALEN is a broken or
	// hostile peer, and we must not allocate what it announces.
	relpMaxRspData = 64 << 10
)

// relpFrame is one parsed frame.
type relpFrame struct {
	txnr int
	cmd  string
	data []byte
}

// errRELPProtocol marks a peer that broke the framing or the protocol: the connection is
// dropped, and unacknowledged messages are sent again on a new one.
var errRELPProtocol = errors.New("RELP protocol error")

// nextTxnr is the transaction number after n.
func nextTxnr(n int) int {
	if n >= relpMaxTxnr {
		return 1
	}
	return n + 1
}

// appendRELPFrame appends one frame.
func appendRELPFrame(dst []byte, txnr int, cmd string, data []byte) []byte {
	dst = strconv.AppendInt(dst, int64(txnr), 10)
	dst = append(dst, ' ')
	dst = append(dst, cmd...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(data)), 10)
	if len(data) > 0 {
		dst = append(dst, ' ')
		dst = append(dst, data...)
	}
	return append(dst, '\n')
}

// readRELPFrame reads one frame. maxData bounds DATALEN. Errors are io errors (wrapped as
// they come, including io.EOF before the first byte), or errRELPProtocol for bad framing.
func readRELPFrame(r *bufio.Reader, maxData int) (relpFrame, error) {
	var f relpFrame
	txnr, err := readRELPNumber(r, "TXNR", true)
	if err != nil {
		return f, err
	}
	f.txnr = txnr
	cmd := make([]byte, 0, 16)
	for {
		c, err := r.ReadByte()
		if err != nil {
			return f, unexpectedEOF(err)
		}
		if c == ' ' {
			break
		}
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') || len(cmd) == relpMaxCmd {
			return f, fmt.Errorf("%w: invalid command %q", errRELPProtocol, append(cmd, c))
		}
		cmd = append(cmd, c)
	}
	if len(cmd) == 0 {
		return f, fmt.Errorf("%w: empty command", errRELPProtocol)
	}
	f.cmd = string(cmd)
	n, err := readRELPNumber(r, "DATALEN", false)
	if err != nil {
		return f, err
	}
	if n > maxData {
		return f, fmt.Errorf("%w: %s frame announces %d bytes of data, more than the %d accepted", errRELPProtocol, f.cmd, n, maxData)
	}
	if n > 0 {
		f.data = make([]byte, n)
		if _, err := io.ReadFull(r, f.data); err != nil {
			return f, unexpectedEOF(err)
		}
	}
	c, err := r.ReadByte()
	if err != nil {
		return f, unexpectedEOF(err)
	}
	if c != '\n' {
		return f, fmt.Errorf("%w: %s frame does not end in LF after %d bytes of data (got %q)", errRELPProtocol, f.cmd, n, c)
	}
	return f, nil
}

// readRELPNumber reads 1–9 digits and the byte that ends them: SP after TXNR; after
// DATALEN, SP when data follows and nothing (the LF is left for the caller) when it is 0.
func readRELPNumber(r *bufio.Reader, field string, first bool) (int, error) {
	n, digits := 0, 0
	for {
		c, err := r.ReadByte()
		if err != nil {
			if first && digits == 0 && err == io.EOF {
				return 0, io.EOF // a clean end between frames
			}
			return 0, unexpectedEOF(err)
		}
		if c >= '0' && c <= '9' {
			if digits == relpMaxDigit {
				return 0, fmt.Errorf("%w: %s longer than %d digits", errRELPProtocol, field, relpMaxDigit)
			}
			n = n*10 + int(c-'0')
			digits++
			continue
		}
		if digits == 0 {
			return 0, fmt.Errorf("%w: %s expected, got %q", errRELPProtocol, field, c)
		}
		switch {
		case c == ' ' && (field == "TXNR" || n > 0):
			return n, nil
		case c == '\n' && field == "DATALEN" && n == 0:
			return 0, r.UnreadByte()
		default:
			return 0, fmt.Errorf("%w: unexpected %q after %s %d", errRELPProtocol, c, field, n)
		}
	}
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// relpRsp is the data of a "rsp" frame: status code, human-readable text, and what follows
// the first LF (the offers of an "open" answer).
type relpRsp struct {
	code int
	text string
	rest []byte
}

// parseRELPRsp parses rsp data "200 OK" / "500 reason\n...". imrelp answers "close" with
// no data at all, which is reported as code 0.
func parseRELPRsp(data []byte) (relpRsp, error) {
	var r relpRsp
	if len(data) == 0 {
		return r, nil
	}
	line, rest, _ := bytes.Cut(data, []byte{'\n'})
	r.rest = rest
	if len(line) < 3 || !isDigits(line[:3]) || len(line) > 3 && line[3] != ' ' {
		return r, fmt.Errorf("%w: rsp does not start with a 3-digit status: %q", errRELPProtocol, truncate(line, 80))
	}
	r.code, _ = strconv.Atoi(string(line[:3]))
	if len(line) > 4 {
		r.text = string(line[4:])
	}
	return r, nil
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// parseRELPOffers parses the offers of an open answer: one "name[=value[,value...]]" per line.
func parseRELPOffers(data []byte) map[string][]string {
	offers := map[string][]string{}
	for _, line := range bytes.Split(data, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		name, value, found := bytes.Cut(line, []byte{'='})
		var values []string
		if found {
			for _, v := range bytes.Split(value, []byte{','}) {
				values = append(values, string(v))
			}
		}
		offers[string(name)] = values
	}
	return offers
}

// truncate shortens what a peer sent for an error message, quoting keeps it on one line.
func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
