#!/bin/bash
# worm.sh HOZEN - --worm holds whatever the daemon remembers (issue:
# policies that lapse).  A file becomes immutable at its first version:
# when its last handle open for writing is closed, or at its first
# fsync/fdatasync, whichever comes first.  From then on every write,
# truncation, fallocate, unlink, rename, chmod/chown/utimes and xattr
# change of it fails with EPERM and leaves a refused record, through any
# handle (also one opened before the version), after a remount, and
# after the kernel forgot the inode (drop_caches): the lock follows from
# the chain, not from memory.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
fs_setup "$1"
cd "$T" || exit 2
S=$T/store
M=$T/mnt
EP="Operation not permitted"
: >"$T/attempts"

# attempt NAME PATH CMD...: CMD must fail with EPERM; PATH (relative to
# the mount) goes to the list the chain's refused records are checked
# against.
attempt()
{
	local name=$1 path=$2 out
	shift 2
	if ! out=$("$@" 2>&1) && [[ $out == *"$EP"* ]]; then
		ok "$name: refused (EPERM)"
	else
		not_ok "$name: refused (EPERM)" "command: $*" "output: $out"
	fi
	printf '%s\t%s\n' "$path" "$name" >>"$T/attempts"
}

# every_change LABEL FILE: try every kind of change of MNT/FILE.
every_change()
{
	local l=$1 f=$2
	attempt "$l: append with >>" "$f" sh -c "echo x >>'$M/$f'"
	attempt "$l: overwrite with >" "$f" sh -c "echo x >'$M/$f'"
	attempt "$l: truncate -s 0" "$f" truncate -s 0 "$M/$f"
	attempt "$l: rm" "$f" rm -f "$M/$f"
	attempt "$l: mv" "$f" mv "$M/$f" "$M/$f.moved"
	attempt "$l: chmod" "$f" chmod 600 "$M/$f"
	attempt "$l: touch -d" "$f" touch -d 2001-01-01 "$M/$f"
	attempt "$l: setfattr" "$f" setfattr -n user.x -v 1 "$M/$f"
}

"$HOZEN" init "$S" >/dev/null
check "mount --worm" fs_mount "$S" "$M" --worm
printf 'sealed before the remount\n' >"$M/w"
check "unmount" fs_umount "$M"

# ------------------------------------------------------- after a remount
check "mount --worm again" fs_mount "$S" "$M" --worm
every_change "after a remount" w
check "after a remount: w is unchanged" \
	[ "$(cat "$M/w" 2>&1)" = "sealed before the remount" ]
check "after a remount: its mode is unchanged" \
	[ "$(stat -c %a "$M/w")" = 644 ]

# ------------------------------------ after the kernel forgot the inode
printf 'sealed, then forgotten\n' >"$M/c"
sync
echo 3 >/proc/sys/vm/drop_caches
sleep 1
every_change "after drop_caches" c
check "after drop_caches: c is unchanged" \
	[ "$(cat "$M/c" 2>&1)" = "sealed, then forgotten" ]

# ------------------------------ handles open when the first version is made
python3 - "$M" >"$T/handles" <<'EOF'
import ctypes, os, sys
mnt = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64,
                           ctypes.c_int64)

def fallocate(fd, mode, off, n):
    if libc.fallocate(fd, mode, off, n) < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))

def tryit(name, path, fn, *args):
    try:
        fn(*args)
        print('%s\t%s\tapplied' % (path, name))
    except OSError as e:
        print('%s\t%s\t%s' % (path, name, e.errno))

for sync in ('fsync', 'fdatasync'):
    # The handle that wrote, after its own fsync.
    p = 'h-' + sync
    fd = os.open(os.path.join(mnt, p), os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, b'first\n')
    getattr(os, sync)(fd)
    tryit('write after ' + sync, p, os.write, fd, b'more\n')
    tryit('pwrite after ' + sync, p, os.pwrite, fd, b'X', 0)
    tryit('punch a hole after ' + sync, p, fallocate, fd, 3, 0, 4096)
    tryit('zero a range after ' + sync, p, fallocate, fd, 0x10, 0, 3)
    tryit('fallocate to grow after ' + sync, p, fallocate, fd, 0, 0, 65536)
    tryit('ftruncate after ' + sync, p, os.ftruncate, fd, 0)
    os.close(fd)
    # A handle opened before another one wrote and fsynced.
    p = 'e-' + sync
    early = os.open(os.path.join(mnt, p), os.O_RDWR | os.O_CREAT, 0o644)
    fd = os.open(os.path.join(mnt, p), os.O_WRONLY)
    os.write(fd, b'first\n')
    getattr(os, sync)(fd)
    os.close(fd)
    tryit('write through an earlier handle after ' + sync, p, os.pwrite,
          early, b'more\n', 6)
    tryit('punch a hole through it', p, fallocate, early, 3, 0, 4096)
    tryit('ftruncate through it', p, os.ftruncate, early, 0)
    os.close(early)
EOF
while IFS=$'\t' read -r path name res; do
	if [ "$res" = 1 ]; then
		ok "$path: $name: refused (EPERM)"
	else
		not_ok "$path: $name: refused (EPERM)" "result: $res"
	fi
	printf '%s\t%s\n' "$path" "$name" >>"$T/attempts"
done <"$T/handles"
for f in h-fsync h-fdatasync e-fsync e-fdatasync; do
	check "$f holds what was written before its first version" \
		[ "$(cat "$M/$f")" = first ]
done
check "unmount" fs_umount "$M"

run verify "$S"
if [ "$rc" -eq 0 ]; then
	ok "hozen verify exits 0"
else
	not_ok "hozen verify exits 0 (exit $rc)" "$(head -c 1500 "$T/out")" \
		"$(head -c 1500 "$T/err")"
fi
python3 - "$S" "$T/attempts" >"$T/tap" <<'EOF'
import os, sys
sys.path.insert(0, os.environ['D'])
from check import Tap, records, rpath, sha
store, attempts = sys.argv[1:3]
t = Tap()
recs = records(store)
want = {}
for line in open(attempts):
    path, name = line.rstrip('\n').split('\t')
    want.setdefault(path, []).append(name)
for path, names in sorted(want.items()):
    ref = [r for r in recs if r['type'] == 'refused' and
           rpath(r) == path.encode() and r.get('errno') == 1]
    t.ok(len(ref) >= len(names), '%s: a refused record (EPERM) for each of '
         'the %d attempts (%d)' % (path, len(names), len(ref)),
         *['%s %s' % (r['op'], r['errno']) for r in ref])
want = {'w': b'sealed before the remount\n', 'c': b'sealed, then forgotten\n'}
for f in ('h-fsync', 'h-fdatasync', 'e-fsync', 'e-fdatasync'):
    want[f] = b'first\n'
for path, data in sorted(want.items()):
    vs = [r for r in recs if r['type'] == 'version' and
          rpath(r) == path.encode()]
    t.ok(vs and all(v['sha256'] == sha(data) for v in vs),
         '%s: every version of it is its first content (%d)' % (path,
                                                                len(vs)),
         *[(v['seq'], v['why'], v['size']) for v in vs])
    ch = [r for r in recs if rpath(r) == path.encode() and
          r['type'] in ('write', 'setattr', 'fallocate', 'unlink', 'rename',
                        'setxattr', 'removexattr') and
          r['seq'] > vs[0]['seq']] if vs else []
    t.ok(not ch, '%s: no change recorded after its first version' % path,
         *['seq %d %s' % (r['seq'], r['type']) for r in ch])
EOF
tap_import <"$T/tap"
tap_finish
