/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package v1alpha1

// This file is the operator's vocabulary, in one place: condition types and reasons, Event
// reasons, and the labels, annotations and data keys of the objects the operator reads and
// writes. The controllers, the webhook receiver, kubectl-wechat and docs/ use these names;
// a string that appears in status, an Event or on an object is defined here and nowhere else.

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types. Every condition carries observedGeneration.
const (
	// ConditionReady is True while the token Secret holds a token that has not expired.
	ConditionReady = "Ready"
	// ConditionTicketReceived (WeChatComponent) is True while a component_verify_ticket
	// younger than its 12-hour validity is known.
	ConditionTicketReceived = "TicketReceived"
	// ConditionAuthorized (WeChatAuthorizer) is True while the account's authorization is in force.
	ConditionAuthorized = "Authorized"
	// ConditionStalled (kstatus) is True while the resource cannot make progress until a human
	// fixes something its reason names (credentials, appid, whitelist, permissions); it is
	// absent otherwise. WeChat is called again only after the backoff, or at once when the
	// credentials Secret or the spec changes.
	ConditionStalled = "Stalled"
	// ConditionDiscovered (WeChatComponent, with spec.authorizers.discover) says how the
	// discovery pass over api_get_authorizer_list went: True once it completed with every
	// refresh token, False with ReasonRefreshTokensMissing or a failure reason.
	ConditionDiscovered = "Discovered"

	// ReasonDiscoveryCompleted (Discovered True): every listed account has a WeChatAuthorizer.
	ReasonDiscoveryCompleted = "DiscoveryCompleted"
	// ReasonDiscoveryInProgress (Discovered Unknown): the pass is reading the list page by page.
	ReasonDiscoveryInProgress = "DiscoveryInProgress"
	// ReasonRefreshTokensMissing (Discovered False): the pass completed, but the list gave no
	// refresh token for some accounts (the message counts them); it is not read again for them.
	ReasonRefreshTokensMissing = "RefreshTokensMissing"
	// ReasonDiscoveryCreateFailed (Discovered False): creating a page's WeChatAuthorizers or
	// state Secrets failed in Kubernetes (ResourceQuota, admission policy, RBAC); the page is
	// read again after a backoff (status.discovery.retryAt), not before.
	ReasonDiscoveryCreateFailed = "CreateFailed"
	// ReasonStateSecretsNotOurs (Discovered False): the pass completed, but for some accounts
	// a Secret named <authorizer>-state was there that the operator did not write; their
	// WeChatAuthorizers were not created (status.discovery.stateSecretConflicts counts them).
	ReasonStateSecretsNotOurs = "StateSecretsNotOurs"
	// ReasonRefreshTokenMissing (WeChatAuthorizer Ready and Authorized False): the discovery
	// pass found the account without a refresh token; import one or have the account authorize again.
	ReasonRefreshTokenMissing = "RefreshTokenMissing"
	// EventAuthorizersDiscovered (Normal, WeChatComponent): a discovery pass completed.
	EventAuthorizersDiscovered = "AuthorizersDiscovered"
	// AnnotationRefreshTokenMissing on a WeChatAuthorizer created by a discovery pass, an RFC
	// 3339 time, says the list gave no refresh token for the account: its controller then waits
	// (reason RefreshTokenMissing) instead of reading api_get_authorizer_list again. Remove it
	// to have the controller look the account up in the list once more.
	AnnotationRefreshTokenMissing = "platform.wechat-operator.dev/refresh-token-missing"

	// ConditionTicketsReady (WeChatAuthorizer, only with spec.tickets) is True while every
	// ticket spec.tickets lists is in the token Secret and not expired. Its reason on False
	// is the last failure's (QuotaExceeded, InvalidToken, ...) or WaitingForToken. It does not
	// affect Ready, which is about the access token.
	ConditionTicketsReady = "TicketsReady"
)

