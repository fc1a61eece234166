#!/bin/bash
# unrecorded.sh HOZEN - no change is applied that no record shows (issue:
# changes applied that no record shows).  The record comes before the
# act; if it cannot be written the act does not happen and the caller
# gets the error.
#  - On a full disk (a 64 MiB ext4 image, or a tmpfs), chmod, chown,
#    touch, mv, ln, ln -s, mkfifo, a write in place, rm, setfattr -x and
#    rmdir either succeed and are recorded, or fail and change nothing.
#  - Records whose size falls where the record builder's buffer estimate
#    was short: a chain of 1100 nested 'mkdir d', and a rename whose
#    paths sweep through 3..1257 bytes.  Every call either succeeds
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
	# What each attempt needs, made before the disk fills.  rm-K are
	# empty: removing one frees no block the chain could use.
	N=12
	mkdir "$M/p"
	for k in $(seq 1 $N); do
		: >"$M/p/rm-$k"
		for f in mv chmod chown touch; do
			printf 'file %d\n' "$k" >"$M/p/$f-$k"
		done
		printf 'aaaaaaaa\n' >"$M/p/dd-$k"
		printf 'x\n' >"$M/p/rx-$k"
		setfattr -n user.a -v 1 "$M/p/rx-$k"
		mkdir "$M/p/rmdir-$k"
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
	# Each attempt's exit code; whether it is applied is read from the
	# store's tree after unmount.  Those that free blocks come last.
	: >"$T/attempts"
	try() # OP K COMMAND...
	{
		local op=$1 k=$2
		shift 2
		"$@" 2>/dev/null
		printf '%s\t%d\t%d\n' "$op" "$k" $? >>"$T/attempts"
	}
	P=$M/p
	for k in $(seq 1 $N); do try chmod "$k" chmod 600 "$P/chmod-$k"; done
	for k in $(seq 1 $N); do try chown "$k" chown 65534 "$P/chown-$k"; done
	for k in $(seq 1 $N); do
		try touch "$k" touch -m -d 2001-01-01 "$P/touch-$k"
	done
	for k in $(seq 1 $N); do try mv "$k" mv "$P/mv-$k" "$P/mv-$k.moved"; done
	for k in $(seq 1 $N); do try link "$k" ln "$P/dd-1" "$P/ln-$k"; done
	for k in $(seq 1 $N); do try symlink "$k" ln -s target "$P/sl-$k"; done
	for k in $(seq 1 $N); do try mknod "$k" mkfifo "$P/fifo-$k"; done
	printf Z >"$T/Z"
	for k in $(seq 1 $N); do
		try write "$k" dd if="$T/Z" of="$P/dd-$k" bs=1 count=1 \
			conv=notrunc status=none
	done
	for k in $(seq 1 $N); do try rm "$k" rm "$P/rm-$k"; done
	for k in $(seq 1 $N); do
		try removexattr "$k" setfattr -x user.a "$P/rx-$k"
	done
	for k in $(seq 1 $N); do try rmdir "$k" rmdir "$P/rmdir-$k"; done
	awk '$3 != 0 { n++ } END { printf "# %d of %d attempts failed\n", n, NR }' \
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
tree = os.path.join(store, 'tree', 'p')
recs = records(store)


def rec(typ, name, test=lambda r: True):
    return any(r['type'] == typ and rpath(r) == b'p/' + name.encode() and
               test(r) for r in recs)


def there(name):
    return os.path.lexists(os.path.join(tree, name))


def st(name):
    return os.lstat(os.path.join(tree, name))


def xattr_gone(name):
    try:
        os.getxattr(os.path.join(tree, name), 'user.a')
        return False
    except OSError:
        return True


# op: (applied, recorded) of attempt k
ops = {
    'chmod': lambda k: (stat.S_IMODE(st('chmod-%d' % k).st_mode) == 0o600,
                        rec('setattr', 'chmod-%d' % k,
                            lambda r: r.get('mode') == 0o600)),
    'chown': lambda k: (st('chown-%d' % k).st_uid == 65534,
                        rec('setattr', 'chown-%d' % k,
                            lambda r: r.get('uid') == 65534)),
    'touch': lambda k: (st('touch-%d' % k).st_mtime < 1.1e9,
                        rec('setattr', 'touch-%d' % k,
                            lambda r: r.get('utimens'))),
    'mv': lambda k: (there('mv-%d.moved' % k),
                     rec('rename', 'mv-%d' % k, lambda r: r.get('to') ==
                         'p/mv-%d.moved' % k)),
    'link': lambda k: (there('ln-%d' % k), rec('link', 'ln-%d' % k)),
    'symlink': lambda k: (there('sl-%d' % k), rec('symlink', 'sl-%d' % k)),
    'mknod': lambda k: (there('fifo-%d' % k), rec('mknod', 'fifo-%d' % k)),
    'write': lambda k: (open(os.path.join(tree, 'dd-%d' % k), 'rb').read(1)
                        == b'Z', rec('write', 'dd-%d' % k)),
    'rm': lambda k: (not there('rm-%d' % k), rec('unlink', 'rm-%d' % k)),
    'removexattr': lambda k: (xattr_gone('rx-%d' % k),
                              rec('removexattr', 'rx-%d' % k)),
    'rmdir': lambda k: (not there('rmdir-%d' % k),
                        rec('rmdir', 'rmdir-%d' % k)),
}
res = {}
for line in open(attempts):
    op, k, code = line.split()
    res.setdefault(op, []).append((int(k), int(code)))
for op, fn in ops.items():
    bad = []
    for k, code in res.get(op, []):
        applied, recorded = fn(k)
        if code and applied:
            bad.append('%s %d: failed (exit %d) but was applied (%s)' % (
                op, k, code, 'recorded' if recorded else 'no record'))
        elif applied and not recorded:
            bad.append('%s %d: applied, and no record shows it' % (op, k))
    nfail = sum(1 for _, c in res.get(op, []) if c)
    t.ok(res.get(op) and not bad, 'full disk: each %s either succeeded and '
         'is recorded, or failed and changed nothing (%d of %d failed)' %
         (op, nfail, len(res.get(op, []))), *bad)
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
