#!/bin/bash
# perms.sh HOZEN [SRCDIR] - nothing in a store can be listed, read or
# changed by another user (FORMAT.md section 1).
#
# As the unprivileged user nobody (setpriv --reuid=65534 --regid=65534
# --clear-groups): ls, cat, touch, rm and mv of every file and directory
# of a fresh store and of a used one (notes, checkpoints, a case with a
# document, a recovered torn line) fail, and creating a file in any of
# its directories fails; nothing changes.  Then the modes themselves:
# no group or other bit on anything hozen wrote, so the store stays
# closed even where its directory is opened up; and 'hozen verify'
# reports a store opened to others.  Needs root; skipped otherwise.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
tap_setup "$1"
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null ||
	! setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null; then
	echo "1..0 # SKIP needs root and setpriv"
	exit 0
fi
# Only the store's own modes may keep nobody out, not $T's.
chmod 755 "$T"
cd "$T" || exit 2
SEG=chain/00000000000000000000.log

# as_nobody CMD...: run CMD as nobody, quietly; its exit code.
as_nobody()
{
	setpriv --reuid=65534 --regid=65534 --clear-groups "$@" \
		>/dev/null 2>&1
}

h() { "$HOZEN" "$@" >/dev/null; }

h init fresh
check "a fresh store" [ $? -eq 0 ]
echo "the order, page 1" >order.txt
h init used &&
	h note used "first responder on site" &&
	h case used set issuer.document order.txt &&
	h case used set incident.reason "不審なログイン" &&
	h checkpoint used &&
	h note used "a note to tear" &&
	truncate -s -1 used/$SEG &&
	h recover used &&
	h note used "after the recovery" &&
	h checkpoint used
check "a used store: notes, case, document, torn line, checkpoints" \
	[ $? -eq 0 ]
check "the used store has a document and a recovery copy" \
	test -d used/case-documents -a -d used/chain/torn
expect_rc "the used store verifies" 0 verify used

# closed STORE: every way in fails for nobody, and nothing changes.
closed()
{
	local store=$1 p bad=() n=0
	snapshot "$store" >before
	while IFS= read -r p; do
		n=$((n + 1))
		as_nobody ls "$p" && bad+=("ls $p")
		# That the store exists shows in its parent; nothing in it.
		[ "$p" = "$store" ] || {
			as_nobody stat "$p" && bad+=("stat $p")
		}
		as_nobody touch "$p" && bad+=("touch $p")
		as_nobody mv "$p" "$p.moved" && bad+=("mv $p")
		if [ -d "$p" ]; then
			as_nobody ls -a "$p/." && bad+=("ls -a $p")
			as_nobody touch "$p/planted" && bad+=("touch $p/planted")
			as_nobody mkdir "$p/planted.d" && bad+=("mkdir $p/planted.d")
			[ "$p" = "$store" ] || {
				as_nobody rmdir "$p" && bad+=("rmdir $p")
			}
		else
			as_nobody cat "$p" && bad+=("cat $p")
			as_nobody sh -c ": >>'$p'" && bad+=("append to $p")
			as_nobody rm -f "$p" && [ ! -e "$p" ] && bad+=("rm $p")
		fi
	done < <(find "$store" | LC_ALL=C sort)
	snapshot "$store" >after
	if [ "${#bad[@]}" -eq 0 ]; then
		ok "$store: nobody can list, read or change any of its $n paths"
	else
		not_ok "$store: nobody can list, read or change any of its $n paths" \
			"${bad[@]:0:20}"
	fi
	if cmp -s before after; then
		ok "$store: nothing changed"
	else
		not_ok "$store: nothing changed" "$(diff before after | head)"
	fi
	# hozen itself as nobody cannot get in either.
	as_nobody "$HOZEN" log "$store"
	check "$store: hozen log as nobody fails" [ $? -eq 2 ]
	as_nobody "$HOZEN" note "$store" "from nobody"
	check "$store: hozen note as nobody fails" [ $? -eq 2 ]
	cmp -s before <(snapshot "$store")
	check "$store: still nothing changed" [ $? -eq 0 ]
}

# no_loose STORE: no group or other bit on anything hozen wrote (tree/
# keeps its users' modes).
no_loose()
{
	local store=$1 loose
	loose=$(find "$store" -path "$store/tree" -prune -o ! -type l \
		-perm /077 -printf '%m %p\n' | head -20)
	if [ -z "$loose" ]; then
		ok "$store: no group or other bit on anything outside tree/"
	else
		not_ok "$store: no group or other bit on anything outside tree/" \
			"$loose"
	fi
}

closed fresh
closed used
no_loose fresh
no_loose used
check "fresh: the store directory is 0700" \
	[ "$(stat -c %a fresh)" = 700 ]
check "used: the store directory is 0700" [ "$(stat -c %a used)" = 700 ]

# Opened up by hand: still nothing inside for nobody, and verify says so.
cp -a used opened
chmod 755 opened
snapshot opened >before
for p in opened/HOZEN opened/case.json opened/$SEG opened/keys/signing.key \
	opened/case-documents/*; do
	as_nobody cat "$p"
	check "opened store: nobody cannot read ${p#opened/}" [ $? -ne 0 ]
done
as_nobody ls opened/chain
check "opened store: nobody cannot list chain/" [ $? -ne 0 ]
as_nobody touch opened/planted
check "opened store: nobody cannot create a file in it" [ $? -ne 0 ]
cmp -s before <(snapshot opened)
check "opened store: nothing changed" [ $? -eq 0 ]
expect_rc "opened store: verify says INVALID" 1 verify opened
check "opened store: verify names the store directory's mode" \
	grep -q "the store directory has mode 0755" "$T/out"
chmod 700 opened
chmod o+w opened/checkpoints
expect_rc "a directory writable by others: verify says INVALID" 1 \
	verify opened
check "a directory writable by others: verify names it" \
	grep -q "where: *checkpoints$" "$T/out"

tap_finish
