//go:build race

package shapes

// The mutation tests are single-goroutine: under the race detector (10-50x slower) they check
// a quarter of the variants, which keeps CI's -race run in budget and loses no race coverage.
func init() {
	for k, v := range PerPath {
		PerPath[k] = max(1, v/4)
	}
	MinVariants /= 4
}
