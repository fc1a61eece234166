#!/bin/bash
# ops.sh HOZEN - ordinary tools on a real mount: cp -a, tar -x, appends,
# overwrites, sparse and mmap writes, renames, links, xattrs, concurrent
# writers, chmod/chown/touch, a non-root user, paths beyond PATH_MAX.
# Everything is read back through the mount; after unmount the store
# verifies, the chain names each operation with its actor and the
# SHA-256 of what was written, and git holds every version.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
fs_setup "$1"
export HOZEN
cd "$T" || exit 2
S=$T/store
M=$T/mnt
SRC=$T/src

# ------------------------------------------------------------ the source
mkdir -p "$SRC/a/b/c" "$SRC/日本語/証拠" "$SRC/dir with space/sub"
head -c 2500000 /dev/urandom >"$SRC/big.bin"
head -c 70000 /dev/urandom >"$SRC/a/b/c/medium.bin"
printf 'deep text\n' >"$SRC/a/b/c/deep.txt"
printf '証拠のファイル\n' >"$SRC/日本語/証拠/証拠ファイル.txt"
printf 'spaced\n' >"$SRC/dir with space/file with space.log"
printf 'sub\n' >"$SRC/dir with space/sub/x"
printf '#!/bin/sh\necho hi\n' >"$SRC/exec.sh"
chmod 755 "$SRC/exec.sh"
printf 'not utf-8\n' >"$SRC/"$'latin1-\xe9t\xe9.txt'
: >"$SRC/empty"
printf 'linked\n' >"$SRC/hard1"
ln "$SRC/hard1" "$SRC/hard2"
ln -s a/b/c/deep.txt "$SRC/link-rel"
ln -s /nonexistent/target "$SRC/link-dangling"
ln -s 日本語 "$SRC/リンク"
if [ -d /usr/share/doc/libfuse3-dev ]; then
	cp -a /usr/share/doc/libfuse3-dev "$SRC/fuse-doc"
fi
tar -C "$SRC" -cf "$T/src.tar" .
head -c 1048576 /dev/urandom >"$T/rand"

"$HOZEN" init "$S" >/dev/null
check "hozen mount" fs_mount "$S" "$M"

# --------------------------------------------------- cp -a and tar -x
cp -a "$SRC" "$M/cp"
check "cp -a of a tree into the mount" [ $? -eq 0 ]
check "the tree reads back identical (diff -r, links not followed)" \
	diff -r --no-dereference "$SRC" "$M/cp"
check "the hard link is one inode on the mount" \
	[ "$(stat -c %i "$M/cp/hard1")" = "$(stat -c %i "$M/cp/hard2")" ]
check "cp -a kept modes (exec.sh 755)" \
	[ "$(stat -c %a "$M/cp/exec.sh")" = 755 ]
mkdir "$M/tar"
tar -C "$M/tar" -xf "$T/src.tar"
check "tar -x of a tarball into the mount" [ $? -eq 0 ]
check "the extracted tree reads back identical" \
	diff -r --no-dereference "$SRC" "$M/tar"

# ------------------------------------------- append, overwrite, sparse
: >"$T/append.want"
for i in $(seq 1 60); do
	echo "line $i of the responder's log" >>"$M/append.log"
	echo "line $i of the responder's log" >>"$T/append.want"
done
check "60 appends with >> read back" cmp "$M/append.log" "$T/append.want"

printf 'overwritten\n' >"$M/cp/a/b/c/deep.txt"
check "overwrite with > reads back" \
	[ "$(cat "$M/cp/a/b/c/deep.txt")" = overwritten ]

for f in "$M/sparse.bin" "$T/sparse.want"; do
	dd if="$T/rand" of="$f" bs=4096 seek=256 count=2 conv=notrunc \
		status=none &&
		dd if="$T/rand" of="$f" bs=4096 skip=7 seek=10 count=1 \
			conv=notrunc status=none &&
		truncate -s 8M "$f" &&
		dd if="$T/rand" of="$f" bs=1000 skip=3 seek=7000 count=3 \
			conv=notrunc status=none
