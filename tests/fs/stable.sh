#!/bin/bash
# stable.sh HOZEN - a recorded version never changes, whatever path later
# modifies the file (issue: versions that change after they are
# recorded).  A version of 1 MiB or more may share the live file's
# blocks (an LFS object hard-linked to it); every way of changing the
# file afterwards must leave the version as it was: write, pwritev,
# ftruncate through the open handle, fallocate in every mode,
# copy_file_range, a write through a shared mapping, a handle opened
# before the version was taken, another name of the same inode (also
# after a remount), O_TRUNC, truncate by path, and 8 processes appending
# to one file concurrently.  Each scenario writes down what the file
# held at each point it must be versioned (fsync, last close); after
# unmount 'hozen verify' must pass, each such point must be a version
# record with that content in order, git (or the LFS object) must still
# hold every version's bytes, and after a remount /.hozen/versions/
# shows each version as recorded.  Hard links must stay one file.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
fs_setup "$1"
cd "$T" || exit 2
S=$T/store
M=$T/mnt
W=$T/want # JSON lines: {path, why, sha256, size, op}

cat >"$T/scen.py" <<'EOF'
# scen.py MNT WANT NAME: one scenario on MNT/s/NAME (and beside it);
# what the file must hold at each version point goes to WANT.
import ctypes, errno, hashlib, json, mmap, os, sys
mnt, want, name = sys.argv[1:4]
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64,
                           ctypes.c_int64)
MiB = 1 << 20
R = os.urandom(2 * MiB)
p = os.path.join(mnt, 's', name)
model = bytearray()


def point(why, path=None, data=None):
    data = bytes(model if data is None else data)
    with open(want, 'a') as w:
        w.write(json.dumps({'path': os.path.relpath(path or p, mnt),
                            'why': why, 'op': 0, 'size': len(data),
                            'sha256': hashlib.sha256(data).hexdigest()})
                + '\n')


def put(off, data):
    if off > len(model):
        model.extend(bytes(off - len(model)))
    model[off:off + len(data)] = data


def versioned_at_fsync():
    """Open, write 2 MiB, fsync: a version shares the file now."""
    fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, R)
    put(0, R)
    os.fsync(fd)
    point('fsync')
    return fd


def finish(fd):
    os.fsync(fd)
    point('fsync')
    os.close(fd)


def check_reads(*paths):
    for q in paths:
        with open(q, 'rb') as f:
            got = f.read()
        if got != bytes(model):
            sys.exit('%s reads back %d bytes, not the %d written' %
                     (os.path.relpath(q, mnt), len(got), len(model)))


x = os.urandom(65536)
if name == 'write':
    fd = versioned_at_fsync()
    os.pwrite(fd, x, 4096)
    put(4096, x)
    finish(fd)
elif name == 'pwritev':
    fd = versioned_at_fsync()
    os.pwritev(fd, [x[:1000], x[1000:]], MiB - 500)
    put(MiB - 500, x)
    finish(fd)
elif name.startswith('ftruncate'):
    size = {'ftruncate0': 0, 'ftruncate-shrink': MiB + 5,
            'ftruncate-grow': 3 * MiB}[name]
    fd = versioned_at_fsync()
    os.ftruncate(fd, size)
    del model[size:]
    model.extend(bytes(size - len(model)))
    finish(fd)
elif name.startswith('fallocate-'):
    mode = int(name.split('-')[1], 16)
    off, n = (2 * MiB, 65536) if mode in (0, 1) else (MiB, 65536)
    fd = versioned_at_fsync()
    if libc.fallocate(fd, mode, off, n) < 0:
        e = ctypes.get_errno()
        os.close(fd)
        if e == errno.EOPNOTSUPP:
            print('unsupported')
            sys.exit(0)
        sys.exit('fallocate mode %#x: %s' % (mode, os.strerror(e)))
    if mode in (0, 0x10) and off + n > len(model):
        model.extend(bytes(off + n - len(model)))
    if mode & 0x12:
        end = min(off + n, len(model))
        model[off:end] = bytes(end - off)
    elif mode == 0x08:
        del model[off:off + n]
    elif mode == 0x20:
        model[off:off] = bytes(n)
    finish(fd)
elif name == 'copy_file_range':
    src = p + '.src'
    with open(src, 'wb') as f:
        f.write(x)
    fd = versioned_at_fsync()
    sfd = os.open(src, os.O_RDONLY)
    done = 0
    while done < len(x):
        k = os.copy_file_range(sfd, fd, len(x) - done, done, 100 + done)
        if k == 0:
            break
        done += k
    os.close(sfd)
    put(100, x[:done])
    finish(fd)
elif name == 'mmap':
    fd = versioned_at_fsync()
    m = mmap.mmap(fd, 2 * MiB)
    m[8192:8192 + len(x)] = x
    m.flush()
    m.close()
    put(8192, x)
    finish(fd)
elif name == 'early-handle':
    # A handle opened before the version was taken writes after it.
    early = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    fd = os.open(p, os.O_RDWR)
    os.write(fd, R)
    put(0, R)
    os.fsync(fd)
    point('fsync')
    os.close(fd)
    os.pwrite(early, x, 0)
    put(0, x)
    finish(early)
