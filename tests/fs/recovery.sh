#!/bin/bash
# recovery.sh HOZEN - crash recovery and memory (issue: recovery and
# memory).
#  - A file whose name is not UTF-8 (recorded as path_b64), written and
#    not closed when the daemon is killed with SIGKILL: the next mount
#    versions what was written (as it does for a UTF-8 name), so that
#    removing the file afterwards loses nothing.
#  - Under the preserve policy, 100 rounds of a 1,000,000-byte pwrite
#    and ftruncate(fd, 0) on one handle, by 3 processes at once: every
#    call succeeds (a user's call never fails because the committer is
#    behind), and every round's content is a version git holds.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
fs_setup "$1"
cd "$T" || exit 2
S=$T/store
M=$T/mnt

# ----------------------------------- not UTF-8, written, then kill -9
"$HOZEN" init "$S" >/dev/null
check "mount" fs_mount "$S" "$M"
pid=${FS_PID[$M]}
python3 - "$M" "$T" <<'EOF' &
import os, sys, time
mnt, tdir = sys.argv[1:3]
fds = []
for name in (b'bad\xff', b'good'):
    fd = os.open(os.path.join(os.fsencode(mnt), name),
                 os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b'written to %s, never closed\n' % name)
    fds.append(fd)
open(os.path.join(tdir, 'ready'), 'w').close()
time.sleep(60)
EOF
writer=$!
for ((i = 0; i < 100; i++)); do [ -e "$T/ready" ] && break; sleep 0.1; done
check "two files written and held open (bad\\xff and good)" [ -e "$T/ready" ]
kill -9 "$pid"
kill "$writer" 2>/dev/null
wait "$writer" 2>/dev/null
fusermount3 -u -z "$M" 2>/dev/null
for ((i = 0; i < 50; i++)); do fs_alive "$pid" || break; sleep 0.1; done
dead() { ! fs_alive "$1"; }
check "the daemon died of kill -9" dead "$pid"
check "mount again (recovery)" fs_mount "$S" "$M"
check "rm the file whose name is not UTF-8" rm "$M/"$'bad\xff'
check "rm the other" rm "$M/good"
check "unmount" fs_umount "$M"
run verify "$S"
if [ "$rc" -eq 0 ]; then
	ok "hozen verify exits 0"
else
	not_ok "hozen verify exits 0 (exit $rc)" "$(head -c 1500 "$T/out")" \
		"$(head -c 1500 "$T/err")"
fi
python3 - "$S" >"$T/tap" <<'EOF'
import os, sys
sys.path.insert(0, os.environ['D'])
from check import Tap, records, rpath, content, sha
store = sys.argv[1]
t = Tap()
recs = records(store)
for name in (b'good', b'bad\xff'):
    data = b'written to %s, never closed\n' % name
    vs = [r for r in recs if r['type'] == 'version' and rpath(r) == name
          and r['sha256'] == sha(data)]
    gone = [r for r in recs if r['type'] == 'unlink' and rpath(r) == name]
    good = bool(vs and gone and vs[0]['seq'] < gone[0]['seq'])
    if good:
        got, _ = content(store, vs[0]['blob'])
        good = got == data
    t.ok(good, '%r: what was written before the kill is a version (why %s) '
         'before its removal, and git holds it' % (
             name, vs[0]['why'] if vs else None),
         [(r['seq'], r['type'], r.get('why')) for r in recs
          if rpath(r) == name])
EOF
tap_import <"$T/tap"

# --------------------------------------- pwrite, ftruncate, 3 x 100 times
S=$T/store2
"$HOZEN" init "$S" >/dev/null
check "mount (preserve)" fs_mount "$S" "$M"
cat >"$T/rounds.py" <<'EOF'
import hashlib, os, sys
path, n, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
with open(log, 'w') as out:
    for i in range(n):
        data = os.urandom(1000000)
        try:
            os.pwrite(fd, data, 0)
            out.write(hashlib.sha256(data).hexdigest() + '\n')
            os.ftruncate(fd, 0)
        except OSError as e:
            print('%s: round %d: %s' % (os.path.basename(path), i + 1, e))
            sys.exit(1)
os.close(fd)
EOF
# Three writers at once, 100 rounds each: the committer falls behind.
pids=()
for k in 1 2 3; do
	timeout 240 python3 "$T/rounds.py" "$M/t$k" 100 "$T/rounds$k" &
	pids+=($!)
done
prc=0
for p in "${pids[@]}"; do wait "$p" || prc=1; done
cat "$T"/rounds[123] >"$T/rounds"
n=$(wc -l <"$T/rounds")
check "3 x 100 rounds of pwrite (1,000,000 bytes) and ftruncate(fd, 0) all succeed ($n written)" \
	[ $prc -eq 0 ]
check "unmount" fs_umount "$M"
run verify "$S"
if [ "$rc" -eq 0 ]; then
	ok "hozen verify exits 0"
else
	not_ok "hozen verify exits 0 (exit $rc)" "$(head -c 1500 "$T/out")" \
		"$(head -c 1500 "$T/err")"
fi
python3 - "$S" "$T/rounds" >"$T/tap" <<'EOF'
import os, sys
sys.path.insert(0, os.environ['D'])
from check import Tap, records, content, sha
store, rounds = sys.argv[1:3]
t = Tap()
want = [l.strip() for l in open(rounds)]
vers = {r['sha256']: r for r in records(store) if r['type'] == 'version'}
miss = [i + 1 for i, h in enumerate(want) if h not in vers]
t.ok(want and not miss, 'each round\'s content (%d) is a version record '
     'made before its truncation' % len(want),
     'rounds without a version: %s' % miss[:40])
bad = []
for h in want:
    if h in vers:
        data, _ = content(store, vers[h]['blob'])
        if sha(data) != h:
            bad.append(vers[h]['seq'])
t.ok(not bad, 'and git holds each one\'s bytes', *bad)
EOF
tap_import <"$T/tap"
tap_finish
