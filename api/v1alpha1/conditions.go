/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package v1alpha1

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
)

// Well-known label, annotation and data keys of the Secrets the operator writes.
const (
	// LabelManagedBy marks every object the operator writes; the manager caches only those Secrets.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy.
	ManagedByValue = "wechat-operator"
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
