#!/usr/bin/env bash
# virt.sh HOZEN - /.hozen/ in the mount: the store's status, the chain
# head and the latest checkpoint, read-only, agreeing with the store.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
fs_setup "$1"
cd "$T" || exit 2
S=$T/store
M=$T/mnt

"$HOZEN" init "$S" >/dev/null
check "mount" fs_mount "$S" "$M"
printf 'evidence\n' >"$M/a.txt"
check "/.hozen/ is a directory" [ -d "$M/.hozen" ]
check "it lists status, head and checkpoint" \
	[ "$(ls "$M/.hozen" | tr '\n' ' ')" = "checkpoint head status " ]
check "it is not listed in the root" \
	bash -c "! ls -a '$M' | grep -qx .hozen"
grep -q "^policy: *preserve" "$M/.hozen/status"
check "status names the policy" [ $? -eq 0 ]
grep -q "^preservation: *in force" "$M/.hozen/status"
check "status says the order is in force" [ $? -eq 0 ]
read -r size hash <"$M/.hozen/head"
check "head is 'SIZE HASH' ($size)" \
	[ "$size" -gt 3 ] && [ ${#hash} -eq 64 ]
cp "$M/.hozen/checkpoint" "$T/pinned.ckpt"
check "checkpoint is a signed note of this store" \
	grep -q "^— hozen/" "$T/pinned.ckpt"
out=$(sh -c "echo x >'$M/.hozen/status'" 2>&1)
case $out in *Read-only*) ok "writing there fails: $out" ;;
*) not_ok "writing there fails" "$out" ;; esac
out=$(touch "$M/.hozen/new" 2>&1)
case $out in *Read-only*) ok "creating there fails" ;;
*) not_ok "creating there fails" "$out" ;; esac
check "fsync of /.hozen/ succeeds (the daemon stays up)" python3 -c "
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
os.fsync(fd)
os.close(fd)" "$M/.hozen"
check "the mount still answers" [ -d "$M/.hozen" ]
check "unmount" fs_umount "$M"
expect_rc "hozen verify exits 0" 0 verify "$S"

# The head seen in the mount is a prefix of the sealed chain.
line=$("$HOZEN" log --json --from $((size - 1)) --to $((size - 1)) "$S" |
	head -c -1 | sha256sum | cut -c1-64)
check "the head's hash is the hash of record $((size - 1))" \
	[ "$line" = "$hash" ]
ck=$(sed -n 2p "$T/pinned.ckpt")
check "the pinned checkpoint is still in the store" \
	[ -f "$S/checkpoints/$(printf '%020d' "$ck").ckpt" ]
tap_finish
