/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxcrypto_test

import (
	"fmt"

	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
)

// A simulator seals a ticket push the way WeChat does; the receiver opens it with one call.
func Example() {
	c, err := wxcrypto.NewCrypter("token", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx3f8d3c2f4c2e6a1b")
	if err != nil {
		panic(err)
	}
	msg := wxcrypto.TicketPush{AppID: c.AppID(), Created: 1700000000, Ticket: "ticket@@@example"}.XML()
	body, msgSignature, err := c.SealPush(msg, "1700000000", "12345")
	if err != nil {
		panic(err)
	}

	// Receiver: body is the POSTed XML; timestamp, nonce and msg_signature come from the query.
	push, err := c.OpenPush(body, "1700000000", "12345", msgSignature)
	if err != nil {
		panic(err)
	}
	switch p := push.(type) {
	case wxcrypto.TicketPush:
		fmt.Println(p.InfoType(), p.ComponentAppID(), p.CreateTime(), len(p.Ticket))
	case wxcrypto.AuthorizedPush, wxcrypto.UnauthorizedPush, wxcrypto.OtherPush:
		fmt.Println("other push:", p.InfoType())
	}
	// Output: component_verify_ticket wx3f8d3c2f4c2e6a1b 1700000000 16
}
