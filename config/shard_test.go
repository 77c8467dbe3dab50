package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// appliancesEnv writes an appliances file of n entries and returns the variables that use it.
func appliancesEnv(t *testing.T, n int) map[string]string {
	t.Helper()
	entries := make([]map[string]any, n)
	for i := range entries {
		entries[i] = map[string]any{
			"name": fmt.Sprintf("customer-%03d", i), "url": fmt.Sprintf("https://dt%d.example", i),
			"public_token": "pub", "private_token": "priv",
		}
	}
	data, err := json.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "appliances.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"DARKTRACE_APPLIANCES_FILE": path}
}

// TestShardsCoverEveryApplianceOnce (issue 13 item 4): SHARD_COUNT configurations loaded from
// the same appliances file, one per SHARD_INDEX (numbers or pod names), poll every appliance
// exactly once between them, and the split does not depend on the file's order.
func TestShardsCoverEveryApplianceOnce(t *testing.T) {
	const n = 200
	env := appliancesEnv(t, n)
	for _, count := range []int{1, 2, 3, 7} {
		owner := map[string]int{}
		for idx := range count {
			m := map[string]string{"SHARD_COUNT": strconv.Itoa(count), "SHARD_INDEX": fmt.Sprintf("dtforward-%d", idx)}
			if idx%2 == 1 {
				m["SHARD_INDEX"] = strconv.Itoa(idx)
			}
			if count == 1 {
				delete(m, "SHARD_INDEX")
			}
			for k, v := range env {
				m[k] = v
			}
			c, err := loadFor(ModeRun, m)
			if err != nil {
				t.Fatalf("count %d index %s: %v", count, m["SHARD_INDEX"], err)
			}
			apps, err := c.ShardAppliances()
			if err != nil {
				t.Fatal(err)
			}
			if count > 1 && (len(apps) == 0 || len(apps) == n) {
				t.Errorf("count %d: shard %d owns %d of %d appliances", count, idx, len(apps), n)
			}
			for _, a := range apps {
				if prev, dup := owner[a.Name]; dup {
					t.Errorf("count %d: %s is polled by shards %d and %d", count, a.Name, prev, idx)
				}
				owner[a.Name] = idx
			}
		}
		if len(owner) != n {
			t.Errorf("count %d: %d of %d appliances have a shard", count, len(owner), n)
		}
	}
}

// TestShardOfMovesFewOnGrowth: growing from k to k+1 shards moves only appliances onto the new
// shard, about n/(k+1) of them; this is what makes adding a replica cheap (README, Sharding).
func TestShardOfMovesFewOnGrowth(t *testing.T) {
	const n = 3000
	for k := 1; k < 8; k++ {
		moved := 0
		for i := range n {
			name := fmt.Sprintf("appliance-%d", i)
			before, after := ShardOf(name, k), ShardOf(name, k+1)
			if before != after {
				if after != k {
					t.Fatalf("%s moved from shard %d to %d when growing to %d; only moves to the new shard are allowed", name, before, after, k+1)
				}
				moved++
			}
		}
		want := n / (k + 1)
		if moved < want/2 || moved > want*2 {
			t.Errorf("growing %d→%d moved %d of %d appliances, want about %d", k, k+1, moved, n, want)
		}
	}
	if ShardOf("anything", 1) != 0 || ShardOf("anything", 0) != 0 {
		t.Error("one shard must own everything")
	}
}

func TestShardValidation(t *testing.T) {
	for _, tc := range []struct {
		kv   []string
		want string // substring of the only problem; "" = valid
	}{
		{[]string{"SHARD_COUNT", "3", "SHARD_INDEX", "2"}, ""},
		{[]string{"SHARD_COUNT", "3", "SHARD_INDEX", "dtforward-0"}, ""},
		{[]string{"SHARD_COUNT", "3", "SHARD_INDEX", "dt-forward.eu-1"}, ""},
		{[]string{"SHARD_COUNT", "3"}, "SHARD_INDEX: required when SHARD_COUNT is 3"},
		{[]string{"SHARD_COUNT", "3", "SHARD_INDEX", "3"}, `SHARD_INDEX: "3" is shard 3, outside 0–2`},
		{[]string{"SHARD_COUNT", "3", "SHARD_INDEX", "dtforward-5"}, "outside 0–2"},
		{[]string{"SHARD_COUNT", "3", "SHARD_INDEX", "dtforward"}, "neither a shard number nor a pod name"},
		{[]string{"SHARD_COUNT", "3", "SHARD_INDEX", "-1"}, "neither a shard number"},
		{[]string{"SHARD_COUNT", "0"}, "SHARD_COUNT: 0 is outside 1–1000"},
		{[]string{"SHARD_COUNT", "two"}, `SHARD_COUNT: "two" is not an integer`},
		{[]string{"DARKTRACE_MAX_CONCURRENT_REQUESTS", "0"}, "DARKTRACE_MAX_CONCURRENT_REQUESTS: 0 is outside 1–1024"},
		{[]string{"DARKTRACE_MAX_CONCURRENT_REQUESTS", "5000"}, "outside 1–1024"},
		{[]string{"DARKTRACE_MAX_CONCURRENT_REQUESTS", "64"}, ""},
		{[]string{"SHARD_INDX", "1"}, "SHARD_INDX: unknown variable; did you mean SHARD_INDEX?"},
	} {
		t.Run(strings.Join(tc.kv, "="), func(t *testing.T) {
			_, err := loadFor(ModeRun, with(tc.kv...))
			got := problemsOf(t, err)
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("problems %q, want none", got)
				}
				return
			}
			if len(got) != 1 || !strings.Contains(got[0], tc.want) {
				t.Fatalf("problems %q, want one containing %q", got, tc.want)
			}
		})
	}
}
