/*
 * ops.c - the FUSE low-level operations: a passthrough to STORE/tree that
 * records every change in the chain and versions every file in git.
 *
 * Every change is recorded before it is made, and if its record cannot
 * be written it is not made: the caller gets the error.  An act that
 * fails after its record gets a `failed` record naming it (the model
 * undoes it).  A change of a file's content holds the node's io lock
 * shared from its record to its act, and a version holds it exclusively,
 * so a version's record names exactly the content it stored; a version
 * that shares the file's blocks (a large file's LFS object, linked, not
 * copied) gets blocks of its own before any change of the file, on
 * every path that can change it.
 *
 * Errors become -errno here and only here (replies); refused attempts are
 * recorded by hz_refuse.
 */
#include <dirent.h>
#include <errno.h>
#include <linux/capability.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fsint.h"

#define FS(req) ((struct hz_fs *)fuse_req_userdata(req))

/* ----------------------------------------------------------- helpers */

static void reply_err(fuse_req_t req, int neg)
{
	fuse_reply_err(req, neg < 0 ? -neg : neg);
}

/* The path of a node for records; "?" when out of memory. */
static char *path_of(struct hz_fs *fs, struct hz_node *n)
{
	char *p = hz_node_path(fs, n);

	return p ? p : strdup("?");
}

/* The fid of the name path now (the model's), or TM_NONE. */
static uint64_t path_fid(struct hz_fs *fs, const char *path)
{
	uint64_t fid = TM_NONE;

	if (!path)
		return TM_NONE;
	pthread_mutex_lock(&fs->mmu);
	if (tm_lookup(fs->model, path, &fid) < 0)
		fid = TM_NONE;
	pthread_mutex_unlock(&fs->mmu);
	return fid;
}

/* The fid of node n: its mark, or what the model says of its name. */
static uint64_t node_fid(struct hz_fs *fs, struct hz_node *n)
{
	char *path;

	if (n == &fs->root)
		return TM_ROOT;
	if (n->fid != TM_NONE)
		return n->fid;
	path = hz_node_path(fs, n);
	n->fid = path_fid(fs, path);
	free(path);
	return n->fid;
}

/* What the model says of fid; 0 or HC_ENOENT. */
static int fid_info(struct hz_fs *fs, uint64_t fid, struct tm_info *out)
{
	int rc;

	pthread_mutex_lock(&fs->mmu);
	rc = tm_get(fs->model, fid, out);
	pthread_mutex_unlock(&fs->mmu);
	return rc;
}

/*
 * Record an event about file fid (fields gets its "path", a name it has
 * now, and "fid"); fields may be NULL (then a new object).
 */
static int record_file(struct hz_fs *fs, const char *type,
		       const hc_actor *actor, uint64_t fid, json_t *fields,
		       uint64_t *seq)
{
	if (!fields)
		fields = json_object();
	if (fields && hz_json_file(fields, fs, fid) < 0) {
		json_decref(fields);
		fields = NULL;
	}
	return hz_record(fs, type, actor, fields, seq);
}

/* Record an event naming path (and fid, unless TM_NONE). */
static int record_path(struct hz_fs *fs, const char *type,
		       const hc_actor *actor, const char *path, uint64_t fid,
		       json_t *fields, uint64_t *seq)
{
	if (!fields)
		fields = json_object();
	if (fields && hz_json_path(fields, "path", path) < 0) {
		json_decref(fields);
		fields = NULL;
	}
	if (fields && fid != TM_NONE &&
	    json_object_set_new(fields, "fid", json_integer((json_int_t)fid))) {
		json_decref(fields);
		fields = NULL;
	}
	return hz_record(fs, type, actor, fields, seq);
}

/* Refuse every change on a read-only mount. */
static int refuse_ro(struct hz_fs *fs, fuse_req_t req, const char *op,
		     struct hz_node *parent, const char *name)
{
	hc_actor actor;
	char *path;
	int rc;

	if (!fs->opts.read_only)
		return 0;
	hz_actor(fs, req, &actor);
	path = name ? hz_child_path(fs, parent, name) : path_of(fs, parent);
	rc = hz_refuse(fs, &actor, op, path, TM_NONE, EROFS);
	free(path);
	return rc;
}

/*
 * /.hozen/ is read-only, and nothing tried there is recorded: -EROFS if
 * a or b is a node of it, or name in the root is its name.
 */
static int virt_ro(struct hz_fs *fs, struct hz_node *a, struct hz_node *b,
		   const char *name)
{
	if ((a && a->virt) || (b && b->virt) ||
	    (name && a == &fs->root && !strcmp(name, VIRT_NAME)))
		return -EROFS;
	return 0;
}

/*
 * The fd of directory p for a change of name in it; -errno when refused
 * (a read-only mount: recorded) or when p cannot be opened.
 */
static int change_in(struct hz_fs *fs, fuse_req_t req, const char *op,
		     struct hz_node *p, const char *name)
{
	int rc = virt_ro(fs, p, NULL, name);

	if (rc == 0)
		rc = refuse_ro(fs, req, op, p, name);
	return rc < 0 ? rc : hz_node_open(fs, p, O_PATH);
}

/*
 * WORM: a file with a version made under a WORM mount is immutable while
 * the preservation order is in force (the model says which, from the
 * chain; n->locked is what it said, set at lookup and at each version).
 */
static int worm_locked(struct hz_fs *fs, struct hz_node *n)
{
	int v;

	if (!fs->preserving || n == &fs->root || n->virt)
		return 0;
	pthread_mutex_lock(&n->mu);
	v = n->locked;
	pthread_mutex_unlock(&n->mu);
	return v;
}

static int fid_locked(struct hz_fs *fs, uint64_t fid)
{
	struct tm_info info;

	return fs->preserving && fid != TM_NONE &&
	       fid_info(fs, fid, &info) == 0 && info.locked;
}

static int refuse_worm(struct hz_fs *fs, const hc_actor *actor, const char *op,
		       struct hz_node *n)
{
	uint64_t fid = node_fid(fs, n);
	char *path = hz_fid_path(fs, fid);
	int rc;

	rc = hz_refuse(fs, actor, op, path, fid, EPERM);
	free(path);
	return rc;
}

/* The owner and mode a new name in directory dirfd gets. */
static void new_owner(fuse_req_t req, int dirfd, mode_t *mode, uid_t *uid,
		      gid_t *gid)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct stat dst;

	*uid = ctx->uid;
	*gid = ctx->gid;
	/* In a setgid directory: its group, and setgid for directories. */
	if (fstat(dirfd, &dst) == 0 && (dst.st_mode & S_ISGID)) {
		*gid = dst.st_gid;
		if (S_ISDIR(*mode))
			*mode |= S_ISGID;
	}
}

/*
 * Give name in dirfd the owner and mode its record says and mark it with
 * its fid: what the record says is exactly what the tree holds.
 */
static int settle(int dirfd, const char *name, mode_t mode, uid_t uid,
		  gid_t gid, uint64_t fid)
{
	char proc[64], val[32];
	int fd, rc = 0;

	fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	snprintf(val, sizeof(val), "%" PRIu64, fid);
	if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) <
		    0 ||
	    (!S_ISLNK(mode) && chmod(proc, mode & 07777) < 0) ||
	    setxattr(proc, TM_XATTR_FID, val, strlen(val), 0) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* settle() of the file the daemon has just created, open as fd. */
static int settle_fd(int fd, mode_t mode, uid_t uid, gid_t gid, uint64_t fid)
{
	char val[32];

	snprintf(val, sizeof(val), "%" PRIu64, fid);
	if (fchown(fd, uid, gid) < 0 || fchmod(fd, mode & 07777) < 0 ||
	    fsetxattr(fd, TM_XATTR_FID, val, strlen(val), 0) < 0)
		return -errno;
	return 0;
}

/* The git mode of a file of mode m. */
static unsigned git_mode(mode_t m)
{
	if (S_ISLNK(m))
		return 0120000;
	return (m & 0111) ? 0100755 : 0100644;
}

/* Stage path (a file or everything below a directory) as the model says. */
static int stage_one(void *ctx, const char *path, const struct tm_info *i)
{
	struct hz_fs *fs = ctx;

	if (S_ISREG(i->mode) && i->content == TM_KNOWN && i->blob[0])
		return vs_stage(fs->vs, path, i->blob, git_mode(i->mode));
	if (S_ISLNK(i->mode) && i->blob[0])
		return vs_stage(fs->vs, path, i->blob, 0120000);
	return 0; /* changed since its version: staged when versioned */
}

/*
 * Stage every name of fid as the model says: after a change of mode that
 * git sees (the executable bit), which no version follows.
 */
static void stage_fid(struct hz_fs *fs, uint64_t fid)
{
	struct tm_info info;
	char **paths = NULL;
	size_t i;

	pthread_mutex_lock(&fs->mmu);
	if (tm_get(fs->model, fid, &info) == 0 &&
	    tm_paths(fs->model, fid, &paths) == 0)
		for (i = 0; paths && paths[i]; i++)
			if (stage_one(fs, paths[i], &info) < 0)
				fuse_log(FUSE_LOG_ERR,
					 "hozen: cannot stage a change of "
					 "mode: %s\n",
					 hc_error_message());
	pthread_mutex_unlock(&fs->mmu);
	tm_paths_free(paths);
}

static int stage_path(struct hz_fs *fs, const char *path)
{
	struct tm_info info;
	uint64_t fid;
	int rc;

	pthread_mutex_lock(&fs->mmu);
	rc = tm_lookup(fs->model, path, &fid);
	if (rc == 0)
		rc = tm_get(fs->model, fid, &info);
	if (rc == 0)
		rc = S_ISDIR(info.mode)
			     ? tm_walk(fs->model, path, stage_one, fs)
			     : stage_one(fs, path, &info);
	pthread_mutex_unlock(&fs->mmu);
	return rc == HC_ENOENT ? 0 : rc;
}

/*
 * Wake the committer when enough versions are staged, or their new
 * content (held in memory until the commit packs it) grows large.
 */
