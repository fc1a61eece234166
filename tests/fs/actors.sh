#!/bin/bash
# actors.sh HOZEN - each record names who acted, and the file it is
# about (issue: actors that are not who acted).
#  - A shell opens a file and execs python, which writes: the create is
#    the shell's, the write python's (the process as it is at that
#    moment, not as it was cached).
#  - A pid reused at once (forced with ns_last_pid): the new process's
#    writes name it, not the process that had the pid before.
#  - A write from a thread names the process (pid = its tgid, comm and
#    exe the process's) and the thread (tid, and thread: its own name,
#    which a thread sets to anything with PR_SET_NAME); a write from the
#    main thread has no tid.
#  - fallocate through a handle root opened and passed to uid 1000 names
#    uid 1000 and its process.
#  - Writes through a surviving hard link, after an unlink, after a
#    rename over the file, after a rename: 'hozen verify' passes, git's
#    snapshot shows every name's current content and no removed name,
#    every byte written is in a version, and the write after the first
#    name is removed names the file by its remaining name and by the
#    same fid (the seq of the record that created it) as its creation.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
fs_setup "$1"
cd "$T" || exit 2
S=$T/store
M=$T/mnt
PY=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
export PY

"$HOZEN" init "$S" >/dev/null
check "mount" fs_mount "$S" "$M"

# ------------------------------------------------ the shell, then exec
bash -c "exec '$PY' -c 'print(1)' >'$M/z'"
check "a shell's redirection, then exec python, which writes" \
	[ "$(cat "$M/z")" = 1 ]

# ------------------------------------------------------- a reused pid
"$PY" - "$M" >"$T/reuse" <<'EOF'
import os, subprocess, sys
mnt = sys.argv[1]
for attempt in range(50):
    a = os.path.join(mnt, 'by-dd-%d' % attempt)
    p = subprocess.Popen(['dd', 'if=/dev/zero', 'of=' + a, 'bs=1',
                          'count=1', 'status=none'])
    p.wait()
    with open('/proc/sys/kernel/ns_last_pid', 'w') as f:
        f.write(str(p.pid - 1))
    child = os.fork()
    if child == 0:
        if os.getpid() == p.pid:
            fd = os.open(os.path.join(mnt, 'by-python'),
                         os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, b'python\n')
            os.close(fd)
        os._exit(0)
    os.waitpid(child, 0)
    if child == p.pid:
        print(p.pid, os.path.basename(a))
        break
EOF
read -r reused ddfile <"$T/reuse"
if [ -n "$reused" ]; then
	ok "pid $reused: dd wrote $ddfile, then python with the same pid wrote"
else
	skip "pid reuse" "could not get the same pid again (ns_last_pid)"
fi

# ------------------------------------------------------------ a thread
"$PY" - "$M/threaded" >"$T/thread" <<'EOF'
import ctypes, os, sys, threading
libc = ctypes.CDLL(None)
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b'from the main thread\n')
tid = []
def run():
    libc.prctl(15, b'sshd', 0, 0, 0)  # PR_SET_NAME: any name it likes
    tid.append(threading.get_native_id())
    os.write(fd, b'from a thread\n')
th = threading.Thread(target=run)
th.start()
th.join()
os.close(fd)
print(os.getpid(), tid[0], open('/proc/self/comm').read().strip())
EOF
read -r tpid ttid tcomm <"$T/thread"
check "a thread named 'sshd' writes (pid $tpid, tid $ttid, comm $tcomm)" \
	[ -n "$ttid" ] && [ "$tpid" != "$ttid" ]

# ----------------------------------------- fallocate through a passed fd
mkdir "$M/pub" && chmod 1777 "$M/pub"
printf 'root made it\n' >"$M/pub/fa"
chmod 666 "$M/pub/fa"
# shellcheck disable=SC2016 # python code
setpriv --reuid=1000 --regid=1000 --clear-groups "$PY" -c '
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64,
                           ctypes.c_int64)
