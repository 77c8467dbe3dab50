package darktrace

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// CheckURL is the one rule for an appliance URL (DARKTRACE_URL, an appliances file's url, New):
// https://host[:port], or http:// when allowHTTP; allowHint says how to allow it ("set …").
// Nothing else: the API paths are added by dtforward, and a base path would change what the
// appliance signs; a query or fragment would be dropped; user info would leak into logs. It
// returns the base URL requests are made against. Errors show the URL with user info hidden.
func CheckURL(raw string, allowHTTP bool, allowHint string) (url.URL, error) {
	shown := redactURL(raw)
	if strings.TrimSpace(raw) != raw {
		// A trailing newline from a file or a secret: url.Parse would call it a bad URL.
		return url.URL{}, fmt.Errorf("%q has spaces or control characters around it (a trailing newline?); remove them", shown)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return url.URL{}, fmt.Errorf("%q is not an http(s) URL (e.g. https://appliance.example)", shown)
	}
	if u.Hostname() == "" {
		return url.URL{}, fmt.Errorf("%q has no host name (e.g. https://appliance.example)", shown)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return url.URL{}, fmt.Errorf("%q has port %s; a port is 1 to 65535", shown, p)
		}
	}
	if u.Scheme == "http" && !allowHTTP {
		return url.URL{}, fmt.Errorf("%q uses http; set %s or use https", shown, allowHint)
	}
	if u.User != nil {
		return url.URL{}, fmt.Errorf("%q contains user info; tokens go in their own variables", shown)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return url.URL{}, fmt.Errorf("%q has a query or fragment; give the base URL only", shown)
	}
	if strings.Trim(u.Path, "/") != "" {
		return url.URL{}, fmt.Errorf("%q has a path; give scheme://host[:port] only, dtforward adds the API paths", shown)
	}
	return url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// redactURL hides anything between "://" and the last "@", parsed or not.
func redactURL(raw string) string {
	if i := strings.Index(raw, "://"); i >= 0 {
		if j := strings.LastIndex(raw, "@"); j > i {
			return raw[:i+3] + "xxxxx" + raw[j:]
		}
	}
	return raw
}