// Reasons and data keys of API tickets (WeChatAuthorizer spec.tickets).
const (
	// ReasonTicketsIssued (TicketsReady True): every listed ticket is valid in the token Secret.
	ReasonTicketsIssued = "TicketsIssued"
	// ReasonWaitingForToken (TicketsReady False): tickets are obtained with the account's
	// access token, and there is no valid one yet (Ready says why).
	ReasonWaitingForToken = "WaitingForToken"
	// SecretKeyTicketSuffix and SecretKeyTicketExpiresAtSuffix make the token Secret's keys of a
	// ticket type: "jsapi" is in jsapi_ticket, its expiry (RFC 3339) in jsapi_ticket_expires_at.
	SecretKeyTicketSuffix          = "_ticket"
	SecretKeyTicketExpiresAtSuffix = "_ticket_expires_at"
	// EventTicketIssued (Normal, WeChatAuthorizer): a ticket type's first ticket, or the
	// first after failed attempts, is in the token Secret. Routine refreshes record no Event;
	// a failed getticket is a RefreshFailed Warning whose message names the ticket type.
	EventTicketIssued = "TicketIssued"
)

// Condition reasons. Messages say what to do; none of them carries a token, ticket, code or key.
const (
	// ReasonTokenIssued: a fresh token is in the token Secret.
	ReasonTokenIssued = "TokenIssued"
	// ReasonTokenExpired: the last token expired and no new one could be obtained yet.
	ReasonTokenExpired = "TokenExpired"

	// ReasonCredentialsSecretNotFound: the credentials Secret does not exist.
	ReasonCredentialsSecretNotFound = "CredentialsSecretNotFound"
	// ReasonCredentialsInvalid: a key is missing from the credentials Secret or malformed.
	ReasonCredentialsInvalid = "CredentialsInvalid"
	// ReasonInvalidSpec: a spec value the schema cannot check is wrong (for example refresh.before).
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonSecretConflict: the token Secret's name is taken by a Secret the operator does not manage.
	ReasonSecretConflict = "SecretConflict"
	// ReasonSecretNotOptedIn: a Secret that spec names lacks the AnnotationUsableBy entry
	// naming this resource, so the manager does not read it.
	ReasonSecretNotOptedIn = "SecretNotOptedIn"

	// ReasonWaitingForTicket: no usable component_verify_ticket has been pushed yet.
	ReasonWaitingForTicket = "WaitingForTicket"
	// ReasonTicketValid: a component_verify_ticket younger than 12 hours is known.
	ReasonTicketValid = "TicketValid"
	// ReasonTicketExpired: the newest ticket is older than its 12-hour validity.
	ReasonTicketExpired = "TicketExpired"
	// ReasonTicketRejected: WeChat rejected the ticket (61005 expired, 61006 invalid).
	ReasonTicketRejected = "TicketRejected"

	// ReasonWeChatBusy: WeChat answered -1 (system busy).
	ReasonWeChatBusy = "WeChatBusy"
	// ReasonInvalidAppSecret: WeChat rejected the AppSecret (40125, 41004).
	ReasonInvalidAppSecret = "InvalidAppSecret"
	// ReasonInvalidAppID: WeChat rejected the appid (40013, 61011).
	ReasonInvalidAppID = "InvalidAppID"
	// ReasonCredentialsRejected: api_component_token itself answered 40001/42001/40014: that
	// call carries no access token, so the AppSecret (or appid) it sends is what WeChat rejects.
	ReasonCredentialsRejected = "CredentialsRejected"
	// ReasonInvalidToken: WeChat rejected an access token as invalid or expired (40001, 42001, 40014).
	ReasonInvalidToken = "InvalidToken"
	// ReasonQuotaExceeded: the daily call quota of an API is used up (45009).
	ReasonQuotaExceeded = "QuotaExceeded"
	// ReasonQuotaResetExhausted: a quota was used up (45009) and clear_quota answered 48006:
	// the platform's quota resets for this month are used up; the quotas reset at midnight Beijing time.
	ReasonQuotaResetExhausted = "QuotaResetExhausted"
	// ReasonIPNotWhitelisted: the manager's egress IP is not in the platform's whitelist (61004).
	ReasonIPNotWhitelisted = "IPNotWhitelisted"
	// ReasonAPIUnauthorized: the platform lacks the permission for an API (48001).
	ReasonAPIUnauthorized = "APIUnauthorized"
	// ReasonWeChatUnreachable: WeChat could not be reached or timed out.
	ReasonWeChatUnreachable = "WeChatUnreachable"
	// ReasonWeChatError: WeChat answered an error code with no more specific reason.
	ReasonWeChatError = "WeChatError"

	// ReasonComponentNotFound: the referenced WeChatComponent does not exist.
	ReasonComponentNotFound = "ComponentNotFound"
	// ReasonComponentNotReady: the referenced WeChatComponent has no valid token yet.
	ReasonComponentNotReady = "ComponentNotReady"
	// ReasonNotAuthorized: the account never authorized the component (or no refresh token can be found).
	ReasonNotAuthorized = "NotAuthorized"
	// ReasonAuthorized: the account authorized the component.
	ReasonAuthorized = "Authorized"
	// ReasonUnauthorized: the account revoked its authorization; refreshing stopped.
	ReasonUnauthorized = "Unauthorized"
	// ReasonRefreshTokenInvalid: WeChat rejected the refresh token (61023) and none could be recovered.
	ReasonRefreshTokenInvalid = "RefreshTokenInvalid"
	// ReasonAuthorizationCodeInvalid: the authorization code was expired or already used.
	ReasonAuthorizationCodeInvalid = "AuthorizationCodeInvalid"
	// ReasonRefreshTokenSecretInvalid: spec.refreshTokenSecretRef names a missing Secret or key.
	ReasonRefreshTokenSecretInvalid = "RefreshTokenSecretInvalid"

	// ReasonAuthorizePageDisabled (status.authorizeLinkRequests[].failureReason): a request of
	// the authorization start page for a component whose spec.authorizePage is not enabled;
	// no pre_auth_code was made.
	ReasonAuthorizePageDisabled = "AuthorizePageDisabled"
	// ReasonAuthorizeLinksThrottled (status.authorizeLinkRequests[].failureReason): more visits
	// of the authorization start page than the manager's budget of api_create_preauthcode
	// calls per component allows, or a recent failure of that call is backing off.
	ReasonAuthorizeLinksThrottled = "AuthorizeLinksThrottled"
)

