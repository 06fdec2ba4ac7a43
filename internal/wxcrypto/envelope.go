/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package wxcrypto

// Envelope is the outer XML of an encrypted push. Third-party platform events (to the
// 授权事件接收URL) carry AppId; messages and events forwarded for an authorizer carry ToUserName.
type Envelope struct {
	AppID      string // <AppId>, the component appid; empty if absent
	ToUserName string // <ToUserName>, the receiving account; empty if absent
	Encrypt    string // <Encrypt>, the base64 ciphertext; never empty
}

const (
	envEncrypt = iota
	envAppID
	envToUserName
)

var envelopeNames = [3]string{envEncrypt: "Encrypt", envAppID: "AppId", envToUserName: "ToUserName"}

// ParseEnvelope parses an inbound envelope: root <xml> with a non-empty <Encrypt> and at least
// one of <AppId> or <ToUserName>. Other child elements are ignored; duplicates of these three,
// or child elements inside them, are rejected with ErrMalformed.
func ParseEnvelope(body []byte) (Envelope, error) {
	var f [3]field
	if err := scanDoc(body, envelopeNames[:], f[:]); err != nil {
		return Envelope{}, err
	}
	enc, err := envelopeEncrypt(body, &f)
	if err != nil {
		return Envelope{}, err
	}
	env := Envelope{Encrypt: string(enc)}
	if f[envAppID].set {
		v, err := value(body, f[envAppID])
		if err != nil {
			return Envelope{}, err
		}
		env.AppID = string(v)
	}
	if f[envToUserName].set {
		v, err := value(body, f[envToUserName])
		if err != nil {
			return Envelope{}, err
		}
		env.ToUserName = string(v)
	}
	return env, nil
}

// envelopeEncrypt checks the envelope's required fields and returns the Encrypt value.
func envelopeEncrypt(body []byte, f *[3]field) ([]byte, error) {
	if !f[envAppID].set && !f[envToUserName].set {
		return nil, errorf(ErrMalformed, "envelope has neither AppId nor ToUserName")
	}
	if !f[envEncrypt].set {
		return nil, errorf(ErrMalformed, "envelope has no Encrypt")
	}
	enc, err := value(body, f[envEncrypt])
	if err != nil {
		return nil, err
	}
	if len(enc) == 0 {
		return nil, errorf(ErrMalformed, "envelope Encrypt is empty")
	}
	return enc, nil
}
