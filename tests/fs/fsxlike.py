#!/usr/bin/env python3
"""fsxlike.py - a random-operations exerciser in the spirit of fsx: one
file, a model of its content in memory, random operations on the file
through the mount, every read checked against the model.

  fsxlike.py [OPTIONS] FILE

Operations: pwrite, pwritev, an append through a second handle opened
with O_APPEND, ftruncate (grow, shrink, to 0), fallocate in every mode
(plain, KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE with and without KEEP_SIZE,
COLLAPSE_RANGE, INSERT_RANGE: a mode the filesystem does not support
fails with EOPNOTSUPP and leaves the model as it is), copy_file_range
(from a source file beside FILE and from FILE itself), writes through a
shared mapping (msync), a write through a second name of the file (a
hard link FILE.lnk opened for it), reads (pread) checked against the
model, fsync, fdatasync, close and reopen (now and then with O_TRUNC).

--log LOG appends one JSON line per point where the filesystem must take
a version: {"path", "why" (fsync / close), "sha256", "size", "op"}, with
path relative to --root; a line is written with one write(2) after the
call returned, so an fsync line means "acknowledged".

With --slot I/N the file is shared by N exercisers: this one owns the
region [I*R, (I+1)*R) (R = --max-size / N), the file is grown to N*R
and never shrunk, and only operations inside the region are made
(writes, pwritev, hole punching and zeroing with KEEP_SIZE,
copy_file_range, mapped writes); its log lines carry "slot": [off, len]
and the SHA-256 of the region.

--ready FILE is created once the file is open (the run has begun).
--stop FILE: stop when FILE exists; a failing call when FILE exists
(the daemon was killed on purpose) ends the run quietly with status 0.
Otherwise any unexpected error or a read that differs from the model is
reported on stderr and the exit status is 1.
"""
import argparse
import collections
import ctypes
import errno
import hashlib
import json
import mmap
import os
import random
import sys

KEEP_SIZE, PUNCH_HOLE, COLLAPSE_RANGE = 0x01, 0x02, 0x08
ZERO_RANGE, INSERT_RANGE = 0x10, 0x20
BLOCK = 4096
PAGE = mmap.ALLOCATIONGRANULARITY

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64,
                            ctypes.c_int64)


def fallocate(fd, mode, off, length):
    if _libc.fallocate(fd, mode, off, length) < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


class Stopped(Exception):
    """The daemon was killed on purpose: end quietly."""


class Mismatch(Exception):
    pass


