package config_test

import (
	"fmt"
	"time"

	"github.com/dtforward/dtforward/config"
)

func ExampleLoadFor() {
	env := map[string]string{
		"DARKTRACE_URL":           "https://dt.example",
		"DARKTRACE_PUBLIC_TOKEN":  "2485df5aaa4278ed80a133e91ae58c5ccccb7862",
		"DARKTRACE_PRIVATE_TOKEN": "417f88cedddd679e76cdf4eb0a3ef3d99a99f203",
		"SIEM_TRANSPORT":          "tls",
		"SIEM_ADDRESS":            "siem.example:6514",
	}
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	cfg, err := config.LoadFor(config.ModeRun, func(k string) string { return env[k] }, environ)
	if err != nil {
		fmt.Println(err)
		return
	}
	apps, _ := cfg.Appliances()
	sinks, _ := cfg.Sinks()
	fmt.Println(apps[0].Name, apps[0].PrivateToken, sinks[0].Label(), sinks[0].Transport, sinks[0].HeaderOrDefault())
	// Output: dt.example <secret> siem tls rfc5424
}

func ExampleLoadFor_problems() {
	env := map[string]string{"SIEM_FRAMING": "octets", "SIEM_ADRESS": "siem:514", "POLL_INTERVAL": "5"}
	var environ []string
	for _, k := range []string{"POLL_INTERVAL", "SIEM_ADRESS", "SIEM_FRAMING"} {
		environ = append(environ, k+"="+env[k])
	}
	_, err := config.LoadFor(config.ModeRun, func(k string) string { return env[k] }, environ)
	fmt.Println(err)
	// Output:
	// SIEM_ADRESS: unknown variable; did you mean SIEM_ADDRESS?
	// POLL_INTERVAL: "5" is not a duration (e.g. 60s, 5m)
	// DARKTRACE_URL: required for run (e.g. https://appliance.example), or set DARKTRACE_APPLIANCES_FILE
	// DARKTRACE_PUBLIC_TOKEN: required for run (or DARKTRACE_PUBLIC_TOKEN_FILE)
	// DARKTRACE_PRIVATE_TOKEN: required for run (or DARKTRACE_PRIVATE_TOKEN_FILE)
	// SIEM_FRAMING: "octets" is not one of lf, octet-counting
}

func ExampleParseTime() {
	now := time.Date(2024, 5, 10, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"7d", "2024-05-01", "1714564800000", "1714564800"} {
		t, err := config.ParseTime(s, now)
		fmt.Println(t.Format(time.RFC3339), err)
	}
	// Output:
	// 2024-05-03T12:00:00Z <nil>
	// 2024-05-01T00:00:00Z <nil>
	// 2024-05-01T12:00:00Z <nil>
	// 0001-01-01T00:00:00Z "1714564800" looks like epoch seconds; give epoch milliseconds (e.g. 1714564800000)
}

func ExampleTable() {
	for _, v := range config.Table()[:3] {
		fmt.Printf("%s (default %q): %s\n", v.Name, v.Default, v.Description)
	}
	// Output:
	// DARKTRACE_URL (default ""): Appliance base URL, e.g. https://appliance.example (required for run, backfill, check)
	// DARKTRACE_PUBLIC_TOKEN (default ""): API public token (or DARKTRACE_PUBLIC_TOKEN_FILE); never logged
	// DARKTRACE_PUBLIC_TOKEN_FILE (default ""): Path of a file holding DARKTRACE_PUBLIC_TOKEN (trailing newline ignored); mutually exclusive with it
}
