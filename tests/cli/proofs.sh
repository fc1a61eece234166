#!/bin/bash
# proofs.sh HOZEN [SRCDIR] - inclusion and consistency proofs, and forged
# proofs that 'hozen verify --proof' must reject.
#
# A store of 13 records with checkpoints of sizes 2, 6, 10 and 13: an
# inclusion proof of every record must verify against the store's key,
# given as a signed-note verifier key and as PEM; a consistency proof
# between every two checkpoints must verify; then forged proofs (edited
# record, flipped or missing path hashes, wrong seq or size, checkpoints
# of another store or another size, another store's key, a different
# pinned checkpoint) must make it exit 1.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tap_setup "$1"
PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null; then
	echo "1..0 # SKIP python3 not found"
	exit 0
fi
cd "$T" || exit 2

CK=s/checkpoints
VKEY=s/keys/signing.vkey
PEM=s/keys/signing.pub
ckpt() { printf '%s/%020d.ckpt' "$CK" "$1"; }

# expect_verify NAME CODE ERE ARGS...: 'hozen verify ARGS' exits CODE and
# its stdout, its lines joined by spaces, matches ERE.
expect_verify()
{
	local name=$1 want=$2 ere=$3
	shift 3
	run verify "$@"
	if [ "$rc" -eq "$want" ] && tr '\n' ' ' <"$T/out" | grep -qE -- "$ere"; then
		ok "$name"
	else
		not_ok "$name" "hozen verify $* exited $rc, expected $want" \
			"stdout: $(head -c 1000 "$T/out")" \
			"stderr: $(head -c 1000 "$T/err")"
	fi
}

# --------------------------------------------------------------- the store

h() { "$HOZEN" "$@" >/dev/null; }

h init s &&
	h note s "containment started" &&
	h note s "日本語のメモ：ファイアウォールのログを取得" &&
	h note s "accounts disabled" &&
	h checkpoint s &&
	h note s "malware sample hashed" &&
	h note s "sample sent to the lab" &&
	h note s "backups verified" &&
	h checkpoint s &&
	h note s "report drafted" &&
	h note s "レポートを提出した" &&
	h checkpoint s
check "build a store of 13 records" [ $? -eq 0 ]
h init other && h note other "another case" && h checkpoint other
check "build a second store" [ $? -eq 0 ]
sizes=$(cd $CK && echo *)
check "checkpoints of sizes 2, 6, 10, 13" \
	[ "${sizes//00000000000000000/}" = "002.ckpt 006.ckpt 010.ckpt 013.ckpt" ]
OCK=other/checkpoints/00000000000000000004.ckpt
check "the other store has a checkpoint of size 4" [ -f $OCK ]

# ------------------------------------------------------------- inclusion

for seq in $(seq 0 12); do
	run prove s --seq "$seq" -o "p$seq.json"
	if [ "$rc" -eq 0 ] && [ ! -s "$T/out" ] && [ -s "p$seq.json" ]; then
		ok "prove --seq $seq -o p$seq.json"
	else
		not_ok "prove --seq $seq -o p$seq.json" "exit $rc" \
			"stderr: $(cat "$T/err")"
	fi
	expect_verify "proof of seq $seq verifies with signing.vkey" 0 \
		"record seq $seq \(.*of 13 records.*verdict: +VALID" \
		--proof "p$seq.json" --key $VKEY
	expect_verify "proof of seq $seq verifies with signing.pub (PEM)" 0 \
		"record seq $seq .*VALID" --proof "p$seq.json" --key $PEM
	expect_verify "proof of seq $seq verifies pinned to checkpoint 13" 0 \
		"VALID" --proof "p$seq.json" --key $VKEY --checkpoint "$(ckpt 13)"
done
run prove s --seq 3
check "prove --seq 3 to stdout is the same document as -o" \
	cmp -s "$T/out" p3.json
run prove s --seq 13
check "prove --seq 13 (not sealed): exit 2" [ "$rc" -eq 2 ]

# ----------------------------------------------------------- consistency

for a in 2 6 10 13; do
	for b in 2 6 10 13; do
		[ "$a" -le "$b" ] || continue
		run prove s --consistency "$a:$b" -o "c$a-$b.json"
		check "prove --consistency $a:$b" [ "$rc" -eq 0 ]
		expect_verify "consistency proof $a:$b verifies" 0 \
			"of $b records only appended to its checkpoint of $a records.*" \
			--proof "c$a-$b.json" --key $VKEY
	done
	run prove s --consistency "$a"
	check "prove --consistency $a is $a:13" cmp -s "$T/out" "c$a-13.json"
done
run prove s --consistency 13:2
check "prove --consistency 13:2 (old after new): exit 2" [ "$rc" -eq 2 ]

# The proofs stay valid when the log grows: they are checked offline.
cp -a s grown
h note grown "one more" && h checkpoint grown
expect_verify "a proof made before the log grew still verifies" 0 VALID \
	--proof p5.json --key grown/keys/signing.vkey

