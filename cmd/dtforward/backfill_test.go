package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/backfill"
	"github.com/dtforward/dtforward/internal/testutil/syslogd"
	"github.com/dtforward/dtforward/simulator"
)

func TestBackfillUsageErrors(t *testing.T) {
	vars := baseVars("http://127.0.0.1:1", filepath.Join(t.TempDir(), "out"), t.TempDir())
	future := time.Now().Add(48 * time.Hour).UTC().Format(time.DateOnly)
	tests := []struct {
		name string
		args []string
		want string // substring of stderr
	}{
		{"no from", []string{"--to", "2026-01-02"}, "--from is required"},
		{"no to", []string{"--from", "2026-01-02"}, "--to is required"},
		{"unparsable from", []string{"--from", "yesterday", "--to", "2026-01-02"}, `--from: "yesterday" is not`},
		{"unparsable to", []string{"--from", "2026-01-01", "--to", "2026-13-01"}, `--to: "2026-13-01" is not`},
		{"epoch seconds", []string{"--from", "1700000000", "--to", "2026-01-02"}, "--from: \"1700000000\" looks like epoch seconds"},
		{"to before from", []string{"--from", "2026-01-02", "--to", "2026-01-01"}, "--to 2026-01-01T00:00:00Z must be after --from 2026-01-02T00:00:00Z"},
		{"empty range", []string{"--from", "2026-01-01", "--to", "2026-01-01"}, "must be after --from"},
		{"to in the future", []string{"--from", "2026-01-01", "--to", future}, "--to " + future + "T00:00:00Z is in the future"},
		{"from in the future", []string{"--from", future, "--to", future}, "--from " + future + "T00:00:00Z is in the future"},
		{"bad source", []string{"--from", "2026-01-01", "--to", "2026-01-02", "--sources", "modelbreaches,alerts"}, `--sources: "alerts" is not one of modelbreaches, antigena, aianalyst`},
		{"zero chunk", []string{"--from", "2026-01-01", "--to", "2026-01-02", "--chunk", "0"}, "--chunk 0s must be positive"},
		{"min chunk above chunk", []string{"--from", "2026-01-01", "--to", "2026-01-02", "--min-chunk", "2h"}, "--min-chunk 2h0m0s must be positive and at most --chunk 1h0m0s"},
		{"relative from after fixed to", []string{"--from", "7d", "--to", "2026-01-02"}, "must be after --from"},
		{"negative duration", []string{"--from", "-24h", "--to", "2026-01-02"}, `--from: "-24h" is negative`},
		{"unknown appliance", []string{"--from", "2026-01-01", "--to", "2026-01-02", "--appliance", "dt-other"}, `--appliance: no configured appliance is named "dt-other"`},
		{"stray argument", []string{"--from", "2026-01-01", "--to", "2026-01-02", "now"}, `unexpected argument "now"`},
		{"unknown flag", []string{"--form", "2026-01-01"}, "flag provided but not defined: -form"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, t.Context(), vars, append([]string{"backfill"}, tc.args...)...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) || stdout != "" {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, stderr, tc.want)
			}
		})
	}
	t.Run("config problem", func(t *testing.T) {
		v := baseVars("http://127.0.0.1:1", "out", t.TempDir())
		delete(v, "DARKTRACE_PUBLIC_TOKEN")
		code, _, stderr := runCmd(t, t.Context(), v, "backfill", "--from", "2026-01-01", "--to", "2026-01-02")
		if code != exitUsage || !strings.Contains(stderr, "DARKTRACE_PUBLIC_TOKEN") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}

// TestBackfillRelativeRange: "--from 1d --to 1h" is accepted as now−24h and now−1h (whole
// seconds); the range as given is kept (an unfinished run of the same command resumes its own
// range) and the resume hint also gives the range as fixed times.
func TestBackfillRelativeRange(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	for _, tc := range []struct {
		from, to string
		want     [2]time.Time
	}{
		{"1d", "1h", [2]time.Time{time.Date(2026, 3, 3, 5, 6, 7, 0, time.UTC), time.Date(2026, 3, 4, 4, 6, 7, 0, time.UTC)}},
		{"24h", "2026-03-04", [2]time.Time{time.Date(2026, 3, 3, 5, 6, 7, 0, time.UTC), time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)}},
		{"2026-03-04", "now", [2]time.Time{time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}},
	} {
		e := &env{args: []string{"--from", tc.from, "--to", tc.to}, stdout: io.Discard, stderr: io.Discard}
		fl, code := parseBackfillFlags(e, now)
		if code != -1 {
			t.Fatalf("--from %s --to %s: exit %d, want accepted", tc.from, tc.to, code)
		}
		if !fl.from.Equal(tc.want[0]) || !fl.to.Equal(tc.want[1]) || !fl.relative {
			t.Errorf("--from %s --to %s = [%s, %s) relative %v; want [%s, %s) relative", tc.from, tc.to, fl.from, fl.to, fl.relative, tc.want[0], tc.want[1])
		}
		if want := "--from " + tc.from + " --to " + tc.to; fl.args != want {
			t.Errorf("args %q, want %q (kept in the state to resume the same command)", fl.args, want)
		}
		want := "run the same command again to resume there (or give the range as fixed times: --from " + tc.want[0].Format(time.RFC3339) + " --to " + tc.want[1].Format(time.RFC3339)
		if got := resumeHint(fl.from, fl.to); !strings.HasPrefix(got, want) {
			t.Errorf("resume hint %q, want it to start with %q", got, want)
		}
	}
	fl, _ := parseBackfillFlags(&env{args: []string{"--from", "2026-03-01", "--to", "2026-03-02"}, stdout: io.Discard, stderr: io.Discard}, now)
	if fl.relative {
		t.Errorf("fixed range: relative %v", fl.relative)
	}
}

