/*
 * versions.c - file versions in the store's bare git repository, small
 * content as blobs, large content as Git LFS objects beside it.
 *
 * Layout (all under STORE/git):
 *
 *   objects/pack/pack-*.{pack,idx}
 *                               one pack per commit: its commits, new
 *                               trees and every new blob of the batch
 *   objects/...                 loose objects of older stores
 *   hozen-journal               the blobs of the batch not yet committed
 *                               ("blob SIZE\0" CONTENT, one after another)
 *   hozen-journal.torn-TIME     a journal whose tail was unreadable
 *   refs/heads/main             the snapshots, one commit per vs_commit()
 *   lfs/objects/aa/bb/HEX       content of SHA-256 HEX, mode 0444
 *   lfs/objects/aa/bb/.tmp-*    being written (left over after a crash)
 *
 * The Git LFS pointer text is exactly
 *
 *   "version https://git-lfs.github.com/spec/v1\n"
 *   "oid sha256:" 64 lower-case hex digits "\n"
 *   "size " decimal, no leading zero "\n"
 *
 * and nothing else (the spec allows more keys; we never write them and
 * refuse them when reading).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>
#include <git2/sys/mempack.h>
#include <git2/sys/odb_backend.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "versions.h"

#define VS_CHUNK	   (1u << 20) /* I/O and hashing chunk */
#define VS_PATH_MAX	   (64 * 1024)
#define VS_KEEP_REF	   "refs/hozen/versions"
#define VS_LFS_DIR	   "lfs"
#define VS_LFS_OBJECTS	   "lfs/objects"
#define VS_LFS_SPEC	   "version https://git-lfs.github.com/spec/v1\n"
#define VS_LFS_OID	   "oid sha256:"
#define VS_LFS_SIZE	   "size "
#define VS_SIGNATURE_NAME  "hozen"
#define VS_SIGNATURE_EMAIL "hozen@localhost"
#define VS_JOURNAL	   "hozen-journal"
#define VS_OPEN_PACKS	   256	       /* pack files libgit2 keeps open */
#define VS_PACK_WINDOW	   (8u << 20)  /* bytes of a pack mapped at once */
#define VS_PACK_MAPPED	   (32u << 20) /* pack bytes mapped in all */
#define VS_MIDX_EVERY	   256 /* new packs between multi-pack-indexes */
#define VS_BATCH_MAX	   (64u << 20) /* new content held at most */
#define VS_MEM_PRIORITY	   1000 /* above the loose (1) and pack (2) backends */
#define VS_PACK_PRIORITY   2	/* libgit2's own priorities */
#define VS_LOOSE_PRIORITY  1
#define VS_JINDEX_MAX	   (1u << 20) /* journal entries indexed (read-only) */
#define VS_FLUX_TRIES	   8 /* reads of a journal that keeps changing */
#define VS_SMALL_MAX	   (64 * 1024) /* largest ref, HEAD or config read */
#define VS_DEPTH_MAX	   32	       /* directories nested in git/ at most */

/* A staged change. */
struct vs_op {
	char *path;
	git_oid id;    /* UPSERT only */
	unsigned mode; /* UPSERT only */
	int remove;    /* 1: GIT_TREE_UPDATE_REMOVE */
};

/* A growing list of object ids. */
struct oidlist {
	git_oid *v;
	size_t n, cap;
};

static int oidlist_add(struct oidlist *l, const git_oid *id)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 256;
		git_oid *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return hc_error_set(HC_ENOMEM, "out of memory");
		l->v = v;
		l->cap = cap;
	}
	git_oid_cpy(&l->v[l->n++], id);
	return 0;
}

struct vs_repo {
	/*
	 * lock protects repo, odb, check and the staged list: libgit2
	 * objects must not be used from two threads at once.
	 */
	pthread_mutex_t lock;
	git_repository *repo;
	git_odb *odb;
	git_treebuilder *check; /* validates entry names for vs_stage() */
	struct vs_op *ops;
	size_t n_ops, cap_ops;

	/* Set by vs_open, read-only afterwards. */
	int lfsfd;    /* STORE/git/lfs/objects, or -1 (read-only, none) */
	int readonly; /* opened with vs_open_existing */
	uint64_t threshold;
	int fsync;
	int gitfd; /* STORE/git: its files, and syncfs */

	/*
	 * The batch: objects written since the last commit live in memory
	 * (mem, a libgit2 mempack backend that takes every write) and their
	 * blobs also in the journal STORE/git/hozen-journal (jfd), until
	 * vs_commit() writes them as one pack.  Under lock.
	 */
	git_odb_backend *mem; /* owned by odb once added */
	int jfd;	      /* -1: no journal (read-only) */
	struct oidlist batch; /* the blobs of the batch, in write order */
	uint64_t batch_bytes;
	size_t replayed;    /* blobs read back from the journal at open */
	unsigned new_packs; /* since the last multi-pack-index */
	uint64_t torn;	    /* bytes of an incomplete last journal entry */

	/*
	 * Read-only, the journal is not loaded but indexed (another process
	 * may append to it and empty it at any time): its blobs by id, read
	 * when asked.  Under lock; NULL when writing.
	 */
	struct jindex *ji;
};

static atomic_ulong tmp_counter;

static int copy_content(int in, int out, uint64_t size);

/* ------------------------------------------------------------- libgit2 */

static pthread_once_t git_once = PTHREAD_ONCE_INIT;
static int git_init_rc;

static void git_init(void)
{
	git_init_rc = git_libgit2_init();
	/*
	 * A pack per commit makes many packs: keep at most this many open
	 * (libgit2 closes the least recently used), well under the limit on
	 * open files.
	 */
	if (git_init_rc >= 0)
		(void)git_libgit2_opts(GIT_OPT_SET_MWINDOW_FILE_LIMIT,
				       (size_t)VS_OPEN_PACKS);
	/*
	 * libgit2 maps packs in windows of 1 GiB and keeps up to 8 GiB
	 * mapped on 64-bit systems: every page it touched stays in the
	 * process (verify of 100,000 files: 159 MiB peak RSS, 116 with
	 * these).
	 * Smaller windows, and few of them at once, bound that.
	 */
	if (git_init_rc >= 0) {
		(void)git_libgit2_opts(GIT_OPT_SET_MWINDOW_SIZE,
				       (size_t)VS_PACK_WINDOW);
		(void)git_libgit2_opts(GIT_OPT_SET_MWINDOW_MAPPED_LIMIT,
				       (size_t)VS_PACK_MAPPED);
	}
}

/*
 * The one adapter from libgit2's errors to ours (vs_git_error): what
 * failed, then libgit2's message.  The code follows libgit2's return
 * code and error class.
 */
__attribute__((format(printf, 2, 0))) static int
git_failv(int gerr, const char *fmt, va_list ap)
{
	const git_error *e = git_error_last();
	const char *msg = e && e->message ? e->message : "unknown error";
	int klass = e ? e->klass : GIT_ERROR_NONE;
	int saved = errno, code;
	size_t len = strlen(msg);
	char what[512];

	vsnprintf(what, sizeof(what), fmt, ap);
	switch (gerr) {
	case GIT_ENOTFOUND:
		code = HC_ENOENT;
		break;
	case GIT_EEXISTS:
		code = HC_EEXIST;
		break;
	case GIT_EINVALID:
	case GIT_EINVALIDSPEC:
	case GIT_EAMBIGUOUS:
		code = HC_EINVAL;
		break;
	case GIT_ELOCKED:
	case GIT_EMODIFIED:
		code = HC_EBUSY;
		break;
	default:
		code = klass == GIT_ERROR_OS	     ? HC_ESYS
		       : klass == GIT_ERROR_NOMEMORY ? HC_ENOMEM
						     : HC_EFORMAT;
	}
	if (code == HC_ESYS) {
		/* hc_error_set appends strerror(errno): say it only once. */
		const char *s = saved ? strerror(saved) : "";
		size_t ls = strlen(s);

		if (!saved)
			saved = EIO;
		else if (len >= ls + 2 && !strcmp(msg + len - ls, s) &&
			 !strncmp(msg + len - ls - 2, ": ", 2))
			len -= ls + 2;
		errno = saved;
	}
	return hc_error_set(code, "%s: %.*s", what, (int)len, msg);
}

__attribute__((format(printf, 2, 3))) static int git_fail(int gerr,
							  const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = git_failv(gerr, fmt, ap);
	va_end(ap);
	return rc;
}

int vs_git_error(int gerr, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = git_failv(gerr, fmt, ap);
	va_end(ap);
	return rc;
}

/* ------------------------------------------------------- files in git/ */

/*
 * Every file of STORE/git that versions.c opens by path is opened with
 * open_regular(): no component may be a symlink and the file must be a
 * regular one, checked before it is opened (a FIFO would block the
 * open, a device must not be opened at all) and again on the open file.
 */

/* What a file that should be regular is instead. */
static const char *ftype(mode_t m)
{
	if (S_ISLNK(m))
		return "a symlink";
	if (S_ISFIFO(m))
		return "a FIFO";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISCHR(m) || S_ISBLK(m))
		return "a device";
	if (S_ISDIR(m))
		return "a directory";
	return "of an unknown type";
}

/*
 * Open dirfd/path (components separated by single '/') read-only, with
 * O_NOFOLLOW, O_NONBLOCK and O_CLOEXEC, into *out (and its stat into
 * *st_out, may be NULL).  show is dirfd's store-relative name, for
 * messages.  HC_ENOENT if it does not exist, HC_EFORMAT if it (or a
 * directory on the way) is not a regular file (a directory), HC_ESYS.
 */
static int open_regular(int dirfd, const char *show, const char *path, int *out,
			struct stat *st_out)
{
	char comp[NAME_MAX + 1];
	const char *p = path, *slash;
	struct stat st, st2;
	int cur = dirfd, fd = -1, rc = 0, last;
	size_t n;

	for (;;) {
		slash = strchr(p, '/');
		last = !slash;
		n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0 || n > NAME_MAX) {
			rc = hc_error_set(HC_EINVAL, "bad path '%s/%s'", show,
					  path);
			goto out;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		if (fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = errno == ENOENT || errno == ENOTDIR
				     ? hc_error_set(HC_ENOENT,
						    "'%s/%.*s' does not exist",
						    show, (int)(p + n - path),
						    path)
				     : hc_error_set(
					       HC_ESYS, "cannot stat '%s/%.*s'",
					       show, (int)(p + n - path), path);
			goto out;
		}
		if (last ? !S_ISREG(st.st_mode) : !S_ISDIR(st.st_mode)) {
			rc = hc_error_set(
				HC_EFORMAT, "'%s/%.*s' is %s, not a %s", show,
				(int)(p + n - path), path, ftype(st.st_mode),
				last ? "regular file" : "directory");
			goto out;
		}
		fd = openat(
			cur, comp,
			last ? O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC
			     : O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st2) < 0) {
			rc = hc_error_set(errno == ENOENT ? HC_ENOENT : HC_ESYS,
					  "cannot open '%s/%.*s'", show,
					  (int)(p + n - path), path);
			goto out;
		}
		if (st2.st_dev != st.st_dev || st2.st_ino != st.st_ino ||
		    (st2.st_mode & S_IFMT) != (st.st_mode & S_IFMT)) {
			rc = hc_error_set(HC_EFORMAT,
					  "'%s/%.*s' was replaced while opened",
					  show, (int)(p + n - path), path);
			goto out;
		}
		if (cur != dirfd)
			close(cur);
		cur = fd;
		fd = -1;
		if (last)
			break;
		p = slash + 1;
	}
	*out = cur;
	cur = dirfd;
	if (st_out)
		*st_out = st2;
out:
	if (fd >= 0)
		close(fd);
	if (cur != dirfd)
		close(cur);
	return rc;
}

/* pread until len bytes or the end of the file: how many, or -1. */
static ssize_t pread_upto(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	ssize_t k;

	while (done < len) {
		k = pread(fd, (char *)buf + done, len - done,
			  (off_t)(off + done));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		if (k == 0)
			break;
		done += (size_t)k;
	}
	return (ssize_t)done;
}

/*
 * Read the regular file dirfd/path (see open_regular) of at most max
 * bytes into *out (malloc'd, NUL-terminated, length *len).  HC_EFORMAT if
 * it is larger.
 */
static int read_small(int dirfd, const char *show, const char *path, size_t max,
		      char **out, size_t *len)
{
	char *buf = NULL;
	ssize_t k;
	int fd = -1, rc;

	rc = open_regular(dirfd, show, path, &fd, NULL);
	if (rc < 0)
		return rc;
	buf = malloc(max + 2);
	if (!buf) {
		rc = hc_error_set(HC_ENOMEM, "out of memory");
		goto out;
	}
	k = pread_upto(fd, buf, max + 1, 0);
	if (k < 0) {
		rc = hc_error_set(HC_ESYS, "cannot read '%s/%s'", show, path);
		goto out;
	}
	if ((size_t)k > max) {
		rc = hc_error_set(HC_EFORMAT,
				  "'%s/%s' is larger than %zu bytes", show,
				  path, max);
		goto out;
	}
	buf[k] = '\0';
	*out = buf;
	*len = (size_t)k;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

/* ----------------------------------------------------------- the batch */

/*
 * A new object goes to the mempack backend (memory), and a new blob also
 * to the journal, one entry per blob, exactly as git hashes it:
 * "blob SIZE\0" then SIZE bytes.  The journal makes a blob durable with
 * one append (and, for fsync, one fdatasync) instead of a file per
 * object; vs_commit() writes the batch as one pack and empties it.  A
 * crash leaves the journal, read back by the next vs_open().
 */

/*
 * Parse an entry's header ("blob SIZE\0") from the n bytes at p: 1 with
 * *hdr (its length, with the NUL) and *size; 0 if the bytes end within
 * it; HC_EFORMAT if it is malformed.  Reads at most the first 26 bytes.
 */
static int entry_header(const char *p, size_t n, size_t *hdr, uint64_t *size)
{
	static const char magic[] = "blob ";
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < 5; i++) {
		if (i == n)
			return 0; /* torn in the magic */
		if (p[i] != magic[i])
			return hc_error_set(HC_EFORMAT,
					    "journal entry does not start "
					    "with 'blob '");
	}
	for (; i < n && p[i] != '\0'; i++) {
		if (p[i] < '0' || p[i] > '9' || i >= 5 + 20 ||
		    (i > 5 && p[5] == '0'))
			return hc_error_set(HC_EFORMAT,
					    "journal entry has a bad size");
		v = v * 10 + (uint64_t)(p[i] - '0');
		if (v > VS_BLOB_MAX)
			return hc_error_set(HC_EFORMAT,
					    "journal entry larger than %u "
					    "bytes",
					    VS_BLOB_MAX);
	}
	if (i == n)
		return 0; /* torn in the size */
	if (i == 5)
		return hc_error_set(HC_EFORMAT, "journal entry has no size");
	*hdr = i + 1;
	*size = v;
	return 1;
}

int vs_journal_entry(const void *buf, size_t len, size_t *hdr, uint64_t *size)
{
	size_t h = 0;
	uint64_t v = 0;
	int e = entry_header(buf, len, &h, &v);

	if (e <= 0)
		return e;
	if (len - h < v)
		return 0; /* torn in the content */
	*hdr = h;
	*size = v;
	return 1;
}

/* Remember a new blob of the batch (lock held). */
static int batch_push_locked(vs_repo *r, const git_oid *oid, size_t len)
{
	int rc = oidlist_add(&r->batch, oid);

	if (rc == 0)
		r->batch_bytes += len;
	return rc;
}

/* Append a blob to the journal (lock held); undone if incomplete. */
static int journal_append_locked(vs_repo *r, const void *buf, size_t len)
{
	char hdr[32];
	struct iovec iov[2];
	struct stat st;
	size_t left;
	ssize_t k;
	int n;

	n = snprintf(hdr, sizeof(hdr), "blob %zu", len);
	iov[0].iov_base = hdr;
	iov[0].iov_len = (size_t)n + 1; /* with its NUL */
	iov[1].iov_base = (void *)(uintptr_t)buf;
	iov[1].iov_len = len;
	left = iov[0].iov_len + len;
	if (fstat(r->jfd, &st) < 0)
		return hc_error_set(HC_ESYS, "cannot stat the journal");
	while (left > 0) {
		k = writev(r->jfd, iov, 2);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			int e = k < 0 ? errno : EIO;

			/* Never leave half an entry behind. */
			(void)ftruncate(r->jfd, st.st_size);
			errno = e;
			return hc_error_set(HC_ESYS,
					    "cannot append to the journal");
		}
		left -= (size_t)k;
		for (n = 0; n < 2 && k > 0; n++) {
			size_t d = (size_t)k < iov[n].iov_len ? (size_t)k
							      : iov[n].iov_len;

			iov[n].iov_base = (char *)iov[n].iov_base + d;
			iov[n].iov_len -= d;
			k -= (ssize_t)d;
		}
	}
	if (r->fsync && fdatasync(r->jfd) < 0)
		return hc_error_set(HC_ESYS, "cannot sync the journal");
	return 0;
}

/*
 * Whether git has oid (lock held).  Without looking for packs written
 * behind our back: the only new packs are ours, and git_odb_refresh()
 * follows each.  (A refresh reads objects/pack/ again: once per object
 * it would cost more than the object.)
 */
static int has_object_locked(vs_repo *r, const git_oid *oid)
{
	return git_odb_exists_ext(r->odb, oid, GIT_ODB_LOOKUP_NO_REFRESH);
}

/*
 * Write a blob git does not have (lock held): straight into the batch
 * (git_odb_write() would look for it in every backend, refreshing the
 * packs, when the caller has just checked), and into the journal.
 */
static int blob_write_locked(vs_repo *r, const void *buf, size_t len,
			     git_oid *oid)
{
	int g, rc;

	g = git_odb_hash(oid, buf, len, GIT_OBJECT_BLOB);
	if (g < 0)
		return git_fail(g, "cannot hash blob");
	/* Commits keep failing (a full disk): do not hold ever more. */
	if (r->batch_bytes + len > VS_BATCH_MAX)
		return hc_error_set(HC_ENOMEM,
				    "%llu bytes of new content wait for a "
				    "commit: none is taken until one succeeds",
				    (unsigned long long)r->batch_bytes);
	/* The journal first: the batch holds nothing it does not. */
	rc = journal_append_locked(r, buf, len);
	if (rc < 0)
		return rc;
	g = r->mem->write(r->mem, oid, buf, len, GIT_OBJECT_BLOB);
	if (g < 0)
		return git_fail(g, "cannot write blob");
	return batch_push_locked(r, oid, len);
}

/*
 * The journal is read with pread into bounded buffers, never mapped:
 * another process (the daemon) may append to it or empty it while it is
 * read, and a mapping would then fault (SIGBUS) instead of reading
 * short.
 */

/* The journal has fewer bytes than it had: it changed under the read. */
#define JE_FLUX 2

/*
 * The header of the entry at off of a journal of fsize bytes (fd): 1
 * with *hdr and *size if the whole entry is within fsize, 0 if it is not
 * (torn), JE_FLUX if the file is shorter than fsize, HC_EFORMAT or
 * HC_ESYS.
 */
static int jentry_at(int fd, uint64_t off, uint64_t fsize, size_t *hdr,
		     uint64_t *size)
{
	char buf[32];
	size_t want =
		fsize - off < sizeof(buf) ? (size_t)(fsize - off) : sizeof(buf);
	ssize_t k = pread_upto(fd, buf, want, off);
	size_t h = 0;
	uint64_t v = 0;
	int e;

	if (k < 0)
		return hc_error_set(HC_ESYS, "cannot read the journal");
	if ((size_t)k < want)
		return JE_FLUX;
	e = entry_header(buf, want, &h, &v);
	if (e <= 0)
		return e;
	if (fsize - off - h < v)
		return 0;
	*hdr = h;
	*size = v;
	return 1;
}