done
check "sparse writes (dd seek=, truncate -s) read back" \
	cmp "$M/sparse.bin" "$T/sparse.want"
sha256sum <"$T/sparse.want" | cut -d' ' -f1 >"$T/sparse.sha"
truncate -s 5000 "$M/sparse.bin" && truncate -s 5000 "$T/sparse.want"
check "truncate -s to shrink reads back" cmp "$M/sparse.bin" "$T/sparse.want"

cat >"$T/mmapw.py" <<'EOF'
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, 65536)
m = mmap.mmap(fd, 65536)
for off in (0, 4095, 20000, 65530):
    m[off:off + 6] = b'MMAP%02d' % (off % 97)
m.flush()
m.close()
os.close(fd)
EOF
python3 "$T/mmapw.py" "$M/mmap.bin" && python3 "$T/mmapw.py" "$T/mmap.want"
check "mmap writes read back" cmp "$M/mmap.bin" "$T/mmap.want"

# -------------------------------------------------- renames and links
mv "$M/cp/exec.sh" "$M/cp/exec-renamed.sh"
check "rename a file" cmp "$M/cp/exec-renamed.sh" "$SRC/exec.sh"
mv "$M/tar/dir with space" "$M/tar/renamed dir"
check "rename a directory" \
	cmp "$M/tar/renamed dir/sub/x" "$SRC/dir with space/sub/x"
ln "$M/cp/hard1" "$M/cp/hard3"
check "a hard link made on the mount" \
	[ "$(stat -c %h "$M/cp/hard1")" = 3 ]
ln -s ../cp/big.bin "$M/tar/biglink"
check "a symlink made on the mount resolves" cmp "$M/tar/biglink" "$SRC/big.bin"

# --------------------------------------------------------------- xattrs
setfattr -n user.case -v INC-4711 "$M/cp/big.bin" &&
	setfattr -n user.tmp -v scratch "$M/cp/big.bin" &&
	setfattr -x user.tmp "$M/cp/big.bin"
check "setfattr -n / -x" [ $? -eq 0 ]
check "getfattr reads the xattr back" \
	[ "$(getfattr --only-values -n user.case "$M/cp/big.bin" 2>/dev/null)" \
		= INC-4711 ]
check "the removed xattr is gone" \
	bash -c "! getfattr -n user.tmp '$M/cp/big.bin' 2>/dev/null"

# -------------------------------------------------- concurrent writers
mkdir "$M/conc"
pids=()
for k in 1 2 3 4; do
	dd if="$T/rand" of="$M/conc/w$k.bin" bs=65536 skip=$((k - 1)) \
		count=$((17 - k)) status=none &
	pids+=($!)
	(
		for i in $(seq 1 150); do
			echo "appender $k line $i"
		done | while IFS= read -r l; do
			printf '%s\n' "$l" >>"$M/conc/shared.log"
		done
	) &
	pids+=($!)
	python3 -c '
import os, sys
with open(sys.argv[1], "wb") as f:
    for i in range(200):
        f.write(os.urandom(1000))
        if i % 50 == 0:
            f.flush(); os.fsync(f.fileno())
' "$M/conc/p$k.bin" &
	pids+=($!)
done
cfail=0
for p in "${pids[@]}"; do wait "$p" || cfail=1; done
check "12 concurrent writers finish without error" [ $cfail -eq 0 ]
bad=
for k in 1 2 3 4; do
	dd if="$T/rand" of="$T/w$k.want" bs=65536 skip=$((k - 1)) \
		count=$((17 - k)) status=none
	cmp -s "$M/conc/w$k.bin" "$T/w$k.want" || bad+=" w$k"
	[ "$(stat -c %s "$M/conc/p$k.bin")" = 200000 ] || bad+=" p$k"
done
check "each concurrent writer's file reads back (bad:${bad:-none})" \
	[ -z "$bad" ]
for k in 1 2 3 4; do
	for i in $(seq 1 150); do echo "appender $k line $i"; done
done | sort >"$T/shared.want"
check "4 concurrent appenders: all 600 lines, none torn" \
	cmp <(sort "$M/conc/shared.log") "$T/shared.want"

