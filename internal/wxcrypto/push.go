/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxcrypto

import "strconv"

// InfoType values of the pushes to the 授权事件接收URL that ParsePush types.
const (
	InfoTypeComponentVerifyTicket = "component_verify_ticket"
	InfoTypeAuthorized            = "authorized"
	InfoTypeUpdateAuthorized      = "updateauthorized"
	InfoTypeUnauthorized          = "unauthorized"
)

// Push is a decrypted push to the 授权事件接收URL. ParsePush returns one of the value types
// TicketPush, AuthorizedPush, UnauthorizedPush or OtherPush; switch on them by value:
//
//	switch p := push.(type) {
//	case wxcrypto.TicketPush: ...
//	}
type Push interface {
	// InfoType is the push's <InfoType>.
	InfoType() string
	// ComponentAppID is the push's <AppId>, the third-party platform's appid.
	ComponentAppID() string
	// CreateTime is the push's <CreateTime> in Unix seconds (0 if an OtherPush has none).
	CreateTime() int64
}

// TicketPush is a component_verify_ticket push.
type TicketPush struct {
	AppID   string // <AppId>
	Created int64  // <CreateTime>, Unix seconds
	Ticket  string // <ComponentVerifyTicket>
}

// AuthorizedPush is an authorized or updateauthorized push.
type AuthorizedPush struct {
	AppID                        string // <AppId>
	Created                      int64  // <CreateTime>, Unix seconds
	Type                         string // InfoTypeAuthorized or InfoTypeUpdateAuthorized
	AuthorizerAppID              string // <AuthorizerAppid>
	AuthorizationCode            string // <AuthorizationCode>
	AuthorizationCodeExpiredTime int64  // <AuthorizationCodeExpiredTime>, Unix seconds; 0 if absent
	PreAuthCode                  string // <PreAuthCode>; empty if absent
}

// UnauthorizedPush is an unauthorized push: the authorizer revoked the authorization.
type UnauthorizedPush struct {
	AppID           string // <AppId>
	Created         int64  // <CreateTime>, Unix seconds
	AuthorizerAppID string // <AuthorizerAppid>
}

// OtherPush is any push with another InfoType. Raw is a copy of the whole decrypted message.
type OtherPush struct {
	AppID   string // <AppId>; empty if absent
	Created int64  // <CreateTime>; 0 if absent
	Type    string // <InfoType>
	Raw     []byte
}

func (TicketPush) InfoType() string         { return InfoTypeComponentVerifyTicket }
func (p TicketPush) ComponentAppID() string { return p.AppID }
func (p TicketPush) CreateTime() int64      { return p.Created }

func (p AuthorizedPush) InfoType() string       { return p.Type }
func (p AuthorizedPush) ComponentAppID() string { return p.AppID }
func (p AuthorizedPush) CreateTime() int64      { return p.Created }

func (UnauthorizedPush) InfoType() string         { return InfoTypeUnauthorized }
func (p UnauthorizedPush) ComponentAppID() string { return p.AppID }
func (p UnauthorizedPush) CreateTime() int64      { return p.Created }

func (p OtherPush) InfoType() string       { return p.Type }
func (p OtherPush) ComponentAppID() string { return p.AppID }
func (p OtherPush) CreateTime() int64      { return p.Created }

const (
	pAppID = iota
	pCreateTime
	pInfoType
	pTicket
	pAuthorizerAppID
	pAuthorizationCode
	pAuthorizationCodeExpiredTime
	pPreAuthCode
	pCount
)

var pushNames = [pCount]string{
	pAppID:                        "AppId",
	pCreateTime:                   "CreateTime",
	pInfoType:                     "InfoType",
	pTicket:                       "ComponentVerifyTicket",
	pAuthorizerAppID:              "AuthorizerAppid",
	pAuthorizationCode:            "AuthorizationCode",
	pAuthorizationCodeExpiredTime: "AuthorizationCodeExpiredTime",
	pPreAuthCode:                  "PreAuthCode",
}

