#!/usr/bin/env python3
"""check.py - what the filesystem tests check in a store after unmount,
with nothing but the chain (`hozen log --json`), git and the standard
library.  A module for the scripts' inline checks, and a command:

  check.py snapshot DIR OUT      list DIR's files (path, kind, sha256,
                                 link target) as JSON lines, by fd (no
                                 path length limit)
  check.py versions STORE        every version record's blob is in git
                                 with the recorded bytes, and reachable
  check.py git STORE             git fsck, commits and their trailers
  check.py head STORE SNAPSHOT   HEAD's tree is the live tree

It prints TAP lines without numbers ("ok - NAME"), which lib.sh numbers.
HOZEN in the environment names the binary.
"""
import base64
import hashlib
import json
import os
import re
import stat
import subprocess
import sys

HOZEN = os.environ.get('HOZEN', 'hozen')
LFS_RE = re.compile(rb'^version https://git-lfs.github.com/spec/v1\n'
                    rb'oid sha256:([0-9a-f]{64})\nsize ([0-9]+)\n$')


def records(store):
    out = subprocess.run([HOZEN, 'log', '--json', store], check=True,
                         stdout=subprocess.PIPE).stdout
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def rpath(rec, key='path'):
    """A record's path as bytes (path or path_b64)."""
    if key in rec:
        return rec[key].encode()
    if key + '_b64' in rec:
        return base64.b64decode(rec[key + '_b64'])
    return None


def git(store, *args, check=True, inp=None):
    p = subprocess.run(['git', '--git-dir', os.path.join(store, 'git')] +
                       list(args), input=inp, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=False)
    if check and p.returncode != 0:
        raise RuntimeError('git %s: %s' % (' '.join(args),
                                           p.stderr.decode(errors='replace')))
    return p


def lfs_path(store, oid):
    return os.path.join(store, 'git', 'lfs', 'objects', oid[:2], oid[2:4],
                        oid)


def content(store, blob):
    """(bytes, is_lfs) of a version blob, or raise."""
    raw = git(store, 'cat-file', 'blob', blob).stdout
    m = LFS_RE.match(raw)
    if not m:
        return raw, False
    oid, size = m.group(1).decode(), int(m.group(2))
    with open(lfs_path(store, oid), 'rb') as f:
        data = f.read()
    if len(data) != size or hashlib.sha256(data).hexdigest() != oid:
        raise RuntimeError('LFS object %s does not match its pointer' % oid)
    return data, True


def sha(data):
    return hashlib.sha256(data).hexdigest()


class Tap:
    def __init__(self):
        self.failed = 0

    def ok(self, cond, name, *diag):
        print(('ok - ' if cond else 'not ok - ') + name)
        if not cond:
            self.failed += 1
            for d in diag[:20]:
                for line in str(d).splitlines():
                    print('#   ' + line)
        return cond


def snapshot(top, out):
    """Every entry below top, by fd: {path_b64, kind, sha256|target}."""
    with open(out, 'w') as o:
        for root, dirs, files, dfd in os.fwalk(os.fsencode(top)):
            rel = os.path.relpath(root, os.fsencode(top))
            rel = b'' if rel == b'.' else rel + b'/'
            for name in sorted(dirs + files):
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                e = {'path_b64': base64.b64encode(rel + name).decode()}
                if stat.S_ISLNK(st.st_mode):
                    e['kind'] = 'link'
                    e['target_b64'] = base64.b64encode(
                        os.readlink(name, dir_fd=dfd)).decode()
                elif stat.S_ISDIR(st.st_mode):
                    e['kind'] = 'dir'
                elif stat.S_ISREG(st.st_mode):
                    fd = os.open(name, os.O_RDONLY, dir_fd=dfd)
                    with os.fdopen(fd, 'rb') as f:
                        e['sha256'] = sha(f.read())
                    e['kind'] = 'file'
                    e['x'] = bool(st.st_mode & 0o111)
                else:
                    e['kind'] = 'other'
                o.write(json.dumps(e) + '\n')


def load_snapshot(path):
    snap = {}
    for line in open(path):
        e = json.loads(line)
        snap[base64.b64decode(e['path_b64'])] = e
    return snap


def reachable(store):
    out = git(store, 'rev-list', '--objects', '--all').stdout
    return {l.split(b' ')[0].decode() for l in out.splitlines()}


