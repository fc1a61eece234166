#!/bin/bash
# full.sh HOZEN - a store on a small filesystem (a 64 MiB ext4 image on a
# loop device, or a 64 MiB tmpfs if loop devices are not available),
# filled through the mount until the writer gets ENOSPC.  Then: the
# daemon unmounts, 'hozen verify' passes (or says exactly what is wrong),
# git fsck passes, nothing in the live tree is unrecorded, and the store,
# moved to a disk with room, mounts, recovers and verifies.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
fs_setup "$1"
cd "$T" || exit 2
M=$T/mnt
DISK=$T/disk
mkdir "$DISK"
kind=
if command -v mkfs.ext4 >/dev/null && truncate -s 64M "$T/img" &&
	mkfs.ext4 -q -F "$T/img" 2>/dev/null &&
	mount -o loop "$T/img" "$DISK" 2>/dev/null; then
	kind="ext4 on a loop device"
elif mount -t tmpfs -o size=64m tmpfs "$DISK" 2>/dev/null; then
	kind="tmpfs"
else
	echo "1..0 # SKIP neither a loop mount nor a tmpfs can be mounted"
	exit 0
fi
fs_loop "$DISK"
ok "a 64 MiB $kind"
S=$DISK/store

"$HOZEN" init "$S" >/dev/null
check "mount a store on it" fs_mount "$S" "$M"
printf 'evidence before the disk filled\n' >"$M/before.txt"
mkdir "$M/d" && cp /etc/services "$M/d/services" 2>/dev/null
check "small files first" cmp "$M/d/services" /etc/services

out=$(dd if=/dev/urandom of="$M/fill" bs=1M count=200 conv=fsync 2>&1)
ddrc=$?
check "dd fails when the disk is full" [ $ddrc -ne 0 ]
case $out in
*"No space left on device"*) ok "dd says 'No space left on device'" ;;
*) not_ok "dd says 'No space left on device'" "dd printed: $out" ;;
esac
# A 1 MiB write that failed may leave room for a few small ones: write
# small files until one fails, and it must fail with ENOSPC.
i=0
while [ $i -lt 4000 ]; do
	out=$(sh -c "head -c 4096 /dev/urandom >'$M/after$i'" 2>&1) || break
	i=$((i + 1))
done
check "a further small file fails with ENOSPC (after $i more)" \
	[ $i -lt 4000 ] && [[ $out == *"No space left"* ]]
check "the earlier files still read back" \
	[ "$(cat "$M/before.txt")" = "evidence before the disk filled" ]

check "unmount on a full disk (the daemon exits)" fs_umount "$M"
check "the mount is gone" bash -c "! mountpoint -q '$M'"
run verify "$S"
if [ "$rc" -eq 0 ]; then
	ok "hozen verify exits 0 on the full disk"
else
	not_ok "hozen verify exits 0 on the full disk" "exit $rc" \
		"$(cat "$T/out")" "$(head -c 1000 "$T/err")"
fi
run verify --allow-unsealed "$S"
check "hozen verify --allow-unsealed exits 0 (the chain is intact)" \
	[ "$rc" -eq 0 ]
p=$(git --git-dir="$S/git" fsck 2>&1)
check "git fsck passes" [ $? -eq 0 ]

python3 - "$S" >"$T/tap" <<'EOF'
import os, sys
sys.path.insert(0, os.environ['D'])
from check import Tap, records, rpath, sha
store = sys.argv[1]
t = Tap()
recs = records(store)
types = [r['type'] for r in recs]
print('# refused records with ENOSPC in the chain: %d' % sum(
    1 for r in recs if r['type'] == 'refused' and r.get('errno') == 28))
last = recs[-1]['type']
t.ok('unmount' in types and last == 'checkpoint',
     'the chain ends with the unmount record and a checkpoint (it ends '
     'with %s; unmount %s)' % (last, 'there' if 'unmount' in types
                                else 'missing'))
t.ok('commit' in types, 'a commit record (the versions made before the '
     'disk filled are committed, at the latest at unmount)')
# Every byte of the live tree's files is in a write record.
tree = os.path.join(store, 'tree')
made = {rpath(r) for r in recs if r['type'] in ('create', 'mkdir', 'mknod',
                                                'symlink', 'link')}
unrec = []
for root, dirs, files in os.walk(tree):
    for n in dirs + files:
        rel = os.path.relpath(os.path.join(root, n), tree).encode()
        if rel not in made:
            unrec.append(rel)
t.ok(not unrec, 'every entry of the live tree has a create/mkdir record',
     *unrec)
f = open(os.path.join(tree, 'fill'), 'rb').read()
cov = bytearray(len(f))
for r in recs:
    if r['type'] == 'write' and rpath(r) == b'fill':
        cov[r['offset']:r['offset'] + r['length']] = b'\1' * r['length']
stray = [i for i in range(0, len(f), 4096)
         if not cov[i] and any(f[i:i + 4096])]
t.ok(not stray, 'fill: every non-zero byte of the live file (%d bytes) is '
     'in a write record (%d pages are not)' % (len(f), len(stray)),
     *(['pages at %d..%d' % (stray[0], stray[-1])] if stray else []))
EOF
tap_import <"$T/tap"

# The responder moves the store to a disk with room.
cp -a "$S" "$T/moved"
check "the moved store mounts (recovery)" fs_mount "$T/moved" "$M"
"$HOZEN" log --json "$T/moved" | python3 -c '
import json, sys
m = [json.loads(l) for l in sys.stdin]
m = [r for r in m if r["type"] == "mount"][-1]
print("# recovery: versioned %s restaged %s torn %s forced %s" % (
    m.get("versioned"), m.get("restaged"), m.get("torn"), m.get("forced")))'
check "its files read back" \
	[ "$(cat "$M/before.txt")" = "evidence before the disk filled" ]
check "unmount the moved store" fs_umount "$M"
expect_rc "hozen verify of the moved store exits 0" 0 verify "$T/moved"
pycheck git "$T/moved"
pycheck versions "$T/moved"
tap_finish