// Event reasons. Every Event names its regarding object and carries no token, ticket, code
// or key. The action (the Event's second word) says what was being done: Refresh,
// RequestTicket, ClearQuota, ExchangeCode, AnswerTest, Import, Recover, Stop, ProjectForwardKey.
const (
	// EventTokenIssued (Normal): a first token is in the token Secret; not recorded for an
	// authorizer the operator created, whose creator reported it (a discovery pass, autoCreate,
	// kubectl wechat import). A routine refresh records no Event: status.lastRefreshTime and
	// the metrics say it.
	EventTokenIssued = "TokenIssued"
	// EventTokenRefreshed (Normal): a refresh succeeded after failed attempts.
	EventTokenRefreshed = "TokenRefreshed"
	// EventRefreshFailed (Warning): a refresh failed for a reason that may pass; the message
	// carries the condition reason's hint.
	EventRefreshFailed = "RefreshFailed"
	// EventCredentialsInvalid (Warning, WeChatComponent): a failure only a human can fix
	// (credentials, spec, whitelist, permissions).
	EventCredentialsInvalid = "CredentialsInvalid"
	// EventTicketRequested (Normal, WeChatComponent): WeChat was asked to push a
	// component_verify_ticket (api_start_push_ticket).
	EventTicketRequested = "TicketPushRequested"
	// EventQuotaReset (Normal, WeChatComponent): clear_quota reset the daily API quotas.
	EventQuotaReset = "QuotaReset"
	// EventQuotaResetFailed (Warning, WeChatComponent): a requested clear_quota failed or was refused (48006).
	EventQuotaResetFailed = "QuotaResetFailed"
	// EventCodeExchangesThrottled (Warning): more authorization codes than the component's
	// budget allows; at most one per budget window.
	EventCodeExchangesThrottled = "CodeExchangesThrottled"
	// EventTestReplySent (Normal, WeChatComponent): a 全网发布 test's customer-service reply was sent.
	EventTestReplySent = "TestReplySent"
	// EventTestReplyFailed (Warning, WeChatComponent): a 全网发布 test's reply could not be sent.
	EventTestReplyFailed = "TestReplyFailed"
	// EventAuthorizationNotRecorded (Warning, WeChatComponent): an account authorized the
	// platform but no WeChatAuthorizer references it and autoCreate is off (the controller
	// after exchanging a redirect code, or the receiver on a push).
	EventAuthorizationNotRecorded = "AuthorizationNotRecorded"
	// EventAuthorizationRevoked (Normal, WeChatComponent, the receiver): an account with no
	// WeChatAuthorizer revoked its authorization.
	EventAuthorizationRevoked = "AuthorizationRevoked"
	// EventAuthorizerCreated (Normal, WeChatComponent): autoCreate created a WeChatAuthorizer.
	EventAuthorizerCreated = "AuthorizerCreated"
	// EventAuthorized (Normal, WeChatAuthorizer): an authorization code was exchanged; the
	// refresh token is in the state Secret.
	EventAuthorized = "Authorized"
	// EventUnauthorized (Warning, WeChatAuthorizer): the account revoked its authorization; refreshing stopped.
	EventUnauthorized = "Unauthorized"
	// EventRefreshTokenImported (Normal, WeChatAuthorizer): the refresh token was read from spec.refreshTokenSecretRef.
	EventRefreshTokenImported = "RefreshTokenImported"
	// EventRefreshTokenRecovered (Normal, WeChatAuthorizer): WeChat rejected the refresh token
	// (61023) and the current one was found in api_get_authorizer_list.
	EventRefreshTokenRecovered = "RefreshTokenRecovered"
	// EventForwardKeyMissing (Warning): spec.messages.forward names a Secret key that is
	// missing, empty or shorter than 16 bytes; messages are not forwarded.
	EventForwardKeyMissing = "ForwardKeyMissing"
	// EventForwardKeyNotOptedIn (Warning): the forwarding key's Secret lacks the
	// AnnotationUsableBy entry naming the resource.
	EventForwardKeyNotOptedIn = ReasonSecretNotOptedIn
)

