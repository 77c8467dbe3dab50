package sink

import (
	"cmp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/internal/tlsconfig"
)

func TestSyslogSeverity(t *testing.T) {
	tests := []struct {
		name  string
		alert int
		want  int
	}{
		{"negative", -1, 6}, {"zero", 0, 6}, {"two", 2, 6},
		{"three", 3, 5}, {"four", 4, 5},
		{"five", 5, 4}, {"six", 6, 4},
		{"seven", 7, 3}, {"eight", 8, 3},
		{"nine", 9, 2}, {"ten", 10, 2},
		{"out of range", 11, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := SyslogSeverity(tc.alert); got != tc.want {
				t.Errorf("SyslogSeverity(%d) = %d, want %d", tc.alert, got, tc.want)
			}
		})
	}
}

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string // substrings; empty = no error
	}{
		{"unknown transport lists valid ones", Config{Transport: "smtp"}, []string{`transport: "smtp"`, "udp, tcp, tls, relp, stdout, file"}},
		{"stdout zero config", Config{Transport: "stdout"}, nil},
		{"every problem at once", Config{Transport: "tcp", Address: "nohost", Header: "rfc9999", Framing: "octets", Facility: "local9", Timeout: -time.Second},
			[]string{`address: "nohost" is not host:port`, `header: "rfc9999"`, `framing: "octets" is not one of lf, octet-counting`, `facility: "local9" is not a syslog facility (kern`, "timeout: -1s must be positive"}},
		{"file needs a path", Config{Transport: "file"}, []string{"address: required for transport file"}},
		{"port out of range", Config{Transport: "udp", Address: "127.0.0.1:70000"}, []string{"invalid port"}},
		{"tls settings without tls", Config{Transport: "tcp", Address: "h:1", TLS: tlsOpts("/dev/null")}, []string{"tls_ca_file: only applies to transport=tls"}},
		{"tls CA without a certificate", Config{Transport: "tls", Address: "h:1", TLS: tlsOpts("/dev/null")}, []string{"tls_ca_file: /dev/null holds no PEM certificate"}},
		{"every facility of the table", Config{Transport: "udp", Address: "h:1", Facility: "ntp"}, nil},
		{"tls bad CA file", Config{Transport: "tls", Address: "127.0.0.1:6514", TLS: tlsOpts("/nonexistent/ca.pem")}, []string{"tls_ca_file: cannot read /nonexistent/ca.pem"}},
		{"udp ok", Config{Transport: "udp", Address: "127.0.0.1:514"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				_ = s.Close()
				return
			}
			if err == nil {
				t.Fatal("New: no error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		name                 string
		cfg                  Config
		header, framing, fac string
	}{
		{"tcp", Config{Transport: "tcp", Address: "h:1"}, HeaderRFC5424, FramingLF, "local4"},
		{"tls is octet-counted", Config{Transport: "tls", Address: "h:1"}, HeaderRFC5424, FramingOctet, "local4"},
		{"stdout bare lines", Config{Transport: "stdout"}, HeaderNone, FramingLF, "local4"},
		{"explicit kept", Config{Transport: "tcp", Address: "h:1", Header: HeaderRFC3164, Framing: FramingOctet, Facility: "user"}, HeaderRFC3164, FramingOctet, "user"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			c.setDefaults()
			if err := c.Validate(nil); err != nil {
				t.Fatal(err)
			}
			c.Header = cmp.Or(c.Header, DefaultHeader(c.Transport))
			c.Framing = cmp.Or(c.Framing, DefaultFraming(c.Transport))
			if c.Header != tc.header || c.Framing != tc.framing || c.Facility != tc.fac || c.Timeout != defaultTimeout || c.AppName != "dtforward" {
				t.Errorf("got header=%s framing=%s facility=%s timeout=%v app=%s", c.Header, c.Framing, c.Facility, c.Timeout, c.AppName)
			}
		})
	}
}

func TestHeader(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.UTC)
	tests := []struct {
		name    string
		cfg     Config
		framing string
		sev     int
		kind    string
		line    string
		want    string
	}{
		{"rfc5424 lf", Config{Header: HeaderRFC5424, Facility: "local4", Hostname: "host-1", AppName: "dtforward"}, FramingLF, 9, "modelbreach", "CEF:0|x",
			"<162>1 2026-03-04T05:06:07.891234Z host-1 dtforward PID modelbreach - CEF:0|x\n"},
		{"rfc5424 octet", Config{Header: HeaderRFC5424, Facility: "local0", Hostname: "h", AppName: "darktrace"}, FramingOctet, 0, "antigena", "{}",
			"LEN <134>1 2026-03-04T05:06:07.891234Z h darktrace PID antigena - {}"},
		{"rfc5424 datagram sanitises fields", Config{Header: HeaderRFC5424, Facility: "user", Hostname: "my host\n", AppName: "dt forward"}, "", 7, "a kind with spaces that is far too long for msgid", "x",
			"<11>1 2026-03-04T05:06:07.891234Z my_host_ dt_forward PID a_kind_with_spaces_that_is_far_t - x"},
		{"rfc5424 empty fields are nil", Config{Header: HeaderRFC5424, Facility: "user", Hostname: "", AppName: ""}, "", 5, "", "x",
			"<12>1 2026-03-04T05:06:07.891234Z - - PID - - x"},
		{"rfc3164", Config{Header: HeaderRFC3164, Facility: "local4", Hostname: "h", AppName: "dt[forward]:"}, FramingLF, 3, "modelbreach", "CEF:0|x",
			"<165>Mar  4 05:06:07 h dt_forward__[PID]: CEF:0|x\n"},
		{"none", Config{Header: HeaderNone, Facility: "local4"}, FramingLF, 3, "modelbreach", "CEF:0|x", "CEF:0|x\n"},
		{"none octet", Config{Header: HeaderNone, Facility: "local4"}, FramingOctet, 3, "modelbreach", "CEF:0|x", "7 CEF:0|x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHeader(tc.cfg, tc.framing)
			h.now = func() time.Time { return at }
			got := string(h.appendFramed([]byte("prefix:"), h.pri(tc.sev), tc.kind, []byte(tc.line)))
			want := "prefix:" + strings.ReplaceAll(tc.want, "PID", h.procID)
			if strings.HasPrefix(tc.want, "LEN ") {
				body := strings.TrimPrefix(want, "prefix:LEN ")
				want = "prefix:" + itoa(len(body)) + " " + body
			}
			if tc.cfg.Header == HeaderRFC3164 {
				// RFC 3164 uses local time.
				want = strings.Replace(want, "Mar  4 05:06:07", at.Local().Format(time.Stamp), 1)
			}
			if got != want {
				t.Errorf("got  %q\nwant %q", got, want)
			}
			if n := h.headerLen(tc.kind); n != len(h.appendHeader(nil, 191, tc.kind)) {
				t.Errorf("headerLen = %d", n)
			}
		})
	}
}

func TestCleanLine(t *testing.T) {
	tests := []struct {
		name, in, want string
		changed        bool
	}{
		{"clean", "CEF:0|a|b", "CEF:0|a|b", false},
		{"lf forging a message", "x\n<13>1 - forged", "x <13>1 - forged", true},
		{"crlf", "a\r\nb", "a  b", true},
		{"escaped stays", `msg=a\nb`, `msg=a\nb`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			got, changed := cleanLine(in)
			if string(got) != tc.want || changed != tc.changed {
				t.Errorf("cleanLine(%q) = %q, %v", tc.in, got, changed)
			}
			if string(in) != tc.in {
				t.Error("input modified")
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func tlsOpts(ca string) tlsconfig.Options { return tlsconfig.Options{CAFile: ca} }
