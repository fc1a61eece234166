#!/bin/bash
# tamper.sh HOZEN [SRCDIR] - forgeries that 'hozen verify' must catch.
#
# Builds a store of 12 records sealed by checkpoints of sizes 2, 7 and 12,
# then forges copies of it: every single-byte change of some record lines
# and of the latest checkpoint, removed, swapped, inserted and appended
# records, a truncated log, altered and deleted checkpoints, replaced keys.
# Each forgery must make 'hozen verify' exit 1 (never 0, never 2), and
# the JSON report must name the altered seq, or the checkpoint whose
# range holds it.
#
# Layout of the store (seq: type):
#   0 genesis  1 checkpoint (size 2)  2-5 notes  6 checkpoint (size 7)
#   7-10 notes  11 checkpoint (size 12)

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tap_setup "$1"
PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null; then
	echo "1..0 # SKIP python3 not found"
	exit 0
fi
cd "$T" || exit 2

SEG=chain/00000000000000000000.log
R=$T/results
# HOZEN_FLIP_STRIDE=N flips one byte pair in N (scripts/test.sh: 6, and
# 36 in the sanitized build, which runs the same code many times slower),
# starting at a random pair that the output names (HOZEN_FLIP_PHASE=K
# repeats a run): over many runs every pair is flipped.  Every byte by
# default.
FLIP_STRIDE=${HOZEN_FLIP_STRIDE:-1}
FLIP_PHASE=${HOZEN_FLIP_PHASE:-$((RANDOM % FLIP_STRIDE))}
echo "# byte flips: one pair in $FLIP_STRIDE from pair $FLIP_PHASE" \
	"(HOZEN_FLIP_STRIDE=$FLIP_STRIDE HOZEN_FLIP_PHASE=$FLIP_PHASE)"
mkdir "$R"
: >"$R/manifest"
ncase=0

# verdict_id ID NAME RC SPEC STORE [VERIFY OPTIONS...]: run 'hozen verify
# --json' now as case ID, judge it at the end (SPEC: see the judgement
# there).  Cases are judged in the order of their ids.
verdict_id()
{
	local id=$1 name=$2 want=$3 spec=$4 store=$5
	shift 5
	"$HOZEN" verify --json "$@" "$store" >"$R/$id.out" 2>"$R/$id.err"
	echo $? >"$R/$id.rc"
	printf '%s\t%s\t%s\t%s\n' "$id" "$want" "$spec" "$name" \
		>>"$R/manifest"
}

# verdict NAME RC SPEC STORE [VERIFY OPTIONS...]: the next case.
verdict()
{
	ncase=$((ncase + 1))
	verdict_id "$ncase" "$@"
}