static void poke_committer(struct hz_fs *fs)
{
	if (vs_pending(fs->vs) >= fs->opts.commit_every ||
	    vs_batch_bytes(fs->vs) >= HZ_BATCH_BYTES) {
		pthread_mutex_lock(&fs->cmu);
		pthread_cond_signal(&fs->ccv);
		pthread_mutex_unlock(&fs->cmu);
	}
}

/* hozen's own xattrs: not shown, not settable through the mount. */
static int is_mark(const char *name)
{
	return !strncmp(name, "trusted.hozen.", 14);
}

/*
 * SHA-256 of the first size bytes of fd (read with pread).  The buffer is
 * no larger than the file: a small file's version then costs no 1 MiB
 * allocation (and no consolidation of malloc's free lists).
 */
static int hash_whole(int fd, uint64_t size, uint8_t sha[HC_HASH_LEN])
{
	hc_sha256_ctx *c = NULL;
	size_t bufsize = size < (1u << 20) ? (size_t)size + 1 : (1u << 20);
	uint8_t *buf = malloc(bufsize);
	uint64_t off = 0;
	ssize_t k;
	int rc;

	if (!buf)
		return hc_error_set(HC_ENOMEM, "out of memory");
	rc = hc_sha256_new(&c);
	while (rc == 0 && off < size) {
		size_t want =
			size - off < bufsize ? (size_t)(size - off) : bufsize;

		k = pread(fd, buf, want, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			rc = k < 0 ? hc_error_set(HC_ESYS, "cannot read a file "
							   "to version")
				   : hc_error_set(HC_EFORMAT,
						  "a file shrank while it was "
						  "versioned");
			break;
		}
		rc = hc_sha256_update(c, buf, (size_t)k);
		off += (uint64_t)k;
	}
	if (rc == 0)
		rc = hc_sha256_final(c, sha);
	hc_sha256_free(c);
	free(buf);
	return rc;
}

/* ---------------------------------------------------------- versioning */

/* Give n's last version blocks of its own (io held exclusively). */
static int unshare_locked(struct hz_fs *fs, struct hz_node *n)
{
	int fd, rc;

	if (!n->shared)
		return 0;
	fd = hz_node_open(fs, n, O_RDONLY | O_NOFOLLOW);
	if (fd < 0)
		return hc_error_set(HC_ESYS, "cannot open a file to copy its "
					     "version");
	rc = vs_lfs_unshare(fs->vs, n->lfs_hex, fd);
	if (rc == 0) {
		(void)fremovexattr(fd, HZ_LFS_MARK);
		n->shared = 0;
	}
	close(fd);
	return rc;
}

/*
 * Hold n's content for a change: shared with other changes, exclusive of
 * versions, with its last version no longer sharing its blocks.  Release
 * with content_end.
 */
static int content_begin(struct hz_fs *fs, struct hz_node *n)
{
	int rc;

	for (;;) {
		pthread_rwlock_rdlock(&n->io);
		if (!n->shared)
			return 0;
		pthread_rwlock_unlock(&n->io);
		pthread_rwlock_wrlock(&n->io);
		rc = unshare_locked(fs, n);
		pthread_rwlock_unlock(&n->io);
		if (rc < 0)
			return rc;
	}
}

static void content_end(struct hz_node *n)
{
	pthread_rwlock_unlock(&n->io);
}

/*
 * Store n's content (read from fd) as a version.  A large file's version
 * is the file itself, hard-linked into git's LFS objects (no copy); the
 * mark naming the object goes on first, so that whatever a crash leaves,
 * the daemon knows to give the object blocks of its own before the file
 * changes.  io held exclusively.
 */
static int store_version(struct hz_fs *fs, struct hz_node *n, int fd,
			 const struct stat *st, const uint8_t *known,
			 struct vs_version *v)
{
	uint8_t sha[HC_HASH_LEN];
	char proc[64], hex[HC_HEX_LEN + 1];
	int rc;

	if (!S_ISREG(st->st_mode) ||
	    (uint64_t)st->st_size < vs_lfs_threshold(fs->vs) || n->shared)
		return vs_store_fd(fs->vs, fd, (uint64_t)st->st_size, known, v);
	if (!known) {
		rc = hash_whole(fd, (uint64_t)st->st_size, sha);
		if (rc < 0)
			return rc;
		known = sha;
	}
	hc_hex(known, HC_HASH_LEN, hex);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (setxattr(proc, HZ_LFS_MARK, hex, HC_HEX_LEN, 0) < 0)
		return vs_store_fd(fs->vs, fd, (uint64_t)st->st_size, known, v);
	rc = vs_store_fd_link(fs->vs, fd, (uint64_t)st->st_size, known, v);
	if (rc == 0 && v->linked) {
		n->shared = 1;
		memcpy(n->lfs_hex, hex, sizeof(hex));
	} else {
		(void)removexattr(proc, HZ_LFS_MARK);
	}
	return rc;
}

/* Stage every name of fid with blob (hard links: each shows it). */
static void stage_names(struct hz_fs *fs, uint64_t fid, const char *blob,
			unsigned mode)
{
	char **paths = NULL;
	size_t i;

	pthread_mutex_lock(&fs->mmu);
	if (tm_paths(fs->model, fid, &paths) < 0)
		paths = NULL;
	pthread_mutex_unlock(&fs->mmu);
	for (i = 0; paths && paths[i]; i++)
		if (vs_stage(fs->vs, paths[i], blob, mode) < 0)
			fuse_log(FUSE_LOG_ERR,
				 "hozen: cannot stage a version: %s\n",
				 hc_error_message());
	tm_paths_free(paths);
}

/*
 * Version the content of n now, known to have SHA-256 sha (or NULL).
 * io held exclusively and n->mu held.  Stages the version for the next
 * commit under every name the file has, and records it.
 */
static int version_locked(struct hz_fs *fs, struct hz_node *n,
			  const hc_actor *actor, const char *why,
			  const uint8_t *sha, int openfd)
{
	struct vs_version v;
	struct tm_info info;
	char hex[HC_HEX_LEN + 1], *path = NULL;
	uint64_t fid = node_fid(fs, n);
	struct stat st;
	json_t *f;
	int fd = openfd, rc;

	/* An open handle of the file serves (it is read with pread). */
	if (fd < 0)
		fd = hz_node_open(fs, n, O_RDONLY | O_NOFOLLOW);
	if (fd < 0)
		return hc_error_set(HC_ESYS, "cannot open a file to version");
	if (fstat(fd, &st) < 0) {
		if (fd != openfd)
			close(fd);
		return hc_error_set(HC_ESYS, "cannot stat a file to version");
	}
	/* New content waits in memory for a commit: never too much. */
	if (vs_batch_bytes(fs->vs) + (uint64_t)st.st_size >
		    2 * (uint64_t)HZ_BATCH_BYTES &&
	    (uint64_t)st.st_size < vs_lfs_threshold(fs->vs))
		(void)hz_commit(fs, "batch");
	rc = store_version(fs, n, fd, &st, sha, &v);
	if (fd != openfd)
		close(fd);
	if (rc < 0)
		return rc;
	hc_hex(v.sha256, HC_HASH_LEN, hex);
	f = json_pack("{s:I,s:s,s:s,s:b,s:s}", "size", (json_int_t)v.size,
		      "sha256", hex, "blob", v.blob, "lfs", v.lfs, "why", why);
	rc = record_file(fs, "version", actor, fid, f, NULL);
	if (rc < 0)
		return rc;
	path = hz_fid_path(fs, fid);
	if (path)
		hz_virt_versioned(fs, path, &v, hz_record_time());
	free(path);
	stage_names(fs, fid, v.blob, git_mode(st.st_mode));
	n->dirty = 0;
	if (fid_info(fs, fid, &info) == 0)
		n->locked = info.locked;
	memcpy(n->blob, v.blob, sizeof(n->blob));
	n->mode = git_mode(st.st_mode);
	poke_committer(fs);
	return 0;
}

/* Version n if it changed since its version (io exclusively held). */
static int preserve_locked(struct hz_fs *fs, struct hz_node *n,
			   const hc_actor *actor, const char *why)
{
	int rc = 0;

	if (!fs->preserving)
		return 0; /* the order was released: nothing to preserve */
	pthread_mutex_lock(&n->mu);
	if (n->dirty)
		rc = version_locked(fs, n, actor, why, NULL, -1);
	pthread_mutex_unlock(&n->mu);
	return rc;
}

int hz_preserve(struct hz_fs *fs, struct hz_node *n, const hc_actor *actor,
		const char *why)
{
	int rc;

	if (n == &fs->root || n->virt)
		return 0;
	pthread_rwlock_wrlock(&n->io);
	rc = preserve_locked(fs, n, actor, why);
	pthread_rwlock_unlock(&n->io);
	return rc;
}

/*
 * Hold n's content exclusively for a change that destroys some of it
 * (a truncation, a hole, O_TRUNC): its content versioned first (under
 * preserve) and its version given blocks of its own.  content_end
 * releases it.
 */
static int destroy_begin(struct hz_fs *fs, struct hz_node *n,
			 const hc_actor *actor, const char *why)
{
	int rc;

	pthread_rwlock_wrlock(&n->io);
	rc = preserve_locked(fs, n, actor, why);
	if (rc == 0)
		rc = unshare_locked(fs, n);
	if (rc < 0)
		pthread_rwlock_unlock(&n->io);
	return rc;
}

