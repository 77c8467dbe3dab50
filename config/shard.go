package config

import (
	"hash/fnv"
	"regexp"
	"strconv"
)

// Limits of the scale variables.
const (
	MaxConcurrentRequests = 1024
	MaxRequestsPerMinute  = 6000
	MaxShards             = 1000
)

// podOrdinal matches a StatefulSet pod name, whose trailing number is the pod's ordinal.
var podOrdinal = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?-([0-9]+)$`)

func (c *Config) validateScale(p *problems) {
	if c.DarktraceMaxConcurrentRequests < 1 || c.DarktraceMaxConcurrentRequests > MaxConcurrentRequests {
		p.add("DARKTRACE_MAX_CONCURRENT_REQUESTS", "%d is outside 1–%d", c.DarktraceMaxConcurrentRequests, MaxConcurrentRequests)
	}
	if c.DarktraceMaxRequestsPerMinute < 1 || c.DarktraceMaxRequestsPerMinute > MaxRequestsPerMinute {
		p.add("DARKTRACE_MAX_REQUESTS_PER_MINUTE", "%d is outside 1–%d", c.DarktraceMaxRequestsPerMinute, MaxRequestsPerMinute)
	}
	if c.ShardCount < 1 || c.ShardCount > MaxShards {
		p.add("SHARD_COUNT", "%d is outside 1–%d", c.ShardCount, MaxShards)
		return
	}
	if c.ShardIndex == "" {
		if c.ShardCount > 1 {
			p.add("SHARD_INDEX", "required when SHARD_COUNT is %d: a number from 0 to %d, or the StatefulSet pod name (e.g. dtforward-0)", c.ShardCount, c.ShardCount-1)
		}
		return
	}
	if _, err := c.shard(); err != nil {
		p.add("SHARD_INDEX", "%v", err)
	}
}

// shard returns SHARD_INDEX as a number, reading a pod name's ordinal.
func (c *Config) shard() (int, error) {
	if c.ShardIndex == "" {
		return 0, nil
	}
	digits := c.ShardIndex
	if m := podOrdinal.FindStringSubmatch(c.ShardIndex); m != nil {
		digits = m[2]
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 {
		return 0, &VarError{Var: "SHARD_INDEX", Msg: strconv.Quote(c.ShardIndex) + " is neither a shard number nor a pod name ending in -<ordinal> (e.g. dtforward-2)"}
	}
	if n >= c.ShardCount {
		return 0, &VarError{Var: "SHARD_INDEX", Msg: strconv.Quote(c.ShardIndex) + " is shard " + strconv.Itoa(n) + ", outside 0–" + strconv.Itoa(c.ShardCount-1) + " for SHARD_COUNT=" + strconv.Itoa(c.ShardCount) + " (is SHARD_COUNT equal to the replica count?)"}
	}
	return n, nil
}

// ShardOf returns the shard (0 to count-1) that owns the appliance called name: jump
// consistent hash (Lamping & Veach, 2014) of the name's 64-bit FNV-1a. It depends only on the
// name and count, never on the order of the appliances file; going from count to count+1
// shards moves only about 1/(count+1) of the appliances, all of them to the new shard.
func ShardOf(name string, count int) int {
	if count <= 1 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	key := h.Sum64()
	b, j := int64(-1), int64(0)
	for j < int64(count) {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return int(b)
}

// ShardAppliances returns the appliances this process polls: all of Appliances() without
// sharding, else those whose ShardOf is SHARD_INDEX. A shard may own none (more replicas than
// appliances); the caller decides whether that is an error.
func (c *Config) ShardAppliances() ([]Appliance, error) {
	apps, err := c.Appliances()
	if err != nil || c.ShardCount <= 1 {
		return apps, err
	}
	idx, err := c.shard()
	if err != nil {
		var p problems
		p = append(p, err)
		return nil, p.err()
	}
	out := apps[:0:0]
	for _, a := range apps {
		if ShardOf(a.Name, c.ShardCount) == idx {
			out = append(out, a)
		}
	}
	return out, nil
}

// Shard returns this process's shard number and the shard count (0 and 1 without sharding).
// Call it only on a validated Config.
func (c *Config) Shard() (index, count int) {
	n, _ := c.shard()
	return n, max(c.ShardCount, 1)
}