// ParsePush parses a decrypted push message. Known InfoTypes must carry their fields:
// every one needs a non-empty AppId and an integer CreateTime; a ticket push a non-empty
// ComponentVerifyTicket; authorized/updateauthorized a non-empty AuthorizerAppid and
// AuthorizationCode (AuthorizationCodeExpiredTime, if present, must be an integer);
// unauthorized a non-empty AuthorizerAppid. Any other non-empty InfoType gives an OtherPush.
// Failures wrap ErrMalformed and never quote field values.
func ParsePush(msg []byte) (Push, error) {
	var f [pCount]field
	if err := scanDoc(msg, pushNames[:], f[:]); err != nil {
		return nil, err
	}
	var v [pCount][]byte
	for k := range f {
		if !f[k].set {
			continue
		}
		b, err := value(msg, f[k])
		if err != nil {
			return nil, err
		}
		v[k] = b
	}
	infoType := v[pInfoType]
	if len(infoType) == 0 {
		return nil, errorf(ErrMalformed, "push has no InfoType")
	}
	var created int64
	if f[pCreateTime].set {
		t, ok := parseUnix(v[pCreateTime])
		if !ok {
			return nil, errorf(ErrMalformed, "push CreateTime is not an integer")
		}
		created = t
	}
	switch string(infoType) {
	case InfoTypeComponentVerifyTicket, InfoTypeAuthorized, InfoTypeUpdateAuthorized, InfoTypeUnauthorized:
		if len(v[pAppID]) == 0 {
			return nil, errorf(ErrMalformed, "push has no AppId")
		}
		if !f[pCreateTime].set {
			return nil, errorf(ErrMalformed, "push has no CreateTime")
		}
	}
	switch string(infoType) {
	case InfoTypeComponentVerifyTicket:
		if len(v[pTicket]) == 0 {
			return nil, errorf(ErrMalformed, "ticket push has no ComponentVerifyTicket")
		}
		return TicketPush{AppID: string(v[pAppID]), Created: created, Ticket: string(v[pTicket])}, nil
	case InfoTypeAuthorized, InfoTypeUpdateAuthorized:
		if len(v[pAuthorizerAppID]) == 0 || len(v[pAuthorizationCode]) == 0 {
			return nil, errorf(ErrMalformed, "authorization push lacks AuthorizerAppid or AuthorizationCode")
		}
		p := AuthorizedPush{
			AppID:             string(v[pAppID]),
			Created:           created,
			Type:              InfoTypeAuthorized,
			AuthorizerAppID:   string(v[pAuthorizerAppID]),
			AuthorizationCode: string(v[pAuthorizationCode]),
			PreAuthCode:       string(v[pPreAuthCode]),
		}
		if string(infoType) == InfoTypeUpdateAuthorized {
			p.Type = InfoTypeUpdateAuthorized
		}
		if f[pAuthorizationCodeExpiredTime].set {
			t, ok := parseUnix(v[pAuthorizationCodeExpiredTime])
			if !ok {
				return nil, errorf(ErrMalformed, "AuthorizationCodeExpiredTime is not an integer")
			}
			p.AuthorizationCodeExpiredTime = t
		}
		return p, nil
	case InfoTypeUnauthorized:
		if len(v[pAuthorizerAppID]) == 0 {
			return nil, errorf(ErrMalformed, "unauthorized push has no AuthorizerAppid")
		}
		return UnauthorizedPush{AppID: string(v[pAppID]), Created: created, AuthorizerAppID: string(v[pAuthorizerAppID])}, nil
	}
	return OtherPush{
		AppID:   string(v[pAppID]),
		Created: created,
		Type:    string(infoType),
		Raw:     append([]byte(nil), msg...),
	}, nil
}

// parseUnix parses a non-negative decimal integer of at most 18 digits, allowing surrounding
// XML whitespace.
func parseUnix(b []byte) (int64, bool) {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// XML returns the push as WeChat writes it (the plaintext the simulator encrypts). It is not
// named MarshalXML so that it does not collide with encoding/xml.Marshaler.
func (p TicketPush) XML() []byte {
	b := pushHead(make([]byte, 0, 192+len(p.AppID)+len(p.Ticket)), p.AppID, p.Created, InfoTypeComponentVerifyTicket)
	b = appendElem(b, "ComponentVerifyTicket", p.Ticket)
	return append(b, "</xml>"...)
}

// XML returns the push as WeChat writes it. Type defaults to InfoTypeAuthorized when empty;
// AuthorizationCodeExpiredTime and PreAuthCode are written only when set.
func (p AuthorizedPush) XML() []byte {
	typ := p.Type
	if typ == "" {
		typ = InfoTypeAuthorized
	}
	b := pushHead(make([]byte, 0, 320+len(p.AuthorizationCode)+len(p.PreAuthCode)), p.AppID, p.Created, typ)
	b = appendElem(b, "AuthorizerAppid", p.AuthorizerAppID)
	b = appendElem(b, "AuthorizationCode", p.AuthorizationCode)
	if p.AuthorizationCodeExpiredTime != 0 {
		b = appendIntElem(b, "AuthorizationCodeExpiredTime", p.AuthorizationCodeExpiredTime)
	}
	if p.PreAuthCode != "" {
		b = appendElem(b, "PreAuthCode", p.PreAuthCode)
	}
	return append(b, "</xml>"...)
}

// XML returns the push as WeChat writes it.
func (p UnauthorizedPush) XML() []byte {
	b := pushHead(make([]byte, 0, 192), p.AppID, p.Created, InfoTypeUnauthorized)
	b = appendElem(b, "AuthorizerAppid", p.AuthorizerAppID)
	return append(b, "</xml>"...)
}

// XML returns a copy of Raw if it is set; otherwise a push with just AppId, CreateTime and
// InfoType.
func (p OtherPush) XML() []byte {
	if len(p.Raw) > 0 {
		return append([]byte(nil), p.Raw...)
	}
	b := pushHead(make([]byte, 0, 160), p.AppID, p.Created, p.Type)
	return append(b, "</xml>"...)
}

func pushHead(b []byte, appID string, created int64, infoType string) []byte {
	b = append(b, "<xml>"...)
	b = appendElem(b, "AppId", appID)
	b = appendIntElem(b, "CreateTime", created)
	return appendElem(b, "InfoType", infoType)
}

func appendElem(b []byte, name, val string) []byte {
	b = append(b, '<')
	b = append(b, name...)
	b = append(b, '>')
	b = appendCDATA(b, val)
	b = append(b, "</"...)
	b = append(b, name...)
	return append(b, '>')
}

func appendIntElem(b []byte, name string, v int64) []byte {
	b = append(b, '<')
	b = append(b, name...)
	b = append(b, '>')
	b = strconv.AppendInt(b, v, 10)
	b = append(b, "</"...)
	b = append(b, name...)
	return append(b, '>')
}
