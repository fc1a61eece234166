#!/usr/bin/env bash
# virt.sh HOZEN - /.hozen/ in the mount: the store's status, the chain
# head and the latest checkpoint; every commit's tree under commits/ and
# every version of every file under versions/PATH@N, read straight from
# git; all read-only, nothing recorded unless --log-reads, and the same
# after a remount.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
fs_setup "$1"
cd "$T" || exit 2
S=$T/store
M=$T/mnt
V=$M/.hozen/versions
C=$M/.hozen/commits
GIT=(git --git-dir="$S/git")

# wait_until COMMAND...: until it succeeds (10 s): versions are recorded
# when the kernel releases a closed file, a moment after close(2).
wait_until()
{
	local i
	for ((i = 0; i < 100; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	echo "# still not true after 10 s: $*" >&2
	return 1
}

# wait_for PATH: until it exists.
wait_for()
{
	wait_until [ -e "$1" ]
}

# commit_now: fsync of the mount's root commits what is staged.
commit_now()
{
	python3 -c "
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
os.fsync(fd)
os.close(fd)" "$M"
}

# expect_erofs NAME COMMAND...: COMMAND fails with EROFS.
expect_erofs()
{
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		not_ok "$name" "it succeeded: $*"
	else
		case $out in
		*"Read-only file system"*) ok "$name" ;;
		*) not_ok "$name" "$out" ;;
		esac
	fi
}

"$HOZEN" init "$S" >/dev/null
check "mount" fs_mount "$S" "$M" --commit-interval 600000
printf 'evidence\n' >"$M/a.txt"
check "/.hozen/ is a directory" [ -d "$M/.hozen" ]
check "it lists status, head, checkpoint, commits and versions" \
	[ "$(ls "$M/.hozen" | tr '\n' ' ')" = \
		"checkpoint commits head status versions " ]
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

# ------------------------------------------------------------ versions
check "no commit yet: commits/ lists nothing" \
	[ -z "$(ls -A "$C")" ] && [ ! -e "$C/latest" ]
mkdir "$M/dir"
printf 'first version\n' >"$T/v1"
printf 'the second, longer version\n' >"$T/v2"
printf 'third\n' >"$T/v3"
for i in 1 2 3; do
	cp "$T/v$i" "$M/dir/report.txt"
	wait_for "$V/dir/report.txt@$i"
done
for i in 1 2 3; do
	check "versions/dir/report.txt@$i holds what was written $i." \
		cmp "$T/v$i" "$V/dir/report.txt@$i"
done
check "stat gives each version's real size" \
	[ "$(stat -c %s "$V/dir/report.txt@2")" = "$(stat -c %s "$T/v2")" ]
check "versions are read-only files (0444)" \
	[ "$(stat -c %a "$V/dir/report.txt@1")" = 444 ]
check "there is no version 4, 0 or 01" \
	[ ! -e "$V/dir/report.txt@4" ] && [ ! -e "$V/dir/report.txt@0" ] &&
	[ ! -e "$V/dir/report.txt@01" ] && [ ! -e "$V/dir/report.txt" ]
check "versions/dir lists the three" \
	[ "$(ls "$V/dir" | tr '\n' ' ')" = \
		"report.txt@1 report.txt@2 report.txt@3 " ]
check "versions/ mirrors the directories" [ -d "$V/dir" ]
check "a.txt@1 is in versions/ too" cmp "$M/a.txt" "$V/a.txt@1"

head -c $((1536 * 1024 + 7)) /dev/urandom >"$T/big.bin"
cp "$T/big.bin" "$M/big.bin"
wait_for "$V/big.bin@1"
want=$(sha256sum <"$T/big.bin" | cut -c1-64)
check "a file over 1 MiB (Git LFS) reads back with its SHA-256" \
	[ "$(sha256sum <"$V/big.bin@1" | cut -c1-64)" = "$want" ]
check "and stat gives its content's size, not the pointer's" \
	[ "$(stat -c %s "$V/big.bin@1")" = $((1536 * 1024 + 7)) ]