int hz_version_dirty(struct hz_fs *fs, const char *why)
{
	struct hz_node **dirty = NULL, **more, *n;
	size_t i, count = 0, cap = 0;
	hc_actor self;
	int rc = 0, r;

	/* Collected first: versioning takes other locks. */
	pthread_mutex_lock(&fs->tlock);
	for (i = 0; rc == 0 && i < fs->nbuckets; i++)
		for (n = fs->buckets[i]; rc == 0 && n; n = n->hnext) {
			if (!n->dirty || n->virt)
				continue;
			if (count == cap) {
				cap = cap ? 2 * cap : 64;
				more = realloc(dirty, cap * sizeof(*dirty));
				if (!more) {
					rc = hc_error_set(HC_ENOMEM,
							  "out of memory");
					break;
				}
				dirty = more;
			}
			dirty[count++] = n;
		}
	pthread_mutex_unlock(&fs->tlock);
	hc_actor_self(&self);
	for (i = 0; rc == 0 && i < count; i++) {
		n = dirty[i];
		pthread_rwlock_wrlock(&n->io);
		pthread_mutex_lock(&n->mu);
		r = n->dirty ? version_locked(fs, n, &self, why, NULL, -1) : 0;
		pthread_mutex_unlock(&n->mu);
		pthread_rwlock_unlock(&n->io);
		if (r < 0) /* gone since, say: its records tell; go on */
			fuse_log(FUSE_LOG_ERR,
				 "hozen: cannot version a file "
				 "at unmount: %s\n",
				 hc_error_message());
	}
	free(dirty);
	return rc;
}

/* --------------------------------------------------------------- init */

static void hz_init(void *userdata, struct fuse_conn_info *conn)
{
	struct hz_fs *fs = userdata;

	/* Write-through unless asked (fs.h: the records say less). */
	if (fs->opts.writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_EXPORT_SUPPORT)
		conn->want |= FUSE_CAP_EXPORT_SUPPORT;
	/* The kernel applies the umask; creation modes arrive final. */
	conn->want &= ~(unsigned)FUSE_CAP_DONT_MASK;
	/* Every request passes wire.c's read (its kill flags). */
	conn->want &= ~(unsigned)FUSE_CAP_SPLICE_READ;
	conn->max_write = 1 << 20;
	conn->max_readahead = 1 << 20;
}

/* ------------------------------------------------------------ lookups */

static void hz_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct hz_fs *fs = FS(req);
	struct hz_node *p = hz_node_get(fs, parent);
	struct fuse_entry_param e;
	int pfd, rc;

	rc = hz_virt_lookup(fs, p, name, &e);
	if (rc < 0)
		reply_err(req, rc);
	else if (rc > 0 && fuse_reply_entry(req, &e) < 0)
		hz_virt_forget(fs, hz_node_get(fs, e.ino), 1); /* not taken */
	if (rc != 0)
		return;
	pfd = hz_node_open(fs, hz_node_get(fs, parent), O_PATH);
	if (pfd < 0) {
		reply_err(req, pfd);
		return;
	}
	rc = hz_node_lookup(fs, hz_node_get(fs, parent), pfd, name, &e, NULL);
	close(pfd);
	if (rc < 0)
		reply_err(req, rc);
	else
		fuse_reply_entry(req, &e);
}

static void hz_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	hz_node_forget(FS(req), hz_node_get(FS(req), ino), nlookup);
	fuse_reply_none(req);
}

static void hz_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	size_t i;

	for (i = 0; i < count; i++)
		hz_node_forget(FS(req), hz_node_get(FS(req), forgets[i].ino),
			       forgets[i].nlookup);
	fuse_reply_none(req);
}

static void hz_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct hz_fs *fs = FS(req);
	struct hz_node *n = hz_node_get(fs, ino);
	struct stat st;
	int fd, rc;

	(void)fi;
	if (n->virt) {
		fuse_reply_attr(req, &st, hz_virt_stat(fs, n, &st));
		return;
	}
	fd = hz_node_open(fs, n, O_PATH);
	if (fd < 0) {
		reply_err(req, fd);
		return;
	}
	rc = fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	close(fd);
	if (rc < 0) {
		reply_err(req, -errno);
		return;
	}
	hz_fix_nlink(n, &st);
	fuse_reply_attr(req, &st, 1.0);
}

static void hz_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct hz_fs *fs = FS(req);
	char buf[PATH_MAX + 1];
	ssize_t n;
	int fd;

	if (hz_node_get(fs, ino)->virt) {
		n = hz_virt_readlink(fs, hz_node_get(fs, ino), buf,
				     sizeof(buf));
		if (n < 0)
			reply_err(req, (int)n);
		else
			fuse_reply_readlink(req, buf);
		return;
	}
	fd = hz_node_open(fs, hz_node_get(fs, ino), O_PATH);
	if (fd < 0) {
		reply_err(req, fd);
		return;
	}
	n = readlinkat(fd, "", buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		reply_err(req, -errno);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

/* ----------------------------------------------------------- creation */

/*
 * mknod, mkdir and symlink: record the new name with the mode and owner
 * it gets, create it, give it exactly those and its fid, reply with its
 * entry.
 */
static void make_node(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, dev_t rdev, const char *link)
{
	struct hz_fs *fs = FS(req);
	struct hz_node *p = hz_node_get(fs, parent), *n = NULL;
	const char *op = link ? "symlink" : S_ISDIR(mode) ? "mkdir" : "mknod";
	struct fuse_entry_param e;
	struct vs_version v;
	hc_actor actor;
	char *path = NULL;
	uint64_t seq = 0;
	uid_t uid;
	gid_t gid;
	json_t *f;
	int pfd, rc;

	pfd = change_in(fs, req, op, p, name);
	if (pfd < 0) {
		reply_err(req, pfd);
		return;
	}
	hz_actor(fs, req, &actor);
	path = hz_child_path(fs, p, name);
	if (!path) {
		rc = -ENOMEM;
		goto out;
	}
	if (link)
		mode = S_IFLNK | 0777;
	new_owner(req, pfd, &mode, &uid, &gid);
	f = json_pack("{s:I,s:I,s:I}", "mode", (json_int_t)mode, "uid",
		      (json_int_t)uid, "gid", (json_int_t)gid);
	if (f && S_ISCHR(mode | 0) && !link)
		json_object_set_new(f, "rdev", json_integer((json_int_t)rdev));
	else if (f && S_ISBLK(mode) && !link)
		json_object_set_new(f, "rdev", json_integer((json_int_t)rdev));
	if (f && link) {
		/* A symlink's target is its content: in git first. */
		rc = vs_store_buf(fs->vs, link, strlen(link), &v);
		if (rc < 0) {
			json_decref(f);
			rc = hz_errno(rc);
			goto out;
		}
		hz_json_path(f, "target", link);
		json_object_set_new(f, "blob", json_string(v.blob));
	}
	/* Its seq is the new file's fid. */
	rc = record_path(fs, op, &actor, path, TM_NONE, f, &seq);
	if (rc < 0) {
		rc = hz_errno(rc);
		goto out;
	}
	if (link)
		rc = symlinkat(link, pfd, name);
	else if (S_ISDIR(mode))
		rc = mkdirat(pfd, name, mode & 07777);
	else
		rc = mknodat(pfd, name, mode, rdev);
	if (rc < 0) {
		rc = hz_failed(fs, &actor, seq, op, errno, path, NULL, seq);
		goto out;
	}
	rc = settle(pfd, name, mode, uid, gid, seq);
	if (rc == 0)
		rc = hz_node_lookup(fs, p, pfd, name, &e, &n);
	if (rc < 0) {
		int err = -rc;

		(void)unlinkat(pfd, name, S_ISDIR(mode) ? AT_REMOVEDIR : 0);
		rc = hz_failed(fs, &actor, seq, op, err, path, NULL, seq);
		goto out;
	}
	n->fid = seq;
	if (link && vs_stage(fs->vs, path, v.blob, 0120000) < 0)
		fuse_log(FUSE_LOG_ERR, "hozen: cannot stage a symlink: %s\n",
			 hc_error_message());
	fuse_reply_entry(req, &e);
out:
	free(path);
	close(pfd);
	if (rc < 0)
		reply_err(req, rc);
}

static void hz_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	make_node(req, parent, name, mode, rdev, NULL);
}

static void hz_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	make_node(req, parent, name, S_IFDIR | (mode & 07777), 0, NULL);
}

static void hz_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	make_node(req, parent, name, S_IFLNK, 0, link);
}

static void hz_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent,
		    const char *name)
{
	struct hz_fs *fs = FS(req);
	struct hz_node *n = hz_node_get(fs, ino), *p = hz_node_get(fs, parent);
	struct fuse_entry_param e;
	hc_actor actor;
	char *from = NULL, *to = NULL;
	uint64_t fid, seq = 0;
	int fd = -1, pfd = -1, rc;
	json_t *f;

	rc = virt_ro(fs, p, n, name);
	if (rc == 0)
		rc = refuse_ro(fs, req, "link", p, name);
	if (rc < 0)
		goto out;
	fd = hz_node_open(fs, n, O_PATH);
	pfd = hz_node_open(fs, p, O_PATH);
	if (fd < 0 || pfd < 0) {
		rc = fd < 0 ? fd : pfd;
		goto out;
	}
	hz_actor(fs, req, &actor);
	fid = node_fid(fs, n);
	from = hz_fid_path(fs, fid);
	to = hz_child_path(fs, p, name);
	if (!to) {
		rc = -ENOMEM;
		goto out;
	}
	f = json_object();
	if (f && from)
		hz_json_path(f, "target", from);
	rc = record_path(fs, "link", &actor, to, fid, f, &seq);
	if (rc < 0) {
		rc = hz_errno(rc);
		goto out;
	}
	if (linkat(fd, "", pfd, name, AT_EMPTY_PATH) < 0) {
		rc = hz_failed(fs, &actor, seq, "link", errno, to, NULL, fid);
		goto out;
	}
	rc = hz_node_lookup(fs, p, pfd, name, &e, NULL);
	if (rc < 0)
		goto out; /* the link stands, as recorded */
	/* The snapshot shows the new name too (with the last version). */
	if (stage_path(fs, to) < 0)
		fuse_log(FUSE_LOG_ERR, "hozen: cannot stage a link: %s\n",
			 hc_error_message());
	fuse_reply_entry(req, &e);
out:
	free(from);
	free(to);
	if (fd >= 0)
		close(fd);
	if (pfd >= 0)
		close(pfd);
	if (rc < 0)
		reply_err(req, rc);
}

/* ------------------------------------------------------------ removal */