// backfillResult is the "backfill finished" log line.
type backfillResult struct {
	Message           string
	Complete          bool
	Records           int
	Duplicates        int
	Errors            int
	ChunksDone        int    `json:"chunks_done"`
	ChunksTotal       int    `json:"chunks_total"`
	FirstFailingChunk string `json:"first_failing_chunk"`
	Modelbreaches     *struct{ Sent, Fetched, Deduped, Malformed int }
}

func finished(t *testing.T, stderr string) backfillResult {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(stderr))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r backfillResult
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Message == "backfill finished" {
			return r
		}
	}
	t.Fatalf("no \"backfill finished\" line in stderr:\n%s", tail(stderr, 3000))
	return backfillResult{}
}

// receivedIDs parses JSON-format syslog messages and counts ids per kind; a message cut short
// by a SIGKILL is counted as a fragment.
func receivedIDs(msgs []syslogd.Message) (ids map[string]map[string]int, fragments int) {
	ids = map[string]map[string]int{}
	for _, m := range msgs {
		i := bytes.IndexByte(m.Raw, '{')
		var rec struct{ Kind, ID string }
		if i < 0 || json.Unmarshal(m.Raw[i:], &rec) != nil {
			fragments++
			continue
		}
		if ids[rec.Kind] == nil {
			ids[rec.Kind] = map[string]int{}
		}
		ids[rec.Kind][rec.ID]++
	}
	return ids, fragments
}

func oracle(sim *simulator.Simulator, from, to time.Time) []string {
	var out []string
	for _, b := range sim.BreachInfos() {
		if b.Created >= from.UnixMilli() && b.Created < to.UnixMilli() {
			out = append(out, strconv.FormatInt(b.PBID, 10))
		}
	}
	return out
}

