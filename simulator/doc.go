// Package simulator is a faithful fake Darktrace appliance served over real HTTP or HTTPS. It
// stands in for the appliance in every dtforward test, benchmark and in "dtforward demo".
//
// It authenticates every request exactly as the appliance does (DTAPI-Token, DTAPI-Date within
// ±30 minutes of its own, optionally offset, clock, and the HMAC-SHA1 DTAPI-Signature over the
// path and the percent-decoded query in the order sent), with the appliance's error bodies and
// redirects. It serves /modelbreaches, /antigena, /antigena/summary,
// /aianalyst/incidentevents and /status, honouring the parameters dtforward sends.
//
// Records are generated deterministically from Options.Seed: the same options and the same
// sequence of calls give the same bytes. Breaches are stored compactly (tens of bytes each, so
// 200,000 fit easily) and rendered to JSON per request, streamed record by record.
//
// Typical test use:
//
//	sim, err := simulator.New(simulator.Options{PublicToken: "pub", PrivateToken: "priv", Seed: 1, HistoryCount: 100})
//	...
//	url, err := sim.Start("127.0.0.1:0", true) // HTTPS with a self-signed cert; trust sim.CAFile()
//	t.Cleanup(func() { sim.Close() })
//	sim.AddBreaches(3)                          // deterministic new records
//	sim.SetFaults(must(simulator.ParseFaults("modelbreaches:500*2")))
//	... run the client ...
//	want := sim.Breaches()                      // the oracle: every breach created so far
//
// # Window semantics
//
// starttime and endtime are epoch milliseconds and both ends are inclusive. A window filters on
// the breach's time, or on its creationTime with creationtime=true. Responses are sorted by time
// (not by creationTime or pbid), so clients must sort for themselves.
//
// # Faults
//
// Faults are injected only into requests that passed authentication; see ParseFaults for the
// spec language shared with "dtforward simulate --faults".
package simulator
