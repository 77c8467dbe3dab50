package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/dtforward/dtforward/simulator"
)

// TestSyslogAsConsumersReadIt runs backfill over the simulator with an RFC 5424 header on
// stdout and reads every message with an independent RFC 5424 parser, the way the collectors
// in front of the SIEM do:
//   - darktrace-json: SC4S and Elastic's Darktrace integration pick Darktrace's "Syslog JSON"
//     alerts by APP-NAME "darktrace" and parse the message as the record itself (pbid,
//     codeid or id, and its other keys);
//   - cef: the message starts with "CEF:0|" (no BOM) and its extension with externalId=, the
//     alert id Exabeam reads right after the header.
func TestSyslogAsConsumersReadIt(t *testing.T) {
	_, url := startSim(t, simulator.Options{Seed: 31, History: 2 * time.Hour, HistoryCount: 40})
	dir := t.TempDir()
	to := time.Now().UTC().Truncate(time.Millisecond)
	from := to.Add(-3 * time.Hour)
	idKey := map[string]string{"modelbreach": "pbid", "antigena": "codeid", "aianalyst": "id"}
	for _, format := range []string{"darktrace-json", "cef"} {
		t.Run(format, func(t *testing.T) {
			vars := baseVars(url, "", dir+"/state-"+format)
			vars["SIEM_TRANSPORT"] = "stdout"
			vars["SIEM_HEADER"] = "rfc5424"
			vars["SIEM_FORMAT"] = format
			delete(vars, "SIEM_ADDRESS")
			code, stdout, stderr := runCmd(t, t.Context(), vars, "backfill", "--from", from.Format(time.RFC3339Nano),
				"--to", to.Format(time.RFC3339Nano))
			if code != exitOK {
				t.Fatalf("backfill exit %d\n%s", code, tail(stderr, 2000))
			}
			kinds := map[string]int{}
			for _, line := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
				sm, err := rfc5424.NewParser().Parse([]byte(line))
				if err != nil {
					t.Fatalf("not RFC 5424: %v: %.300s", err, line)
				}
				m := sm.(*rfc5424.SyslogMessage)
				if m.Appname == nil || m.MsgID == nil || m.Message == nil {
					t.Fatalf("no APP-NAME, MSGID or MSG: %.300s", line)
				}
				kind := *m.MsgID
				kinds[kind]++
				switch format {
				case "darktrace-json":
					if *m.Appname != "darktrace" {
						t.Fatalf("APP-NAME %q, want darktrace: %.300s", *m.Appname, line)
					}
					// Elastic's Darktrace pipeline takes the message as optional letters (an
					// app name) and then the JSON document.
					g := elasticMessage.FindStringSubmatch(*m.Message)
					if g == nil {
						t.Fatalf("message does not read as [appname] {json}: %.300s", *m.Message)
					}
					var rec map[string]any
					if err := json.Unmarshal([]byte(g[1]), &rec); err != nil {
						t.Fatalf("message is not the JSON record: %v: %.300s", err, *m.Message)
					}
					if kind == "modelbreach" {
						// What the pipeline fingerprints and maps first: time, creationTime,
						// pbid, model.{name,category}, breachUrl.
						model, _ := rec["model"].(map[string]any)
						if rec["time"] == nil || rec["creationTime"] == nil || model == nil || model["name"] == nil ||
							model["category"] == nil || rec["breachUrl"] == nil {
							t.Errorf("breach record without the keys Elastic's pipeline reads: %.300s", g[1])
						}
					}
					if k := idKey[kind]; rec[k] == nil {
						t.Errorf("%s record without its own key %s: %.300s", kind, k, *m.Message)
					}
					if _, ok := rec["schemaVersion"]; ok {
						t.Errorf("dtforward's schema instead of the record: %.300s", *m.Message)
					}
				case "cef":
					if *m.Appname != "dtforward" || !strings.HasPrefix(*m.Message, "CEF:0|Darktrace|DCIP|") {
						t.Fatalf("APP-NAME %q, message %.300q", *m.Appname, *m.Message)
					}
					if ext := cefExtension(*m.Message); !strings.HasPrefix(ext, "externalId=") {
						t.Errorf("extension does not start with externalId=: %.300s", *m.Message)
					}
				}
			}
			if kinds["modelbreach"] == 0 || kinds["antigena"] == 0 {
				t.Errorf("messages per kind %v: the test would prove little", kinds)
			}
		})
	}
}

// elasticMessage is the reading of Elastic's Darktrace pipeline: an optional app name of
// letters, blanks, then the JSON document.
var elasticMessage = regexp.MustCompile(`^[a-zA-Z]*\s*(\{.*\})$`)

// cefExtension returns what follows the 7th unescaped '|' of a CEF line.
func cefExtension(line string) string {
	n := 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case '|':
			if n++; n == 7 {
				return line[i+1:]
			}
		}
	}
	return ""
}
