#!/bin/bash
# golden.sh HOZEN [SRCDIR] - hozen's output compared with golden files.
#
# The help of every command, and what a short session prints: init, note,
# checkpoint, log (table and JSON), verify (valid, unsealed, invalid; text
# and JSON), prove and verify --proof.  What changes from run to run
# (times, pids, uids, hashes, ids, keys, base64) is replaced by
# placeholders first, see norm below (also inside the JSON-escaped record
# of a proof).  The golden files are in
# SRCDIR/golden/ (default: golden/ beside this script).
#
# To regenerate them after a deliberate change of the output, run
#   HOZEN_UPDATE_GOLDEN=1 tests/cli/golden.sh build/tools/hozen
# and review the diff before committing it.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tap_setup "$1"
SRCDIR=${2:-$(dirname "$0")}
case $SRCDIR in
/*) ;;
*) SRCDIR=$PWD/$SRCDIR ;;
esac
GOLDEN=$SRCDIR/golden
cd "$T" || exit 2

# Replace what differs between runs by placeholders.
norm()
{
	sed -E \
		-e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{9}Z/<TIME>/g' \
		-e 's/0{64}/<ZERO-HASH>/g' \
		-e 's/[0-9a-f]{64}/<HASH>/g' \
		-e 's/[0-9a-f]{32}/<ID>/g' \
		-e 's|\+[0-9a-f]{8}\+[A-Za-z0-9+/]{43}[A-Za-z0-9+/=]|+<KEYID>+<KEY>|g' \
		-e 's|[A-Za-z0-9+/]{91}[A-Za-z0-9+/=]|<SIGNATURE>|g' \
		-e 's|[A-Za-z0-9+/]{43}=|<ROOT>|g' \
		-e 's/(\\?")(uid|gid|pid)(\\?"):[0-9]+/\1\2\3:<\2>/g' \
		-e 's/(\\?")exe(\\?"):(\\?")[^"\\]*(\\?")/\1exe\2:\3<exe>\4/g' \
		-e 's/uid=[0-9]+ pid=[0-9]+ ([^ ]+) +/uid=<uid> pid=<pid> \1 /' \
		-e 's/hozen [0-9]+\.[0-9]+\.[0-9]+/hozen <VERSION>/g'
}

# golden NAME: compare $T/actual with golden/NAME (or write it).
golden()
{
	if [ -n "${HOZEN_UPDATE_GOLDEN:-}" ]; then
		mkdir -p "$GOLDEN"
		cp "$T/actual" "$GOLDEN/$1"
		ok "$1: written"
	elif [ ! -f "$GOLDEN/$1" ]; then
		not_ok "$1: matches the golden file" "no $GOLDEN/$1"
	elif diff -u "$GOLDEN/$1" "$T/actual" >"$T/diff"; then
		ok "$1: matches the golden file"
	else
		not_ok "$1: matches the golden file" "$(head -n 60 "$T/diff")"
	fi
}

# capture NAME CODE ARGS...: run hozen, check its exit code and an empty
# stderr, compare its normalized stdout with golden/NAME.
capture()
{
	local name=$1 want=$2
	shift 2
	run "$@"
	if [ "$rc" -eq "$want" ] && [ ! -s "$T/err" ]; then
		ok "$name: hozen $* exits $want, nothing on stderr"
	else
		not_ok "$name: hozen $* exits $want, nothing on stderr" \
			"exit $rc" "stderr: $(cat "$T/err")"
	fi
	norm <"$T/out" >"$T/actual"
	golden "$name"
}

# ------------------------------------------------------------------- help

capture help.txt 0 --help
for alias in -h help; do
	run $alias
	check "hozen $alias is hozen --help" cmp -s "$T/out" "$GOLDEN/help.txt"
done
for verb in init note log checkpoint verify prove recover; do
	capture "help-$verb.txt" 0 "$verb" --help
	run "$verb" -h
	check "hozen $verb -h is hozen $verb --help" \
		cmp -s "$T/out" "$GOLDEN/help-$verb.txt"
done
capture version.txt 0 --version

# ---------------------------------------------------------------- session

{
	"$HOZEN" init store
	"$HOZEN" note store "isolated web-03 from the network"
	"$HOZEN" note store "日本語: ディスクを保全した"
	"$HOZEN" note store 'quotes "x", backslash \ and	tab'
	"$HOZEN" checkpoint store
	"$HOZEN" note store "image of /dev/sda hashed"
	"$HOZEN" checkpoint store
} >"$T/out" 2>"$T/err"
check "session: every command succeeds" [ $? -eq 0 ]
check "session: nothing on stderr" [ ! -s "$T/err" ]
norm <"$T/out" >"$T/actual"
golden session.txt

capture log.jsonl 0 log --json store
run log --json store
check "log --json prints the exact bytes of the log" \
	cmp -s "$T/out" store/chain/00000000000000000000.log
capture log.txt 0 log store
capture log-notes.txt 0 log --type note --from 3 --to 5 store
capture log-types.txt 0 log --type genesis,checkpoint store

capture verify-valid.txt 0 verify store
capture verify-valid.json 0 verify --json store

capture prove-inclusion.json 0 prove store --seq 3
"$HOZEN" prove store --seq 3 -o proof.json
capture verify-proof-inclusion.txt 0 verify --proof proof.json \
	--key store/keys/signing.vkey
capture prove-consistency.json 0 prove store --consistency 2:6
"$HOZEN" prove store --consistency 2 -o proof.json
capture verify-proof-consistency.txt 0 verify --proof proof.json \
	--key store/keys/signing.vkey

"$HOZEN" note store "late entry" >/dev/null
capture verify-unsealed.txt 1 verify store
capture verify-unsealed.json 1 verify --json store
capture verify-allow-unsealed.txt 0 verify --allow-unsealed store

sed -i 4d store/chain/00000000000000000000.log
capture verify-invalid.txt 1 verify store
capture verify-invalid.json 1 verify --json store

tap_finish
