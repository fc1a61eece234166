#!/usr/bin/env bash
# order.sh HOZEN - the preservation order drives the filesystem's policy
# (issue: the case and its order, duration enforcement).  While the order
# is in force (a draft, an active or an ended but unreleased order) the
# policy holds: with --worm a closed file cannot be removed or changed,
# and with the default policy its content is versioned before a removal.
# A release before the end is refused; after a release (the order ended,
# or was revoked) the policy is lifted: the same operations are allowed
# and recorded, without preserving first.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
fs_setup "$1"
cd "$T" || exit 2
S=$T/store
M=$T/mnt

quiet() { "$@" >/dev/null; }
"$HOZEN" init "$S" >/dev/null
check "the order names its issuer" quiet "$HOZEN" case "$S" set \
	issuer.authority "東京地方検察庁"
check "it ends in a year" quiet "$HOZEN" case "$S" set order.end \
	"$(date -d '+1 year' +%Y-%m-%dT%H:%M:%S+09:00)"

check "mount --worm while the order is in force" fs_mount "$S" "$M" --worm
printf 'evidence\n' >"$M/kept.txt"
out=$(rm "$M/kept.txt" 2>&1)
check "in force: removing a closed file is refused" \
	[ -e "$M/kept.txt" ]
[[ $out == *"Operation not permitted"* ]]
check "with EPERM ($out)" [ $? -eq 0 ]
out=$(sh -c "echo more >>'$M/kept.txt'" 2>&1)
check "in force: appending to it is refused" \
	[ "$(cat "$M/kept.txt")" = evidence ]
check "unmount" fs_umount "$M"

run release "$S"
check "release before the end is refused (exit $rc)" [ "$rc" -ne 0 ]
grep -q "before" "$T/err"
check "and says why: $(head -c 200 "$T/err")" [ $? -eq 0 ]

run release --revoked-by "東京地方検察庁" --reason "order revoked" "$S"
check "release with the revoking authority (exit $rc)" [ "$rc" -eq 0 ]

check "mount --worm after the release" fs_mount "$S" "$M" --worm
check "released: removing the file is allowed" rm "$M/kept.txt"
check "released: it is gone from the live view" [ ! -e "$M/kept.txt" ]
check "unmount" fs_umount "$M"

expect_rc "hozen verify exits 0" 0 verify "$S"

python3 - "$S" >"$T/tap" <<'PY'
import os, sys
sys.path.insert(0, os.environ['D'])
from check import Tap, records
t = Tap()
recs = records(sys.argv[1])
mounts = [r for r in recs if r['type'] == 'mount']
t.ok(len(mounts) == 2 and mounts[0]['preservation']['in_force'] and
     not mounts[1]['preservation']['in_force'],
     'the mount records say the order was in force, then lifted')
refused = [r for r in recs if r['type'] == 'refused' and r.get('errno') == 1]
t.ok(len(refused) >= 2, 'the refused attempts are recorded (%d)' %
     len(refused))
rel = [r for r in recs if r['type'] == 'release']
t.ok(len(rel) == 1 and rel[0].get('revoked_by') == '東京地方検察庁',
     'the release is recorded with the revoking authority')
unl = [r for r in recs if r['type'] == 'unlink' and r.get('path') ==
       'kept.txt']
t.ok(len(unl) == 1 and unl[0]['seq'] > rel[0]['seq'],
     'the removal after the release is recorded')
vers = [r for r in recs if r['type'] == 'version' and r.get('path') ==
        'kept.txt']
t.ok(len(vers) >= 1, 'and the version from before is still in the chain')

PY
tap_import <"$T/tap"
tap_finish
