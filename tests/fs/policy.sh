#!/bin/bash
# policy.sh HOZEN - the three policies on real mounts.
#  preserve (default): unlink, rmdir, rename over a file, truncate and an
#    O_TRUNC overwrite succeed in the live view, and every earlier version
#    stays in git: a file written but not yet versioned is versioned
#    (why unlink / truncate / rename-over) before it goes;
#  --worm: a closed file is immutable (EPERM, and a refused record with
#    errno 1 for each attempt); new files are written until closed;
#  --read-only: every change is refused with EROFS and recorded; reads work.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
fs_setup "$1"
cd "$T" || exit 2
M=$T/mnt

# hold.py PATH CONTENT CMD...: write CONTENT to PATH through a handle kept
# open, push it to the daemon (closing a dup flushes the writeback cache)
# so the file is written but not versioned, run CMD, then close.
cat >"$T/hold.py" <<'EOF'
import os, subprocess, sys
path, content, cmd = sys.argv[1], sys.argv[2].encode(), sys.argv[3:]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, content)
os.close(os.dup(fd))
rc = subprocess.call(cmd)
os.close(fd)
sys.exit(rc)
EOF
hold() { python3 "$T/hold.py" "$@"; }

# attempt NAME WANT_ERR OPS PATH CMD...: CMD must fail with the message of
# WANT_ERR; OPS (op names a refused record may carry) and PATH go to the
# manifest the chain is checked against.
attempt()
{
	local name=$1 want=$2 ops=$3 path=$4 out
	shift 4
	out=$("$@" 2>&1)
	if [ $? -ne 0 ] && [[ $out == *"$want"* ]]; then
		ok "$name: refused ($want)"
	else
		not_ok "$name: refused ($want)" "command: $*" "output: $out"
	fi
	printf '%s\t%s\t%s\n' "$ops" "$path" "$name" >>"$T/attempts"
}

# refused_check STORE ERRNO: every attempt in $T/attempts has, in order, a
# refused record with that errno, one of its ops and its path.
refused_check()
{
	python3 - "$1" "$2" "$T/attempts" >"$T/tap" <<'EOF'
import os, sys
sys.path.insert(0, os.environ['D'])
from check import Tap, records, rpath
store, errno, manifest = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t = Tap()
ref = [r for r in records(store) if r['type'] == 'refused']
i = 0
for line in open(manifest, encoding='utf-8'):
    ops, path, name = line.rstrip('\n').split('\t')
    ops = ops.split(',')
    j = i
    while j < len(ref) and not (rpath(ref[j]) == path.encode() and
                                ref[j]['op'] in ops):
        j += 1
    if j < len(ref):
        r = ref[j]
        t.ok(r['errno'] == errno and r.get('error'),
             '%s: a refused record (op %s, errno %d, "%s")' %
             (name, r['op'], r['errno'], r.get('error')), r)
        i = j + 1
    else:
        t.ok(False, '%s: a refused record with op %s and path %s' %
             (name, '/'.join(ops), path),
             'refused records from here: %s' % [
                 (r['op'], rpath(r), r['errno']) for r in ref[i:]])
others = [r for r in ref if r['errno'] != errno]
t.ok(not others, 'no refused record with another errno than %d' % errno,
     *others)
EOF
	tap_import <"$T/tap"
	: >"$T/attempts"
}

# ================================================================ preserve
S=$T/preserve
"$HOZEN" init "$S" >/dev/null
check "preserve: mount" fs_mount "$S" "$M"

# Written and closed (so versioned at close), then removed or replaced.
printf 'closed unlink v1\n' >"$M/c-unlink"
printf 'closed trunc v1\n' >"$M/c-trunc"
printf 'closed otrunc v1\n' >"$M/c-otrunc"
printf 'closed over v1\n' >"$M/c-over"
printf 'closed src\n' >"$M/c-src"
mkdir -p "$M/dir/sub" && printf 'in a dir\n' >"$M/dir/sub/f"
rm "$M/c-unlink"
check "unlink of a closed file succeeds" [ ! -e "$M/c-unlink" ]
truncate -s 4 "$M/c-trunc"
check "truncate of a closed file succeeds" \
	[ "$(cat "$M/c-trunc")" = clos ]