printf '#!/bin/sh\necho hi\n' >"$T/run.sh"
chmod 755 "$T/run.sh"
cp "$T/run.sh" "$M/run.sh"
ln -s dir/report.txt "$M/link"
name=$'caf\xe9.txt'
printf 'latin-1 name\n' >"$M/$name"
wait_for "$V/run.sh@1"
wait_for "$V/$name@1"
check "a name that is not UTF-8 has its version" \
	cmp "$M/$name" "$V/$name@1"
mkdir "$M/odd@1"
printf 'inside\n' >"$M/odd@1/in.txt"
wait_for "$V/odd@1/in.txt@1"
check "a directory named like a version is a directory" [ -d "$V/odd@1" ]
printf 'odd file\n' >"$M/odd"
wait_until [ -f "$V/odd@1" ]
check "version 1 of a file 'odd' then takes the name odd@1" \
	[ -f "$V/odd@1" ] && [ "$(cat "$V/odd@1")" = "odd file" ]
NB="setpriv --reuid=65534 --regid=65534 --clear-groups"
check "another user cannot read the history (git keeps no owners)" \
	bash -c "! $NB ls '$V' 2>/dev/null && ! $NB cat '$V/a.txt@1' \
		2>/dev/null && ! $NB ls '$C' 2>/dev/null"
check "... but status as before" \
	bash -c "$NB cat '$M/.hozen/status' >/dev/null"
check "commit" commit_now

# ------------------------------------------------------------- commits
head=$("${GIT[@]}" rev-parse refs/heads/main)
check "commits/latest is a symlink to the newest commit" \
	[ -L "$C/latest" ] && [ "$(readlink "$C/latest")" = "$head" ]
check "commits/ lists git rev-list --first-parent, newest first" \
	[ "$(ls -1U "$C" | grep -vx latest)" = \
		"$("${GIT[@]}" rev-list --first-parent refs/heads/main)" ]
rm -rf "$T/arch"
mkdir "$T/arch"
"${GIT[@]}" archive refs/heads/main | tar -x -C "$T/arch"
check "latest holds the files git archive gives (big.bin aside)" \
	diff -r -x big.bin "$T/arch" "$C/latest/"
check "latest lists the names git has" \
	[ "$(cd "$C/latest/" && find . | sort)" = \
		"$(cd "$T/arch" && find . | sort)" ]
for f in a.txt dir/report.txt run.sh; do
	check "git show main:$f equals commits/latest/$f" \
		cmp <("${GIT[@]}" show "refs/heads/main:$f") "$C/latest/$f"
done
oid=$("${GIT[@]}" show refs/heads/main:big.bin | sed -n 's/^oid sha256://p')
check "big.bin is an LFS pointer in git; the commit shows its content" \
	[ "$oid" = "$want" ] &&
	[ "$(sha256sum <"$C/latest/big.bin" | cut -c1-64)" = "$want" ]
check "a symlink of a commit is a symlink to its target" \
	[ -L "$C/latest/link" ] &&
	[ "$(readlink "$C/latest/link")" = dir/report.txt ]
check "... which resolves inside the commit" \
	cmp "$T/v3" "$C/latest/link"
check "files keep git's mode: 0555 for 100755, 0444 otherwise" \
	[ "$(stat -c %a "$C/latest/run.sh")" = 555 ] &&
	[ "$(stat -c %a "$C/latest/a.txt")" = 444 ] &&
	[ "$(stat -c %a "$V/run.sh@1")" = 444 ]
check "a commit's directories are directories" [ -d "$C/latest/dir" ]
check "a name git lacks is not there" [ ! -e "$C/latest/nothing" ]
check "an id that is not a commit of main is not there" \
	[ ! -e "$C/$("${GIT[@]}" rev-parse 'refs/heads/main^{tree}')" ] &&
	[ ! -e "$C/0000000000000000000000000000000000000000" ]
first=$head

# A new version makes a new commit; the old one does not change.
printf 'fourth\n' >"$T/v4"
cp "$T/v4" "$M/dir/report.txt"
wait_for "$V/dir/report.txt@4"
check "commit again" commit_now
head=$("${GIT[@]}" rev-parse refs/heads/main)
check "a new commit appears and latest follows it" \
	[ "$head" != "$first" ] && [ "$(readlink "$C/latest")" = "$head" ] &&
	[ -d "$C/$head" ]
