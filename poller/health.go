package poller

import (
	"errors"
	"fmt"

	"github.com/dtforward/dtforward/internal/metrics"
)

// Disabled is an appliance that cannot be polled for one sink until the operator acts (its
// checkpoint is unusable). The others run; readiness and the up metric report it.
type Disabled struct {
	Appliance string
	Sink      string // the sink's label, "" for the SIEM_* sink
	Err       error
}

// Health aggregates every poller of the process for /readyz and the up metrics.
type Health struct {
	Sets     []*Set
	Disabled []Disabled
	// MultiSink words the count for several sinks (one poller per appliance and sink).
	MultiSink bool
}

// Ready is /readyz: every appliance's sources answer, deliver and keep up, for every sink. The
// error names each appliance (and, with several sinks, the sink) that is not ready, one line
// per problem, after a count when there are several.
func (h *Health) Ready() error {
	var errs []error
	total, notReady := len(h.Disabled), len(h.Disabled)
	for _, b := range h.Disabled {
		errs = append(errs, fmt.Errorf("%s%s: disabled: %w", sinkPrefix(b.Sink), b.Appliance, b.Err))
	}
	for _, s := range h.Sets {
		for i, p := range s.Pollers {
			total++
			if err := p.Ready(); err != nil {
				if s.Sinks[i] != "" {
					err = fmt.Errorf("%s%w", sinkPrefix(s.Sinks[i]), err)
				}
				errs = append(errs, err)
				notReady++
			}
		}
	}
	if notReady > 0 && total > 1 {
		what := "appliances"
		if h.MultiSink {
			what = "appliance pollers (one per appliance and sink)"
		}
		errs = append([]error{fmt.Errorf("%d of %d %s not ready", notReady, total, what)}, errs...)
	}
	return errors.Join(errs...)
}

// sinkPrefix is "sink NAME: " for a named sink, "" for the SIEM_* sink.
func sinkPrefix(name string) string {
	if name == "" {
		return ""
	}
	return "sink " + name + ": "
}

// ApplianceUp is dtforward_appliance_up: 1 per appliance whose pollers are all ready, 0 per
// failing or disabled one.
func (h *Health) ApplianceUp() []metrics.ApplianceUp {
	up := map[string]bool{}
	var order []string
	mark := func(name string, ok bool) {
		if prev, seen := up[name]; !seen {
			order = append(order, name)
			up[name] = ok
		} else {
			up[name] = prev && ok
		}
	}
	for _, b := range h.Disabled {
		mark(b.Appliance, false)
	}
	for _, s := range h.Sets {
		for _, p := range s.Pollers {
			mark(s.Appliance, p.Ready() == nil)
		}
	}
	out := make([]metrics.ApplianceUp, 0, len(order))
	for _, n := range order {
		out = append(out, metrics.ApplianceUp{Appliance: n, Up: up[n]})
	}
	return out
}

// SinkUp is dtforward_sink_up: 1 per sink that no appliance's poller reports failing. labels
// are the sinks' labels as in Set.Sinks, names their metric names.
func (h *Health) SinkUp(labels, names []string) []metrics.SinkUp {
	failing := map[string]bool{}
	for _, s := range h.Sets {
		for i, p := range s.Pollers {
			for _, st := range p.Status() {
				if st.SinkError != "" {
					failing[s.Sinks[i]] = true
				}
			}
		}
	}
	out := make([]metrics.SinkUp, 0, len(labels))
	for i, l := range labels {
		out = append(out, metrics.SinkUp{Sink: names[i], Up: !failing[l]})
	}
	return out
}

// Detail is /readyz?verbose: one line per appliance, ready, not ready or disabled.
func (h *Health) Detail() []string {
	out := make([]string, 0, len(h.Disabled)+len(h.Sets))
	for _, b := range h.Disabled {
		if b.Sink != "" {
			out = append(out, b.Appliance+" (sink "+b.Sink+"): disabled")
			continue
		}
		out = append(out, b.Appliance+": disabled")
	}
	for _, s := range h.Sets {
		state := "ready"
		for _, p := range s.Pollers {
			if p.Ready() != nil {
				state = "not ready"
			}
		}
		out = append(out, s.Appliance+": "+state)
	}
	return out
}