# ----------------------------------------------------- chmod/chown/touch
chmod 600 "$M/cp/empty" && chown 65534:65534 "$M/cp/empty" &&
	touch -m -d '2020-01-02 03:04:05' "$M/cp/empty"
check "chmod, chown, touch -d" \
	[ "$(stat -c '%a %u %g %Y' "$M/cp/empty")" = "600 65534 65534 1577934245" ]

# ------------------------------------------------------ a non-root user
mkdir "$M/pub" && chmod 1777 "$M/pub"
NB="setpriv --reuid=65534 --regid=65534 --clear-groups"
$NB sh -c "echo nobody >'$M/pub/n.txt' && mkdir '$M/pub/nd' &&
	echo inside >'$M/pub/nd/f' && ln -s n.txt '$M/pub/nl'"
check "a non-root user creates files in a 1777 directory" [ $? -eq 0 ]
check "they belong to that user (65534:65534)" \
	[ "$(stat -c '%u:%g' "$M/pub/n.txt" "$M/pub/nd" "$M/pub/nd/f")" = \
		"$(printf '65534:65534\n%.0s' 1 2 3)" ]
check "and the symlink too" \
	[ "$(stat -c '%u:%g' "$M/pub/nl")" = 65534:65534 ]
err=$($NB sh -c "echo evil >>'$M/cp/hard1'" 2>&1)
check "the non-root user may not write a root-owned 0644 file (EACCES)" \
	[ $? -ne 0 ]
case $err in
*"Permission denied"*) ok "the error is 'Permission denied'" ;;
*) not_ok "the error is 'Permission denied'" "got: $err" ;;
esac
check "and the file is unchanged" cmp "$M/cp/hard1" "$SRC/hard1"
err=$($NB sh -c "rm -f '$M/cp/hard2'" 2>&1)
check "nor unlink in a root-owned 0755 directory" [ -e "$M/cp/hard2" ]

# ------------------------------------------------- beyond PATH_MAX
name=$(printf 'p%.0s' $(seq 1 197))
deepfail=$(
	cd "$M" && mkdir deep && cd deep || exit 1
	for i in $(seq 10 31); do
		mkdir "$i$name" && cd "$i$name" || exit 1
	done
	printf 'at the bottom\n' >bottom.txt || exit 1
	[ "$(cat bottom.txt)" = "at the bottom" ] || exit 1
	echo ok
)
check "a directory chain of 22 x 200-byte names, written and read at the bottom" \
	[ "$deepfail" = ok ]