/*
 * Read the writer's journal back into the batch.  Entries up to the first
 * incomplete or malformed one are kept; if anything follows, the whole
 * journal is first kept aside as hozen-journal.torn-TIME (nothing is
 * thrown away) and the journal rewritten with the good entries.  Lock
 * held (or not yet shared).
 */
static int journal_replay(vs_repo *r, int gitfd, int jfd)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t hdr = 0, cap = 0;
	uint64_t off = 0, size = 0, fsize;
	git_oid oid;
	char aside[64];
	int rc = 0, e, g, afd = -1;

	if (fstat(jfd, &st) < 0)
		return hc_error_set(HC_ESYS, "cannot stat the journal");
	fsize = (uint64_t)st.st_size;
	while (off < fsize) {
		e = jentry_at(jfd, off, fsize, &hdr, &size);
		if (e == JE_FLUX) {
			rc = hc_error_set(HC_EFORMAT,
					  "the journal shrank while "
					  "it was read back");
			goto out;
		}
		if (e == HC_ESYS) {
			rc = e;
			goto out;
		}
		if (e <= 0)
			break; /* torn or malformed: the tail, kept aside */
		if (size > cap || !buf) {
			uint8_t *more = realloc(buf, size ? (size_t)size : 1);

			if (!more) {
				rc = hc_error_set(HC_ENOMEM, "out of memory "
							     "reading the "
							     "journal");
				goto out;
			}
			buf = more;
			cap = (size_t)size;
		}
		rc = hc_pread_all(jfd, buf, (size_t)size, (off_t)(off + hdr));
		if (rc < 0)
			goto out;
		/* Straight into the batch, as blob_write_locked() does. */
		g = git_odb_hash(&oid, buf, (size_t)size, GIT_OBJECT_BLOB);
		if (g < 0) {
			rc = git_fail(g, "cannot read the journal back");
			goto out;
		}
		off += hdr + size;
		r->replayed++;
		/* Packed already (the crash came after the pack was written).
		 */
		if (has_object_locked(r, &oid))
			continue;
		g = r->mem->write(r->mem, &oid, buf, (size_t)size,
				  GIT_OBJECT_BLOB);
		if (g < 0) {
			rc = git_fail(g, "cannot read the journal back");
			goto out;
		}
		rc = batch_push_locked(r, &oid, (size_t)size);
		if (rc < 0)
			goto out;
	}
	r->torn = fsize - off;
	if (r->torn == 0)
		goto out;
	/* A copy (a link would share the truncation), durable first. */
	snprintf(aside, sizeof(aside), VS_JOURNAL ".torn-%lld",
		 (long long)time(NULL));
	afd = openat(gitfd, aside,
		     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		     0400);
	if (afd < 0 || copy_content(jfd, afd, fsize) < 0 || fsync(afd) < 0 ||
	    ftruncate(jfd, (off_t)off) < 0 || fsync(jfd) < 0) {
		rc = hc_error_set(HC_ESYS,
				  "cannot keep the journal's torn "
				  "tail aside as '%s'",
				  aside);
		goto out;
	}
out:
	if (afd >= 0)
		close(afd);
	free(buf);
	return rc;
}

/* ----------------------------------------- the journal, read-only */

/*
 * Opened read-only (verification), the journal is indexed, not loaded:
 * the daemon may be appending to it, and a commit empties it (after
 * the pack holding its blobs is durable).  The index maps each blob id
 * to its entry; a blob is read when asked, and its content checked
 * against its id, so that an index made stale by a commit never yields
 * wrong content.  The index grows as the journal does (refreshed when a
 * blob is not found) and starts over when the journal shrank or its
 * first entry changed (a commit emptied it since).  At most
 * VS_JINDEX_MAX entries are indexed (32 bytes each); past that, entries
 * are only compared with the blob looked for.
 */
struct jent {
	git_oid id;
	uint32_t size; /* of the content */
	uint64_t off;  /* of the entry */
};

struct jindex {
	int fd; /* STORE/git/hozen-journal, or -1 (none) */
	dev_t dev;
	ino_t ino;
	struct jent *v;
	size_t n, cap;
	uint32_t *slots; /* open addressing: 0 empty, else index + 1 */
	size_t nslots;	 /* a power of two, at least 2 cap */
	uint64_t end;	 /* the entries in [0, end) are indexed */
	uint64_t torn;	 /* bytes past end that are no complete entry */
	int full;	 /* VS_JINDEX_MAX entries: end stays */
	uint8_t *chunk;	 /* VS_CHUNK bytes, for hashing */
};

static size_t jslot(const struct jindex *j, const git_oid *id)
{
	uint64_t h;

	memcpy(&h, id->id, sizeof(h)); /* SHA-1: already well mixed */
	return (size_t)h & (j->nslots - 1);
}

static struct jent *jindex_get(struct jindex *j, const git_oid *id)
{
	size_t i;

	if (!j->n)
		return NULL;
	for (i = jslot(j, id); j->slots[i]; i = (i + 1) & (j->nslots - 1))
		if (git_oid_equal(&j->v[j->slots[i] - 1].id, id))
			return &j->v[j->slots[i] - 1];
	return NULL;
}

static void jindex_reset(struct jindex *j)
{
	j->n = 0;
	j->end = 0;
	j->torn = 0;
	j->full = 0;
	if (j->slots)
		memset(j->slots, 0, j->nslots * sizeof(*j->slots));
}

static int jindex_add(struct jindex *j, const git_oid *id, uint64_t size,
		      uint64_t off)
{
	size_t i, k;

	if (jindex_get(j, id))
		return 0; /* a journal read back twice may repeat one */
	if (j->n == j->cap) {
		size_t cap = j->cap ? 2 * j->cap : 256;
		struct jent *v = realloc(j->v, cap * sizeof(*v));
		uint32_t *slots;

		if (!v)
			return hc_error_set(HC_ENOMEM, "out of memory");
		j->v = v;
		slots = calloc(2 * cap, sizeof(*slots));
		if (!slots)
			return hc_error_set(HC_ENOMEM, "out of memory");
		free(j->slots);
		j->slots = slots;
		j->nslots = 2 * cap;
		j->cap = cap;
		for (k = 0; k < j->n; k++) {
			for (i = jslot(j, &j->v[k].id); j->slots[i];
			     i = (i + 1) & (j->nslots - 1))
				;
			j->slots[i] = (uint32_t)(k + 1);
		}
	}
	git_oid_cpy(&j->v[j->n].id, id);
	j->v[j->n].size = (uint32_t)size;
	j->v[j->n].off = off;
	for (i = jslot(j, id); j->slots[i]; i = (i + 1) & (j->nslots - 1))
		;
	j->slots[i] = (uint32_t)(++j->n);
	return 0;
}

/*
 * The blob id of the entry of hdr + size bytes at off (SHA-1 of exactly
 * those bytes): 0, JE_FLUX if the file ends sooner, or an error.
 */
static int jentry_id(struct jindex *j, uint64_t off, uint64_t total,
		     git_oid *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	EVP_MD_CTX *sha1 = EVP_MD_CTX_new();
	unsigned mdlen = 0;
	uint64_t done = 0;
	int rc = 0;

	if (!sha1 || !EVP_DigestInit_ex(sha1, EVP_sha1(), NULL)) {
		rc = hc_error_openssl("cannot hash the journal");
		goto out;
	}
	while (done < total) {
		size_t want = total - done < VS_CHUNK ? (size_t)(total - done)
						      : VS_CHUNK;
		ssize_t k = pread_upto(j->fd, j->chunk, want, off + done);

		if (k < 0) {
			rc = hc_error_set(HC_ESYS, "cannot read the journal");
			goto out;
		}
		if ((size_t)k < want) {
			rc = JE_FLUX;
			goto out;
		}
		if (!EVP_DigestUpdate(sha1, j->chunk, want)) {
			rc = hc_error_openssl("cannot hash the journal");
			goto out;
		}
		done += want;
	}
	if (!EVP_DigestFinal_ex(sha1, md, &mdlen) || mdlen != GIT_OID_RAWSZ) {
		rc = hc_error_openssl("cannot hash the journal");
		goto out;
	}
	git_oid_fromraw(out, md);
out:
	EVP_MD_CTX_free(sha1);
	return rc;
}

/*
 * Read the content of entry e into *out (malloc'd, may be NULL: only
 * check it), checked against its id: 1, JE_FLUX if it is no longer
 * there as indexed, or an error.
 */
static int jentry_load(struct jindex *j, const struct jent *e, void **out,
		       size_t *len_out)
{
	char want[32], *buf = NULL;
	size_t hdr, len;
	git_oid id;
	ssize_t k;
	int rc = 1, n;

	n = snprintf(want, sizeof(want), "blob %" PRIu32, e->size);
	if (n < 0 || (size_t)n >= sizeof(want))
		return hc_error_set(HC_EINVAL, "bad journal entry size");
	hdr = (size_t)n + 1;
	len = hdr + e->size;
	buf = malloc(len);
	if (!buf)
		return hc_error_set(HC_ENOMEM, "out of memory reading the "
					       "journal");
	k = pread_upto(j->fd, buf, len, e->off);
	if (k < 0) {
		rc = hc_error_set(HC_ESYS, "cannot read the journal");
		goto out;
	}
	if ((size_t)k < len || memcmp(buf, want, hdr) ||
	    git_odb_hash(&id, buf + hdr, e->size, GIT_OBJECT_BLOB) < 0 ||
	    !git_oid_equal(&id, &e->id)) {
		rc = JE_FLUX; /* emptied (and written again) since indexed */
		goto out;
	}
	if (out) {
		memmove(buf, buf + hdr, e->size);
		*out = buf;
		*len_out = e->size;
		buf = NULL;
	}
out:
	free(buf);
	return rc;
}

/*
 * Bring the index up to date with the journal (lock held): reopen it if
 * it appeared or was replaced, start over if a commit emptied it, index
 * the entries appended since.  If target is not NULL and the index is
 * full, an entry past it with that id is returned in *hit (*found 1).
 * 0, JE_FLUX (it changed while read: try again), or an error (a journal
 * that is not a regular file is HC_EFORMAT).
 */
static int jindex_refresh(vs_repo *r, const git_oid *target, struct jent *hit,
			  int *found)
{
	struct jindex *j = r->ji;
	struct stat st;
	uint64_t off, size = 0, fsize;
	size_t hdr = 0;
	git_oid id;
	int rc, e, fd;

	*found = 0;
	if (fstatat(r->gitfd, VS_JOURNAL, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT)
			return hc_error_set(HC_ESYS, "cannot stat 'git/%s'",
					    VS_JOURNAL);
		if (j->fd >= 0)
			close(j->fd);
		j->fd = -1;
		jindex_reset(j);
		return 0; /* no journal (yet) */
	}
	if (j->fd < 0 || st.st_dev != j->dev || st.st_ino != j->ino) {
		rc = open_regular(r->gitfd, "git", VS_JOURNAL, &fd, &st);
		if (rc < 0)
			return rc;
		if (j->fd >= 0)
			close(j->fd);
		j->fd = fd;
		j->dev = st.st_dev;
		j->ino = st.st_ino;
		jindex_reset(j);
	}
	if (fstat(j->fd, &st) < 0)
		return hc_error_set(HC_ESYS, "cannot stat 'git/%s'",
				    VS_JOURNAL);
	fsize = (uint64_t)st.st_size;
	if (fsize < j->end) {
		jindex_reset(j); /* emptied by a commit */
	} else if (j->n) {
		/*
		 * Emptied and written again?  Then its first entry is
		 * another blob: a blob once packed is never journaled again.
		 */
		rc = jentry_id(j, j->v[0].off,
			       (uint64_t)snprintf(NULL, 0, "blob %" PRIu32,
						  j->v[0].size) +
				       1 + j->v[0].size,
			       &id);
		if (rc < 0)
			return rc;
		if (rc == JE_FLUX || !git_oid_equal(&id, &j->v[0].id))
			jindex_reset(j);
	}
	off = j->end;
	while (off < fsize) {
		e = jentry_at(j->fd, off, fsize, &hdr, &size);
		if (e == JE_FLUX || e == HC_ESYS)
			return e;
		if (e <= 0)
			break; /* torn (being written) or malformed */
		rc = jentry_id(j, off, hdr + size, &id);
		if (rc != 0)
			return rc;
		if (!j->full && j->n < VS_JINDEX_MAX) {
			rc = jindex_add(j, &id, size, off);
			if (rc < 0)
				return rc;
			j->end = off + hdr + size;
		} else {
			j->full = 1;
			if (target && git_oid_equal(&id, target)) {
				git_oid_cpy(&hit->id, &id);
				hit->size = (uint32_t)size;
				hit->off = off;
				*found = 1;
				return 0;
			}
		}
		off += hdr + size;
	}
	j->torn = fsize - off;
	return 0;
}

/*
 * Look oid up in the journal (read-only; lock held), bringing the index
 * up to date first with refresh.  1 found (its content in *out and its
 * length in *len unless out is NULL), 0 not there, JE_FLUX, or an error.
 */
static int journal_find(vs_repo *r, const git_oid *oid, int refresh, void **out,
			size_t *len)
{
	struct jent hit, *e;
	int rc, found = 0;

	if (refresh) {
		rc = jindex_refresh(r, oid, &hit, &found);
		if (rc != 0)
			return rc;
	}
	e = found ? &hit : jindex_get(r->ji, oid);
	if (!e)
		return 0;
	return jentry_load(r->ji, e, out, len);
}

/* Index the journal at open (read-only), trying again while it changes. */
static int jindex_open(vs_repo *r)
{
	struct jindex *j = calloc(1, sizeof(*j));
	struct timespec pause = {0, 1000000};
	int rc = JE_FLUX, found, tries;

	if (!j)
		return hc_error_set(HC_ENOMEM, "out of memory");
	j->fd = -1;
	r->ji = j;
	j->chunk = malloc(VS_CHUNK);
	if (!j->chunk)
		return hc_error_set(HC_ENOMEM, "out of memory");
	for (tries = 0; rc == JE_FLUX && tries < VS_FLUX_TRIES; tries++) {
		if (tries)
			nanosleep(&pause, NULL);
		rc = jindex_refresh(r, NULL, NULL, &found);
	}
	if (rc == JE_FLUX)
		return hc_error_set(HC_EBUSY,
				    "'git/%s' kept changing while it was read "
				    "(%d tries)",
				    VS_JOURNAL, VS_FLUX_TRIES);
	if (rc < 0)
		return rc;
	r->replayed = j->n;
	r->torn = j->torn;
	return 0;
}

static void jindex_free(struct jindex *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	free(j->v);
	free(j->slots);
	free(j->chunk);
	free(j);
}

/* Make everything written so far durable (no lock needed). */
static int sync_all(vs_repo *r)
{
	if (r->fsync)
		return 0; /* every object was fsynced as it was written */
	if (r->gitfd < 0 || syncfs(r->gitfd) < 0)
		return hc_error_set(HC_ESYS, "cannot sync the git repository");
	return 0;
}

/* Add a new tree and the new trees under it (lock held). */
static int new_trees_locked(vs_repo *r, struct oidlist *l, const git_oid *id)
{
	git_tree *t = NULL;
	size_t i, n;
	int g, rc;

	if (!r->mem->exists(r->mem, id))
		return 0; /* packed before: so is everything under it */
	rc = oidlist_add(l, id);
	if (rc < 0)
		return rc;
	g = git_tree_lookup(&t, r->repo, id);
	if (g < 0)
		return git_fail(g, "cannot read a new tree");
	n = git_tree_entrycount(t);
	for (i = 0; rc == 0 && i < n; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);

		if (git_tree_entry_type(e) == GIT_OBJECT_TREE)
			rc = new_trees_locked(r, l, git_tree_entry_id(e));
	}
	git_tree_free(t);
	return rc;
}

static int oid_cmp(const void *a, const void *b)
{
	return git_oid_cmp(a, b);
}

/*
 * A pack stream, fed to the pack backend's indexer as it is made, in
 * pieces of PW_BUF: libgit2's indexer maps and unmaps the pack file for
 * every append, and an unmap in a threaded process stops every CPU
 * running one of its threads (a TLB flush) -- once per object, that was
 * a tenth of the daemon's time under a stream of small files.
 */
#define PW_BUF (256u * 1024)

struct packw {
	git_odb_writepack *wp;
	git_indexer_progress stats;
	EVP_MD_CTX *sha1; /* of every byte before the trailer */
	z_stream z;
	size_t used; /* bytes in buf not yet appended */
	unsigned char out[64 * 1024];
	unsigned char buf[PW_BUF];
};

/* Give the indexer what buf holds. */
static int pw_flush(struct packw *w)
{
	int g;

	if (!w->used)
		return 0;
	g = w->wp->append(w->wp, w->buf, w->used, &w->stats);
	w->used = 0;
	return g < 0 ? git_fail(g, "cannot write the pack") : 0;
}

static int pw_put(struct packw *w, const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t k;
	int rc = 0;

	if (!EVP_DigestUpdate(w->sha1, p, n))
		return hc_error_openssl("cannot hash the pack");
	while (rc == 0 && n > 0) {
		k = PW_BUF - w->used < n ? PW_BUF - w->used : n;
		memcpy(w->buf + w->used, c, k);
		w->used += k;
		c += k;
		n -= k;
		if (w->used == PW_BUF)
			rc = pw_flush(w);
	}
	return rc;
}

/* One object: its type and size header, then its content deflated. */
static int pw_object(struct packw *w, git_odb_object *o)
{
	unsigned char hdr[16];
	size_t size = git_odb_object_size(o), n = 0;
	unsigned c = ((unsigned)git_odb_object_type(o) << 4) | (size & 15);
	int z, rc;

	for (size >>= 4; size; size >>= 7) {
		hdr[n++] = (unsigned char)(c | 0x80);
		c = size & 0x7f;
	}
	hdr[n++] = (unsigned char)c;
	rc = pw_put(w, hdr, n);
	if (rc < 0 || deflateReset(&w->z) != Z_OK)
		return rc < 0 ? rc : hc_error_set(HC_ENOMEM, "zlib failed");
	w->z.next_in = (unsigned char *)(uintptr_t)git_odb_object_data(o);
	w->z.avail_in = (uInt)git_odb_object_size(o);
	do {
		w->z.next_out = w->out;
		w->z.avail_out = sizeof(w->out);
		z = deflate(&w->z, Z_FINISH);
		if (z != Z_OK && z != Z_STREAM_END)
			return hc_error_set(HC_ENOMEM, "zlib failed: %d", z);
		rc = pw_put(w, w->out, sizeof(w->out) - w->z.avail_out);
	} while (rc == 0 && z != Z_STREAM_END);
	return rc;
}

/*
 * Write objects as one pack through the odb's pack backend, whose
 * indexer checks every object and writes the .idx.  libgit2's own
 * packbuilder would deflate at zlib's default level 6 (and try deltas),
 * about 45 ms per 256 objects of 4 KiB, while writers wait; level 1 is
 * libgit2's level for loose objects, and this costs a fraction.
 */