class Ex:
    def __init__(self, a):
        self.a = a
        self.path = a.file
        self.rel = os.path.relpath(a.file, a.root) if a.root else a.file
        self.rnd = random.Random(a.seed)
        self.max = a.max_size
        self.counts = {}
        self.unsupported = set()
        self.nlog = 0
        self.op = 0
        self.fd = -1
        self.model = bytearray()
        self.trace = collections.deque(maxlen=24)  # the last calls
        if a.slot:
            i, n = (int(x) for x in a.slot.split('/'))
            self.rlen = (self.max // n) // BLOCK * BLOCK
            self.roff = i * self.rlen
            self.rend = self.roff + self.rlen
            self.total = n * self.rlen
            self.srcpath = '%s.src%d' % (self.path, i)
        else:
            self.roff, self.rend = 0, self.max
            self.srcpath = self.path + '.src'
        self.logfd = (os.open(a.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                              0o644) if a.log else -1)

    # ------------------------------------------------------------ helpers
    def count(self, what):
        self.counts[what] = self.counts.get(what, 0) + 1

    def call(self, what, fn, *args, allow=()):
        """Run a system call; an error ends the run (quietly if stopped),
        except one whose errno is in allow: then it is returned."""
        self.trace.append('op %d: %s%s' % (self.op, what, ''.join(
            ' %d' % x for x in args if isinstance(x, int) and
            not isinstance(x, bool))))
        try:
            return fn(*args)
        except OSError as e:
            if e.errno in allow:
                return e
            if self.a.stop and os.path.exists(self.a.stop):
                raise Stopped() from e
            raise OSError(e.errno, 'op %d (%s): %s' % (
                self.op, what, os.strerror(e.errno))) from e

    def stopped(self):
        return self.a.stop and os.path.exists(self.a.stop)

    def data(self, n):
        return self.rnd.randbytes(n)

    def length(self, limit):
        r = self.rnd.random()
        n = (self.rnd.randint(1, 4096) if r < 0.4 else
             self.rnd.randint(1, 65536) if r < 0.75 else
             self.rnd.randint(1, 524288) if r < 0.95 else
             self.rnd.randint(1, 2 << 20))
        return max(1, min(n, limit))

    def offset(self, length):
        """An offset in the region (near the end half of the time)."""
        lo, hi = self.roff, self.rend - length
        if self.a.slot or self.rnd.random() < 0.5:
            return self.rnd.randint(lo, max(lo, hi))
        end = len(self.model)
        return max(0, min(hi, end + self.rnd.randint(-65536, 65536)))

    def log(self, why):
        if self.logfd < 0:
            return
        if self.a.slot:
            body = bytes(self.model[self.roff:self.rend])
            e = {'slot': [self.roff, self.rlen]}
        else:
            body = bytes(self.model)
            e = {}
        e.update({'path': self.rel, 'why': why, 'op': self.op,
                  'sha256': hashlib.sha256(body).hexdigest(),
                  'size': len(self.model)})
        os.write(self.logfd, (json.dumps(e) + '\n').encode())
        self.nlog += 1

    def put(self, off, data):
        """The model after writing data at off."""
        if off > len(self.model):
            self.model.extend(bytes(off - len(self.model)))
        self.model[off:off + len(data)] = data

    def zero(self, off, end):
        end = min(end, len(self.model))
        if end > off:
            self.model[off:end] = bytes(end - off)

    # --------------------------------------------------------- open/close
    def open(self, trunc=False):
        flags = os.O_RDWR | os.O_CREAT | (os.O_TRUNC if trunc else 0)
        self.fd = self.call('open', os.open, self.path, flags, 0o644)
        if trunc:
            self.model = bytearray()
        if self.a.slot:
            st = self.call('fstat', os.fstat, self.fd)
            if st.st_size < self.total:
                self.call('grow', os.ftruncate, self.fd, self.total)

    def close(self):
        self.call('close', os.close, self.fd)
        self.fd = -1
        self.log('close')

    # ---------------------------------------------------------- the ops
    def op_write(self):
        n = self.length(self.rend - self.roff)
        off = self.offset(n)
        d = self.data(n)
        k = self.call('pwrite', os.pwrite, self.fd, d, off)
        self.put(off, d[:k])

    def op_pwritev(self):
        bufs = [self.data(self.length(262144))
                for _ in range(self.rnd.randint(2, 4))]
        n = min(sum(len(b) for b in bufs), self.rend - self.roff)
        off = self.offset(n)
        d = b''.join(bufs)[:n]
        parts, at = [], 0
        for b in bufs:
            if at >= n:
                break
            parts.append(d[at:at + len(b)])
            at += len(b)
        k = self.call('pwritev', os.pwritev, self.fd, parts, off)
        self.put(off, d[:k])

    def op_append(self):
        n = self.length(max(1, self.max - len(self.model)))
        if len(self.model) + n > self.max:
            return self.op_truncate()
        d = self.data(n)
        fd = self.call('open append', os.open, self.path,
                       os.O_WRONLY | os.O_APPEND)
        try:
            k = self.call('append', os.write, fd, d)
        finally:
            self.call('close append', os.close, fd)
        self.put(len(self.model), d[:k])
        return None

    def op_link(self):
        """A write through another name of the same file."""
        lnk = self.path + '.lnk'
        if not os.path.lexists(lnk):
            self.call('link', os.link, self.path, lnk)
        n = self.length(self.max)
        off = self.offset(n)
        d = self.data(n)
        fd = self.call('open link', os.open, lnk, os.O_RDWR)
        try:
            k = self.call('pwrite link', os.pwrite, fd, d, off)
        finally:
            self.call('close link', os.close, fd)
        self.put(off, d[:k])

    def op_truncate(self):
        r = self.rnd.random()
        size = (0 if r < 0.15 else self.rnd.randint(0, self.max))
        self.call('ftruncate', os.ftruncate, self.fd, size)
        if size < len(self.model):
            del self.model[size:]
        else:
            self.model.extend(bytes(size - len(self.model)))

    def op_fallocate(self):
        modes = ([PUNCH_HOLE | KEEP_SIZE, ZERO_RANGE | KEEP_SIZE]
                 if self.a.slot else
                 [0, KEEP_SIZE, PUNCH_HOLE | KEEP_SIZE, ZERO_RANGE,
                  ZERO_RANGE | KEEP_SIZE, COLLAPSE_RANGE, INSERT_RANGE])
        mode = self.rnd.choice(modes)
        size = len(self.model)
        if mode in (COLLAPSE_RANGE, INSERT_RANGE):
            blocks = size // BLOCK
            if blocks < 2:
                return
            off = self.rnd.randint(0, blocks - 2) * BLOCK
            n = self.rnd.randint(1, min(64, blocks - off // BLOCK - 1)) * \
                BLOCK
            if mode == INSERT_RANGE and size + n > self.max:
                return
        else:
            n = self.length(self.rend - self.roff)
            off = self.offset(n)
        name = 'fallocate %#x' % mode
        if self.call(name, fallocate, self.fd, mode, off, n,
                     allow=(errno.EOPNOTSUPP,)):
            self.unsupported.add(mode)
            self.count(name + ' (unsupported)')
            return
        if mode == 0 or mode == ZERO_RANGE:
            if off + n > size:
                self.model.extend(bytes(off + n - size))
        if mode & (PUNCH_HOLE | ZERO_RANGE):
            self.zero(off, off + n)
        elif mode == COLLAPSE_RANGE:
            del self.model[off:off + n]
        elif mode == INSERT_RANGE:
            self.model[off:off] = bytes(n)
        self.count(name)

    def op_copy(self):
        """copy_file_range from the source file, or within FILE."""
        src, srcdata = self.srcfd, self.src
        if not self.a.slot and len(self.model) >= 2 and \
                self.rnd.random() < 0.5:
            src, srcdata = self.fd, bytes(self.model)
        n = self.length(max(1, len(srcdata) // 2))
        n = min(n, self.rend - self.roff)
        soff = self.rnd.randint(0, max(0, len(srcdata) - n))
        off = self.offset(n)
        if src == self.fd and off < soff + n and soff < off + n:
            # The ranges of a copy within one file must not overlap.
            off = soff + n
            if off + n > self.rend:
                return
        done = 0
        while done < n:
            k = self.call('copy_file_range', os.copy_file_range, src,
                          self.fd, n - done, soff + done, off + done)
            if k == 0:
                break
            done += k
        self.put(off, srcdata[soff:soff + done])

    def op_mmap(self):
        lo, hi = self.roff, min(self.rend, len(self.model))
        if hi - lo < 1:
            return self.op_write()
        n = self.length(hi - lo)
        off = self.rnd.randint(lo, hi - n)
        start = off // PAGE * PAGE
        d = self.data(n)
        m = self.call('mmap', mmap.mmap, self.fd, off + n - start,
                      mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE,
                      0, start)
        try:
            m[off - start:off - start + n] = d
            self.call('msync', m.flush)
        finally:
            m.close()
        self.put(off, d)
        return None

    def op_read(self, whole=False):
        lo, hi = self.roff, min(self.rend, len(self.model))
        if whole or hi <= lo:
            off, n = lo, max(0, hi - lo)
        else:
            n = self.length(hi - lo)
            off = self.rnd.randint(lo, hi - n)
        got = self.call('pread', os.pread, self.fd, n + 1 if whole else n,
                        off)
        want = bytes(self.model[off:off + n])
        if not self.a.slot and whole:
            want = bytes(self.model[off:])
        elif self.a.slot and whole:
            got = got[:n]
        if got != want and len(got) < len(want) and \
                want.startswith(got) and self.stopped():
            # A read cut short by the daemon's death (the kill).
            raise Stopped()
        if got != want:
            at = next((i for i in range(min(len(got), len(want)))
                       if got[i] != want[i]), min(len(got), len(want)))
            raise Mismatch('op %d: read of %d bytes at %d differs from the '
                           'model at byte %d (got %d bytes)' %
                           (self.op, n, off, off + at, len(got)))

    def op_fsync(self):
        if self.rnd.random() < 0.3:
            self.call('fdatasync', os.fdatasync, self.fd)
        else:
            self.call('fsync', os.fsync, self.fd)
        self.log('fsync')

    def op_reopen(self):
        self.op_read(whole=True)
        self.close()
        self.open(trunc=not self.a.slot and self.rnd.random() < 0.2)

    # ------------------------------------------------------------ the run
    def run(self):
        self.src = self.data(1 << 20)
        fd = self.call('create source', os.open, self.srcpath,
                       os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.call('write source', os.write, fd, self.src)
        self.call('close source', os.close, fd)
        self.srcfd = self.call('open source', os.open, self.srcpath,
                               os.O_RDONLY)
        if self.a.slot:
            self.model = bytearray(self.total)
            self.open()
        else:
            self.open(trunc=True)
        if self.a.ready:
            open(self.a.ready, 'w').close()
        ops = [('write', self.op_write, 20), ('pwritev', self.op_pwritev, 6),
               ('read', self.op_read, 12), ('fsync', self.op_fsync, 5),
               ('copy_file_range', self.op_copy, 5),
               ('fallocate', self.op_fallocate, 8),
               ('reopen', self.op_reopen, 3)]
        if not self.a.slot:
            ops += [('append', self.op_append, 5),
                    ('truncate', self.op_truncate, 6),
                    ('link', self.op_link, 2)]
        if not self.a.no_mmap:
            ops.append(('mmap', self.op_mmap, 6))
        names = [o[0] for o in ops]
        weights = [o[2] for o in ops]
        fns = dict((o[0], o[1]) for o in ops)
        while not self.a.ops or self.op < self.a.ops:
            if self.a.stop and self.op % 8 == 0 and self.stopped():
                break
            self.op += 1
            name = self.rnd.choices(names, weights)[0]
            fns[name]()
            self.count(name)
        self.op_read(whole=True)
        self.op_fsync()
        self.close()
        self.call('close source', os.close, self.srcfd)

    def summary(self):
        return '%s: %d ops, %d versions logged, size %d; %s%s' % (
            self.rel, self.op, self.nlog, len(self.model),
            ' '.join('%s=%d' % kv for kv in sorted(self.counts.items())),
            '; unsupported fallocate modes: %s' % ' '.join(
                '%#x' % m for m in sorted(self.unsupported))
            if self.unsupported else '')


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('file')
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--ops', type=int, default=1000,
                   help='operations (0: until --stop)')
    p.add_argument('--max-size', type=int, default=4 << 20)
    p.add_argument('--no-mmap', action='store_true')
    p.add_argument('--log')
    p.add_argument('--root', help='log paths relative to this directory')
    p.add_argument('--slot', help='I/N: share the file, own region I of N')
    p.add_argument('--stop', help='stop (and forgive errors) once it exists')
    p.add_argument('--ready', help='create this file once the file is open')
    a = p.parse_args()
    ex = Ex(a)
    try:
        ex.run()
    except Stopped:
        print('fsxlike: stopped: ' + ex.summary())
        return 0
    except (OSError, Mismatch) as e:
        if isinstance(e, OSError) and ex.stopped():
            print('fsxlike: stopped: ' + ex.summary())
            return 0
        sys.stderr.write('fsxlike: %s (seed %d): %s\n' % (ex.rel, a.seed, e))
        sys.stderr.write('fsxlike: %s\n' % ex.summary())
        sys.stderr.write('fsxlike: the last calls (fd, values):\n')
        for line in ex.trace:
            sys.stderr.write('fsxlike:   %s\n' % line)
        return 1
    print('fsxlike: ' + ex.summary())
    return 0


if __name__ == '__main__':
    sys.exit(main())
