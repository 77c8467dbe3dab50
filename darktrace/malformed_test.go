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

// TestStreamSkipsRecordInvalidPastTheCut: a record whose description is longer than
// DefaultMaxStringBytes and holds a raw control byte past that point is not valid JSON: it is
// skipped and reported with its id like any malformed record, not cut and delivered, and the
// records around it (one of them cut) are delivered. Before, the bytes past the cut were never
// checked and the record was delivered.
func TestStreamSkipsRecordInvalidPastTheCut(t *testing.T) {
	long := strings.Repeat("d", DefaultMaxStringBytes+100)
	rec := func(n int, desc string) string {
		return fmt.Sprintf(`{"pbid":%d,"time":1,"description":"%s"}`, n, desc)
	}
	body := "[" + strings.Join([]string{rec(1, "x"), rec(2, long+"\x07"+long), rec(3, long), rec(4, "y")}, ",") + "]"
	var bad, cut []MalformedRecord
	_, c := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(body))
	}), func(cfg *Config) {
		cfg.OnMalformed = func(m MalformedRecord) { bad = append(bad, m) }
		cfg.OnTrimmed = func(m MalformedRecord) { cut = append(cut, m) }
	})
	var got []string
	err := c.Stream(context.Background(), "/modelbreaches?starttime=1", func(raw []byte) error {
		got = append(got, RecordID(raw))
		return nil
	})
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if strings.Join(got, ",") != "1,3,4" {
		t.Errorf("delivered %q, want records 1, 3 and 4", got)
	}
	if len(bad) != 1 || bad[0].Index != 1 || bad[0].ID != "2" || !strings.Contains(bad[0].Err.Error(), `invalid character '\a'`) {
		t.Errorf("malformed %+v, want record 2 at index 1, its control byte named", bad)
	}
	if len(cut) != 1 || cut[0].Index != 2 || cut[0].ID != "3" || fmt.Sprint(cut[0].Cuts) != "[string over 64 KiB]" {
		t.Errorf("trimmed %+v, want record 3 at index 2", cut)
	}
}
