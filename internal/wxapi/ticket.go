/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxapi

import (
	"context"
	"errors"
	"net/url"
	"time"
)

// APIGetTicket is GET /cgi-bin/ticket/getticket?access_token=AUTHORIZER_ACCESS_TOKEN&type=,
// as it appears in the api metric label. It is called with an authorizer_access_token.
const APIGetTicket = "getticket"

// Ticket types of getticket.
const (
	TicketTypeJSAPI  = "jsapi"
	TicketTypeWXCard = "wx_card"
)

// Asking again is harmless (a new ticket does not invalidate the previous one), so a ticket
// is retried like any safe call.
var epGetTicket = endpoint{name: APIGetTicket, retry: retrySafe, path: "/cgi-bin/ticket/getticket", tokenParam: "access_token", get: true}

var errInvalidTicketType = errors.New(`ticket type must be "jsapi" or "wx_card"`)

// Ticket is an API ticket (jsapi_ticket or the wx_card api_ticket).
type Ticket struct {
	Ticket    string
	ExpiresIn time.Duration
}

// GetTicket obtains an API ticket of the given type ("jsapi" or "wx_card") for the account
// whose authorizer_access_token it is called with. WeChat's tickets live 7200 s on their own:
// a new access token does not invalidate one. The token and the ticket are scrubbed from
// every error.
func (c *Client) GetTicket(ctx context.Context, authorizerToken, ticketType string) (Ticket, error) {
	if ticketType != TicketTypeJSAPI && ticketType != TicketTypeWXCard {
		return Ticket{}, errInvalidTicketType
	}
	var resp struct {
		apiStatus
		Ticket    string `json:"ticket"`
		ExpiresIn int64  `json:"expires_in"`
	}
	if err := c.call(ctx, epGetTicket, authorizerToken, url.Values{"type": {ticketType}}, &resp, redactor{authorizerToken}); err != nil {
		return Ticket{}, err
	}
	if resp.Ticket == "" {
		return Ticket{}, invalid(APIGetTicket, errMissingField)
	}
	if resp.ExpiresIn <= 0 {
		return Ticket{}, invalid(APIGetTicket, errInvalidExpiresIn)
	}
	return Ticket{Ticket: resp.Ticket, ExpiresIn: seconds(resp.ExpiresIn)}, nil
}
