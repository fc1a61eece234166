#!/bin/bash
# unrecorded.sh HOZEN - no change is applied that no record shows (issue:
# changes applied that no record shows).  The record comes before the
# act; if it cannot be written the act does not happen and the caller
# gets the error.
#  - On a full disk (a 64 MiB ext4 image, or a tmpfs), rm, mv and chmod
#    either succeed and are recorded, or fail and change nothing.
#  - Records whose size falls where the record builder's buffer estimate
#    was short: a chain of 1100 nested 'mkdir d', and a rename whose
#    paths sweep through ~950..1200 bytes.  Every call either succeeds
#    and is recorded, or fails and changes nothing; every directory on
#    disk is named by a record; 'hozen verify' passes.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
fs_setup "$1"
cd "$T" || exit 2
M=$T/mnt

# ================================================== a full disk
DISK=$T/disk
mkdir "$DISK"
kind=
if command -v mkfs.ext4 >/dev/null && truncate -s 64M "$T/img" &&
	mkfs.ext4 -q -F "$T/img" 2>/dev/null &&
	mount -o loop "$T/img" "$DISK" 2>/dev/null; then
	kind="ext4 image"
elif mount -t tmpfs -o size=64m tmpfs "$DISK" 2>/dev/null; then
	kind="tmpfs"
fi
if [ -z "$kind" ]; then
	skip "full disk" "neither a loop mount nor a tmpfs can be mounted"
else
	fs_loop "$DISK"
	S=$DISK/store
	"$HOZEN" init "$S" >/dev/null
	check "full disk ($kind): mount" fs_mount "$S" "$M"
	N=40
	# rm-K are empty: removing one frees no block the chain could use.
	for k in $(seq 1 $N); do
		: >"$M/rm-$k"
		printf 'file %d\n' "$k" >"$M/mv-$k"
		printf 'file %d\n' "$k" >"$M/chmod-$k"
	done
	python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY)
os.fsync(fd)' "$M" # committed before the disk fills
	dd if=/dev/urandom of="$M/fill" bs=1M count=200 2>/dev/null
	i=0
	while [ $i -lt 4000 ] &&
		head -c 4096 /dev/urandom 2>/dev/null >"$M/after$i"; do
		i=$((i + 1))
	done
	check "full disk: the disk is full (a 4 KiB file fails after $i)" \
		[ $i -lt 4000 ]
	# Each attempt: its exit code, then whether it is applied (read
	# from the store's tree after unmount).
	: >"$T/attempts"
	for k in $(seq 1 $N); do
		chmod 600 "$M/chmod-$k" 2>/dev/null
		printf 'chmod-%d\t%d\n' "$k" $? >>"$T/attempts"
	done
	for k in $(seq 1 $N); do
		mv "$M/mv-$k" "$M/mv-$k.moved" 2>/dev/null
		printf 'mv-%d\t%d\n' "$k" $? >>"$T/attempts"
	done
	for k in $(seq 1 $N); do
		rm "$M/rm-$k" 2>/dev/null
		printf 'rm-%d\t%d\n' "$k" $? >>"$T/attempts"
	done
	awk '$2 != 0 { n++ } END { printf "# %d of %d attempts failed\n", n, NR }' \
		"$T/attempts"
	check "full disk: unmount" fs_umount "$M"
	run verify "$S"
	if [ "$rc" -eq 0 ]; then
		ok "full disk: hozen verify exits 0"
	else
		not_ok "full disk: hozen verify exits 0 (exit $rc)" \
			"$(head -c 1500 "$T/out")" "$(head -c 1500 "$T/err")"
	fi
	python3 - "$S" "$T/attempts" >"$T/tap" <<'EOF'
import os, stat, sys
sys.path.insert(0, os.environ['D'])
from check import Tap, records, rpath
store, attempts = sys.argv[1:3]
t = Tap()
tree = os.path.join(store, 'tree')
recs = records(store)
def rec(typ, path, test=lambda r: True):
    return any(r['type'] == typ and rpath(r) == path.encode() and test(r)
               for r in recs)
for op in ('rm', 'mv', 'chmod'):
    bad = []
    for line in open(attempts):
        name, code = line.split()
        if not name.startswith(op + '-'):
            continue
        failed = code != '0'
        p = os.path.join(tree, name)
        if op == 'rm':
            applied = not os.path.exists(p)
            recorded = rec('unlink', name)
        elif op == 'mv':
            applied = os.path.exists(p + '.moved')
            recorded = rec('rename', name,
                           lambda r: r.get('to') == name + '.moved')
            if applied == os.path.exists(p):
                bad.append('%s: both or neither name exist' % name)
        else:
            applied = stat.S_IMODE(os.stat(p).st_mode) == 0o600
            recorded = rec('setattr', name, lambda r: r.get('mode') == 0o600)
        if failed and applied:
            bad.append('%s: %s failed (exit %s) but was applied (%s)' % (
                name, op, code, 'recorded' if recorded else 'no record'))
        elif applied and not recorded:
            bad.append('%s: %s applied, and no record shows it' % (name, op))
    t.ok(not bad, 'full disk: each %s either succeeded and is recorded, or '
         'failed and changed nothing' % op, *bad)
EOF
	tap_import <"$T/tap"
fi

