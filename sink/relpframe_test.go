package sink

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestAppendRELPFrame(t *testing.T) {
	tests := []struct {
		txnr int
		cmd  string
		data string
		want string
	}{
		{1, "open", "relp_version=0\ncommands=syslog", "1 open 30 relp_version=0\ncommands=syslog\n"},
		{2, "syslog", "<134>1 - h a - - - x", "2 syslog 20 <134>1 - h a - - - x\n"},
		{17, "close", "", "17 close 0\n"}, // no SP and no data when DATALEN is 0
		{999999999, "syslog", "a\nb", "999999999 syslog 3 a\nb\n"},
	}
	for _, tc := range tests {
		if got := string(appendRELPFrame([]byte("prev|"), tc.txnr, tc.cmd, []byte(tc.data))); got != "prev|"+tc.want {
			t.Errorf("appendRELPFrame(%d, %q, %q) = %q, want %q", tc.txnr, tc.cmd, tc.data, got, "prev|"+tc.want)
		}
	}
}

func TestNextTxnr(t *testing.T) {
	for in, want := range map[int]int{1: 2, 41: 42, 999999998: 999999999, 999999999: 1} {
		if got := nextTxnr(in); got != want {
			t.Errorf("nextTxnr(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestReadRELPFrame(t *testing.T) {
	type frame struct {
		txnr int
		cmd  string
		data string
	}
	tests := []struct {
		name    string
		in      string
		want    []frame
		wantErr error // after the frames in want; nil means a clean io.EOF
		errText string
	}{
		{name: "open answer from imrelp",
			in:   "1 rsp 93 200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n",
			want: []frame{{1, "rsp", "200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog"}}},
		{name: "answers back to back",
			in:   "2 rsp 6 200 OK\n3 rsp 6 200 OK\n",
			want: []frame{{2, "rsp", "200 OK"}, {3, "rsp", "200 OK"}}},
		{name: "close answer and serverclose",
			in:   "4 rsp 0\n0 serverclose 0\n",
			want: []frame{{4, "rsp", ""}, {0, "serverclose", ""}}},
		{name: "data holding LF and digits",
			in:   "5 rsp 12 500 bad\n1 2 \n",
			want: []frame{{5, "rsp", "500 bad\n1 2 "}}},
		{name: "cut in the data", in: "2 rsp 6 200", wantErr: io.ErrUnexpectedEOF},
		{name: "cut after the txnr", in: "2 ", wantErr: io.ErrUnexpectedEOF},
		{name: "cut before the trailer", in: "2 rsp 6 200 OK", wantErr: io.ErrUnexpectedEOF},
		{name: "no trailer", in: "2 rsp 6 200 OKX", wantErr: errRELPProtocol, errText: "does not end in LF"},
		{name: "data longer than DATALEN", in: "2 rsp 2 200 OK\n", wantErr: errRELPProtocol},
		{name: "letters in txnr", in: "2a rsp 0\n", wantErr: errRELPProtocol},
		{name: "no txnr", in: " rsp 0\n", wantErr: errRELPProtocol, errText: "TXNR expected"},
		{name: "txnr of 10 digits", in: "1234567890 rsp 0\n", wantErr: errRELPProtocol, errText: "longer than 9 digits"},
		{name: "digit in command", in: "2 rsp1 0\n", wantErr: errRELPProtocol, errText: "invalid command"},
		{name: "empty command", in: "2  0\n", wantErr: errRELPProtocol, errText: "empty command"},
		{name: "command of 33 letters", in: "2 " + strings.Repeat("a", 33) + " 0\n", wantErr: errRELPProtocol},
		{name: "space after zero length", in: "2 rsp 0 \n", wantErr: errRELPProtocol},
		{name: "LF after a nonzero length", in: "2 rsp 6\n", wantErr: errRELPProtocol},
		{name: "datalen over the limit", in: "2 rsp 65537 ", wantErr: errRELPProtocol, errText: "more than the 65536 accepted"},
		{name: "datalen of 10 digits", in: "2 rsp 1000000000 ", wantErr: errRELPProtocol},
		{name: "garbage", in: "HTTP/1.1 400 Bad Request\r\n", wantErr: errRELPProtocol},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(tc.in))
			var got []frame
			var err error
			for {
				var f relpFrame
				f, err = readRELPFrame(r, relpMaxRspData)
				if err != nil {
					break
				}
				got = append(got, frame{f.txnr, f.cmd, string(f.data)})
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("frames = %+v, want %+v", got, tc.want)
			}
			want := tc.wantErr
			if want == nil {
				want = io.EOF
			}
			if !errors.Is(err, want) {
				t.Errorf("error = %v, want %v", err, want)
			}
			if tc.errText != "" && (err == nil || !strings.Contains(err.Error(), tc.errText)) {
				t.Errorf("error %v does not say %q", err, tc.errText)
			}
		})
	}
}

func TestParseRELPRsp(t *testing.T) {
	tests := []struct {
		in      string
		want    relpRsp
		wantErr bool
	}{
		{"200 OK", relpRsp{code: 200, text: "OK"}, false},
		{"200 OK\nrelp_version=0\ncommands=syslog\n", relpRsp{code: 200, text: "OK", rest: []byte("relp_version=0\ncommands=syslog\n")}, false},
		{"500 command disabled", relpRsp{code: 500, text: "command disabled"}, false},
		{"500", relpRsp{code: 500}, false},
		{"", relpRsp{}, false}, // imrelp's answer to close
		{"20 OK", relpRsp{}, true},
		{"2000 OK", relpRsp{}, true},
		{"OK 200", relpRsp{}, true},
	}
	for _, tc := range tests {
		got, err := parseRELPRsp([]byte(tc.in))
		if (err != nil) != tc.wantErr {
			t.Errorf("parseRELPRsp(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if err == nil && (got.code != tc.want.code || got.text != tc.want.text || string(got.rest) != string(tc.want.rest)) {
			t.Errorf("parseRELPRsp(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if err != nil && !errors.Is(err, errRELPProtocol) {
			t.Errorf("parseRELPRsp(%q) error %v is not a protocol error", tc.in, err)
		}
	}
}

func TestParseRELPOffers(t *testing.T) {
	got := parseRELPOffers([]byte("relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog,eventlog\nflag\n\n"))
	want := map[string][]string{
		"relp_version":  {"0"},
		"relp_software": {"librelp", "1.11.0", "http://librelp.adiscon.com"},
		"commands":      {"syslog", "eventlog"},
		"flag":          nil,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("offers = %q, want %q", got, want)
	}
}