// Account options (spec.options) and required permissions (spec.requiredFuncInfo) of a
// WeChatAuthorizer. Their conditions say nothing about the token: Ready, Reconciling and
// Stalled (kstatus) ignore them, so a missing permission set does not mark a working
// token Secret as failed.
const (
	// ConditionOptionsApplied (WeChatAuthorizer, with spec.options) is True while WeChat's
	// values of the options spec sets are spec's, as of status.options.checkedAt; False
	// with the reason of the last check's failure (an API reason: APIUnauthorized,
	// APISetUnauthorized, WeChatBusy, InvalidToken, QuotaExceeded, OptionRejected,
	// WeChatError, ...); Unknown OptionsPending before the first check.
	ConditionOptionsApplied = "OptionsApplied"
	// ReasonOptionsInSync (OptionsApplied True): WeChat has spec's values.
	ReasonOptionsInSync = "OptionsInSync"
	// ReasonOptionsPending (OptionsApplied Unknown): not checked yet; they are once the
	// account has a token.
	ReasonOptionsPending = "OptionsPending"
	// ReasonAPISetUnauthorized: WeChat answered 61007: the account has not granted the
	// platform the permission set of this API; its administrator must authorize again,
	// granting it.
	ReasonAPISetUnauthorized = "APISetUnauthorized"
	// ReasonOptionRejected: WeChat rejected the option name or value (40097), e.g. an
	// option a mini program does not have.
	ReasonOptionRejected = "OptionRejected"

	// ConditionPermissionsGranted (WeChatAuthorizer, with spec.requiredFuncInfo) is True
	// while status.info.funcInfo has every id spec.requiredFuncInfo lists.
	ConditionPermissionsGranted = "PermissionsGranted"
	// ReasonPermissionsGranted (PermissionsGranted True): every required set is granted.
	ReasonPermissionsGranted = "AllGranted"
	// ReasonPermissionsMissing (PermissionsGranted False): the message names the missing ids.
	ReasonPermissionsMissing = "PermissionsMissing"
	// ReasonPermissionsUnknown (PermissionsGranted Unknown): api_get_authorizer_info has not
	// been read yet.
	ReasonPermissionsUnknown = "InfoNotRead"

	// EventOptionSet (Normal): an option differed from spec (first check, a spec change, or
	// a change made in WeChat) and was set.
	EventOptionSet = "OptionSet"
	// EventOptionsFailed (Warning): a check of the options failed; once per run of failures
	// with the same reason.
	EventOptionsFailed = "OptionsFailed"
	// EventPermissionsMissing (Warning): a required permission set went missing.
	EventPermissionsMissing = "PermissionsMissing"
	// EventPermissionsRestored (Normal): every required permission set is granted again.
	EventPermissionsRestored = "PermissionsRestored"
)

