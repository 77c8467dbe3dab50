package darktrace

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // HMAC-SHA1 is what the Darktrace API mandates.
	"encoding/hex"
	"time"
)

// DateLayout is the DTAPI-Date format dtforward sends. The appliance also accepts
// "2006-01-02 15:04:05" and ISO 8601; this one needs no URL or header quoting.
const DateLayout = "20060102T150405"

// Signer computes DTAPI-Signature values for one token pair.
type Signer struct {
	public  string
	private string
}

// NewSigner returns a Signer for the public/private token pair.
func NewSigner(public, private string) *Signer {
	return &Signer{public: public, private: private}
}

// Public returns the public token (sent as DTAPI-Token).
func (s *Signer) Public() string { return s.public }

// Sign returns hex(HMAC-SHA1(private, pathAndQuery + "\n" + public + "\n" + date)).
// pathAndQuery must be the path plus "?" and the query exactly as sent (same order, un-encoded);
// just the path when there is no query.
func (s *Signer) Sign(pathAndQuery, date string) string {
	return Signature(s.private, s.public, pathAndQuery, date)
}

// Signature is the stateless form of Signer.Sign, shared with the simulator's verifier.
func Signature(private, public, pathAndQuery, date string) string {
	mac := hmac.New(sha1.New, []byte(private))
	mac.Write([]byte(pathAndQuery))
	mac.Write([]byte{'\n'})
	mac.Write([]byte(public))
	mac.Write([]byte{'\n'})
	mac.Write([]byte(date))
	return hex.EncodeToString(mac.Sum(nil))
}

// FormatDate renders t as a DTAPI-Date value, always in UTC: a known integration broke on
// non-UTC hosts by sending local time.
func FormatDate(t time.Time) string { return t.UTC().Format(DateLayout) }
