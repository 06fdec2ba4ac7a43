/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"context"
	"regexp"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// The 全网发布 (release) test responder. Before a third-party platform may serve every
// account, WeChat runs an automated test against its 消息与事件接收URL from its own test
// accounts, and expects:
//
//	text  TESTCOMPONENT_MSG_TYPE_TEXT → passive text reply TESTCOMPONENT_MSG_TYPE_TEXT_callback
//	any event <Event>                 → passive text reply <Event>from_callback
//	text  QUERY_AUTH_CODE:<code>      → an empty answer at once; then, with the authorizer_access_token
//	                                    api_query_auth returns for <code>, the customer-service
//	                                    text "<code>_from_api" to the sender
//
// The receiver holds no access token, so for the third case it records the code and the
// sender on the component's status.pendingTestReplies, and the manager does the rest.
// This file is the one place that knows the test accounts and the rule; docs/messages.md
// documents both.

// ReleaseTestAccount is one of WeChat's 全网发布 test accounts.
type ReleaseTestAccount struct {
	// AppID is the account's appid, the $APPID$ of the message URL; "" if not published.
	AppID string
	// UserName is the account's original id (gh_…), the messages' ToUserName.
	UserName string
	// Source says where WeChat publishes it.
	Source string
}

// ReleaseTestAccounts are the accounts WeChat's 全网发布 test sends from.
var ReleaseTestAccounts = []ReleaseTestAccount{
	{UserName: "gh_ea3c04785154", Source: "platform setup doc: must be in the 授权测试公众号列表 for 全网发布"},
	{AppID: "wx570bc396a51b8ff8", UserName: "gh_3c884a361561", Source: "全网发布 guide: official account"},
	{AppID: "wxd101a85aa106f53e", UserName: "gh_8dad206e9538", Source: "全网发布 guide: mini program"},
}

// IsReleaseTestAccount is the detection rule: a message is from the 全网发布 test when the
// appid in its URL or the original id in its ToUserName is one of ReleaseTestAccounts. Either
// suffices, since WeChat has published the pairs in several versions of its guide.
func IsReleaseTestAccount(appID, userName string) bool {
	for _, a := range ReleaseTestAccounts {
		if (a.AppID != "" && a.AppID == appID) || (a.UserName != "" && a.UserName == userName) {
			return true
		}
	}
	return false
}

// Texts of the 全网发布 test.
const (
	testText          = "TESTCOMPONENT_MSG_TYPE_TEXT"
	testTextReply     = testText + "_callback"
	testEventReply    = "from_callback"
	testQueryAuthCode = "QUERY_AUTH_CODE:"
	maxPendingReplies = 16 // matches the CRD's MaxItems on status.pendingTestReplies
	testReplyLifetime = time.Hour
)

// testAction is what the responder does with a test account's message.
type testAction int

const (
	testNone       testAction = iota // not a test case: handle it like any message
	testReply                        // answer with a passive text reply
	testRecordCode                   // answer empty, record QUERY_AUTH_CODE for the manager
)

// openIDPattern bounds what is accepted as the sender before it is stored.
var openIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// releaseTestAnswer says what the test expects for m: a passive text reply (content), a
// QUERY_AUTH_CODE to record (content is the code), or nothing the responder handles.
func releaseTestAnswer(m *message) (testAction, string) {
	switch {
	case m.MsgType == "event" && m.Event != "":
		return testReply, m.Event + testEventReply
	case m.MsgType == "text" && m.Content == testText:
		return testReply, testTextReply
	case m.MsgType == "text" && strings.HasPrefix(m.Content, testQueryAuthCode):
		return testRecordCode, strings.TrimPrefix(m.Content, testQueryAuthCode)
	}
	return testNone, ""
}

// recordTestReply adds a customer-service reply the test waits for to the component's
// status.pendingTestReplies, unless the code is already there. It reports whether it wrote.
func (s *Server) recordTestReply(ctx context.Context, key types.NamespacedName, appID, toUser, code string) (bool, error) {
	return patchStatus(ctx, s, key, newComponent, func(c *wechatv1alpha1.WeChatComponent) bool {
		pending := c.Status.PendingTestReplies
		for _, p := range pending {
			if p.Code == code {
				return false
			}
		}
		now := s.clock.Now().UTC().Truncate(time.Second)
		pending = append(pending, wechatv1alpha1.TestReply{
			AuthorizerAppID: appID, ToUser: toUser, Code: code,
			ReceivedAt: metav1.NewTime(now), ExpiresAt: metav1.NewTime(now.Add(testReplyLifetime)),
		})
		if len(pending) > maxPendingReplies {
			pending = pending[len(pending)-maxPendingReplies:]
		}
		c.Status.PendingTestReplies = pending
		return true
	})
}