static void remove_entry(fuse_req_t req, fuse_ino_t parent, const char *name,
			 int dir)
{
	struct hz_fs *fs = FS(req);
	struct hz_node *p = hz_node_get(fs, parent), *n;
	const char *op = dir ? "rmdir" : "unlink";
	hc_actor actor;
	uint64_t fid, seq = 0;
	char *path;
	int pfd, rc;

	pfd = change_in(fs, req, op, p, name);
	if (pfd < 0) {
		reply_err(req, pfd);
		return;
	}
	hz_actor(fs, req, &actor);
	path = hz_child_path(fs, p, name);
	if (!path) {
		rc = -ENOMEM;
		goto out;
	}
	fid = path_fid(fs, path);
	n = hz_node_find(fs, pfd, name);
	if ((n && worm_locked(fs, n)) || fid_locked(fs, fid)) {
		rc = hz_refuse(fs, &actor, op, path, fid, EPERM);
		goto out;
	}
	/* Preserve: the content is in git before the name goes. */
	if (n && !dir) {
		rc = hz_preserve(fs, n, &actor, op);
		if (rc < 0) {
			rc = hz_errno(rc);
			goto out;
		}
	}
	rc = record_path(fs, op, &actor, path, fid, NULL, &seq);
	if (rc < 0) {
		rc = hz_errno(rc);
		goto out;
	}
	if (unlinkat(pfd, name, dir ? AT_REMOVEDIR : 0) < 0) {
		rc = hz_failed(fs, &actor, seq, op, errno, path, NULL, fid);
		goto out;
	}
	if (vs_stage_remove(fs->vs, path) < 0)
		fuse_log(FUSE_LOG_ERR, "hozen: cannot stage removal: %s\n",
			 hc_error_message());
	poke_committer(fs);
out:
	free(path);
	close(pfd);
	reply_err(req, rc);
}

static void hz_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, 0);
}

static void hz_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, 1);
}

static void hz_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct hz_fs *fs = FS(req);
	struct hz_node *p = hz_node_get(fs, parent),
		       *np = hz_node_get(fs, newparent), *n, *over;
	char *from = NULL, *to = NULL;
	int pfd = -1, npfd = -1, rc;
	uint64_t fid, ofid, seq = 0;
	hc_actor actor;
	json_t *f;

	rc = virt_ro(fs, p, np, name);
	if (rc == 0)
		rc = virt_ro(fs, np, NULL, newname);
	if (rc == 0)
		rc = refuse_ro(fs, req, "rename", p, name);
	if (rc < 0)
		goto out;
	pfd = hz_node_open(fs, p, O_PATH);
	npfd = hz_node_open(fs, np, O_PATH);
	if (pfd < 0 || npfd < 0) {
		rc = pfd < 0 ? pfd : npfd;
		goto out;
	}
	hz_actor(fs, req, &actor);
	from = hz_child_path(fs, p, name);
	to = hz_child_path(fs, np, newname);
	if (!from || !to) {
		rc = -ENOMEM;
		goto out;
	}
	fid = path_fid(fs, from);
	ofid = path_fid(fs, to);
	n = hz_node_find(fs, pfd, name);
	over = hz_node_find(fs, npfd, newname);
	if ((n && worm_locked(fs, n)) || (over && worm_locked(fs, over)) ||
	    fid_locked(fs, fid) || fid_locked(fs, ofid)) {
		rc = hz_refuse(fs, &actor, "rename", from, fid, EPERM);
		goto out;
	}
	/* Preserve what the rename would replace, and what it moves. */
	if (over && !(flags & RENAME_EXCHANGE))
		rc = hz_preserve(fs, over, &actor, "rename-over");
	if (rc == 0 && n)
		rc = hz_preserve(fs, n, &actor, "rename");
	if (rc < 0) {
		rc = hz_errno(rc);
		goto out;
	}
	f = json_pack("{s:I}", "flags", (json_int_t)flags);
	if (f)
		hz_json_path(f, "to", to);
	if (f && ofid != TM_NONE)
		json_object_set_new(f, "over", json_integer((json_int_t)ofid));
	rc = record_path(fs, "rename", &actor, from, fid, f, &seq);
	if (rc < 0) {
		rc = hz_errno(rc);
		goto out;
	}
	if (renameat2(pfd, name, npfd, newname, flags) < 0) {
		rc = hz_failed(fs, &actor, seq, "rename", errno, from, to, fid);
		goto out;
	}
	if (n)
		hz_node_rename(fs, n, np, newname);
	if (over && (flags & RENAME_EXCHANGE))
		hz_node_rename(fs, over, p, name);
	/* The live view: the old path goes, the new one is the file. */
	{
		int st = vs_stage_remove(fs->vs, from);

		if (st == 0)
			st = vs_stage_remove(fs->vs, to);
		if (st == 0)
			st = stage_path(fs, to);
		if (st == 0 && (flags & RENAME_EXCHANGE))
			st = stage_path(fs, from);
		if (st < 0)
			fuse_log(FUSE_LOG_ERR,
				 "hozen: cannot stage a rename: %s\n",
				 hc_error_message());
	}
	poke_committer(fs);
out:
	free(from);
	free(to);
	if (pfd >= 0)
		close(pfd);
	if (npfd >= 0)
		close(npfd);
	reply_err(req, rc);
}

/* ---------------------------------------------------------- attributes */

/* What a setattr asks to change. */
#define SETATTR_CHANGES                                                        \
	(FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID |          \
	 FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |      \
	 FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)

/* The inode number of the initial user namespace (PROC_USER_INIT_INO). */
#define INIT_USERNS_INO 4026531837u

/*
 * The caller holds CAP_FSETID as capable() asks: in its thread's
 * effective set, and in the initial user namespace (root in a user
 * namespace of its own does not).
 */
static int has_fsetid(fuse_req_t req)
{
	char name[64], line[256];
	unsigned long long caps;
	struct stat st;
	int has = 0;
	FILE *f;

	snprintf(name, sizeof(name), "/proc/%d/ns/user",
		 (int)fuse_req_ctx(req)->pid);
	if (stat(name, &st) < 0 || st.st_ino != INIT_USERNS_INO)
		return 0;
	snprintf(name, sizeof(name), "/proc/%d/status",
		 (int)fuse_req_ctx(req)->pid);
	f = fopen(name, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &caps) == 1) {
			has = (caps & (1ULL << CAP_FSETID)) != 0;
			break;
		}
	fclose(f);
	return has;
}

/* The caller is in group gid: its filesystem gid or a supplementary one. */
static int in_group(fuse_req_t req, gid_t gid)
{
	gid_t small[64], *list = small;
	int n, i, in = 0;

	if (fuse_req_ctx(req)->gid == gid)
		return 1;
	n = fuse_req_getgroups(req, 64, list);
	if (n > 64) {
		/* More than fit: as many as it has (up to 65,536). */
		list = malloc((size_t)n * sizeof(*list));
		if (!list)
			return 0;
		n = fuse_req_getgroups(req, n, list) > n ? 0 : n;
	}
	for (i = 0; i < n && !in; i++)
		in = list[i] == gid;
	if (list != small)
		free(list);
	return in;
}

/*
 * The mode a change of owner, or a write, truncation or fallocate by a
 * process without CAP_FSETID, leaves (Linux's setattr_should_drop_sgid,
 * 6.2 and later): setuid goes; setgid goes with group execute, or when
 * the caller is not in the file's group and (may_fsetid: for a change of
 * owner) holds no CAP_FSETID.  Directories and symbolic links keep all.
 */
static mode_t dropped_mode(fuse_req_t req, const struct stat *st,
			   int may_fsetid)
{
	mode_t m = st->st_mode;

	if (S_ISDIR(m) || S_ISLNK(m))
		return m & 07777;
	m &= ~(mode_t)S_ISUID;
	if ((m & S_ISGID) &&
	    ((m & S_IXGRP) ||
	     (!in_group(req, st->st_gid) && !(may_fsetid && has_fsetid(req)))))
		m &= ~(mode_t)S_ISGID;
	return m & 07777;
}

/*
 * What the kernel leaves to hozen under HANDLE_KILLPRIV_V2 (wire.c): a
 * write, truncation or O_TRUNC open by a process without CAP_FSETID
 * drops setuid, and setgid as dropped_mode says, from a regular file.
 * Recorded first, as the kernel's own setattr was; the kernel's cached
 * attributes are dropped, so a stat at once sees the new mode.  fd may
 * be O_PATH.
 */
static int kill_suidgid(struct hz_fs *fs, fuse_req_t req, struct hz_node *n,
			int fd, const hc_actor *actor)
{
	uint64_t fid = node_fid(fs, n), seq = 0;
	char proc[64], *path;
	struct stat st;
	mode_t want;
	int rc, err;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || !(st.st_mode & (S_ISUID | S_ISGID)))
		return 0;
	want = dropped_mode(req, &st, 0);
	if (want == (st.st_mode & 07777))
		return 0;
	rc = record_file(fs, "setattr", actor, fid,
			 json_pack("{s:i}", "mode", (int)want), &seq);
	if (rc < 0)
		return hz_errno(rc);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (chmod(proc, want) < 0) {
		err = errno;
		path = hz_fid_path(fs, fid);
		rc = hz_failed(fs, actor, seq, "setattr", err, path, NULL, fid);
		free(path);
		return rc;
	}
	(void)fuse_lowlevel_notify_inval_inode(fs->se, hz_node_ino(fs, n), -1,
					       0);
	return 0;
}

