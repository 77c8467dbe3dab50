package hec

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// ChannelFileName is the file in the sink's state directory that keeps its channel.
const ChannelFileName = "hec-channel"

// guid is the form HEC requires of a channel (X-Splunk-Request-Channel).
var guid = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// ValidChannel reports whether s has the GUID form HEC requires of a channel.
func ValidChannel(s string) bool { return guid.MatchString(s) }

// formatGUID writes 16 bytes as a version-4-shaped GUID.
func formatGUID(b [16]byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// derivedChannel is a channel computed from what identifies the sink, so that a process
// without a state directory (check, a backfill) still uses the same channel on every start.
func derivedChannel(parts ...string) string {
	sum := sha256.Sum256([]byte("dtforward hec channel\x00" + strings.Join(parts, "\x00")))
	var b [16]byte
	copy(b[:], sum[:16])
	return formatGUID(b)
}

// loadChannel returns the channel kept in dir, creating it (a random GUID) on first use. A
// channel that survives restarts spares Splunk a new channel per start; the acknowledgements
// of a previous process are not relied on (its unacknowledged batch is fetched again).
func loadChannel(dir string) (string, error) {
	path := filepath.Join(dir, ChannelFileName)
	if b, err := os.ReadFile(path); err == nil {
		if s := strings.TrimSpace(string(b)); ValidChannel(s) {
			return s, nil
		}
	} else if !os.IsNotExist(err) {
		return "", fmt.Errorf("reading the HEC channel: %w", err)
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	ch := formatGUID(b)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("keeping the HEC channel: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ChannelFileName+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("keeping the HEC channel: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(ch + "\n"); err != nil {
		tmp.Close()
		return "", fmt.Errorf("keeping the HEC channel: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("keeping the HEC channel: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("keeping the HEC channel: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("keeping the HEC channel: %w", err)
	}
	return ch, nil
}