static int write_pack_locked(vs_repo *r, const git_oid *ids, size_t n)
{
	struct packw *w;
	unsigned char trailer[EVP_MAX_MD_SIZE], hdr[12] = "PACK";
	unsigned mdlen = 0;
	git_odb_object *o;
	size_t i;
	int g, rc = 0;

	w = calloc(1, sizeof(*w));
	if (!w)
		return hc_error_set(HC_ENOMEM, "out of memory");
	if (deflateInit(&w->z, Z_BEST_SPEED) != Z_OK) {
		free(w);
		return hc_error_set(HC_ENOMEM, "zlib failed");
	}
	w->sha1 = EVP_MD_CTX_new();
	if (!w->sha1 || !EVP_DigestInit_ex(w->sha1, EVP_sha1(), NULL)) {
		rc = hc_error_openssl("cannot hash the pack");
		goto out;
	}
	g = git_odb_write_pack(&w->wp, r->odb, NULL, NULL);
	if (g < 0) {
		rc = git_fail(g, "cannot start a pack");
		goto out;
	}
	hdr[7] = 2; /* version 2, then the count, big-endian */
	hdr[8] = (unsigned char)(n >> 24);
	hdr[9] = (unsigned char)(n >> 16);
	hdr[10] = (unsigned char)(n >> 8);
	hdr[11] = (unsigned char)n;
	rc = pw_put(w, hdr, sizeof(hdr));
	for (i = 0; rc == 0 && i < n; i++) {
		g = git_odb_read(&o, r->odb, &ids[i]);
		if (g < 0) {
			rc = git_fail(g, "cannot read an object to pack");
			break;
		}
		rc = pw_object(w, o);
		git_odb_object_free(o);
	}
	if (rc == 0 && (!EVP_DigestFinal_ex(w->sha1, trailer, &mdlen) ||
			mdlen != GIT_OID_RAWSZ))
		rc = hc_error_openssl("cannot hash the pack");
	if (rc == 0)
		rc = pw_flush(w);
	if (rc == 0) {
		g = w->wp->append(w->wp, trailer, mdlen, &w->stats);
		if (g == 0)
			g = w->wp->commit(w->wp, &w->stats);
		if (g < 0)
			rc = git_fail(g, "cannot write the pack");
	}
out:
	if (w->wp)
		w->wp->free(w->wp);
	EVP_MD_CTX_free(w->sha1);
	deflateEnd(&w->z);
	free(w);
	return rc;
}

/*
 * Write the batch as one pack: the given commits, the new trees under
 * their trees, every blob of the batch.  Objects written while building
 * trees that no commit names are garbage and go.  Then the pack is made
 * durable and the batch emptied (lock held).
 */
static int batch_pack_locked(vs_repo *r, const git_oid *commits, size_t n)
{
	struct oidlist l = {0};
	git_commit *c = NULL;
	size_t i, k = 0;
	int g, rc = 0;

	for (i = 0; rc == 0 && i < n; i++) {
		rc = oidlist_add(&l, &commits[i]);
		if (rc == 0 &&
		    (g = git_commit_lookup(&c, r->repo, &commits[i])) < 0)
			rc = git_fail(g, "cannot read a new commit");
		if (rc == 0)
			rc = new_trees_locked(r, &l, git_commit_tree_id(c));
		git_commit_free(c);
		c = NULL;
	}
	for (i = 0; rc == 0 && i < r->batch.n; i++)
		rc = oidlist_add(&l, &r->batch.v[i]);
	if (rc == 0) {
		/* Once each (a journal read back twice may repeat one). */
		qsort(l.v, l.n, sizeof(*l.v), oid_cmp);
		for (i = 0; i < l.n; i++)
			if (!k || git_oid_cmp(&l.v[k - 1], &l.v[i]))
				l.v[k++] = l.v[i];
		rc = write_pack_locked(r, l.v, k);
	}
	free(l.v);
	if (rc < 0)
		return rc;
	/*
	 * A multi-pack-index now and then: finding an object (or that it
	 * is new) then takes one lookup, not one per pack.  Only a speed-up:
	 * if it cannot be written, the packs still serve.
	 */
	if (++r->new_packs >= VS_MIDX_EVERY) {
		if (git_odb_write_multi_pack_index(r->odb) == 0)
			(void)git_odb_refresh(r->odb);
		r->new_packs = 0;
	}
	/* The pack is durable before the journal and memory let go. */
	rc = sync_all(r);
	if (rc < 0)
		return rc;
	g = git_mempack_reset(r->mem);
	if (g < 0)
		return git_fail(g, "cannot empty the batch");
	r->batch.n = 0;
	r->batch_bytes = 0;
	if (ftruncate(r->jfd, 0) < 0)
		return hc_error_set(HC_ESYS, "cannot empty the journal");
	return 0;
}

/*
 * Set up the batch for writing: the mempack backend and the journal
 * (created if missing), read back if a crash left it.
 */
static int batch_open(vs_repo *r, int gitfd)
{
	struct stat st;
	int jfd, g, rc;

	jfd = openat(gitfd, VS_JOURNAL,
		     O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK |
			     O_CLOEXEC,
		     0600);
	if (jfd < 0)
		return hc_error_set(HC_ESYS, "cannot open 'git/%s'",
				    VS_JOURNAL);
	rc = fstat(jfd, &st) < 0
		     ? hc_error_set(HC_ESYS, "cannot stat 'git/%s'", VS_JOURNAL)
	     : !S_ISREG(st.st_mode)
		     ? hc_error_set(HC_EFORMAT,
				    "'git/%s' is %s, not a regular file",
				    VS_JOURNAL, ftype(st.st_mode))
		     : 0;
	if (rc < 0) {
		close(jfd);
		return rc;
	}
	g = git_mempack_new(&r->mem);
	if (g == 0) {
		g = git_odb_add_backend(r->odb, r->mem, VS_MEM_PRIORITY);
		if (g < 0)
			r->mem->free(r->mem);
	}
	if (g < 0) {
		r->mem = NULL;
		close(jfd);
		return git_fail(g, "cannot set up the batch");
	}
	r->jfd = jfd;
	return journal_replay(r, gitfd, jfd);
}

/* ------------------------------------------------------------- helpers */

/* Give the error just set another code (and a prefix), keeping its text. */
static int recode(int code, const char *prefix)
{
	char msg[1024];

	snprintf(msg, sizeof(msg), "%s", hc_error_message());
	return hc_error_set(code, "%s%s", prefix, msg);
}

static int oid_parse(git_oid *out, const char *hex)
{
	if (!hex || strlen(hex) != GIT_OID_HEXSZ ||
	    strspn(hex, "0123456789abcdef") != GIT_OID_HEXSZ)
		return hc_error_set(HC_EINVAL, "bad git object id '%.64s'",
				    hex ? hex : "(null)");
	if (git_oid_fromstr(out, hex) < 0)
		return git_fail(GIT_EINVALID, "bad git object id '%s'", hex);
	return 0;
}

/* Read exactly len bytes at off of content that should hold total. */
static int read_at(int fd, void *buf, size_t len, uint64_t off, uint64_t total)
{
	int rc = hc_pread_all(fd, buf, len, (off_t)off);

	if (rc == HC_EFORMAT)
		return hc_error_set(HC_EFORMAT,
				    "content is shorter than %" PRIu64 " bytes",
				    total);
	return rc;
}

static size_t chunk_for(uint64_t size)
{
	if (size == 0)
		return 1;
	return size < VS_CHUNK ? (size_t)size : VS_CHUNK;
}

/*
 * Hash the first size bytes of fd: SHA-256 into sha; if oid is non-NULL,
 * also the git blob id (SHA-1 of "blob SIZE\0" and the content, which is
 * what libgit2 computes for content that is no SHA-1 collision attack).
 * If head is non-NULL it gets the first min(size, head_len) bytes.
 */
static int hash_fd(int fd, uint64_t size, uint8_t *buf, size_t bufsize,
		   uint8_t sha[HC_HASH_LEN], git_oid *oid, void *head,
		   size_t head_len)
{
	hc_sha256_ctx *c = NULL;
	EVP_MD_CTX *sha1 = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	char hdr[64];
	uint64_t off = 0;
	unsigned mdlen = 0;
	int rc, n;

	rc = hc_sha256_new(&c);
	if (rc < 0)
		goto out;
	if (oid) {
		n = snprintf(hdr, sizeof(hdr), "blob %" PRIu64, size);
		sha1 = EVP_MD_CTX_new();
		if (!sha1 || !EVP_DigestInit_ex(sha1, EVP_sha1(), NULL) ||
		    !EVP_DigestUpdate(sha1, hdr, (size_t)n + 1)) {
			rc = hc_error_openssl("cannot hash content");
			goto out;
		}
	}
	while (off < size) {
		size_t len =
			size - off < bufsize ? (size_t)(size - off) : bufsize;

		rc = read_at(fd, buf, len, off, size);
		if (rc < 0)
			goto out;
		if (head && off < head_len)
			memcpy((char *)head + off, buf,
			       head_len - off < len ? head_len - off : len);
		rc = hc_sha256_update(c, buf, len);
		if (rc < 0)
			goto out;
		if (sha1 && !EVP_DigestUpdate(sha1, buf, len)) {
			rc = hc_error_openssl("cannot hash content");
			goto out;
		}
		off += len;
	}
	rc = hc_sha256_final(c, sha);
	if (rc < 0)
		goto out;
	if (sha1) {
		if (!EVP_DigestFinal_ex(sha1, md, &mdlen) ||
		    mdlen != GIT_OID_RAWSZ) {
			rc = hc_error_openssl("cannot hash content");
			goto out;
		}
		git_oid_fromraw(oid, md);
	}
out:
	EVP_MD_CTX_free(sha1);
	hc_sha256_free(c);
	return rc;
}

/* --------------------------------------------------------- LFS pointer */

static int pointer_text(char *out, size_t n, const uint8_t sha[HC_HASH_LEN],
			uint64_t size)
{
	char hex[HC_HEX_LEN + 1];
	int len;

	hc_hex(sha, HC_HASH_LEN, hex);
	len = snprintf(out, n,
		       VS_LFS_SPEC VS_LFS_OID "%s\n" VS_LFS_SIZE "%" PRIu64
					      "\n",
		       hex, size);
	if (len < 0 || (size_t)len >= n)
		return hc_error_set(HC_EINVAL, "pointer text too long");
	return len;
}

/*
 * Parse a pointer blob strictly (exactly what pointer_text writes).
 * Returns NULL and fills sha and size, or says what is wrong.
 */
