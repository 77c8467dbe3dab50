package darktrace

import (
	"encoding/json"
	"testing"
)

func TestBreachModelShapes(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      string // Model.Name
		wantNow   string // Now.Name, "" when Now is nil
		wantLogic bool
		wantErr   bool
	}{
		{name: "flat", in: `{"name":"A","pid":1,"logic":{"data":[1]}}`, want: "A", wantLogic: true},
		{name: "then and now", in: `{"then":{"name":"old","pid":1},"now":{"name":"new","pid":1}}`, want: "old", wantNow: "new"},
		{name: "now only", in: `{"now":{"name":"new"}}`, want: "new", wantNow: "new"},
		{name: "then only", in: `{"then":{"name":"old"}}`, want: "old"},
		{name: "empty", in: `{}`, want: ""},
		{name: "flat wrong type", in: `{"name":"A","pid":"x"}`, wantErr: true},
		{name: "then wrong type", in: `{"then":{"name":5}}`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m BreachModel
			err := json.Unmarshal([]byte(tc.in), &m)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if m.Name != tc.want {
				t.Errorf("Name = %q, want %q", m.Name, tc.want)
			}
			gotNow := ""
			if m.Now != nil {
				gotNow = m.Now.Name
			}
			if gotNow != tc.wantNow {
				t.Errorf("Now.Name = %q, want %q", gotNow, tc.wantNow)
			}
			if (len(m.Logic) > 0) != tc.wantLogic {
				t.Errorf("Logic = %s", m.Logic)
			}
		})
	}
}