elif name == 'other-name':
    # Versioned at close, then written through a second name.
    with open(p, 'wb') as f:
        f.write(R)
    put(0, R)
    point('close')
    os.link(p, p + '.2')
    with open(p + '.2', 'ab') as f:
        f.write(b'x\n')
    put(len(model), b'x\n')
    point('close')
    with open(p, 'ab') as f:
        f.write(b'y\n')
    put(len(model), b'y\n')
    point('close')
    check_reads(p, p + '.2')
elif name == 'otrunc':
    with open(p, 'wb') as f:
        f.write(R)
    point('close', data=R)
    with open(p, 'wb') as f:
        f.write(x)
    point('close', data=x)
elif name == 'truncate-path':
    fd = versioned_at_fsync()
    os.close(fd)
    os.truncate(p, MiB + 7)
    del model[MiB + 7:]
    check_reads(p)
elif name == 'threads':
    # 8 threads write one new file through one handle, in order of
    # offset but at once: each write is hashed after its reply, while
    # the next is served; the version at close is the whole content.
    import threading
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    data = os.urandom(8 * MiB)
    chunk, nxt, mu, errs = 192 * 1024, [0], threading.Lock(), []

    def writer():
        while True:
            with mu:
                off = nxt[0]
                nxt[0] += chunk
            if off >= len(data):
                return
            try:
                os.pwrite(fd, data[off:off + chunk], off)
            except OSError as e:
                errs.append(e)
                return
    ts = [threading.Thread(target=writer) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errs:
        sys.exit('pwrite: %s' % errs[0])
    os.close(fd)
    put(0, data)
    point('close')
    check_reads(p)
else:
    sys.exit('no scenario ' + name)
EOF

"$HOZEN" init "$S" >/dev/null
check "mount" fs_mount "$S" "$M"
mkdir "$M/s"
scen=(write pwritev ftruncate0 ftruncate-shrink ftruncate-grow
	fallocate-0 fallocate-1 fallocate-3 fallocate-10 fallocate-11
	fallocate-8 fallocate-20 copy_file_range mmap early-handle other-name
	otrunc truncate-path threads)
for s in "${scen[@]}"; do
	out=$(timeout 60 python3 "$T/scen.py" "$M" "$W" "$s" 2>&1)
	rc=$?
	case $rc/$out in
	0/unsupported) skip "$s" "the mount refuses this fallocate mode" ;;
	0/*) ok "$s: the file is written as asked" ;;
	*) not_ok "$s: the file is written as asked (exit $rc)" "$out" ;;
	esac
done

# Processes each open, append and close one file, past 1 MiB, at once:
# 8 processes 40 times (the issue's case), and one process 400 times (a
# close's release and the next open of the same process race too).
cat >"$T/append.py" <<'EOF'
import os, sys
path, k, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    os.write(fd, (b'%d:%03d;' % (k, i % 1000)) * 512)  # 3 KiB
    os.close(fd)
EOF
for run in "appended 8 40" "appended2 1 400"; do
	read -r f np n <<<"$run"
	head -c 1048576 /dev/urandom >"$M/s/$f"
	pids=()
	for k in $(seq 1 "$np"); do
		timeout 60 python3 "$T/append.py" "$M/s/$f" "$k" "$n" &
		pids+=($!)
	done
	afail=0
	for p in "${pids[@]}"; do wait "$p" || afail=1; done
	check "$np process(es) appending $n times each finish" \
		[ $afail -eq 0 ]
	check "$f has every append ($(stat -c %s "$M/s/$f") bytes)" \
		[ "$(stat -c %s "$M/s/$f")" = $((1048576 + np * n * 3072)) ]
	cp "$M/s/$f" "$T/$f"
done

# The issue's sequence: a 2 MiB file and a second name, a remount, then
# an append through each name.
head -c 2M /dev/urandom >"$M/big"
ln "$M/big" "$M/big2"
cp "$M/big" "$T/big"
check "unmount" fs_umount "$M"
check "mount again" fs_mount "$S" "$M"
echo x >>"$M/big2"
echo y >>"$M/big"
{ cat "$T/big"; printf 'x\ny\n'; } >"$T/big.want"
check "after a remount, big and big2 are still one file" \
	cmp "$M/big" "$M/big2"
check "holding both appends" cmp "$M/big" "$T/big.want"
python3 - "$T/big" "$W" <<'EOF'
import hashlib, json, sys
r = open(sys.argv[1], 'rb').read()
with open(sys.argv[2], 'a') as w:
    for path, data in (('big', r), ('big2', r + b'x\n'),
                       ('big', r + b'x\ny\n')):
        w.write(json.dumps({'path': path, 'why': 'close', 'op': 0,
                            'size': len(data),
                            'sha256': hashlib.sha256(data).hexdigest()})
                + '\n')
EOF
python3 "$D/check.py" snapshot "$M" "$T/snap"
check "unmount" fs_umount "$M"

run verify "$S"
if [ "$rc" -eq 0 ]; then
	ok "hozen verify exits 0"
else
	not_ok "hozen verify exits 0 (exit $rc)" "$(head -c 1500 "$T/out")" \
		"$(head -c 1500 "$T/err")"
fi
pycheck versions "$S"
pycheck head "$S" "$T/snap"

python3 - "$S" "$W" "$T" >"$T/tap" <<'EOF'
import hashlib, json, os, sys
sys.path.insert(0, os.environ['D'])
from check import (Tap, records, rpath, content, sha, git, lfs_path,
                   LFS_RE)
store, wantf, tdir = sys.argv[1:4]
t = Tap()
recs = records(store)
want = [json.loads(l) for l in open(wantf)]
# The names of one file: a scenario's file and its second name.
def group(path):
    return path[:-2] if path.endswith('.2') else \
        'big' if path == 'big2' else path
vers = {}
for r in recs:
    if r['type'] == 'version':
        vers.setdefault(group(rpath(r).decode()), []).append(r)
pts = {}
for w in want:
    pts.setdefault(group(w['path']), []).append(w)
for g, ws in sorted(pts.items()):
    # Consecutive points with the same content need one version only.
    ws = [w for i, w in enumerate(ws)
          if i == 0 or w['sha256'] != ws[i - 1]['sha256']]
    vs = vers.get(g, [])
    i, missing = 0, []
    for w in ws:
        j = i
        while j < len(vs) and vs[j]['sha256'] != w['sha256']:
            j += 1
        if j == len(vs):
            missing.append('%s (%s): %d bytes, sha256 %s' % (
                w['path'], w['why'], w['size'], w['sha256'][:16]))
        else:
            i = j + 1
    bad = []
    for v in vs:
        try:
            data, _ = content(store, v['blob'])
            if sha(data) != v['sha256']:
                bad.append('seq %d: git holds sha256 %s' % (v['seq'],
                                                            sha(data)))
        except Exception as e:  # noqa: BLE001
            bad.append('seq %d: %s' % (v['seq'], e))
    t.ok(not missing and not bad, '%s: each point (%d) is a version with '
         'what was written then, in order, and every version (%d) is '
         'still as recorded' % (g, len(ws), len(vs)), *(missing + bad))
# Concurrent appends: every version is a prefix of the final content.
for f in ('appended', 'appended2'):
    final = open(os.path.join(tdir, f), 'rb').read()
    vs = vers.get('s/' + f, [])
    prefix = {}
    for v in vs:
        if v['size'] not in prefix:
            prefix[v['size']] = sha(final[:v['size']])
    notp = ['seq %d: %d bytes, not the first %d bytes of the file' %
            (v['seq'], v['size'], v['size'])
            for v in vs if prefix[v['size']] != v['sha256']]
    # The LFS objects still have the recorded sizes (an append made
    # through a version's object grows it): one git cat-file for all.
    out = git(store, 'cat-file', '--batch', inp='\n'.join(
        v['blob'] for v in vs).encode() + b'\n').stdout
    at = 0
    for v in vs:
        head, _, rest = out[at:].partition(b'\n')
        n = int(head.split()[2])
        m = LFS_RE.match(rest[:n])
        at += len(head) + 1 + n + 1
        if m:
            oid = m.group(1).decode()
            try:
                got = os.stat(lfs_path(store, oid)).st_size
            except OSError as e:
                got = e.strerror
            if got != v['size']:
                notp.append('seq %d: its LFS object has %s bytes, the '
                            'record says %d' % (v['seq'], got, v['size']))
    t.ok(vs and vs[-1]['sha256'] == sha(final) and not notp,
         's/%s, concurrent appends: each of the %d versions is a prefix of '
         'the final content, the last is all of it, and each LFS object '
         'has its version\'s size' % (f, len(vs)), *notp)
EOF
tap_import <"$T/tap"

# Through a remount, /.hozen/versions/ shows each version as recorded.
check "mount again" fs_mount "$S" "$M"
python3 - "$S" "$M" >"$T/tap" <<'EOF'
import hashlib, os, sys
sys.path.insert(0, os.environ['D'])
from check import Tap, records, rpath
store, mnt = sys.argv[1:3]
t = Tap()
n, bad = {}, []
for r in records(store):
    if r['type'] != 'version':
        continue
    p = rpath(r)
    n[p] = n.get(p, 0) + 1
    if p.startswith(b's/appended'):
        continue  # hundreds of versions: git's copies are checked above
    vp = os.path.join(os.fsencode(mnt), b'.hozen/versions', p + b'@%d' % n[p])
    try:
        with open(vp, 'rb') as f:
            h = hashlib.sha256(f.read()).hexdigest()
        if h != r['sha256']:
            bad.append('%r: sha256 %s, recorded %s' % (vp, h[:16],
                                                       r['sha256'][:16]))
    except OSError as e:
        bad.append('%r: %s' % (vp, e))
t.ok(n and not bad, 'every version (%d, but those of s/appended*) reads '
     'back through /.hozen/versions/ with its recorded SHA-256' %
     sum(n.values()), *bad)
EOF
tap_import <"$T/tap"
check "unmount" fs_umount "$M"
tap_finish
