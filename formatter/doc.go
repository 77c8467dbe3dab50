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
//   - ocsf: the same JSON escaping as json, NUL also written as U+FFFD; package
//     formatter/ocsf has the mapping and its own trimming order (README, "OCSF").
//
// In CEF and LEEF other C0 control characters and DEL (which have no escape in CEF or LEEF)
// and invalid UTF-8 bytes become U+FFFD, so each line is valid UTF-8.
//
// # CEF conventions
//
// CEF follows Darktrace's own CEF, which deployed SIEM content reads (README.md, "CEF"): the
// extension starts with externalId; the Name is the model name with "::" written "/"; the
// breaching device is dvc (a real IP only) / dvchost (hostname, else device label, else the
// appliance's placeholder such as "10.0.0.#36859") and also src/shost/smac; the appliance is
// only cs4. Absent values are left out (no cn3 without a priority, no cn1 without a pid); the
// header SignatureID falls back to "<kind>:unknown". Extra keys: modelName (Antigena: the
// triggering model, with "/"), groupingId/groupScore/groupCategory (AI Analyst group),
// acknowledged/ackTime/ackUser, applianceLabels ("k=v,k2=v2" sorted by key). Scores (cfp1,
// groupScore, and score in LEEF/JSON) are rounded to 6 decimals and written in their shortest
// form, so 2.8/100 prints 0.028.
//
// # JSON schema, version 2 (format "json")
//
// One compact object per line; absent values are omitted, never null. Times are RFC 3339 UTC
// with milliseconds. New members may be added within a version; renaming, removing, retyping
// or changing the meaning of one bumps schemaVersion (JSONSchemaVersion). Version 2: AI
// Analyst score, severity and category are the event's own (version 1 took the group's),
// priority is omitted when the model has none.
//
//	schemaVersion    number   2
//	kind             string   modelbreach | antigena | aianalyst
//	id               string   pbid | codeid | incident event id
//	appliance        string   appliance label (DARKTRACE_NAME)
//	applianceLabels  object   the appliance's labels, keys sorted
//	time, created    string   first activity, record creation
//	name             string   model name | action label | incident title
//	signatureId      string   model pid | antigena:<action> | aianalyst:<summariser> | <kind>:unknown
//	modelName        string   (breaches, and the model behind an Antigena action)
//	pid              number   model pid
//	modelUuid        string
//	score            number   0..1 (AI Analyst: aiaScore/100)
//	severity         number   0..10 = round(score*10)
//	category         string   Critical | Suspicious | Compliance | Informational | Antigena ...
//	priority         number   model priority 0..5 (breaches with a priority only)
//	tags             [string] model tags
//	mitreTechniques  [string] technique ids
//	device           object   did (number; -1 = system breach), hostname, label, ip,
//	                          placeholder, mac, type
//	destination      object   ip, host, port (number), protocol, app
//	breachUrl        string   link into the Threat Visualizer
//	action           object   type, label, state (pending|active|extended|expired|cleared),
//	                          manual (bool), expires (time), triggerer, pbid (number)
//	group            object   AI Analyst group: id, score (0..1), category
//	acknowledged     bool     true when acknowledged (absent otherwise)
//	acknowledgement  object   time, user (when the record says)
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
//	cef:  msg, cs2 (modelTags), cs3 (mitreTechniques), darktraceUrl, dhost, applianceLabels,
//	      modelName, ackUser, groupingId, groupCategory, shost, cs1 (modelUuid), cs4 (appliance),
//	      dvchost, cat, suser, act, cs5 (actionState), app, proto, the header Name, the
//	      header SignatureID
//	leef: msg, tags, mitreTechniques, url, dstHost, applianceLabels, ackUser, groupingId,
//	      groupCategory, hostname, modelUuid, appliance, cat, name, modelName, usrName,
//	      action, actionState, proto, the header EventID
//	json: message, tags, mitreTechniques, breachUrl, destination.host, applianceLabels,
//	      acknowledgement.user, group.id, group.category, device.hostname, device.label,
//	      device.placeholder, modelUuid, appliance, device.type, category, name, modelName,
//	      action.label, action.triggerer, action.type, action.state, destination.protocol,
//	      destination.app, signatureId
//	darktrace-json: triggeredComponents[].logic, model.logic, then model.description,
//	      summary, detail and message are shortened, then model.actions,
//	      triggeredComponents, device.ips, details and history are dropped; a record still
//	      too long (a list of 60 devices, 3,000 model tags) keeps only its ids, times, scores,
//	      categories, names and addresses, at any depth, marked "trimmedTo":"ids"
//
// Independently of MaxBytes, the CEF header Name is cut at 512 bytes and the SignatureID at
// 1023 (the ArcSight limits) and flagged the same way; a SignatureID or LEEF EventID trimmed
// to nothing is written as "<kind>:unknown". A trimmed line says so: CEF
// "cs6Label=trimmed cs6=<keys>", LEEF "trimmed=<keys>", JSON "trimmed":true with "trimmedFields":"<keys>", darktrace-json "trimmed":true; a key list
// longer than 100 bytes ends with "...". Identifiers, times, scores, addresses and the
// severity are never trimmed, and every free-text field is, so an alert fits any limit from
// MinMaxBytes up unless its identifiers alone are longer (Append then returns an error
// wrapping ErrTooLong).
package formatter
