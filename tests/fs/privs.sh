#!/bin/bash
# privs.sh HOZEN - setuid and setgid go where a local filesystem drops
# them, and each drop is recorded.  The mount negotiates
# FUSE_HANDLE_KILLPRIV_V2 (fs/wire.c): the kernel then stops asking for
# security.capability before every write and leaves the drop to hozen.
# A process without CAP_FSETID that writes, truncates (truncate(2),
# ftruncate(2)), opens with O_TRUNC or fallocates drops setuid, and
# setgid where group execute is set; root keeps both; a setgid file
# without group execute keeps it.  Each drop is a setattr record of the
# writer, before the record of its write, and a stat at once shows it.
# security.capability is still removed by a write (the kernel does it,
# through removexattr, recorded), and xattrs stay readable.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
fs_setup "$1"
cd "$T" || exit 2
S=$T/store
M=$T/mnt
U=(setpriv --reuid=65534 --regid=65534 --clear-groups)

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
	chmod "$mode" "$F"
	if [ "$who" = nobody ]; then
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
expect_mode "nobody writes a 2767 file (setgid, no group execute)" 2767 \
	"$(mode_after w4 2767 nobody "$w")"
expect_mode "root writes a 6777 file" 6777 "$(mode_after w5 6777 root "$w")"
expect_mode "nobody truncates a 6777 file (truncate -s)" 777 \
	"$(mode_after t1 6777 nobody 'truncate -s 1 "$F"')"
expect_mode "nobody ftruncates a 6777 file" 777 \
	"$(mode_after t2 6777 nobody \
		'python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_WRONLY); os.ftruncate(fd, 2)" "$F"')"
expect_mode "nobody opens a 6777 file with O_TRUNC" 777 \
	"$(mode_after o1 6777 nobody ': >"$F"')"
expect_mode "root opens a 6777 file with O_TRUNC" 6777 \
	"$(mode_after o2 6777 root ': >"$F"')"
expect_mode "nobody fallocates in a 6777 file" 777 \
	"$(mode_after f1 6777 nobody 'fallocate -l 100 "$F"')"
expect_mode "root fallocates in a 6777 file" 6777 \
	"$(mode_after f2 6777 root 'fallocate -l 100 "$F"')"
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
want = {'p/w1': 1, 'p/w2': 1, 'p/w3': 1, 'p/t1': 1, 'p/t2': 1, 'p/o1': 1,
        'p/f1': 1, 'p/w6': 1}
for p, n in sorted(want.items()):
    got = drops.get(p, [])
    t.ok(len(got) == n and all(m == 0o777 for _, m in got),
         '%s: %d setattr record(s) of nobody with mode 0777' % (p, n),
         'got %r' % got)
for p in ('p/w4', 'p/w5', 'p/o2', 'p/f2'):
    t.ok(p not in drops, '%s: no drop recorded' % p, 'got %r' % drops.get(p))
for p in ('p/w1', 'p/w3'):
    i = drops[p][0][0] if p in drops else None
    later = [r for r in recs[i + 1:] if path(r) == p] if i is not None else []
    t.ok(bool(later) and later[0]['type'] == 'write',
         '%s: the drop is recorded right before the write' % p,
         'next: %r' % (later[0]['type'] if later else None))
EOF
tap_import <"$T/tap"
tap_finish
