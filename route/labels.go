package route

import (
	"context"

	"github.com/dtforward/dtforward/alert"
)

// Deliverer is what pollers and backfill hand alerts to: a Destination, a Delivery, or a
// Labelled view of one.
type Deliverer interface {
	Deliver(ctx context.Context, alerts []*alert.Alert) error
}

// Labelled is one appliance's view of a shared destination: it stamps the appliance's labels
// from the appliances file on every alert.
type Labelled struct {
	Next   Deliverer
	Labels map[string]string // shared, read-only
}

// Deliver implements Deliverer.
func (l Labelled) Deliver(ctx context.Context, alerts []*alert.Alert) error {
	if len(l.Labels) > 0 {
		for _, a := range alerts {
			a.Labels = l.Labels
		}
	}
	return l.Next.Deliver(ctx, alerts)
}