check "commits/ still lists the first-parent history" \
	[ "$(ls -1U "$C" | grep -vx latest)" = \
		"$("${GIT[@]}" rev-list --first-parent refs/heads/main)" ]
check "the earlier commit still holds version 3" \
	cmp "$T/v3" "$C/$first/dir/report.txt"
check "the new one holds version 4" cmp "$T/v4" "$C/latest/dir/report.txt"
check "find walks all of /.hozen/ without an error" \
	bash -c "find '$M/.hozen' -noleaf >/dev/null"
# Let the kernel forget what it looked up, then look again.
sync
echo 2 >/proc/sys/vm/drop_caches 2>/dev/null
check "after the kernel forgot them, versions read again" \
	cmp "$T/v2" "$V/dir/report.txt@2"

# Versions made while other processes list and read versions/.
for w in 1 2 3 4; do
	(for i in $(seq 1 15); do
		printf 'w%d v%d\n' "$w" "$i" >"$M/dir/par$w.txt"
	done) &
done
for r in 1 2 3 4; do
	(for i in $(seq 1 20); do
		ls -R "$V" >/dev/null
		cat "$V"/dir/par*.txt@* >/dev/null 2>&1
	done) &
done
wait
check "versions made while others read: each file's in write order" \
	python3 -c '
import os, re, sys, time
d = sys.argv[1]

def check():
    for w in range(1, 5):
        names = [n for n in os.listdir(d) if n.startswith("par%d.txt@" % w)]
        nums = sorted(int(n.split("@")[1]) for n in names)
        if not nums or nums != list(range(1, len(nums) + 1)):
            return "par%d: versions %s" % (w, nums)
        seen = []
        for n in nums:
            t = open("%s/par%d.txt@%d" % (d, w, n)).read()
            m = re.fullmatch("w%d v([0-9]+)\n" % w, t)
            if not m:
                return "par%d.txt@%d holds %r" % (w, n, t)
            seen.append(int(m.group(1)))
        if seen != sorted(set(seen)) or seen[-1] != 15:
            return "par%d: contents %s" % (w, seen)
    return None

# The last close is versioned when the kernel releases the file.
for i in range(100):
    why = check()
    if not why:
        sys.exit(0)
    time.sleep(0.1)
sys.exit(why)' "$V/dir"

# ---------------------------------------------------------- read-only
expect_erofs "writing a version fails" \
	sh -c "echo x >'$V/dir/report.txt@1'"
expect_erofs "creating under versions/ fails" touch "$V/dir/new"
expect_erofs "mkdir under versions/ fails" mkdir "$V/newdir"
expect_erofs "removing a version fails" rm -f "$V/dir/report.txt@1"
expect_erofs "renaming a version fails" \
	mv "$V/dir/report.txt@1" "$V/dir/x"
expect_erofs "moving a version out fails" \
	mv "$V/dir/report.txt@1" "$M/moved"
expect_erofs "chmod of a version fails" chmod 644 "$V/dir/report.txt@1"
expect_erofs "touch of a version fails" touch "$V/dir/report.txt@1"
expect_erofs "an xattr on a version fails" python3 -c "
import os, sys
os.setxattr(sys.argv[1], 'user.x', b'1')" "$V/dir/report.txt@1"
expect_erofs "a hard link to a version fails" \
	ln "$V/dir/report.txt@1" "$M/hard"
expect_erofs "writing into a commit fails" \
	sh -c "echo x >'$C/latest/a.txt'"
expect_erofs "removing /.hozen itself fails" rmdir "$M/.hozen"
check "the version is unchanged" cmp "$T/v1" "$V/dir/report.txt@1"

stat -c '%n %s %y %i' "$V/dir/report.txt@"[1-4] "$V/big.bin@1" \
	"$V/$name@1" >"$T/stat.before"
check "unmount" fs_umount "$M"
expect_rc "hozen verify exits 0" 0 verify "$S"
"$HOZEN" log --json "$S" >"$T/log1.json"
check "nothing done in /.hozen/ was recorded" \
	bash -c "! grep -F '\"path\":\".hozen' '$T/log1.json'"

# The head seen in the mount is a prefix of the sealed chain.
line=$("$HOZEN" log --json --from $((size - 1)) --to $((size - 1)) "$S" |
	head -c -1 | sha256sum | cut -c1-64)