printf 'closed otrunc v2\n' >"$M/c-otrunc"
check "O_TRUNC overwrite of a closed file succeeds" \
	[ "$(cat "$M/c-otrunc")" = "closed otrunc v2" ]
mv "$M/c-src" "$M/c-over"
check "rename over a closed file succeeds" \
	[ "$(cat "$M/c-over")" = "closed src" ] && [ ! -e "$M/c-src" ]
rm "$M/dir/sub/f" && rmdir "$M/dir/sub" && rmdir "$M/dir"
check "rm of a file and rmdir of its directories succeed" [ ! -e "$M/dir" ]

# Written but not versioned yet (the writer still holds it open).
hold "$M/d-unlink" 'dirty unlink content' rm "$M/d-unlink"
check "unlink of a file still open for writing succeeds" \
	[ ! -e "$M/d-unlink" ]
hold "$M/d-trunc" 'dirty trunc content' truncate -s 5 "$M/d-trunc"
check "truncate of a file still open for writing succeeds" \
	[ "$(cat "$M/d-trunc")" = dirty ]
hold "$M/d-otrunc" 'dirty otrunc content' \
	sh -c "printf replaced >'$M/d-otrunc'"
check "O_TRUNC overwrite of a file still open for writing succeeds" \
	[ "$(cat "$M/d-otrunc")" = replaced ]
printf 'moved over it\n' >"$M/d-src"
hold "$M/d-over" 'dirty over content' mv "$M/d-src" "$M/d-over"
check "rename over a file still open for writing succeeds" \
	[ "$(cat "$M/d-over")" = "moved over it" ]
# The same file through many versions, then gone.
for i in 1 2 3 4 5; do printf 'generation %d\n' $i >"$M/gens"; done
rm "$M/gens"
check "five overwrites, then unlink" [ ! -e "$M/gens" ]

python3 "$D/check.py" snapshot "$M" "$T/snap"
check "preserve: unmount" fs_umount "$M"
expect_rc "preserve: hozen verify exits 0" 0 verify "$S"
pycheck git "$S"
pycheck versions "$S"
pycheck head "$S" "$T/snap"
python3 - "$S" >"$T/tap" <<'EOF'
import os, sys
sys.path.insert(0, os.environ['D'])
from check import Tap, records, rpath, sha, content
store = sys.argv[1]
t = Tap()
recs = records(store)

def vers(path):
    return [r for r in recs if r['type'] == 'version' and
            rpath(r) == path.encode()]

def first(typ, path, test=lambda r: True):
    rs = [r for r in recs if r['type'] == typ and
          rpath(r) == path.encode() and test(r)]
    return rs[0] if rs else None

def kept(name, path, old, typ, test=lambda r: True, why=None):
    """A version of path with content old, before the first typ record;
    with why, that version's why."""
    gone = first(typ, path, test)
    vs = [v for v in vers(path) if v['sha256'] == sha(old)]
    if gone is None:
        return t.ok(False, name + ': the %s record is there' % typ)
    before = [v for v in vs if v['seq'] < gone['seq']]
    good = bool(before)
    if good and why:
        good = before[-1]['why'] == why
    if good:
        data, _ = content(store, before[-1]['blob'])
        good = data == old
    t.ok(good, '%s: the old content is versioned%s before the %s record '
         '(seq %d) and git has its bytes' % (name,
                                              ' (why %s)' % why if why else '',
                                              typ, gone['seq']),
         [(v['seq'], v['why'], v['sha256'][:12]) for v in vers(path)])

kept('closed, unlinked', 'c-unlink', b'closed unlink v1\n', 'unlink')
kept('closed, truncated', 'c-trunc', b'closed trunc v1\n', 'setattr',
     lambda r: 'size' in r)
kept('closed, overwritten with O_TRUNC', 'c-otrunc', b'closed otrunc v1\n',
     'open', lambda r: r['flags'] & os.O_TRUNC)
