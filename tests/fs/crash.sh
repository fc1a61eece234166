#!/bin/bash
# crash.sh HOZEN [ROUNDS] - kill -9 the daemon in the middle of a
# write-heavy workload, again and again.  Writers create files (some over
# the LFS threshold), overwrite one file over and over, fsync with
# os.fsync or dd conv=fsync, and log to a side file outside the mount the
# path and SHA-256 of each file once its fsync has returned.  After each
# kill: detach the dead mount, mount again (recovery), unmount; 'hozen
# verify' must pass, and every fsync-acknowledged content must have a
# version record with its SHA-256 whose blob (or LFS object) git holds.
# The recovery figures of each mount record are shown as diagnostics.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
fs_setup "$1"
ROUNDS=${2:-${HOZEN_CRASH_ROUNDS:-12}}
cd "$T" || exit 2
S=$T/store
M=$T/mnt
ACK=$T/acked
: >"$ACK"
head -c 1048576 /dev/urandom >"$T/rand"

cat >"$T/writer.py" <<'EOF'
# writer.py MNT DIR K ACKLOG [same]: write files until a write fails.
import hashlib, os, random, sys
mnt, d, k, ack = sys.argv[1:5]
same = len(sys.argv) > 5
rnd = random.Random()
i = 0
while not os.path.exists(os.path.join(os.path.dirname(ack), 'stop')):
    rel = '%s/%s%s' % (d, 'same' if same else 'p', k if same else
                       '%s-%d' % (k, i))
    n = rnd.choice([100, 4000, 70000, 300000] + ([1200000] if not same
                                                else []))
    data = os.urandom(n)
    try:
        fd = os.open(os.path.join(mnt, rel),
                     os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for off in range(0, n, 65536):
            os.write(fd, data[off:off + 65536])
        os.fsync(fd)
    except OSError:
        sys.exit(0)
    # Acknowledged: the fsync returned.
    with open(ack, 'a') as log:
        log.write('%s\t%s\t%s\n' % (rel, hashlib.sha256(data).hexdigest(),
                                    'fsync'))
    try:
        os.close(fd)
    except OSError:
        sys.exit(0)
    i += 1
EOF

# dd_writer DIR K: dd conv=fsync of slices of $T/rand until dd fails.
dd_writer()
{
	local d=$1 k=$2 i=0 skip count sha
	while [ ! -e "$T/stop" ]; do
		skip=$((RANDOM % 8))
		count=$((1 + RANDOM % 8))
		dd if="$T/rand" of="$M/$d/d$k-$i" bs=65536 skip=$skip \
			count=$count conv=fsync status=none 2>/dev/null || return 0
		sha=$(dd if="$T/rand" bs=65536 skip=$skip count=$count \
			status=none | sha256sum | cut -d' ' -f1)
		printf '%s\t%s\tdd\n' "$d/d$k-$i" "$sha" >>"$ACK"
		i=$((i + 1))
	done
}

"$HOZEN" init "$S" >/dev/null
: >"$T/recovery"
for round in $(seq 1 "$ROUNDS"); do
	if ! fs_mount "$S" "$M"; then
		not_ok "round $round: mount" "$(cat "$T/mount.err")"
		break
	fi
	pid=${FS_PID[$M]}
	d=r$round
	mkdir "$M/$d"
	rm -f "$T/stop"
	wpids=()
	for k in 1 2 3; do
		python3 "$T/writer.py" "$M" "$d" "$k" "$ACK" &
		wpids+=($!)
	done
	python3 "$T/writer.py" "$M" "$d" s "$ACK" same &
	wpids+=($!)
	for k in 1 2; do
		dd_writer "$d" "$k" &
		wpids+=($!)
	done
	# A random moment: 0.3 to 2 s into the workload.
	sleep "$(printf '0.%03d' $((RANDOM % 1000)))"
	sleep 0.3
	[ $((RANDOM % 2)) = 1 ] && sleep 0.7
	nack=$(wc -l <"$ACK")
	kill -9 "$pid"
	touch "$T/stop"
	for p in "${wpids[@]}"; do wait "$p" 2>/dev/null; done
	fusermount3 -u -z "$M" 2>/dev/null
	for ((i = 0; i < 50; i++)); do fs_alive "$pid" || break; sleep 0.1; done
	if fs_alive "$pid"; then
		not_ok "round $round: the daemon $pid died of kill -9"
		continue
	fi
	# Recovery, then an orderly unmount.
	if fs_mount "$S" "$M"; then
		ok "round $round: killed after $nack acknowledged files; mounts again"
	else
		not_ok "round $round: killed after $nack acknowledged files; mounts again" \
			"$(cat "$T/mount.err")"
		"$HOZEN" verify "$S" 2>&1 | sed 's/^/# /'
		break
	fi
	"$HOZEN" log --json "$S" | python3 -c '
import json, sys
m = [json.loads(l) for l in sys.stdin]
m = [r for r in m if r["type"] == "mount"][-1]
print("round %s: versioned %s restaged %s journal %s torn %s" % (
      sys.argv[1], m.get("versioned"), m.get("restaged"),
      m.get("journal_blobs", 0),
      json.dumps(m.get("torn")) if m.get("torn") else "no"))' "$round" \
		>>"$T/recovery"
	tail -n 1 "$T/recovery" | sed 's/^/# /'
	check "round $round: unmount" fs_umount "$M"
	run verify "$S"
	if [ "$rc" -eq 0 ]; then
		ok "round $round: hozen verify exits 0"
	else
		not_ok "round $round: hozen verify exits 0" "exit $rc" \
			"$(head -c 1500 "$T/out")" "$(head -c 1500 "$T/err")"
	fi
	python3 - "$S" "$ACK" "$round" >"$T/tap" <<'EOF'
import os, sys
sys.path.insert(0, os.environ['D'])
from check import Tap, records, rpath, content, sha
store, ack, rnd = sys.argv[1:4]
t = Tap()
vers = {}
for r in records(store):
    if r['type'] == 'version':
        vers.setdefault((rpath(r), r['sha256']), []).append(r)
acked = [l.rstrip('\n').split('\t') for l in open(ack)]
miss, bad = [], []
for path, h, how in acked:
    vs = vers.get((path.encode(), h))
    if not vs:
        miss.append('%s %s (%s)' % (path, h, how))
        continue
    try:
        data, _ = content(store, vs[0]['blob'])
        if sha(data) != h:
            bad.append('%s: blob %s has sha256 %s' % (path, vs[0]['blob'],
                                                     sha(data)))
    except Exception as e:  # noqa: BLE001
        bad.append('%s: blob %s: %s' % (path, vs[0]['blob'], e))
t.ok(not miss, 'round %s: every fsync-acknowledged content (%d) has a '
     'version record with its SHA-256' % (rnd, len(acked)), *miss)
t.ok(not bad, 'round %s: and git holds its bytes' % rnd, *bad)
EOF
	tap_import <"$T/tap"
done
pycheck git "$S"
pycheck versions "$S"
# Renames in the last uncommitted second: after a kill, the snapshot has
# the new names, and what was written under the old name is versioned.
S2=$T/store2
"$HOZEN" init "$S2" >/dev/null
if fs_mount "$S2" "$M"; then
	pid=${FS_PID[$M]}
	mkdir -p "$M/dir/sub" "$M/d1"
	printf 'one\n' >"$M/d1/a.txt"
	printf 'x\n' >"$M/dir/sub/x"
	python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY)