// AnnotationUsableBy opts a Secret in to being read by the operator for the resources it
// names. The manager reads a Secret that a spec field names (credentialsSecretRef,
// refreshTokenSecretRef, messages.forward.hmacKeySecretRef) only when that Secret, in the
// resource's own namespace, carries this annotation naming the resource:
//
//	platform.wechat-operator.dev/usable-by: WeChatComponent/demo-platform
//	platform.wechat-operator.dev/usable-by: WeChatComponent/demo-platform, WeChatAuthorizer/*
//
// The value is a comma-separated list of "<Kind>/<name>" entries; the name "*" stands for
// every resource of that kind in the namespace. Whoever may edit a WeChatComponent or a
// WeChatAuthorizer can thereby name only Secrets their owner released to it: without the
// annotation, naming a Secret (say, another team's database password) in a spec field would
// make the manager copy parts of it into the receiver keyring, or send it to WeChat.
const AnnotationUsableBy = "platform.wechat-operator.dev/usable-by"

// Kinds that AnnotationUsableBy entries name.
const (
	KindWeChatComponent  = "WeChatComponent"
	KindWeChatAuthorizer = "WeChatAuthorizer"
)

// Labels and annotations the operator reads or writes. A value under
// platform.wechat-operator.dev/ that is not listed here is not the operator's.
const (
	// LabelAuthorizer names the WeChatAuthorizer a Secret (its token or state Secret) belongs to.
	LabelAuthorizer = "platform.wechat-operator.dev/authorizer"
	// LabelShard on a WeChatAuthorizer and its two Secrets names the manager shard that serves
	// it (sharded managers only, docs/operations.md "Sharding"). The sharder sets it; a shard
	// caches only the objects that carry its own name.
	LabelShard = "platform.wechat-operator.dev/shard"
	// LabelShardDrain on a WeChatAuthorizer asks the shard in LabelShard to let it go: the
	// shard stops serving it and removes both labels, and only then does the sharder hand it
	// to its new shard, so no two shards ever refresh the same account.
	LabelShardDrain = "platform.wechat-operator.dev/shard-drain"
	// AnnotationIssuedAt on a token Secret is when the token was obtained, RFC 3339. With the
	// expiry it gives the token's lifetime, so the refresh time can be recomputed from the
	// Secret alone after a crash that lost a status write.
	AnnotationIssuedAt = "platform.wechat-operator.dev/issued-at"
	// AnnotationTemplateKeys on a token Secret lists the label and annotation keys the
	// operator set from spec.tokenSecret's template (JSON: {"labels":[…],"annotations":[…]}),
	// so that a key removed from the template is removed from the Secret, while keys others
	// set (a mirroring tool's annotation, a GitOps tracking label) are never touched.
	AnnotationTemplateKeys = "platform.wechat-operator.dev/template-keys"
	// AnnotationRefreshRequestedAt on a WeChatComponent, an RFC 3339 time, asks for a refresh
	// of the component token if the current one was issued before it. The WeChatAuthorizer
	// controller sets it when WeChat rejects the component token (40001/42001); a human can too.
	AnnotationRefreshRequestedAt = "platform.wechat-operator.dev/refresh-requested-at"
	// AnnotationQuotaResetRequestedAt on a WeChatComponent, an RFC 3339 time, asks for a reset
	// of the platform's daily API quotas with clear_quota, if spec.quota.resetOnExhausted is
	// set and no reset happened yet that Beijing day. The WeChatAuthorizer controller sets it
	// when WeChat answers 45009 to an authorizer's call; a human can too.
	AnnotationQuotaResetRequestedAt = "platform.wechat-operator.dev/quota-reset-requested-at"

	// LabelManagedBy marks every object the operator writes; the manager caches only those Secrets.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy.
	ManagedByValue = "wechat-operator"
	// ManagedByPluginValue is LabelManagedBy on the refresh-token Secrets `kubectl wechat
	// import` creates: the user's, not cached by the manager, and rewritten only by import.
	ManagedByPluginValue = "kubectl-wechat"
	// LabelComponent names the WeChatComponent an object belongs to.
	LabelComponent = "platform.wechat-operator.dev/component"
	// AnnotationExpiresAt on a token Secret is the token's expiry, RFC 3339.
	AnnotationExpiresAt = "platform.wechat-operator.dev/expires-at"
	// AnnotationTokenHash on a token Secret changes exactly when the token changes, so
	// Reloader-style tools restart consumers only on a real change.
	AnnotationTokenHash = "platform.wechat-operator.dev/token-hash"

	// SecretKeyAccessToken is the token Secret's key holding the access token.
	SecretKeyAccessToken = "access_token"
	// SecretKeyExpiresAt is the token Secret's key holding the expiry, RFC 3339.
	SecretKeyExpiresAt = "expires_at"
	// SecretKeyAppID is the token Secret's key holding the appid the token belongs to.
	SecretKeyAppID = "appid"
	// SecretKeyRefreshToken is the state Secret's key holding the authorizer_refresh_token.
	SecretKeyRefreshToken = "refresh_token"
)

