#!/bin/bash
# fsx.sh HOZEN - fsxlike.py (an fsx of our own: a model of the file in
# memory, random writes, pwritev, appends, truncations, fallocate in
# every mode, copy_file_range, mapped writes, writes through a second
# name, reads checked against the model) on files of up to 4 and 8 MiB.
# Each run must end A-OK (every read matched the model); then, after
# unmount, 'hozen verify' must pass, and every point where the file had
# to be versioned (each fsync and the last close) must be a version
# record holding exactly what the model held then, in order, with git
# (or the LFS object) holding those bytes: a recorded version never
# changes, whatever path later modified the file.
#
# HOZEN_FSX_OPS sets the operations per file (default 3000 and 1500).

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
fs_setup "$1"
cd "$T" || exit 2
PY=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
S=$T/store
M=$T/mnt
OPS=${HOZEN_FSX_OPS:-}

"$HOZEN" init "$S" >/dev/null
check "mount" fs_mount "$S" "$M"

# The issue's fsx run (-N 3000 -S 3 -R -W -l 4194304: no mapped reads
# or writes, files up to 4 MiB), and one with mapped writes up to 8 MiB.
runs=("f4 --seed 3 --ops ${OPS:-3000} --no-mmap --max-size 4194304"
	"m8 --seed 7 --ops ${OPS:-1500} --max-size 8388608")
pids=()
for r in "${runs[@]}"; do
	read -r name args <<<"$r"
	# shellcheck disable=SC2086 # args are words
	timeout 240 "$PY" "$D/fsxlike.py" $args --log "$T/$name.log" \
		--root "$M" "$M/$name" >"$T/$name.out" 2>"$T/$name.err" &
	pids+=($!)
done
for i in "${!runs[@]}"; do
	read -r name args <<<"${runs[$i]}"
	wait "${pids[$i]}"
	rc=$?
	sed 's/^/# /' "$T/$name.out"
	if [ $rc -eq 0 ]; then
		ok "fsxlike $args: A-OK"
	else
		not_ok "fsxlike $args: A-OK (exit $rc)" "$(cat "$T/$name.err")"
	fi
done

check "unmount" fs_umount "$M"
run verify "$S"
if [ "$rc" -eq 0 ]; then
	ok "hozen verify exits 0"
else
	not_ok "hozen verify exits 0 (exit $rc)" "$(head -c 1500 "$T/out")" \
		"$(head -c 1500 "$T/err")"
fi
pycheck versions "$S"

for r in "${runs[@]}"; do
	read -r name args <<<"$r"
	python3 - "$S" "$name" "$T/$name.log" >"$T/tap" <<'EOF'
import json, os, sys
sys.path.insert(0, os.environ['D'])
from check import Tap, records, rpath, content, sha
store, name, logf = sys.argv[1:4]
t = Tap()
names = {name.encode(), (name + '.lnk').encode()}
vers = [r for r in records(store) if r['type'] == 'version' and
        rpath(r) in names]
want = [json.loads(l) for l in open(logf)]
# Consecutive points with the same content need one version only.
pts = [w for i, w in enumerate(want)
       if i == 0 or w['sha256'] != want[i - 1]['sha256']]
i, missing = 0, []
for w in pts:
    j = i
    while j < len(vers) and vers[j]['sha256'] != w['sha256']:
        j += 1
    if j == len(vers):
        missing.append('op %d (%s): %d bytes, sha256 %s' % (
            w['op'], w['why'], w['size'], w['sha256'][:16]))
    else:
        i = j + 1
print('# %s: %d points to version, %d version records' % (name, len(pts),
                                                        len(vers)))
t.ok(pts and not missing, '%s: each fsync and the last close is a version '
     'record with the content the model had then, in order (%d of %d '
     'missing)' % (name, len(missing), len(pts)), *missing)
bad = []
for v in vers:
    try:
        data, _ = content(store, v['blob'])
        if sha(data) != v['sha256']:
            bad.append('seq %d: git holds sha256 %s' % (v['seq'], sha(data)))
    except Exception as e:  # noqa: BLE001
        bad.append('seq %d: %s' % (v['seq'], e))
t.ok(vers and not bad, '%s: git (or the LFS object) still holds every '
     'version as recorded' % name, *bad)
EOF
	tap_import <"$T/tap"
done
tap_finish