os.fsync(fd)' "$M" # a commit now
	mv "$M/d1/a.txt" "$M/d1/b.txt"
	printf 'two\n' >>"$M/d1/b.txt"
	mv "$M/dir" "$M/dir2"
	kill -9 "$pid"
	fusermount3 -u -z "$M" 2>/dev/null
	for ((i = 0; i < 50; i++)); do fs_alive "$pid" || break; sleep 0.1; done
	check "renames then kill: mounts again" fs_mount "$S2" "$M"
	check "and unmounts" fs_umount "$M"
	tree=$(git --git-dir="$S2/git" ls-tree -r --name-only main | tr '\n' ' ')
	check "the snapshot has the new names only ($tree)" \
		[ "$tree" = "d1/b.txt dir2/sub/x " ]
	check "d1/b.txt in the snapshot has what was written after the rename" \
		[ "$(git --git-dir="$S2/git" show main:d1/b.txt)" = "one
two" ]
	run verify "$S2"
	check "hozen verify exits 0" [ "$rc" -eq 0 ]
	"$HOZEN" log --json --type mount "$S2" | tail -n 1 |
		python3 -c 'import json, sys; m = json.loads(sys.stdin.read())
print("# recovery: renames %s versioned %s restaged %s" % (m.get("renames"),
      m.get("versioned"), m.get("restaged")))'
else
	not_ok "renames then kill: mount" "$(cat "$T/mount.err")"
fi

echo "# recovery figures (from each mount record after a kill):"
sed 's/^/#   /' "$T/recovery"
# Killed within a second of closes, the batch's content was only in the
# journal: recovery must have read blobs back from it.
jsum=$(awk '{ s += $8 } END { print s + 0 }' "$T/recovery")
check "recovery read $jsum uncommitted blob(s) back from the journal" \
	[ "$jsum" -gt 0 ]
tap_finish
