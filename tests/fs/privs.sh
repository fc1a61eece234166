#!/bin/bash
# privs.sh HOZEN - setuid and setgid go where a local filesystem drops
# them, and each drop is recorded.  The mount negotiates
# FUSE_HANDLE_KILLPRIV_V2 (fs/wire.c): the kernel then stops asking for
# security.capability before every write and leaves the drop to hozen.
# A process without CAP_FSETID that writes, truncates (truncate(2),
# ftruncate(2)), opens with O_TRUNC or fallocates drops setuid, and
# setgid where group execute is set or the writer is not in the file's
# group (Linux 6.2 and later); root keeps both (but not root in a user
# namespace of its own); chown, even chown(-1, -1) by root, drops
# setuid, as ext4 does.  Each drop is a setattr record of the
# writer, before the record of its write, and a stat at once shows it.
# security.capability is still removed by a write (the kernel does it,
# through removexattr, recorded), and xattrs stay readable.  A change of
# the executable bit alone reaches git's tree (verify says VALID).

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
fs_setup "$1"
cd "$T" || exit 2
S=$T/store
M=$T/mnt
U=(setpriv --reuid=65534 --regid=65534 --clear-groups)
# A python nobody may run (one under /root, as pyenv's, is not).
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

"$HOZEN" init "$S" >/dev/null
check "mount" fs_mount "$S" "$M"
mkdir "$M/p"
chmod 777 "$M/p"

# mode_after NAME MODE WHO CMD...: create p/NAME with MODE, run CMD (as
# nobody or root) with $F set to its path, print the mode stat sees.
mode_after()
{
	local name=$1 mode=$2 who=$3
	shift 3
	F=$M/p/$name
	printf 'seed\n' >"$F"
	case $name in w7) chgrp 65534 "$F" ;; c4) chown 65534 "$F" ;; esac
	chmod "$mode" "$F"
	if [ "$name" = g1 ]; then
		chown 65534:1299 "$F" && chmod "$mode" "$F"
		F=$F setpriv --reuid=65534 --regid=65534 \
			--groups="$(seq -s, 1000 1299)" sh -c "$*"
	elif [ "$who" = nobody ]; then
		F=$F "${U[@]}" sh -c "$*"
	else
		F=$F sh -c "$*"
	fi
	stat -c %a "$F"
}

# expect_mode LABEL WANT GOT
expect_mode()
{
	if [ "$3" = "$2" ]; then
		ok "$1: mode $2"
	else
		not_ok "$1: mode $2" "got $3"
	fi
}

w='echo x >>"$F"'
expect_mode "nobody writes a 4777 file" 777 "$(mode_after w1 4777 nobody "$w")"
expect_mode "nobody writes a 2777 file" 777 "$(mode_after w2 2777 nobody "$w")"
expect_mode "nobody writes a 6777 file" 777 "$(mode_after w3 6777 nobody "$w")"
expect_mode "nobody writes a 2767 file of group root (not its group)" 767 \
	"$(mode_after w4 2767 nobody "$w")"
expect_mode "nobody writes a 2767 file of its own group" 2767 \
	"$(mode_after w7 2767 nobody "$w" 2>/dev/null)"
expect_mode "root writes a 6777 file" 6777 "$(mode_after w5 6777 root "$w")"
expect_mode "nobody truncates a 6777 file (truncate -s)" 777 \
	"$(mode_after t1 6777 nobody 'truncate -s 1 "$F"')"
expect_mode "nobody ftruncates a 6777 file" 777 \
	"$(mode_after t2 6777 nobody \
		"'$PY' -c 'import os,sys; fd=os.open(sys.argv[1], os.O_WRONLY); os.ftruncate(fd, 2)' \"\$F\"")"
expect_mode "nobody opens a 6777 file with O_TRUNC" 777 \
	"$(mode_after o1 6777 nobody ': >"$F"')"
expect_mode "root opens a 6777 file with O_TRUNC" 6777 \
	"$(mode_after o2 6777 root ': >"$F"')"
expect_mode "nobody fallocates in a 6777 file" 777 \
	"$(mode_after f1 6777 nobody 'fallocate -l 100 "$F"')"
expect_mode "root fallocates in a 6777 file" 6777 \
	"$(mode_after f2 6777 root 'fallocate -l 100 "$F"')"
# Its group the last of 300 supplementary ones: still its group.
expect_mode "nobody writes a 2644 file of its 300th group" 2644 \
	"$(mode_after g1 2644 nobody "$w")"
expect_mode "nobody, root in a user namespace of its own, fallocates" 777 \
	"$(mode_after f3 6777 nobody 'unshare -U -r fallocate -l 100 "$F"')"
# chown(-1, -1): by a process without CAP_FSETID it drops what a write
# drops; by root it would drop setuid on ext4, but under
# HANDLE_KILLPRIV_V2 it reaches the mount as the same empty setattr as
# a root write's (which drops nothing): hozen keeps the bits then (the
# man page says so).
expect_mode "nobody chowns its own 4755 file (-1, -1)" 755 \
	"$(mode_after c4 4755 nobody 'chown : "$F"')"
