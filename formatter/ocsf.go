package formatter

import (
	"errors"
	"fmt"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/formatter/ocsf"
)

// ocsfFormatter writes one OCSF event per alert (package ocsf has the mapping).
type ocsfFormatter struct {
	version string
	max     int
}

func newOCSF(o Options) (Formatter, error) {
	return &ocsfFormatter{version: o.Version, max: o.MaxBytes}, nil
}

// Append implements Formatter.
func (f *ocsfFormatter) Append(dst []byte, a *alert.Alert) ([]byte, error) {
	e, err := ocsf.Build(a, f.version)
	if err != nil {
		return dst, err
	}
	out, err := ocsf.Append(dst, e, f.max)
	if errors.Is(err, ocsf.ErrTooLong) {
		return out, fmt.Errorf("%w: %v", ErrTooLong, err)
	}
	return out, err
}