// kstatus (sigs.k8s.io/cli-utils/pkg/kstatus), which Flux, Argo CD's health checks and
// kubectl-style "wait until current" tools follow, reads two conditions besides Ready:
// Reconciling True means "in progress", Stalled True means "failed"; neither means
// "current". The controllers set Ready and Stalled; SetKstatusConditions derives the rest
// from them at the one place status is written, so the three never disagree.
const (
	// ConditionReconciling (kstatus) is True while the operator is still working toward a
	// fresh token: none issued yet, waiting for a ticket or for the component, a retry after
	// a transient WeChat error, or a spec change not yet acted on. Its reason is Ready's
	// (or one of the two below). It is absent while Ready is True with TokenIssued and
	// while Stalled is True.
	ConditionReconciling = "Reconciling"

	// ReasonInitializing (Reconciling): the controller has not recorded Ready yet.
	ReasonInitializing = "Initializing"
	// ReasonGenerationNotObserved (Reconciling): the spec changed since Ready was recorded.
	ReasonGenerationNotObserved = "GenerationNotObserved"
)

// stallingReadyReasons are the reasons of a Ready=False that only a human can end. Most
// come with Stalled from the controller already (configuration failures); NotAuthorized
// (the account never authorized) and Unauthorized (it revoked) are states the controller
// waits in, and get Stalled here.
var stallingReadyReasons = map[string]bool{
	ReasonNotAuthorized:             true,
	ReasonUnauthorized:              true,
	ReasonCredentialsSecretNotFound: true,
	ReasonCredentialsInvalid:        true,
	ReasonInvalidSpec:               true,
	ReasonSecretConflict:            true,
	ReasonSecretNotOptedIn:          true,
	ReasonInvalidAppSecret:          true,
	ReasonInvalidAppID:              true,
	ReasonCredentialsRejected:       true,
	ReasonIPNotWhitelisted:          true,
	ReasonAPIUnauthorized:           true,
	ReasonRefreshTokenSecretInvalid: true,
	ReasonRefreshTokenMissing:       true,
}

