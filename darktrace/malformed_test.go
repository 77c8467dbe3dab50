package darktrace

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestStreamSkipsMalformedElement: an array element nested 100,000 levels deep (beyond what
// encoding/json accepts) and one that is not valid JSON inside its brackets are each skipped and
// reported with their id, while the five valid records around them reach fn. Before: the
// whole response failed ("exceeded max depth") and was fetched again forever.
func TestStreamSkipsMalformedElement(t *testing.T) {
	deep := `{"pbid":777,"time":1,"x":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}`
	broken := `{"codeid":"88","a":[1,]}`
	rec := func(n int) string { return fmt.Sprintf(`{"pbid":%d,"time":1}`, n) }
	body := "[" + strings.Join([]string{rec(1), rec(2), deep, rec(3), broken, rec(4), rec(5)}, ",") + "]"
	var bad []MalformedRecord
	_, c := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(body))
	}), func(cfg *Config) { cfg.OnMalformed = func(m MalformedRecord) { bad = append(bad, m) } })
	var got []string
	err := c.Stream(context.Background(), "/modelbreaches?starttime=1", func(raw []byte) error {
		got = append(got, string(raw))
		return nil
	})
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if strings.Join(got, ",") != strings.Join([]string{rec(1), rec(2), rec(3), rec(4), rec(5)}, ",") {
		t.Errorf("fn got %d elements, want the 5 valid records", len(got))
	}
	if len(bad) != 2 {
		t.Fatalf("reported %+v, want the two malformed elements", bad)
	}
	if bad[0].Endpoint != "/modelbreaches" || bad[0].Index != 2 || bad[0].ID != "777" || !strings.Contains(bad[0].Err.Error(), "depth") {
		t.Errorf("first report = %+v", bad[0])
	}
	if bad[1].Index != 4 || bad[1].ID != "88" {
		t.Errorf("second report = %+v", bad[1])
	}
}