func backfillEnv(vars map[string]string) []string {
	env := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// TestBackfillDeliversEveryBreachOnceToRsyslog is the proof run at test size: 20,000 breaches
// over 30 days, 5% of them created up to 6 hours after their activity, backfilled by the real
// binary through TCP into rsyslog in 3-hour chunks (fewer requests to the -race simulator; the
// default 1h chunk is what bench/backfill-memory runs). Every pbid arrives exactly once and the
// summary matches the simulator's oracle.
func TestBackfillDeliversEveryBreachOnceToRsyslog(t *testing.T) {
	bin := buildBinary(t)
	sim, url := startSim(t, simulator.Options{Seed: 21, History: 30 * 24 * time.Hour, HistoryCount: 20_000,
		LateFraction: 0.05, LateDelay: 6 * time.Hour})
	rcv := syslogd.StartRsyslog(t, syslogd.Options{TCP: true})
	dir := t.TempDir()
	vars := baseVars(url, "", filepath.Join(dir, "state"))
	vars["SIEM_TRANSPORT"], vars["SIEM_ADDRESS"] = "tcp", rcv.TCP
	to := time.Now().UTC().Truncate(time.Second)
	from := to.Add(-31 * 24 * time.Hour)
	want := oracle(sim, from, to)
	late := 0
	for _, b := range sim.BreachInfos() {
		if b.Late {
			late++
		}
	}
	if len(want) < 15_000 || late < 500 {
		t.Fatalf("simulator gave %d breaches (%d late); the test needs ~20,000 with late ones", len(want), late)
	}

	cmd := exec.Command(bin, "backfill", "--from", from.Format(time.RFC3339), "--to", strconv.FormatInt(to.UnixMilli(), 10),
		"--sources", "modelbreaches,aianalyst,antigena", "--chunk", "3h", "--progress-interval", "500ms")
	cmd.Env = backfillEnv(vars)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("backfill: %v\n%s", err, tail(stderr.String(), 3000))
	}
	res := finished(t, stderr.String())
	if !res.Complete || res.Modelbreaches == nil || res.Modelbreaches.Sent != len(want) || res.ChunksDone != 3*31*8 {
		t.Fatalf("summary %+v (breaches %+v), oracle %d breaches", res, res.Modelbreaches, len(want))
	}
	if !strings.Contains(stderr.String(), `"message":"backfill progress"`) {
		t.Errorf("no periodic progress line on a non-terminal stderr")
	}
	ids, fragments := receivedIDs(rcv.Wait(t, res.Records, 30*time.Second))
	if fragments != 0 {
		t.Errorf("%d messages did not parse", fragments)
	}
	missing, dups := 0, 0
	for _, id := range want {
		switch n := ids["modelbreach"][id]; {
		case n == 0:
			missing++
		case n > 1:
			dups++
		}
	}
	if missing != 0 || dups != 0 || len(ids["modelbreach"]) != len(want) {
		t.Fatalf("rsyslog got %d distinct breaches of %d: %d missing, %d duplicated", len(ids["modelbreach"]), len(want), missing, dups)
	}
	if len(ids["aianalyst"]) == 0 || len(ids["antigena"]) == 0 {
		t.Errorf("no AI Analyst events (%d) or Antigena actions (%d) delivered", len(ids["aianalyst"]), len(ids["antigena"]))
	}
}