static void hz_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int valid, struct fuse_file_info *fi)
{
	struct hz_fs *fs = FS(req);
	struct hz_node *n = hz_node_get(fs, ino);
	int owner = valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID);
	int sized = valid & FUSE_SET_ATTR_SIZE, held = 0, set_mode;
	int kill = sized && hz_wire_kill();
	int chowned = owner;
	char proc[64], *path = NULL;
	mode_t want = 0;
	uint64_t fid, seq = 0;
	hc_actor actor;
	struct stat old = {0}, st;
	int fd = -1, rc = 0, step = 0, err;
	json_t *f;

	if (!(valid & SETATTR_CHANGES)) {
		/*
		 * Nothing asked: under HANDLE_KILLPRIV_V2 (wire.c) what the
		 * kernel sends where it would drop setuid itself, for a
		 * chown(-1, -1) or before a write or truncation by a process
		 * without CAP_FSETID, or where a file capability goes.  The
		 * first two drop the same bits when the caller lacks
		 * CAP_FSETID; a caller holding it may be writing, which drops
		 * nothing, and cannot be told from one chowning (-1, -1),
		 * which would drop setuid: nothing is dropped then.
		 */
		if (n->virt || n == &fs->root || has_fsetid(req)) {
			hz_getattr(req, ino, fi);
			return;
		}
		chowned = 1;
	}
	rc = virt_ro(fs, n, NULL, NULL);
	if (rc == 0)
		rc = refuse_ro(fs, req, "setattr", n, NULL);
	if (rc < 0)
		goto out;
	hz_actor(fs, req, &actor);
	fid = node_fid(fs, n);
	if (sized && n != &fs->root) {
		/* Truncation destroys content: versioned first. */
		rc = destroy_begin(fs, n, &actor, "truncate");
		if (rc < 0) {
			rc = hz_errno(rc);
			goto out;
		}
		held = 1;
	}
	if (worm_locked(fs, n)) {
		rc = refuse_worm(fs, &actor, "setattr", n);
		goto out;
	}
	if (fi) {
		fd = dup(((struct hz_file *)(uintptr_t)fi->fh)->fd);
		fd = fd < 0 ? -errno : fd;
	} else {
		fd = hz_node_open(fs, n, sized ? O_WRONLY : O_PATH);
	}
	if (fd < 0) {
		rc = fd;
		goto out;
	}
	/* What was, for a change of owner or mode (and to undo it). */
	if ((chowned || kill || (valid & FUSE_SET_ATTR_MODE)) &&
	    fstatat(fd, "", &old, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		rc = -errno;
		goto out;
	}
	/*
	 * What the mode will be, exactly: asked, or what a chown leaves, or
	 * what a truncation by a process without CAP_FSETID leaves.
	 */
	if (valid & FUSE_SET_ATTR_MODE)
		want = attr->st_mode & 07777;
	else if (chowned)
		want = dropped_mode(req, &old, 1);
	else if (kill && S_ISREG(old.st_mode))
		want = dropped_mode(req, &old, 0);
	else
		want = old.st_mode & 07777;
	set_mode = (valid & FUSE_SET_ATTR_MODE) ||
		   ((chowned || kill) && want != (old.st_mode & 07777));
	if (!owner && !set_mode && !sized &&
	    !(valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
		/* An empty setattr that drops nothing: nothing to record. */
		hz_fix_nlink(n, &old);
		close(fd);
		fd = -1;
		if (held)
			content_end(n);
		fuse_reply_attr(req, &old, 1.0);
		return;
	}
	f = json_object();
	if (set_mode)
		json_object_set_new(f, "mode", json_integer(want));
	if (valid & FUSE_SET_ATTR_UID)
		json_object_set_new(f, "uid", json_integer(attr->st_uid));
	if (valid & FUSE_SET_ATTR_GID)
		json_object_set_new(f, "gid", json_integer(attr->st_gid));
	if (sized)
		json_object_set_new(f, "size",
				    json_integer((json_int_t)attr->st_size));
	if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))
		json_object_set_new(f, "utimens", json_true());
	rc = record_file(fs, "setattr", &actor, fid, f, &seq);
	if (rc < 0) {
		rc = hz_errno(rc);
		goto out;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	step = 1;
	if (owner) {
		uid_t uid =
			(valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid =
			(valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;

		if (fchownat(fd, "", uid, gid,
			     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			goto failed;
	}
	step = 2;
	/* An O_PATH fd takes no fchmod: go through /proc. */
	if (!S_ISLNK(old.st_mode) && set_mode && chmod(proc, want) < 0)
		goto failed;
	step = 3;
	if (sized && ftruncate(fd, attr->st_size) < 0)
		goto failed;
	if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec tv[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};

		if (valid & FUSE_SET_ATTR_ATIME_NOW)
			tv[0].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_ATIME)
			tv[0] = attr->st_atim;
		if (valid & FUSE_SET_ATTR_MTIME_NOW)
			tv[1].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_MTIME)
			tv[1] = attr->st_mtim;
		/* Times are not evidence the model keeps: not undone. */
		(void)utimensat(AT_FDCWD, proc, tv, 0);
	}
	if (sized) {
		pthread_mutex_lock(&n->mu);
		n->dirty = 1;
		n->wgen++;
		pthread_mutex_unlock(&n->mu);
	}
	/* git keeps the executable bit: its tree follows the change. */
	if (set_mode && S_ISREG(old.st_mode) &&
	    !(old.st_mode & 0111) != !(want & 0111))
		stage_fid(fs, fid);
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		rc = -errno;
		goto out;
	}
	hz_fix_nlink(n, &st);
	if (held)
		content_end(n);
	close(fd);
	fuse_reply_attr(req, &st, 1.0);
	return;
failed:
	/* Part of it may be done: put back what was, then say it failed. */
	err = errno;
	if (step > 1 && owner)
		(void)fchownat(fd, "", old.st_uid, old.st_gid,
			       AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	if (step > 2 && set_mode && !S_ISLNK(old.st_mode))
		(void)chmod(proc, old.st_mode & 07777);
	path = hz_fid_path(fs, fid);
	rc = hz_failed(fs, &actor, seq, "setattr", err, path, NULL, fid);
out:
	if (held)
		content_end(n);
	if (fd >= 0)
		close(fd);
	free(path);
	reply_err(req, rc);
}

/* --------------------------------------------------------- open files */

/*
 * counted: the caller already counted the handle among n's writers (an
 * O_TRUNC open does, under the lock that truncates).  actor: the opener,
 * read for this request already (NULL: read it); made: the file was just
 * created by this request, so it is empty.
 */
static int file_new(struct hz_fs *fs, fuse_req_t req, struct hz_node *n, int fd,
		    int flags, int counted, const hc_actor *actor, int made,
		    struct hz_file **out)
{
	struct hz_file *h = calloc(1, sizeof(*h));
	struct stat st;

	if (!h)
		return -ENOMEM;
	h->fd = fd;
	h->node = n;
	pthread_mutex_init(&h->hmu, NULL);
	pthread_cond_init(&h->hcv, NULL);
	h->writable = (flags & O_ACCMODE) != O_RDONLY;
	if (actor)
		h->actor = *actor;
	else
		hz_actor(fs, req, &h->actor);
	if (h->writable) {
		pthread_mutex_lock(&n->mu);
		if (!counted)
			n->writers++;
		h->wgen0 = n->wgen;
		pthread_mutex_unlock(&n->mu);
		/* Hash as the bytes stream past if the file starts empty. */
		if ((made || (fstat(fd, &st) == 0 && st.st_size == 0)) &&
		    hc_sha256_new(&h->hash) < 0)
			h->hash = NULL;
	}
	*out = h;
	return 0;
}

/* A write of at most this many bytes hashes before its reply. */
#define HASH_INLINE_MAX (32 * 1024)

/* Wait until every claimed turn of h's streamed hash is hashed. */
static void hash_settle(struct hz_file *h)
{
	pthread_mutex_lock(&h->hmu);
	while (h->hash_done != h->hash_next)
		pthread_cond_wait(&h->hcv, &h->hmu);
	pthread_mutex_unlock(&h->hmu);
}

static void file_free(struct hz_file *h)
{
	hash_settle(h);
	hc_sha256_free(h->hash);
	pthread_cond_destroy(&h->hcv);
	pthread_mutex_destroy(&h->hmu);
	free(h);
}

static void file_drop(struct hz_file *h)
{
	if (!h)
		return;
	if (h->writable) {
		pthread_mutex_lock(&h->node->mu);
		h->node->writers--;
		pthread_mutex_unlock(&h->node->mu);
	}
	close(h->fd);
	file_free(h);
}

/*
 * Open an existing file (n) for the request: O_TRUNC versions it first
 * and is recorded before it happens.  *fd_out gets the fd.  An O_TRUNC
 * open for writing counts itself among the writers before the lock
 * that truncates is released (*counted = 1): else the release of an
 * earlier handle, between the two, would version the emptied file as if
 * it had been closed so.
 */
static int open_existing(struct hz_fs *fs, fuse_req_t req, struct hz_node *n,
			 int flags, int fiflags, const hc_actor *actor,
			 int *fd_out, int *counted)
{
	int writing = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
	uint64_t fid = node_fid(fs, n), seq = 0;
	int fd, rc = 0;
	char *path;

	if (writing && worm_locked(fs, n))
		return refuse_worm(fs, actor, "open", n);
	if (!(flags & O_TRUNC)) {
		fd = hz_node_open(fs, n, flags & ~O_CREAT);
		if (fd < 0)
			return fd;
		*fd_out = fd;
		return 0;
	}
	rc = destroy_begin(fs, n, actor, "truncate");
	if (rc < 0)
		return hz_errno(rc);
	if (worm_locked(fs, n)) {
		content_end(n);
		return refuse_worm(fs, actor, "open", n);
	}
	/* What the truncation drops, before it (and its record). */
	if (hz_wire_kill()) {
		fd = hz_node_open(fs, n, O_PATH);
		rc = fd < 0 ? fd : kill_suidgid(fs, req, n, fd, actor);
		if (fd >= 0)
			close(fd);
		if (rc < 0) {
			content_end(n);
			return rc;
		}
	}
	/* The truncation is recorded before it happens. */
	rc = record_file(fs, "open", actor, fid,
			 json_pack("{s:I,s:b}", "flags", (json_int_t)fiflags,
				   "created", 0),
			 &seq);
	if (rc < 0) {
		content_end(n);
		return hz_errno(rc);
	}
	fd = hz_node_open(fs, n, flags & ~O_CREAT);
	if (fd < 0) {
		path = hz_fid_path(fs, fid);
		rc = hz_failed(fs, actor, seq, "open", -fd, path, NULL, fid);
		free(path);
		content_end(n);
		return rc;
	}
	pthread_mutex_lock(&n->mu);
	n->dirty = 1;
	n->wgen++;
	if ((flags & O_ACCMODE) != O_RDONLY) {
		n->writers++;
		*counted = 1;
	}
	pthread_mutex_unlock(&n->mu);
	content_end(n);
	*fd_out = fd;
	return 0;
}

/*
 * Create name in parent for the request: recorded (its seq is the fid)
 * with the mode and owner it gets, created exclusively, given exactly
 * those.  1 if it existed already (raced) and the caller may open it.
 */
static int create_file(struct hz_fs *fs, fuse_req_t req, struct hz_node *parent,
		       int pfd, const char *name, int flags, mode_t mode,
		       const hc_actor *actor, int *fd_out, uint64_t *fid_out)
{
	char *path = hz_child_path(fs, parent, name);
	uint64_t seq = 0;
	uid_t uid;
	gid_t gid;
	int fd, rc, err;

	if (!path)
		return -ENOMEM;
	mode = S_IFREG | (mode & 07777);
	new_owner(req, pfd, &mode, &uid, &gid);
	rc = record_path(fs, "create", actor, path, TM_NONE,
			 json_pack("{s:I,s:I,s:I,s:I}", "mode",
				   (json_int_t)mode, "uid", (json_int_t)uid,
				   "gid", (json_int_t)gid, "flags",
				   (json_int_t)flags),
			 &seq);
	if (rc < 0) {
		free(path);
		return hz_errno(rc);
	}
	fd = openat(pfd, name,
		    ((flags | O_CREAT | O_EXCL) & ~O_NOFOLLOW) | O_CLOEXEC,
		    mode & 07777);
	if (fd < 0) {
		err = errno;
		rc = hz_failed(fs, actor, seq, "create", err, path, NULL, seq);
		free(path);
		/* Someone made it meanwhile: open(2) then opens that. */
		return err == EEXIST && !(flags & O_EXCL) ? 1 : rc;
	}
	rc = settle_fd(fd, mode, uid, gid, seq);
	if (rc < 0) {
		close(fd);
		(void)unlinkat(pfd, name, 0);
		rc = hz_failed(fs, actor, seq, "create", -rc, path, NULL, seq);
		free(path);
		return rc;
	}
	free(path);
	*fd_out = fd;
	*fid_out = seq;
	return 0;
}

static void open_file(fuse_req_t req, struct hz_node *n,
		      struct fuse_file_info *fi, int created, mode_t mode,
		      struct hz_node *parent, const char *name)
{
	struct hz_fs *fs = FS(req);
	struct fuse_entry_param e;
	struct hz_file *h = NULL;
	int flags = fi->flags, fd = -1, pfd = -1, rc = 0, made = 0;
	int writing = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
	int counted = 0;
	uint64_t fid = TM_NONE;
	hc_actor actor;
	char *path = NULL;
	json_t *f;

	if (created ? virt_ro(fs, parent, NULL, name) : n->virt) {
		/* /.hozen/: read-only; hz_virt_open records what it must. */
		if (writing || created) {
			rc = -EROFS;
			goto out;
		}
		fd = hz_virt_open(fs, req, n, fi);
		if (fd < 0) {
			rc = fd;
			goto out;
		}
		rc = file_new(fs, req, n, fd, flags, 0, NULL, 0, &h);
		if (rc < 0) {
			hz_virt_release(fs, n);
			goto out;
		}
		fd = -1;
		fi->fh = (uint64_t)(uintptr_t)h;
		fuse_reply_open(req, fi);
		h = NULL;
		goto out;
	}
	hz_actor(fs, req, &actor);
	if (writing && fs->opts.read_only) {
		path = created ? hz_child_path(fs, parent, name)
			       : path_of(fs, n);
		rc = hz_refuse(fs, &actor, created ? "create" : "open", path,
			       TM_NONE, EROFS);
		goto out;
	}
	/* With the writeback cache the kernel reads write-only files. */
	if ((flags & O_ACCMODE) == O_WRONLY)
		flags = (flags & ~O_ACCMODE) | O_RDWR;
	flags &= ~O_APPEND; /* the kernel handles append with writeback */
	if (created) {
		pfd = hz_node_open(fs, parent, O_PATH);
		if (pfd < 0) {
			rc = pfd;
			goto out;
		}
		rc = create_file(fs, req, parent, pfd, name, flags, mode,
				 &actor, &fd, &fid);
		if (rc < 0)
			goto out;
		made = rc == 0;
		rc = made ? hz_node_lookup_created(fs, parent, pfd, name, fd,
						   fid, &e, &n)
			  : hz_node_lookup(fs, parent, pfd, name, &e, &n);
		if (rc < 0)
			goto out;
		if (made) {
			n->fid = fid;
		} else {
			/* It exists after all: open it like open(2) would. */
			rc = open_existing(fs, req, n, flags, fi->flags, &actor,
					   &fd, &counted);
			if (rc < 0) {
				hz_node_forget(fs, n, 1);
				goto out;
			}
		}
	} else {
		rc = open_existing(fs, req, n, flags, fi->flags, &actor, &fd,
				   &counted);
		if (rc < 0)
			goto out;
	}
	rc = file_new(fs, req, n, fd, flags, counted, &actor, made, &h);
	if (rc < 0) {
		if (counted) {
			pthread_mutex_lock(&n->mu);
			n->writers--;
			pthread_mutex_unlock(&n->mu);
		}
		goto out;
	}
	fd = -1;
	if (!created && !(flags & O_TRUNC) && fs->opts.log_reads && !writing) {
		f = json_pack("{s:I,s:b}", "flags", (json_int_t)fi->flags,
			      "created", 0);
		rc = record_file(fs, "open", &actor, node_fid(fs, n), f, NULL);
		if (rc < 0) {
			rc = hz_errno(rc);
			goto out;
		}
	}
	if (made || (flags & O_TRUNC)) {
		pthread_mutex_lock(&n->mu);
		n->dirty = 1;
		h->wgen0 = n->wgen;
		pthread_mutex_unlock(&n->mu);
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	if (created)
		fuse_reply_create(req, &e, fi);
	else
		fuse_reply_open(req, fi);
	h = NULL;
out:
	file_drop(h);
	if (fd >= 0)
		close(fd);
	if (pfd >= 0)
		close(pfd);
	free(path);
	if (rc < 0)
		reply_err(req, rc);
}

static void hz_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	open_file(req, hz_node_get(FS(req), ino), fi, 0, 0, NULL, NULL);
}

static void hz_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct hz_fs *fs = FS(req);

	open_file(req, NULL, fi, 1, mode, hz_node_get(fs, parent), name);
}