static const char *pointer_parse(const char *p, size_t len,
				 uint8_t sha[HC_HASH_LEN], uint64_t *size)
{
	const size_t spec = strlen(VS_LFS_SPEC), oid = strlen(VS_LFS_OID);
	const size_t sz = strlen(VS_LFS_SIZE);
	char hex[HC_HEX_LEN + 1];
	uint64_t v = 0;
	size_t i, digits;

	if (len > VS_POINTER_MAX)
		return "too long for a Git LFS pointer";
	if (len < spec || memcmp(p, VS_LFS_SPEC, spec) != 0)
		return "no Git LFS version line";
	p += spec;
	len -= spec;
	if (len < oid + HC_HEX_LEN + 1 || memcmp(p, VS_LFS_OID, oid) != 0)
		return "no 'oid sha256:' line";
	p += oid;
	len -= oid;
	for (i = 0; i < HC_HEX_LEN; i++) {
		if (p[i] == '\0' || !strchr("0123456789abcdef", p[i]))
			return "oid is not 64 lower-case hex digits";
		hex[i] = p[i];
	}
	hex[HC_HEX_LEN] = '\0';
	if (p[HC_HEX_LEN] != '\n' || hc_unhex(hex, sha, HC_HASH_LEN) < 0)
		return "oid is not 64 lower-case hex digits";
	p += HC_HEX_LEN + 1;
	len -= HC_HEX_LEN + 1;
	if (len < sz || memcmp(p, VS_LFS_SIZE, sz) != 0)
		return "no 'size' line";
	p += sz;
	len -= sz;
	for (digits = 0; digits < len && p[digits] >= '0' && p[digits] <= '9';
	     digits++) {
		unsigned d = (unsigned)(p[digits] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return "size out of range";
		v = v * 10 + d;
	}
	if (digits == 0 || (digits > 1 && p[0] == '0'))
		return "size is not a decimal number";
	if (digits + 1 != len || p[digits] != '\n')
		return "text after the size line";
	*size = v;
	return NULL;
}

int vs_parse_pointer(const char *text, size_t len, uint8_t sha[HC_HASH_LEN],
		     uint64_t *size)
{
	uint8_t s[HC_HASH_LEN];
	uint64_t n;
	const char *why = pointer_parse(text, len, s, &n);

	if (why)
		return hc_error_set(HC_EFORMAT, "not a Git LFS pointer: %s",
				    why);
	memcpy(sha, s, HC_HASH_LEN);
	*size = n;
	return 0;
}

/* 1 if content would read back as an LFS pointer. */
static int looks_like_pointer(const void *p, size_t len)
{
	uint8_t sha[HC_HASH_LEN];
	uint64_t size;

	return pointer_parse(p, len, sha, &size) == NULL;
}

/* ---------------------------------------------------------- LFS objects */

static void lfs_rel(const char *hex, char out[80])
{
	snprintf(out, 80, "%.2s/%.2s/%s", hex, hex + 2, hex);
}

/* Open dirfd/name as a directory, creating it (0755) if missing. */
static int mkdir_open(int dirfd, const char *name, int fsync_parent, int *out)
{
	int fd;

	if (mkdirat(dirfd, name, 0755) == 0) {
		if (fsync_parent && fsync(dirfd) < 0)
			return hc_error_set(
				HC_ESYS, "cannot sync directory of '%s'", name);
	} else if (errno != EEXIST) {
		return hc_error_set(HC_ESYS, "cannot create directory '%s'",
				    name);
	}
	fd = openat(dirfd, name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return hc_error_set(HC_ESYS, "cannot open directory '%s'",
				    name);
	*out = fd;
	return 0;
}

/*
 * Copy the first size bytes of in (by offset, in's file offset unused) to
 * the current offset of out: copy_file_range where the kernel can,
 * pread/write where it cannot.
 */
/* Copy [off, off+len) of in to the same offsets of out. */
static int copy_range(int in, int out, uint64_t off, uint64_t len,
		      uint64_t size, uint8_t **buf, int *use_cfr)
{
	uint64_t done = 0;

	while (done < len) {
		uint64_t left = len - done;
		size_t n;

		if (*use_cfr) {
			loff_t ioff = (loff_t)(off + done);
			loff_t ooff = ioff;
			ssize_t c = copy_file_range(
				in, &ioff, out, &ooff,
				left < (1u << 30) ? (size_t)left : (1u << 30),
				0);

			if (c > 0) {
				done += (uint64_t)c;
				continue;
			}
			if (c < 0 && errno == EINTR)
				continue;
			if (c < 0 && errno != EXDEV && errno != EINVAL &&
			    errno != ENOSYS && errno != EOPNOTSUPP &&
			    errno != ETXTBSY)
				return hc_error_set(HC_ESYS,
						    "cannot copy content");
			/* Not supported here, or 0 (EOF, or no support). */
			*use_cfr = 0;
			continue;
		}
		if (!*buf && !(*buf = malloc(VS_CHUNK)))
			return hc_error_set(HC_ENOMEM, "out of memory copying");
		n = left < VS_CHUNK ? (size_t)left : VS_CHUNK;
		if (read_at(in, *buf, n, off + done, size) < 0)
			return -1;
		if (pwrite(out, *buf, n, (off_t)(off + done)) != (ssize_t)n)
			return hc_error_set(HC_ESYS, "cannot copy content");
		done += n;
	}
	return 0;
}

/*
 * Copy the first size bytes of in to out (empty, at offset 0): a reflink
 * (FICLONE) where the filesystem has them, else the data extents only
 * (SEEK_DATA/SEEK_HOLE), so that a sparse file's copy stays sparse; out
 * ends at size.
 */
static int copy_content(int in, int out, uint64_t size)
{
	uint8_t *buf = NULL;
	uint64_t off = 0, end;
	int use_cfr = 1, rc = 0;
	struct stat st;
	off_t d, h;

	if (ioctl(out, FICLONE, in) == 0) {
		if (fstat(out, &st) == 0 && (uint64_t)st.st_size >= size)
			return ftruncate(out, (off_t)size) < 0
				       ? hc_error_set(HC_ESYS,
						      "cannot copy content")
				       : 0;
		if (ftruncate(out, 0) < 0) /* shorter than said: copy */
			return hc_error_set(HC_ESYS, "cannot copy content");
	}
	while (rc == 0 && off < size) {
		d = lseek(in, (off_t)off, SEEK_DATA);
		if (d < 0 && errno == ENXIO)
			break; /* only a hole up to the end */
		if (d < 0) {
			d = (off_t)off; /* no SEEK_DATA here: all data */
			h = (off_t)size;
		} else {
			h = lseek(in, d, SEEK_HOLE);
			if (h < 0)
				h = (off_t)size;
		}
		if ((uint64_t)d >= size)
			break;
		end = (uint64_t)h < size ? (uint64_t)h : size;
		if (end <= (uint64_t)d)
			end = size; /* a hole that moved: copy the rest */
		rc = copy_range(in, out, (uint64_t)d, end - (uint64_t)d, size,
				&buf, &use_cfr);
		off = end;
	}
	free(buf);
	if (rc == 0 && ftruncate(out, (off_t)size) < 0)
		rc = hc_error_set(HC_ESYS, "cannot copy content");
	if (rc == 0 && fstat(in, &st) == 0 && (uint64_t)st.st_size < size)
		rc = hc_error_set(HC_EFORMAT,
				  "content is shorter than %" PRIu64 " bytes",
				  size);
	return rc;
}

/*
 * Put the content (fd, or buf when fd < 0) of SHA-256 hex into
 * lfs/objects unless an object of that size is there.  *existed says
 * which.  Runs without the repository lock.
 */
static int lfs_put(vs_repo *r, int fd, const void *buf, uint64_t size,
		   const char *hex, int link, int *existed)
{
	char d1[3], d2[3], tmp[128], aside[128];
	int fd1 = -1, fd2 = -1, tfd = -1, rc = 0, n;
	unsigned long ctr;
	struct stat st;

	snprintf(d1, sizeof(d1), "%.2s", hex);
	snprintf(d2, sizeof(d2), "%.2s", hex + 2);
	rc = mkdir_open(r->lfsfd, d1, r->fsync, &fd1);
	if (rc < 0)
		goto out;
	rc = mkdir_open(fd1, d2, r->fsync, &fd2);
	if (rc < 0)
		goto out;
	ctr = atomic_fetch_add(&tmp_counter, 1);
	if (fstatat(fd2, hex, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISREG(st.st_mode) && (uint64_t)st.st_size == size) {
			*existed = 1;
			goto out;
		}
		/*
		 * Damaged (or not ours): keep it aside for whoever
		 * investigates, and put the right content in its place.
		 */
		n = snprintf(aside, sizeof(aside), ".damaged-%s-%ld-%lu", hex,
			     (long)getpid(), ctr);
		if (n < 0 || (size_t)n >= sizeof(aside) ||
		    renameat(fd2, hex, fd2, aside) < 0) {
			rc = hc_error_set(HC_ESYS,
					  "cannot move damaged LFS object "
					  "'%s' aside",
					  hex);
			goto out;
		}
	} else if (errno != ENOENT) {
		rc = hc_error_set(HC_ESYS, "cannot stat LFS object '%s'", hex);
		goto out;
	}
	n = snprintf(tmp, sizeof(tmp), ".tmp-%s-%ld-%lu", hex, (long)getpid(),
		     ctr);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		rc = hc_error_set(HC_EINVAL, "temporary name too long");
		goto out;
	}
	if (link && fd >= 0) {
		char proc[64];

		/*
		 * The file itself becomes the object: no copy.  The caller
		 * breaks the link before the file can change again.
		 */
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		if (linkat(AT_FDCWD, proc, fd2, tmp, AT_SYMLINK_FOLLOW) == 0 &&
		    renameat(fd2, tmp, fd2, hex) == 0) {
			*existed = -1; /* linked */
			goto out;
		}
		(void)unlinkat(fd2, tmp, 0); /* fall back to a copy */
	}
	tfd = openat(fd2, tmp,
		     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		     0444);
	if (tfd < 0) {
		rc = hc_error_set(HC_ESYS, "cannot create '%s'", tmp);
		goto out;
	}
	if (fd >= 0)
		rc = copy_content(fd, tfd, size);
	else
		rc = hc_write_all(tfd, buf, (size_t)size);
	if (rc == 0 && fchmod(tfd, 0444) < 0)
		rc = hc_error_set(HC_ESYS, "cannot chmod LFS object '%s'", hex);
	if (rc == 0 && r->fsync && fsync(tfd) < 0)
		rc = hc_error_set(HC_ESYS, "cannot sync LFS object '%s'", hex);
	if (close(tfd) < 0 && rc == 0)
		rc = hc_error_set(HC_ESYS, "cannot close LFS object '%s'", hex);
	tfd = -1;
	if (rc == 0 && renameat(fd2, tmp, fd2, hex) < 0)
		rc = hc_error_set(HC_ESYS, "cannot rename LFS object '%s'",
				  hex);
	if (rc < 0) {
		(void)unlinkat(fd2, tmp, 0);
		goto out;
	}
	if (r->fsync && fsync(fd2) < 0) {
		rc = hc_error_set(HC_ESYS, "cannot sync LFS directory of '%s'",
				  hex);
		goto out;
	}
	*existed = 0;
out:
	if (tfd >= 0)
		close(tfd);
	if (fd2 >= 0)
		close(fd2);
	if (fd1 >= 0)
		close(fd1);
	return rc;
}

/*
 * Open the LFS object hex for reading: HC_ENOENT if it is missing,
 * HC_EVERIFY if it (or a directory on the way) is a symlink, a FIFO or
 * anything but a regular file.
 */
static int lfs_open(vs_repo *r, const char *hex, int *out)
{
	char rel[80];
	int rc;

	if (r->lfsfd < 0)
		return hc_error_set(HC_ENOENT, "LFS object '%s' is missing",
				    hex);
	lfs_rel(hex, rel);
	rc = open_regular(r->lfsfd, "git/" VS_LFS_OBJECTS, rel, out, NULL);
	if (rc == HC_ENOENT)
		return hc_error_set(HC_ENOENT, "LFS object '%s' is missing",
				    hex);
	if (rc == HC_EFORMAT)
		return recode(HC_EVERIFY, "");
	return rc;
}

int vs_lfs_is(vs_repo *r, const char *hex, const struct stat *st)
{
	struct stat ost;
	char rel[80];

	if (!r || r->lfsfd < 0 || strlen(hex) != HC_HEX_LEN)
		return 0;
	lfs_rel(hex, rel);
	if (fstatat(r->lfsfd, rel, &ost, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	return S_ISREG(ost.st_mode) && ost.st_ino == st->st_ino &&
	       ost.st_dev == st->st_dev;
}

int vs_lfs_unshare(vs_repo *r, const char *hex, int fd)
{
	char rel[80], dir[8], tmp[128];
	struct stat st;
	int dfd = -1, tfd = -1, rc = 0, n;

	if (!r || r->lfsfd < 0 || strlen(hex) != HC_HEX_LEN)
		return hc_error_set(HC_EINVAL, "vs_lfs_unshare: bad arguments");
	if (fstat(fd, &st) < 0)
		return hc_error_set(HC_ESYS, "cannot examine a file to copy");
	if (!vs_lfs_is(r, hex, &st))
		return 0; /* it has blocks of its own already */
	lfs_rel(hex, rel);
	snprintf(dir, sizeof(dir), "%.2s/%.2s", hex, hex + 2);
	dfd = openat(r->lfsfd, dir,
		     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return hc_error_set(HC_ESYS,
				    "cannot open LFS directory of '%s'", hex);
	n = snprintf(tmp, sizeof(tmp), ".copy-%s-%ld-%lu", hex, (long)getpid(),
		     atomic_fetch_add(&tmp_counter, 1));
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		rc = hc_error_set(HC_EINVAL, "temporary name too long");
		goto out;
	}
	tfd = openat(dfd, tmp,
		     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		     0400);
	if (tfd < 0) {
		rc = hc_error_set(HC_ESYS,
				  "cannot create a copy of LFS object "
				  "'%s'",
				  hex);
		goto out;
	}
	/*
	 * The copy, its name and the directory are durable before the
	 * caller may change the file: whatever a crash leaves, the
	 * version's content is on disk under its name.
	 */
	rc = copy_content(fd, tfd, (uint64_t)st.st_size);
	if (rc == 0 && fsync(tfd) < 0)
		rc = hc_error_set(HC_ESYS,
				  "cannot sync a copy of LFS object "
				  "'%s'",
				  hex);
	if (rc == 0 && renameat(dfd, tmp, dfd, hex) < 0)
		rc = hc_error_set(HC_ESYS,
				  "cannot put a copy of LFS object "
				  "'%s' in place",
				  hex);
	if (rc == 0 && fsync(dfd) < 0)
		rc = hc_error_set(HC_ESYS, "cannot sync LFS directory of '%s'",
				  hex);
	if (rc < 0)
		(void)unlinkat(dfd, tmp, 0);
out:
	if (tfd >= 0)
		close(tfd);
	if (dfd >= 0)
		close(dfd);
	return rc;
}

/* ---------------------------------------------------------------- blobs */

/* Write buf as a blob (if git lacks it); lock held. */
static int blob_put_locked(vs_repo *r, const void *buf, size_t len,
			   git_oid *oid, int *existed)
{
	int g;

	g = git_odb_hash(oid, buf, len, GIT_OBJECT_BLOB);
	if (g < 0)
		return git_fail(g, "cannot hash blob");
	if (has_object_locked(r, oid)) {
		*existed = 1;
		return 0;
	}
	g = blob_write_locked(r, buf, len, oid);
	if (g < 0)
		return g;
	*existed = 0;
	return 0;
}

/* The pointer blob for an LFS object, filling out. */
static int lfs_finish(vs_repo *r, const uint8_t sha[HC_HASH_LEN], uint64_t size,
		      int obj_existed, struct vs_version *out)
{
	char text[256];
	git_oid oid;
	int len, rc, blob_existed = 0;

	len = pointer_text(text, sizeof(text), sha, size);
	if (len < 0)
		return len;
	pthread_mutex_lock(&r->lock);
	rc = blob_put_locked(r, text, (size_t)len, &oid, &blob_existed);
	pthread_mutex_unlock(&r->lock);
	if (rc < 0)
		return rc;
	out->size = size;
	memcpy(out->sha256, sha, HC_HASH_LEN);
	git_oid_tostr(out->blob, sizeof(out->blob), &oid);
	out->lfs = 1;
	out->existed = obj_existed && blob_existed;
	return 0;
}

/* Store content (fd, or buf when fd < 0) as an LFS object. */
static int store_lfs(vs_repo *r, int fd, const void *buf, uint64_t size,
		     const uint8_t *known, int link, struct vs_version *out)
{
	uint8_t sha[HC_HASH_LEN], *chunk = NULL;
	char hex[HC_HEX_LEN + 1];
	int rc = 0, existed = 0;

	if (known) {
		memcpy(sha, known, HC_HASH_LEN);
	} else if (fd < 0) {
		rc = hc_sha256(buf, (size_t)size, sha);
		if (rc < 0)
			goto out;
	} else {
		chunk = malloc(chunk_for(size));
		if (!chunk) {
			rc = hc_error_set(HC_ENOMEM, "out of memory hashing");
			goto out;
		}
		rc = hash_fd(fd, size, chunk, chunk_for(size), sha, NULL, NULL,
			     0);
		if (rc < 0)
			goto out;
	}
	hc_hex(sha, HC_HASH_LEN, hex);
	rc = lfs_put(r, fd, buf, size, hex, link, &existed);
	if (rc < 0)
		goto out;
	rc = lfs_finish(r, sha, size, existed > 0, out);
	if (rc == 0)
		out->linked = existed < 0;
out:
	free(chunk);
	return rc;
}

/* Stream the first size bytes of fd into a new blob; lock held. */
static int blob_stream_locked(vs_repo *r, int fd, uint64_t size, uint8_t *buf,
			      size_t bufsize, uint8_t sha[HC_HASH_LEN],
			      git_oid *oid)
{
	git_odb_stream *st = NULL;
	hc_sha256_ctx *c = NULL;
	uint64_t off = 0;
	int rc, g;

	rc = hc_sha256_new(&c);
	if (rc < 0)
		goto out;
	g = git_odb_open_wstream(&st, r->odb, size, GIT_OBJECT_BLOB);
	if (g < 0) {
		rc = git_fail(g, "cannot open blob stream");
		goto out;
	}
	while (off < size) {
		size_t len =
			size - off < bufsize ? (size_t)(size - off) : bufsize;

		rc = read_at(fd, buf, len, off, size);
		if (rc < 0)
			goto out;
		rc = hc_sha256_update(c, buf, len);
		if (rc < 0)
			goto out;
		g = git_odb_stream_write(st, (const char *)buf, len);
		if (g < 0) {
			rc = git_fail(g, "cannot write blob");
			goto out;
		}
		off += len;
	}
	g = git_odb_stream_finalize_write(oid, st);
	if (g < 0) {
		rc = git_fail(g, "cannot write blob");
		goto out;
	}
	if (r->jfd >= 0) {
		/* Into the journal too: read back from the batch. */
		git_odb_object *o = NULL;

		g = git_odb_read(&o, r->odb, oid);
		if (g < 0) {
			rc = git_fail(g, "cannot read a new blob back");
			goto out;
		}
		rc = journal_append_locked(r, git_odb_object_data(o),
					   git_odb_object_size(o));
		if (rc == 0)
			rc = batch_push_locked(r, oid, git_odb_object_size(o));
		git_odb_object_free(o);
		if (rc < 0)
			goto out;
	}
	rc = hc_sha256_final(c, sha);
out:
	git_odb_stream_free(st);
	hc_sha256_free(c);
	return rc;
}

static int store_fd(vs_repo *r, int fd, uint64_t size, const uint8_t *sha256,
		    int link, struct vs_version *out)
{
	uint8_t sha[HC_HASH_LEN], *buf = NULL;
	char head[VS_POINTER_MAX];
	size_t bufsize = chunk_for(size);
	int rc = 0, exists;
	git_oid oid;

	if (!r || fd < 0 || !out)
		return hc_error_set(HC_EINVAL, "vs_store_fd: bad arguments");
	if (r->readonly)
		return hc_error_set(HC_EINVAL, "repository opened read-only");
	if (size >= r->threshold)
		return store_lfs(r, fd, NULL, size, sha256, link, out);

	buf = malloc(bufsize);
	if (!buf)
		return hc_error_set(HC_ENOMEM, "out of memory storing content");
	/* First pass: does git have it already?  (No lock needed.) */
	rc = hash_fd(fd, size, buf, bufsize, sha, &oid, head, sizeof(head));
	if (rc < 0)
		goto out;
	if (size <= sizeof(head) && looks_like_pointer(head, (size_t)size)) {
		/* Stored as a blob it would read back as a pointer. */
		if (sha256 && CRYPTO_memcmp(sha, sha256, HC_HASH_LEN) != 0)
			rc = hc_error_set(HC_EVERIFY, "content does not have "
						      "the SHA-256 it was said "
						      "to have");
		else
			rc = store_lfs(r, fd, NULL, size, sha, 0, out);
		goto out;
	}
	pthread_mutex_lock(&r->lock);
	exists = has_object_locked(r, &oid);
	if (!exists && size <= bufsize) {
		/* The first pass read it whole: write that, read nothing again.
		 */
		git_oid written;

		rc = blob_write_locked(r, buf, (size_t)size, &written);
		if (rc == 0 && !git_oid_equal(&written, &oid))
			rc = hc_error_set(HC_EVERIFY,
					  "git named the blob "
					  "differently than hashed");
	} else if (!exists) {
		rc = blob_stream_locked(r, fd, size, buf, bufsize, sha, &oid);
	}
	pthread_mutex_unlock(&r->lock);
	if (rc < 0)
		goto out;
	if (sha256 && CRYPTO_memcmp(sha, sha256, HC_HASH_LEN) != 0) {
		rc = hc_error_set(HC_EVERIFY, "content does not have the "
					      "SHA-256 it was said to have");
		goto out;
	}
	out->size = size;
	memcpy(out->sha256, sha, HC_HASH_LEN);
	git_oid_tostr(out->blob, sizeof(out->blob), &oid);
	out->lfs = 0;
	out->linked = 0;
	out->existed = exists;
out:
	free(buf);
	return rc;
}

int vs_store_fd(vs_repo *r, int fd, uint64_t size, const uint8_t *sha256,
		struct vs_version *out)
{
	return store_fd(r, fd, size, sha256, 0, out);
}

int vs_store_fd_link(vs_repo *r, int fd, uint64_t size, const uint8_t *sha256,
		     struct vs_version *out)
{
	return store_fd(r, fd, size, sha256, 1, out);
}

int vs_store_buf(vs_repo *r, const void *buf, size_t len,
		 struct vs_version *out)
{
	uint8_t sha[HC_HASH_LEN];
	int rc, existed = 0;
	git_oid oid;

	if (!r || (!buf && len) || !out)
		return hc_error_set(HC_EINVAL, "vs_store_buf: bad arguments");
	if (r->readonly)
		return hc_error_set(HC_EINVAL, "repository opened read-only");
	if (!buf)
		buf = "";
	if ((uint64_t)len >= r->threshold || looks_like_pointer(buf, len))
		return store_lfs(r, -1, buf, len, NULL, 0, out);
	rc = hc_sha256(buf, len, sha);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&r->lock);
	rc = blob_put_locked(r, buf, len, &oid, &existed);
	pthread_mutex_unlock(&r->lock);
	if (rc < 0)
		return rc;
	out->size = len;
	memcpy(out->sha256, sha, HC_HASH_LEN);
	git_oid_tostr(out->blob, sizeof(out->blob), &oid);
	out->lfs = 0;
	out->existed = existed;
	return 0;
}

/* ------------------------------------------------------------- reading */

/* A blob's content: from git, or from the journal (read-only use). */
struct blobdata {
	git_odb_object *obj;
	void *mem; /* malloc'd, from the journal */
	size_t len;
};

static const void *bd_data(const struct blobdata *b)
{
	return b->obj ? git_odb_object_data(b->obj) : b->mem;
}

static void bd_release(struct blobdata *b)
{
	git_odb_object_free(b->obj);
	free(b->mem);
	memset(b, 0, sizeof(*b));
}

/* Find blob oid in git's object database (lock held); see blob_find. */
static int odb_find_locked(vs_repo *r, const git_oid *oid, const char *hex,
			   struct blobdata *out)
{
	git_object_t type;
	size_t len;
	int g;

	/* On a miss libgit2 looks for new packs, and looks again. */
	g = git_odb_read_header(&len, &type, r->odb, oid);
	if (g == GIT_ENOTFOUND)
		return hc_error_set(HC_ENOENT, "blob '%s' is missing", hex);
	if (g < 0)
		return git_fail(g, "cannot read object '%s'", hex);
	if (type != GIT_OBJECT_BLOB)
		return hc_error_set(HC_EFORMAT,
				    "object '%s' is a %s, not a blob", hex,
				    git_object_type2string(type));
	if (len > VS_BLOB_MAX)
		return hc_error_set(HC_EFORMAT,
				    "blob '%s' is too large (%zu bytes)", hex,
				    len);
	if (!out)
		return 0;
	g = git_odb_read(&out->obj, r->odb, oid);
	if (g < 0)
		return git_fail(g, "cannot read blob '%s'", hex);
	out->len = git_odb_object_size(out->obj);
	return 0;
}

/*
 * Find blob oid (lock held) and, if out is non-NULL, read it: 0,
 * HC_ENOENT if it is missing, HC_EFORMAT if it is not a blob or larger
 * than VS_BLOB_MAX, HC_EBUSY if the journal kept changing.
 *
 * Read-only, a blob may be in the journal (written, not yet packed) or
 * in a pack; a commit moves it from the one to the other, packing it
 * before it empties the journal.  So after the cheap looks (the index,
 * then git), the journal is looked at as it is now, and then git again:
 * a blob the journal no longer holds was packed before, and git finds
 * it.  A journal that changes under the read is looked at again.
 */
static int blob_find_locked(vs_repo *r, const git_oid *oid, const char *hex,
			    struct blobdata *out)
{
	struct timespec pause = {0, 1000000};
	void *mem = NULL;
	size_t len = 0;
	int rc, tries;

	if (r->ji) {
		rc = journal_find(r, oid, 0, out ? &mem : NULL, &len);
		if (rc < 0)
			return rc;
		if (rc == 1)
			goto found;
	}
	rc = odb_find_locked(r, oid, hex, out);
	if (rc != HC_ENOENT || !r->ji)
		return rc;
	for (tries = 0; tries < VS_FLUX_TRIES; tries++) {
		if (tries)
			nanosleep(&pause, NULL);
		rc = journal_find(r, oid, 1, out ? &mem : NULL, &len);
		if (rc < 0)
			return rc;
		if (rc == 1)
			goto found;
		if (rc == 0)
			return odb_find_locked(r, oid, hex, out);
	}
	return hc_error_set(HC_EBUSY,
			    "'git/%s' kept changing while it was read (%d "
			    "tries): cannot tell whether it holds blob '%s'",
			    VS_JOURNAL, VS_FLUX_TRIES, hex);
found:
	if (out) {
		out->mem = mem;
		out->len = len;
	}
	return 0;
}

/* A sealed, read-only memfd holding len bytes of data. */
static int memfd_of(const void *data, size_t len, int *out)
{
	int fd, rc;

	fd = memfd_create("hozen-version", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return hc_error_set(HC_ESYS, "cannot create memfd");
	rc = hc_write_all(fd, data, len);
	if (rc == 0 &&
	    fcntl(fd, F_ADD_SEALS,
		  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
		rc = hc_error_set(HC_ESYS, "cannot seal memfd");
	if (rc == 0 && lseek(fd, 0, SEEK_SET) < 0)
		rc = hc_error_set(HC_ESYS, "cannot rewind memfd");
	if (rc < 0) {
		close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

int vs_open_version(vs_repo *r, const char *blob, int *fd_out,
		    uint64_t *size_out)
{
	struct blobdata b = {0};
	uint8_t sha[HC_HASH_LEN];
	char hex[HC_HEX_LEN + 1];
	uint64_t psize = 0;
	int rc, fd = -1, lfs = 0;
	struct stat st;
	const void *data;
	git_oid oid;
	size_t len;

	if (!r || !fd_out)
		return hc_error_set(HC_EINVAL,
				    "vs_open_version: bad arguments");
	rc = oid_parse(&oid, blob);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&r->lock);
	rc = blob_find_locked(r, &oid, blob, &b);
	if (rc == 0) {
		data = bd_data(&b);
		len = b.len;
		if (len <= VS_POINTER_MAX &&
		    !pointer_parse(data, len, sha, &psize))
			lfs = 1;
		else
			rc = memfd_of(data, len, &fd);
		psize = lfs ? psize : len;
	}
	bd_release(&b);
	pthread_mutex_unlock(&r->lock);
	if (rc < 0)
		goto out;
	if (lfs) {
		hc_hex(sha, HC_HASH_LEN, hex);
		rc = lfs_open(r, hex, &fd);
		if (rc < 0)
			goto out;
		if (fstat(fd, &st) < 0) {
			rc = hc_error_set(HC_ESYS,
					  "cannot stat LFS object '%s'", hex);
			goto out;
		}
		if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != psize) {
			rc = hc_error_set(HC_EVERIFY,
					  "LFS object '%s' has %lld bytes, "
					  "its pointer says %" PRIu64,
					  hex, (long long)st.st_size, psize);
			goto out;
		}
	}
	*fd_out = fd;
	fd = -1;
	if (size_out)
		*size_out = psize;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Compare size and hash of a version's content with what the chain says. */
static int check_content(const char *what, uint64_t have_size,
			 const uint8_t have[HC_HASH_LEN], uint64_t size,
			 const uint8_t sha256[HC_HASH_LEN])
{
	char a[HC_HEX_LEN + 1], b[HC_HEX_LEN + 1];

	if (have_size != size)
		return hc_error_set(HC_EVERIFY,
				    "%s has %" PRIu64
				    " bytes, expected %" PRIu64,
				    what, have_size, size);
	if (CRYPTO_memcmp(have, sha256, HC_HASH_LEN) != 0) {
		hc_hex(have, HC_HASH_LEN, a);
		hc_hex(sha256, HC_HASH_LEN, b);
		return hc_error_set(HC_EVERIFY,
				    "%s has SHA-256 %s, expected %s", what, a,
				    b);
	}
	return 0;
}

int vs_check_version(vs_repo *r, const char *blob, uint64_t size,
		     const uint8_t sha256[HC_HASH_LEN], int lfs)
{
	struct blobdata b = {0};
	uint8_t have[HC_HASH_LEN], psha[HC_HASH_LEN], *buf = NULL;
	char hex[HC_HEX_LEN + 1], what[128];
	const char *why = NULL;
	uint64_t psize = 0;
	int rc, fd = -1;
	struct stat st;
	git_oid oid;
	size_t len;

	if (!r || !sha256)
		return hc_error_set(HC_EINVAL,
				    "vs_check_version: bad arguments");
	rc = oid_parse(&oid, blob);
	if (rc < 0)
		return rc == HC_EINVAL ? recode(HC_EFORMAT, "") : rc;
	pthread_mutex_lock(&r->lock);
	rc = blob_find_locked(r, &oid, blob, &b);
	if (rc == HC_ENOENT || rc == HC_EFORMAT)
		rc = recode(HC_EVERIFY, "");
	if (rc == 0) {
		len = b.len;
		snprintf(what, sizeof(what), "blob '%s'", blob);
		if (!lfs) {
			rc = hc_sha256(bd_data(&b), len, have);
			if (rc == 0)
				rc = check_content(what, len, have, size,
						   sha256);
		} else {
			why = pointer_parse(bd_data(&b), len, psha, &psize);
			if (why)
				rc = hc_error_set(HC_EVERIFY,
						  "blob '%s' is not a Git LFS "
						  "pointer: %s",
						  blob, why);
			else
				rc = check_content(what, psize, psha, size,
						   sha256);
		}
	}
	bd_release(&b);
	pthread_mutex_unlock(&r->lock);
	if (rc < 0 || !lfs)
		goto out;

	hc_hex(psha, HC_HASH_LEN, hex);
	rc = lfs_open(r, hex, &fd);
	if (rc == HC_ENOENT)
		rc = recode(HC_EVERIFY, "");
	if (rc < 0)
		goto out;
	if (fstat(fd, &st) < 0) {
		rc = hc_error_set(HC_ESYS, "cannot stat LFS object '%s'", hex);
		goto out;
	}
	snprintf(what, sizeof(what), "LFS object '%.16s...'", hex);
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != size) {
		rc = hc_error_set(HC_EVERIFY,
				  "%s has %lld bytes, expected %" PRIu64, what,
				  (long long)st.st_size, size);
		goto out;
	}
	buf = malloc(chunk_for(size));
	if (!buf) {
		rc = hc_error_set(HC_ENOMEM, "out of memory checking");
		goto out;
	}
	rc = hash_fd(fd, size, buf, chunk_for(size), have, NULL, NULL, 0);
	if (rc == HC_EFORMAT) /* shrank while we read it */
		rc = recode(HC_EVERIFY, "LFS object: ");
	if (rc == 0)
		rc = check_content(what, size, have, size, sha256);
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* ------------------------------------------------------------- staging */

/*
 * Paths are relative to the mount root: non-empty components separated
 * by single '/', none of them "." or "..".
 */
static int path_check(const char *path)
{
	const char *p, *slash;
	size_t n;

	if (!path || !*path)
		return hc_error_set(HC_EINVAL, "empty path");
	/* The tree has no PATH_MAX; git trees nest without limit. */
	if (strlen(path) >= VS_PATH_MAX)
		return hc_error_set(HC_EINVAL, "path too long");
	for (p = path;; p = slash + 1) {
		slash = strchr(p, '/');
		n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return hc_error_set(HC_EINVAL, "bad path '%s'", path);
		if (!slash)
			return 0;
	}
}

/* Ask libgit2 whether each component can be a tree entry; lock held. */
static int path_check_git_locked(vs_repo *r, const char *path)
{
	static const git_oid any = {{1}};
	char name[NAME_MAX + 1];
	const char *p, *slash;
	size_t n;
	int g;

	for (p = path;; p = slash + 1) {
		slash = strchr(p, '/');
		n = slash ? (size_t)(slash - p) : strlen(p);
		if (n > NAME_MAX)
			return hc_error_set(HC_EINVAL, "name too long in '%s'",
					    path);
		memcpy(name, p, n);
		name[n] = '\0';
		/* A gitlink entry: only the name is checked. */
		g = git_treebuilder_insert(NULL, r->check, name, &any,
					   GIT_FILEMODE_COMMIT);
		git_treebuilder_clear(r->check);
		if (g < 0)
			return git_fail(GIT_EINVALID,
					"git cannot store path '%s'", path);
		if (!slash)
			return 0;
	}
}

int vs_path_storable(vs_repo *r, const char *path)
{
	int ok;

	if (!r || path_check(path) < 0)
		return 0;
	pthread_mutex_lock(&r->lock);
	ok = path_check_git_locked(r, path) == 0;
	pthread_mutex_unlock(&r->lock);
	return ok;
}

static int op_add(vs_repo *r, const char *path, const git_oid *oid,
		  unsigned mode, int is_remove)
{
	struct vs_op *op;

	if (r->n_ops == r->cap_ops) {
		size_t cap = r->cap_ops ? 2 * r->cap_ops : 64;
		struct vs_op *ops = realloc(r->ops, cap * sizeof(*ops));

		if (!ops)
			return hc_error_set(HC_ENOMEM, "out of memory staging");
		r->ops = ops;
		r->cap_ops = cap;
	}
	op = &r->ops[r->n_ops];
	memset(op, 0, sizeof(*op));
	op->path = strdup(path);
	if (!op->path)
		return hc_error_set(HC_ENOMEM, "out of memory staging");
	if (oid)
		git_oid_cpy(&op->id, oid);
	op->mode = mode;
	op->remove = is_remove;
	r->n_ops++;
	return 0;
}

int vs_stage(vs_repo *r, const char *path, const char *blob, unsigned mode)
{
	git_object_t type;
	git_oid oid;
	size_t len;
	int rc, g;

	if (!r || r->readonly)
		return hc_error_set(HC_EINVAL,
				    "vs_stage: no writable repository");
	if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE &&
	    mode != GIT_FILEMODE_LINK)
		return hc_error_set(HC_EINVAL, "bad mode 0%o for '%s'", mode,
				    path ? path : "");
	rc = path_check(path);
	if (rc < 0)
		return rc;
	rc = oid_parse(&oid, blob);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&r->lock);
	if (path_check_git_locked(r, path) < 0) {
		rc = 0; /* not in snapshots: refs/hozen/versions keeps it */
		goto out;
	}
	g = git_odb_read_header(&len, &type, r->odb, &oid);
	if (g < 0) {
		rc = git_fail(g, "cannot stage '%s' as blob '%s'", path, blob);
		goto out;
	}
	if (type != GIT_OBJECT_BLOB) {
		rc = hc_error_set(HC_EINVAL,
				  "cannot stage '%s': '%s' is not a "
				  "blob",
				  path, blob);
		goto out;
	}
	rc = op_add(r, path, &oid, mode, 0);
out:
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int vs_stage_remove(vs_repo *r, const char *path)
{
	int rc;

	if (!r || r->readonly)
		return hc_error_set(HC_EINVAL,
				    "vs_stage_remove: no writable repository");
	rc = path_check(path);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&r->lock);
	rc = op_add(r, path, NULL, 0, 1);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

size_t vs_staged(vs_repo *r)
{
	size_t n;

	if (!r)
		return 0;
	pthread_mutex_lock(&r->lock);
	n = r->n_ops;
	pthread_mutex_unlock(&r->lock);
	return n;
}

size_t vs_pending(vs_repo *r)
{
	size_t n;

	if (!r)
		return 0;
	pthread_mutex_lock(&r->lock);
	n = r->n_ops + r->batch.n;
	pthread_mutex_unlock(&r->lock);
	return n;
}

static void ops_clear(vs_repo *r)
{
	size_t i;

	for (i = 0; i < r->n_ops; i++)
		free(r->ops[i].path);
	r->n_ops = 0;
}

/* --------------------------------------------------------- committing */

/*
 * git_tree_create_updated() applies a batch of updates at once and
 * cannot remove and re-add below one path, nor turn a file into a
 * directory or back.  The staged list is therefore cut into batches in
 * which no path is another's ancestor (a later change to the same path
 * replaces the earlier one); each batch is applied on the tree the
 * previous one made.  Before a batch, whatever stands in an upsert's
 * way (a tree where a file goes, a file where a directory goes) is
 * removed, as the filesystem must have done.
 */

/* A set of path prefixes of the current batch. */
struct pathset {
	struct slot {
		const char *key; /* NULL: empty */
		size_t len;
		size_t idx; /* PATH: index in the batch */
		int dir;    /* 1: a proper ancestor of a batch path */
	} * slots;
	size_t cap; /* a power of two */
};

static struct slot *ps_find(struct pathset *s, const char *key, size_t len)
{
	uint64_t h = hc_fnv1a(HC_FNV1A_INIT, key, len);
	size_t i;

	for (i = (size_t)h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		struct slot *sl = &s->slots[i];

		if (!sl->key || (sl->len == len && !memcmp(sl->key, key, len)))
			return sl;
	}
}

struct batch {
	git_tree_update *upd;
	size_t n;
	struct pathset set;
	/* Scratch for one flush. */
	git_tree_update *keep, *pre;
	char **owned; /* prefixes allocated for pre */
	size_t n_owned;
};

static int upd_cmp(const void *a, const void *b)
{
	const git_tree_update *x = a, *y = b;

	return strcmp(x->path, y->path);
}

/*
 * Apply updates on *base (NULL: the empty tree), replacing *base with the
 * result; lock held.
 */
static int tree_apply(vs_repo *r, git_tree **base, git_tree_update *upd,
		      size_t n)
{
	git_tree *next = NULL;
	git_oid oid;
	int g;

	if (n == 0)
		return 0;
	g = git_tree_create_updated(&oid, r->repo, *base, n, upd);
	if (g < 0)
		return git_fail(g, "cannot build tree");
	g = git_tree_lookup(&next, r->repo, &oid);
	if (g < 0)
		return git_fail(g, "cannot read back tree");
	git_tree_free(*base);
	*base = next;
	return 0;
}

/* Look path up in base: 1 found (*is_tree set), 0 absent, or an error. */
static int tree_has(git_tree *base, const char *path, int *is_tree)
{
	git_tree_entry *e = NULL;
	int g;

	if (!base)
		return 0;
	g = git_tree_entry_bypath(&e, base, path);
	if (g == GIT_ENOTFOUND)
		return 0;
	if (g < 0)
		return git_fail(g, "cannot look up '%s'", path);
	*is_tree = git_tree_entry_type(e) == GIT_OBJECT_TREE;
	git_tree_entry_free(e);
	return 1;
}

/* What blocks an upsert of path: the deepest ancestor that is a file. */
static int blocking_file(git_tree *base, const char *path, char **out)
{
	const char *slash;
	int rc, is_tree = 0;
	char *prefix;

	for (slash = strchr(path, '/'); slash; slash = strchr(slash + 1, '/')) {
		prefix = strndup(path, (size_t)(slash - path));
		if (!prefix)
			return hc_error_set(HC_ENOMEM, "out of memory");
		rc = tree_has(base, prefix, &is_tree);
		if (rc <= 0 || is_tree) {
			free(prefix);
			if (rc <= 0)
				return rc;
			continue;
		}
		*out = prefix;
		return 1;
	}
	return 0;
}

/* Apply the current batch on *base; lock held. */
static int batch_flush(vs_repo *r, struct batch *b, git_tree **base)
{
	size_t i, n_keep = 0, n_pre = 0, n_uniq = 0;
	int rc = 0, found, is_tree = 0;
	char *prefix = NULL;

	for (i = 0; i < b->n; i++) {
		git_tree_update *u = &b->upd[i];

		found = tree_has(*base, u->path, &is_tree);
		if (found < 0) {
			rc = found;
			goto out;
		}
		if (u->action == GIT_TREE_UPDATE_REMOVE) {
			if (found) /* removing what is not there: nothing */
				b->keep[n_keep++] = *u;
			continue;
		}
		b->keep[n_keep++] = *u;
		if (found && is_tree) {
			b->pre[n_pre].action = GIT_TREE_UPDATE_REMOVE;
			b->pre[n_pre++].path = u->path;
		} else if (!found) {
			rc = blocking_file(*base, u->path, &prefix);
			if (rc < 0)
				goto out;
			if (rc == 1) {
				b->owned[b->n_owned++] = prefix;
				b->pre[n_pre].action = GIT_TREE_UPDATE_REMOVE;
				b->pre[n_pre++].path = prefix;
			}
			rc = 0;
		}
	}
	if (n_pre) {
		qsort(b->pre, n_pre, sizeof(*b->pre), upd_cmp);
		for (i = 0; i < n_pre; i++)
			if (!n_uniq ||
			    strcmp(b->pre[n_uniq - 1].path, b->pre[i].path))
				b->pre[n_uniq++] = b->pre[i];
		rc = tree_apply(r, base, b->pre, n_uniq);
		if (rc < 0)
			goto out;
	}
	rc = tree_apply(r, base, b->keep, n_keep);
out:
	for (i = 0; i < b->n_owned; i++)
		free(b->owned[i]);
	b->n_owned = 0;
	b->n = 0;
	memset(b->set.slots, 0, b->set.cap * sizeof(*b->set.slots));
	return rc;
}

/* Add op to the batch, flushing first if it conflicts; lock held. */
static int batch_add(vs_repo *r, struct batch *b, const struct vs_op *op,
		     git_tree **base)
{
	const char *p = op->path, *slash;
	size_t len = strlen(p);
	struct slot *sl;
	int rc, conflict;
	git_tree_update *u;

	sl = ps_find(&b->set, p, len);
	conflict = sl->key && sl->dir;
	for (slash = strchr(p, '/'); !conflict && slash;
	     slash = strchr(slash + 1, '/')) {
		struct slot *a = ps_find(&b->set, p, (size_t)(slash - p));

		conflict = a->key && !a->dir;
	}
	if (conflict) {
		rc = batch_flush(r, b, base);
		if (rc < 0)
			return rc;
	}
	sl = ps_find(&b->set, p, len);
	if (sl->key) {
		u = &b->upd[sl->idx]; /* same path: the later change wins */
	} else {
		u = &b->upd[b->n];
		sl->key = p;
		sl->len = len;
		sl->idx = b->n++;
		sl->dir = 0;
		for (slash = strchr(p, '/'); slash;
		     slash = strchr(slash + 1, '/')) {
			struct slot *a =
				ps_find(&b->set, p, (size_t)(slash - p));

			if (!a->key) {
				a->key = p;
				a->len = (size_t)(slash - p);
				a->dir = 1;
			}
		}
	}
	memset(u, 0, sizeof(*u));
	u->path = p;
	if (op->remove) {
		u->action = GIT_TREE_UPDATE_REMOVE;
	} else {
		u->action = GIT_TREE_UPDATE_UPSERT;
		git_oid_cpy(&u->id, &op->id);
		u->filemode = (git_filemode_t)op->mode;
	}
	return 0;
}

/* The tree of the staged changes on top of base (consumed); lock held. */
static int staged_tree(vs_repo *r, git_tree **base, git_oid *out)
{
	struct batch b = {0};
	git_treebuilder *empty = NULL;
	size_t i, keys = 1;
	const char *s;
	int rc = 0, g;

	for (i = 0; i < r->n_ops; i++)
		for (keys++, s = r->ops[i].path; (s = strchr(s, '/')); s++)
			keys++;
	b.set.cap = 16;
	while (b.set.cap < 2 * keys)
		b.set.cap *= 2;
	b.set.slots = calloc(b.set.cap, sizeof(*b.set.slots));
	b.upd = calloc(r->n_ops + 1, sizeof(*b.upd));
	b.keep = calloc(r->n_ops + 1, sizeof(*b.keep));
	b.pre = calloc(r->n_ops + 1, sizeof(*b.pre));
	b.owned = calloc(r->n_ops + 1, sizeof(*b.owned));
	if (!b.set.slots || !b.upd || !b.keep || !b.pre || !b.owned) {
		rc = hc_error_set(HC_ENOMEM, "out of memory committing");
		goto out;
	}
	for (i = 0; i < r->n_ops; i++) {
		rc = batch_add(r, &b, &r->ops[i], base);
		if (rc < 0)
			goto out;
	}
	rc = batch_flush(r, &b, base);
	if (rc < 0)
		goto out;
	if (*base) {
		git_oid_cpy(out, git_tree_id(*base));
		goto out;
	}
	/* Everything removed from an empty history: the empty tree. */
	g = git_treebuilder_new(&empty, r->repo, NULL);
	if (g == 0)
		g = git_treebuilder_write(out, empty);
	if (g < 0)
		rc = git_fail(g, "cannot write the empty tree");
out:
	git_treebuilder_free(empty);
	free(b.set.slots);
	free(b.upd);
	free(b.keep);
	free(b.pre);
	free(b.owned);
	return rc;
}

/*
 * Keep every version of the batch reachable: a commit on VS_KEEP_REF whose
 * tree holds each staged blob and each new blob of the batch under its
 * own id.  The snapshot on VS_REF holds only a path's last version of the
 * batch (none of a file created and removed within it, of a file written
 * after its last name went, or of a path git refuses in a tree, such as
 * one below ".git"); this ref holds them all, so that no version is ever
 * unreachable (git gc would prune it).  Lock held.
 */
/*
 * The commit of refs/hozen/versions for the batch, into *keep (the ref
 * is moved later, once the pack is durable); *made 0 if the batch has
 * no new version.  *old is the ref's current id, *had whether it has one.
 */
static int keep_versions(vs_repo *r, const char *msg, const git_signature *sig,
			 git_oid *keep, int *made, git_oid *old, int *had)
{
	git_treebuilder *tb = NULL;
	git_commit *parent = NULL;
	git_tree *tree = NULL;
	git_oid head, tree_id;
	char name[GIT_OID_HEXSZ + 1];
	int g, have_head, rc = 0;
	size_t i;

	*made = 0;
	g = git_reference_name_to_id(&head, r->repo, VS_KEEP_REF);
	have_head = g == 0;
	*had = have_head;
	if (have_head)
		git_oid_cpy(old, &head);
	if (g < 0 && g != GIT_ENOTFOUND)
		return git_fail(g, "cannot read '%s'", VS_KEEP_REF);
	if (have_head && (g = git_commit_lookup(&parent, r->repo, &head)) < 0)
		return git_fail(g, "cannot read '%s'", VS_KEEP_REF);
	g = git_treebuilder_new(&tb, r->repo, NULL);
	for (i = 0; g == 0 && i < r->n_ops; i++) {
		if (r->ops[i].remove)
			continue;
		git_oid_tostr(name, sizeof(name), &r->ops[i].id);
		g = git_treebuilder_insert(NULL, tb, name, &r->ops[i].id,
					   r->ops[i].mode == GIT_FILEMODE_LINK
						   ? GIT_FILEMODE_LINK
						   : GIT_FILEMODE_BLOB);
	}
	/* New blobs no path names (the journal's after a crash too). */
	for (i = 0; g == 0 && i < r->batch.n; i++) {
		git_oid_tostr(name, sizeof(name), &r->batch.v[i]);
		if (!git_treebuilder_get(tb, name))
			g = git_treebuilder_insert(NULL, tb, name,
						   &r->batch.v[i],
						   GIT_FILEMODE_BLOB);
	}
	if (g == 0 && git_treebuilder_entrycount(tb) == 0)
		goto out; /* only removals: nothing new to keep */
	if (g == 0)
		g = git_treebuilder_write(&tree_id, tb);
	if (g == 0)
		g = git_tree_lookup(&tree, r->repo, &tree_id);
	if (g == 0)
		g = git_commit_create(keep, r->repo, NULL, sig, sig, NULL, msg,
				      tree, have_head ? 1 : 0,
				      (const git_commit **)&parent);
	if (g < 0)
		rc = git_fail(g, "cannot keep the versions of the batch");
	else
		*made = 1;
out:
	git_tree_free(tree);
	git_treebuilder_free(tb);
	git_commit_free(parent);
	return rc;
}

int vs_commit(vs_repo *r, uint64_t first, uint64_t last, const char *summary,
	      char commit_out[41], char versions_out[41])
{
	git_commit *parent = NULL;
	git_signature *sig = NULL;
	git_tree *base = NULL, *tree = NULL;
	git_oid head, tree_id, commit_id, commits[2], keep_old;
	git_reference *ref = NULL;
	char *msg = NULL;
	int rc = 0, g, have_head, n, kept = 0, had_keep = 0;
	size_t len;

	if (!r || !summary || !*summary || strchr(summary, '\n') ||
	    first > last)
		return hc_error_set(HC_EINVAL, "vs_commit: bad arguments");
	len = strlen(summary) + 64;
	msg = malloc(len);
	if (!msg)
		return hc_error_set(HC_ENOMEM, "out of memory committing");
	n = snprintf(msg, len, "%s\n\nHozen-Records: %" PRIu64 "-%" PRIu64 "\n",
		     summary, first, last);
	if (n < 0 || (size_t)n >= len) {
		free(msg);
		return hc_error_set(HC_EINVAL, "commit message too long");
	}

	pthread_mutex_lock(&r->lock);
	if (r->n_ops == 0 && r->batch.n == 0) {
		rc = 1;
		goto out;
	}
	g = git_reference_name_to_id(&head, r->repo, VS_REF);
	have_head = g == 0;
	if (g < 0 && g != GIT_ENOTFOUND) {
		rc = git_fail(g, "cannot read '%s'", VS_REF);
		goto out;
	}
	if (have_head) {
		g = git_commit_lookup(&parent, r->repo, &head);
		if (g == 0)
			g = git_commit_tree(&base, parent);
		if (g < 0) {
			rc = git_fail(g, "cannot read the head commit");
			goto out;
		}
	}
	rc = staged_tree(r, &base, &tree_id);
	if (rc < 0)
		goto out;
	g = git_tree_lookup(&tree, r->repo, &tree_id);
	if (g == 0)
		g = git_signature_now(&sig, VS_SIGNATURE_NAME,
				      VS_SIGNATURE_EMAIL);
	if (g == 0)
		g = git_commit_create(&commits[0], r->repo, NULL, sig, sig,
				      NULL, msg, tree, have_head ? 1 : 0,
				      (const git_commit **)&parent);
	if (g < 0) {
		rc = git_fail(g, "cannot commit");
		goto out;
	}
	rc = keep_versions(r, msg, sig, &commits[1], &kept, &keep_old,
			   &had_keep);
	if (rc < 0)
		goto out;
	/*
	 * Everything the commits name is in one durable pack before a ref
	 * names them; then the refs move, each only from where it was.
	 */
	rc = batch_pack_locked(r, commits, kept ? 2 : 1);
	if (rc < 0)
		goto out;
	/*
	 * The versions' ref first: if main then cannot move, what moved
	 * only keeps more reachable; main is what the chain records.
	 */
	g = 0;
	if (kept) {
		g = git_reference_create_matching(
			&ref, r->repo, VS_KEEP_REF, &commits[1], 1,
			had_keep ? &keep_old : NULL, "hozen: keep versions");
		git_reference_free(ref);
		ref = NULL;
	}
	if (g == 0) {
		g = git_reference_create_matching(
			&ref, r->repo, VS_REF, &commits[0], 1,
			have_head ? &head : NULL, "hozen: commit");
		git_reference_free(ref);
		ref = NULL;
	}
	if (g < 0) {
		rc = git_fail(g, "cannot move the refs to the new commit");
		goto out;
	}
	rc = sync_all(r);
	if (rc < 0)
		goto out;
	commit_id = commits[0];
	ops_clear(r);
	git_oid_tostr(commit_out, 41, &commit_id);
	if (versions_out && (kept || had_keep))
		git_oid_tostr(versions_out, 41, kept ? &commits[1] : &keep_old);
	else if (versions_out)
		versions_out[0] = '\0';
out:
	pthread_mutex_unlock(&r->lock);
	git_signature_free(sig);
	git_tree_free(tree);
	git_tree_free(base);
	git_commit_free(parent);
	free(msg);
	return rc;
}

/* ------------------------------------------------ refs and git's files */

/*
 * What STORE/git may hold besides objects (FORMAT.md §8.2): HEAD the
 * symbolic ref to refs/heads/main, the refs refs/heads/main and
 * refs/hozen/versions (loose, or in packed-refs), a config with only the
 * settings libgit2's bare init writes, and nothing that makes git show
 * another history (replace refs, grafts, shallow, a commit-graph),
 * take objects or refs from elsewhere (alternates, commondir) or run
 * code (hooks, config).
 */

#define VS_HEAD_TEXT "ref: " VS_REF "\n"

/* A setting of git/config and the values hozen accepts for it. */
struct cfg_allowed {
	const char *key; /* in section [core] */
	const char *values[3];
};

/*
 * What libgit2's bare init writes: core.bare and
 * core.repositoryformatversion always, core.filemode as the filesystem
 * allows, core.symlinks and core.ignorecase on filesystems without
 * symlinks or with case-insensitive names, core.precomposeunicode where
 * names are decomposed.  vs_open sets nothing.
 */
static const struct cfg_allowed cfg_allowed[] = {
	{"repositoryformatversion", {"0"}},
	{"bare", {"true"}},
	{"filemode", {"true", "false"}},
	{"symlinks", {"false"}},
	{"ignorecase", {"true"}},
	{"precomposeunicode", {"true", "false"}},
};

/* The first bytes of s (len), for a message: control bytes as '?'. */
static const char *printable(const char *s, size_t len, char out[64])
{
	size_t i;

	if (len > 63)
		len = 63;
	for (i = 0; i < len; i++)
		out[i] =
			(unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	out[i] = '\0';
	return out;
}

/* A finding about git's files, counted in *n. */
__attribute__((format(printf, 4, 5))) static void
finding(hc_findings *f, size_t *n, const char *where, const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	hc_findings_add(f, -1, 0, where, "%s", reason);
	(*n)++;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* 1 if the setting (section, name, value) is one cfg_allowed lists. */
static int cfg_ok(const char *section, const char *name, size_t nlen,
		  const char *value, size_t vlen)
{
	size_t i, k;

	if (strcmp(section, "core"))
		return 0;
	for (i = 0; i < sizeof(cfg_allowed) / sizeof(*cfg_allowed); i++) {
		if (strlen(cfg_allowed[i].key) != nlen ||
		    strncasecmp(cfg_allowed[i].key, name, nlen))
			continue;
		for (k = 0; k < 3 && cfg_allowed[i].values[k]; k++)
			if (strlen(cfg_allowed[i].values[k]) == vlen &&
			    !memcmp(cfg_allowed[i].values[k], value, vlen))
				return 1;
	}
	return 0;
}

/*
 * Check config text line by line: blank lines, comments, the header
 * "[core]" and the settings of cfg_allowed ("NAME = VALUE") pass; every
 * other line is a finding (where "git/config:LINE").  No git syntax
 * beyond that is interpreted: what is not plainly allowed is reported.
 * Returns the number of findings.
 */
static size_t config_check(const char *text, size_t len, hc_findings *f)
{
	const char *p = text, *end = text + len, *e, *q, *name, *val;
	char section[64] = "", where[64], quote[64];
	size_t n = 0, line = 0, nlen, vlen, k;

	if (memchr(text, '\0', len)) {
		finding(f, &n, "git/config", "the config holds a NUL byte");
		return n;
	}
	for (; p < end; p = e + (e < end)) {
		e = memchr(p, '\n', (size_t)(end - p));
		if (!e)
			e = end;
		line++;
		snprintf(where, sizeof(where), "git/config:%zu", line);
		for (q = p; q < e && is_blank(*q); q++)
			;
		if (q == e || *q == '#' || *q == ';')
			continue;
		if (*q == '[') {
			const char *close = memchr(q, ']', (size_t)(e - q));

			if (!close) {
				finding(f, &n, where,
					"'%s' is not a section header hozen "
					"writes",
					printable(q, (size_t)(e - q), quote));
				snprintf(section, sizeof(section), "?");
				continue;
			}
			printable(q + 1, (size_t)(close - q - 1), section);
			for (k = 0; section[k]; k++)
				section[k] =
					(char)(section[k] >= 'A' &&
							       section[k] <= 'Z'
						       ? section[k] - 'A' + 'a'
						       : section[k]);
			for (q = close + 1; q < e && is_blank(*q); q++)
				;
			if (q == e || *q == '#' || *q == ';')
				continue;
			/* "[section] name = value" on one line */
		}
		name = q;
		for (; q < e &&
		       ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
			(*q >= '0' && *q <= '9') || *q == '-');
		     q++)
			;
		nlen = (size_t)(q - name);
		for (; q < e && is_blank(*q); q++)
			;
		val = q < e && *q == '=' ? q + 1 : q;
		for (; val < e && is_blank(*val); val++)
			;
		for (vlen = (size_t)(e - val); vlen && is_blank(val[vlen - 1]);
		     vlen--)
			;
		if (!section[0] || nlen == 0 || q == e || *q != '=')
			finding(f, &n, where,
				"'%s' is not a setting hozen writes",
				printable(name, (size_t)(e - name), quote));
		else if (!cfg_ok(section, name, nlen, val, vlen))
			finding(f, &n, where,
				"'%s.%.*s = %s' is not a setting hozen "
				"writes (git would act on it)",
				section, (int)(nlen > 60 ? 60 : nlen), name,
				printable(val, vlen, quote));
	}
	return n;
}

/*
 * After read_small() of name failed with HC_EFORMAT: a finding if the
 * file is regular (then it was too large; any other type is reported
 * by top_walk()).
 */
static void too_large(vs_repo *r, const char *name, hc_findings *f, size_t *n)
{
	char msg[512], where[64];
	struct stat st;

	snprintf(msg, sizeof(msg), "%s", hc_error_message());
	snprintf(where, sizeof(where), "git/%s", name);
	if (fstatat(r->gitfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode))
		finding(f, n, where, "%s", msg);
}

/* The entries of packed-refs hozen may have. */
struct packed {
	git_oid main, keep;
	int has_main, has_keep;
};

/* 1 if p (len bytes) is 40 lower-case hex digits, parsed into out. */
static int hex_oid(const char *p, size_t len, git_oid *out)
{
	char hex[GIT_OID_HEXSZ + 1];
	size_t i;

	if (len < GIT_OID_HEXSZ)
		return 0;
	for (i = 0; i < GIT_OID_HEXSZ; i++) {
		if (!((p[i] >= '0' && p[i] <= '9') ||
		      (p[i] >= 'a' && p[i] <= 'f')))
			return 0;
		hex[i] = p[i];
	}
	hex[GIT_OID_HEXSZ] = '\0';
	return git_oid_fromstr(out, hex) == 0;
}

/*
 * Read git/packed-refs into *pk (absent: empty), a finding per line that
 * is not its header, refs/heads/main or refs/hozen/versions (f may be
 * NULL; *n counts).  A packed-refs that is not a regular file is
 * reported by the walk of git/ and read as empty.  0 or an error.
 */
static int packed_load(vs_repo *r, struct packed *pk, hc_findings *f, size_t *n)
{
	const char *p, *e, *end, *name;
	char *text = NULL, where[64], quote[64];
	size_t len = 0, line = 0, nlen;
	git_oid id;
	int rc;

	memset(pk, 0, sizeof(*pk));
	rc = read_small(r->gitfd, "git", "packed-refs", 16 * VS_SMALL_MAX,
			&text, &len);
	if (rc == HC_EFORMAT)
		too_large(r, "packed-refs", f, n);
	if (rc == HC_ENOENT || rc == HC_EFORMAT)
		return 0;
	if (rc < 0)
		return rc;
	end = text + len;
	for (p = text; p < end; p = e + (e < end)) {
		e = memchr(p, '\n', (size_t)(end - p));
		if (!e)
			e = end;
		line++;
		snprintf(where, sizeof(where), "git/packed-refs:%zu", line);
		if (line == 1 && !strncmp(p, "# pack-refs with:", 17))
			continue;
		if (!hex_oid(p, (size_t)(e - p), &id) ||
		    e - p < GIT_OID_HEXSZ + 2 || p[GIT_OID_HEXSZ] != ' ') {
			finding(f, n, where,
				"'%s' is not an entry hozen allows in "
				"packed-refs",
				printable(p, (size_t)(e - p), quote));
			continue;
		}
		name = p + GIT_OID_HEXSZ + 1;
		nlen = (size_t)(e - name);
		if (nlen == strlen(VS_REF) && !memcmp(name, VS_REF, nlen) &&
		    !pk->has_main) {
			pk->main = id;
			pk->has_main = 1;
		} else if (nlen == strlen(VS_KEEP_REF) &&
			   !memcmp(name, VS_KEEP_REF, nlen) && !pk->has_keep) {
			pk->keep = id;
			pk->has_keep = 1;
		} else {
			finding(f, n, where,
				"ref '%s' is not allowed: hozen has no ref "
				"but " VS_REF " and " VS_KEEP_REF,
				printable(name, nlen, quote));
		}
	}
	free(text);
	return 0;
}

/*
 * The value of ref name as git reads it: the loose file, else its
 * packed-refs entry.  1 with *out, 0 if there is neither; 2 if the
 * loose file is no ref git reads (a finding when its content is wrong;
 * a file that is not regular is reported by the walk of git/); or an
 * error.  *loose says whether the loose file exists.
 */
static int ref_value(vs_repo *r, const char *name, const git_oid *packed,
		     git_oid *out, int *loose, hc_findings *f, size_t *n)
{
	char *text = NULL, where[128];
	size_t len = 0;
	int rc;

	*loose = 0;
	rc = read_small(r->gitfd, "git", name, VS_SMALL_MAX, &text, &len);
	if (rc == HC_ENOENT) {
		if (!packed)
			return 0;
		*out = *packed;
		return 1;
	}
	*loose = 1;
	if (rc == HC_EFORMAT)
		return 2;
	if (rc < 0)
		return rc;
	if (len != GIT_OID_HEXSZ + 1 || text[GIT_OID_HEXSZ] != '\n' ||
	    !hex_oid(text, len, out)) {
		snprintf(where, sizeof(where), "git/%s", name);
		finding(f, n, where,
			"not a ref as hozen writes it (40 lower-case hex "
			"digits and a newline)");
		rc = 2;
	} else {
		rc = 1;
	}
	free(text);
	return rc;
}

/* Open dirfd/name as a directory, without following a symlink. */
static DIR *dir_open(int dirfd, const char *name)
{
	int fd = openat(dirfd, name,
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;

	if (fd < 0)
		return NULL;
	d = fdopendir(fd);
	if (!d)
		close(fd);
	return d;
}

/* The type of entry de of d (S_IFREG, ...), or 0 if it is gone. */
static mode_t entry_type(DIR *d, const struct dirent *de)
{
	struct stat st;

	switch (de->d_type) {
	case DT_REG:
		return S_IFREG;
	case DT_DIR:
		return S_IFDIR;
	case DT_LNK:
		return S_IFLNK;
	case DT_FIFO:
		return S_IFIFO;
	case DT_SOCK:
		return S_IFSOCK;
	case DT_CHR:
		return S_IFCHR;
	case DT_BLK:
		return S_IFBLK;
	default:
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return 0;
		return st.st_mode & S_IFMT;
	}
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

/* Every ref under git/refs/ but the two hozen writes is a finding. */
static int refs_walk(int dirfd, const char *rel, int depth, hc_findings *f,
		     size_t *n)
{
	char path[VS_DEPTH_MAX * 16 + 512], where[sizeof(path) + 8];
	struct dirent *de;
	mode_t m;
	DIR *d;
	int rc = 0;

	d = dir_open(dirfd, rel);
	if (!d && (errno == ENOENT || errno == ENOTDIR || errno == ELOOP))
		return 0; /* not a directory: top_walk() says */
	if (!d)
		return hc_error_set(HC_ESYS, "cannot read 'git/%s'", rel);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", rel, de->d_name) >=
		    (int)sizeof(path)) {
			finding(f, n, "git/refs", "a ref name is too long");
			continue;
		}
		snprintf(where, sizeof(where), "git/%s", path);
		m = entry_type(d, de);
		if (m == S_IFDIR && depth < VS_DEPTH_MAX) {
			rc = refs_walk(dirfd, path, depth + 1, f, n);
			if (rc < 0)
				break;
		} else if (m == S_IFDIR) {
			finding(f, n, where, "refs nest too deep");
		} else if (m == S_IFREG && ends_with(de->d_name, ".lock")) {
			continue; /* a ref being written: git reads none */
		} else if (m == S_IFREG && (!strcmp(path, VS_REF) ||
					    !strcmp(path, VS_KEEP_REF))) {
			continue; /* their values are checked */
		} else if (m && m != S_IFREG) {
			finding(f, n, where, "'%s' is %s: no ref hozen writes",
				where, ftype(m));
		} else if (m && !strncmp(path, "refs/replace/", 13)) {
			finding(f, n, where,
				"a replace ref: git would show another object "
				"in place of %s",
				path + 13);
		} else if (m) {
			finding(f, n, where,
				"ref '%s' is not allowed: hozen has no ref but "
				"" VS_REF " and " VS_KEEP_REF,
				path);
		}
	}
	closedir(d);
	return rc;
}

/* A directory of git/ that may hold only the given names (NULL-ended). */
static void dir_only(int gitfd, const char *rel, const char *const *ok,
		     const char *ok_suffix, hc_findings *f, size_t *n)
{
	static const struct {
		const char *path, *why;
	} why[] = {
		{"info/grafts", "grafts: git would take commits' parents from "
				"it instead of the commits"},
		{"objects/info/alternates",
		 "alternates: git would take objects from another "
		 "repository"},
		{"objects/info/http-alternates",
		 "alternates: git would take objects from another "
		 "repository"},
		{"objects/info/commit-graph",
		 "a commit-graph: git would take commits' parents from it "
		 "instead of the commits"},
		{"objects/info/commit-graphs",
		 "commit-graphs: git would take commits' parents from them "
		 "instead of the commits"},
	};
	char path[512], where[520];
	struct dirent *de;
	size_t i;
	mode_t m;
	DIR *d;

	d = dir_open(gitfd, rel);
	if (!d)
		return; /* absent, or not a directory: the walk says */
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		m = entry_type(d, de);
		for (i = 0; ok[i] && strcmp(ok[i], de->d_name); i++)
			;
		if (m == S_IFREG &&
		    (ok[i] || (ok_suffix && ends_with(de->d_name, ok_suffix))))
			continue;
		snprintf(path, sizeof(path), "%s/%.200s", rel, de->d_name);
		snprintf(where, sizeof(where), "git/%s", path);
		for (i = 0; i < sizeof(why) / sizeof(*why); i++)
			if (!strcmp(why[i].path, path))
				break;
		if (i < sizeof(why) / sizeof(*why))
			finding(f, n, where, "%s", why[i].why);
		else if (!strcmp(rel, "hooks"))
			finding(f, n, where, "a hook: git would run it");
		else
			finding(f, n, where,
				"unexpected %s: hozen and libgit2 write none "
				"there",
				m == S_IFREG ? "file" : ftype(m));
	}
	closedir(d);
}

/* 1 if name is n hex digits then suffix. */
static int hex_named(const char *name, size_t n, const char *suffix)
{
	return strlen(name) == n + strlen(suffix) &&
	       strspn(name, "0123456789abcdef") == n &&
	       !strcmp(name + n, suffix);
}

/*
 * 1 if name is a temporary file of libgit2 ("pack_git2_XXXXXX",
 * "..._git2_XXXXXX"): a pack or object being written, which a killed
 * writer leaves behind and git never reads.
 */
static int git2_tmp(const char *name)
{
	const char *p = strstr(name, "_git2_");
	size_t k = 0;

	if (!p || p == name)
		return 0;
	for (p += 6; *p; p++, k++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z')))
			return 0;
	return k >= 6;
}

/*
 * git/objects/ and git/lfs/: packs (and their indexes, bitmaps and
 * mtimes, which 'git gc' writes, and the multi-pack-index), loose objects, LFS
 * objects (and the copies being made of them), nothing else: a .promisor pack
 * would make git take missing objects for fetched later, a .keep hides a pack
 * from repack.
 */
static void objects_only(int gitfd, hc_findings *f, size_t *n)
{
	char where[600];
	struct dirent *de;
	mode_t m;
	DIR *d;

	d = dir_open(gitfd, "objects");
	while (d && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strcmp(de->d_name, "info") || !strcmp(de->d_name, "pack"))
			continue;
		m = entry_type(d, de);
		snprintf(where, sizeof(where), "git/objects/%.200s",
			 de->d_name);
		if (m == S_IFREG && git2_tmp(de->d_name))
			continue; /* an object being written */
		if (m == S_IFDIR && hex_named(de->d_name, 2, "")) {
			char rel[32];
			struct dirent *le;
			DIR *ld;

			snprintf(rel, sizeof(rel), "objects/%.2s", de->d_name);
			ld = dir_open(gitfd, rel);
			while (ld && (le = readdir(ld))) {
				if (!strcmp(le->d_name, ".") ||
				    !strcmp(le->d_name, ".."))
					continue;
				if (entry_type(ld, le) == S_IFREG &&
				    (hex_named(le->d_name, 38, "") ||
				     !strncmp(le->d_name, "tmp_obj_", 8) ||
				     git2_tmp(le->d_name)))
					continue;
				snprintf(where, sizeof(where),
					 "git/objects/%s/%.200s", de->d_name,
					 le->d_name);
				finding(f, n, where,
					"unexpected entry: a loose object is "
					"named by 38 hex digits");
			}
			if (ld)
				closedir(ld);
			continue;
		}
		finding(f, n, where,
			"unexpected entry: hozen and libgit2 write none there");
	}
	if (d)
		closedir(d);
	d = dir_open(gitfd, "objects/pack");
	while (d && (de = readdir(d))) {
		const char *name = de->d_name;
		size_t l = strlen(name);

		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		if (entry_type(d, de) == S_IFREG &&
		    (!strcmp(name, "multi-pack-index") ||
		     (!strncmp(name, "pack-", 5) &&
		      (hex_named(name + 5, 40, ".pack") ||
		       hex_named(name + 5, 40, ".idx") ||
		       hex_named(name + 5, 40, ".rev") ||
		       hex_named(name + 5, 40, ".bitmap") ||
		       hex_named(name + 5, 40, ".mtimes"))) ||
		     !strncmp(name, "tmp_", 4) || git2_tmp(name) ||
		     (l > 5 && !strcmp(name + l - 5, ".lock"))))
			continue;
		snprintf(where, sizeof(where), "git/objects/pack/%.200s", name);
		finding(f, n, where, "unexpected entry: git would %s",
			l > 9 && !strcmp(name + l - 9, ".promisor")
				? "take objects missing from this pack for "
				  "ones to fetch later (a partial clone)"
			: l > 5 && !strcmp(name + l - 5, ".keep")
				? "keep this pack out of every repack"
				: "read only packs, their indexes and a "
				  "multi-pack-index here (hozen writes no "
				  "other file)");
	}
	if (d)
		closedir(d);
	d = dir_open(gitfd, VS_LFS_DIR);
	while (d && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    (!strcmp(de->d_name, "objects") &&
		     entry_type(d, de) == S_IFDIR))
			continue;
		snprintf(where, sizeof(where), "git/" VS_LFS_DIR "/%.200s",
			 de->d_name);
		finding(f, n, where,
			"unexpected entry: hozen keeps only objects/ here");
	}
	if (d)
		closedir(d);
}

/* 1 if name is a pseudo-ref git would read (FETCH_HEAD, ORIG_HEAD...). */
static int pseudo_ref(const char *name)
{
	const char *p;

	for (p = name; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || *p == '_' ||
		      (p > name && *p >= '0' && *p <= '9')))
			return 0;
	return p > name && strcmp(name, "HEAD");
}

/* The top of git/: what hozen and libgit2 write, and nothing else. */
static int top_walk(vs_repo *r, hc_findings *f, size_t *n)
{
	static const struct {
		const char *name;
		mode_t type;
	} ok[] = {
		{"HEAD", S_IFREG},	  {"config", S_IFREG},
		{"description", S_IFREG}, {"packed-refs", S_IFREG},
		{VS_JOURNAL, S_IFREG},	  {"hooks", S_IFDIR},
		{"info", S_IFDIR},	  {"objects", S_IFDIR},
		{"refs", S_IFDIR},	  {VS_LFS_DIR, S_IFDIR},
	};
	char where[300];
	struct dirent *de;
	size_t i;
	mode_t m;
	DIR *d;

	d = dir_open(r->gitfd, ".");
	if (!d)
		return hc_error_set(HC_ESYS, "cannot read 'git'");
	while ((de = readdir(d))) {
		const char *name = de->d_name;

		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		m = entry_type(d, de);
		snprintf(where, sizeof(where), "git/%.250s", name);
		for (i = 0; i < sizeof(ok) / sizeof(*ok); i++)
			if (!strcmp(ok[i].name, name))
				break;
		if (i < sizeof(ok) / sizeof(*ok)) {
			if (m && m != ok[i].type)
				finding(f, n, where, "'%s' is %s, not a %s",
					where, ftype(m),
					ok[i].type == S_IFDIR ? "directory"
							      : "regular file");
		} else if (m == S_IFREG &&
			   (ends_with(name, ".lock") ||
			    !strncmp(name, VS_JOURNAL ".torn-",
				     strlen(VS_JOURNAL ".torn-")))) {
			continue;
		} else if (pseudo_ref(name)) {
			finding(f, n, where,
				"pseudo-ref '%s': hozen has no ref but " VS_REF
				" and " VS_KEEP_REF,
				name);
		} else if (!strcmp(name, "shallow")) {
			finding(f, n, where,
				"shallow: git would hide the history of the "
				"commits it lists");
		} else if (!strcmp(name, "commondir")) {
			finding(f, n, where,
				"commondir: git would take objects and refs "
				"from another directory");
		} else if (m) {
			finding(f, n, where,
				"unexpected %s: hozen and libgit2 write none "
				"there",
				m == S_IFREG ? "file" : ftype(m));
		}
	}
	closedir(d);
	return 0;
}

/* A set of object ids (the zero id marks an empty slot). */
struct oidset {
	git_oid *v;
	size_t n, cap; /* cap: a power of two */
};

/* Add id; 1 if it was new, 0 if there already, or HC_ENOMEM. */
static int oidset_add(struct oidset *s, const git_oid *id)
{
	size_t i, k;
	uint64_t h;

	if (2 * (s->n + 1) > s->cap) {
		struct oidset t = {NULL, 0, s->cap ? 2 * s->cap : 1024};

		t.v = calloc(t.cap, sizeof(*t.v));
		if (!t.v)
			return hc_error_set(HC_ENOMEM, "out of memory");
		for (k = 0; k < s->cap; k++)
			if (!git_oid_is_zero(&s->v[k]))
				oidset_add(&t, &s->v[k]);
		free(s->v);
		*s = t;
	}
	memcpy(&h, id->id, sizeof(h));
	for (i = (size_t)h & (s->cap - 1); !git_oid_is_zero(&s->v[i]);
	     i = (i + 1) & (s->cap - 1))
		if (git_oid_equal(&s->v[i], id))
			return 0;
	git_oid_cpy(&s->v[i], id);
	s->n++;
	return 1;
}

/* 1 if msg ends in the trailer line "Hozen-Records: FIRST-LAST". */
static int has_trailer(const char *msg)
{
	static const char key[] = "Hozen-Records: ";
	size_t len = strlen(msg), i;
	const char *line, *p;
	uint64_t a = 0, b = 0;
	int digits;

	if (len < 2 || msg[len - 1] != '\n')
		return 0;
	for (i = len - 1; i > 0 && msg[i - 1] != '\n'; i--)
		;
	line = msg + i;
	if (strncmp(line, key, sizeof(key) - 1))
		return 0;
	p = line + sizeof(key) - 1;
	for (digits = 0; *p >= '0' && *p <= '9' && digits < 20; p++, digits++)
		a = a * 10 + (uint64_t)(*p - '0');
	if (!digits || *p++ != '-')
		return 0;
	for (digits = 0; *p >= '0' && *p <= '9' && digits < 20; p++, digits++)
		b = b * 10 + (uint64_t)(*p - '0');
	return digits && *p == '\n' && p[1] == '\0' && a <= b;
}

/* libgit2's last message, for a finding. */
static const char *git_msg(void)
{
	const git_error *e = git_error_last();

	return e && e->message ? e->message : "unknown error";
}

/*
 * Read every tree under root not seen before (lock held): a finding for
 * each that cannot be read.  0 or HC_ENOMEM.
 */
static int walk_tree(vs_repo *r, const git_oid *root, const char *commit,
		     struct oidset *seen, struct oidlist *stack, hc_findings *f,
		     size_t *n)
{
	char hex[GIT_OID_HEXSZ + 1];
	git_tree *t = NULL;
	git_oid id;
	size_t i, k;
	int rc;

	stack->n = 0;
	rc = oidset_add(seen, root);
	if (rc <= 0)
		return rc;
	rc = oidlist_add(stack, root);
	while (rc == 0 && stack->n) {
		id = stack->v[--stack->n];
		if (git_tree_lookup(&t, r->repo, &id) < 0) {
			git_oid_tostr(hex, sizeof(hex), &id);
			finding(f, n, "git",
				"tree %s (of commit %s) cannot be read: %s",
				hex, commit, git_msg());
			continue;
		}
		k = git_tree_entrycount(t);
		for (i = 0; rc == 0 && i < k; i++) {
			const git_tree_entry *e = git_tree_entry_byindex(t, i);

			if (git_tree_entry_type(e) != GIT_OBJECT_TREE)
				continue;
			rc = oidset_add(seen, git_tree_entry_id(e));
			if (rc == 1)
				rc = oidlist_add(stack, git_tree_entry_id(e));
		}
		git_tree_free(t);
		t = NULL;
	}
	return rc < 0 ? rc : 0;
}

/*
 * Walk the first-parent history of tip (lock held): each commit reads,
 * ends in its Hozen-Records trailer and has one parent at most; every
 * tree it reaches reads.  0 or HC_ENOMEM.
 */
static int walk_main(vs_repo *r, const git_oid *tip, hc_findings *f, size_t *n)
{
	struct oidset seen = {0};
	struct oidlist stack = {0};
	char hex[GIT_OID_HEXSZ + 1];
	git_commit *c = NULL;
	git_oid id = *tip;
	unsigned parents;
	int rc = 0;

	for (;;) {
		git_oid_tostr(hex, sizeof(hex), &id);
		if (git_commit_lookup(&c, r->repo, &id) < 0) {
			finding(f, n, "git",
				"commit %s of the first-parent history "
				"of " VS_REF " cannot be read: %s",
				hex, git_msg());
			break;
		}
		if (!has_trailer(git_commit_message_raw(c)))
			finding(f, n, "git",
				"commit %s of " VS_REF " does not end in a "
				"'Hozen-Records: FIRST-LAST' trailer",
				hex);
		parents = git_commit_parentcount(c);
		if (parents > 1)
			finding(f, n, "git",
				"commit %s of " VS_REF " has %u parents: "
				"hozen's commits have one at most",
				hex, parents);
		rc = walk_tree(r, git_commit_tree_id(c), hex, &seen, &stack, f,
			       n);
		if (rc < 0 || parents == 0)
			break;
		git_oid_cpy(&id, git_commit_parent_id(c, 0));
		git_commit_free(c);
		c = NULL;
	}
	git_commit_free(c);
	free(seen.v);
	free(stack.v);
	return rc;
}

/* Check ref name against want (NULL: must not exist); see vs_check_refs. */
static int check_ref(vs_repo *r, const char *name, const git_oid *packed,
		     const char *want, int must, git_oid *value, hc_findings *f,
		     size_t *n)
{
	char where[128], hex[GIT_OID_HEXSZ + 1];
	int loose = 0, rc;

	rc = ref_value(r, name, packed, value, &loose, f, n);
	if (rc < 0 || rc == 2 || !must)
		return rc;
	snprintf(where, sizeof(where), "git/%s",
		 loose || rc == 0 ? name : "packed-refs");
	if (rc == 1)
		git_oid_tostr(hex, sizeof(hex), value);
	if (!want && rc == 1)
		finding(f, n, where,
			"%s names commit %s, but the chain records no commit",
			name, hex);
	else if (want && rc == 0)
		finding(f, n, where,
			"%s does not exist, but the chain records commit %s",
			name, want);
	else if (want && strcmp(hex, want))
		finding(f, n, where,
			"%s names commit %s, but the chain records %s", name,
			hex, want);
	return rc;
}

int vs_check_refs(vs_repo *r, const char *main_id, const char *versions_id,
		  int history, hc_findings *f)
{
	static const char *const info_ok[] = {"exclude", NULL};
	static const char *const objinfo_ok[] = {"packs", NULL};
	static const char *const none[] = {NULL};
	struct packed pk;
	git_oid id, mainv, keepv;
	char *text = NULL, quote[64];
	size_t n = 0, len = 0;
	int rc, main_state;

	if (!r || (main_id && oid_parse(&id, main_id) < 0) ||
	    (versions_id && oid_parse(&id, versions_id) < 0))
		return hc_error_set(HC_EINVAL, "vs_check_refs: bad arguments");

	rc = top_walk(r, f, &n);
	if (rc < 0)
		return rc;
	rc = refs_walk(r->gitfd, "refs", 1, f, &n);
	if (rc < 0)
		return rc;
	dir_only(r->gitfd, "info", info_ok, NULL, f, &n);
	dir_only(r->gitfd, "hooks", none, ".sample", f, &n);
	dir_only(r->gitfd, "objects/info", objinfo_ok, NULL, f, &n);
	objects_only(r->gitfd, f, &n);

	rc = read_small(r->gitfd, "git", "HEAD", VS_SMALL_MAX, &text, &len);
	if (rc == HC_ENOENT)
		finding(f, &n, "git/HEAD", "HEAD is missing");
	else if (rc == 0 && strcmp(text, VS_HEAD_TEXT))
		finding(f, &n, "git/HEAD",
			"HEAD is not the symbolic ref 'ref: " VS_REF "' "
			"('%s')",
			printable(text, len, quote));
	else if (rc == HC_EFORMAT)
		too_large(r, "HEAD", f, &n);
	else if (rc < 0)
		return rc;
	free(text);
	text = NULL;

	rc = read_small(r->gitfd, "git", "config", VS_SMALL_MAX, &text, &len);
	if (rc == 0)
		n += config_check(text, len, f);
	else if (rc == HC_EFORMAT)
		too_large(r, "config", f, &n);
	else if (rc < 0 && rc != HC_ENOENT)
		return rc;
	free(text);

	rc = packed_load(r, &pk, f, &n);
	if (rc < 0)
		return rc;
	main_state = check_ref(r, VS_REF, pk.has_main ? &pk.main : NULL,
			       main_id, 1, &mainv, f, &n);
	if (main_state < 0)
		return main_state;
	rc = check_ref(r, VS_KEEP_REF, pk.has_keep ? &pk.keep : NULL,
		       versions_id, versions_id != NULL, &keepv, f, &n);
	if (rc < 0)
		return rc;

	pthread_mutex_lock(&r->lock);
	if (rc == 1 && !git_odb_exists(r->odb, &keepv)) {
		char hex[GIT_OID_HEXSZ + 1];

		git_oid_tostr(hex, sizeof(hex), &keepv);
		finding(f, &n, "git",
			"commit %s named by " VS_KEEP_REF " is missing", hex);
	}
	if (main_state == 1 && history) {
		rc = walk_main(r, &mainv, f, &n);
	} else if (main_state == 1 && !git_odb_exists(r->odb, &mainv)) {
		char hex[GIT_OID_HEXSZ + 1];

		git_oid_tostr(hex, sizeof(hex), &mainv);
		finding(f, &n, "git",
			"commit %s named by " VS_REF " is missing", hex);
		rc = 0;
	} else {
		rc = 0;
	}
	pthread_mutex_unlock(&r->lock);
	if (rc < 0)
		return rc;
	return n > INT_MAX ? INT_MAX : (int)n;
}

/* ----------------------------------------------- safe to hand to libgit2 */

/* Is git/ (gitfd) shaped like a repository: HEAD, objects/, refs/? */
static int repo_shape(int gitfd)
{
	static const struct {
		const char *name;
		mode_t type;
	} need[] = {{"HEAD", S_IFREG}, {"objects", S_IFDIR}, {"refs", S_IFDIR}};
	struct stat st;
	size_t i;
	int absent;

	for (i = 0; i < sizeof(need) / sizeof(*need); i++) {
		absent = fstatat(gitfd, need[i].name, &st,
				 AT_SYMLINK_NOFOLLOW) < 0;
		if (absent && errno != ENOENT)
			return hc_error_set(HC_ESYS, "cannot stat 'git/%s'",
					    need[i].name);
		if (absent || (st.st_mode & S_IFMT) != need[i].type)
			return hc_error_set(
				HC_EFORMAT,
				"the store's 'git' is not a git "
				"repository (no '%s' %s)",
				need[i].name,
				need[i].type == S_IFDIR ? "directory" : "file");
	}
	return 0;
}

/*
 * Every entry under path (dirfd) must be a directory or a regular file:
 * libgit2 opens git's files without O_NONBLOCK (a FIFO would block it)
 * and follows symlinks.  lfs/ holds files versions.c opens itself.
 */
static int types_walk(int dirfd, char *path, size_t plen, size_t cap, int depth)
{
	struct dirent *de;
	mode_t m;
	DIR *d;
	int rc = 0, k;

	d = dir_open(dirfd, path + 4 /* past "git/" */);
	if (!d)
		return errno == ENOENT ? 0
				       : hc_error_set(HC_ESYS,
						      "cannot read '%s'", path);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		k = snprintf(path + plen, cap - plen, "/%s", de->d_name);
		if (k < 0 || (size_t)k >= cap - plen) {
			rc = hc_error_set(HC_EFORMAT,
					  "a path in '%s' is too long", path);
			break;
		}
		m = entry_type(d, de);
		if (m == S_IFDIR && depth == 0 && !strcmp(de->d_name, "lfs"))
			continue;
		if (m == S_IFDIR && depth >= VS_DEPTH_MAX) {
			rc = hc_error_set(HC_EFORMAT,
					  "'%s' nests too deep for a git "
					  "repository",
					  path);
			break;
		}
		if (m == S_IFDIR)
			rc = types_walk(dirfd, path, plen + (size_t)k, cap,
					depth + 1);
		else if (m && m != S_IFREG)
			rc = hc_error_set(HC_EFORMAT,
					  "'%s' is %s, not a regular file: "
					  "refusing to open the repository",
					  path, ftype(m));
		path[plen] = '\0';
		if (rc < 0)
			break;
	}
	closedir(d);
	return rc;
}

static int types_check(int gitfd)
{
	size_t cap = VS_DEPTH_MAX * (NAME_MAX + 2) + 8;
	char *path = malloc(cap);
	int rc;

	if (!path)
		return hc_error_set(HC_ENOMEM, "out of memory");
	strcpy(path, "git/.");
	rc = types_walk(gitfd, path, 3, cap, 0);
	free(path);
	return rc;
}

/*
 * Before libgit2 opens git/ for writing, which reads its config (and
 * the files an include names), commondir and alternates: refuse what
 * hozen does not write there.
 */
static int writer_safe(vs_repo *r)
{
	hc_findings *f = NULL;
	const struct hc_finding *first;
	char *text = NULL;
	size_t len = 0;
	struct stat st;
	int rc;

	rc = read_small(r->gitfd, "git", "config", VS_SMALL_MAX, &text, &len);
	if (rc == HC_ENOENT)
		rc = 0;
	if (rc == 0 && text) {
		rc = hc_findings_new(&f);
		if (rc == 0 && config_check(text, len, f) > 0) {
			first = hc_findings_get(f, 0);
			rc = hc_error_set(HC_EFORMAT,
					  "%s: %s: refusing to open the "
					  "repository",
					  first ? first->where : "git/config",
					  first ? first->reason : "");
		}
	}
	if (rc == 0 &&
	    (fstatat(r->gitfd, "commondir", &st, AT_SYMLINK_NOFOLLOW) == 0 ||
	     fstatat(r->gitfd, "objects/info/alternates", &st,
		     AT_SYMLINK_NOFOLLOW) == 0))
		rc = hc_error_set(HC_EFORMAT,
				  "the store's 'git' takes objects from "
				  "elsewhere (commondir or alternates): "
				  "refusing to open the repository");
	hc_findings_free(f);
	free(text);
	return rc;
}

/* ------------------------------------------------------ open and close */

/* 1 if dirfd holds nothing but "." and "..", 0 if it holds more. */
static int dir_empty(int dirfd)
{
	struct dirent *de;
	int fd, empty = 1;
	DIR *d;

	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return hc_error_set(HC_ESYS, "cannot open 'git'");
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return hc_error_set(HC_ESYS, "cannot read 'git'");
	}
	errno = 0;
	while (empty && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = 0;
	if (empty && errno) {
		closedir(d);
		return hc_error_set(HC_ESYS, "cannot read 'git'");
	}
	closedir(d);
	return empty;
}

/* The absolute path of dirfd, for libgit2. */
static int fd_path(int dirfd, char *out, size_t n)
{
	char proc[64];
	ssize_t len;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dirfd);
	len = readlink(proc, out, n);
	if (len < 0)
		return hc_error_set(HC_ESYS, "cannot resolve the store path");
	if ((size_t)len >= n)
		return hc_error_set(HC_EINVAL, "store path too long");
	out[len] = '\0';
	if (out[0] != '/')
		return hc_error_set(HC_EINVAL, "store path '%s' is not usable",
				    out);
	return 0;
}

static int repo_create(git_repository **out, const char *path, int do_fsync,
		       int gitfd)
{
	git_repository_init_options o;
	int g, rc;

	g = git_repository_init_options_init(
		&o, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	if (g < 0)
		return git_fail(g, "cannot create repository '%s'", path);
	o.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_NO_REINIT;
	o.initial_head = VS_REF;
	o.description = "hozen: file versions of an evidence store";
	g = git_repository_init_ext(out, path, &o);
	if (g < 0)
		return git_fail(g, "cannot create repository '%s'", path);
	if (!do_fsync)
		return 0;
	rc = hc_fsync_dir(gitfd, "objects");
	if (rc == 0)
		rc = hc_fsync_dir(gitfd, "refs/heads");
	if (rc == 0)
		rc = hc_fsync_dir(gitfd, "refs");
	if (rc == 0)
		rc = hc_fsync_dir(gitfd, ".");
	return rc;
}

/*
 * Read-only, libgit2 is given only the objects: a pack and a loose
 * backend on git/objects, wrapped in a repository without a path.  It
 * then reads no config (nor any file an include would name), no
 * alternates, commondir, grafts or refs: versions.c reads refs itself.
 */
static int odb_open_readonly(vs_repo *r, const char *path)
{
	git_odb_backend *b = NULL;
	char objects[PATH_MAX];
	int g, n;

	n = snprintf(objects, sizeof(objects), "%s/objects", path);
	if (n < 0 || (size_t)n >= sizeof(objects))
		return hc_error_set(HC_EINVAL, "store path too long");
	g = git_odb_new(&r->odb);
	if (g == 0)
		g = git_odb_backend_pack(&b, objects);
	if (g == 0 &&
	    (g = git_odb_add_backend(r->odb, b, VS_PACK_PRIORITY)) < 0)
		b->free(b);
	b = NULL;
	if (g == 0)
		g = git_odb_backend_loose(&b, objects, -1, 0, 0, 0);
	if (g == 0 &&
	    (g = git_odb_add_backend(r->odb, b, VS_LOOSE_PRIORITY)) < 0)
		b->free(b);
	if (g == 0)
		g = git_repository_wrap_odb(&r->repo, r->odb);
	if (g < 0)
		return git_fail(g, "cannot open the objects of '%s'", path);
	return 0;
}

/* Open git/lfs/objects read-only (*out -1 if there is none). */
static int lfs_dir_open(int gitfd, int *out)
{
	const char *names[] = {VS_LFS_DIR, "git/" VS_LFS_DIR, "objects",
			       "git/" VS_LFS_OBJECTS};
	int dir = gitfd, fd = -1, i;
	struct stat st;

	*out = -1;
	for (i = 0; i < 4; i += 2) {
		if (fstatat(dir, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0 &&
		    errno == ENOENT)
			break;
		fd = openat(dir, names[i],
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
			if (dir != gitfd)
				close(dir);
			return hc_error_set(HC_EFORMAT,
					    "'%s' is %s, not a directory",
					    names[i + 1], ftype(st.st_mode));
		}
		if (fd < 0) {
			if (dir != gitfd)
				close(dir);
			return hc_error_set(HC_ESYS, "cannot open '%s'",
					    names[i + 1]);
		}
		if (dir != gitfd)
			close(dir);
		dir = fd;
	}
	if (i == 4)
		*out = dir;
	else if (dir != gitfd)
		close(dir);
	return 0;
}

/*
 * Open STORE/git; with create, make the repository in an empty directory
 * and lfs/objects; without, change nothing on disk (read-only use).
 */
/*
 * Lock files a writer killed in the middle of a ref update left behind
 * (HEAD.lock, packed-refs.lock, refs/.../NAME.lock): the only writer is
 * the one opening now, so they are stale; libgit2 would refuse to move
 * the refs while they are there.
 */
static void remove_stale_locks(int dirfd, int depth)
{
	struct dirent *de;
	DIR *d;
	int fd;

	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);

		if (de->d_name[0] == '.')
			continue;
		if (n > 5 && !strcmp(de->d_name + n - 5, ".lock") &&
		    de->d_type == DT_REG) {
			(void)unlinkat(dirfd, de->d_name, 0);
		} else if (de->d_type == DT_DIR && depth < 16 &&
			   (depth > 0 || !strcmp(de->d_name, "refs"))) {
			int sub = openat(dirfd, de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
						 O_CLOEXEC);

			if (sub >= 0) {
				remove_stale_locks(sub, depth + 1);
				close(sub);
			}
		}
	}
	closedir(d);
}

/*
 * libgit2's temporary files a killed writer left in objects/ and
 * objects/pack/ (a pack or a loose object half written): never read by
 * git, removed by the next writer.
 */
static void remove_git2_tmp(int gitfd)
{
	static const char *const dirs[] = {"objects", "objects/pack"};
	struct dirent *de;
	size_t i;
	DIR *d;

	for (i = 0; i < sizeof(dirs) / sizeof(*dirs); i++) {
		d = dir_open(gitfd, dirs[i]);
		while (d && (de = readdir(d)))
			if (de->d_type == DT_REG && git2_tmp(de->d_name))
				(void)unlinkat(dirfd(d), de->d_name, 0);
		if (d)
			closedir(d);
	}
}

static int repo_open(vs_repo **out, int storefd, const struct vs_options *opts,
		     int create)
{
	vs_repo *r = NULL;
	char path[PATH_MAX];
	int gitfd = -1, lfsdir = -1, rc, g, empty;

	if (!out)
		return hc_error_set(HC_EINVAL, "vs_open: bad arguments");
	if (opts && opts->lfs_threshold > VS_BLOB_MAX)
		return hc_error_set(HC_EINVAL, "LFS threshold above %u bytes",
				    VS_BLOB_MAX);
	pthread_once(&git_once, git_init);
	if (git_init_rc < 0)
		return git_fail(git_init_rc, "cannot initialise libgit2");

	r = calloc(1, sizeof(*r));
	if (!r)
		return hc_error_set(HC_ENOMEM, "out of memory");
	r->lfsfd = -1;
	r->gitfd = -1;
	r->jfd = -1;
	r->readonly = !create;
	r->threshold = opts && opts->lfs_threshold ? opts->lfs_threshold
						   : VS_LFS_THRESHOLD;
	r->fsync = create && (opts ? !!opts->fsync : 1);
	rc = pthread_mutex_init(&r->lock, NULL);
	if (rc) {
		errno = rc;
		free(r);
		return hc_error_set(HC_ESYS, "cannot create lock");
	}
	if (r->fsync) {
		g = git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
		if (g < 0) {
			rc = git_fail(g, "cannot enable fsync");
			goto out;
		}
	}

	gitfd = openat(storefd, "git",
		       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (gitfd < 0) {
		rc = hc_error_set(errno == ENOENT ? HC_ENOENT : HC_ESYS,
				  "cannot open the store's 'git'");
		goto out;
	}
	r->gitfd = fcntl(gitfd, F_DUPFD_CLOEXEC, 0);
	if (r->gitfd < 0) {
		rc = hc_error_set(HC_ESYS, "cannot open the store's 'git'");
		goto out;
	}
	rc = fd_path(gitfd, path, sizeof(path));
	if (rc < 0)
		goto out;
	empty = dir_empty(gitfd);
	if (empty < 0) {
		rc = empty;
		goto out;
	}
	if (empty && !create) {
		rc = hc_error_set(HC_ENOENT, "the store's 'git' is empty");
		goto out;
	}
	if (!empty) {
		/* A killed writer's locks and temporary files: this open
		 * is the writer. */
		if (create) {
			remove_stale_locks(gitfd, 0);
			remove_git2_tmp(gitfd);
		}
		/* Nothing libgit2 opens may block it or lead elsewhere. */
		rc = repo_shape(gitfd);
		if (rc == 0)
			rc = types_check(gitfd);
		if (rc == 0 && create)
			rc = writer_safe(r);
		if (rc < 0)
			goto out;
	}
	if (empty) {
		rc = repo_create(&r->repo, path, r->fsync, gitfd);
	} else if (create) {
		g = git_repository_open_bare(&r->repo, path);
		if (g < 0) {
			/* Not "absent": something is there and is broken. */
			rc = git_fail(g, "cannot open repository '%s'", path);
			if (rc == HC_ENOENT)
				rc = recode(HC_EFORMAT, "");
		}
	} else {
		rc = odb_open_readonly(r, path);
	}
	if (rc < 0)
		goto out;
	g = r->odb ? 0 : git_repository_odb(&r->odb, r->repo);
	if (g == 0)
		g = git_treebuilder_new(&r->check, r->repo, NULL);
	if (g < 0) {
		rc = git_fail(g, "cannot open repository '%s'", path);
		goto out;
	}
	if (create) {
		rc = batch_open(r, gitfd);
		if (rc == 0)
			rc = mkdir_open(gitfd, VS_LFS_DIR, r->fsync, &lfsdir);
		if (rc == 0)
			rc = mkdir_open(lfsdir, "objects", r->fsync, &r->lfsfd);
	} else {
		rc = jindex_open(r);
		if (rc == 0)
			rc = lfs_dir_open(gitfd, &r->lfsfd);
	}
	if (rc < 0)
		goto out;
	*out = r;
	r = NULL;
out:
	if (lfsdir >= 0)
		close(lfsdir);
	if (gitfd >= 0)
		close(gitfd);
	vs_close(r);
	return rc;
}

int vs_open(vs_repo **out, int storefd, const struct vs_options *opts)
{
	return repo_open(out, storefd, opts, 1);
}

int vs_open_existing(vs_repo **out, int storefd)
{
	return repo_open(out, storefd, NULL, 0);
}

int vs_sync(vs_repo *r)
{
	return sync_all(r);
}

uint64_t vs_lfs_threshold(vs_repo *r)
{
	return r->threshold;
}

uint64_t vs_batch_bytes(vs_repo *r)
{
	uint64_t n;

	if (!r)
		return 0;
	pthread_mutex_lock(&r->lock);
	n = r->batch_bytes;
	pthread_mutex_unlock(&r->lock);
	return n;
}

void vs_journal_replayed(vs_repo *r, size_t *blobs, uint64_t *torn)
{
	*blobs = r ? r->replayed : 0;
	*torn = r ? r->torn : 0;
}

int vs_has(vs_repo *r, const char *blob)
{
	git_oid oid;
	int yes;

	if (oid_parse(&oid, blob) < 0)
		return 0;
	pthread_mutex_lock(&r->lock);
	if (r->ji)
		yes = blob_find_locked(r, &oid, blob, NULL) == 0;
	else
		yes = git_odb_exists(r->odb, &oid);
	pthread_mutex_unlock(&r->lock);
	return yes;
}

int vs_head(vs_repo *r, char id_out[41])
{
	struct packed pk;
	git_oid oid;
	size_t n = 0;
	int rc, loose;

	rc = packed_load(r, &pk, NULL, &n);
	if (rc == 0)
		rc = ref_value(r, VS_REF, pk.has_main ? &pk.main : NULL, &oid,
			       &loose, NULL, &n);
	if (rc == 2)
		return hc_error_set(HC_EFORMAT, "cannot read '%s'", VS_REF);
	if (rc <= 0)
		return rc < 0 ? rc : 1;
	git_oid_tostr(id_out, 41, &oid);
	return 0;
}

struct head_walk {
	int (*fn)(void *ctx, const char *path, const char *blob, unsigned mode);
	void *ctx;
	int rc;
};

static int head_walk_cb(const char *root, const git_tree_entry *e,
			void *payload)
{
	struct head_walk *w = payload;
	char hex[41], *path;
	git_filemode_t mode = git_tree_entry_filemode(e);

	if (git_tree_entry_type(e) != GIT_OBJECT_BLOB)
		return 0;
	if (asprintf(&path, "%s%s", root, git_tree_entry_name(e)) < 0) {
		w->rc = hc_error_set(HC_ENOMEM, "out of memory");
		return -1;
	}
	git_oid_tostr(hex, sizeof(hex), git_tree_entry_id(e));
	w->rc = w->fn(w->ctx, path, hex, (unsigned)mode);
	free(path);
	return w->rc ? -1 : 0;
}

int vs_head_foreach(vs_repo *r,
		    int (*fn)(void *ctx, const char *path, const char *blob,
			      unsigned mode),
		    void *ctx)
{
	struct head_walk w = {fn, ctx, 0};
	git_commit *c = NULL;
	git_tree *t = NULL;
	char hex[41];
	git_oid oid;
	int g, rc;

	/* The ref as vs_head reads it (a read-only open has no refdb). */
	rc = vs_head(r, hex);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	if (git_oid_fromstr(&oid, hex) < 0)
		return hc_error_set(HC_EFORMAT, "bad commit id '%s'", hex);
	pthread_mutex_lock(&r->lock);
	g = git_commit_lookup(&c, r->repo, &oid);
	if (g == 0)
		g = git_commit_tree(&t, c);
	if (g < 0) {
		rc = git_fail(g, "cannot read the tree of '%s'", VS_REF);
		goto out;
	}
	g = git_tree_walk(t, GIT_TREEWALK_PRE, head_walk_cb, &w);
	if (w.rc)
		rc = w.rc;
	else if (g < 0)
		rc = git_fail(g, "cannot walk the tree of '%s'", VS_REF);
out:
	git_tree_free(t);
	git_commit_free(c);
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int vs_commit_message(vs_repo *r, const char *commit, char **out)
{
	git_commit *c = NULL;
	git_object_t type;
	char *msg = NULL;
	git_oid oid;
	size_t len;
	int rc, g;

	if (!r || !out)
		return hc_error_set(HC_EINVAL,
				    "vs_commit_message: bad arguments");
	rc = oid_parse(&oid, commit);
	if (rc < 0)
		return recode(HC_EFORMAT, "");
	pthread_mutex_lock(&r->lock);
	g = git_odb_read_header(&len, &type, r->odb, &oid);
	if (g == GIT_ENOTFOUND)
		rc = hc_error_set(HC_ENOENT, "commit '%s' is missing", commit);
	else if (g < 0)
		rc = git_fail(g, "cannot read object '%s'", commit);
	else if (type != GIT_OBJECT_COMMIT)
		rc = hc_error_set(HC_EFORMAT,
				  "object '%s' is a %s, not a commit", commit,
				  git_object_type2string(type));
	if (rc == 0) {
		g = git_commit_lookup(&c, r->repo, &oid);
		if (g < 0)
			rc = git_fail(g, "cannot read commit '%s'", commit);
		if (rc == HC_ENOENT) /* there, but does not parse */
			rc = recode(HC_EFORMAT, "");
	}
	if (rc == 0) {
		msg = strdup(git_commit_message_raw(c));
		if (!msg)
			rc = hc_error_set(HC_ENOMEM, "out of memory");
	}
	git_commit_free(c);
	pthread_mutex_unlock(&r->lock);
	if (rc == 0)
		*out = msg;
	return rc;
}

void vs_close(vs_repo *r)
{
	if (!r)
		return;
	if (r->gitfd >= 0)
		close(r->gitfd);
	jindex_free(r->ji);
	ops_clear(r);
	free(r->ops);
	free(r->batch.v);
	if (r->jfd >= 0)
		close(r->jfd);
	git_treebuilder_free(r->check);
	git_odb_free(r->odb);
	git_repository_free(r->repo);
	if (r->lfsfd >= 0)
		close(r->lfsfd);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
