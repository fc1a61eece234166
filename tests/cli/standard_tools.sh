#!/usr/bin/env bash
# standard_tools.sh HOZEN SRCDIR - verify stores with sha256sum, openssl
# and the shell alone, following docs/FORMAT.md, and check that hozen and
# the by-hand verifier agree: on the worked example of FORMAT.md §7, on a
# fresh store, and on a tampered copy (both must reject it).  TAP output.
set -uo pipefail
hozen=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=0
fails=0
ok() { # cond-status description
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		fails=$((fails + 1))
	fi
}

h() { openssl dgst -sha256 -binary; }

# mth DIR FROM TO: the Merkle tree hash of leaves FROM..TO-1 (files
# DIR/leafI), written to stdout as 32 raw bytes (RFC 9162 2.1.1).
mth() {
	local dir=$1 from=$2 to=$3 size k
	size=$((to - from))
	if [ "$size" -eq 1 ]; then
		cat "$dir/leaf$from"
		return
	fi
	k=1
	while [ $((k * 2)) -lt "$size" ]; do k=$((k * 2)); done
	mth "$dir" "$from" $((from + k)) > "$dir/l.$from.$to"
	mth "$dir" $((from + k)) "$to" > "$dir/r.$from.$to"
	(printf '\001'; cat "$dir/l.$from.$to" "$dir/r.$from.$to") | h
}

# by_hand STORE: 0 if the chain, the latest checkpoint's root and
# signature and the key id all verify by FORMAT.md; prints what failed.
by_hand() {
	local store=$1 d prev i lines ck size name sigkey
	d=$(mktemp -d "$work/hand.XXXXXX")
	cat "$store"/chain/*.log > "$d/log"
	lines=$(wc -l < "$d/log")
	prev=0000000000000000000000000000000000000000000000000000000000000000
	for ((i = 0; i < lines; i++)); do
		sed -n "$((i + 1))p" "$d/log" | head -c -1 > "$d/rec"
		grep -q "\"seq\":$i,\"prev\":\"$prev\"" "$d/rec" ||
			{ echo "# seq $i: bad seq or prev"; return 1; }
		prev=$(sha256sum < "$d/rec" | cut -c1-64)
		(printf '\000'; cat "$d/rec") | h > "$d/leaf$i"
	done
	ck=$(ls "$store"/checkpoints/*.ckpt | tail -1)
	size=$(sed -n 2p "$ck")
	[ "$size" -eq "$lines" ] || { echo "# checkpoint size $size != $lines"; return 1; }
	[ "$(mth "$d" 0 "$size" | base64)" = "$(sed -n 3p "$ck")" ] ||
		{ echo "# root mismatch"; return 1; }
	head -n 3 "$ck" > "$d/body"
	sed -n 5p "$ck" | cut -d' ' -f3 | base64 -d > "$d/sigline"
	tail -c 64 "$d/sigline" > "$d/sig"
	openssl pkeyutl -verify -pubin -inkey "$store/keys/signing.pub" \
		-rawin -in "$d/body" -sigfile "$d/sig" > /dev/null ||
		{ echo "# signature"; return 1; }
	name=$(sed -n 1p "$ck")
	sigkey=$(head -c 4 "$d/sigline" | od -An -tx1 | tr -d ' \n')
	[ "$sigkey" = "$( (printf '%s\n\001' "$name"
		openssl pkey -pubin -in "$store/keys/signing.pub" -outform DER |
			tail -c 32) | sha256sum | head -c 8)" ] ||
		{ echo "# key id"; return 1; }
	grep -q "\"vkey\":\"$(cat "$store/keys/signing.vkey")\"" \
		"$store/chain/00000000000000000000.log" ||
		{ echo "# genesis key"; return 1; }
	return 0
}

example=$src/../data/example.hozen
by_hand "$example"
ok $? "FORMAT.md worked example verifies with sha256sum and openssl"
# git keeps no modes: give the copy those of FORMAT.md section 1 (no
# access for group and others) before hozen verify, which checks them.
cp -a "$example" "$work/example.hozen"
chmod -R go-rwx "$work/example.hozen"
"$hozen" verify "$work/example.hozen" > /dev/null
ok $? "hozen verify agrees on the worked example"
chmod 755 "$work/example.hozen"
"$hozen" verify "$work/example.hozen" > /dev/null
[ $? -eq 1 ]
ok $? "hozen verify rejects the example readable by others (exit 1)"
grep -q "$(sed -n 3p "$example"/checkpoints/00000000000000000004.ckpt)" \
	"$src/../../docs/FORMAT.md"
ok $? "FORMAT.md quotes the example's root"

store=$work/fresh.hozen
"$hozen" init "$store" > /dev/null
for i in $(seq 1 9); do "$hozen" note "$store" "note $i 証拠" > /dev/null; done
"$hozen" checkpoint "$store" > /dev/null
by_hand "$store"
ok $? "a fresh store of 12 records verifies by hand"
"$hozen" verify "$store" > /dev/null
ok $? "hozen verify agrees"

cp -a "$store" "$work/bad.hozen"
sed -i '5s/note 3/note 4/' "$work"/bad.hozen/chain/*.log
by_hand "$work/bad.hozen" > /dev/null
[ $? -ne 0 ]
ok $? "the by-hand check rejects a tampered copy"
"$hozen" verify "$work/bad.hozen" > /dev/null
[ $? -eq 1 ]
ok $? "hozen verify rejects it too (exit 1)"

echo "1..$n"
[ "$fails" -eq 0 ]
