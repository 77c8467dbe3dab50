// Package config loads dtforward's configuration from the environment (12-factor), resolves
// *_FILE secret variants and validates everything up front, reporting every problem at once.
package config

import "time"

// Config is the whole environment configuration. The `desc` and `default` tags are the single
// source of the README's configuration table (see TestREADMEConfigTable).
type Config struct {
	DarktraceURL                string        `envconfig:"DARKTRACE_URL" desc:"Appliance base URL, e.g. https://appliance.example (required for run, backfill, check)"`
	DarktracePublicToken        Secret        `envconfig:"DARKTRACE_PUBLIC_TOKEN" desc:"API public token (or DARKTRACE_PUBLIC_TOKEN_FILE); never logged"`
	DarktracePrivateToken       Secret        `envconfig:"DARKTRACE_PRIVATE_TOKEN" desc:"API private token (or DARKTRACE_PRIVATE_TOKEN_FILE); never logged"`
	DarktraceCAFile             string        `envconfig:"DARKTRACE_CA_FILE" desc:"PEM CA bundle to trust for a self-signed appliance (default: system roots)"`
	DarktraceServerName         string        `envconfig:"DARKTRACE_SERVER_NAME" desc:"TLS server name to verify instead of the URL host"`
	DarktraceInsecureSkipVerify bool          `envconfig:"DARKTRACE_INSECURE_SKIP_VERIFY" default:"false" desc:"Skip TLS verification of the appliance (logs a warning; do not use in production)"`
	DarktraceAllowHTTP          bool          `envconfig:"DARKTRACE_ALLOW_HTTP" default:"false" desc:"Allow a plain http:// URL (tests and the simulator only)"`
	DarktraceTimeout            time.Duration `envconfig:"DARKTRACE_TIMEOUT" default:"60s" desc:"Per-request timeout"`
	DarktraceName               string        `envconfig:"DARKTRACE_NAME" desc:"Appliance label in output, state file name and metrics (default: URL host)"`
	DarktraceAppliancesFile     string        `envconfig:"DARKTRACE_APPLIANCES_FILE" desc:"JSON or YAML file listing several appliances (name, url, tokens or token files, CA, labels) for one process; replaces DARKTRACE_URL and the token variables"`
	// Scale: many appliances in one process, and appliances sharded over several processes.
	DarktraceMaxConcurrentRequests int    `envconfig:"DARKTRACE_MAX_CONCURRENT_REQUESTS" default:"16" desc:"Most API requests in flight at once across all appliances (1-1024); the others queue in arrival order"`
	DarktraceMaxRequestsPerMinute  int    `envconfig:"DARKTRACE_MAX_REQUESTS_PER_MINUTE" default:"120" desc:"Most API requests sent to one appliance in any 60 seconds (1-6000); run waits rather than exceed it (dtforward_api_throttled_seconds_total)"`
	ShardCount                     int    `envconfig:"SHARD_COUNT" default:"1" desc:"Number of processes (e.g. StatefulSet replicas) sharing the appliances file; each polls the appliances whose name hashes to its SHARD_INDEX (1-1000)"`
	ShardIndex                     string `envconfig:"SHARD_INDEX" desc:"This process's shard, 0 to SHARD_COUNT-1, or a StatefulSet pod name ending in its ordinal (dtforward-2 is shard 2); required when SHARD_COUNT > 1"`

	PollSources  []string      `envconfig:"POLL_SOURCES" default:"modelbreaches,antigena" desc:"Comma-separated sources: modelbreaches, antigena, aianalyst"`
	PollInterval time.Duration `envconfig:"POLL_INTERVAL" default:"60s" desc:"Time between polls"`
	PollStart    string        `envconfig:"POLL_START" default:"1h" desc:"How far back the very first run reaches: a duration (1h, 7d) or a timestamp (RFC 3339, YYYY-MM-DD, epoch ms)"`
	PollOverlap  time.Duration `envconfig:"POLL_OVERLAP" default:"10m" desc:"Each window re-reads this much for late records; dedupe removes repeats (1m to 24h)"`

	PollAIAnalystRefreshHorizon  time.Duration `envconfig:"POLL_AIANALYST_REFRESH_HORIZON" default:"24h" desc:"AI Analyst events change for hours: re-read events created this far back and send one again when its scores, group or acknowledgement changed (0 = off, at most 168h)"`
	PollAIAnalystRefreshInterval time.Duration `envconfig:"POLL_AIANALYST_REFRESH_INTERVAL" default:"10m" desc:"Time between two re-reads of POLL_AIANALYST_REFRESH_HORIZON (at least 1m)"`

	FilterMinScore            float64 `envconfig:"FILTER_MIN_SCORE" default:"0" desc:"Drop alerts scoring below this (0-1), after fetching: never sent to the appliance as minscore"`
	FilterIncludeAcknowledged bool    `envconfig:"FILTER_INCLUDE_ACKNOWLEDGED" default:"true" desc:"Forward acknowledged breaches"`
	FilterIncludeSuppressed   bool    `envconfig:"FILTER_INCLUDE_SUPPRESSED" default:"true" desc:"Forward suppressed breaches (false asks the appliance with includesuppressed=false: records do not say they are suppressed)"`
	FilterModels              string  `envconfig:"FILTER_MODELS" desc:"Regular expression; only alerts whose model name matches are forwarded"`
	FilterTags                string  `envconfig:"FILTER_TAGS" desc:"Regular expression; only alerts with a model tag that matches are forwarded"`

	SIEMFormat                string        `envconfig:"SIEM_FORMAT" default:"cef" desc:"Output format: cef, leef, json, darktrace-json, ocsf"`
	SIEMLEEFVersion           string        `envconfig:"SIEM_LEEF_VERSION" default:"2.0" desc:"LEEF version: 2.0 (tab delimiter) or 1.0"`
	SIEMTransport             string        `envconfig:"SIEM_TRANSPORT" default:"stdout" desc:"Transport: udp, tcp, tls, relp, hec (Splunk HTTP Event Collector), stdout, file, sentinel (Microsoft Sentinel through the Logs Ingestion API), otlp (OpenTelemetry: OTLP/HTTP or gRPC to a collector)"`
	SIEMAddress               string        `envconfig:"SIEM_ADDRESS" desc:"host:port for udp/tcp/tls/relp, the HEC base URL for hec (https://splunk.example:8088), a path for file, the DCE or DCR logs ingestion endpoint URL for sentinel, the collector for otlp (https://collector:4318, or collector:4317 with SIEM_OTLP_PROTOCOL=grpc)"`
	SIEMHeader                string        `envconfig:"SIEM_HEADER" desc:"Syslog header: rfc5424, rfc3164, none (default rfc5424; none for the stdout and file transports)"`
	SIEMFraming               string        `envconfig:"SIEM_FRAMING" desc:"Stream framing: lf or octet-counting (default lf; octet-counting for tls)"`
	SIEMFacility              string        `envconfig:"SIEM_FACILITY" default:"local4" desc:"Syslog facility name"`
	SIEMTLSCAFile             string        `envconfig:"SIEM_TLS_CA_FILE" desc:"PEM CA bundle to verify the collector"`
	SIEMTLSCertFile           string        `envconfig:"SIEM_TLS_CERT_FILE" desc:"Client certificate for mutual TLS"`
	SIEMTLSKeyFile            string        `envconfig:"SIEM_TLS_KEY_FILE" desc:"Client key for mutual TLS"`
	SIEMTLSServerName         string        `envconfig:"SIEM_TLS_SERVER_NAME" desc:"TLS server name to verify instead of the address host"`
	SIEMTLSInsecureSkipVerify bool          `envconfig:"SIEM_TLS_INSECURE_SKIP_VERIFY" default:"false" desc:"Skip TLS verification of the collector (logs a warning)"`
	SIEMRELPWindow            int           `envconfig:"SIEM_RELP_WINDOW" default:"128" desc:"relp: most messages sent and not yet acknowledged (1–65536); also bounds what a lost connection resends"`
	SIEMRELPTLS               bool          `envconfig:"SIEM_RELP_TLS" default:"false" desc:"relp: TLS from the first byte (imrelp tls=\"on\") with the SIEM_TLS_* settings"`
	SIEMMaxMessageBytes       int           `envconfig:"SIEM_MAX_MESSAGE_BYTES" default:"8192" desc:"Longest line sent, at least 480; longer lines are trimmed field-wise (8192 is rsyslog's default limit)"`
	SIEMTimeout               time.Duration `envconfig:"SIEM_TIMEOUT" default:"10s" desc:"Dial, handshake and write deadline; also how long a TCP/TLS batch may wait to be acknowledged by the collector's kernel, and (relp) the longest wait for an answer"`
	SIEMUDPRate               int           `envconfig:"SIEM_UDP_RATE" default:"1000" desc:"UDP only: most datagrams sent per second (0 = unlimited), so that a burst such as a backfill does not overrun the collector's socket buffer"`
	SIEMAppName               string        `envconfig:"SIEM_APP_NAME" desc:"Syslog APP-NAME (RFC 5424) or TAG (RFC 3164), 1–48 printable ASCII characters (default: dtforward; darktrace for SIEM_FORMAT=darktrace-json)"`
	SIEMHECToken              Secret        `envconfig:"SIEM_HEC_TOKEN" desc:"hec: the HEC token (or SIEM_HEC_TOKEN_FILE); never logged"`
	SIEMHECAck                bool          `envconfig:"SIEM_HEC_ACK" default:"true" desc:"hec: indexer acknowledgement: the checkpoint moves only when Splunk confirms every event indexed (the token must have it on); false accepts HEC's 200, which does not mean indexed"`
	SIEMHECAckTimeout         time.Duration `envconfig:"SIEM_HEC_ACK_TIMEOUT" default:"60s" desc:"hec: how long to wait for an acknowledgement before sending the unacknowledged events again (duplicates, never a gap)"`
	SIEMHECIndex              string        `envconfig:"SIEM_HEC_INDEX" desc:"hec: Splunk index (default: the token's default index)"`
	SIEMHECSourcetype         string        `envconfig:"SIEM_HEC_SOURCETYPE" desc:"hec: one sourcetype for every alert, or kind=sourcetype pairs, e.g. modelbreach=darktrace:alert (default darktrace:modelbreach, darktrace:aianalyst, darktrace:antigena; darktrace:cef or darktrace:leef for those formats)"`
	// OpenTelemetry (SIEM_TRANSPORT=otlp).
	SIEMOTLPProtocol string `envconfig:"SIEM_OTLP_PROTOCOL" desc:"otlp: http/protobuf (default), http/json (OTLP/HTTP to SIEM_ADDRESS http(s)://host:4318, path /v1/logs added) or grpc (OTLP/gRPC to SIEM_ADDRESS host:4317, TLS; http://host:4317 in clear)"`
	SIEMOTLPHeaders  Secret `envconfig:"SIEM_OTLP_HEADERS" secret:"spaced" desc:"otlp: headers sent with every export, k=v pairs separated by commas, values percent-encoded as in OTEL_EXPORTER_OTLP_HEADERS, e.g. authorization=Bearer%20abc (or SIEM_OTLP_HEADERS_FILE); never logged"`
	// Microsoft Sentinel (SIEM_TRANSPORT=sentinel).
	SIEMSentinelDCRID                 string `envconfig:"SIEM_SENTINEL_DCR_ID" desc:"sentinel: the Data Collection Rule's immutable id, dcr- followed by 32 hex digits"`
	SIEMSentinelTenantID              string `envconfig:"SIEM_SENTINEL_TENANT_ID" desc:"sentinel: Entra ID tenant (directory) id (default with workload identity: AZURE_TENANT_ID)"`
	SIEMSentinelClientID              string `envconfig:"SIEM_SENTINEL_CLIENT_ID" desc:"sentinel: application (client) id of the Entra app (default with workload identity: AZURE_CLIENT_ID)"`
	SIEMSentinelClientSecret          Secret `envconfig:"SIEM_SENTINEL_CLIENT_SECRET" desc:"sentinel: the app's client secret (or SIEM_SENTINEL_CLIENT_SECRET_FILE); never logged"`
	SIEMSentinelClientCertificateFile string `envconfig:"SIEM_SENTINEL_CLIENT_CERTIFICATE_FILE" desc:"sentinel: PEM file with the app's certificate and RSA private key, instead of a secret"`
	SIEMSentinelAuthority             string `envconfig:"SIEM_SENTINEL_AUTHORITY" desc:"sentinel: Entra ID authority; tokens come from {authority}/{tenant}/oauth2/v2.0/token (default https://login.microsoftonline.com)"`
	SIEMSentinelStreamModelAlerts     string `envconfig:"SIEM_SENTINEL_STREAM_MODEL_ALERTS" desc:"sentinel: stream for model breaches, for a custom DCR (default Custom-DarktraceModelAlerts)"`
	SIEMSentinelStreamIncidents       string `envconfig:"SIEM_SENTINEL_STREAM_INCIDENTS" desc:"sentinel: stream for AI Analyst events (default Custom-DarktraceIncidents)"`
	SIEMSentinelStreamResponseActions string `envconfig:"SIEM_SENTINEL_STREAM_RESPONSE_ACTIONS" desc:"sentinel: stream for Antigena actions (default Custom-DarktraceResponseActions)"`
	// Workload identity, as AKS injects it; used by sentinel when no secret or certificate is set.
	AzureFederatedTokenFile string `envconfig:"AZURE_FEDERATED_TOKEN_FILE" desc:"sentinel: workload identity token file (set by AKS workload identity); used when no client secret or certificate is set"`
	AzureClientID           string `envconfig:"AZURE_CLIENT_ID" desc:"sentinel with workload identity: default client id (set by AKS)"`
	AzureTenantID           string `envconfig:"AZURE_TENANT_ID" desc:"sentinel with workload identity: default tenant id (set by AKS)"`
	AzureAuthorityHost      string `envconfig:"AZURE_AUTHORITY_HOST" desc:"sentinel with workload identity: default authority (set by AKS)"`
	SIEMSinksFile           string `envconfig:"SIEM_SINKS_FILE" desc:"JSON or YAML file listing several sinks (name, sources, appliances: a list of appliance names or a map of labels that must all match, format, transport, address and the other SIEM_* settings in lower case, e.g. tls_ca_file, app_name, sentinel_dcr_id); each keeps its own progress in STATE_DIR/<name>/; replaces the other SIEM_* variables"`

	SIEMPoisonRetries  int   `envconfig:"SIEM_POISON_RETRIES" default:"3" desc:"How many times in a row a receiver may refuse one alert (a RELP 500, an HTTP 400 naming it, an OTLP rejection) before it is set aside in the sink's dead-letter file and the alerts behind it flow (1–100; every sink)"`
	DeadLetterMaxBytes int64 `envconfig:"DEAD_LETTER_MAX_BYTES" default:"67108864" desc:"Bound of each sink's dead-letter file, STATE_DIR[/<sink>]/dead-letters.jsonl (at least 65536); when it is full an alert that must be set aside is held, with an error naming it"`

	StateDir        string        `envconfig:"STATE_DIR" default:"./state" desc:"Directory for checkpoint files (container: /var/lib/dtforward)"`
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"10s" desc:"How long SIGTERM waits for the in-flight batch"`
	LogLevel        string        `envconfig:"LOG_LEVEL" default:"info" desc:"trace, debug, info, warn, error"`
	LogFormat       string        `envconfig:"LOG_FORMAT" desc:"json or console (default: console on a TTY, else json)"`
	HTTPAddress     string        `envconfig:"HTTP_ADDRESS" desc:"Listen address for /healthz, /readyz and /metrics, e.g. :9090 (off when empty)"`
}