expect_mode "root chowns a 4777 file (-1, -1): kept, unlike ext4" 4777 \
	"$(mode_after c1 4777 root 'chown : "$F"')"
expect_mode "root chowns a 4777 file to root:root" 777 \
	"$(mode_after c2 4777 root 'chown 0:0 "$F"')"
# The writer's own stat, at once after its write, shows the drop.
printf 'seed\n' >"$M/p/s1"
chmod 4777 "$M/p/s1"
check "the writer's stat right after its write shows the drop" \
	"${U[@]}" "$PY" -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
os.write(fd, b"x")
sys.exit(0 if os.stat(sys.argv[1]).st_mode & 0o7777 == 0o777 else 1)' \
	"$M/p/s1"
# A second write, once the mode has no setuid left: no second drop.
expect_mode "nobody writes a 4777 file twice (one drop)" 777 "$(mode_after w6 4777 nobody \
	"$w; $w")"

# Capabilities: the kernel still finds and removes them on a write.
printf 'seed\n' >"$M/p/cap"
if setcap cap_net_raw+ep "$M/p/cap" 2>/dev/null; then
	check "a file capability reads back through the mount" \
		sh -c "getcap '$M/p/cap' | grep -q cap_net_raw"
	echo x >>"$M/p/cap"
	check "a write (even root's) removes the file capability" \
		sh -c "! getfattr -n security.capability '$M/p/cap' 2>/dev/null | grep -q capability"
else
	skip "file capabilities" "setcap refused on the mount"
fi
# A change of mode alone that git sees (the executable bit), with no
# write after it, under two names: git's tree follows it (verify below).
printf 'seed\n' >"$M/p/x"
ln "$M/p/x" "$M/p/x2"
sleep 1.2 # past the committer's interval: the version is committed
chmod 755 "$M/p/x"
setfattr -n user.note -v kept "$M/p/w1"
check "xattrs stay readable" \
	sh -c "getfattr --only-values -n user.note '$M/p/w1' 2>/dev/null | grep -qx kept"
check "unmount" fs_umount "$M"
run verify "$S"
check "hozen verify exits 0" [ "$rc" = 0 ]

# The records: each drop is a setattr of nobody with the mode it leaves,
# before its write; root's writes and w4's drop nothing.
"$HOZEN" log --json "$S" >"$T/log.json"
python3 - "$T/log.json" >"$T/tap" <<'EOF'
import json, sys
sys.path.insert(0, __import__('os').environ['D'])
from check import Tap
t = Tap()
recs = [json.loads(l) for l in open(sys.argv[1])]
def path(r):
    return r.get('path', '')
drops = {}
for i, r in enumerate(recs):
    if r['type'] == 'setattr' and r['actor']['uid'] == 65534 and 'mode' in r:
        drops.setdefault(path(r), []).append((i, r['mode']))
want = {'p/w1': 0o777, 'p/w2': 0o777, 'p/w3': 0o777, 'p/w4': 0o767,
        'p/t1': 0o777, 'p/t2': 0o777, 'p/o1': 0o777, 'p/f1': 0o777,
        'p/f3': 0o777, 'p/w6': 0o777, 'p/c4': 0o755, 'p/s1': 0o777}
for p, mode in sorted(want.items()):
    got = drops.get(p, [])
    t.ok(len(got) == 1 and got[0][1] == mode,
         '%s: one setattr record of nobody with mode %o' % (p, mode),
         'got %r' % got)
for p in ('p/w5', 'p/w7', 'p/g1', 'p/o2', 'p/f2'):
    t.ok(p not in drops, '%s: no drop recorded' % p, 'got %r' % drops.get(p))
# The drop comes right before the act it belongs to.
for p, act in (('p/w1', 'write'), ('p/w3', 'write'), ('p/o1', 'open'),
               ('p/t1', None), ('p/f1', 'fallocate')):
    i = drops[p][0][0] if p in drops else None
    later = [r for r in recs[i + 1:] if path(r) == p] if i is not None else []
    if act is None:
        # truncate(2): the drop and the size are one setattr record
        ok = recs[i].get('size') == 1 if i is not None else False
        t.ok(ok, '%s: the drop and the truncation are one record' % p)
        continue
    t.ok(bool(later) and later[0]['type'] == act,
         '%s: the drop is recorded right before the %s' % (p, act),
         'next: %r' % (later[0]['type'] if later else None))
# chown by root: the drop is in the chown's own record; a chown(-1, -1)
# that drops nothing leaves no record beyond the chmod before it.
root = {}
for r in recs:
    if r['type'] == 'setattr' and r['actor']['uid'] == 0 and \
            path(r) in ('p/c1', 'p/c2') and 'mode' in r:
        root.setdefault(path(r), []).append((r['mode'], 'uid' in r))
t.ok(root.get('p/c2', [])[-1:] == [(0o777, True)],
     'chown 0:0 by root: the drop is in its record', 'got %r' % root)
t.ok(len(root.get('p/c1', [])) == 1,
     'chown(-1, -1) by root: no record beyond the chmod', 'got %r' % root)
EOF
tap_import <"$T/tap"
tap_finish
