package alert_test

import (
	"fmt"

	"github.com/dtforward/dtforward/alert"
)

func ExampleDecode() {
	raw := []byte(`{"pbid": 95, "time": 1700000000000, "score": 0.674,
		"model": {"name": "Anomalous Connection::Data Sent to Rare Domain", "pid": 762},
		"device": {"did": 7, "ip": "192.168.16.#54818", "hostname": "ws-7"}}`)
	a, err := alert.Decode("", raw, "dt-lab", "dt.example.com")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(a.Kind, a.ID, a.SignatureID, a.Severity, a.URL)
	fmt.Printf("ip=%q hostname=%q\n", a.Device.IP, a.Device.Hostname)
	// Output:
	// modelbreach 95 762 7 https://dt.example.com/#modelbreach/95
	// ip="" hostname="ws-7"
}