EOF
# The rename's record names the source path (and "to" the target).
python3 - "$S" >>"$T/tap" <<'EOF'
import os, sys
sys.path.insert(0, os.environ['D'])
from check import Tap, records, rpath, sha, content
store = sys.argv[1]
t = Tap()
recs = records(store)

def check(name, path, old, pick, why=None):
    ev = [r for r in recs if pick(r)]
    vs = [r for r in recs if r['type'] == 'version' and
          rpath(r) == path.encode()]
    if not ev:
        t.ok(False, name + ': the event is recorded')
        return
    ev = ev[0]
    before = [v for v in vs if v['sha256'] == sha(old) and v['seq'] < ev['seq']]
    good = bool(before) and (why is None or before[-1]['why'] == why)
    if good:
        data, _ = content(store, before[-1]['blob'])
        good = data == old
    t.ok(good, '%s: the old content is versioned%s before the %s record '
         '(seq %d) and git has its bytes' % (
             name, ' (why %s)' % why if why else '', ev['type'], ev['seq']),
         [(v['seq'], v['why'], v['sha256'][:12]) for v in vs])

def ev(typ, path, test=lambda r: True):
    return lambda r: (r['type'] == typ and rpath(r) == path.encode() and
                      test(r))

check('closed, renamed over', 'c-over', b'closed over v1\n',
      ev('rename', 'c-src', lambda r: r.get('to') == 'c-over'))
check('rmdir: the file in the removed directory', 'dir/sub/f',
      b'in a dir\n', ev('rmdir', 'dir/sub'))
t.ok(any(r['type'] == 'rmdir' and rpath(r) == b'dir' for r in recs),
     'rmdir records for both directories')
check('open for writing, unlinked', 'd-unlink', b'dirty unlink content',
      ev('unlink', 'd-unlink'), 'unlink')
check('open for writing, truncated', 'd-trunc', b'dirty trunc content',
      ev('setattr', 'd-trunc', lambda r: 'size' in r), 'truncate')
check('open for writing, overwritten with O_TRUNC', 'd-otrunc',
      b'dirty otrunc content',
      ev('open', 'd-otrunc', lambda r: r['flags'] & os.O_TRUNC), 'truncate')
check('open for writing, renamed over', 'd-over', b'dirty over content',
      ev('rename', 'd-src', lambda r: r.get('to') == 'd-over'),
      'rename-over')
gens = [r for r in recs if r['type'] == 'version' and rpath(r) == b'gens']
t.ok(sorted(r['sha256'] for r in gens) ==
     sorted(sha(b'generation %d\n' % i) for i in range(1, 6)),
     'five overwrites: five versions, one of each generation',
     [(r['seq'], r['why']) for r in gens])
EOF
tap_import <"$T/tap"

# =================================================================== worm
S=$T/worm
"$HOZEN" init "$S" >/dev/null
check "worm: mount --worm" fs_mount "$S" "$M" --worm
printf 'sealed evidence\n' >"$M/w"
mkdir "$M/wd"
printf 'in a directory\n' >"$M/wd/w2"
setfattr -n user.before -v 1 "$M/w" 2>/dev/null
check "worm: a new file is written and closed" \
	[ "$(cat "$M/w")" = "sealed evidence" ]
: >"$T/attempts"
EP="Operation not permitted"
attempt "worm: overwrite with >" "$EP" open w sh -c "echo x >'$M/w'"
attempt "worm: append with >>" "$EP" open w sh -c "echo x >>'$M/w'"
attempt "worm: truncate -s 0" "$EP" open,setattr w truncate -s 0 "$M/w"
attempt "worm: rm" "$EP" unlink w rm -f "$M/w"
attempt "worm: mv" "$EP" rename w mv "$M/w" "$M/w-moved"
attempt "worm: mv over it" "$EP" rename wd/w2 mv "$M/wd/w2" "$M/w"
attempt "worm: chmod" "$EP" setattr w chmod 600 "$M/w"
attempt "worm: chown" "$EP" setattr w chown 65534 "$M/w"
attempt "worm: touch" "$EP" open,setattr w touch -d 2001-01-01 "$M/w"
attempt "worm: setfattr" "$EP" setxattr w setfattr -n user.x -v 1 "$M/w"
attempt "worm: dd conv=notrunc" "$EP" open w \
	dd if=/dev/zero of="$M/w" bs=1 count=1 conv=notrunc status=none
