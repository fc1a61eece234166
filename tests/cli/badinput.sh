#!/bin/bash
# badinput.sh HOZEN [SRCDIR] - bad input: broken logs, wrong keys,
# unreadable stores, wrong arguments.
#
# Every case must fail with the documented exit code (1: the evidence
# fails verification, 2: the tool cannot proceed), say why in one clean
# line "hozen: ..." on stderr (naming the file, and the line of a log,
# where there is one; 'verify' reports on stdout instead), and write
# nothing: the store's files, modes and contents are compared before and
# after.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tap_setup "$1"
# The stores live in $T/w; $T holds the scratch files of the checks.
chmod 755 "$T"
mkdir "$T/w" && cd "$T/w" || exit 2

SEG=chain/00000000000000000000.log
AS=()		# the command prefix of expect_fail, e.g. setpriv ...
# Nothing may hang (a FIFO in place of a file): every hozen run here ends
# within 10 seconds or fails with the code of timeout, 124.
TO=(timeout 10)

# stderr_clean ERE: $T/err is one line "hozen: ..." matching ERE (case
# insensitive), then perhaps the hint "Try 'hozen VERB --help'.", and the
# message says nothing twice ("x: x: ...", "denied: Permission denied").
stderr_clean()
{
	local first
	first=$(head -n 1 "$T/err")
	case $first in
	"hozen: "*) ;;
	*) return 1 ;;
	esac
	[ "$(grep -cv "^Try 'hozen [a-z]* --help'\.\$" "$T/err")" -eq 1 ] ||
		return 1
	printf '%s\n' "$first" | grep -qiE -- "$1" || return 1
	! printf '%s\n' "$first" | grep -qiE '(.{6,}): \1'
}

# expect_fail NAME CODES ERE WATCH ARGS...: run hozen ARGS (prefixed by
# "${AS[@]}"); the exit code must be one of CODES ("2", "1|2"), stderr
# one clean line matching ERE, and nothing under WATCH may change.
expect_fail()
{
	local name=$1 codes=$2 ere=$3 watch=$4
	shift 4
	snapshot "$watch" >"$T/before" 2>&1
	"${AS[@]}" "${TO[@]}" "$HOZEN" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	snapshot "$watch" >"$T/after" 2>&1
	case "|$codes|" in
	*"|$rc|"*) ok "$name: exit $rc" ;;
	*) not_ok "$name: exit $codes" "hozen $* exited $rc" \
		"stderr: $(cat "$T/err")" ;;
	esac
	if stderr_clean "$ere"; then
		ok "$name: one clean 'hozen:' line matching /$ere/"
	else
		not_ok "$name: one clean 'hozen:' line matching /$ere/" \
			"stderr: $(cat "$T/err")"
	fi
	# 'log' may have shown the records before the one it stopped at.
	if [ "$1" = log ]; then
		:
	elif [ -s "$T/out" ]; then
		not_ok "$name: nothing on stdout" "stdout: $(head -c 500 "$T/out")"
	else
		ok "$name: nothing on stdout"
	fi
	if cmp -s "$T/before" "$T/after"; then
		ok "$name: nothing written"
	else
		not_ok "$name: nothing written" \
			"$(diff "$T/before" "$T/after" | head -20)"
	fi
}