# ============================================= record sizes: mkdir, rename
S=$T/store
"$HOZEN" init "$S" >/dev/null
check "record sizes: mount" fs_mount "$S" "$M"
# Each level: mkdir d in the last one; a failure must leave no d.
python3 - "$M" 1100 >"$T/tap" <<'EOF'
import os, sys
sys.path.insert(0, os.environ['D'])
from check import Tap
mnt, depth = sys.argv[1], int(sys.argv[2])
t = Tap()
fd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
bad, failed, made = [], 0, 0
for k in range(1, depth + 1):
    try:
        os.mkdir('d', dir_fd=fd)
        made += 1
    except OSError as e:
        failed += 1
        try:
            os.stat('d', dir_fd=fd, follow_symlinks=False)
            bad.append('level %d (path of %d bytes): mkdir failed (%s) but '
                       'the directory is there' % (k, 2 * k - 1, e.strerror))
        except FileNotFoundError:
            break
    nfd = os.open('d', os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = nfd
os.close(fd)
print('# nested mkdir d: %d made, %d failed' % (made, failed))
t.ok(not bad, '%d nested mkdir d: each either made or refused with '
     'nothing made' % depth, *bad)
t.ok(made == depth, 'all %d levels made (%d failed)' % (depth, failed))
EOF
tap_import <"$T/tap"
check "record sizes: unmount" fs_umount "$M"

check "record sizes: mount again" fs_mount "$S" "$M"
# A file renamed from a name of L-1 bytes to one of L bytes, L = 2..255,
# in a directory r, then in r/B1 (B1 a name of 249 bytes), r/B1/B2, ...
# four levels down: both paths grow a byte at a time through 3..1257
# bytes, so the record's size sweeps through every window of the
# builder's estimate (the mkdir records of the levels are smaller).
T=$T python3 - "$M" >"$T/tap" <<'EOF'
import os, sys
sys.path.insert(0, os.environ['D'])
from check import Tap
mnt = sys.argv[1]
t = Tap()
fd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
base = ['r'] + ['%d' % i + 'b' * 248 for i in range(4)]
bad, done, failed = [], [], 0
for level, name in enumerate(base):
    os.mkdir(name, dir_fd=fd)
    nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = nfd
    bdir = '/'.join(base[:level + 1])
    os.close(os.open('f', os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    def there(n):
        try:
            os.stat(n, dir_fd=fd)
            return True
        except FileNotFoundError:
            return False
    cur = 'f'
    for L in range(2, 256):
        new = 'f' * L
        plen = len(bdir) + 1 + L
        try:
            os.rename(cur, new, src_dir_fd=fd, dst_dir_fd=fd)
            err = None
        except OSError as e:
            err = e
        if err is None:
            if there(cur) or not there(new):
                bad.append('rename to %d bytes: succeeded, but the names '
                           'are not as they should be' % plen)
            done.append((bdir + '/' + cur, bdir + '/' + new))
            cur = new
        else:
            failed += 1
            if there(new) or not there(cur):
                bad.append('rename of a %d-byte path to a %d-byte one '
                           'failed (%s) but was applied' % (
                               plen - 1, plen, err.strerror))
                cur = new if there(new) else cur
os.close(fd)
with open(os.path.join(os.environ['T'], 'renamed'), 'w') as f:
    for a, b in done:
        f.write('%s\t%s\n' % (a, b))
print('# renames: paths of 3..1257 bytes, %d made, %d failed' % (
    len(done), failed))
t.ok(not bad, 'renames through paths of 3..1257 bytes: each either made '
     'or refused with nothing changed', *bad)
t.ok(not failed, 'all %d renames made (%d failed)' % (len(done) + failed,
                                                      failed))
EOF
tap_import <"$T/tap"
check "record sizes: unmount" fs_umount "$M"

run verify "$S"
if [ "$rc" -eq 0 ]; then
	ok "record sizes: hozen verify exits 0"
else
	not_ok "record sizes: hozen verify exits 0 (exit $rc)" \
		"$(head -c 1500 "$T/out")" "$(head -c 1500 "$T/err")"
fi
python3 - "$S" "$T/renamed" >"$T/tap" <<'EOF'
import os, sys
sys.path.insert(0, os.environ['D'])
from check import Tap, records, rpath
store, renamed = sys.argv[1:3]
t = Tap()
recs = records(store)
made = {rpath(r) for r in recs if r['type'] == 'mkdir'}
ren = {(rpath(r), rpath(r, 'to')) for r in recs if r['type'] == 'rename'}
# Every directory below tree/, walked by fd (no recursion, any depth).
dirs, todo = [], [(os.open(os.path.join(store, 'tree'), os.O_RDONLY), b'')]
while todo:
    fd, rel = todo.pop()
    for e in os.scandir(fd):
        if e.is_dir(follow_symlinks=False):
            p = rel + e.name.encode(errors='surrogateescape')
            dirs.append(p)
            todo.append((os.open(e.name, os.O_RDONLY | os.O_DIRECTORY,
                                 dir_fd=fd), p + b'/'))
    os.close(fd)
unnamed = ['a directory of %d bytes: %r...' % (len(d), d[-60:])
           for d in dirs if d not in made]
t.ok(dirs and not unnamed, 'every directory on disk (%d) is named by a '
     'mkdir record' % len(dirs), *unnamed)
miss = []
for line in open(renamed):
    a, b = line.rstrip('\n').split('\t')
    if (a.encode(), b.encode()) not in ren:
        miss.append('rename %d -> %d bytes' % (len(a), len(b)))
t.ok(not miss, 'every rename made is recorded', *miss)
EOF
tap_import <"$T/tap"
tap_finish