static void hz_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct hz_file *h = (struct hz_file *)(uintptr_t)fi->fh;
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	(void)ino;
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = h->fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static int record_write(struct hz_fs *fs, struct hz_file *h,
			const hc_actor *writer, const char *type,
			const void *data, size_t size, off_t off, int writepage,
			uint64_t *seq)
{
	uint8_t sha[HC_HASH_LEN];
	char hex[HC_HEX_LEN + 1];
	json_t *f;
	int rc;

	rc = hc_sha256(data, size, sha);
	if (rc < 0)
		return rc;
	hc_hex(sha, HC_HASH_LEN, hex);
	f = json_pack("{s:I,s:I,s:s}", "offset", (json_int_t)off, "length",
		      (json_int_t)size, "sha256", hex);
	if (f && writepage)
		json_object_set_new(f, "writepage", json_true());
	return record_file(fs, type, writer, node_fid(fs, h->node), f, seq);
}

/*
 * The actor of a change made through handle h: the process that made
 * the request, as it is now; for bytes the kernel writes back on its own
 * (pages of a shared mapping, the writeback cache), which no process
 * asked for at that moment, the opener of the handle.
 */
static void writer_of(struct hz_fs *fs, fuse_req_t req, struct hz_file *h,
		      int writepage, hc_actor *out)
{
	if (writepage || fuse_req_ctx(req)->pid <= 0)
		*out = h->actor;
	else
		hz_actor(fs, req, out);
}

static void hz_write(fuse_req_t req, fuse_ino_t ino, const char *data,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct hz_fs *fs = FS(req);
	struct hz_file *h = (struct hz_file *)(uintptr_t)fi->fh;
	struct hz_node *n = h->node;
	uint64_t seq = 0, ticket = 0;
	hc_actor writer;
	int hashing = 0;
	ssize_t done;
	char *path;
	int rc;

	(void)ino;
	writer_of(fs, req, h, fi->writepage, &writer);
	rc = content_begin(fs, n);
	if (rc < 0) {
		reply_err(req, hz_errno(rc));
		return;
	}
	/* Locked under WORM: also through handles opened before. */
	if (worm_locked(fs, n)) {
		content_end(n);
		reply_err(req, refuse_worm(fs, &writer, "write", n));
		return;
	}
	if (hz_wire_kill()) {
		rc = kill_suidgid(fs, req, n, h->fd, &writer);
		if (rc < 0) {
			content_end(n);
			reply_err(req, rc);
			return;
		}
	}
	/*
	 * The record first: never bytes in the tree that the chain does
	 * not show, even if the daemon dies between the two.
	 */
	rc = record_write(fs, h, &writer, "write", data, size, off,
			  fi->writepage, &seq);
	if (rc < 0) {
		content_end(n);
		reply_err(req, hz_errno(rc));
		return;
	}
	done = pwrite(h->fd, data, size, off);
	if (done < 0) {
		int err = errno;

		path = hz_fid_path(fs, node_fid(fs, n));
		rc = hz_failed(fs, &writer, seq, "write", err, path, NULL,
			       node_fid(fs, n));
		free(path);
		content_end(n);
		reply_err(req, rc);
		return;
	}
	if ((size_t)done != size)
		/* What was written after all: a short write. */
		(void)record_write(fs, h, &writer, "write-short", data,
				   (size_t)done, off, fi->writepage, NULL);
	pthread_mutex_lock(&n->mu);
	n->dirty = 1;
	n->wgen++;
	h->own++;
	pthread_mutex_unlock(&n->mu);
	/*
	 * The whole file's hash, for its version at close.  A large write
	 * hashes after its reply, off the writer's path: the next write is
	 * served by another worker meanwhile, and the turns are kept in the
	 * order the writes claimed them.  A small one hashes at once, when
	 * no turn is pending: that costs less than the handing over.
	 */
	pthread_mutex_lock(&h->hmu);
	if (h->hash && (uint64_t)off == h->hash_off) {
		h->hash_off += (uint64_t)done;
		if ((size_t)done <= HASH_INLINE_MAX &&
		    h->hash_done == h->hash_next) {
			hc_sha256_update(h->hash, data, (size_t)done);
		} else {
			ticket = h->hash_next++;
			hashing = 1;
		}
	} else {
		h->hash_off = UINT64_MAX;
	}
	pthread_mutex_unlock(&h->hmu);
	content_end(n);
	fuse_reply_write(req, (size_t)done);
	if (hashing) {
		pthread_mutex_lock(&h->hmu);
		while (h->hash_done != ticket)
			pthread_cond_wait(&h->hcv, &h->hmu);
		pthread_mutex_unlock(&h->hmu);
		hc_sha256_update(h->hash, data, (size_t)done);
		pthread_mutex_lock(&h->hmu);
		h->hash_done++;
		pthread_cond_broadcast(&h->hcv);
		pthread_mutex_unlock(&h->hmu);
	}
}

