package formatter_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/formatter"
)

// The parser checks start external tools; nothing may outlive a test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ExampleNew() {
	f, err := formatter.New("cef", formatter.Options{Version: "1.0.0", MaxBytes: 8192})
	if err != nil {
		fmt.Println(err)
		return
	}
	a := &alert.Alert{
		Kind: alert.KindBreach, ID: "95", Appliance: "dt-lab", Name: "Device::Unusual | Activity",
		SignatureID: "762", Score: 0.674, Severity: 7, Category: "Suspicious", Priority: 4,
		Created: time.UnixMilli(1700000060000), Time: time.UnixMilli(1700000000000),
		Model:   alert.Model{PID: 762},
		Device:  alert.Device{DID: 7, IP: "10.0.0.7", Hostname: "ws-7"},
		Message: "key=value text\nsecond line",
	}
	var buf []byte // reuse across alerts
	buf, _ = f.Append(buf[:0], a)
	os.Stdout.Write(append(buf, '\n'))
	// Output:
	// CEF:0|Darktrace|DCIP|1.0.0|762|Device/Unusual \| Activity|7|externalId=95 rt=1700000060000 start=1700000000000 cat=Suspicious dvc=10.0.0.7 src=10.0.0.7 dvchost=ws-7 shost=ws-7 cs4Label=appliance cs4=dt-lab cn1Label=modelPid cn1=762 cn2Label=deviceId cn2=7 cn3Label=priority cn3=4 cfp1Label=score cfp1=0.674 msg=key\=value text\nsecond line
}

func ExampleNames() {
	fmt.Println(formatter.Names())
	_, err := formatter.New("xml", formatter.Options{})
	fmt.Println(err)
	// Output:
	// [cef darktrace-json json leef ocsf]
	// unknown format "xml" (valid: cef, darktrace-json, json, leef, ocsf)
}