# --------------------------------------------------------------- forgeries

mkdir forged
"$PYTHON" - "$OCK" <<'EOF' >forged/manifest
import json, sys

other_ckpt = open(sys.argv[1], encoding='utf-8').read()
ckpt = lambda n: open('s/checkpoints/%020d.ckpt' % n, encoding='utf-8').read()
load = lambda name: json.load(open(name, encoding='utf-8'))
n = 0

def emit(doc, name, want=1, key='vkey', pin='-', raw=None):
    global n
    n += 1
    path = 'forged/%03d.json' % n
    with open(path, 'w', encoding='utf-8') as f:
        f.write(raw if raw is not None
                else json.dumps(doc, ensure_ascii=False, indent=2))
    print('\t'.join([path, str(want), key, pin, name]))

def hexflip(h, i=0):
    c = '1' if h[i] == '0' else '0'
    return h[:i] + c + h[i + 1:]

def sigflip(text):
    lines = text.split('\n')
    sig = lines[-2]
    i = len(sig) - 10
    c = 'A' if sig[i] != 'A' else 'B'
    lines[-2] = sig[:i] + c + sig[i + 1:]
    return '\n'.join(lines)

def rec_edit(doc, **kv):
    r = json.loads(doc['record'])
    r.update(kv)
    doc['record'] = json.dumps(r, ensure_ascii=False, separators=(',', ':'))

with open('forged/broken13.ckpt', 'w', encoding='utf-8') as f:
    f.write(sigflip(ckpt(13)))

p3 = load('p3.json')
emit(p3, 'untouched copy of the proof of seq 3', want=0)

d = load('p3.json'); rec_edit(d, text='nothing to see here')
emit(d, 'inclusion: record text edited')
d = load('p3.json')
d['record'] = d['record'].replace('ファイアウォール', 'ファイアウォーノ')
emit(d, 'inclusion: one character of the Japanese text changed')
d = load('p3.json'); rec_edit(d, time='2020-01-01T00:00:00.000000000Z')
emit(d, 'inclusion: record time edited')
d = load('p3.json'); d['record'] = d['record'].replace('{"v":1,', '{"v":1, ', 1)
emit(d, 'inclusion: record with a space added (same JSON, other bytes)')
d = load('p3.json'); d['record'] = d['record'][:-1]
emit(d, 'inclusion: record is not valid JSON')
d = load('p3.json'); d['seq'] = 4
emit(d, 'inclusion: wrong seq 4 in the proof')
d = load('p3.json'); d['seq'] = 4; rec_edit(d, seq=4)
emit(d, 'inclusion: seq 4 in the proof and in the record')
d = load('p3.json'); d['seq'] = 2; d['record'] = load('p2.json')['record']
emit(d, "inclusion: seq 2's record with seq 3's path")
d = load('p3.json'); d['seq'] = 13; rec_edit(d, seq=13)
emit(d, 'inclusion: seq 13, beyond the tree of 13')
d = load('p3.json'); d['seq'] = 2**62; rec_edit(d, seq=2**62)
emit(d, 'inclusion: seq 2^62')
d = load('p3.json'); d['seq'] = -1
emit(d, 'inclusion: seq -1')
d = load('p3.json'); d['tree_size'] = 12
emit(d, 'inclusion: tree_size 12 instead of 13')
d = load('p3.json'); d['tree_size'] = 10
emit(d, 'inclusion: tree_size 10 with the checkpoint of 13')
for i in range(len(p3['path'])):
    for pos in (0, 63):
        d = load('p3.json'); d['path'][i] = hexflip(d['path'][i], pos)
        emit(d, 'inclusion: path hash %d flipped at digit %d' % (i, pos))
d = load('p3.json'); d['path'][0] = d['path'][0].upper()
emit(d, 'inclusion: path hash 0 in upper case (same bytes)', want=0)
d = load('p3.json'); d['path'].pop()
emit(d, 'inclusion: last path hash removed')
d = load('p3.json'); d['path'].append(d['path'][-1])
emit(d, 'inclusion: a path hash added')
d = load('p3.json'); d['path'] = []
emit(d, 'inclusion: empty path')
d = load('p3.json'); d['path'] = d['path'] * 40
emit(d, 'inclusion: a path of 160 hashes')
d = load('p3.json'); d['path'][1] = 7
emit(d, 'inclusion: a path entry that is not a string')
d = load('p3.json'); d['path'][1] = d['path'][1][:62]
emit(d, 'inclusion: a path hash of 62 digits')
d = load('p3.json'); d['path'][0], d['path'][1] = d['path'][1], d['path'][0]
emit(d, 'inclusion: first two path hashes swapped')
d = load('p3.json'); d['path'] = load('p4.json')['path']
emit(d, "inclusion: seq 4's path for seq 3")
d = load('p3.json'); d['checkpoint'] = other_ckpt
emit(d, 'inclusion: checkpoint of another store')
d = load('p3.json'); d['checkpoint'] = other_ckpt; d['tree_size'] = 4
emit(d, "inclusion: another store's checkpoint, verified with its key",
     key='other')