# fresh NAME [STORE]: a new copy w/ of the original store (or of STORE),
# which must verify.  Its checkpoints are made writable for the forger.
fresh()
{
	rm -rf w
	cp -a "${2:-orig}" w
	chmod u+w w/checkpoints/*
	verdict "$1: the untouched copy verifies" 0 valid w
}

# resign CKPT KEY VKEY: replace the signatures of a checkpoint by one made
# with KEY (PEM) under the name and key id of VKEY, as a forger would.
resign()
{
	local ck=$1 key=$2 vkey=$3 name id sig
	name=$(cut -d+ -f1 "$vkey")
	id=$(cut -d+ -f2 "$vkey")
	sed '/^$/,$d' "$ck" >"$T/body"
	openssl pkeyutl -sign -inkey "$key" -rawin -in "$T/body" \
		-out "$T/sig" || return 1
	# shellcheck disable=SC2059 # the format is the escaped key id
	sig=$({
		printf "\\x${id:0:2}\\x${id:2:2}\\x${id:4:2}\\x${id:6:2}"
		cat "$T/sig"
	} | base64 -w0)
	{
		cat "$T/body"
		echo
		printf '\xe2\x80\x94 %s %s\n' "$name" "$sig"
	} >"$ck"
}

# flip_some STORE FILE OFF LEN MASK SPEC LABEL BASE K: XOR each byte i of
# STORE/FILE[OFF, OFF+LEN) with i % 2 == K with MASK in turn and verify,
# as case BASE+i+1; restore the file at the end.
flip_some()
{
	local store=$1 file=$2 off=$3 len=$4 mask=$5 spec=$6 label=$7
	local base=$8 k=$9 i=0 b last='' lasti='' name
	for b in $(bytes_of "$store/$file" "$off" "$len"); do
		if [ $((i % 2)) -ne "$k" ] ||
			[ $(((i / 2 + FLIP_PHASE) % FLIP_STRIDE)) -ne 0 ]; then
			i=$((i + 1))
			continue
		fi
		# Restore the byte before and flip this one.
		[ -z "$lasti" ] || put_bytes "$store/$file" $((off + lasti)) "$last"
		put_bytes "$store/$file" $((off + i)) $((b ^ mask))
		printf -v name '%s: byte %d/%d 0x%02x^0x%02x' "$label" "$i" \
			"$len" "$b" "$mask"
		verdict_id $((base + i + 1)) "$name" 1 "$spec" "$store"
		last=$b
		lasti=$i
		i=$((i + 1))
	done
	[ -z "$lasti" ] || put_bytes "$store/$file" $((off + lasti)) "$last"
}

# flip_all STORE FILE LINE MASK SPEC LABEL: XOR each byte of line LINE of
# STORE/FILE (its newline included) with MASK in turn, and verify.  Two
# copies of STORE take every other byte each, in parallel: the machine
# has two cores and verifying is most of this test's time.
flip_all()
{
	local store=$1 file=$2 line=$3 mask=$4 spec=$5 label=$6
	local off len k
	off=$(line_offset "$store/$file" "$line")
	len=$(line_length "$store/$file" "$line")
	for k in 0 1; do
		rm -rf "$store.$k"
		cp -a "$store" "$store.$k"
		flip_some "$store.$k" "$file" "$off" "$len" "$mask" "$spec" \
			"$label" "$ncase" "$k" &
	done
	wait
	ncase=$((ncase + len))
	if cmp -s "$store.0/$file" "orig/$file" &&
		cmp -s "$store.1/$file" "orig/$file"; then
		ok "$label: the file is restored after the loop"
	else
		not_ok "$label: the file is restored after the loop"
	fi
	rm -rf "$store.0" "$store.1"
}

# --------------------------------------------------------------- the store

h() { "$HOZEN" "$@" >/dev/null; }

h init orig &&
	h note orig "isolated host web-03 from the network" &&
	h note orig "日本語のメモ：ディスクイメージを取得し、ハッシュを記録した" &&
	h note orig "memory dump taken with avml" &&
	h note orig "ticket INC-4711 opened" &&
	h checkpoint orig &&
	h note orig "suspicious cron entry found in /etc/cron.d/.x" &&
	h note orig "説明: 攻撃者のSSH鍵を削除" &&
	h note orig "handed over to legal" &&
	h note orig "end of shift" &&
	h checkpoint orig
check "build a store of 12 records with 3 checkpoints" [ $? -eq 0 ]
h init other
check "build a second store" [ $? -eq 0 ]

layout=$(cd orig/checkpoints && echo *)
layout=${layout//00000000000000000/}
if [ "$(wc -l <orig/$SEG)" -eq 12 ] &&
	[ "$layout" = "002.ckpt 007.ckpt 012.ckpt" ]; then
	ok "the store has 12 records and checkpoints 2, 7, 12"
else
	not_ok "the store has 12 records and checkpoints 2, 7, 12" \
		"records: $(wc -l <orig/$SEG), checkpoints: $layout"
fi
verdict "the original store verifies" 0 valid orig
verdict "the other store verifies" 0 valid other

# -------------------------------------------------- every byte of a record

# SPEC alt:K:C: the report names seq K, or the checkpoint C whose range
# holds K (then with the first seq of that range).
fresh "flips"
flip_all w $SEG 1 1 alt:0:2 "flip genesis seq 0"
flip_all w $SEG 4 1 alt:3:7 "flip Japanese note seq 3"
flip_all w $SEG 4 32 alt:3:7 "flip Japanese note seq 3"
flip_all w $SEG 10 1 alt:9:12 "flip note seq 9"
flip_all w $SEG 12 1 alt:11:12 "flip last record seq 11"
verdict "flips: the copy verifies again afterwards" 0 valid w

# Every byte of the latest checkpoint.
n=$(wc -l <orig/checkpoints/00000000000000000012.ckpt)
for l in $(seq 1 "$n"); do
	flip_all w checkpoints/00000000000000000012.ckpt "$l" 1 ckpt:12 \
		"flip checkpoint 12 line $l"
done

# ------------------------------------------------------ records in the log

fresh "delete seq 5"
sed -i 6d w/$SEG
verdict "delete seq 5: names seq 5" 1 seq:5 w

fresh "delete genesis"
sed -i 1d w/$SEG
verdict "delete the genesis: names seq 0" 1 seq:0 w
verdict "delete the genesis: a clean one-line reason" 1 clean w

fresh "delete last"
sed -i 12d w/$SEG
verdict "delete the last record: names seq 11 and checkpoint 12" 1 \
	seq:11,ckpt:12 w

fresh "swap 4,5"
sed -i '5{h;d};6G' w/$SEG
verdict "swap seq 4 and 5: names seq 4" 1 seq:4 w

fresh "swap 10,11"
sed -i '11{h;d};12G' w/$SEG
verdict "swap seq 10 and 11: names seq 10" 1 seq:10 w

fresh "swap 0,1"
sed -i '1{h;d};2G' w/$SEG
verdict "swap seq 0 and 1: names seq 0" 1 seq:0 w

# A forged record after seq 8, with seq 9 and the right prev.
fresh "insert"
prev=$(sha_of_line w/$SEG 9)
sed -n 10p w/$SEG | sed -E "s/\"prev\":\"[0-9a-f]{64}\"/\"prev\":\"$prev\"/;
	s/\"text\":\"[^\"]*\"/\"text\":\"nothing happened here\"/" >forged
sed -i "9r forged" w/$SEG
if [ "$(sed -n 10p w/$SEG | grep -c '"seq":9,"prev":"'"$prev"'"')" = 1 ]; then
	ok "insert: the forged line has seq 9 and links to seq 8"
else
	not_ok "insert: the forged line has seq 9 and links to seq 8"
fi
verdict "insert a forged seq 9 after seq 8: names seq 9" 1 seq:9 w

# The same, and the rest of the chain renumbered and relinked: only the
# checkpoint of size 12 can tell.  relink FILE: recompute seq and prev.
relink()
{
	"$PYTHON" - "$1" <<'EOF'
import hashlib, json, sys
path = sys.argv[1]
lines = open(path, 'rb').read().split(b'\n')[:-1]
prev, out = '0' * 64, []
for i, line in enumerate(lines):
    rec = json.loads(line)
    rec['seq'], rec['prev'] = i, prev
    line = json.dumps(rec, ensure_ascii=False,
                      separators=(',', ':')).encode()
    prev = hashlib.sha256(line).hexdigest()
    out.append(line)
open(path, 'wb').write(b'\n'.join(out) + b'\n')
EOF
}
relink w/$SEG
verdict "insert a forged seq 9 and relink the rest: names checkpoint 12" \
	1 seq:7,ckpt:12 w

fresh "rewrite"
sed -i '4s/"text":"[^"]*"/"text":"nothing to see"/' w/$SEG
relink w/$SEG
verdict "rewrite seq 3 and relink the rest: names checkpoint 7" 1 \
	seq:2,ckpt:7 w

fresh "relink untouched"
relink w/$SEG
if cmp -s w/$SEG orig/$SEG; then
	ok "relink of an untouched log gives back the same bytes"
else
	not_ok "relink of an untouched log gives back the same bytes"
fi

fresh "append"
prev=$(sha_of_line w/$SEG 12)
sed -n 11p w/$SEG | sed -E "s/\"seq\":10,/\"seq\":12,/;
	s/\"prev\":\"[0-9a-f]{64}\"/\"prev\":\"$prev\"/;
	s/\"text\":\"[^\"]*\"/\"text\":\"appended later\"/" >forged
cat forged >>w/$SEG
verdict "append a linked forged seq 12: unsealed, sealed 12 of 13" 1 \
	unsealed,records:13,sealed:12 w

fresh "truncate 2"
sed -i '11,12d' w/$SEG
verdict "truncate seq 10-11 behind checkpoint 12: names seq 10, ckpt 12" \
	1 seq:10,ckpt:12 w

fresh "truncate 6"
sed -i '7,12d' w/$SEG
verdict "truncate seq 6-11 behind checkpoint 7: names seq 6, ckpt 7" 1 \
	seq:6,ckpt:7 w

fresh "torn"
truncate -s -1 w/$SEG
verdict "cut the last newline: torn, names seq 11" 1 seq:11,torn w
verdict "cut the last newline: a clean one-line reason" 1 clean w

fresh "rename segment"
mv w/$SEG w/chain/00000000000000000001.log
verdict "rename the segment to start at 1: names seq 0" 1 seq:0 w

# ------------------------------------------------------------ checkpoints

root7=$(sed -n 3p orig/checkpoints/00000000000000000007.ckpt)
fresh "root 12"
sed -i "3s|.*|$root7|" w/checkpoints/00000000000000000012.ckpt
verdict "put root 7 in checkpoint 12: names checkpoint 12" 1 \
	ckpt:12,seqnull w

fresh "root 7"
sed -i '3s|.*|AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=|' \
	w/checkpoints/00000000000000000007.ckpt
verdict "zero root in checkpoint 7: names checkpoint 7" 1 ckpt:7,seqnull w

fresh "signature"
# Change one base64 digit in the middle of the signature.
c12=w/checkpoints/00000000000000000012.ckpt
sigline=$(tail -n 1 $c12)
digit=${sigline:60:1}
if [ "$digit" = A ]; then digit=B; else digit=A; fi
head -n -1 $c12 >forged
printf '%s%s%s\n' "${sigline:0:60}" "$digit" "${sigline:61}" >>forged
mv forged $c12
if [ "$(wc -l <w/checkpoints/00000000000000000012.ckpt)" = 5 ] &&
	! cmp -s w/checkpoints/00000000000000000012.ckpt \
		orig/checkpoints/00000000000000000012.ckpt; then
	ok "signature: one digit of the signature changed"
else
	not_ok "signature: one digit of the signature changed" \
		"$(cat w/checkpoints/00000000000000000012.ckpt)"
fi
verdict "alter the signature of checkpoint 12: names checkpoint 12" 1 \
	ckpt:12,seqnull w
verdict "alter the signature of checkpoint 12: a clean one-line reason" 1 \
	'clean,reason:does not verify' w

if command -v openssl >/dev/null; then
	fresh "resign"
	resign w/checkpoints/00000000000000000012.ckpt w/keys/signing.key \
		w/keys/signing.vkey
	verdict "resign: checkpoint 12 re-signed as it was verifies" 0 valid w
	sed -i "3s|.*|$root7|" w/checkpoints/00000000000000000012.ckpt
	resign w/checkpoints/00000000000000000012.ckpt w/keys/signing.key \
		w/keys/signing.vkey
	name="checkpoint 12 with a wrong root, signed with the store's key"
	verdict "$name: names checkpoint 12" 1 seq:7,ckpt:12 w
else
	skip "resign checkpoints" "openssl not found"
fi

fresh "delete ckpt 12"
rm w/checkpoints/00000000000000000012.ckpt
verdict "delete checkpoint 12: names seq 11 and checkpoint 12" 1 \
	seq:11,ckpt:12 w

fresh "delete ckpt 7"
rm w/checkpoints/00000000000000000007.ckpt
verdict "delete checkpoint 7: names seq 6 and checkpoint 7" 1 \
	seq:6,ckpt:7 w

fresh "rollback"
rm w/checkpoints/00000000000000000012.ckpt
sed -i 12d w/$SEG
verdict "roll back to checkpoint 7: unsealed, sealed 7 of 11" 1 \
	unsealed,records:11,sealed:7 w

fresh "rename ckpt"
mv w/checkpoints/00000000000000000007.ckpt \
	w/checkpoints/00000000000000000008.ckpt
verdict "rename checkpoint 7 to 8: names checkpoint 8" 1 ckpt:8 w
verdict "rename checkpoint 7 to 8: a clean one-line reason" 1 \
	'clean,reason:signs tree size 7' w

fresh "copy ckpt"
cp w/checkpoints/00000000000000000007.ckpt \
	w/checkpoints/00000000000000000009.ckpt
verdict "checkpoint 7 copied as 9: names checkpoint 9" 1 ckpt:9 w

fresh "other ckpt"
cp other/checkpoints/00000000000000000002.ckpt \
	w/checkpoints/00000000000000000002.ckpt
verdict "checkpoint 2 of another store: names checkpoint 2" 1 ckpt:2 w

# --------------------------------------------------------------------- keys

fresh "vkey"
cp other/keys/signing.vkey w/keys/signing.vkey
verdict "another store's signing.vkey: names checkpoint 2 or seq 0" 1 \
	'ckpt:2|seq:0' w
verdict "another store's signing.vkey: the reason is about the key" 1 \
	'where:keys/signing.vkey|reason:key' w

fresh "no vkey"
rm w/keys/signing.vkey
verdict "keys/signing.vkey deleted: names keys/signing.vkey" 1 \
	where:keys/signing.vkey,seqnull w

fresh "bad vkey"
echo "not a key" >w/keys/signing.vkey
verdict "keys/signing.vkey garbled: names keys/signing.vkey" 1 \
	where:keys/signing.vkey,seqnull w

fresh "all keys"
cp other/keys/signing.key other/keys/signing.pub other/keys/signing.vkey \
	w/keys/
verdict "another store's key files, nothing re-signed: names ckpt 2 or seq 0" \
	1 'ckpt:2|seq:0' w

if command -v openssl >/dev/null; then
	for c in w/checkpoints/*.ckpt; do
		resign "$c" other/keys/signing.key other/keys/signing.vkey
	done
	verdict "another store's keys, all checkpoints re-signed: names seq 0" \
		1 'seq:0,where:chain/00000000000000000000.log:1' w
	verdict "another store's keys, re-signed: --key of the store pins it" \
		1 where:keys/signing.vkey,seqnull w --key orig/keys/signing.vkey
else
	skip "re-signed with another key" "openssl not found"
fi

fresh "--key"
verdict "--key of another store: names keys/signing.vkey" 1 \
	where:keys/signing.vkey,seqnull w --key other/keys/signing.vkey
verdict "--key of the store itself: valid" 0 valid w \
	--key orig/keys/signing.vkey

# The genesis names the key: another key there is an altered genesis (the
# checkpoints verify with keys/signing.vkey), not a replaced signing.vkey.
fresh "genesis key"
gkey=$(grep -o '"vkey":"[^"]*"' w/$SEG | head -1 | cut -d'"' -f4)
sed -i "1s|\"vkey\":\"$gkey\"|\"vkey\":\"$(cat other/keys/signing.vkey)\"|" \
	w/$SEG
verdict "another key in the genesis: names seq 0" 1 seq:0 w
verdict "another key in the genesis: not blamed on keys/signing.vkey" \
	1 'seq:0,noreason:signing.vkey was replaced' w

fresh "genesis origin"
origin=$(grep -o '"origin":"[^"]*"' w/$SEG | head -1 | cut -d'"' -f4)
sed -i "1s|\"origin\":\"$origin\"|\"origin\":\"${origin}0\"|" w/$SEG
verdict "edit the origin in the genesis: names seq 0" 1 seq:0 w

# ------------------------------------------------- what else a store holds

# A second store with a case document and a recovery copy of a torn line:
#   0 genesis  1 checkpoint  2 case (issuer.document)  3 note
#   4 checkpoint  5 recovery (of seq 5, torn and cut)  6 checkpoint
#   7 note  8 checkpoint
echo "the order of the public prosecutor, page 1" >order.txt
h init full &&
	h case full set issuer.document order.txt &&
	h note full "order received" &&
	h checkpoint full &&
	h note full "this note will be torn" &&
	truncate -s -1 full/$SEG &&
	h recover full &&
	h note full "after the recovery" &&
	h checkpoint full
check "build a store with a case document and a recovery copy" [ $? -eq 0 ]
DOC=case-documents/$(sha256sum <order.txt | cut -c1-64)
TORN=$(cd full && echo chain/torn/*.torn)
check "the store has its document and one recovery copy" \
	test -f "full/$DOC" -a -f "full/$TORN"
verdict "the store with a document and a torn copy verifies" 0 valid full

fresh "document changed" full
chmod u+w "w/$DOC"
echo "page 2" >>"w/$DOC"
verdict "a case document changed: names it" 1 "where:$DOC,seqnull" w

fresh "document removed" full
rm "w/$DOC"
verdict "a case document removed: names it" 1 "where:$DOC,seqnull" w

fresh "document planted" full
echo "a planted document" >planted
PLANTED=case-documents/$(sha256sum <planted | cut -c1-64)
cp planted "w/$PLANTED"
verdict "a document no case record names: names it" 1 \
	"where:$PLANTED,reason:references" w

fresh "document misnamed" full
cp planted w/case-documents/notes.txt
verdict "a file in case-documents/ not named by its SHA-256: names it" 1 \
	where:case-documents/notes.txt w

fresh "torn changed" full
chmod u+w "w/$TORN"
printf 'x' >>"w/$TORN"
chmod 400 "w/$TORN"
verdict "the recovery copy changed: names it and seq 5" 1 \
	"where:$TORN,seq:5" w

fresh "torn removed" full
rm "w/$TORN"
verdict "the recovery copy removed: names it and seq 5" 1 \
	"where:$TORN,seq:5" w

fresh "torn planted" full
cp "w/$TORN" w/chain/torn/00000000000000000000-00000000000000000001.torn
verdict "a file in chain/torn/ no recovery record names: names it" 1 \
	where:chain/torn/00000000000000000000-00000000000000000001.torn w

fresh "torn mode" full
chmod 0444 "w/$TORN"
verdict "the recovery copy 0444: names it" 1 "where:$TORN,reason:0400" w

fresh "signing.pub other" full
cp other/keys/signing.pub w/keys/signing.pub
verdict "keys/signing.pub of another store: names it" 1 \
	where:keys/signing.pub,seqnull w

fresh "signing.pub garbage" full
rm w/keys/signing.pub
echo "not a key" >w/keys/signing.pub
verdict "keys/signing.pub garbled: names it" 1 where:keys/signing.pub w

fresh "signing.pub removed" full
rm w/keys/signing.pub
verdict "keys/signing.pub removed: names it (exit 1, not 2)" 1 \
	where:keys/signing.pub w

fresh "every problem" full
rm "w/$DOC" "w/$TORN" w/keys/signing.pub
verdict "three problems: every one in the report" 1 \
	"problems:3,where:keys/signing.pub,finding:$DOC,finding:$TORN" w

# The chain directory: segments are named by their first seq; an empty
# segment is only the last, named for the next seq (a crash between
# starting it and appending to it); nothing else is there.
fresh "far segment"
: >w/chain/00000000000000009999.log
verdict "an empty segment under a far name: names it" 1 \
	where:chain/00000000000000009999.log w
snapshot w >before
"$HOZEN" note w "lands in the planted segment" >/dev/null 2>&1
rc=$?
snapshot w >after
check "an empty segment under a far name: note refuses" [ $rc -ne 0 ]
check "an empty segment under a far name: note writes nothing" \
	cmp -s before after

fresh "next segment"
: >w/chain/00000000000000000012.log
chmod 600 w/chain/00000000000000000012.log
verdict "an empty last segment named for the next seq verifies" 0 valid w
h note w "into the new segment" && h checkpoint w
check "a note and a checkpoint land in it" \
	[ "$(wc -l <w/chain/00000000000000000012.log)" = 2 ]
verdict "and the store verifies" 0 valid w

fresh "empty middle segment"
: >w/chain/00000000000000000012.log
: >w/chain/00000000000000000013.log
verdict "an empty segment that is not the last: names it" 1 \
	where:chain/00000000000000000012.log w

fresh "stray"
echo "notes" >w/chain/notes.txt
verdict "a file in chain/ that is not a segment: names it" 1 \
	where:chain/notes.txt,seqnull w
snapshot w >before
"$HOZEN" note w "beside a stray" >/dev/null 2>&1
rc=$?
snapshot w >after
check "a file in chain/ that is not a segment: note refuses" [ $rc -ne 0 ]
check "a file in chain/ that is not a segment: note writes nothing" \
	cmp -s before after

# Records that are JSON with the right members but not written as
# FORMAT.md section 2.2 says, resealed with the store's key (an insider)
# so that only the format tells.  reseal STORE I: relink the records
# after index I, put the new roots in every checkpoint, sign them again.
reseal()
{
	"$PYTHON" - "$1/$SEG" "$2" "$1/checkpoints" <<'PY'
import base64, hashlib, os, re, sys
seg, first, ckdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = open(seg, 'rb').read().split(b'\n')[:-1]
for i in range(first + 1, len(lines)):
    h = hashlib.sha256(lines[i - 1]).hexdigest().encode()
    lines[i] = re.sub(rb'"prev":"[0-9a-fA-F]{64}"', b'"prev":"' + h + b'"',
                      lines[i], count=1)
open(seg, 'wb').write(b'\n'.join(lines) + b'\n')
leaves = [hashlib.sha256(b'\0' + l).digest() for l in lines]
def mth(d):
    if len(d) == 1:
        return d[0]
    k = 1
    while 2 * k < len(d):
        k *= 2
    return hashlib.sha256(b'\1' + mth(d[:k]) + mth(d[k:])).digest()
for name in os.listdir(ckdir):
    path = os.path.join(ckdir, name)
    body = open(path).read().split('\n')[:3]
    body[2] = base64.b64encode(mth(leaves[:int(name[:20])])).decode()
    open(path, 'w').write('\n'.join(body) + '\n\n')
PY
	for c in "$1"/checkpoints/*.ckpt; do
		resign "$c" "$1/keys/signing.key" "$1/keys/signing.vkey" ||
			return 1
	done
}

if command -v openssl >/dev/null; then
	fresh "reseal"
	reseal w 0
	verdict "reseal: relinking and resigning an untouched store" 0 valid w

	fresh "time without nanoseconds"
	sed -i -E '4s/("time":"[0-9T:-]+)\.[0-9]{9}Z"/\1Z"/' w/$SEG
	check "time without nanoseconds: seq 3 changed" \
		grep -q '"seq":3,.*"time":"[0-9T:-]*Z"' w/$SEG
	reseal w 3
	verdict "a time without nanoseconds, resealed: names seq 3" 1 \
		seq:3,reason:nanoseconds w

	fresh "upper-case prev"
	sed -i -E '5s/"prev":"([0-9a-f]{64})"/"prev":"\U\1"/' w/$SEG
	check "upper-case prev: seq 4 changed" \
		grep -q '"seq":4,"prev":"[0-9A-F]*[A-F][0-9A-F]*"' w/$SEG
	reseal w 4
	verdict "a prev in upper-case hex, resealed: names seq 4" 1 \
		seq:4,reason:lower-case w

	fresh "member order"
	sed -i -E '6s/^\{"v":1,"seq":5,/{"seq":5,"v":1,/' w/$SEG
	reseal w 5
	verdict "common members in another order, resealed: names seq 5" 1 \
		seq:5 w

	# A second signature line by the store's key that does not verify,
	# beside the good one (FORMAT.md section 4: INVALID).
	fresh "bad second signature"
	c12=w/checkpoints/00000000000000000012.ckpt
	sigline=$(tail -n 1 $c12)
	sig=$({
		printf '%s' "${sigline##* }" | base64 -d | head -c 4
		head -c 64 /dev/zero
	} | base64 -w0)
	printf '%s %s\n' "${sigline% *}" "$sig" >>$c12
	verdict "a bad signature by the store's key beside a good one: ckpt 12" \
		1 ckpt:12,seqnull w
else
	skip "resealed records" "openssl not found"
fi

fresh "marker"
chmod u+w w/HOZEN
printf 'hozen store\nformat 1\n\n' >w/HOZEN
verdict "HOZEN changed: INVALID (exit 1), names HOZEN" 1 where:HOZEN,seqnull w
snapshot w >before
"$HOZEN" note w "into a store with a bad marker" >/dev/null 2>&1
rc=$?
snapshot w >after
check "HOZEN changed: note refuses (exit 1)" [ $rc -eq 1 ]
check "HOZEN changed: note writes nothing" cmp -s before after

# Modes: nothing in the store may be changed by another user.
fresh "mode o+w"
chmod o+w w/checkpoints/00000000000000000007.ckpt
verdict "a checkpoint writable by others: names it" 1 \
	where:checkpoints/00000000000000000007.ckpt w
fresh "mode g+w"
chmod g+w w/chain
verdict "chain/ writable by the group: names it" 1 where:chain,seqnull w
fresh "mode 755"
chmod 755 w
verdict "the store directory 0755: INVALID" 1 where:. w
fresh "mode tree"
chmod 777 w/tree
# The modes check leaves tree/ to its users; the tree check holds it to
# the mode the chain gave the mount's root.
verdict "tree/ 0777 that no record explains: INVALID, names tree/" 1 \
	where:tree/ w

# Rollback: only a checkpoint kept outside the store can tell.
fresh "rollback"
"$HOZEN" checkpoint --latest --out "$T/pin12.ckpt" w >/dev/null
check "checkpoint --latest --out writes the latest checkpoint" \
	cmp -s "$T/pin12.ckpt" w/checkpoints/00000000000000000012.ckpt
verdict "--trusted the latest checkpoint: valid" 0 valid w \
	--trusted "$T/pin12.ckpt"
rm w/checkpoints/00000000000000000012.ckpt
sed -i 8,12d w/$SEG
verdict "rolled back to checkpoint 7: valid without a pin" 0 valid w
verdict "rolled back to checkpoint 7: --trusted checkpoint 12 says so" 1 \
	'where:trusted checkpoint,reason:rolled back' w --trusted "$T/pin12.ckpt"

if command -v openssl >/dev/null; then
	fresh "rewritten"
	sed -i '10s/"text":"[^"]*"/"text":"nothing happened"/' w/$SEG
	reseal w 9
	verdict "rewritten and resealed: valid without a pin" 0 valid w
	verdict "rewritten and resealed: --trusted checkpoint 12 says so" 1 \
		'where:trusted checkpoint,reason:rolled back or rewritten' w \
		--trusted "$T/pin12.ckpt"
fi

fresh "pins"
"$HOZEN" checkpoint --latest --out "$T/other.ckpt" other >/dev/null
verdict "--trusted checkpoint of another store: INVALID" 1 \
	'where:trusted checkpoint' w --trusted "$T/other.ckpt"
h note w "after the pin" &&
	"$HOZEN" checkpoint --out "$T/pin14.ckpt" w >/dev/null
check "checkpoint --out writes the new checkpoint" \
	cmp -s "$T/pin14.ckpt" w/checkpoints/00000000000000000014.ckpt
check "checkpoint --out writes it with mode 0600" \
	[ "$(stat -c %a "$T/pin14.ckpt")" = 600 ]
verdict "a log that grew past the pin: valid" 0 valid w \
	--trusted "$T/pin12.ckpt"

# --------------------------------------------------------------- judgement

# SPEC: alternatives separated by '|', each a comma-separated list of
#   valid | unsealed | seq:K | ckpt:C | seqnull | alt:K:C | torn |
#   records:N | sealed:N | where:TEXT | reason:TEXT | noreason:TEXT |
#   clean (the reason does not repeat its location) | problems:N (the
#   number of findings, all listed) | finding:TEXT (a finding's where or
#   reason holds TEXT)
"$PYTHON" - "$R" >"$R/tap" <<'EOF'
import json, os, sys

rdir = sys.argv[1]

def judge(rep, item):
    f = rep.get('failure') or {}
    k, _, a = item.partition(':')
    if k == 'valid':
        return rep['verdict'] == 'valid'
    if k == 'unsealed':
        return rep['verdict'] == 'unsealed' and rep['failure'] is None
    if rep['verdict'] != 'invalid' and k in (
            'seq', 'ckpt', 'seqnull', 'alt', 'where', 'reason', 'noreason'):
        return False
    if k == 'seq':
        return f.get('seq') == int(a)
    if k == 'ckpt':
        return f.get('checkpoint') == int(a)
    if k == 'seqnull':
        return f.get('seq') is None
    if k == 'alt':
        seq, ck = (int(x) for x in a.split(':'))
        s = f.get('seq')
        return s == seq or (f.get('checkpoint') == ck and s is not None
                            and s <= seq)
    if k == 'torn':
        return rep['torn'] is True
    if k == 'records':
        return rep['records'] == int(a)
    if k == 'sealed':
        return rep['sealed'] == int(a)
    if k == 'where':
        return a in f.get('where', '')
    if k == 'reason':
        return a in f.get('reason', '')
    if k == 'clean':
        # One location, said once: no "where: where: ..." repetition.
        return f.get('reason', '').count(f.get('where') or '\0') <= 1
    if k == 'noreason':
        return a not in f.get('reason', '')
    if k == 'problems':
        return rep.get('problems') == int(a) == len(rep.get('findings'))
    if k == 'finding':
        return any(a in g['where'] or a in g['reason']
                   for g in rep.get('findings', []))
    raise SystemExit('unknown spec item ' + item)

entries = open(os.path.join(rdir, 'manifest'), encoding='utf-8').readlines()
for entry in sorted(entries, key=lambda e: int(e.split('\t')[0])):
    i, want, spec, name = entry.rstrip('\n').split('\t')
    base = os.path.join(rdir, i)
    rc = int(open(base + '.rc').read())
    out = open(base + '.out', 'rb').read().decode('utf-8', 'replace')
    err = open(base + '.err', 'rb').read().decode('utf-8', 'replace')
    why = None
    try:
        rep = json.loads(out)
    except ValueError:
        rep, why = None, 'no JSON report'
    if rc != int(want):
        why = 'exit %d, expected %s' % (rc, want)
    elif rep is not None and not any(
            all(judge(rep, it) for it in alt.split(','))
            for alt in spec.split('|')):
        why = 'report does not match %s' % spec
    if why is None:
        print('ok - ' + name)
        continue
    print('not ok - ' + name)
    print('#   ' + why)
    if rep is not None:
        print('#   verdict %s, failure %s' % (
            rep.get('verdict'), json.dumps(rep.get('failure'),
                                           ensure_ascii=False)))
    elif out:
        print('#   stdout: ' + out[:300].replace('\n', ' '))
    if err:
        print('#   stderr: ' + err[:300].replace('\n', ' '))
EOF
tap_import <"$R/tap"

# HOZEN_TEST_KEEP=DIR keeps every report and the manifest for a look.
if [ -n "${HOZEN_TEST_KEEP:-}" ]; then
	cp -a "$R" "$HOZEN_TEST_KEEP"
fi
tap_finish
