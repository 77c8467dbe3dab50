package config

// Var describes one environment variable for the README and --help.
type Var struct {
	Name        string
	Default     string // empty when there is none
	Description string
}

// Table lists every variable dtforward reads, in the order of the Config struct, generated
// from its `envconfig`, `default` and `desc` tags. Each secret is followed by its _FILE
// variant.
func Table() []Var {
	var out []Var
	for _, f := range fields() {
		out = append(out, Var{Name: f.name, Default: f.def, Description: f.desc})
		if f.isSecret {
			out = append(out, Var{
				Name:        f.name + "_FILE",
				Description: "Path of a file holding " + f.name + " (trailing newline ignored); mutually exclusive with it",
			})
		}
	}
	return out
}
