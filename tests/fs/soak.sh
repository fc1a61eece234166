#!/bin/bash
# soak.sh HOZEN - kill -9 soak.  Each round mounts the store and runs
# several processes at once: fsxlike.py on files of their own (0 to
# 8 MiB, one with mapped writes), three fsxlike.py sharing one file
# (each owning a region), and a namespace worker (create, append, link,
# rename and rename over, unlink, mkdir/rmdir, chmod, symlink, files up
# to 2 MiB, fsync now and then).  At a random moment the daemon is
# killed with SIGKILL; the store is mounted again (recovery) and
# unmounted.  After every round: every worker ran without an error
# before the kill, 'hozen verify' passes, and every write an fsync
# acknowledged is still there: a version record holds the content the
# writer had at that fsync (its region of a shared file), or the live
# file does.  A close is not an acknowledgement (close(2) returns before
# the daemon handles the release that versions the file): the closes
# whose content no version holds are counted in the figures.  The
# figures (rounds, operations, versions, recovery) are
# printed as TAP comments.
#
# HOZEN_SOAK_ROUNDS=N sets the rounds (default 3; 1000 for a full run).
# Every HOZEN_SOAK_PER_STORE rounds (10) the store is checked once more
# (git fsck and the commits) and a new one begun, so that disk use and
# the time of each verify stay bounded in a long run.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
fs_setup "$1"
ROUNDS=${HOZEN_SOAK_ROUNDS:-3}
PER=${HOZEN_SOAK_PER_STORE:-10}
cd "$T" || exit 2
# The interpreter itself: a wrapper (pyenv's shims) may take a second.
PY=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
S=
M=$T/mnt
ACK=$T/acked # JSON lines: {path, why, sha256, size[, slot][, any]}
KILLED=$T/killed
: >"$ACK"
: >"$T/figures"

cat >"$T/ns.py" <<'EOF'
# ns.py DIR SEED ACK ROOT STOP READY: namespace operations in DIR until
# STOP exists (READY made once DIR is); an fsync'ed file's content goes
# to ACK ("any": under any name).
import hashlib, json, os, random, sys
top, seed, ack, root, stop, ready = sys.argv[1:7]
rnd = random.Random(int(seed))
try:
    os.makedirs(top, exist_ok=True)
except OSError as e:
    sys.exit(0 if os.path.exists(stop) else 'ns.py: %s' % e)