# expect_invalid NAME STORE WHERE_ERE REASON_ERE [OPTIONS...]: 'hozen
# verify' exits 1 with an INVALID report whose "where:" matches WHERE_ERE
# and whose reason matches REASON_ERE, says nothing twice, and the
# store is unchanged.
expect_invalid()
{
	local name=$1 store=$2 where=$3 reason=$4 w r
	shift 4
	snapshot "$store" >"$T/before"
	"${TO[@]}" "$HOZEN" verify "$@" "$store" >"$T/out" 2>"$T/err"
	rc=$?
	snapshot "$store" >"$T/after"
	# The first problem of the report.
	w=$(sed -n 's/^  where: *//p' "$T/out" | head -n 1)
	r=$(sed -n 's/^  reason: *//p' "$T/out" | head -n 1)
	if [ $rc -eq 1 ] && grep -q '^verdict: *INVALID' "$T/out" &&
		[ ! -s "$T/err" ]; then
		ok "$name: verify exits 1, INVALID"
	else
		not_ok "$name: verify exits 1, INVALID" "exit $rc" \
			"stdout: $(cat "$T/out")" "stderr: $(cat "$T/err")"
	fi
	if printf '%s\n' "$w" | grep -qE -- "^($where)\$"; then
		ok "$name: where is $where"
	else
		not_ok "$name: where is $where" "where: $w"
	fi
	if printf '%s\n' "$r" | grep -qiE -- "$reason" &&
		! printf '%s\n' "$r" | grep -qiE '(.{6,}): \1'; then
		ok "$name: clean reason matching /$reason/"
	else
		not_ok "$name: clean reason matching /$reason/" "reason: $r"
	fi
	if cmp -s "$T/before" "$T/after"; then
		ok "$name: verify wrote nothing"
	else
		not_ok "$name: verify wrote nothing" \
			"$(diff "$T/before" "$T/after" | head -20)"
	fi
}

# every_writer NAME CODES ERE STORE: note, checkpoint, recover and prove
# must all refuse STORE the same way.
every_writer()
{
	local name=$1 codes=$2 ere=$3 store=$4
	expect_fail "$name: note" "$codes" "$ere" "$store" note "$store" x
	expect_fail "$name: checkpoint" "$codes" "$ere" "$store" \
		checkpoint "$store"
	expect_fail "$name: recover" "$codes" "$ere" "$store" recover "$store"
	expect_fail "$name: prove" "$codes" "$ere" "$store" prove "$store" \
		--seq 1
}

# broken NAME: a fresh copy "$1" of the good store.
broken()
{
	rm -rf "$1"
	cp -a good "$1"
}

# --------------------------------------------------------------- the store

h() { "$HOZEN" "$@" >/dev/null; }

h init good &&
	h note good "first responder on site" &&
	h note good "ログを保全した" &&
	h checkpoint good &&
	h note good "image of /dev/sda taken" &&
	h checkpoint good
check "build a store of 7 records" [ $? -eq 0 ]
check "the store has 7 records" [ "$(wc -l <good/$SEG)" = 7 ]
h init other
check "build a second store" [ $? -eq 0 ]
expect_rc "the store verifies" 0 verify good

# ------------------------------------------------------- broken log lines

broken notjson
sed -i '4s/.*/this is not a record/' notjson/$SEG
expect_invalid "not JSON at line 4" notjson "$SEG:4" "JSON"
expect_fail "not JSON at line 4: log" 1 "^hozen: $SEG:4: .*JSON" notjson \
	log notjson
expect_fail "not JSON at line 4: log --json" 1 "^hozen: $SEG:4: .*JSON" \
	notjson log --json notjson
every_writer "not JSON at line 4" "1|2" "^hozen: $SEG:4: " notjson

broken empty
sed -i '4s/.*//' empty/$SEG
expect_invalid "empty line 4" empty "$SEG:4" "JSON"
expect_fail "empty line 4: log" 1 "^hozen: $SEG:4: " empty log empty

broken dupkey
sed -i '4s/^{"v":1,/{"v":1,"v":1,/' dupkey/$SEG
expect_invalid "duplicate key at line 4" dupkey "$SEG:4" "duplicate"

broken notobj
sed -i '4s/.*/[1,2,3]/' notobj/$SEG
expect_invalid "an array at line 4" notobj "$SEG:4" "object"

broken huge
{
	head -n 3 good/$SEG
	printf '{"v":1,"seq":3,"text":"'
	head -c $((1100 * 1024)) /dev/zero | tr '\0' a
	printf '"}\n'
	tail -n +4 good/$SEG
} >huge/$SEG
expect_invalid "a line of 1.1 MiB at line 4" huge "$SEG:4" "longer|large"
expect_fail "a line of 1.1 MiB at line 4: log" 1 "^hozen: $SEG:4: " huge \
	log huge
every_writer "a line of 1.1 MiB at line 4" "1|2" "^hozen: $SEG:4: " huge

