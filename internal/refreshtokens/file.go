/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Package refreshtokens reads and writes the refresh-token files of "kubectl wechat import"
// and "kubectl wechat export", and does the work of both against the API server. It lives
// outside the plugin so that the controllers' envtest suite can run the round trip with the
// real reconcilers and the simulator.
package refreshtokens

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode"
)

// The refresh-token file of import and export: one "appid,refresh_token" per line, as a
// Redis or database export of an SDK's store gives it. Blank lines and lines starting with
// # are skipped; a first line "appid,refresh_token" (a CSV header) is too.
//
// Errors name the line and never quote its content beyond a validated appid: a line with its
// fields swapped would otherwise print a refresh token.

const (
	// maxRefreshTokenLine bounds a line; WeChat's refresh tokens are under 100 bytes.
	maxRefreshTokenLine = 4096
	// maxRefreshTokenLines bounds a file: the errors are collected, and the work is per line.
	maxRefreshTokenLines = 100000
	// maxLineErrors is how many line errors are reported before the rest are counted.
	maxLineErrors = 20
	csvHeader     = "appid,refresh_token"
)

// AppIDPattern is the shape of every WeChat appid (as the CRDs validate it).
var AppIDPattern = regexp.MustCompile(`^wx[0-9a-f]{16}$`)

// Line is one account of a refresh-token file.
type Line struct {
	Line         int // in the file read; 0 for a line not read from a file
	AppID        string
	RefreshToken string
}

// LineErrors are the invalid lines of a refresh-token file.
type LineErrors struct {
	Lines []string // "line N: what is wrong", the first maxLineErrors
	Total int      // how many lines are invalid
}

func (e *LineErrors) add(line int, format string, a ...any) {
	e.Total++
	if len(e.Lines) < maxLineErrors {
		e.Lines = append(e.Lines, fmt.Sprintf("line %d: ", line)+fmt.Sprintf(format, a...))
	}
}

func (e *LineErrors) Error() string {
	msg := strings.Join(e.Lines, "\n")
	if more := e.Total - len(e.Lines); more > 0 {
		msg += fmt.Sprintf("\n… and %d more invalid lines", more)
	}
	return msg
}

// Parse reads a refresh-token file. It returns every account, or a
// *LineErrors naming each invalid line (or another error for an unreadable input).
func Parse(r io.Reader) ([]Line, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), maxRefreshTokenLine)
	var (
		out   []Line
		errs  LineErrors
		first = map[string]int{}
		n     int
		data  bool
	)
	for sc.Scan() {
		n++
		if n > maxRefreshTokenLines {
			return nil, fmt.Errorf("more than %d lines: split the file", maxRefreshTokenLines)
		}
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if !data && strings.EqualFold(strings.ReplaceAll(text, " ", ""), csvHeader) {
			data = true
			continue
		}
		data = true
		appID, token, ok := strings.Cut(text, ",")
		appID, token = strings.TrimSpace(appID), strings.TrimSpace(token)
		switch {
		case !ok:
			errs.add(n, "want appid,refresh_token (no comma found)")
		case !AppIDPattern.MatchString(appID):
			// Not quoted: it may be the token of a line with its fields swapped.
			errs.add(n, "the appid is not wx followed by 16 lowercase hex digits")
		case token == "":
			errs.add(n, "appid %s has an empty refresh token", appID)
		case strings.ContainsFunc(token, func(r rune) bool { return r == ',' || unicode.IsSpace(r) || !unicode.IsPrint(r) }):
			errs.add(n, "appid %s: the refresh token contains a comma, a space or a control character", appID)
		case first[appID] != 0:
			errs.add(n, "appid %s is already on line %d", appID, first[appID])
		default:
			first[appID] = n
			out = append(out, Line{Line: n, AppID: appID, RefreshToken: token})
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			errs.add(n+1, "longer than %d bytes", maxRefreshTokenLine)
			return nil, &errs
		}
		return nil, fmt.Errorf("reading the input: %w", err)
	}
	if errs.Total > 0 {
		return nil, &errs
	}
	return out, nil
}

// Format writes lines in the format Parse reads.
func Format(w io.Writer, comment string, lines []Line) error {
	bw := bufio.NewWriter(w)
	for l := range strings.SplitSeq(comment, "\n") {
		fmt.Fprintf(bw, "# %s\n", l)
	}
	for _, l := range lines {
		fmt.Fprintf(bw, "%s,%s\n", l.AppID, l.RefreshToken)
	}
	return bw.Flush()
}
