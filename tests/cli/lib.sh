# lib.sh - what the CLI test scripts share: TAP output, running hozen,
# store snapshots, byte flipping.  Sourced, not run.
#
# A script calls tap_setup HOZEN (which sets $HOZEN and $T), and ends with
# tap_finish, which prints the plan and returns non-zero if a test failed.
# Every script works in its own directory $T, removed on exit.

# shellcheck shell=bash

tap_n=0
tap_failed=0
rc=0

# tap_setup HOZEN: check the binary, make $T and remove it on exit.
tap_setup()
{
	HOZEN=$1
	if [ -z "$HOZEN" ] || [ ! -x "$HOZEN" ]; then
		echo "Bail out! usage: $0 HOZEN [SRCDIR] (got '${HOZEN:-}')"
		exit 2
	fi
	case $HOZEN in
	/*) ;;
	*) HOZEN=$PWD/$HOZEN ;;
	esac
	T=$(mktemp -d "${TMPDIR:-/tmp}/hozen-cli.XXXXXX") || exit 2
	# shellcheck disable=SC2064 # expand $T now
	trap "chmod -R u+rwX '$T' 2>/dev/null; rm -rf '$T'" EXIT
	export LC_ALL=C.UTF-8 TZ=UTC
}

ok()
{
	tap_n=$((tap_n + 1))
	echo "ok $tap_n - $1"
}

# not_ok NAME [DIAGNOSTIC LINE...]
not_ok()
{
	local l
	tap_n=$((tap_n + 1))
	tap_failed=$((tap_failed + 1))
	echo "not ok $tap_n - $1"
	shift
	for l in "$@"; do
		printf '%s\n' "$l" | sed 's/^/#   /'
	done
}

skip()
{
	tap_n=$((tap_n + 1))
	echo "ok $tap_n - $1 # SKIP $2"
}

# check NAME COMMAND...: ok if COMMAND succeeds.
check()
{
	local name=$1
	shift
	if "$@"; then
		ok "$name"
	else
		not_ok "$name" "failed: $*"
	fi
}

# Number TAP lines "ok - NAME" / "not ok - NAME" (and pass "# ..."
# diagnostics through) read from stdin, e.g. from a python3 helper.
tap_import()
{
	local line
	while IFS= read -r line; do
		case $line in
		"ok - "*) ok "${line#ok - }" ;;
		"not ok - "*)
			tap_n=$((tap_n + 1))
			tap_failed=$((tap_failed + 1))
			echo "not ok $tap_n - ${line#not ok - }"
			;;
		*) printf '%s\n' "$line" ;;
		esac
	done
}

tap_finish()
{
	echo "1..$tap_n"
	[ "$tap_failed" -eq 0 ]
}

# run ARGS...: run hozen; stdout in $T/out, stderr in $T/err, code in $rc.
run()
{
	"$HOZEN" "$@" >"$T/out" 2>"$T/err"
	rc=$?
}

# expect_rc NAME CODE ARGS...: run hozen and check its exit code.
expect_rc()
{
	local name=$1 want=$2
	shift 2
	run "$@"
	if [ "$rc" -eq "$want" ]; then
		ok "$name"
	else
		not_ok "$name" "hozen $* exited $rc, expected $want" \
			"stdout: $(head -c 2000 "$T/out")" \
			"stderr: $(head -c 2000 "$T/err")"
	fi
}

# snapshot STORE: every path, its type and mode, and each file's SHA-256
# (one find, one sha256sum and one sort: it runs twice per check).
snapshot()
{
	find "$1" -printf '%y %m %P\n' -type f -exec sha256sum {} + |
		LC_ALL=C sort
}

# sha_of_line FILE N: SHA-256 of line N of FILE without its newline.
sha_of_line()
{
	sed -n "$2p" "$1" | tr -d '\n' | sha256sum | cut -d' ' -f1
}

# line_offset FILE N: byte offset of line N (1-based) in FILE.
line_offset()
{
	head -n "$(($2 - 1))" "$1" | wc -c
}

# line_length FILE N: length of line N including its newline.
line_length()
{
	sed -n "$2p" "$1" | wc -c
}

# put_bytes FILE OFFSET VALUE...: overwrite bytes in place.
put_bytes()
{
	local f=$1 off=$2 esc all=
	shift 2
	for v; do
		printf -v esc '\\%03o' "$v"
		all+=$esc
	done
	# One scratch file per process: callers may run in parallel.
	# shellcheck disable=SC2059 # the format is the escaped bytes
	printf "$all" >"$T/.bytes.$BASHPID"
	dd if="$T/.bytes.$BASHPID" of="$f" bs=1 seek="$off" conv=notrunc \
		status=none
}

# bytes_of FILE OFFSET LENGTH: the bytes as decimal numbers.
bytes_of()
{
	od -An -v -tu1 -j "$2" -N "$3" "$1"
}
