#!/usr/bin/env bash
# The README's second command: build and run every test.  Ends with one
# plain line "N passed, N failed".
#
#   1. the normal build, -Werror: unit, CLI, crash and mount tests
#   2. an ASan+UBSan build: the same tests
#   3. the unit tests under valgrind (no leaks)
#   4. the fuzz targets (clang libFuzzer), a short run over their corpus
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

bash scripts/deps.sh || exit 2

passed=0
failed=0
count() { # testlog.json of a meson test run
	local log=$1 p f
	[ -f "$log" ] || return 0
	p=$(grep -c '"result": "OK"' "$log" || true)
	f=$(grep -c -E '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" || true)
	passed=$((passed + p))
	failed=$((failed + f))
}
setup() { # dir options...
	local dir=$1
	shift
	if [ -d "$dir" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
}

# The whole run stays under ten minutes on two cores: the randomized
# tests take fewer rounds here than by hand (each script says how to run
# it longer; tamper.sh flips one byte pair in 6 here, from a random
# one, and every one with HOZEN_FLIP_STRIDE=1), and fewer still in the
# sanitized build, which runs the same code several times slower.
echo "== build (werror) and tests"
if setup build-test -Dwerror=true && ninja -C build-test; then
	HOZEN_CRASH_ROUNDS=${HOZEN_CRASH_ROUNDS:-4} \
		HOZEN_FSX_OPS=${HOZEN_FSX_OPS:-1000} \
		HOZEN_FLIP_STRIDE=${HOZEN_FLIP_STRIDE:-6} \
		meson test -C build-test --print-errorlogs --num-processes 2
	count build-test/meson-logs/testlog.json
else
	failed=$((failed + 1))
fi

echo "== ASan+UBSan build and tests"
if setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
	-Dwerror=true && ninja -C build-asan; then
	# The sanitized daemon is slower, not different: the long
	# randomized runs (suite 'long') ran above; fewer byte flips.
	HOZEN_FLIP_STRIDE=36 \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C build-asan --print-errorlogs --num-processes 2 \
		--no-suite long
	count build-asan/meson-logs/testlog.json
else
	failed=$((failed + 1))
fi

echo "== unit tests under valgrind"
if meson test -C build-test --suite unit --setup valgrind \
	--print-errorlogs --num-processes 2; then
	:
fi
count build-test/meson-logs/testlog-valgrind.json

echo "== fuzz targets"
if CC=clang setup build-fuzz -Dfuzz=true && ninja -C build-fuzz; then
	HOZEN_FUZZ_SECONDS=${HOZEN_FUZZ_SECONDS:-6} \
		meson test -C build-fuzz --suite fuzz --print-errorlogs \
		--num-processes 2
	count build-fuzz/meson-logs/testlog.json
else
	failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