open(ready, 'w').close()
logfd = os.open(ack, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
n, counts = 0, {}

def entries(kind):
    out = []
    for d in [top] + [os.path.join(top, e.name) for e in os.scandir(top)
                      if e.is_dir(follow_symlinks=False)]:
        for e in os.scandir(d):
            if kind == 'file' and e.is_file(follow_symlinks=False):
                out.append(e.path)
            elif kind == 'dir' and e.is_dir(follow_symlinks=False):
                out.append(e.path)
    return sorted(out)

def newname(prefix):
    dirs = [top] + entries('dir')
    return os.path.join(rnd.choice(dirs), '%s%d' % (prefix, n))

def size():
    return rnd.choice([0, 1, 100, 4000, 70000, 300000] + [2 << 20] * 1)

def op():
    files, dirs = entries('file'), entries('dir')
    what = rnd.choice(['create'] * 4 + ['append'] * 2 + ['link', 'rename',
                      'rename', 'unlink', 'mkdir', 'rmdir', 'chmod',
                      'symlink', 'fsync', 'fsync'])
    if not files and what not in ('create', 'mkdir'):
        what = 'create'
    counts[what] = counts.get(what, 0) + 1
    if what == 'create':
        with open(newname('f'), 'wb') as f:
            f.write(os.urandom(size()))
    elif what == 'append':
        with open(rnd.choice(files), 'ab') as f:
            f.write(os.urandom(rnd.choice([1, 100, 5000])))
    elif what == 'link':
        os.link(rnd.choice(files), newname('l'))
    elif what == 'rename':
        src = rnd.choice(files)
        dst = rnd.choice(files) if rnd.random() < 0.4 else newname('r')
        os.rename(src, dst)
    elif what == 'unlink':
        os.unlink(rnd.choice(files))
    elif what == 'mkdir':
        if len(dirs) < 6:
            os.mkdir(os.path.join(top, 'd%d' % n))
    elif what == 'rmdir':
        empty = [d for d in dirs if not os.listdir(d)]
        if empty:
            os.rmdir(rnd.choice(empty))
    elif what == 'chmod':
        os.chmod(rnd.choice(files), rnd.choice([0o600, 0o644, 0o755]))
    elif what == 'symlink':
        os.symlink(os.path.basename(rnd.choice(files)), newname('s'))
    elif what == 'fsync':
        fd = os.open(rnd.choice(files), os.O_RDWR)
        try:
            os.pwrite(fd, os.urandom(rnd.choice([10, 5000])),
                      rnd.randint(0, 4096))
            os.fsync(fd)
            data = b''
            while True:
                b = os.pread(fd, 1 << 20, len(data))
                if not b:
                    break
                data += b
        finally:
            os.close(fd)
        os.write(logfd, (json.dumps({
            'path': os.path.relpath(top, root), 'why': 'fsync', 'any': True,
            'sha256': hashlib.sha256(data).hexdigest(),
            'size': len(data)}) + '\n').encode())

try:
    while not os.path.exists(stop):
        n += 1
        op()
except OSError as e:
    if not os.path.exists(stop):
        sys.stderr.write('ns.py: op %d: %s\n' % (n, e))
        sys.exit(1)
print('ns: %s: %d ops; %s' % (os.path.relpath(top, root), n, ' '.join('%s=%d' % kv
                                      for kv in sorted(counts.items()))))
EOF

# check_acks ROUND: every acknowledged content of round ROUND is there.
check_acks()
{
	python3 - "$S" "$ACK" "$1" >"$T/tap" <<'EOF'
import hashlib, json, os, sys
sys.path.insert(0, os.environ['D'])
from check import Tap, records, rpath, content, sha
store, ackf, rnd = sys.argv[1:4]
t = Tap()
prefix = 'r%s/' % rnd
acks = [a for a in map(json.loads, open(ackf))
        if a['path'].startswith(prefix)]
vers = [r for r in records(store) if r['type'] == 'version' and
        (rpath(r) or b'').startswith(prefix.encode())]
shas = {v['sha256'] for v in vers}
bypath = {}
for v in vers:
    bypath.setdefault(rpath(v).decode(errors='replace'), []).append(v)
regions = {}  # (path, off, len) -> shas of that region over the versions
miss = []
closes = unversioned = 0
for a in acks:
    if a['why'] != 'fsync':
        # A close is not an acknowledgement: close(2) returns before the
        # daemon has the release (FUSE sends it afterwards), which makes
        # the version; a kill, or a write through a handle opened since,
        # can come first.  And the close of one of several writers of a
        # shared file makes no version.  Counted, not required.
        closes += 1
        if a['sha256'] not in shas and 'slot' not in a:
            unversioned += 1
        continue
    if a.get('any') or 'slot' not in a:
        if a['sha256'] in shas:
            continue
        live = os.path.join(store, 'tree', a['path'])
        if not a.get('any') and os.path.exists(live) and \
                sha(open(live, 'rb').read()) == a['sha256']:
            continue
        miss.append('%s (%s, %d bytes): no version has sha256 %s' % (
            a['path'], a['why'], a['size'], a['sha256'][:16]))
        continue
    off, n = a['slot']
    key = (a['path'], off, n)
    if key not in regions:
        regions[key] = set()
        for v in bypath.get(a['path'], []):
            try:
                data, _ = content(store, v['blob'])
            except Exception:  # noqa: BLE001 - verify says what is wrong
                continue
            regions[key].add(sha(data[off:off + n]))
    if a['sha256'] not in regions[key]:
        miss.append('%s region %d+%d: no version holds what its writer '
                    'had at its fsync (op %s, sha256 %s)' % (
                        a['path'], off, n, a.get('op'), a['sha256'][:16]))
t.ok(not miss, 'round %s: every fsync-acknowledged content (%d) is in a '
     'version' % (rnd, len(acks) - closes), *miss)
print('# round %s: %d fsyncs acknowledged, %d versions; %d closes, %d of '
      'them (of a file with one writer) in no version' % (
          rnd, len(acks) - closes, len(vers), closes, unversioned))
EOF
	tap_import <"$T/tap"
}

nv=0
# done_store: the last checks of a store, its figures; then it goes.
done_store()
{
	pycheck git "$S"
	nv=$((nv + $("$HOZEN" log --json --type version "$S" | wc -l)))
	[ -z "${HOZEN_TEST_KEEP:-}" ] && rm -rf "$S"
}
for round in $(seq 1 "$ROUNDS"); do
	if [ $(((round - 1) % PER)) -eq 0 ]; then
		[ -n "$S" ] && done_store
		S=$T/store$(((round - 1) / PER + 1))
		"$HOZEN" init "$S" >/dev/null
	fi
	if ! fs_mount "$S" "$M"; then
		not_ok "round $round: mount" "$(cat "$T/mount.err")"
		break
	fi
	pid=${FS_PID[$M]}
	d=r$round
	mkdir "$M/$d"
	rm -f "$KILLED"
	wpids=()
	names=()
	start() # NAME COMMAND...
	{
		local name=$1
		shift
		timeout 300 "$@" >"$T/w.$name.out" 2>"$T/w.$name.err" &
		wpids+=($!)
		names+=("$name")
	}
	rm -f "$T"/ready.*
	fsx="$PY $D/fsxlike.py --ops 0 --stop $KILLED --log $ACK --root $M"
	# shellcheck disable=SC2086 # $fsx is words
	{
		start p1 $fsx --seed $((round * 10 + 1)) --max-size 8388608 \
			--ready "$T/ready.p1" "$M/$d/p1"
		start p2 $fsx --seed $((round * 10 + 2)) --max-size 4194304 \
			--no-mmap --ready "$T/ready.p2" "$M/$d/p2"
		start p3 $fsx --seed $((round * 10 + 3)) --max-size 1048576 \
			--ready "$T/ready.p3" "$M/$d/p3"
		for k in 0 1 2; do
			start s$k $fsx --seed $((round * 10 + 5 + k)) \
				--max-size 3145728 --slot $k/3 \
				--ready "$T/ready.s$k" "$M/$d/shared"
		done
	}
	start ns "$PY" "$T/ns.py" "$M/$d/ns" "$round" "$ACK" "$M" "$KILLED" \
		"$T/ready.ns"
	# Every worker has begun (within 60 s), then a random moment, 1.5
	# to 5.4 s into the workload.
	for ((i = 0; i < 600; i++)); do
		[ "$(find "$T" -maxdepth 1 -name 'ready.*' | wc -l)" -ge 7 ] &&
			break
		sleep 0.1
	done
	sleep "$((1 + RANDOM % 4)).$((RANDOM % 10))"
	sleep 0.5
	touch "$KILLED"
	kill -9 "$pid"
	bad=()
	for i in "${!wpids[@]}"; do
		wait "${wpids[$i]}"
		wrc=$?
		# SIGBUS: a mapped page whose filesystem is gone.
		if [ $wrc -ne 0 ] && [ $wrc -ne 135 ]; then
			bad+=("${names[$i]} exited $wrc: $(tail -c 1500 \
				"$T/w.${names[$i]}.err")")
		fi
		sed -n 's/^\(fsxlike\|ns\): \(stopped: \)\{0,1\}/  /p' \
			"$T/w.${names[$i]}.out" >>"$T/figures"
	done
	if [ ${#bad[@]} -eq 0 ]; then
		ok "round $round: every worker ran without an error until the kill"
	else
		not_ok "round $round: every worker ran without an error until the kill" \
			"${bad[@]}"
	fi
	fusermount3 -u -z "$M" 2>/dev/null
	for ((i = 0; i < 50; i++)); do fs_alive "$pid" || break; sleep 0.1; done
	if fs_alive "$pid"; then
		not_ok "round $round: the daemon $pid died of kill -9"
		continue
	fi
	if fs_mount "$S" "$M"; then
		ok "round $round: mounts again after the kill (recovery)"
	else
		not_ok "round $round: mounts again after the kill (recovery)" \
			"$(cat "$T/mount.err")"
		"$HOZEN" verify "$S" 2>&1 | head -c 1500 | sed 's/^/# /'
		break
	fi
	"$HOZEN" log --json --type mount "$S" | tail -n 1 | python3 -c '
import json, sys
m = json.loads(sys.stdin.read())
print("# round %s: recovery versioned %s restaged %s renames %s journal %s "
      "lost %s" % (sys.argv[1], m.get("versioned"), m.get("restaged"),
                   m.get("renames"), m.get("journal_blobs", 0),
                   m.get("lost")))' "$round"
	check "round $round: unmount" fs_umount "$M"
	run verify "$S"
	if [ "$rc" -eq 0 ]; then
		ok "round $round: hozen verify exits 0"
	else
		not_ok "round $round: hozen verify exits 0 (exit $rc)" \
			"$(head -c 1500 "$T/out")" "$(head -c 1500 "$T/err")"
	fi
	check_acks "$round"
done

[ -n "$S" ] && [ -d "$S" ] && done_store
nops=$(grep -o '^  [^:]*: [0-9]* ops' "$T/figures" | awk '{ s += $(NF - 1) }
	END { print s + 0 }')
na=$(wc -l <"$ACK")
echo "# soak: $ROUNDS rounds, $nops operations, $nv versions, $na fsyncs acknowledged"
echo "# workers:"
sed 's/^/# /' "$T/figures"
tap_finish