/* Version the file if this handle was its last writer. */
static int close_version(struct hz_fs *fs, struct hz_file *h, const char *why,
			 int last, const hc_actor *who)
{
	struct hz_node *n = h->node;
	uint8_t sha[HC_HASH_LEN];
	const uint8_t *known = NULL;
	struct stat st;
	int rc = 0;

	pthread_rwlock_wrlock(&n->io);
	/* No write claims a turn now; the claimed ones finish hashing. */
	hash_settle(h);
	pthread_mutex_lock(&n->mu);
	if (last)
		n->writers--;
	if (n->dirty && (!last || n->writers == 0)) {
		/* The streamed hash holds if only this handle wrote. */
		if (h->hash && h->hash_off != UINT64_MAX &&
		    n->wgen - h->wgen0 == h->own && fstat(h->fd, &st) == 0 &&
		    (uint64_t)st.st_size == h->hash_off &&
		    hc_sha256_final(h->hash, sha) == 0)
			known = sha;
		rc = version_locked(fs, n, who ? who : &h->actor, why, known,
				    h->fd);
		if (known) {
			/* The context was reset by final: rehash no more. */
			hc_sha256_free(h->hash);
			h->hash = NULL;
		}
	}
	pthread_mutex_unlock(&n->mu);
	pthread_rwlock_unlock(&n->io);
	return rc;
}

static void hz_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct hz_file *h = (struct hz_file *)(uintptr_t)fi->fh;
	int fd;

	(void)ino;
	/* close(2) reports write errors; a dup closed reports them here. */
	fd = dup(h->fd);
	if (fd < 0 || close(fd) < 0)
		reply_err(req, -errno);
	else
		reply_err(req, 0);
}

static void hz_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct hz_fs *fs = FS(req);
	struct hz_file *h = (struct hz_file *)(uintptr_t)fi->fh;
	int rc = 0;

	(void)ino;
	if (h->writable) {
		rc = close_version(fs, h, "close", 1, NULL);
		if (rc < 0)
			fuse_log(FUSE_LOG_ERR,
				 "hozen: cannot version a closed file: %s\n",
				 hc_error_message());
	}
	close(h->fd);
	hz_node_release(fs, h->node);
	file_free(h);
	reply_err(req, 0);
}

static void hz_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	struct hz_fs *fs = FS(req);
	struct hz_file *h = (struct hz_file *)(uintptr_t)fi->fh;
	hc_actor actor;
	int rc;

	(void)ino;
	rc = datasync ? fdatasync(h->fd) : fsync(h->fd);
	if (rc < 0) {
		reply_err(req, -errno);
		return;
	}
	/*
	 * An fsync makes the bytes, their records and a version durable,
	 * through any handle (coreutils' sync opens the file read-only):
	 * under WORM the file is then locked.
	 */
	hz_actor(fs, req, &actor);
	rc = close_version(fs, h, "fsync", 0, &actor);
	if (rc == 0)
		rc = vs_sync(fs->vs);
	if (rc < 0) {
		reply_err(req, hz_errno(rc));
		return;
	}
	rc = hc_log_sync(fs->log, hc_log_size(fs->log) - 1);
	reply_err(req, hz_errno(rc));
}

static void hz_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
			 off_t len, struct fuse_file_info *fi)
{
	struct hz_fs *fs = FS(req);
	struct hz_file *h = (struct hz_file *)(uintptr_t)fi->fh;
	struct hz_node *n = h->node;
	int destroys = mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_COLLAPSE_RANGE |
			       FALLOC_FL_ZERO_RANGE | FALLOC_FL_INSERT_RANGE);
	uint64_t fid = node_fid(fs, n), seq = 0;
	hc_actor actor;
	struct stat st;
	char *path;
	json_t *f;
	int rc;

	(void)ino;
	/* The caller, not the opener: a passed fd is the caller's now. */
	writer_of(fs, req, h, 0, &actor);
	/* These destroy or move bytes: versioned first. */
	rc = destroys ? destroy_begin(fs, n, &actor, "fallocate")
		      : content_begin(fs, n);
	if (rc < 0) {
		reply_err(req, hz_errno(rc));
		return;
	}
	if (worm_locked(fs, n)) {
		content_end(n);
		reply_err(req, refuse_worm(fs, &actor, "fallocate", n));
		return;
	}
	/* What a local filesystem does; the kernel leaves it to us. */
	if (fs->killpriv_v2 && fstat(h->fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (st.st_mode & (S_ISUID | S_ISGID)) && !has_fsetid(req)) {
		rc = kill_suidgid(fs, req, n, h->fd, &actor);
		if (rc < 0) {
			content_end(n);
			reply_err(req, rc);
			return;
		}
	}
	f = json_pack("{s:i,s:I,s:I}", "mode", mode, "offset", (json_int_t)off,
		      "length", (json_int_t)len);
	rc = record_file(fs, "fallocate", &actor, fid, f, &seq);
	if (rc < 0) {
		content_end(n);
		reply_err(req, hz_errno(rc));
		return;
	}
	if (fallocate(h->fd, mode, off, len) < 0) {
		int err = errno;

		path = hz_fid_path(fs, fid);
		rc = hz_failed(fs, &actor, seq, "fallocate", err, path, NULL,
			       fid);
		free(path);
		content_end(n);
		reply_err(req, rc);
		return;
	}
	pthread_mutex_lock(&n->mu);
	n->dirty = 1;
	n->wgen++;
	pthread_mutex_unlock(&n->mu);
	content_end(n);
	reply_err(req, 0);
}

static void hz_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct hz_file *h = (struct hz_file *)(uintptr_t)fi->fh;
	off_t r;

	(void)ino;
	r = lseek(h->fd, off, whence);
	if (r < 0)
		reply_err(req, -errno);
	else
		fuse_reply_lseek(req, r);
}

/* -------------------------------------------------------- directories */

struct hz_dir {
	DIR *dp;
	struct dirent *entry;
	off_t offset;
};

static void hz_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct hz_fs *fs = FS(req);
	struct hz_vdir *vd = NULL;
	struct hz_dir *d;
	int fd;

	if (hz_node_get(fs, ino)->virt) {
		fd = hz_virt_opendir(fs, hz_node_get(fs, ino), &vd);
		if (fd < 0) {
			reply_err(req, fd);
			return;
		}
		fi->fh = (uint64_t)(uintptr_t)vd; /* hz_virt_readdir lists it */
		if (fuse_reply_open(req, fi) < 0)
			hz_virt_closedir(fs, hz_node_get(fs, ino), vd);
		return;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		reply_err(req, -ENOMEM);
		return;
	}
	fd = hz_node_open(fs, hz_node_get(fs, ino), O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		free(d);
		reply_err(req, fd);
		return;
	}
	d->dp = fdopendir(fd);
	if (!d->dp) {
		close(fd);
		free(d);
		reply_err(req, -errno);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	fi->cache_readdir = 0;
	fuse_reply_open(req, fi);
}

static void hz_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t offset, struct fuse_file_info *fi)
{
	struct hz_dir *d = (struct hz_dir *)(uintptr_t)fi->fh;
	struct hz_node *n = hz_node_get(FS(req), ino);
	char *buf = calloc(1, size), *p = buf;
	size_t rem = size;
	ssize_t used;

	if (!buf) {
		reply_err(req, -ENOMEM);
		return;
	}
	if (n->virt) {
		used = hz_virt_readdir(FS(req), req, n,
				       (struct hz_vdir *)(uintptr_t)fi->fh, buf,
				       size, offset);
		if (used < 0)
			reply_err(req, (int)used);
		else
			fuse_reply_buf(req, buf, (size_t)used);
		free(buf);
		return;
	}
	(void)ino;
	if (offset != d->offset) {
		seekdir(d->dp, offset);
		d->entry = NULL;
		d->offset = offset;
	}
	for (;;) {
		struct stat st;
		size_t len;

		if (!d->entry) {
			errno = 0;
			d->entry = readdir(d->dp);
			if (!d->entry)
				break;
		}
		memset(&st, 0, sizeof(st));
		st.st_ino = d->entry->d_ino;
		st.st_mode = (mode_t)d->entry->d_type << 12;
		len = fuse_add_direntry(req, p, rem, d->entry->d_name, &st,
					d->entry->d_off);
		if (len > rem)
			break;
		d->offset = d->entry->d_off;
		d->entry = NULL;
		p += len;
		rem -= len;
	}
	fuse_reply_buf(req, buf, size - rem);
	free(buf);
}