# Longer than the reader's window: it stops before finding the newline.
broken huger
{
	head -n 3 good/$SEG
	printf '{"v":1,"seq":3,"text":"'
	head -c $((3 * 1024 * 1024)) /dev/zero | tr '\0' a
	printf '"}\n'
	tail -n +4 good/$SEG
} >huger/$SEG
expect_invalid "a line of 3 MiB at line 4" huger "$SEG:4" "longer|large"
expect_fail "a line of 3 MiB at line 4: log" 1 "^hozen: $SEG:4: " huger \
	log huger
expect_fail "a line of 3 MiB at line 4: note" "1|2" "^hozen: $SEG:4: " \
	huger note huger x

broken utf8
sed -i '4s/"text":"/"text":"\xff\xfe /' utf8/$SEG
check "invalid UTF-8 written into line 4" grep -qa $'\xff\xfe' utf8/$SEG
expect_invalid "invalid UTF-8 in a string at line 4" utf8 "$SEG:4" "UTF-8"
expect_fail "invalid UTF-8 at line 4: log" 1 "^hozen: $SEG:4: .*UTF-8" \
	utf8 log utf8
every_writer "invalid UTF-8 at line 4" "1|2" "^hozen: $SEG:4: " utf8

broken nochain
rm nochain/$SEG
expect_invalid "empty chain directory" nochain "chain" "genesis|segment"
expect_fail "empty chain directory: log" 1 "^hozen: chain.*(genesis|segment)" \
	nochain log nochain
every_writer "empty chain directory" "1|2" "^hozen: chain" nochain

broken nogenesis
sed -i 1d nogenesis/$SEG
expect_invalid "first line removed" nogenesis "$SEG:1" "seq 0"
every_writer "first line removed" "1|2" "^hozen: .*($SEG:1|genesis)" nogenesis

broken torn
truncate -s -1 torn/$SEG
expect_invalid "torn last line" torn "$SEG:7" "torn.*recover"
expect_fail "torn last line: note" 1 "$SEG.*torn.*hozen recover" torn \
	note torn x
expect_fail "torn last line: checkpoint" 1 "$SEG.*torn.*hozen recover" \
	torn checkpoint torn

# ------------------------------------------------------------- wrong keys

printf 'garbage\0\001\002 not a key\n' >garbage.bin
echo "this is not a key" >garbage.txt
: >empty.key
if command -v openssl >/dev/null; then
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
		-out rsa.pem 2>/dev/null &&
		openssl pkey -in rsa.pem -pubout -out rsa.pub 2>/dev/null
fi
while IFS='|' read -r k ere; do
	if [ "${k#rsa}" != "$k" ] && [ ! -f "$k" ]; then
		skip "verify --key $k" "openssl not found"
		continue
	fi
	expect_fail "verify --key $k" 2 "$ere" good verify --key "$k" good
