// Package simulator is a faithful fake Darktrace appliance served over real HTTP or HTTPS. It
// stands in for the appliance in every dtforward test, benchmark and in "dtforward demo".
//
// It authenticates every request exactly as the appliance does (DTAPI-Token, DTAPI-Date within
// ±30 minutes of its own, optionally offset, clock, and the HMAC-SHA1 DTAPI-Signature over the
// path and the percent-decoded query in the order sent), with the appliance's error bodies and
// redirects:
//
//	missing DTAPI headers                302 Location: /login
//	DTAPI-Date unparsable or >30m off    400 {"<first path segment>": "API DATE ERROR"}
//	bad signature or unknown token       400 {"<first path segment>": "API SIGNATURE ERROR"}
//	valid auth, unknown endpoint         302 Location: /login
//	valid auth, token lacks permission   302 Location: /403, body "Found. Redirecting to /403"
//
// Every response carries a Date header from the appliance clock. It serves /modelbreaches,
// /antigena, /antigena/summary, /aianalyst/incidentevents and /status, honouring the
// parameters dtforward sends (see the Window semantics below).
//
// Records are generated deterministically from Options.Seed: the same options, the same clock
// (Options.Now) and the same sequence of calls give the same bytes. Breaches are stored
// compactly (about 43 bytes each, so 200,000 fit in under 10 MB) and rendered to JSON per
// request, streamed record by record. They are realistic and messy: {then, now} or flat model,
// deep logic trees, empty tags, multi-line descriptions, System::System breaches with
// "device": {"did": -1}, placeholder IPs such as "192.168.16.#54818", hostnames that are IPs,
// late breaches whose creationTime lags their time by minutes to hours, and (HostileFraction)
// hostile strings. Antigena actions move pending → active → extended → cleared with a string
// "updated"; AI Analyst events have rising, sometimes string, groupScores and changing groups.
//
// Typical test use:
//
//	sim, err := simulator.New(simulator.Options{PublicToken: "pub", PrivateToken: "priv", Seed: 1, HistoryCount: 100})
//	...
//	defer sim.Close()
//	url, err := sim.Start("127.0.0.1:0", true) // HTTPS with a self-signed cert; trust sim.CAFile()
//	sim.AddBreaches(3)                          // deterministic new records
//	faults, err := simulator.ParseFaults("modelbreaches:500*2")
//	sim.SetFaults(faults)
//	... run the client ...
//	want := sim.BreachInfos()                   // the oracle: every breach created so far
//
// The oracle methods are Breaches (full records), BreachInfos (compact, for large stores),
// Actions and ActionStates (every Antigena state emitted), IncidentEvents, and Requests (the
// request log with each outcome).
//
// # Window semantics
//
// starttime and endtime are epoch milliseconds and both ends are inclusive. A /modelbreaches
// window filters on the breach's time, or on its creationTime with creationtime=true; without
// a window it covers the last year. Responses are sorted by time (not by creationTime or pbid),
// so clients must sort for themselves. Defaults follow the appliance: acknowledged and
// suppressed breaches are hidden, the model is {then, now} unless historicmodelonly=true, the
// device is at the top (deviceattop=false leaves only "did"), breachUrl only with
// includebreachurl=true, pbid=N returns one object ({} when unknown, or when the query's
// includeacknowledged, includesuppressed or minscore hide it, as they hide it from a list). /aianalyst/incidentevents
// windows on createdAt (default the last 7 days) and returns pinned events outside the window
// unless includeallpinned=false. /antigena hides cleared actions unless includecleared=true and
// windows on start when starttime/endtime are given.
//
// # Faults
//
// Faults are injected only into requests that passed authentication; see ParseFaults for the
// spec language shared with "dtforward simulate --faults" and the Fault* constants for the
// kinds. Synthetic records added by the "large" fault have ids from LargePBIDBase up and are
// not in the oracle. Go's http.Transport silently retries a GET once when a reused connection
// dies before the first response byte, so a "reset" is only seen by such a client when it is
// injected twice in a row.
package simulator
