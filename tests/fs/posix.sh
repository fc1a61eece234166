#!/bin/bash
# posix.sh HOZEN - what pjdfstest, fsx and ordinary tools found on a real
# mount, each reduced to a few commands:
#  - a mkdir chain of 31 names of 127 bytes (pjdfstest's */03.t: paths
#    up to PATH_MAX) is refused with EINVAL at some depth when the
#    record's line lands in the few bytes the log's line buffer lacks;
#  - a file written after its last name went (unlink while open, as
#    SQLite's WAL -shm file) has a version no git ref reaches;
#  - a file below a directory named .git (git clone into the mount) has
#    versions no git tree can hold: its blob is never packed, and after
#    a crash the store cannot be mounted again;
#  - a sparse file's first version, shared with the live file, gets a
#    dense copy of every hole when the file is next written;
#  - the versions of a session that crashed, all but each path's last,
#    are reachable from no ref after recovery.
# The oracle: 'hozen verify', every version blob reachable from a ref
# (and still there after 'git gc --prune=now', without the commit-graph
# and info/refs that verify refuses in a store).

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
fs_setup "$1"
cd "$T" || exit 2
S=$T/store
M=$T/mnt

# version_kept STORE SHA256: a version record has this content, its blob
# is in git's object store (not only in the journal) and a ref reaches it.
version_kept()
{
	python3 - "$1" "$2" <<'EOF'
import sys
sys.path.insert(0, __import__('os').environ['D'])
import check
store, want = sys.argv[1:3]
vers = [r for r in check.records(store)
        if r['type'] == 'version' and r['sha256'] == want]
if not vers:
    sys.exit('# no version record of content %s' % want)
reach = check.reachable(store)
bad = 0
for r in vers:
    p = check.git(store, 'cat-file', '-e', r['blob'], check=False)
    if p.returncode != 0:
        print('# seq %d: blob %s is not in git\'s objects' %
              (r['seq'], r['blob']))
        bad = 1
    if r['blob'] not in reach:
        print('# seq %d: blob %s is reachable from no ref' %
              (r['seq'], r['blob']))
        bad = 1
sys.exit(bad)
EOF
}

"$HOZEN" init "$S" >/dev/null
check "hozen mount" fs_mount "$S" "$M"

# ------------------------------------------- long paths (pjdfstest 03.t)
name=$(printf 'd%.0s' $(seq 1 127))
depth=$(
	cd "$M" || exit
	p=.
	for i in $(seq 1 31); do
		p=$p/$name
		mkdir "$p" 2>>"$T/mkdir.err" || break
		echo "$i"
	done | tail -n 1
)
check "mkdir of 31 nested names of 127 bytes (got to ${depth:-0})" \
	[ "${depth:-0}" = 31 ]
[ -s "$T/mkdir.err" ] && sed 's/^/# /' "$T/mkdir.err" | cut -c1-200
rm -rf "${M:?}/$name"

# ----------------------------------------- written after its last name
python3 - "$M" "$T" <<'EOF'
import hashlib, os, sys
m, t = sys.argv[1:3]
data = b'written after unlink ' + os.urandom(16).hex().encode() + b'\n'
f = open(os.path.join(m, 'gone.txt'), 'wb')
os.unlink(os.path.join(m, 'gone.txt'))
f.write(data)
f.close()
open(os.path.join(t, 'gone.sha'), 'w').write(hashlib.sha256(data).hexdigest())
EOF

# ------------------------------------------------ a directory named .git
mkdir -p "$M/case/.git"
head -c 32 /dev/urandom | od -An -tx1 >"$M/case/.git/notes.txt"
sha256sum <"$M/case/.git/notes.txt" | cut -d' ' -f1 >"$T/dotgit.sha"

# ---------------------------------------------------------- sparse file
truncate -s 256M "$M/sparse.img"
printf x | dd of="$M/sparse.img" bs=1 seek=1000 conv=notrunc status=none
check "a 1-byte write into a 256 MiB sparse file" [ $? -eq 0 ]

check "unmount" fs_umount "$M"
expect_rc "hozen verify" 0 verify "$S"
check "the version of a file written after its unlink is kept in git" \
	version_kept "$S" "$(cat "$T/gone.sha")"
