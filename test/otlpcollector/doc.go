// Package otlpcollector tests dtforward's otlp transport against the OpenTelemetry
// Collector's own OTLP receiver (otlpreceiver), started in-process with a consumer that counts
// what arrived, or refuses, or is slow. It is a module of its own so that the collector's
// dependencies are built only by its own test command (README.md), not by `go test ./...`
// of dtforward, whose go.mod stays free of them.
package otlpcollector