// TestBackfillResumesAfterKills SIGKILLs the real binary five times at random points of a
// backfill, interrupts it once with SIGINT, and lets a last run finish: nothing is missing and
// each interruption repeats at most one chunk.
func TestBackfillResumesAfterKills(t *testing.T) {
	bin := buildBinary(t)
	sim, url := startSim(t, simulator.Options{Seed: 22, History: 7 * 24 * time.Hour, HistoryCount: 4000,
		LateFraction: 0.05, LateDelay: 3 * time.Hour})
	rcv := syslogd.StartRsyslog(t, syslogd.Options{TCP: true})
	dir := t.TempDir()
	vars := baseVars(url, "", filepath.Join(dir, "state"))
	vars["SIEM_TRANSPORT"], vars["SIEM_ADDRESS"] = "tcp", rcv.TCP
	to := time.Now().UTC().Truncate(time.Second)
	from := to.Add(-7*24*time.Hour - time.Hour)
	want := oracle(sim, from, to)
	// The largest chunk bounds what one interruption may repeat.
	perChunk := map[int64]int{}
	maxChunk := 0
	for _, b := range sim.BreachInfos() {
		if b.Created >= from.UnixMilli() && b.Created < to.UnixMilli() {
			k := (b.Created - from.UnixMilli()) / time.Hour.Milliseconds()
			perChunk[k]++
			maxChunk = max(maxChunk, perChunk[k])
		}
	}
	args := []string{"backfill", "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339),
		"--sources", "modelbreaches", "--chunk", "1h"}
	start := func() (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command(bin, args...)
		cmd.Env = backfillEnv(vars)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd, &stderr
	}
	// Counting lines is cheaper than parsing them (rcv.Count), so the kill lands close to its
	// target even under -race.
	lines := func() int {
		b, err := os.ReadFile(filepath.Join(rcv.Dir, "received.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Count(b, []byte{'\n'})
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 22))
	const kills = 5
	for i := 0; i < kills; i++ {
		// Kill once a random share of the rest has arrived: always mid-backfill.
		before := lines()
		target := before + 1 + rng.IntN(max((len(want)-before)/(kills+1), 1))
		cmd, _ := start()
		deadline := time.Now().Add(30 * time.Second)
		for lines() < target && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Logf("kill %d at %d of %d messages", i+1, lines(), len(want))
	}
	// Ctrl-C while a request hangs: the run stops, keeps what it delivered, exits 1 and says how
	// to resume.
	faults, err := simulator.ParseFaults("modelbreaches:hang@20s")
	if err != nil {
		t.Fatal(err)
	}
	sim.SetFaults(faults)
	cmd, stderr := start()
	deadline := time.Now().Add(10 * time.Second)
	for !slices.ContainsFunc(sim.Requests(), func(r simulator.Request) bool { return r.Outcome == "fault:hang" }) {
		if time.Now().After(deadline) {
			t.Fatalf("no request reached the appliance; stderr:\n%s", tail(stderr.String(), 2000))
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFailure {
		t.Fatalf("after SIGINT: %v, want exit 1\n%s", err, tail(stderr.String(), 2000))
	}
	if r := finished(t, stderr.String()); r.Complete || r.FirstFailingChunk == "" || !strings.Contains(stderr.String(), "run the same command again") {
		t.Errorf("interrupted summary %+v", r)
	}
	sim.SetFaults(nil)

	cmd, stderr = start()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("last run: %v\n%s", err, tail(stderr.String(), 3000))
	}
	res := finished(t, stderr.String())
	if !res.Complete {
		t.Fatalf("last run summary %+v", res)
	}
	total := len(want) // the final count is at least this
	ids, fragments := receivedIDs(rcv.Wait(t, total, 30*time.Second))
	missing, extra := 0, 0
	for _, id := range want {
		if n := ids["modelbreach"][id]; n == 0 {
			missing++
		} else {
			extra += n - 1
		}
	}
	t.Logf("%d breaches, %d repeated after %d interruptions (largest chunk %d), %d cut-off fragments", len(want), extra, kills, maxChunk, fragments)
	if missing != 0 || len(ids["modelbreach"]) != len(want) {
		t.Fatalf("%d of %d breaches missing, %d distinct delivered", missing, len(want), len(ids["modelbreach"]))
	}
	if extra > kills*maxChunk {
		t.Errorf("%d duplicates after %d kills; at most one chunk (%d) each allowed", extra, kills, maxChunk)
	}
}

func TestBackfillDryRunAndFailures(t *testing.T) {
	sim, url := startSim(t, simulator.Options{Seed: 23, History: 12 * time.Hour, HistoryCount: 300})
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	vars := baseVars(url, "", state)
	vars["SIEM_TRANSPORT"] = "stdout"
	delete(vars, "SIEM_ADDRESS")
	to := time.Now().UTC().Truncate(time.Millisecond)
	from := to.Add(-13 * time.Hour)
	args := []string{"backfill", "--from", from.Format(time.RFC3339Nano), "--to", to.Format(time.RFC3339Nano), "--sources", "modelbreaches"}

	t.Run("dry run formats and counts but sends and keeps nothing", func(t *testing.T) {
		code, stdout, stderr := runCmd(t, t.Context(), vars, append(args, "--dry-run")...)
		want := oracle(sim, from, to)
		res := finished(t, stderr)
		if code != exitOK || stdout != "" || res.Records != len(want) {
			t.Fatalf("exit %d, %d bytes on stdout, %d records (oracle %d)\n%s", code, len(stdout), res.Records, len(want), tail(stderr, 2000))
		}
		if !strings.Contains(stderr, "--to is less than 10 minutes ago") {
			t.Errorf("no warning that a range ending now can miss late-published records")
		}
		if !strings.Contains(stderr, "dry run: "+strconv.Itoa(len(want))+" lines formatted") {
			t.Errorf("summary does not report the formatted lines:\n%s", stderr)
		}
		// A dry run never says "sent" (it said "300 sent" and then "nothing sent").
		if m := regexp.MustCompile(`(?i)\bsent\b`).FindString(stderr); m != "" {
			t.Errorf("a dry run says %q:\n%s", m, stderr)
		}
		if entries, _ := os.ReadDir(state); len(entries) != 0 {
			t.Errorf("dry run left state files: %v", entries)
		}
	})
	t.Run("window splits are routine, not errors", func(t *testing.T) {
		code, _, stderr := runCmd(t, t.Context(), vars, append(args, "--dry-run", "--max-records", "40", "--chunk", "13h")...)
		res := finished(t, stderr)
		var split struct {
			Splits int `json:"splits"`
		}
		for _, l := range strings.Split(stderr, "\n") {
			if strings.Contains(l, `"backfill finished"`) {
				_ = json.Unmarshal([]byte(l), &split)
			}
			if strings.Contains(l, `"level":"warn"`) && !strings.Contains(l, "--to is less than 10 minutes ago") {
				t.Errorf("a routine split logged a warning: %s", l)
			}
		}
		if code != exitOK || !res.Complete || res.Errors != 0 || split.Splits == 0 {
			t.Fatalf("exit %d, complete %v, %d errors, %d splits; want a complete run with splits and no errors\n%s",
				code, res.Complete, res.Errors, split.Splits, tail(stderr, 2000))
		}
		if !strings.Contains(stderr, " 0 errors, ") || !strings.Contains(stderr, "windows split in halves, which is routine") {
			t.Errorf("the summary does not say 0 errors and the splits apart:\n%s", tail(stderr, 1000))
		}
	})
	t.Run("stdout sink", func(t *testing.T) {
		code, stdout, stderr := runCmd(t, t.Context(), vars, args...)
		if n := strings.Count(stdout, "\n"); code != exitOK || n != len(oracle(sim, from, to)) {
			t.Fatalf("exit %d, %d lines\n%s", code, n, tail(stderr, 2000))
		}
		entries, _ := os.ReadDir(state)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if len(names) != 2 || !strings.HasPrefix(names[0], "backfill-sim-") || !strings.HasSuffix(names[0], ".json") || names[1] != names[0]+".prev" {
			t.Errorf("state files %v, want backfill-sim-<hash>.json with its durable copy, no lock file left and no live checkpoint", names)
		}
	})
	t.Run("auth failure names the chunk", func(t *testing.T) {
		faults, err := simulator.ParseFaults("modelbreaches:forbidden")
		if err != nil {
			t.Fatal(err)
		}
		sim.SetFaults(faults)
		t.Cleanup(func() { sim.SetFaults(nil) })
		code, _, stderr := runCmd(t, context.Background(), vars, append(args, "--chunk", "30m", "--to", to.Add(-time.Minute).Format(time.RFC3339Nano))...)
		res := finished(t, stderr)
		wantChunk := "modelbreaches [" + from.Format(time.RFC3339Nano) + ", " + from.Add(30*time.Minute).Format(time.RFC3339Nano) + ")"
		if code != exitFailure || res.Complete || res.FirstFailingChunk != wantChunk {
			t.Fatalf("exit %d, first failing chunk %q, want exit 1 and %q\n%s", code, res.FirstFailingChunk, wantChunk, tail(stderr, 2000))
		}
		if !strings.Contains(stderr, "first failing chunk: "+wantChunk) || !strings.Contains(stderr, "403") {
			t.Errorf("summary does not name the chunk and the cause:\n%s", tail(stderr, 2000))
		}
		if strings.Contains(stderr, "priv-fedcba9876543210") || strings.Contains(stderr, "pub-0123456789abcdef") {
			t.Errorf("a token leaked into stderr")
		}
	})
}

const hourMS = int64(time.Hour / time.Millisecond)

func TestBackfillProgress(t *testing.T) {
	win := func(i int) backfill.Window {
		s := time.Date(2026, 10, 1, i, 0, 0, 0, time.UTC)
		return backfill.Window{Source: "modelbreaches", Start: s, End: s.Add(time.Hour)}
	}
	t.Run("terminal: a bar with records, rate, chunks and ETA", func(t *testing.T) {
		var out bytes.Buffer
		p := newBackfillProgressTTY(&out, zerolog.Nop(), backfillFlags{progressEvery: time.Hour}, true)
		for i := 1; i <= 4; i++ {
			p.update(backfill.Progress{Records: 250 * i, ChunksDone: 6 + i, ChunksTotal: 20, Window: win(i),
				Walked: int64(6+i) * hourMS, Total: 20 * hourMS})
			time.Sleep(210 * time.Millisecond) // the bar redraws at most every 200 ms
		}
		p.finish()
		s := out.String()
		for _, want := range []string{"modelbreaches 500 records", "/s", "chunks 7/20", "35%"} {
			if !strings.Contains(s, want) {
				t.Errorf("bar output lacks %q: %q", want, s)
			}
		}
	})
	t.Run("terminal: the bar moves from the first report and no log line prints over it", func(t *testing.T) {
		var out bytes.Buffer
		w := &barWriter{w: &out}
		log := zerolog.New(w)
		p := newBackfillProgressTTY(w, log, backfillFlags{progressEvery: time.Hour}, true)
		w.setBar(p.bar)
		p.update(backfill.Progress{ChunksTotal: 20, Total: 20 * hourMS}) // the report at the start
		time.Sleep(210 * time.Millisecond)
		if !strings.Contains(out.String(), "starting 0 records") {
			t.Fatalf("no bar drawn at the start: %q", out.String())
		}
		for i := 1; i <= 3; i++ {
			log.Warn().Int("i", i).Msg("appliance request failed; retrying")
			time.Sleep(210 * time.Millisecond)
			p.update(backfill.Progress{Records: 10 * i, ChunksTotal: 20, Window: win(i), Walked: int64(i) * hourMS / 2, Total: 20 * hourMS})
			time.Sleep(210 * time.Millisecond)
		}
		p.finish()
		s := out.String()
		if n := strings.Count(s, clearLine+`{"level":"warn"`); n != 3 {
			t.Errorf("%d of 3 log lines start on a cleared line: %q", n, s)
		}
		for _, l := range strings.Split(s, "\n") {
			if i := strings.Index(l, `{"level"`); i >= 0 && !strings.HasSuffix(l, "}") {
				t.Errorf("a log line shares its line with the bar: %q", l)
			}
		}
		if i := strings.LastIndex(s, `"appliance request failed; retrying"}`); !strings.Contains(s[i:], "modelbreaches 30 records") {
			t.Errorf("the bar is not drawn again after the last log line: %q", s[i:])
		}
	})
	t.Run("not a terminal: periodic log lines", func(t *testing.T) {
		var out bytes.Buffer
		p := newBackfillProgressTTY(&out, zerolog.New(&out), backfillFlags{progressEvery: time.Nanosecond}, false)
		p.update(backfill.Progress{Records: 100, ChunksDone: 5, ChunksTotal: 20, Window: win(1), Walked: 5 * hourMS, Total: 20 * hourMS})
		time.Sleep(time.Millisecond)
		p.update(backfill.Progress{Records: 200, ChunksDone: 6, ChunksTotal: 20, Window: win(2), Walked: 6 * hourMS, Total: 20 * hourMS})
		p.finish()
		var last struct {
			Message          string
			Records          int
			ChunksDone       int      `json:"chunks_done"`
			ChunksTotal      int      `json:"chunks_total"`
			RecordsPerSecond float64  `json:"records_per_second"`
			ETA              *float64 `json:"eta_ms"`
			WindowEnd        string   `json:"window_end"`
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 2 || json.Unmarshal([]byte(lines[1]), &last) != nil {
			t.Fatalf("want two JSON progress lines, got %q", out.String())
		}
		if last.Message != "backfill progress" || last.Records != 200 || last.ChunksDone != 6 || last.ChunksTotal != 20 ||
			last.RecordsPerSecond <= 0 || last.ETA == nil || last.WindowEnd != "2026-10-01T03:00:00Z" {
			t.Errorf("progress line %q", lines[1])
		}
		if strings.Contains(out.String(), "\r") || strings.Contains(out.String(), "100%") {
			t.Errorf("a bar was drawn on a non-terminal")
		}
	})
}
