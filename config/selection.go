package config

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// ApplianceSelection is a sink's "appliances:": a list of names, or labels that must all match.
type ApplianceSelection struct {
	Names  []string
	Labels map[string]string
}

// Selects reports whether the sink receives the records of the appliance name with labels.
func (s *Sink) Selects(name string, labels map[string]string) bool {
	sel := s.Appliances
	if sel == nil {
		return true
	}
	if sel.Names != nil {
		return slices.Contains(sel.Names, name)
	}
	for k, v := range sel.Labels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// selectionEntry decodes "appliances:" from a list of names or a map of labels.
type selectionEntry struct {
	set    bool
	names  []string
	labels map[string]string
}

func (e *selectionEntry) UnmarshalJSON(b []byte) error {
	e.set = true
	if err := json.Unmarshal(b, &e.names); err == nil {
		if e.names == nil {
			e.names = []string{}
		}
		return nil
	}
	e.names = nil
	if err := json.Unmarshal(b, &e.labels); err != nil {
		return fmt.Errorf("appliances: want a list of appliance names or a map of labels")
	}
	if e.labels == nil {
		e.labels = map[string]string{}
	}
	return nil
}

func (e *selectionEntry) UnmarshalYAML(n *yaml.Node) error {
	e.set = true
	switch n.Kind {
	case yaml.SequenceNode:
		e.names = []string{}
		return n.Decode(&e.names)
	case yaml.MappingNode:
		e.labels = map[string]string{}
		return n.Decode(&e.labels)
	}
	return fmt.Errorf("appliances: want a list of appliance names or a map of labels")
}

// checkSelection sets s.Appliances from "appliances:" and reports names that are no
// appliance and label keys no appliance could carry.
func (c *Config) checkSelection(e selectionEntry, s *Sink, add func(key, format string, args ...any)) {
	sel := &ApplianceSelection{Names: e.names, Labels: e.labels}
	s.Appliances = sel
	if len(e.names) == 0 && len(e.labels) == 0 {
		add("appliances", "empty; leave it out for every appliance, or list names or labels")
		return
	}
	for k := range e.labels {
		if !labelKey.MatchString(k) {
			add("appliances", "label key %q must be letters, digits and '_' (not starting with a digit)", k)
		}
	}
	if len(e.names) == 0 {
		return
	}
	apps, err := c.Appliances()
	if err != nil {
		return // reported for the appliance variables (or none configured, as for format)
	}
	known := make([]string, len(apps))
	for i, a := range apps {
		known[i] = a.Name
	}
	for _, n := range e.names {
		if !slices.Contains(known, n) {
			add("appliances", "%q is not an appliance (known: %s)", n, strings.Join(known, ", "))
		}
	}
}