check "worm: the file is unchanged" [ "$(cat "$M/w")" = "sealed evidence" ]
check "worm: its mode is unchanged" [ "$(stat -c %a "$M/w")" = 644 ]
python3 -c '
import os, sys, time
p = sys.argv[1]
fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
for i in range(5):
    os.write(fd, b"part %d\n" % i)
    time.sleep(0.05)
os.close(fd)' "$M/new"
check "worm: a new file is written in several writes until closed" \
	[ "$(wc -l <"$M/new")" = 5 ]
attempt "worm: append to it after its close" "$EP" open new \
	sh -c "echo more >>'$M/new'"
check "worm: reads work" cmp "$M/new" <(for i in 0 1 2 3 4; do echo "part $i"; done)
check "worm: unmount" fs_umount "$M"
expect_rc "worm: hozen verify exits 0" 0 verify "$S"
refused_check "$S" 1
pycheck versions "$S"

# ============================================================== read-only
S=$T/ro
"$HOZEN" init "$S" >/dev/null
fs_mount "$S" "$M" &&
	printf 'before\n' >"$M/f" && mkdir "$M/d" && printf 'x\n' >"$M/d/g" &&
	setfattr -n user.a -v 1 "$M/f" && ln -s f "$M/l" &&
	fs_umount "$M"
check "read-only: a store with a file, a directory, a symlink" [ $? -eq 0 ]
(cd "$S/tree" && find . -printf '%y %m %s %p\n' | sort) >"$T/ro.before"
check "read-only: mount --read-only" fs_mount "$S" "$M" --read-only
RO="Read-only file system"
attempt "read-only: create" "$RO" create new sh -c "echo x >'$M/new'"
attempt "read-only: write to an existing file" "$RO" open f \
	sh -c "echo x >>'$M/f'"
attempt "read-only: O_TRUNC" "$RO" open f sh -c "echo x >'$M/f'"
attempt "read-only: mkdir" "$RO" mkdir nd mkdir "$M/nd"
attempt "read-only: rm" "$RO" unlink f rm -f "$M/f"
attempt "read-only: rmdir" "$RO" rmdir d rmdir "$M/d"
attempt "read-only: mv" "$RO" rename f mv "$M/f" "$M/f2"
attempt "read-only: chmod" "$RO" setattr f chmod 600 "$M/f"
attempt "read-only: chown" "$RO" setattr f chown 65534 "$M/f"
attempt "read-only: setfattr" "$RO" setxattr f setfattr -n user.b -v 2 "$M/f"
attempt "read-only: setfattr -x" "$RO" removexattr f setfattr -x user.a "$M/f"
attempt "read-only: truncate" "$RO" open,setattr f truncate -s 0 "$M/f"
attempt "read-only: ln" "$RO" link f2 ln "$M/f" "$M/f2"
attempt "read-only: ln -s" "$RO" symlink s2 ln -s f "$M/s2"
attempt "read-only: mknod fifo" "$RO" mknod fifo mkfifo "$M/fifo"
check "read-only: reads work" [ "$(cat "$M/f")" = before ]
check "read-only: readdir works" \
	[ "$(cd "$M" && echo *)" = "d f l" ]
check "read-only: getfattr works" \
	[ "$(getfattr --only-values -n user.a "$M/f" 2>/dev/null)" = 1 ]
check "read-only: readlink works" [ "$(readlink "$M/l")" = f ]
check "read-only: unmount" fs_umount "$M"
(cd "$S/tree" && find . -printf '%y %m %s %p\n' | sort) >"$T/ro.after"
check "read-only: the tree is unchanged" cmp "$T/ro.before" "$T/ro.after"
expect_rc "read-only: hozen verify exits 0" 0 verify "$S"
refused_check "$S" 30
tap_finish
