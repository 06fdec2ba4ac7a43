#!/usr/bin/env bash
# Copyright 2026 The wechat-operator Authors.
# SPDX-License-Identifier: Apache-2.0
#
# Benchmarks the receiver's per-push work (verify + decrypt + parse of a realistic
# component_verify_ticket push) with internal/wxcrypto, with github.com/silenceper/wechat/v2
# v2.1.10 and at the cost floor (SHA1 + base64 + AES-CBC, no XML), side by side in ONE
# `go test -bench` run of test/bench/sdkcompare/crypto (a package of the separate module
# test/bench/sdkcompare, which keeps silenceper out of the product's go.mod), and prints the ratios.
#
# Usage: hack/bench-crypto.sh [--check]
#   --check      exit 1 unless the targets hold: >= 4x faster than silenceper, <= 3x the floor,
#                <= 20 allocs per push.
# Environment: ROUNDS (default 5): the three run interleaved, ROUNDS times; every figure
# printed is the median over the rounds, and each ratio is the median of the per-round ratios,
# so a change in machine load during the run hits all three alike. BENCHTIME (default 1s).
set -euo pipefail

check=0
for arg in "$@"; do
	case "$arg" in
	--check) check=1 ;;
	-h | --help)
		sed -n '5,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "bench-crypto.sh: unknown argument $arg" >&2
		exit 2
		;;
	esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

(
	cd "$root/test/bench/sdkcompare/crypto"
	BENCH_ROUNDS="${ROUNDS:-5}" go test -run '^TestSameResult$' -bench '^BenchmarkTicketPush$' \
		-benchmem -count 1 -benchtime "${BENCHTIME:-1s}" .
) | tee "$out"

awk -v check="$check" '
/^BenchmarkTicketPush\// {
	name = $1; sub(/-[0-9]+$/, "", name)
	impl = name; sub(/.*impl=/, "", impl)
	round = 1; if (match(name, /round=[0-9]+/)) round = substr(name, RSTART + 6, RLENGTH - 6)
	if (round > rounds) rounds = round
	for (i = 2; i < NF; i++) {
		if ($(i + 1) == "ns/op") ns[impl, round] = $i
		if ($(i + 1) == "B/op") by[impl, round] = $i
		if ($(i + 1) == "allocs/op") al[impl, round] = $i
	}
}
function median(arr, m,    k, j, t) {
	for (k = 2; k <= m; k++) { t = arr[k]; for (j = k - 1; j >= 1 && arr[j] > t; j--) arr[j + 1] = arr[j]; arr[j + 1] = t }
	return (m % 2) ? arr[(m + 1) / 2] : (arr[m / 2] + arr[m / 2 + 1]) / 2
}
function med(tab, impl,    k, a) { for (k = 1; k <= rounds; k++) a[k] = tab[impl, k]; return median(a, rounds) }
END {
	for (k = 1; k <= rounds; k++)
		if (!ns["wxcrypto", k] || !ns["silenceper", k] || !ns["floor", k]) { print "bench-crypto.sh: missing benchmark results" > "/dev/stderr"; exit 1 }
	for (k = 1; k <= rounds; k++) { rs[k] = ns["silenceper", k] / ns["wxcrypto", k]; rf[k] = ns["wxcrypto", k] / ns["floor", k] }
	speedup = median(rs, rounds); overFloor = median(rf, rounds); allocs = med(al, "wxcrypto")
	printf "\nper push, median of %d rounds       ns/op      B/op  allocs/op\n", rounds
	printf "  wxcrypto                       %8.0f  %8d  %9d\n", med(ns, "wxcrypto"), med(by, "wxcrypto"), allocs
	printf "  silenceper/wechat v2.1.10      %8.0f  %8d  %9d\n", med(ns, "silenceper"), med(by, "silenceper"), med(al, "silenceper")
	printf "  floor (sha1 + base64 + aes)    %8.0f  %8d  %9d\n", med(ns, "floor"), med(by, "floor"), med(al, "floor")
	ok1 = speedup >= 4; ok2 = overFloor <= 3; ok3 = allocs <= 20
	printf "\nwxcrypto vs silenceper: %5.1fx faster  (target >= 4x: %s)\n", speedup, ok1 ? "met" : "MISSED"
	printf "wxcrypto vs floor:      %5.2fx          (target <= 3x: %s)\n", overFloor, ok2 ? "met" : "MISSED"
	printf "wxcrypto allocs/op:     %5d           (target <= 20: %s)\n", allocs, ok3 ? "met" : "MISSED"
	if (check && !(ok1 && ok2 && ok3)) exit 1
}
' "$out"
