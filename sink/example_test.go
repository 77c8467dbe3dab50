package sink_test

import (
	"context"
	"fmt"

	"github.com/dtforward/dtforward/sink"
)

// The zero-config sink prints bare lines to stdout; a network sink is configured the same
// way with Transport "udp", "tcp" or "tls" and an Address, and connects on its first Send.
func ExampleNew() {
	s, err := sink.New(sink.Config{Transport: "stdout"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	err = s.Send(context.Background(), []sink.Message{
		{Severity: 7, Kind: "modelbreach", Line: []byte("CEF:0|Darktrace|DCIP|6.2|1|Model|7|externalId=1")},
		{Severity: 2, Kind: "antigena", Line: []byte("CEF:0|Darktrace|DCIP|6.2|antigena:block|Block|2|externalId=2")},
	})
	fmt.Println("err:", err)

	_, err = sink.New(sink.Config{Transport: "syslog"})
	fmt.Println(err)
	// Output:
	// CEF:0|Darktrace|DCIP|6.2|1|Model|7|externalId=1
	// CEF:0|Darktrace|DCIP|6.2|antigena:block|Block|2|externalId=2
	// err: <nil>
	// sink: transport: "syslog" is not one of udp, tcp, tls, relp, stdout, file
}