d = load('p3.json'); d['checkpoint'] = ckpt(10); d['tree_size'] = 10
emit(d, 'inclusion: checkpoint 10 of the same store, path of 13')
d = load('p3.json'); d['checkpoint'] = sigflip(d['checkpoint'])
emit(d, 'inclusion: a digit of the checkpoint signature changed')
d = load('p3.json')
lines = d['checkpoint'].split('\n'); lines[2] = ckpt(10).split('\n')[2]
d['checkpoint'] = '\n'.join(lines)
emit(d, 'inclusion: root of checkpoint 10 in checkpoint 13')
d = load('p3.json')
d['checkpoint'] += other_ckpt.split('\n')[-2] + '\n'
emit(d, "inclusion: another key's signature line added (ignored)", want=0)
d = load('p3.json'); d['type'] = 'consistency'
emit(d, 'inclusion: type changed to consistency')
d = load('p3.json'); d['hozen_proof'] = 2
emit(d, 'inclusion: proof version 2')
emit(None, 'inclusion: duplicate "seq" key',
     raw=open('p3.json', encoding='utf-8').read().replace(
         '"seq": 3,', '"seq": 3, "seq": 3,', 1))
emit(None, 'inclusion: not JSON', raw='this is not a proof\n')
emit(None, 'inclusion: empty file', raw='')
emit(p3, 'inclusion: verified with the key of another store', key='other')
emit(p3, 'inclusion: verified with the PEM key of another store',
     key='otherpem')
emit(p3, 'inclusion: pinned to its own checkpoint 13', want=0, pin='13')
emit(p3, 'inclusion: pinned to checkpoint 10', pin='10')
emit(p3, "inclusion: pinned to another store's checkpoint", pin='other')
emit(p3, 'inclusion: pinned to checkpoint 13 with a broken signature',
     pin='13broken')

c = load('c2-13.json')
emit(c, 'untouched copy of the consistency proof 2:13', want=0)
for i in range(len(c['path'])):
    d = load('c2-13.json'); d['path'][i] = hexflip(d['path'][i], 5)
    emit(d, 'consistency: path hash %d flipped' % i)
d = load('c2-13.json'); d['path'].pop()
emit(d, 'consistency: last path hash removed')
d = load('c2-13.json'); d['path'].append(d['path'][0])
emit(d, 'consistency: a path hash added')
d = load('c2-13.json'); d['path'] = []
emit(d, 'consistency: empty path')
d = load('c2-13.json')
d['old_checkpoint'], d['checkpoint'] = d['checkpoint'], d['old_checkpoint']
emit(d, 'consistency: old and new checkpoints swapped')
d = load('c2-13.json'); d['old_checkpoint'] = ckpt(6)
emit(d, 'consistency: old checkpoint 6 with the path from 2')
d = load('c2-13.json'); d['checkpoint'] = ckpt(10)
emit(d, 'consistency: new checkpoint 10 with the path to 13')
d = load('c2-13.json'); d['old_checkpoint'] = other_ckpt
emit(d, 'consistency: old checkpoint of another store')
d = load('c2-13.json'); d['old_checkpoint'] = sigflip(d['old_checkpoint'])
emit(d, 'consistency: a digit of the old signature changed')
d = load('c2-13.json'); d['type'] = 'inclusion'
emit(d, 'consistency: type changed to inclusion')
emit(c, 'consistency: verified with the key of another store', key='other')
emit(c, 'consistency: pinned to checkpoint 13', want=0, pin='13')
emit(c, 'consistency: pinned to the old checkpoint 2', pin='2')
d = load('c13-13.json'); d['path'] = [load('c10-13.json')['path'][0]]
emit(d, 'consistency 13:13 with a path hash (must be empty)')
d = load('c10-13.json'); d['old_checkpoint'] = ckpt(6)
emit(d, 'consistency: old checkpoint 6 with the path from 10')
EOF
check "forge the proofs" [ -s forged/manifest ]

while IFS=$'\t' read -r file want key pin name; do
	case $key in
	vkey) k=$VKEY ;;
	other) k=other/keys/signing.vkey ;;
	otherpem) k=other/keys/signing.pub ;;
	esac
	pinargs=()
	case $pin in
	-) ;;
	other) pinargs=(--checkpoint "$OCK") ;;
	13broken) pinargs=(--checkpoint forged/broken13.ckpt) ;;
	*) pinargs=(--checkpoint "$(ckpt "$pin")") ;;
	esac
	if [ "$want" = 0 ]; then
		ere="verdict: +VALID"
	else
		ere="verdict: +INVALID"
	fi
	expect_verify "$name: exit $want" "$want" "$ere" --proof "$file" \
		--key "$k" "${pinargs[@]}"
done <forged/manifest

tap_finish
