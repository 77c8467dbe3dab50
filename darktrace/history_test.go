package darktrace

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

const lifecycle = `{"codeid":7,"action":"quarantine","aghost":"h\u00e9\\|=","expires":5000,"updated":"4","active":false,"cleared":true,"blocked":false,` +
	`"history":[{"action":"cleared","time":4,"username":"bob"},{"action":"created (requires confirmation)","time":1},` +
	`{"action":"created","reason":"confirmed","time":2},{"action":"extended","time":3}],"extra":{"kept":[1,2]}}`

func TestEarlierSteps(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		since  ActionVersion
		want   []string // state@updated, expires (0: absent)
		missed int
	}{
		{"never delivered", lifecycle, ActionVersion{}, []string{"pending@1 0", "active@2 0", "active@3 5000"}, 0},
		{"delivered up to active", lifecycle, ActionVersion{Updated: 2, Active: true}, []string{"active@3 5000"}, 0},
		{"delivered the final state's predecessor", lifecycle, ActionVersion{Updated: 3, Active: true}, nil, 0},
		// The record shows the expiry, which came after its latest entry: that entry's state
		// is an earlier one.
		{"expired record", `{"codeid":7,"active":true,"expires":10,"updated":"20","history":[{"action":"created","time":1}]}`,
			ActionVersion{}, []string{"active@1 10"}, 0},
		{"reactivation reveals an unseen expiry",
			`{"codeid":7,"active":true,"expires":90,"updated":"30","history":[{"action":"created","time":1},{"action":"reactivated (expired)","time":20},{"action":"extended","time":30}]}`,
			ActionVersion{Updated: 1, Active: true, Expires: 10}, []string{"active@20 0"}, 1},
		{"reactivation after the expiry that was delivered",
			`{"codeid":7,"active":true,"expires":90,"updated":"30","history":[{"action":"created","time":1},{"action":"reactivated (expired)","time":20},{"action":"extended","time":30}]}`,
			ActionVersion{Updated: 15, Active: true, Expires: 10}, []string{"active@20 0"}, 0},
		{"entry of unknown meaning", `{"codeid":7,"active":true,"updated":"3","history":[{"action":"created","time":1},{"action":"frobnicated","time":2},{"action":"extended","time":3}]}`,
			ActionVersion{}, []string{"active@1 0"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := DecodeAction([]byte(tt.raw), nil)
			if err != nil {
				t.Fatal(err)
			}
			steps, missed, err := a.EarlierSteps([]byte(tt.raw), tt.since)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range steps {
				got = append(got, fmt.Sprintf("%s@%d %d", s.Action.State(), s.Action.Updated.Int64(), s.Action.Expires))
				if s.Action.CodeID != 7 || len(s.Action.History) == 0 || s.Action.History[len(s.Action.History)-1].Time != s.Action.Updated.Int64() {
					t.Errorf("step %s: codeid %d, history %+v", got[len(got)-1], s.Action.CodeID, s.Action.History)
				}
				if strings.Contains(tt.raw, `"extra"`) && !strings.Contains(string(s.Raw), `"extra":{"kept":[1,2]}`) {
					t.Errorf("step %s lost the members it does not rewrite: %s", got[len(got)-1], s.Raw)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) || missed != tt.missed {
				t.Fatalf("steps %v missed %d, want %v missed %d", got, missed, tt.want, tt.missed)
			}
		})
	}
}

func TestSplitObjectAppendWith(t *testing.T) {
	raw := `{"A":1, "Updated":"5","s":"h\u00e9\\|=\u0000","gone":3,"x":[1,{"y":2}],"updated":6,"kept":1,"Kept":2}`
	o, err := splitObject([]byte(raw), "updated", "gone", "new", "kept", "list")
	if err != nil {
		t.Fatal(err)
	}
	got := o.appendWith([]byte("prefix "), []setValue{{op: opSet, b: []byte(`"9"`)}, {op: opDrop}, {op: opSet, b: []byte(`true`)},
		{}, {op: opSet, b: []byte(`[1`), tail: ']'}})
	// Order and spelling kept, strings as they were, the removed member gone, the repeat of a
	// set member gone, the kept ones all there, the new ones last.
	if want := `prefix {"A":1,"Updated":"9","s":"h\u00e9\\|=\u0000","x":[1,{"y":2}],"kept":1,"Kept":2,"new":true,"list":[1]}`; string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if _, err := splitObject([]byte(`[1]`)); err == nil {
		t.Fatal("an array was split as an object")
	}
}

// FuzzEarlierSteps: every rebuilt state's Action is what its Raw decodes to (the Action is
// built without decoding it), and its Raw is one JSON object.
func FuzzEarlierSteps(f *testing.F) {
	for _, raw := range corpus(f, SourceAntigena) {
		f.Add(raw, int64(0), false)
	}
	f.Add([]byte(lifecycle), int64(1), false)
	f.Add([]byte(`{"CodeID":8, "ACTIVE":true,"Blocked":true,"blocked":true,"Expires":"900","Updated":40,"active":true,`+
		`"History":[{"Action":"Created","Time":10,"Username":"<a&b>\u2028"},null,{"action":"frobnicated","time":20},`+
		`{"action":"Extended by hand","time":20,"reason":"x\u00e9\ud83d\ude00\ud800"},{"action":"reactivated (expired)","time":30,"family":"ANTIGENA"},`+
		`{"action":"extended","time":40}],"history":"not a list","triggerer":{"username":"u"}}`), int64(15), true)
	f.Add([]byte("{\"codeid\":9,\"bl\\u006fcked\":true,\"updated\":\"9\",\"history\":[{\"action\":\"created\",\"time\":1,\"reason\":\"\xff\"},{\"action\":\"cleared\",\"time\":2},{\"action\":\"reactivated\",\"time\":3}]}"), int64(0), false)
	f.Fuzz(func(t *testing.T, raw []byte, since int64, sinceExpired bool) {
		if !json.Valid(raw) { // the splitter lets no other record through
			return
		}
		a, err := DecodeAction(raw, nil)
		if err != nil {
			return
		}
		v := ActionVersion{Updated: since}
		if sinceExpired {
			v.Active, v.Expires = true, since-1
		}
		steps, _, err := a.EarlierSteps(raw, v)
		if err != nil {
			t.Fatalf("EarlierSteps(%q): %v", raw, err)
		}
		for i, st := range steps {
			if !json.Valid(st.Raw) {
				t.Fatalf("state %d of %q: not JSON: %q", i, raw, st.Raw)
			}
			dec, err := DecodeAction(st.Raw, nil)
			if err != nil {
				t.Fatalf("state %d of %q: %v", i, raw, err)
			}
			if !reflect.DeepEqual(dec, st.Action) {
				t.Fatalf("state %d of %q:\nraw     %s\ndecoded %+v\nbuilt   %+v", i, raw, st.Raw, dec, st.Action)
			}
		}
	})
}
