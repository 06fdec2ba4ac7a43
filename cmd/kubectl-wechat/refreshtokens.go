/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
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

// refreshTokenLine is one account of a refresh-token file.
type refreshTokenLine struct {
	line         int
	appID        string
	refreshToken string
}

// lineErrors are the invalid lines of a refresh-token file.
type lineErrors struct {
	errs  []string
	total int
}

func (e *lineErrors) add(line int, format string, a ...any) {
	e.total++
	if len(e.errs) < maxLineErrors {
		e.errs = append(e.errs, fmt.Sprintf("line %d: ", line)+fmt.Sprintf(format, a...))
	}
}

func (e *lineErrors) Error() string {
	msg := strings.Join(e.errs, "\n")
	if more := e.total - len(e.errs); more > 0 {
		msg += fmt.Sprintf("\n… and %d more invalid lines", more)
	}
	return msg
}

// parseRefreshTokens reads a refresh-token file. It returns every account, or a
// *lineErrors naming each invalid line (or another error for an unreadable input).
func parseRefreshTokens(r io.Reader) ([]refreshTokenLine, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), maxRefreshTokenLine)
	var (
		out   []refreshTokenLine
		errs  lineErrors
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
		case !appIDPattern.MatchString(appID):
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
			out = append(out, refreshTokenLine{line: n, appID: appID, refreshToken: token})
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			errs.add(n+1, "longer than %d bytes", maxRefreshTokenLine)
			return nil, &errs
		}
		return nil, fmt.Errorf("reading the input: %w", err)
	}
	if errs.total > 0 {
		return nil, &errs
	}
	return out, nil
}

// formatRefreshTokens writes lines in the format parseRefreshTokens reads.
func formatRefreshTokens(w io.Writer, comment string, lines []refreshTokenLine) error {
	bw := bufio.NewWriter(w)
	for l := range strings.SplitSeq(comment, "\n") {
		fmt.Fprintf(bw, "# %s\n", l)
	}
	for _, l := range lines {
		fmt.Fprintf(bw, "%s,%s\n", l.appID, l.refreshToken)
	}
	return bw.Flush()
}
