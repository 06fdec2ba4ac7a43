/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxapi

import (
	"context"
	"errors"
)

// APISendCustomMessage is the customer-service message endpoint
// (POST /cgi-bin/message/custom/send?access_token=AUTHORIZER_ACCESS_TOKEN), as it appears in
// the api metric label. It is called with an authorizer_access_token, not the component's.
const APISendCustomMessage = "message_custom_send"

// A customer-service message repeated after it may have reached WeChat could be delivered
// twice: retry only what never left.
var epSendCustomMessage = endpoint{
	name: APISendCustomMessage, retry: retryIfNotSent,
	path: "/cgi-bin/message/custom/send", tokenParam: "access_token",
}

var errEmptyArgument = errors.New("touser and content must not be empty")

// SendCustomText sends a customer-service text message (客服消息) to the user openid toUser
// on behalf of an authorized account, with that account's authorizer_access_token. WeChat
// accepts it only within 48 hours of the user's last message to the account. The token and
// the content are scrubbed from every error.
func (c *Client) SendCustomText(ctx context.Context, authorizerToken, toUser, content string) error {
	if toUser == "" || content == "" {
		return errEmptyArgument
	}
	type text struct {
		Content string `json:"content"`
	}
	req := struct {
		ToUser  string `json:"touser"`
		MsgType string `json:"msgtype"`
		Text    text   `json:"text"`
	}{toUser, "text", text{content}}
	var resp apiStatus
	return c.call(ctx, epSendCustomMessage, authorizerToken, req, &resp, redactor{authorizerToken, content})
}
