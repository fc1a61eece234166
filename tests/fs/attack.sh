#!/bin/bash
# attack.sh HOZEN - what an attack on the finished mount and store found,
# each reduced to a few commands:
#  - a process that holds the lock of STORE/chain made verify take the
#    store for mounted and skip tree/: a changed file was VALID;
#  - a replaced keys/signing.key was VALID, and the next mount signed a
#    checkpoint with it before it noticed;
#  - under --worm, an fsync through a read-only handle (coreutils' sync
#    FILE) neither versioned nor locked the file;
#  - a missing seal was INVALID to verify but mounted without --force;
#  - another user's ownership of the store's files, stray files at the
#    store's top, set-id bits, a .promisor pack, strays among git's
#    objects: VALID;
#  - a daemon killed while libgit2 wrote a pack left pack_git2_XXXX in
#    git/objects/pack, and the next mount refused the store.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
fs_setup "$1"
cd "$T" || exit 2
S=$T/store
M=$T/mnt

# verdict NAME STORE WHERE: verify exits 1 and names WHERE.
verdict()
{
	"$HOZEN" verify --json "$2" >"$T/v.json" 2>"$T/v.err"
	local rc=$?
	python3 - "$T/v.json" "$3" <<'EOF'
import json, sys
rep = json.load(open(sys.argv[1]))
where = [f.get('where', '') for f in rep.get('findings', [])]
sys.exit(0 if any(w.startswith(sys.argv[2]) for w in where) else 1)
EOF
	local named=$?
	if [ $rc -eq 1 ] && [ $named -eq 0 ]; then
		ok "$1: INVALID, names $3"
	else
		not_ok "$1: INVALID, names $3" "exit $rc" \
			"$(head -c 1500 "$T/v.json")"
	fi
}

"$HOZEN" init "$S" >/dev/null
check "mount" fs_mount "$S" "$M"
echo "the original" >"$M/a.txt"
mkdir "$M/d" && echo b >"$M/d/b"
check "unmount" fs_umount "$M"
expect_rc "verify the untouched store" 0 verify "$S"
cp -a "$S" "$T/pristine"

fresh()
{
	rm -rf "$S"
	cp -a "$T/pristine" "$S"
}

# ------------------------------------------------ the lock of chain/
fresh
echo "TAMPERED" >"$S/tree/a.txt"
flock -x "$S/chain" sleep 30 &
lock=$!
sleep 0.3
verdict "tree/ changed while another process holds chain/'s lock" "$S" \
	tree/a.txt
kill "$lock" 2>/dev/null
wait "$lock" 2>/dev/null

# ------------------------------------------------------- the signing key
fresh
rm -f "$S/keys/signing.key"
openssl genpkey -algorithm ed25519 -out "$S/keys/signing.key" 2>/dev/null
chmod 400 "$S/keys/signing.key"
verdict "a replaced signing.key" "$S" keys/signing.key
before=$(find "$S/checkpoints" -type f | wc -l)
"$HOZEN" mount "$S" "$M" >"$T/mount.out" 2>&1
check "mount refuses a replaced signing.key (exit $?)" [ $? -ne 0 ]
mountpoint -q "$M" && fusermount3 -u "$M"
check "and signs nothing with it" \
	[ "$(find "$S/checkpoints" -type f | wc -l)" -eq "$before" ]
"$HOZEN" checkpoint "$S" >/dev/null 2>&1
check "hozen checkpoint refuses it too" [ $? -ne 0 ]

# ----------------------------------------------------------------- seal
fresh
rm -f "$S/seal"
verdict "the seal removed" "$S" seal
"$HOZEN" mount "$S" "$M" >"$T/mount.out" 2>&1
rc=$?
mountpoint -q "$M" && fusermount3 -u "$M"
check "mount refuses a store without its seal (exit $rc)" [ $rc -ne 0 ]

# ------------------------------------------- owners, strays, set-id bits
fresh
chown -R 65534 "$S/chain"
verdict "chain/ given to another user" "$S" chain
fresh
chmod u+s "$S/HOZEN"
verdict "a set-uid bit on HOZEN" "$S" HOZEN
fresh
echo x >"$S/extra"
echo x >"$S/keys/extra"
echo x >"$S/checkpoints/junk"
verdict "a stray file at the top" "$S" extra
verdict "a stray file in keys/" "$S" keys/extra
verdict "a stray file in checkpoints/" "$S" checkpoints/junk
fresh
chown -R 65534 "$S/chain"
chmod u+s "$S/HOZEN"
check "mount repairs owners and set-id bits" fs_mount "$S" "$M"
check "unmount" fs_umount "$M"
expect_rc "verify after the repair" 0 verify "$S"

# ---------------------------------------------- git's odd files
fresh
pack=$(find "$S/git/objects/pack" -name '*.pack' | head -n 1)
check "the store has a pack" [ -n "$pack" ]
touch "${pack%.pack}.promisor"
verdict "a .promisor beside a pack" "$S" git/objects/pack/
fresh
mkdir -p "$S/git/objects/ab" "$S/git/lfs/tmp"
echo x >"$S/git/objects/ab/stray"
verdict "a stray file among loose objects" "$S" git/objects/ab/stray
verdict "a stray directory in git/lfs/" "$S" git/lfs/tmp
# What a daemon killed while libgit2 wrote a pack leaves: git reads none
# of it, so it is no problem; the next mount removes it.
fresh
head -c 4096 /dev/urandom >"$S/git/objects/pack/pack_git2_4b5201da652b6e08"
expect_rc "a killed writer's pack_git2_ file: VALID" 0 verify "$S"
check "mount beside it" fs_mount "$S" "$M"
check "unmount" fs_umount "$M"
check "the mount removed it" \
	[ ! -e "$S/git/objects/pack/pack_git2_4b5201da652b6e08" ]
echo x >"$S/git/objects/pack/pack_git2_x"
verdict "a name only like libgit2's" "$S" git/objects/pack/pack_git2_x

# ------------------------------------- WORM: fsync of a read-only handle
fresh
check "mount --worm" fs_mount "$S" "$M" --worm
out=$(
	cd "$M" || exit 2
	exec 3>f
	echo first >&3
	sync f # fsync through a read-only handle: the first version
	if echo second >&3 2>/dev/null; then
		echo "a write after the fsync succeeded"
	fi
	exec 3>&-
)
check "under --worm, sync FILE (a read-only fsync) locks it ($out)" \
	[ -z "$out" ]
check "the file holds what it had at the fsync" \
	[ "$(cat "$M/f")" = first ]
check "unmount" fs_umount "$M"
expect_rc "verify" 0 verify "$S"

tap_finish