check "the head's hash is the hash of record $((size - 1))" \
	[ "$line" = "$hash" ]
ck=$(sed -n 2p "$T/pinned.ckpt")
check "the pinned checkpoint is still in the store" \
	[ -f "$S/checkpoints/$(printf '%020d' "$ck").ckpt" ]

# ------------------------------------------------------------- remount
check "mount again, with --log-reads" fs_mount "$S" "$M" --log-reads
stat -c '%n %s %y %i' "$V/dir/report.txt@"[1-4] "$V/big.bin@1" \
	"$V/$name@1" >"$T/stat.after"
check "after a remount the same versions, sizes, times and inodes" \
	diff "$T/stat.before" "$T/stat.after"
for i in 1 2 3 4; do
	check "report.txt@$i read again from the chain's index" \
		cmp "$T/v$i" "$V/dir/report.txt@$i"
done
check "the LFS version too" \
	[ "$(sha256sum <"$V/big.bin@1" | cut -c1-64)" = "$want" ]
check "and the name that is not UTF-8" [ -e "$V/$name@1" ]
check "each version's mtime is its record's time" python3 -c '
import json, os, sys, datetime
path, store = sys.argv[1], sys.argv[2]
n = 0
for line in open(sys.argv[3]):
    r = json.loads(line)
    if r["type"] != "version" or r.get("path") != "dir/report.txt":
        continue
    n += 1
    t = r["time"]
    sec = datetime.datetime.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")
    sec = int(sec.replace(tzinfo=datetime.timezone.utc).timestamp())
    ns = sec * 10**9 + int(t[20:-1].ljust(9, "0"))
    got = os.stat("%s@%d" % (path, n)).st_mtime_ns
    if got != ns:
        sys.exit("version %d: mtime %d, record %d" % (n, got, ns))
sys.exit(0 if n == 4 else "%d versions" % n)' "$V/dir/report.txt" "$S" \
	"$T/log1.json"
blob2=$(python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["type"] == "version" and r.get("path") == "dir/report.txt":
        n += 1
        if n == 2:
            print(r["blob"])' "$T/log1.json")
cat "$V/dir/report.txt@2" >/dev/null
cat "$C/$first/dir/report.txt" >/dev/null
cat "$M/.hozen/status" >/dev/null
check "unmount" fs_umount "$M"
"$HOZEN" log --json "$S" >"$T/log2.json"
check "--log-reads: reading a version left an open record naming it" \
	python3 -c '
import json, sys
want = {".hozen/versions/dir/report.txt@2": sys.argv[2],
        ".hozen/commits/%s/dir/report.txt" % sys.argv[3]: None}
seen = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["type"] == "open" and r.get("path", "").startswith(".hozen/"):
        seen[r["path"]] = r
for p, blob in want.items():
    r = seen.get(p)
    if not r or r["actor"]["comm"] != "cat" or r["created"]:
        sys.exit("no open record of %s by cat: %s" % (p, sorted(seen)))
    if blob and r.get("blob") != blob:
        sys.exit("%s: blob %s, not %s" % (p, r.get("blob"), blob))
if ".hozen/status" in seen:
    sys.exit("status was recorded")' "$T/log2.json" "$blob2" "$first"
expect_rc "hozen verify exits 0 after the reads" 0 verify "$S"

# --------------------------------------------------- a write blocker
check "mount --read-only" fs_mount "$S" "$M" --read-only
check "versions read on a read-only mount" \
	cmp "$T/v2" "$V/dir/report.txt@2"
expect_erofs "creating under versions/ fails there too" touch "$V/dir/new"
expect_erofs "removing /.hozen/status fails" rm -f "$M/.hozen/status"
expect_erofs "creating in the tree fails" touch "$M/new.txt"
check "unmount" fs_umount "$M"
"$HOZEN" log --json "$S" | grep '"type":"refused"' >"$T/refused.json"
check "the tree's refusal is recorded" grep -qF '"path":"new.txt"' \
	"$T/refused.json"
check "refusals in /.hozen/ are not, even on a read-only mount" \
	bash -c "! grep -qF '.hozen' '$T/refused.json'"
tap_finish