done <<'EOF'
garbage.bin|'garbage\.bin'
garbage.txt|'garbage\.txt'
empty.key|'empty\.key'
rsa.pem|'rsa\.pem'
rsa.pub|'rsa\.pub'
nonexistent.key|'nonexistent\.key'
good/keys/signing.key|'good/keys/signing\.key'.*private
/|'/'
EOF
"$HOZEN" prove good --seq 2 >proof.json
for k in garbage.txt rsa.pem nonexistent.key good/keys/signing.key; do
	[ -f "$k" ] || [ "$k" = nonexistent.key ] || continue
	kere=${k//./\\.}
	expect_fail "verify --proof --key $k" 2 "'?$kere'?" good \
		verify --proof proof.json --key "$k"
done
expect_fail "verify --proof of a missing file" 2 "missing\\.json" good \
	verify --proof missing.json --key good/keys/signing.vkey
expect_fail "verify --checkpoint of a missing file" 2 "missing\\.ckpt" good \
	verify --proof proof.json --key good/keys/signing.vkey \
	--checkpoint missing.ckpt

# ------------------------------------------------------- not a store

mkdir plain
echo hello >plain/file
for cmd in "verify" "log" "note @ x" "checkpoint" "prove @ --seq 0" \
	"recover"; do
	read -ra args <<<"$cmd"
	[ "${#args[@]}" -eq 1 ] && args+=(@)
	for target in plain plain/file nowhere; do
		a=("${args[@]/#@/$target}")
		expect_fail "${a[*]} (not a store)" 2 "'$target'" . \
			"${a[@]}"
	done
done
check "nothing created at 'nowhere'" [ ! -e nowhere ]

# ------------------------------------------ FIFOs and other odd files

# A FIFO (or a directory) in place of a file hozen opens must never make
# it hang: a file of the store under verification is a problem of the
# store (exit 1), a file the user named is an error (exit 2).
echo "the order, page 1" >order.txt
h init rich &&
	h case rich set issuer.document order.txt &&
	h note rich "a note to tear" &&
	truncate -s -1 rich/$SEG &&
	h recover rich &&
	h checkpoint rich
check "build a store with a document and a recovery copy" [ $? -eq 0 ]
# What recover sealed that no checkpoint covered: the case record (the
# note was torn), named by an adopt record after the recovery record.
"$HOZEN" log --json rich | python3 -c '
import json, sys
rs = [json.loads(l) for l in sys.stdin]
ad = [r for r in rs if r["type"] == "adopt"]
ck = max(r["seq"] for r in rs if r["type"] == "checkpoint" and
         ad and r["seq"] < ad[0]["seq"])
rec = [r for r in rs if r["type"] == "recovery"]
sys.exit(not (len(ad) == 1 and ad[0]["first"] == ck + 1 and
              rec and ad[0]["last"] == rec[0]["seq"] - 1 and
              ad[0]["seq"] == rec[0]["seq"] + 1))
'
check "recover names the records it adopted (an adopt record)" [ $? -eq 0 ]
DOC=case-documents/$(sha256sum <order.txt | cut -c1-64)
TORN=$(cd rich && echo chain/torn/*.torn)
expect_rc "that store verifies" 0 verify rich

# fifo STORE FILE: a copy of rich named STORE with a FIFO for FILE.
fifo()
{
	rm -rf "$1"
	cp -a rich "$1"
	rm -f "$1/$2"
	mkfifo "$1/$2"
}

fifo f-marker HOZEN
expect_invalid "a FIFO for HOZEN" f-marker HOZEN "FIFO"
every_writer "a FIFO for HOZEN" 1 "HOZEN.*FIFO" f-marker
expect_fail "a FIFO for HOZEN: case set" 1 "HOZEN.*FIFO" f-marker \
	case f-marker set incident.reason x
expect_fail "a FIFO for HOZEN: log" 1 "HOZEN.*FIFO" f-marker log f-marker
if [ -e /dev/fuse ]; then
	mkdir -p mnt
	expect_fail "a FIFO for HOZEN: mount" "1|2" "HOZEN.*FIFO" f-marker \
		mount f-marker mnt
else
	skip "a FIFO for HOZEN: mount" "no /dev/fuse"
fi

fifo f-case case.json
expect_invalid "a FIFO for case.json" f-case "case\\.json" "FIFO"
expect_fail "a FIFO for case.json: case show" 2 "case\\.json.*FIFO" f-case \
	case f-case
expect_fail "a FIFO for case.json: case set" 2 "case\\.json.*FIFO" f-case \
	case f-case set incident.reason x

fifo f-seg $SEG
expect_invalid "a FIFO for the segment" f-seg "chain/.*" "$SEG.*FIFO"
every_writer "a FIFO for the segment" "1|2" "$SEG.*FIFO" f-seg
expect_fail "a FIFO for the segment: log" "1|2" "$SEG.*FIFO" f-seg log f-seg

fifo f-ckpt checkpoints/00000000000000000002.ckpt
expect_invalid "a FIFO for a checkpoint" f-ckpt \
	"checkpoints/00000000000000000002\\.ckpt" "FIFO"
expect_fail "a FIFO for a checkpoint: prove" "1|2" "FIFO" f-ckpt \
	prove f-ckpt --consistency 2
fifo f-last "$(cd rich && ls checkpoints/*.ckpt | tail -n 1)"
expect_fail "a FIFO for the latest checkpoint: checkpoint --latest" "1|2" \
	"FIFO" f-last checkpoint --latest --out "$T/latest.ckpt" f-last

for k in signing.vkey signing.pub; do
	fifo "f-$k" "keys/$k"
	expect_invalid "a FIFO for keys/$k" "f-$k" "keys/$k" "FIFO"
done
fifo f-key keys/signing.key
expect_fail "a FIFO for keys/signing.key: checkpoint" 2 \
	"signing\\.key.*FIFO" f-key checkpoint f-key
expect_fail "a FIFO for keys/signing.key: recover" 2 \
	"signing\\.key.*FIFO" f-key recover f-key

fifo f-doc "$DOC"
expect_invalid "a FIFO for the case document" f-doc "$DOC" "FIFO"
fifo f-torn "$TORN"
expect_invalid "a FIFO for the recovery copy" f-torn "$TORN" "FIFO"

rm -f user.fifo
mkfifo user.fifo
"$HOZEN" prove good --seq 2 >proof.json
"$HOZEN" checkpoint --latest --out latest.ckpt good >/dev/null
while IFS='|' read -r ere cmd; do
	[ -n "$cmd" ] || continue
	read -ra args <<<"$cmd"
	expect_fail "a FIFO given: hozen $cmd" 2 "$ere" good "${args[@]}"
done <<'LIST'
user\.fifo.*FIFO|verify --key user.fifo good
user\.fifo.*FIFO|verify --trusted user.fifo good
user\.fifo.*FIFO|verify --proof user.fifo --key good/keys/signing.vkey
user\.fifo.*FIFO|verify --proof proof.json --key user.fifo
user\.fifo.*FIFO|verify --proof proof.json --key good/keys/signing.vkey --checkpoint user.fifo
user\.fifo.*FIFO|checkpoint --passphrase-file user.fifo good
user\.fifo.*FIFO|recover --passphrase-file user.fifo good
user\.fifo.*FIFO|init --passphrase-file user.fifo fifostore
user\.fifo.*FIFO|case good import user.fifo
user\.fifo.*FIFO|case good set issuer.document user.fifo
LIST
if command -v openssl >/dev/null &&
	openssl req -x509 -newkey rsa:2048 -nodes -keyout issuer.key \
		-out issuer.pem -days 30 -subj "/CN=Issuer" 2>/dev/null &&
	openssl cms -sign -in order.txt -signer issuer.pem \
		-inkey issuer.key -nodetach -outform DER -out order.p7m \
		2>/dev/null; then
	expect_fail "a FIFO given: hozen case set --trust FIFO" 2 \
		"user\\.fifo.*FIFO" good \
		case good set --trust user.fifo issuer.document order.p7m
else
	skip "a FIFO given: hozen case set --trust FIFO" "openssl not found"
fi
check "init --passphrase-file of a FIFO created nothing" [ ! -e fifostore ]
mkdir adir
expect_fail "a directory given: verify --trusted" 2 "adir.*directory" good \
	verify --trusted adir good
expect_fail "a directory given: verify --key" 2 "adir.*directory" good \
	verify --key adir good
echo "not a checkpoint" >garbage.ckpt
expect_fail "verify --trusted of a file that is no checkpoint" 2 \
	"trusted checkpoint" good verify --trusted garbage.ckpt good
expect_fail "verify --trusted of a missing file" 2 "missing\\.ckpt" good \
	verify --trusted missing.ckpt good
expect_fail "verify --trusted with --proof" 2 "--trusted" good \
	verify --proof proof.json --key good/keys/signing.vkey \
	--trusted latest.ckpt
expect_fail "checkpoint --latest without --out" 2 "--latest.*--out" good \
	checkpoint --latest good
expect_fail "checkpoint --out into a missing directory" 2 "no/such/dir" good \
	checkpoint --latest --out no/such/dir/x.ckpt good

# ------------------------------------------ what hozen log prints raw

# A process names itself (its comm) as it likes, a note holds what the
# responder typed: the table escapes control characters, --json keeps
# the exact lines.
h init esc
evil=$(printf 'x\033[2J\033]0;pwn\007')
mkdir -p "$T/bin"
cp "$HOZEN" "$T/bin/$evil"
"$T/bin/$evil" note esc "$(printf 'bell\007 del\177 csi\302\233 nl\nend')" \
	>/dev/null
check "a note by a process named with escape sequences is recorded" \
	[ $? -eq 0 ]
run log esc
check "hozen log: exit 0" [ "$rc" -eq 0 ]
if LC_ALL=C grep -q "$(printf '[\001-\010\013-\037\177]')" "$T/out" ||
	grep -q "$(printf '\302\233')" "$T/out"; then
	not_ok "hozen log: no control character in the table" \
		"$(od -c "$T/out" | head -20)"
else
	ok "hozen log: no control character in the table"
fi
check "hozen log: the comm's escape shown as \\x1b" \
	grep -qF 'x\x1b[2J\x1b]0;pwn\x07' "$T/out"
check "hozen log: DEL and C1 shown as \\x7f and \\u009b" \
	grep -qF 'del\x7f csi\u009b' "$T/out"
run log --json esc
check "hozen log --json: the exact bytes" \
	cmp -s "$T/out" esc/$SEG

# ------------------------------------------------------ unreadable stores

nobody=
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null &&
	setpriv --reuid=65534 --regid=65534 --clear-groups "$HOZEN" --version \
		>/dev/null 2>&1; then
	nobody="setpriv --reuid=65534 --regid=65534 --clear-groups"
elif [ "$(id -u)" = 0 ] && su nobody -s /bin/sh -c "'$HOZEN' --version" \
	>/dev/null 2>&1; then
	nobody=su
fi
# as_nobody: run "$@" as the user nobody.
as_nobody()
{
	if [ "$nobody" = su ]; then
		su nobody -s /bin/sh -c "$(printf '%q ' "$@")"
	else
		# shellcheck disable=SC2086 # split the command
		$nobody "$@"
	fi
}
if [ -z "$nobody" ]; then
	skip "unreadable stores" "not root, or cannot run as nobody"
else
	AS=(as_nobody)
	cp good/keys/signing.vkey trusted.vkey
	chmod 644 trusted.vkey

	# A store is 0700: nobody cannot even look into it.
	broken closed
	expect_fail "store directory 0700, as nobody" 2 \
		"'closed'.*permission denied" closed verify closed

	# The rest open a copy up as stores were before they were private
	# (directories 0755, files 0644, the private key 0600) and then
	# close one file or directory: its name is what the error gives.
	# loose STORE: those old modes.
	loose()
	{
		find "$1" -type d -exec chmod 755 {} +
		find "$1" -type f ! -name signing.key -exec chmod 644 {} +
		chmod 600 "$1/keys/signing.key"
	}

	# keys/ made 0700: nobody cannot read signing.vkey.
	broken keys
	loose keys
	chmod 0700 keys/keys
	expect_fail "keys/ 0700, as nobody: verify" 2 \
		"signing\\.vkey.*permission denied" keys verify keys
	expect_fail "keys/ 0700, as nobody: verify --key a readable vkey" 2 \
		"signing\\.vkey.*permission denied" keys \
		verify --key trusted.vkey keys

	broken chainx
	loose chainx
	chmod 700 chainx/chain
	expect_fail "chain/ 0700, as nobody: verify" 2 \
		"'?chain'?.*permission denied" chainx verify chainx
	expect_fail "chain/ 0700, as nobody: log" 2 \
		"'?chain'?.*permission denied" chainx log chainx

	broken segx
	loose segx
	chmod 600 segx/$SEG
	expect_fail "segment 0600, as nobody: verify" 2 \
		"$SEG.*permission denied" segx verify segx
	expect_fail "segment 0600, as nobody: log" 2 \
		"$SEG.*permission denied" segx log segx
	expect_fail "segment 0600, as nobody: prove" 2 \
		"$SEG.*permission denied" segx prove segx --seq 1

	broken markerx
	loose markerx
	chmod 600 markerx/HOZEN
	expect_fail "HOZEN marker 0600, as nobody: verify" 2 \
		"HOZEN.*permission denied" markerx verify markerx

	broken ckptx
	loose ckptx
	chmod 600 ckptx/checkpoints/00000000000000000007.ckpt
	expect_fail "checkpoint 0600, as nobody: verify" 2 \
		"00000000000000000007\\.ckpt.*permission denied" ckptx verify ckptx

	broken ro
	loose ro
	expect_fail "a store of root, as nobody: note" 2 \
		"$SEG.*permission denied" ro note ro x
	expect_fail "a store of root, as nobody: checkpoint" 2 \
		"signing\\.key.*permission denied" ro checkpoint ro
	expect_fail "a store of root, as nobody: recover" 2 \
		"signing\\.key.*permission denied" ro recover ro
	AS=()
fi

# ---------------------------------------------------------- wrong arguments

run
check "no arguments: exit 2" [ $rc -eq 2 ]
check "no arguments: usage on stderr" grep -q '^usage: hozen' "$T/err"
run bogus
check "unknown command: exit 2" [ $rc -eq 2 ]
check "unknown command: 'hozen: unknown command 'bogus'' first" \
	[ "$(head -n 1 "$T/err")" = "hozen: unknown command 'bogus'" ]

while IFS='|' read -r ere cmd; do
	[ -n "$cmd" ] || continue
	read -ra args <<<"$cmd"
	expect_fail "hozen $cmd" 2 "$ere" good "${args[@]}"
done <<'EOF'
expected one STORE|init
expected one STORE|init a b
--bogus|init --bogus x
missing-pass|init --passphrase-file missing-pass newstore
--name|init --name
expected STORE and TEXT|note
expected STORE and TEXT|note good
--bogus|note --bogus good x
expected one STORE|log
expected one STORE|log good good
--bogus|log --bogus good
'x'|log --from x good
'-1'|log --to -1 good
'5x'|log --from 5x good
from.*to|log --from 5 --to 2 good
--type|log good --type
expected one STORE|checkpoint
expected one STORE|checkpoint good good
--bogus|checkpoint --bogus good
missing-pass|checkpoint --passphrase-file missing-pass good
expected one STORE|verify
expected one STORE|verify good good
--bogus|verify --bogus good
--key|verify good --key
--checkpoint|verify --checkpoint x good
--key|verify --proof x
STORE|verify --proof x good
expected one STORE|prove
expected one STORE|prove good good --seq 1
--seq.*--consistency|prove good
--bogus|prove --bogus good --seq 1
'abc'|prove good --seq abc
'-1'|prove good --seq -1
'1x'|prove good --seq 1x
'18446744073709551616'|prove good --seq 18446744073709551616
seq 99|prove good --seq 99
--seq.*--consistency|prove good --seq 1 --consistency 2
'0'|prove good --consistency 0
'x'|prove good --consistency x
'2:x'|prove good --consistency 2:x
00000000000000000003\.ckpt|prove good --consistency 3
old|prove good --consistency 7:2
expected one STORE|recover
expected one STORE|recover good good
--bogus|recover --bogus good
missing-pass|recover --passphrase-file missing-pass good
EOF
check "init --passphrase-file missing-pass created nothing" [ ! -e newstore ]
expect_fail "prove -o into a missing directory" 2 "no/such/dir" good \
	prove good --seq 1 -o no/such/dir/proof.json
check "prove -o into a missing directory left no file" [ ! -e no ]

# --------------------------------------------------------------- init/note

mkdir notempty
echo "keep me" >notempty/file
expect_fail "init on a non-empty directory" 2 "'notempty'" notempty \
	init notempty
expect_fail "init on an existing store" 2 "'good'" good init good
expect_fail "init on a regular file" 2 "'notempty/file'" notempty \
	init notempty/file
expect_fail "an empty note" 2 "empty" good note good ""
expect_fail "a note of spaces" 2 "empty" good note good "  " "	"
expect_fail "a note of a newline" 2 "empty" good note good $'\n'
expect_fail "note with invalid UTF-8" 2 "UTF-8" good \
	note good $'\xff\xfe not text'
expect_fail "note with a lone continuation byte" 2 "UTF-8" good \
	note good $'caf\xa9'
big=$(head -c 131000 /dev/zero | tr '\0' x)
expect_fail "note of 1.1 MiB" 2 "limit|large" good \
	note good "$big" "$big" "$big" "$big" "$big" "$big" "$big" "$big" "$big"
expect_rc "the store still verifies after all that" 0 verify good

tap_finish