// SetKstatusConditions makes Reconciling and Stalled agree with Ready, for kstatus:
//   - Stalled True (set by the controller) stays, and Reconciling goes: Failed.
//   - Ready False for a reason only a human can end (stallingReadyReasons) adds Stalled
//     with Ready's reason and message, and Reconciling goes: Failed. Its transition time
//     is Ready's, so re-deriving it gives the same condition.
//   - Ready True with TokenIssued, recorded for this generation: Reconciling goes: Current.
//   - Otherwise Reconciling is True (at most one of Reconciling and Stalled ever is):
//     Initializing without Ready, GenerationNotObserved when Ready is older than the spec,
//     else Ready's reason and message (no token yet, or a token still served while a
//     failed refresh is retried): InProgress.
//
// now is the transition time of a Reconciling that was not True before. It reports
// whether conds changed. Every condition it writes carries generation.
func SetKstatusConditions(conds *[]metav1.Condition, generation int64, now time.Time) bool {
	// Without a copy of the conditions to compare with: this runs on every reconcile, and at
	// a restart of 100,000 authorizers the copies were 2 % of what the manager allocated.
	changed := false
	ready := meta.FindStatusCondition(*conds, ConditionReady)
	stalled := meta.FindStatusCondition(*conds, ConditionStalled)
	if stalled == nil && ready != nil && ready.Status == metav1.ConditionFalse &&
		ready.ObservedGeneration == generation && stallingReadyReasons[ready.Reason] {
		changed = meta.SetStatusCondition(conds, metav1.Condition{Type: ConditionStalled, Status: metav1.ConditionTrue,
			Reason: ready.Reason, Message: ready.Message, ObservedGeneration: generation,
			LastTransitionTime: ready.LastTransitionTime})
		ready = meta.FindStatusCondition(*conds, ConditionReady)
		stalled = meta.FindStatusCondition(*conds, ConditionStalled)
	}
	reconciling := metav1.Condition{Type: ConditionReconciling, Status: metav1.ConditionTrue,
		ObservedGeneration: generation, LastTransitionTime: metav1.NewTime(now.UTC().Truncate(time.Second))}
	switch {
	case stalled != nil && stalled.Status == metav1.ConditionTrue,
		ready != nil && ready.Status == metav1.ConditionTrue && ready.Reason == ReasonTokenIssued && ready.ObservedGeneration == generation:
		// RemoveStatusCondition copies the conditions even when there is nothing to remove.
		if meta.FindStatusCondition(*conds, ConditionReconciling) != nil {
			changed = meta.RemoveStatusCondition(conds, ConditionReconciling) || changed
		}
		return changed
	case ready == nil:
		reconciling.Reason, reconciling.Message = ReasonInitializing, "the controller has not looked at this resource yet"
	case ready.ObservedGeneration != generation:
		reconciling.Reason, reconciling.Message = ReasonGenerationNotObserved, "the spec changed; the controller has not acted on it yet"
	default:
		reconciling.Reason, reconciling.Message = ready.Reason, ready.Message
	}
	return meta.SetStatusCondition(conds, reconciling) || changed
}