static void hz_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct hz_dir *d = (struct hz_dir *)(uintptr_t)fi->fh;
	struct hz_node *n = hz_node_get(FS(req), ino);

	if (n->virt)
		hz_virt_closedir(FS(req), n,
				 (struct hz_vdir *)(uintptr_t)fi->fh);
	else if (d) {
		closedir(d->dp);
		free(d);
	}
	reply_err(req, 0);
}

static void hz_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	struct hz_fs *fs = FS(req);
	struct hz_dir *d = (struct hz_dir *)(uintptr_t)fi->fh;
	int rc;

	(void)datasync;
	if (hz_node_get(fs, ino)->virt) {
		reply_err(req, 0); /* /.hozen/: nothing to sync */
		return;
	}
	rc = fsync(dirfd(d->dp));
	if (rc < 0) {
		reply_err(req, -errno);
		return;
	}
	/* An fsync of the tree's root commits what is staged. */
	rc = ino == FUSE_ROOT_ID ? hz_commit(fs, "fsync") : 0;
	if (rc == 0)
		rc = hc_log_sync(fs->log, hc_log_size(fs->log) - 1);
	reply_err(req, hz_errno(rc));
}

static void hz_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct hz_fs *fs = FS(req);
	struct statvfs sv;

	(void)ino;
	if (fstatvfs(fs->mountfd, &sv) < 0)
		reply_err(req, -errno);
	else
		fuse_reply_statfs(req, &sv);
}

/* -------------------------------------------------------------- xattrs */

static int is_caps(const char *name)
{
	return !strcmp(name, "security.capability");
}

static void set_nocaps(struct hz_node *n, int v)
{
	pthread_mutex_lock(&n->mu);
	n->nocaps = v;
	pthread_mutex_unlock(&n->mu);
}

/*
 * The permission bits setting the POSIX ACL value gives a file of mode
 * old (the kernel's posix_acl_equiv_mode: owner from USER_OBJ, group
 * from MASK or else GROUP_OBJ, others from OTHER), or -1 if value is not
 * an ACL.
 */
static long acl_mode(const unsigned char *v, size_t size, mode_t old)
{
	long mode = (long)(old & ~(mode_t)0777);
	int mask = -1;
	size_t i;

	if (size < 4 || (size - 4) % 8 || v[0] != 2 || v[1] || v[2] || v[3])
		return -1;
	for (i = 4; i < size; i += 8) {
		unsigned tag = v[i] | (unsigned)v[i + 1] << 8;
		unsigned perm = (v[i + 2] | (unsigned)v[i + 3] << 8) & 7;

		switch (tag) {
		case 0x01: /* ACL_USER_OBJ */
			mode |= (long)perm << 6;
			break;
		case 0x04: /* ACL_GROUP_OBJ */
			mode |= (long)perm << 3;
			break;
		case 0x10: /* ACL_MASK */
			mask = (int)perm;
			break;
		case 0x20: /* ACL_OTHER */
			mode |= perm;
			break;
		}
	}
	if (mask >= 0)
		mode = (mode & ~(long)S_IRWXG) | ((long)mask << 3);
	return mode & 07777;
}

static void hz_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct hz_fs *fs = FS(req);
	struct hz_node *n = hz_node_get(fs, ino);
	uint8_t sha[HC_HASH_LEN];
	char proc[64], hex[HC_HEX_LEN + 1], *path;
	uint64_t fid, seq = 0;
	hc_actor actor;
	json_t *f;
	int fd, rc;

	rc = virt_ro(fs, n, NULL, NULL);
	if (rc == 0)
		rc = refuse_ro(fs, req, "setxattr", n, NULL);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	hz_actor(fs, req, &actor);
	if (worm_locked(fs, n) || is_mark(name)) {
		/* WORM, or hozen's own marks: refused. */
		reply_err(req, refuse_worm(fs, &actor, "setxattr", n));
		return;
	}
	fd = hz_node_open(fs, n, O_PATH);
	if (fd < 0) {
		reply_err(req, fd);
		return;
	}
	fid = node_fid(fs, n);
	hc_sha256(value, size, sha);
	hc_hex(sha, HC_HASH_LEN, hex);
	f = json_pack("{s:s,s:I,s:s}", "name", name, "size", (json_int_t)size,
		      "sha256", hex);
	if (f && !strcmp(name, "system.posix_acl_access")) {
		/* An access ACL sets the permission bits too: say which. */
		struct stat st;
		long mode = -1;

		if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) ==
		    0)
			mode = acl_mode((const unsigned char *)value, size,
					st.st_mode);
		if (mode >= 0)
			json_object_set_new(f, "mode", json_integer(mode));
	}
	rc = record_file(fs, "setxattr", &actor, fid, f, &seq);
	if (rc < 0) {
		close(fd);
		reply_err(req, hz_errno(rc));
		return;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	set_nocaps(n, 0);
	rc = setxattr(proc, name, value, size, flags);
	if (rc < 0) {
		int err = errno;

		path = hz_fid_path(fs, fid);
		rc = hz_failed(fs, &actor, seq, "setxattr", err, path, NULL,
			       fid);
		free(path);
	}
	close(fd);
	reply_err(req, rc);
}

/* listxattr without hozen's own names; -1 and errno like listxattr. */
static ssize_t list_xattrs(const char *path, char *buf, size_t size)
{
	ssize_t n = listxattr(path, NULL, 0), k;
	size_t out = 0;
	char *all, *p;

	if (n <= 0)
		return n;
	all = malloc((size_t)n);
	if (!all) {
		errno = ENOMEM;
		return -1;
	}
	k = listxattr(path, all, (size_t)n);
	for (p = all; k > 0 && p < all + k; p += strlen(p) + 1) {
		size_t len = strlen(p) + 1;

		if (is_mark(p))
			continue;
		if (size && out + len > size) {
			free(all);
			errno = ERANGE;
			return -1;
		}
		if (size)
			memcpy(buf + out, p, len);
		out += len;
	}
	free(all);
	return k < 0 ? k : (ssize_t)out;
}

/*
 * getxattr (name) or listxattr (name NULL): read through /proc, since an
 * O_PATH fd takes no fgetxattr; size 0 asks for the size.
 */
static void read_xattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		       size_t size)
{
	struct hz_fs *fs = FS(req);
	struct hz_node *node = hz_node_get(fs, ino);
	char proc[64], *buf = NULL;
	ssize_t n;
	int fd, nocaps = 0;

	if (fs->opts.no_xattr_read) {
		reply_err(req, -ENOSYS); /* the kernel stops asking */
		return;
	}
	if (name && is_caps(name)) {
		pthread_mutex_lock(&node->mu);
		nocaps = node->nocaps;
		pthread_mutex_unlock(&node->mu);
	}
	if (name && is_mark(name))
		nocaps = 1; /* hozen's own: not shown */
	if (node->virt || nocaps) {
		if (name)
			reply_err(req, -ENODATA);
		else if (size)
			fuse_reply_buf(req, NULL, 0);
		else
			fuse_reply_xattr(req, 0);
		return;
	}
	fd = hz_node_open(fs, node, O_PATH);
	if (fd < 0) {
		reply_err(req, fd);
		return;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (size && !(buf = malloc(size))) {
		close(fd);
		reply_err(req, -ENOMEM);
		return;
	}
	n = name ? getxattr(proc, name, buf, size)
		 : list_xattrs(proc, buf, size);
	close(fd);
	if (n < 0 && errno == ENODATA && name && is_caps(name))
		set_nocaps(node, 1);
	if (n < 0)
		reply_err(req, -errno);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void hz_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	read_xattr(req, ino, name, size);
}

static void hz_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	read_xattr(req, ino, NULL, size);
}

static void hz_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct hz_fs *fs = FS(req);
	struct hz_node *n = hz_node_get(fs, ino);
	char proc[64], *path;
	uint64_t fid, seq = 0;
	hc_actor actor;
	int fd, rc;

	rc = virt_ro(fs, n, NULL, NULL);
	if (rc == 0)
		rc = refuse_ro(fs, req, "removexattr", n, NULL);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	hz_actor(fs, req, &actor);
	if (worm_locked(fs, n) || is_mark(name)) {
		reply_err(req, refuse_worm(fs, &actor, "removexattr", n));
		return;
	}
	fd = hz_node_open(fs, n, O_PATH);
	if (fd < 0) {
		reply_err(req, fd);
		return;
	}
	fid = node_fid(fs, n);
	rc = record_file(fs, "removexattr", &actor, fid,
			 json_pack("{s:s}", "name", name), &seq);
	if (rc < 0) {
		close(fd);
		reply_err(req, hz_errno(rc));
		return;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	set_nocaps(n, 0);
	rc = removexattr(proc, name);
	if (rc < 0) {
		int err = errno;

		path = hz_fid_path(fs, fid);
		rc = hz_failed(fs, &actor, seq, "removexattr", err, path, NULL,
			       fid);
		free(path);
	}
	close(fd);
	reply_err(req, rc);
}

const struct fuse_lowlevel_ops hz_ops = {
	.init = hz_init,
	.lookup = hz_lookup,
	.forget = hz_forget,
	.forget_multi = hz_forget_multi,
	.getattr = hz_getattr,
	.setattr = hz_setattr,
	.readlink = hz_readlink,
	.mknod = hz_mknod,
	.mkdir = hz_mkdir,
	.symlink = hz_symlink,
	.link = hz_link,
	.unlink = hz_unlink,
	.rmdir = hz_rmdir,
	.rename = hz_rename,
	.open = hz_open,
	.create = hz_create,
	.read = hz_read,
	.write = hz_write,
	.flush = hz_flush,
	.release = hz_release,
	.fsync = hz_fsync,
	.fallocate = hz_fallocate,
	.lseek = hz_lseek,
	.opendir = hz_opendir,
	.readdir = hz_readdir,
	.releasedir = hz_releasedir,
	.fsyncdir = hz_fsyncdir,
	.statfs = hz_statfs,
	.setxattr = hz_setxattr,
	.getxattr = hz_getxattr,
	.listxattr = hz_listxattr,
	.removexattr = hz_removexattr,
};