def check_versions(store, t):
    recs = records(store)
    vers = [r for r in recs if r['type'] == 'version']
    bad, badlfs = [], []
    for r in vers:
        try:
            data, lfs = content(store, r['blob'])
        except Exception as e:  # noqa: BLE001 - report any failure
            bad.append('seq %d %r: %s' % (r['seq'], rpath(r), e))
            continue
        if sha(data) != r['sha256'] or len(data) != r['size']:
            bad.append('seq %d %r: git has %d bytes sha256 %s, the record '
                       'says %d bytes %s' % (r['seq'], rpath(r), len(data),
                                             sha(data), r['size'],
                                             r['sha256']))
        if lfs != bool(r.get('lfs')):
            badlfs.append('seq %d %r: lfs %s in git, %s in the record' %
                          (r['seq'], rpath(r), lfs, r.get('lfs')))
    t.ok(vers and not bad, 'every version record (%d) has its blob in git '
         'with the recorded size and SHA-256' % len(vers), *bad)
    t.ok(not badlfs, 'the lfs flag of every version record is right',
         *badlfs)
    links = [r for r in recs if r['type'] == 'symlink' and 'blob' in r]
    badl = []
    for r in links:
        try:
            data, _ = content(store, r['blob'])
            if data != rpath(r, 'target'):
                badl.append('seq %d: blob holds %r' % (r['seq'], data))
        except Exception as e:  # noqa: BLE001
            badl.append('seq %d: %s' % (r['seq'], e))
    t.ok(not badl, 'every symlink record (%d) has its target as a blob' %
         len(links), *badl)
    reach = reachable(store)
    lost = ['seq %d %r (why %s) blob %s' % (r['seq'], rpath(r), r['why'],
                                            r['blob'])
            for r in vers if r['blob'] not in reach]
    t.ok(not lost, 'every version blob is reachable from a ref (git gc '
         'cannot prune it): %d of %d are not' % (len(lost), len(vers)),
         *lost)


def check_git(store, t):
    p = git(store, 'fsck', '--full', '--strict', check=False)
    t.ok(p.returncode == 0, 'git fsck --full --strict passes',
         p.stderr.decode(errors='replace')[-2000:])
    log = git(store, 'log', '--format=%H%x00%B%x01', 'main',
              check=False).stdout.decode()
    commits = {}
    for chunk in log.split('\x01'):
        chunk = chunk.strip('\n')
        if not chunk:
            continue
        h, msg = chunk.split('\x00', 1)
        m = re.search(r'^Hozen-Records: (\d+)-(\d+)$', msg, re.M)
        commits[h] = (int(m.group(1)), int(m.group(2))) if m else None
    t.ok(commits and all(commits.values()),
         'git log shows %d commit(s), each with a Hozen-Records trailer' %
         len(commits),
         *[h for h, v in commits.items() if not v])
    crec = [r for r in records(store) if r['type'] == 'commit']
    bad = []
    for r in crec:
        want = (r['first'], r['last'])
        if commits.get(r['commit']) != want:
            bad.append('seq %d names commit %s %s; git log has %s' %
                       (r['seq'], r['commit'], want,
                        commits.get(r['commit'], 'no such commit on main')))
    t.ok(crec and not bad and len(crec) == len(commits),
         'every commit record (%d) names a commit of main with its range; '
         'main has %d' % (len(crec), len(commits)), *bad)
    ranges = sorted(v for v in commits.values() if v)
    gaps = ['%s then %s' % (a, b) for a, b in zip(ranges, ranges[1:])
            if b[0] != a[1] + 1]
    t.ok(not gaps and ranges and ranges[0][0] == 0,
         'the commits cover the records from 0 without gaps or overlaps',
         *gaps)


def head_tree(store):
    """HEAD's tree: path (bytes) -> (mode, blob)."""
    out = git(store, 'ls-tree', '-r', '-z', 'HEAD').stdout
    tree = {}
    for ent in out.split(b'\0'):
        if not ent:
            continue
        meta, path = ent.split(b'\t', 1)
        mode, _, blob = meta.split(b' ')
        tree[path] = (mode.decode(), blob.decode())
    return tree


def check_head(store, snapfile, t):
    snap = load_snapshot(snapfile)
    tree = head_tree(store)
    missing, wrong = [], []
    for p, e in sorted(snap.items()):
        if e['kind'] not in ('file', 'link'):
            continue
        if p not in tree:
            missing.append(p)
            continue
        mode, blob = tree[p]
        try:
            data, _ = content(store, blob)
        except Exception as ex:  # noqa: BLE001
            wrong.append('%r: %s' % (p, ex))
            continue
        if e['kind'] == 'link':
            good = mode == '120000' and data == base64.b64decode(
                e['target_b64'])
        else:
            good = (sha(data) == e['sha256'] and
                    mode == ('100755' if e['x'] else '100644'))
        if not good:
            wrong.append('%r: mode %s, content sha256 %s' %
                         (p, mode, sha(data)))
    nfiles = sum(1 for e in snap.values() if e['kind'] in ('file', 'link'))
    t.ok(not missing, "HEAD's tree has every file and symlink of the live "
         "tree (%d of %d missing)" % (len(missing), nfiles),
         *[repr(m) for m in missing])
    t.ok(not wrong, "HEAD's tree holds each live file's bytes and mode",
         *wrong)
    extra = [p for p in tree if p not in snap or
             snap[p]['kind'] not in ('file', 'link')]
    t.ok(not extra, "HEAD's tree has nothing the live tree does not",
         *[repr(p) for p in extra])


def main():
    t = Tap()
    cmd = sys.argv[1]
    if cmd == 'snapshot':
        snapshot(sys.argv[2], sys.argv[3])
        return 0
    fn = {'versions': lambda: check_versions(sys.argv[2], t),
          'git': lambda: check_git(sys.argv[2], t),
          'head': lambda: check_head(sys.argv[2], sys.argv[3], t)}.get(cmd)
    if not fn:
        raise SystemExit('unknown command ' + cmd)
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - a check that cannot run fails
        t.ok(False, 'check.py %s could run' % cmd, repr(e))
    return 0


if __name__ == '__main__':
    sys.exit(main())