if libc.fallocate(3, 0, 0, 65536) < 0:
    raise OSError(ctypes.get_errno(), "fallocate")
os.write(3, b"uid 1000 wrote\n")' 3<>"$M/pub/fa"
check "uid 1000 fallocates and writes through a handle root opened" \
	[ "$(stat -c %s "$M/pub/fa")" = 65536 ]

# ------------------------------------------------ names of one file
mkdir "$M/d"
echo a >"$M/d/f"
ln "$M/d/f" "$M/d/g"
rm "$M/d/f"
echo b >>"$M/d/g"
check "a hard link, the first name removed, appended through the second" \
	[ "$(cat "$M/d/g")" = "a
b" ]
echo a >"$M/d/h1"
ln "$M/d/h1" "$M/d/h2"
echo b >>"$M/d/h2"
check "a hard link appended through its second name: both show it" \
	[ "$(cat "$M/d/h1")" = "a
b" ]
"$PY" - "$M/d" <<'EOF'
import os, subprocess, sys
d = sys.argv[1]
# Written after its only name is removed.
fd = os.open(d + '/u', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b'before unlink\n')
os.unlink(d + '/u')
os.write(fd, b'after unlink\n')
os.close(fd)
# Written after another file is renamed over it.
fd = os.open(d + '/r', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b'before the rename over it\n')
with open(d + '/s', 'w') as f:
    f.write('renamed over\n')
os.rename(d + '/s', d + '/r')
os.write(fd, b'after the rename over it\n')
os.close(fd)
# Written after it is renamed.
fd = os.open(d + '/m', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b'before the rename\n')
os.rename(d + '/m', d + '/m2')
os.write(fd, b'after the rename\n')
os.close(fd)
EOF
check "writes after an unlink, a rename over, a rename" [ $? -eq 0 ]

python3 "$D/check.py" snapshot "$M" "$T/snap"
check "unmount" fs_umount "$M"
run verify "$S"
if [ "$rc" -eq 0 ]; then
	ok "hozen verify exits 0"
else
	not_ok "hozen verify exits 0 (exit $rc)" "$(head -c 1500 "$T/out")" \
		"$(head -c 1500 "$T/err")"
fi
pycheck head "$S" "$T/snap"

python3 - "$S" "$reused" "$ddfile" "$tpid" "$ttid" "$tcomm" >"$T/tap" <<'EOF'
import os, sys
sys.path.insert(0, os.environ['D'])
from check import Tap, records, rpath, git, content, sha
store, reused, ddfile, tpid, ttid, tcomm = sys.argv[1:7]
PY = os.environ['PY']
t = Tap()
recs = records(store)

def of(typ, path, test=lambda r: True):
    return [r for r in recs if r['type'] == typ and
            rpath(r) == path.encode() and test(r)]

def actors(rs):
    return [(r['type'], {k: v for k, v in r['actor'].items()})
            for r in rs]

# The shell opened, python wrote.
c, w = of('create', 'z'), of('write', 'z')
t.ok(c and c[0]['actor']['comm'] == 'bash',
     'z: the create names the shell that opened it', *actors(c))
t.ok(w and all(r['actor']['comm'].startswith('python') and
               r['actor']['exe'] == PY for r in w),
     'z: the write names python (comm and exe %s), which made it' % PY,
     *actors(w))

# The reused pid.
if reused:
    dd = of('write', ddfile)
    py = of('create', 'by-python') + of('write', 'by-python')
    t.ok(dd and dd[0]['actor']['comm'] == 'dd' and
         dd[0]['actor']['pid'] == int(reused),
         '%s: written by dd, pid %s' % (ddfile, reused), *actors(dd))
    t.ok(len(py) == 2 and all(r['actor']['pid'] == int(reused) and
                              r['actor']['comm'].startswith('python') and
                              r['actor']['exe'] == PY for r in py),
         'by-python: its create and write name python with the reused pid '
         '%s, not dd' % reused, *actors(py))

# The thread.
w = of('write', 'threaded')
main = [r for r in w if r['length'] == len(b'from the main thread\n')]
thr = [r for r in w if r['length'] == len(b'from a thread\n')]
t.ok(main and main[0]['actor']['pid'] == int(tpid) and
     main[0]['actor']['comm'] == tcomm and 'tid' not in main[0]['actor'],
     'threaded: the main thread\'s write names the process (pid %s, comm '
     '%s) and no tid' % (tpid, tcomm), *actors(main))
a = thr[0]['actor'] if thr else {}
t.ok(a.get('pid') == int(tpid) and a.get('comm') == tcomm and
     a.get('exe') == PY,
     'threaded: the thread\'s write names the process: pid %s (the tgid, '
     'not the thread id), its comm %s and exe' % (tpid, tcomm), a)
t.ok(a.get('tid') == int(ttid) and a.get('thread') == 'sshd',
     'threaded: and the thread: tid %s, thread "sshd" (its own name)' %
     ttid, a)

# fallocate through the passed handle.
fa = of('fallocate', 'pub/fa')
t.ok(fa and fa[0]['actor']['uid'] == 1000 and fa[0]['actor']['gid'] == 1000
     and fa[0]['actor']['comm'].startswith('python'),
     'pub/fa: the fallocate names uid 1000 and python, who called it, not '
     'the opener (uid 0)', *actors(fa))
w = of('write', 'pub/fa')
t.ok(w and w[-1]['actor']['uid'] == 1000,
     'pub/fa: so does the write through that handle', *actors(w))

# Names of one file.
def show(path):
    p = git(store, 'show', 'main:' + path, check=False)
    if p.returncode:
        return None
    data, _ = content(store, git(store, 'rev-parse', 'main:' + path)
                      .stdout.decode().strip())
    return data

for path, want in (('d/g', b'a\nb\n'), ('d/h1', b'a\nb\n'),
                   ('d/h2', b'a\nb\n'), ('d/r', b'renamed over\n'),
                   ('d/m2', b'before the rename\nafter the rename\n')):
    got = show(path)
    t.ok(got == want, "git's snapshot (main) has %s with its current "
         "content" % path, 'main:%s is %r' % (path, got))
for path in ('d/f', 'd/u', 'd/m', 'd/s'):
    t.ok(show(path) is None, "main has no %s (removed or renamed)" % path)
vers = {r['sha256'] for r in recs if r['type'] == 'version'}
for name, data in (('u', b'before unlink\nafter unlink\n'),
                   ('r', b'before the rename over it\n'
                         b'after the rename over it\n')):
    t.ok(sha(data) in vers, 'd/%s: what was written after the name went is '
         'in a version (nothing written is lost)' % name)
gone = of('unlink', 'd/f')
h1 = of('create', 'd/h1')
b = [r for r in recs if r['type'] == 'write' and
     r.get('sha256') == sha(b'b\n') and gone and h1 and
     gone[0]['seq'] < r['seq'] < h1[0]['seq']]
t.ok(len(b) == 1 and rpath(b[0]) == b'd/g',
     'd/g: the append after d/f was removed is recorded under d/g',
     [(rpath(r), r['seq']) for r in b])
cr = of('create', 'd/f')
fid = cr[0].get('fid', cr[0]['seq']) if cr else None
ln = of('link', 'd/g')
t.ok(cr and cr[0].get('fid', cr[0]['seq']) == cr[0]['seq'] and ln and
     ln[0].get('fid') == fid and len(b) == 1 and b[0].get('fid') == fid,
     'd/g: its link and the append carry fid %s, the seq of the create of '
     'd/f (one file)' % fid,
     'link: %s' % (ln[0].get('fid') if ln else None),
     'write: %s' % (b[0].get('fid') if b else None))
EOF
tap_import <"$T/tap"
tap_finish
