package sentinelsim_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/dtforward/dtforward/internal/testutil/sentinelsim"
	"github.com/dtforward/dtforward/sink/sentinel/row"
)

// TestDeclarationsMatchTheRowBuilder: the receiver's copy of the DCR and the row builder's
// table were written apart; they must agree column for column.
func TestDeclarationsMatchTheRowBuilder(t *testing.T) {
	decl := sentinelsim.Declarations()
	for _, stream := range []string{row.ModelAlerts, row.Incidents, row.ResponseActions} {
		var a, b []string
		for _, c := range decl[stream] {
			a = append(a, c.Name+":"+c.Type)
		}
		for _, c := range row.Streams[stream] {
			b = append(b, c.Name+":"+c.Type)
		}
		if !slices.Equal(a, b) {
			t.Errorf("%s:\nreceiver %v\nbuilder  %v", stream, a, b)
		}
	}
}

// TestIngestRefusesWhatTheServiceRefuses calls the receiver by hand.
func TestIngestRefusesWhatTheServiceRefuses(t *testing.T) {
	srv, err := sentinelsim.Start(t.TempDir(), sentinelsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	client := srv.Client()
	o := srv.Options()
	tokResp, err := client.PostForm(srv.URL()+"/"+o.TenantID+"/oauth2/v2.0/token", map[string][]string{
		"grant_type": {"client_credentials"}, "client_id": {o.ClientID}, "client_secret": {o.ClientSecret}, "scope": {sentinelsim.Scope}})
	if err != nil {
		t.Fatal(err)
	}
	tok := srv.TokenFrom(t, tokResp)
	post := func(stream, body string, zip bool, version string) int {
		var b bytes.Buffer
		if zip {
			zw := gzip.NewWriter(&b)
			_, _ = io.WriteString(zw, body)
			_ = zw.Close()
		} else {
			b.WriteString(body)
		}
		req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/dataCollectionRules/%s/streams/%s?api-version=%s", srv.URL(), o.DCRID, stream, version), &b)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		if zip {
			req.Header.Set("Content-Encoding", "gzip")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		body string
		want int
	}{
		{`[{"score":67,"alertTime":"2024-01-01T00:00:00.000Z","mitreTechniques":[{"techniqueId":"T1"}]}]`, 204},
		{`[{"score":"67"}]`, 400},
		{`[{"score":6.7}]`, 400},
		{`[{"score":4294967296}]`, 400},
		{`[{"alertTime":"2024-01-01 00:00:00"}]`, 400},
		{`[{"alertTime":"2024-01-01T02:00:00+02:00"}]`, 400},
		{`[{"compliance":"false"}]`, 400},
		{`[{"undeclared":"x"}]`, 400},
		{`{"score":67}`, 400},
	} {
		if got := post(row.ModelAlerts, c.body, true, "2023-01-01"); got != c.want {
			t.Errorf("%s: %d, want %d", c.body, got, c.want)
		}
	}
	if got := post(row.ModelAlerts, `[]`, false, "2021-11-01-preview"); got != 400 {
		t.Errorf("wrong api-version: %d", got)
	}
	if got := post("Custom-Nope", `[]`, true, "2023-01-01"); got != 400 {
		t.Errorf("undeclared stream: %d", got)
	}
	big := `[{"message":"` + string(bytes.Repeat([]byte("x"), sentinelsim.MaxBody)) + `"}]`
	if got := post(row.ModelAlerts, big, true, "2023-01-01"); got != 413 {
		t.Errorf("over 1 MB: %d", got)
	}
	tok = "forged"
	if got := post(row.ModelAlerts, `[]`, true, "2023-01-01"); got != 401 {
		t.Errorf("unknown token: %d", got)
	}
	if n := len(srv.Rows(row.ModelAlerts)); n != 1 {
		t.Errorf("%d rows kept, want the one valid call's", n)
	}
}
