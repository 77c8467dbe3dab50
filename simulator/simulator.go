package simulator

import (
	"errors"
	"net/http"
	"time"

	"github.com/dtforward/dtforward/darktrace"
)

// Options configure a Simulator. Zero values pick the documented defaults.
type Options struct {
	PublicToken, PrivateToken string // required: the one token pair the appliance knows at start

	Seed         int64         // every generated record derives from it
	History      time.Duration // back-history window at start (default 24h)
	HistoryCount int           // breaches spread over History at start (default 5000; <0 = none)
	Rate         float64       // live breaches per second until Close; 0 = none

	// LateFraction is the share of breaches whose creationTime lags time by 1m..LateDelay
	// (default LateDelay 1h); the rest are created 1..30 seconds after their activity.
	LateFraction float64
	LateDelay    time.Duration

	// HostileFraction is the share of records carrying hostile strings (pipes, '=', '\',
	// CR/LF, tabs, NUL, invalid UTF-8, forged syslog/CEF headers, very long values) in
	// hostnames, model names, descriptions and usernames.
	HostileFraction float64
	// SystemFraction is the share of System::System breaches with "device": {"did": -1}.
	SystemFraction float64
	// AckFraction is the share of breaches (and incident events) that are acknowledged
	// (default 0.1; <0 = none). They are hidden unless includeacknowledged=true.
	AckFraction float64
	// MissingCreationFraction is the share of breaches without creationTime, as sent by older
	// appliance builds (default 0). Their creation time counts as time for windows.
	MissingCreationFraction float64

	// ClockOffset shifts the appliance clock from the real one: it moves the ±30 min
	// DTAPI-Date check, the Date header and /status time.
	ClockOffset time.Duration
	// Hostname is the appliance FQDN used in breachUrl and incidentEventUrl
	// (default "dt.example.com"). NoURLs models an appliance without an FQDN: no URLs at all.
	Hostname string
	NoURLs   bool

	// CertFile and KeyFile serve TLS with this certificate instead of a generated one.
	CertFile, KeyFile string

	Now func() time.Time // real clock for tests (default time.Now); ClockOffset is added
}

// Simulator is a fake appliance. It is an http.Handler and is safe for concurrent use.
type Simulator struct{}

// New validates o and generates the start-up history.
func New(o Options) (*Simulator, error) { return nil, errors.New("not implemented") }

// ServeHTTP serves the appliance API.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {}

// Start listens on addr (e.g. "127.0.0.1:0") and serves until Close. With useTLS it serves
// HTTPS (HTTP/1.1) with Options.CertFile/KeyFile or a generated self-signed certificate for
// 127.0.0.1, ::1 and localhost, whose PEM is at CAFile. It returns the base URL.
func (s *Simulator) Start(addr string, useTLS bool) (url string, err error) {
	return "", errors.New("not implemented")
}

// URL returns the base URL after Start, "" before.
func (s *Simulator) URL() string { return "" }

// CAFile returns the path of the generated self-signed certificate (TLS only), "" otherwise.
func (s *Simulator) CAFile() string { return "" }

// Close stops the listener, hanging fault handlers and live generation, and removes temp files.
func (s *Simulator) Close() error { return nil }

// Now returns the appliance clock (real clock plus the clock offset).
func (s *Simulator) Now() time.Time { return time.Time{} }

// AddBreaches creates n breaches now and returns their pbids (increasing).
func (s *Simulator) AddBreaches(n int) []int64 { return nil }

// AcknowledgeBreach marks a breach acknowledged; false if pbid is unknown.
func (s *Simulator) AcknowledgeBreach(pbid int64) bool { return false }

// AddActions creates n Antigena actions (some pending, some active at once, some manual) and
// returns their codeids.
func (s *Simulator) AddActions(n int) []int64 { return nil }

// AdvanceActions moves every action that is not cleared one lifecycle step
// (pending → active → extended → cleared) and returns the transitions it made.
func (s *Simulator) AdvanceActions() []ActionState { return nil }

// AddIncidentEvents creates n AI Analyst incident events and returns their ids.
func (s *Simulator) AddIncidentEvents(n int) []string { return nil }

// RaiseIncidentScores raises the group score of every incident event below 100 (some move to a
// new group, as merges do) and returns the ids that changed.
func (s *Simulator) RaiseIncidentScores() []string { return nil }

// ParseFaults parses a fault spec; see the package documentation.
func ParseFaults(spec string) ([]Fault, error) { return nil, errors.New("not implemented") }

// SetFaults replaces the active faults.
func (s *Simulator) SetFaults(f []Fault) {}

// AddToken registers another token pair allowed the given endpoints (nil = all).
func (s *Simulator) AddToken(public, private string, endpoints []string) {}

// SetPermissions restricts a token to the given endpoints (nil = all); other endpoints answer
// 302 /403.
func (s *Simulator) SetPermissions(publicToken string, endpoints []string) {}

// SetClockOffset changes the appliance clock offset.
func (s *Simulator) SetClockOffset(d time.Duration) {}

// Breaches returns every breach created so far, in pbid order, as the API would render it with
// minimal=false, deviceattop=true, historicmodelonly=true, includebreachurl=true.
func (s *Simulator) Breaches() []darktrace.Breach { return nil }

// Actions returns the current state of every Antigena action, in codeid order.
func (s *Simulator) Actions() []darktrace.Action { return nil }

// ActionStates returns every action state emitted so far (creation and each transition).
func (s *Simulator) ActionStates() []ActionState { return nil }

// IncidentEvents returns the current state of every incident event, in creation order.
func (s *Simulator) IncidentEvents() []darktrace.IncidentEvent { return nil }

// Requests returns the log of requests served so far.
func (s *Simulator) Requests() []Request { return nil }

// ActionState is one state an Antigena action went through.
type ActionState struct {
	CodeID  int64
	State   string // "pending", "active", "extended", "cleared"
	Updated int64  // epoch ms, as rendered in "updated"
	Active  bool
	Cleared bool
	Expires int64
}

// Request is one logged request.
type Request struct {
	Time     time.Time // appliance clock
	Method   string
	Path     string
	RawQuery string
	Outcome  string // "ok", "auth:<reason>", "fault:<kind>", "notfound"
}

// FaultKind names a failure mode.
type FaultKind string

// Fault injects one failure mode into matching requests.
type Fault struct {
	Endpoint    string    // "modelbreaches", "antigena", "antigena/summary", "aianalyst", "status"; "" = all
	Kind        FaultKind // one of the Fault* constants
	Probability float64   // chance per matching request (1 = always)
	Count       int       // 0 = unlimited; n = at most n injections
	Param       string    // kind-specific: Retry-After / trickle delay / extra record count
}
