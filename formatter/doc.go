// Formatters are built by New from one table (Names lists them) and append into a
// caller-owned buffer, so a poll cycle formats without allocating per line.
//
// # Safety
//
// No output ever contains a raw CR, LF or NUL, and attacker-controlled strings (model names,
// hostnames, descriptions) cannot add, shift or forge a field:
//
//   - cef: header fields escape '\' and '|' and turn line breaks into spaces; extension values
//     escape '\', '=', LF and CR as \\, \=, \n, \r ('|' stays raw, as CEF requires). Values are
//     trimmed of leading/trailing spaces and tabs (parsers disagree on keeping them) and empty
//     values are omitted (liblognorm rejects an empty last value).
//   - leef: LEEF has no escapes. TAB (the delimiter), CR and LF become spaces; a value that
//     starts with a quote gets a typographic quote (“ or ‘) instead, because key=value parsers
//     strip quotes or read to the next quote; an '=' closing a key-like word that follows a
//     space ("x dst=1.2.3.4") is written ':' so that no parser can see a second attribute.
//     '|' in header fields becomes a space.
//   - json, darktrace-json: standard JSON escaping, compact, U+2028/U+2029 escaped. The json
//     format also writes NUL as U+FFFD (syslog-ng's json-parser cuts strings at \u0000);
//     darktrace-json keeps the record's bytes.
//
// In CEF and LEEF other C0 control characters and DEL (which have no escape in CEF or LEEF)
// and invalid UTF-8 bytes become U+FFFD, so each line is valid UTF-8.
//
// # JSON schema, version 1 (format "json")
//
// One compact object per line; absent values are omitted, never null. Times are RFC 3339 UTC
// with milliseconds. New members may be added within a version; renaming, removing or
// retyping one bumps schemaVersion (JSONSchemaVersion).
//
//	schemaVersion    number   1
//	kind             string   modelbreach | antigena | aianalyst
//	id               string   pbid | codeid | incident event id
//	appliance        string   appliance label (DARKTRACE_NAME)
//	time, created    string   first activity, record creation
//	name             string   model name | action label | incident title
//	signatureId      string   model pid | antigena:<action> | aianalyst:<summariser>
//	modelName        string   (breaches, and the model behind an Antigena action)
//	pid              number   model pid
//	modelUuid        string
//	score            number   0..1
//	severity         number   0..10 = round(score*10)
//	category         string   Critical | Suspicious | Compliance | Informational | Antigena ...
//	priority         number   model priority 0..5 (breaches only)
//	tags             [string] model tags
//	mitreTechniques  [string] technique ids
//	device           object   did (number; -1 = system breach), hostname, ip, mac, type
//	destination      object   ip, host, port (number), protocol, app
//	breachUrl        string   link into the Threat Visualizer
//	action           object   type, label, state (pending|active|extended|expired|cleared),
//	                          manual (bool), expires (time), triggerer, pbid (number)
//	message          string   model description's first paragraph | action detail | summary
//	dtforwardVersion string
//	trimmed          bool     true when the size limit trimmed the line
//	trimmedFields    string   comma-separated keys that were shortened or dropped
//
// # Size limit
//
// With Options.MaxBytes set, a longer line is trimmed field by field until it fits, in this
// order (a field is shortened by the excess, or dropped when nothing would remain; lists are
// dropped whole; cuts fall between characters, never inside an escape sequence or a UTF-8
// sequence):
//
//	cef:  msg, cs2 (modelTags), cs3 (mitreTechniques), darktraceUrl, dhost, shost,
//	      cs1 (modelUuid), cs4 (appliance), dvchost, cat, the header Name
//	leef: msg, tags, mitreTechniques, url, dstHost, hostname, modelUuid, appliance, cat,
//	      name, modelName
//	json: message, tags, mitreTechniques, breachUrl, destination.host, device.hostname,
//	      modelUuid, appliance, device.type, category, name, modelName, action.label
//	darktrace-json: triggeredComponents[].logic, model.logic, then model.description,
//	      summary, detail and message are shortened, then model.actions,
//	      triggeredComponents, device.ips, details and history are dropped
//
// Independently of MaxBytes, the CEF header Name is cut at 512 bytes (the ArcSight limit) and
// flagged the same way. A trimmed line says so: CEF "cs6Label=trimmed cs6=<keys>", LEEF "trimmed=<keys>", JSON
// "trimmed":true with "trimmedFields":"<keys>", darktrace-json "trimmed":true. Identifiers,
// times, scores, addresses and the severity are never trimmed; when a line does not fit even
// without every trimmable field (only possible with a limit near MinMaxBytes and very long
// identifiers) Append returns an error wrapping ErrTooLong.
package formatter
