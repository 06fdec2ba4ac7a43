#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a while each (default 30s): the parsers of
# untrusted input. New crashers are written to testdata/fuzz/ by go test; commit them as seeds.
# Usage: hack/fuzz.sh [DURATION]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
duration="${1:-30s}"
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
		echo "==> $pkg $target ($duration)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$duration" "$pkg"
	done
done