deeplen=$(python3 -c '
import os, sys
os.chdir(sys.argv[1])
n = len(sys.argv[1]) + len("/deep")
os.chdir("deep")
while True:
    d = [e for e in os.listdir(".") if os.path.isdir(e)]
    if not d:
        break
    n += 1 + len(d[0]); os.chdir(d[0])
print(n + len("/bottom.txt") if os.path.exists("bottom.txt") else 0)' "$M")
check "its path is longer than PATH_MAX ($deeplen > 4096)" \
	[ "${deeplen:-0}" -gt 4096 ]

# ------------------------------------------------------------- unmount
# One handle, two writers: the shell opens it, a child process writes
# through it too; each write names the process that made it.
(
	exec 3>"$M/shared.txt"
	printf 'from the shell\n' >&3
	python3 -c 'import os; os.write(3, b"from the child\n")'
	exec 3>&-
)
check "a handle shared by two processes" \
	[ "$(cat "$M/shared.txt")" = "from the shell
from the child" ]

python3 "$D/check.py" snapshot "$M" "$T/snap"
check "snapshot of the live tree through the mount" [ $? -eq 0 ]
check "unmount" fs_umount "$M"
check "the mount is gone" bash -c "! mountpoint -q '$M'"
expect_rc "hozen verify exits 0" 0 verify "$S"
pycheck git "$S"
pycheck versions "$S"
pycheck head "$S" "$T/snap"

# The kernel's writeback cache, when asked for: the same content, versioned.
check "mount again with --writeback" fs_mount "$S" "$M" --writeback
dd if=/dev/urandom of="$T/wb.want" bs=4k count=64 2>/dev/null
dd if="$T/wb.want" of="$M/wb.bin" bs=4k 2>/dev/null
check "4 KiB writes through the writeback cache read back" \
	cmp "$M/wb.bin" "$T/wb.want"
check "unmount" fs_umount "$M"
"$HOZEN" log --json --type mount "$S" | tail -n 1 >"$T/wbmount"
check "the mount record says writeback" \
	grep -q '"writeback": *true' "$T/wbmount"
run verify "$S"
check "hozen verify exits 0 after it" [ "$rc" -eq 0 ]

# ------------------------------------------------------ the chain
python3 - "$S" "$SRC" "$T" "$$" >"$T/tap" <<'EOF'
import hashlib, os, sys
sys.path.insert(0, os.environ['D'])
from check import Tap, records, rpath, sha

store, src, tdir, mypid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
t = Tap()
recs = records(store)
by = {}
for r in recs:
    by.setdefault((r['type'], rpath(r)), []).append(r)

def one(typ, path, **want):
    """The records of typ on path matching want (actor fields as comm=)."""
    out = []
    for r in by.get((typ, path.encode() if isinstance(path, str) else path),
                    []):
        a = r['actor']
        if all((a.get(k) if k in ('comm', 'uid', 'gid', 'pid') else r.get(k))
               == v for k, v in want.items()):
            out.append(r)
    return out

# Every entry of the source, copied by cp and extracted by tar.
files, dirs, links, hard = [], [], [], {}
for root, ds, fs in os.walk(os.fsencode(src)):
    rel = os.path.relpath(root, os.fsencode(src))
    rel = b'' if rel == b'.' else rel + b'/'
    for d in ds:
        (links if os.path.islink(os.path.join(root, d)) else dirs).append(
            rel + d)
    for f in fs:
        p = os.path.join(root, f)
        if os.path.islink(p):
            links.append(rel + f)
        else:
            files.append(rel + f)
files.sort()
groups = {}
for f in files:
    groups.setdefault(os.stat(os.path.join(os.fsencode(src), f)).st_ino,
                      []).append(f)
for tool, top in (('cp', b'cp/'), ('tar', b'tar/')):
    miss = []
    for names in groups.values():
        # one create per inode; further names of a hard link are links
        cr = [f for f in names if one('create', top + f, comm=tool, uid=0)]
        ln = [f for f in names if one('link', top + f, comm=tool, uid=0)]
        if len(cr) != 1 or len(cr) + len(ln) != len(names):
            miss.append('%r: created %r, linked %r' % (names, cr, ln))
    for d in dirs:
        if tool == 'cp' and d == b'':
            continue
        if not one('mkdir', top + d, comm=tool, uid=0, gid=0):
            miss.append('mkdir %r' % d)
    for l in links:
        tgt = os.readlink(os.path.join(os.fsencode(src), l))
        rs = one('symlink', top + l, comm=tool, uid=0)
        if not rs or rpath(rs[0], 'target') != tgt:
            miss.append('symlink %r' % l)
    t.ok(not miss, '%s: a create/mkdir/symlink/link record by %s (uid 0) '
         'for each of %d entries' % (tool, tool,
                                     len(files) + len(dirs) + len(links)),
         *miss)
    bad = []
    for names in groups.values():
        data = open(os.path.join(os.fsencode(src), names[0]), 'rb').read()
        vs = [v for f in names for v in by.get(('version', top + f), [])]
        if not any(v['sha256'] == sha(data) for v in vs):
            bad.append('%r: versions %s' % (names,
                                            [v['sha256'][:12] for v in vs]))
    t.ok(not bad, '%s: each file has a version record with its SHA-256 '
         '(under one of its names)' % tool, *bad)
n_b64 = [r for r in recs if 'path_b64' in r]
t.ok(any(rpath(r).endswith(b'latin1-\xe9t\xe9.txt') for r in n_b64),
     'a name that is not UTF-8 is recorded byte-exactly as path_b64')

def covers(path, content, **want):
    """Write records of path: each one's SHA-256 is that of its slice of
    the final content, and together they cover it."""
    ws = one('write', path, **want)
    allw = by.get(('write', path.encode()), [])
    bad = ['seq %d offset %d length %d' % (w['seq'], w['offset'], w['length'])
           for w in ws
           if sha(content[w['offset']:w['offset'] + w['length']])
           != w['sha256']]
    iv = sorted((w['offset'], w['offset'] + w['length']) for w in ws)
    end = 0
    for a, b in iv:
        if a > end:
            break
        end = max(end, b)
    t.ok(ws and len(ws) == len(allw) and not bad and end >= len(content),
         '%s: %d write records (all by %s), each with the SHA-256 of its '
         'bytes, covering all %d bytes' % (path, len(ws), want, len(content)),
         *(bad + ['cover up to %d' % end, 'writes by others: %d'
                  % (len(allw) - len(ws))]))
    return ws

big = open(os.path.join(src, 'big.bin'), 'rb').read()
covers('cp/big.bin', big, comm='cp', uid=0)
covers('tar/big.bin', big, comm='tar', uid=0)
covers('append.log', open(os.path.join(tdir, 'append.want'), 'rb').read(),
       pid=mypid)
rand = open(os.path.join(tdir, 'rand'), 'rb').read()
for k in (1, 2, 3, 4):
    covers('conc/w%d.bin' % k, rand[(k - 1) * 65536:(k - 1) * 65536 +
                                    (17 - k) * 65536], comm='dd')

# Sparse: dd's writes, truncate's size changes.
ws = one('write', 'sparse.bin', comm='dd')
t.ok(len(ws) >= 3 and any(w['offset'] == 256 * 4096 for w in ws) and
     all(sha(rand[:8192]) == w['sha256'] for w in ws
         if w['offset'] == 256 * 4096 and w['length'] == 8192),
     'sparse.bin: dd writes at offset 1 MiB recorded with their SHA-256',
     *['%d+%d' % (w['offset'], w['length']) for w in ws])
sz = [r for r in by.get(('setattr', b'sparse.bin'), []) if 'size' in r]
t.ok([(r['size'], r['actor']['comm']) for r in sz] ==
     [(8 << 20, 'truncate'), (5000, 'truncate')],
     'sparse.bin: truncate -s recorded as setattr size 8 MiB then 5000',
     [(r['size'], r['actor']['comm']) for r in sz])
shrink = [r['seq'] for r in sz if r['size'] == 5000]
pre = open(os.path.join(tdir, 'sparse.sha')).read().strip()
tv = [r for r in by.get(('version', b'sparse.bin'), [])
      if r['sha256'] == pre and shrink and r['seq'] < shrink[0]]
t.ok(tv, 'sparse.bin: its 8 MiB content was versioned before the shrink',
     [(r['seq'], r['why'], r['size']) for r in by.get(('version',
                                                        b'sparse.bin'), [])])

ws = by.get(('write', b'mmap.bin'), [])
mm = open(os.path.join(tdir, 'mmap.want'), 'rb').read()
t.ok(ws and all(w['actor']['comm'].startswith('python') for w in ws) and
     all(sha(mm[w['offset']:w['offset'] + w['length']]) == w['sha256']
         for w in ws),
     'mmap.bin: the mmap writes are recorded, by python, with the SHA-256 '
     'of the bytes', [(w['offset'], w['length'], w['actor']['comm'])
                      for w in ws])
vs = by.get(('version', b'mmap.bin'), [])
t.ok(vs and vs[-1]['sha256'] == sha(mm),
     'mmap.bin: its last version is the mmap-written content')

# Overwrite with O_TRUNC: the old content versioned first.
o = [r for r in by.get(('open', b'cp/a/b/c/deep.txt'), [])
     if r['flags'] & os.O_TRUNC]
vs = by.get(('version', b'cp/a/b/c/deep.txt'), [])
t.ok(o and vs and any(v['sha256'] == sha(b'deep text\n') and
                      v['seq'] < o[0]['seq'] for v in vs) and
     vs[-1]['sha256'] == sha(b'overwritten\n'),
     'overwrite: an open record with O_TRUNC, the old content versioned '
     'before it and the new one after',
     [(v['seq'], v['why'], v['sha256'][:12]) for v in vs],
     [r['seq'] for r in o])

def has(name, typ, path, test=lambda r: True, **want):
    rs = [r for r in one(typ, path, **want) if test(r)]
    t.ok(rs, name, 'records of %s %s: %s' % (typ, path, by.get(
        (typ, path.encode()), [])))

has('rename of a file recorded by mv', 'rename', 'cp/exec.sh',
    lambda r: r.get('to') == 'cp/exec-renamed.sh', comm='mv')
has('rename of a directory recorded by mv', 'rename', 'tar/dir with space',
    lambda r: r.get('to') == 'tar/renamed dir', comm='mv')
has('hard link recorded by ln, with its target', 'link', 'cp/hard3',
    lambda r: r.get('target') in ('cp/hard1', 'cp/hard2'), comm='ln')
has('symlink recorded by ln, with its target', 'symlink', 'tar/biglink',
    lambda r: r.get('target') == '../cp/big.bin', comm='ln')
has('setxattr recorded by setfattr with the SHA-256 of the value',
    'setxattr', 'cp/big.bin',
    lambda r: r['name'] == 'user.case' and r['size'] == 8 and
    r['sha256'] == sha(b'INC-4711'), comm='setfattr')
has('removexattr recorded by setfattr', 'removexattr', 'cp/big.bin',
    lambda r: r['name'] == 'user.tmp', comm='setfattr')
has('chmod recorded', 'setattr', 'cp/empty', lambda r: r.get('mode') == 0o600,
    comm='chmod')
has('chown recorded', 'setattr', 'cp/empty',
    lambda r: r.get('uid') == 65534 and r.get('gid') == 65534, comm='chown')
has('touch recorded', 'setattr', 'cp/empty', lambda r: r.get('utimens'),
    comm='touch')
has('the non-root create is recorded with uid/gid 65534', 'create',
    'pub/n.txt', uid=65534, gid=65534)
has('the non-root mkdir is recorded with uid 65534', 'mkdir', 'pub/nd',
    uid=65534, gid=65534)
has('the non-root symlink is recorded with uid 65534', 'symlink', 'pub/nl',
    uid=65534)
sh = by.get(('write', b'conc/shared.log'), [])
t.ok(len({w['actor']['pid'] for w in sh}) >= 2,
     'shared.log: writes from several appenders (%d pids)'
     % len({w['actor']['pid'] for w in sh}))
for k in (1, 2, 3, 4):
    vs = by.get(('version', ('conc/p%d.bin' % k).encode()), [])
    t.ok(any(v['why'] == 'fsync' for v in vs) and vs[-1]['size'] == 200000,
         'p%d.bin: versions at fsync and a final one of 200000 bytes' % k,
         [(v['why'], v['size']) for v in vs])
deep = [r for r in recs if r['type'] == 'create' and
        (rpath(r) or b'').endswith(b'/bottom.txt')]
t.ok(deep and len(rpath(deep[0])) > 4096,
     'the file beyond PATH_MAX has a create record with its full path (%d '
     'bytes)' % (len(rpath(deep[0])) if deep else 0))
dv = [r for r in recs if r['type'] == 'version' and
      (rpath(r) or b'').endswith(b'/bottom.txt')]
t.ok(dv and dv[-1]['sha256'] == sha(b'at the bottom\n'),
     'and a version with its content')
sh = one('write', 'shared.txt')
t.ok([(w['length'], w['actor']['comm'].startswith('python'))
      for w in sh] == [(15, False), (15, True)],
     'shared.txt: the shell\'s write names the shell, the child\'s the '
     'child (not the opener)', [(w['length'], w['actor']['comm'])
                                for w in sh])
types = {r['type'] for r in recs}
t.ok(types >= {'mount', 'unmount', 'commit', 'checkpoint', 'create', 'write',
               'version', 'mkdir', 'symlink', 'link', 'rename', 'setattr',
               'setxattr', 'removexattr', 'open'},
     'the chain has every kind of record (%s)' % ' '.join(sorted(types)))
EOF
tap_import <"$T/tap"

tap_finish