check "the version of case/.git/notes.txt is kept in git" \
	version_kept "$S" "$(cat "$T/dotgit.sha")"
zeros=$(head -c 268435456 /dev/zero | sha256sum | cut -d' ' -f1)
obj=$S/git/lfs/objects/${zeros:0:2}/${zeros:2:2}/$zeros
blocks=$(stat -c %b "$obj" 2>/dev/null)
check "the sparse file's first version (LFS object) holds no copy of its \
holes ($((${blocks:-0} / 2)) KiB allocated)" \
	[ "${blocks:-999999999}" -lt 32768 ]

cp -a "$S" "$T/gc"
git --git-dir="$T/gc/git" -c gc.writeCommitGraph=false \
	-c repack.updateServerInfo=false gc -q --prune=now
expect_rc "hozen verify after 'git gc --prune=now'" 0 verify "$T/gc"

# ---------------------------------------------- a crash with .git inside
check "hozen mount again" fs_mount "$S" "$M"
pid=${FS_PID[$(cd "$M" && pwd)]}
echo 'appended before the crash' >>"$M/case/.git/notes.txt"
kill -9 "$pid"
while fs_alive "$pid"; do sleep 0.1; done
fusermount3 -u -z "$M"
check "mount after a kill -9 (recovery) with a file below .git" \
	fs_mount "$S" "$M"
check "its files read back" grep -q 'appended before the crash' \
	"$M/case/.git/notes.txt"
fs_umount "$M" 2>/dev/null
# A session's end (unmount) is recorded by the daemon that mounted it.
"$HOZEN" log --json "$S" | python3 -c '
import json, sys
last = None
for line in sys.stdin:
    r = json.loads(line)
    if r["type"] in ("mount", "unmount"):
        if r["type"] == "unmount" and (last is None or
                                       last["type"] != "mount" or
                                       last["actor"]["pid"] !=
                                       r["actor"]["pid"]):
            sys.exit("# unmount record %d (pid %d) ends no mount of its "
                     "daemon" % (r["seq"], r["actor"]["pid"]))
        last = r
' >"$T/sessions.out" 2>&1
check "every unmount record ends a session its daemon mounted" [ $? -eq 0 ]
cat "$T/sessions.out"

# ------------------------------------ versions of a session that crashed
S=$T/store2
"$HOZEN" init "$S" >/dev/null
check "mount a second store" fs_mount "$S" "$M"
pid=${FS_PID[$(cd "$M" && pwd)]}
python3 - "$M" "$T" <<'EOF'
import hashlib, os, sys
m, t = sys.argv[1:3]
shas = []
fd = os.open(os.path.join(m, 'crash.txt'), os.O_WRONLY | os.O_CREAT, 0o644)
for i in range(20):
    data = ('version %d of crash.txt %s\n' % (i, os.urandom(8).hex())
            ).encode() * (i + 1)
    os.pwrite(fd, data, 0)
    os.fsync(fd)
    shas.append(hashlib.sha256(data).hexdigest())
open(os.path.join(t, 'crash.sha'), 'w').write('\n'.join(shas) + '\n')
EOF
kill -9 "$pid"
while fs_alive "$pid"; do sleep 0.1; done
fusermount3 -u -z "$M"
check "mount after a kill -9 (recovery)" fs_mount "$S" "$M"
check "unmount after recovery" fs_umount "$M"
expect_rc "hozen verify after recovery" 0 verify "$S"
lost=0
while read -r h; do
	version_kept "$S" "$h" >>"$T/crash.lost" || lost=$((lost + 1))
done <"$T/crash.sha"
check "the 20 versions fsync'ed before the crash are kept ($lost lost)" \
	[ "$lost" -eq 0 ]
[ -s "$T/crash.lost" ] && head -n 6 "$T/crash.lost"
rm -rf "$T/gc"
cp -a "$S" "$T/gc"
git --git-dir="$T/gc/git" -c gc.writeCommitGraph=false \
	-c repack.updateServerInfo=false gc -q --prune=now
expect_rc "hozen verify after recovery and 'git gc --prune=now'" 0 \
	verify "$T/gc"

tap_finish
