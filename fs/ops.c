/*
 * ops.c - the FUSE low-level operations: a passthrough to STORE/tree that
 * records every change in the chain and versions every file in git.
 *
 * Errors become -errno here and only here (replies); refused attempts are
 * recorded by hz_refuse.
 */
#include <dirent.h>
#include <errno.h>
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

/* Record an event with path; fields may be NULL (then a new object). */
static int record_path(struct hz_fs *fs, const char *type,
		       const hc_actor *actor, const char *path, json_t *fields)
{
	if (!fields)
		fields = json_object();
	if (fields && hz_json_path(fields, "path", path) < 0) {
		json_decref(fields);
		fields = NULL;
	}
	return hz_record(fs, type, actor, fields, NULL);
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
	rc = hz_refuse(fs, &actor, op, path, EROFS);
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

/* WORM: a node is immutable once a version of it exists. */
static int worm_locked(struct hz_fs *fs, struct hz_node *n)
{
	int v;

	if (!fs->opts.worm || !fs->preserving || n == &fs->root)
		return 0;
	pthread_mutex_lock(&n->mu);
	v = n->versioned;
	pthread_mutex_unlock(&n->mu);
	return v;
}

static int refuse_worm(struct hz_fs *fs, fuse_req_t req, const char *op,
		       struct hz_node *n)
{
	hc_actor actor;
	char *path;
	int rc;

	hz_actor(fs, req, &actor);
	path = path_of(fs, n);
	rc = hz_refuse(fs, &actor, op, path, EPERM);
	free(path);
	return rc;
}

/* Give a new file to the caller: attribution is the point. */
static void chown_to_caller(fuse_req_t req, int dirfd, const char *name,
			    struct stat *st)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	gid_t gid = ctx->gid;
	struct stat dst;

	/* In a setgid directory the new file keeps the directory's group. */
	if (fstat(dirfd, &dst) == 0 && (dst.st_mode & S_ISGID))
		gid = dst.st_gid;
	if (fchownat(dirfd, name, ctx->uid, gid, AT_SYMLINK_NOFOLLOW) == 0 &&
	    st) {
		st->st_uid = ctx->uid;
		st->st_gid = gid;
	}
}

/* ---------------------------------------------------------- versioning */

/*
 * A large file's version is the file itself, hard-linked into git's LFS
 * objects (no copy: versioning 1 GiB costs a link, not 1 GiB of writes).
 * The marker xattr says so, also after a restart; break_link replaces the
 * file with a copy before it can change.
 */
#define LFS_MARK "trusted.hozen.lfs"

static int is_mark(const char *name)
{
	return !strncmp(name, "trusted.hozen.", 14);
}

static int store_version(struct hz_fs *fs, struct hz_node *n, int fd,
			 const struct stat *st, const uint8_t *sha,
			 struct vs_version *v)
{
	char proc[64];
	int rc;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	/*
	 * Only content stored as LFS is linked; only a file with one name,
	 * and only once it is marked.
	 */
	if (!S_ISREG(st->st_mode) || st->st_nlink != 1 ||
	    (uint64_t)st->st_size < vs_lfs_threshold(fs->vs) ||
	    setxattr(proc, LFS_MARK, "1", 1, 0) < 0) {
		rc = vs_store_fd(fs->vs, fd, (uint64_t)st->st_size, sha, v);
		if (rc == 0)
			n->lfs_mark = LFS_NONE;
		return rc;
	}
	rc = vs_store_fd_link(fs->vs, fd, (uint64_t)st->st_size, sha, v);
	if (rc < 0 || !v->linked)
		(void)removexattr(proc, LFS_MARK);
	n->lfs_mark = rc == 0 && v->linked ? LFS_MARKED : LFS_UNKNOWN;
	return rc;
}

/* Copy the user-visible xattrs of src to dst (best effort). */
static void copy_xattrs(const char *src, int dst)
{
	char names[4096], value[4096], *p;
	ssize_t n, len;

	n = listxattr(src, names, sizeof(names));
	for (p = names; n > 0 && p < names + n; p += strlen(p) + 1) {
		if (is_mark(p))
			continue;
		len = getxattr(src, p, value, sizeof(value));
		if (len >= 0)
			(void)fsetxattr(dst, p, value, (size_t)len, 0);
	}
}

/*
 * If n's file is also an LFS object, replace its name with a copy (empty
 * when trunc) so that the version stays as it was.  The node keeps its
 * FUSE identity and points to the new file.
 */
static int break_link(struct hz_fs *fs, struct hz_node *n, int trunc)
{
	struct hz_node *parent;
	struct file_handle *h = NULL;
	char proc[64], mark[8], tmp[64], *name = NULL;
	struct timespec times[2];
	struct stat st;
	int src = -1, pfd = -1, dst = -1, rc = 0, mount_id;
	off_t off = 0;

	if (n == &fs->root || n->virt)
		return 0;
	pthread_mutex_lock(&n->mu);
	if (n->lfs_mark == LFS_NONE)
		goto out; /* known not to be linked: no need to look */
	src = hz_node_open(fs, n, O_RDONLY | O_NOFOLLOW);
	if (src < 0)
		goto out; /* a directory, a symlink: never linked */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", src);
	if (getxattr(proc, LFS_MARK, mark, sizeof(mark)) < 0 ||
	    fstat(src, &st) < 0) {
		if (errno == ENODATA)
			n->lfs_mark = LFS_NONE;
		goto out; /* not linked */
	}
	pthread_rwlock_rdlock(&fs->names);
	parent = n->parent;
	name = n->name ? strdup(n->name) : NULL;
	pthread_rwlock_unlock(&fs->names);
	if (!parent || !name) {
		rc = -EIO;
		goto out;
	}
	pfd = hz_node_open(fs, parent, O_PATH);
	if (pfd < 0) {
		rc = pfd;
		goto out;
	}
	snprintf(tmp, sizeof(tmp), ".hozen-cow-%lu-%ld",
		 (unsigned long)st.st_ino, (long)gettid());
	dst = openat(pfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		     st.st_mode & 07777);
	if (dst < 0) {
		rc = -errno;
		goto out;
	}
	while (!trunc && off < st.st_size) {
		ssize_t k = copy_file_range(src, &off, dst, NULL,
					    (size_t)(st.st_size - off), 0);

		if (k <= 0) {
			rc = k < 0 ? -errno : -EIO;
			break;
		}
	}
	copy_xattrs(proc, dst);
	times[0] = st.st_atim;
	times[1] = st.st_mtim;
	if (rc == 0 && (fchown(dst, st.st_uid, st.st_gid) < 0 ||
			fchmod(dst, st.st_mode & 07777) < 0 ||
			(!trunc && futimens(dst, times) < 0)))
		rc = -errno;
	if (rc == 0 && renameat(pfd, tmp, pfd, name) < 0)
		rc = -errno;
	if (rc < 0) {
		(void)unlinkat(pfd, tmp, 0);
		goto out;
	}
	/* The object keeps the version; it needs no mark. */
	(void)removexattr(proc, LFS_MARK);
	n->lfs_mark = LFS_NONE; /* the node now names the copy */
	h = malloc(sizeof(*h) + 128);
	if (h) {
		h->handle_bytes = 128;
		if (name_to_handle_at(pfd, name, h, &mount_id, 0) == 0 &&
		    fstat(dst, &st) == 0) {
			hz_node_rehash(fs, n, st.st_dev, st.st_ino, h);
			h = NULL;
		} else {
			rc = -EIO;
		}
	}
out:
	pthread_mutex_unlock(&n->mu);
	free(h);
	free(name);
	if (dst >= 0)
		close(dst);
	if (pfd >= 0)
		close(pfd);
	if (src >= 0)
		close(src);
	return rc;
}

/*
 * Version the content of n now, known to have SHA-256 sha (or NULL).
 * n->mu held.  Stages the version for the next commit and records it.
 */
static int version_locked(struct hz_fs *fs, struct hz_node *n,
			  const hc_actor *actor, const char *why,
			  const uint8_t *sha, int openfd)
{
	struct vs_version v;
	char hex[HC_HEX_LEN + 1], *path = NULL;
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
	rc = store_version(fs, n, fd, &st, sha, &v);
	if (fd != openfd)
		close(fd);
	if (rc < 0)
		return rc;
	path = path_of(fs, n);
	if (!path)
		return hc_error_set(HC_ENOMEM, "out of memory");
	rc = vs_stage(fs->vs, path, v.blob,
		      (st.st_mode & 0111) ? 0100755 : 0100644);
	if (rc == 0) {
		hc_hex(v.sha256, HC_HASH_LEN, hex);
		f = json_pack("{s:I,s:I,s:s,s:s,s:b,s:s}", "ino",
			      (json_int_t)n->ino, "size", (json_int_t)v.size,
			      "sha256", hex, "blob", v.blob, "lfs", v.lfs,
			      "why", why);
		rc = record_path(fs, "version", actor, path, f);
		if (rc == 0)
			hz_virt_versioned(fs, path, &v, hz_record_time());
	}
	free(path);
	if (rc == 0) {
		n->dirty = 0;
		n->versioned = 1;
		memcpy(n->blob, v.blob, sizeof(n->blob));
		n->mode = (st.st_mode & 0111) ? 0100755 : 0100644;
	}
	return rc;
}

int hz_preserve(struct hz_fs *fs, struct hz_node *n, const hc_actor *actor,
		const char *why)
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
		pthread_mutex_lock(&n->mu);
		r = n->dirty ? version_locked(fs, n, &self, why, NULL, -1) : 0;
		pthread_mutex_unlock(&n->mu);
		if (r < 0) /* gone since, say: its records tell; go on */
			fuse_log(FUSE_LOG_ERR,
				 "hozen: cannot version a file "
				 "at unmount: %s\n",
				 hc_error_message());
	}
	free(dirty);
	return rc;
}

/*
 * Wake the committer when enough versions are staged, or their new
 * content (held in memory until the commit packs it) grows large.
 */
static void poke_committer(struct hz_fs *fs)
{
	if (vs_staged(fs->vs) >= fs->opts.commit_every ||
	    vs_batch_bytes(fs->vs) >= HZ_BATCH_BYTES) {
		pthread_mutex_lock(&fs->cmu);
		pthread_cond_signal(&fs->ccv);
		pthread_mutex_unlock(&fs->cmu);
	}
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
	if (rc == 0)
		hz_fix_nlink(fd, &st);
	close(fd);
	if (rc < 0)
		reply_err(req, -errno);
	else
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
 * mknod, mkdir and symlink: create name in parent, give it to the caller,
 * record it, reply with its entry.
 */
static void make_node(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, dev_t rdev, const char *link)
{
	struct hz_fs *fs = FS(req);
	struct hz_node *p = hz_node_get(fs, parent), *n = NULL;
	const char *op = link ? "symlink" : S_ISDIR(mode) ? "mkdir" : "mknod";
	struct fuse_entry_param e;
	hc_actor actor;
	char *path;
	json_t *f;
	int pfd, rc;

	pfd = change_in(fs, req, op, p, name);
	if (pfd < 0) {
		reply_err(req, pfd);
		return;
	}
	if (link)
		rc = symlinkat(link, pfd, name);
	else if (S_ISDIR(mode))
		rc = mkdirat(pfd, name, mode & 07777);
	else
		rc = mknodat(pfd, name, mode, rdev);
	if (rc < 0) {
		rc = -errno;
		goto out;
	}
	chown_to_caller(req, pfd, name, NULL);
	rc = hz_node_lookup(fs, p, pfd, name, &e, &n);
	if (rc < 0)
		goto out;
	hz_actor(fs, req, &actor);
	path = hz_child_path(fs, p, name);
	f = json_pack("{s:I,s:I}", "ino", (json_int_t)e.attr.st_ino, "mode",
		      (json_int_t)e.attr.st_mode);
	if (f && link)
		hz_json_path(f, "target", link);
	if (link && n) {
		/* A symlink's target is its content: version it now. */
		struct vs_version v;

		if (vs_store_buf(fs->vs, link, strlen(link), &v) == 0 &&
		    vs_stage(fs->vs, path ? path : name, v.blob, 0120000) ==
			    0 &&
		    f)
			json_object_set_new(f, "blob", json_string(v.blob));
		pthread_mutex_lock(&n->mu);
		n->versioned = 1;
		pthread_mutex_unlock(&n->mu);
	}
	rc = record_path(fs, op, &actor, path ? path : name, f);
	free(path);
	if (rc < 0) {
		rc = hz_errno(rc);
		hz_node_forget(fs, n, 1);
		goto out;
	}
	fuse_reply_entry(req, &e);
out:
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
	make_node(req, parent, name, S_IFDIR | mode, 0, NULL);
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
	char *from, *to;
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
	if (linkat(fd, "", pfd, name, AT_EMPTY_PATH) < 0) {
		rc = -errno;
		goto out;
	}
	rc = hz_node_lookup(fs, p, pfd, name, &e, NULL);
	if (rc < 0)
		goto out;
	hz_actor(fs, req, &actor);
	from = path_of(fs, n);
	to = hz_child_path(fs, p, name);
	f = json_pack("{s:I}", "ino", (json_int_t)e.attr.st_ino);
	if (f && from)
		hz_json_path(f, "target", from);
	rc = record_path(fs, "link", &actor, to ? to : name, f);
	/* The snapshot shows the new name too. */
	pthread_mutex_lock(&n->mu);
	if (rc == 0 && to && n->blob[0] && !n->dirty &&
	    vs_stage(fs->vs, to, n->blob, n->mode) < 0)
		fuse_log(FUSE_LOG_ERR, "hozen: cannot stage a link: %s\n",
			 hc_error_message());
	pthread_mutex_unlock(&n->mu);
	free(from);
	free(to);
	if (rc < 0) {
		rc = hz_errno(rc);
		goto out;
	}
	fuse_reply_entry(req, &e);
out:
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
	char *path;
	int pfd, rc;

	pfd = change_in(fs, req, op, p, name);
	if (pfd < 0) {
		reply_err(req, pfd);
		return;
	}
	hz_actor(fs, req, &actor);
	path = hz_child_path(fs, p, name);
	n = hz_node_find(fs, pfd, name);
	if (n && worm_locked(fs, n)) {
		rc = hz_refuse(fs, &actor, op, path, EPERM);
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
	if (unlinkat(pfd, name, dir ? AT_REMOVEDIR : 0) < 0) {
		rc = -errno;
		goto out;
	}
	/* Done: record it even if the snapshot cannot follow. */
	rc = record_path(fs, op, &actor, path ? path : name, NULL);
	if (vs_stage_remove(fs->vs, path ? path : name) < 0)
		fuse_log(FUSE_LOG_ERR, "hozen: cannot stage removal: %s\n",
			 hc_error_message());
	rc = hz_errno(rc);
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

/*
 * Stage what name (in dirfd) now holds under path: a file's content, a
 * symlink's target, or everything below a directory, recursively.  The
 * content is unchanged (it was versioned under its old name), so this
 * records nothing; git already has the blobs.
 */
static int restage(struct hz_fs *fs, int dfd, const char *name,
		   const char *path)
{
	struct vs_version v;
	struct dirent *de;
	struct stat st;
	char target[PATH_MAX + 1];
	ssize_t len;
	DIR *d;
	int fd, rc = 0;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return hc_error_set(HC_ESYS, "cannot stat '%s'", path);
	if (S_ISLNK(st.st_mode)) {
		len = readlinkat(dfd, name, target, sizeof(target) - 1);
		if (len < 0)
			return hc_error_set(HC_ESYS, "cannot read '%s'", path);
		rc = vs_store_buf(fs->vs, target, (size_t)len, &v);
		return rc ? rc : vs_stage(fs->vs, path, v.blob, 0120000);
	}
	if (S_ISREG(st.st_mode)) {
		fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return hc_error_set(HC_ESYS, "cannot open '%s'", path);
		rc = vs_store_fd(fs->vs, fd, (uint64_t)st.st_size, NULL, &v);
		close(fd);
		return rc ? rc
			  : vs_stage(fs->vs, path, v.blob,
				     (st.st_mode & 0111) ? 0100755 : 0100644);
	}
	if (!S_ISDIR(st.st_mode))
		return 0;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return hc_error_set(HC_ESYS, "cannot read '%s'", path);
	}
	while (rc == 0 && (de = readdir(d))) {
		char *child;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (asprintf(&child, "%s/%s", path, de->d_name) < 0) {
			rc = hc_error_set(HC_ENOMEM, "out of memory");
			break;
		}
		rc = restage(fs, dirfd(d), de->d_name, child);
		free(child);
	}
	closedir(d);
	return rc;
}

int hz_restage_path(struct hz_fs *fs, const char *path)
{
	const char *slash = strrchr(path, '/');
	char *parent;
	int dfd, rc;

	if (!slash)
		return restage(fs, fs->treefd, path, path);
	parent = strndup(path, (size_t)(slash - path));
	if (!parent)
		return hc_error_set(HC_ENOMEM, "out of memory");
	dfd = hz_openat_long(fs->treefd, parent,
			     O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	free(parent);
	if (dfd < 0)
		return hc_error_set(HC_ESYS,
				    "cannot open the directory of "
				    "'%s'",
				    path);
	rc = restage(fs, dfd, slash + 1, path);
	close(dfd);
	return rc;
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
	n = hz_node_find(fs, pfd, name);
	over = hz_node_find(fs, npfd, newname);
	if ((n && worm_locked(fs, n)) || (over && worm_locked(fs, over))) {
		rc = hz_refuse(fs, &actor, "rename", from, EPERM);
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
	if (renameat2(pfd, name, npfd, newname, flags) < 0) {
		rc = -errno;
		goto out;
	}
	if (n)
		hz_node_rename(fs, n, np, newname);
	if (over && (flags & RENAME_EXCHANGE))
		hz_node_rename(fs, over, p, name);
	/* Done: record it, even if the snapshot cannot follow. */
	f = json_pack("{s:I}", "flags", (json_int_t)flags);
	if (f && to)
		hz_json_path(f, "to", to);
	rc = record_path(fs, "rename", &actor, from ? from : name, f);
	/* The live view: the old path goes, the new one is the file. */
	if (from && to) {
		int st = vs_stage_remove(fs->vs, from);

		if (st == 0)
			st = vs_stage_remove(fs->vs, to);
		if (st == 0)
			st = restage(fs, npfd, newname, to);
		if (st == 0 && (flags & RENAME_EXCHANGE))
			st = restage(fs, pfd, name, from);
		if (st < 0)
			fuse_log(FUSE_LOG_ERR,
				 "hozen: cannot stage a rename: %s\n",
				 hc_error_message());
	}
	rc = hz_errno(rc);
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

static void hz_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int valid, struct fuse_file_info *fi)
{
	struct hz_fs *fs = FS(req);
	struct hz_node *n = hz_node_get(fs, ino);
	hc_actor actor;
	char *path = NULL;
	struct stat st;
	int fd = -1, rc = 0;
	json_t *f;

	rc = virt_ro(fs, n, NULL, NULL);
	if (rc == 0)
		rc = refuse_ro(fs, req, "setattr", n, NULL);
	if (rc < 0)
		goto out;
	if (worm_locked(fs, n)) {
		rc = refuse_worm(fs, req, "setattr", n);
		goto out;
	}
	hz_actor(fs, req, &actor);
	path = path_of(fs, n);
	if (!fi && (valid & FUSE_SET_ATTR_SIZE)) {
		rc = break_link(fs, n, attr->st_size == 0);
		if (rc < 0)
			goto out;
	}
	if (fi) {
		fd = dup(((struct hz_file *)(uintptr_t)fi->fh)->fd);
		fd = fd < 0 ? -errno : fd;
	} else {
		fd = hz_node_open(fs, n,
				  (valid & FUSE_SET_ATTR_SIZE) ? O_WRONLY
							       : O_PATH);
	}
	if (fd < 0) {
		rc = fd;
		goto out;
	}
	f = json_object();
	if (valid & FUSE_SET_ATTR_MODE) {
		char proc[64];

		/* An O_PATH fd takes no fchmod: go through /proc. */
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		if (chmod(proc, attr->st_mode & 07777) < 0) {
			rc = -errno;
			goto fail;
		}
		json_object_set_new(f, "mode",
				    json_integer(attr->st_mode & 07777));
	}
	if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t uid =
			(valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid =
			(valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;

		if (fchownat(fd, "", uid, gid,
			     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
			rc = -errno;
			goto fail;
		}
		if (valid & FUSE_SET_ATTR_UID)
			json_object_set_new(f, "uid",
					    json_integer(attr->st_uid));
		if (valid & FUSE_SET_ATTR_GID)
			json_object_set_new(f, "gid",
					    json_integer(attr->st_gid));
	}
	if (valid & FUSE_SET_ATTR_SIZE) {
		/* Preserve the content before truncation can lose it. */
		rc = hz_preserve(fs, n, &actor, "truncate");
		if (rc < 0) {
			rc = hz_errno(rc);
			goto fail;
		}
		if (ftruncate(fd, attr->st_size) < 0) {
			rc = -errno;
			goto fail;
		}
		pthread_mutex_lock(&n->mu);
		n->dirty = 1;
		n->wgen++;
		pthread_mutex_unlock(&n->mu);
		json_object_set_new(f, "size",
				    json_integer((json_int_t)attr->st_size));
	}
	if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec tv[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
		char proc[64];

		if (valid & FUSE_SET_ATTR_ATIME_NOW)
			tv[0].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_ATIME)
			tv[0] = attr->st_atim;
		if (valid & FUSE_SET_ATTR_MTIME_NOW)
			tv[1].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_MTIME)
			tv[1] = attr->st_mtim;
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		if (utimensat(AT_FDCWD, proc, tv, 0) < 0) {
			rc = -errno;
			goto fail;
		}
		json_object_set_new(f, "utimens", json_true());
	}
	rc = record_path(fs, "setattr", &actor, path, f);
	f = NULL;
	if (rc < 0) {
		rc = hz_errno(rc);
		goto out;
	}
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		rc = -errno;
		goto out;
	}
	close(fd);
	free(path);
	fuse_reply_attr(req, &st, 1.0);
	return;
fail:
	json_decref(f);
out:
	if (fd >= 0)
		close(fd);
	free(path);
	reply_err(req, rc);
}

/* --------------------------------------------------------- open files */

static int file_new(struct hz_fs *fs, fuse_req_t req, struct hz_node *n, int fd,
		    int flags, struct hz_file **out)
{
	struct hz_file *h = calloc(1, sizeof(*h));
	struct stat st;

	if (!h)
		return -ENOMEM;
	h->fd = fd;
	h->node = n;
	h->writable = (flags & O_ACCMODE) != O_RDONLY;
	hz_actor(fs, req, &h->actor);
	if (h->writable) {
		pthread_mutex_lock(&n->mu);
		n->writers++;
		h->wgen0 = n->wgen;
		pthread_mutex_unlock(&n->mu);
		/* Hash as the bytes stream past if the file starts empty. */
		if (fstat(fd, &st) == 0 && st.st_size == 0 &&
		    hc_sha256_new(&h->hash) < 0)
			h->hash = NULL;
	}
	*out = h;
	return 0;
}

static void open_file(fuse_req_t req, struct hz_node *n,
		      struct fuse_file_info *fi, int created, mode_t mode,
		      struct hz_node *parent, const char *name)
{
	struct hz_fs *fs = FS(req);
	struct fuse_entry_param e;
	struct hz_file *h = NULL;
	int flags = fi->flags, fd = -1, pfd = -1, rc = 0;
	int writing = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
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
		rc = file_new(fs, req, n, fd, flags, &h);
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
			       EROFS);
		goto out;
	}
	if (writing && !created && worm_locked(fs, n)) {
		rc = refuse_worm(fs, req, "open", n);
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
		fd = openat(pfd, name,
			    ((flags | O_CREAT) & ~O_NOFOLLOW) | O_CLOEXEC,
			    mode & 07777);
		if (fd < 0) {
			rc = -errno;
			goto out;
		}
		chown_to_caller(req, pfd, name, NULL);
		rc = hz_node_lookup(fs, parent, pfd, name, &e, &n);
		if (rc < 0)
			goto out;
	} else {
		if ((flags & O_TRUNC)) {
			rc = hz_preserve(fs, n, &actor, "truncate");
			/* The truncation is recorded before it happens. */
			if (rc == 0) {
				path = path_of(fs, n);
				rc = record_path(
					fs, "open", &actor, path,
					json_pack("{s:I,s:I,s:b}", "ino",
						  (json_int_t)n->ino, "flags",
						  (json_int_t)fi->flags,
						  "created", 0));
			}
			if (rc < 0) {
				rc = hz_errno(rc);
				goto out;
			}
		}
		if (writing) {
			/* A version shares this file's blocks: copy first. */
			rc = break_link(fs, n, flags & O_TRUNC);
			if (rc < 0)
				goto out;
		}
		fd = hz_node_open(fs, n, flags & ~O_CREAT);
		if (fd < 0) {
			rc = fd;
			goto out;
		}
	}
	rc = file_new(fs, req, n, fd, flags, &h);
	if (rc < 0)
		goto out;
	fd = -1;
	if (created || (!(flags & O_TRUNC) && fs->opts.log_reads && !writing)) {
		path = path_of(fs, n);
		f = json_pack("{s:I,s:I,s:b}", "ino", (json_int_t)n->ino,
			      "flags", (json_int_t)fi->flags, "created",
			      created);
		rc = record_path(fs, created ? "create" : "open", &actor, path,
				 f);
		if (rc < 0) {
			/* Unrecorded, so it must not exist. */
			if (created && pfd >= 0)
				(void)unlinkat(pfd, name, 0);
			rc = hz_errno(rc);
			goto out;
		}
	}
	if (flags & O_TRUNC) {
		pthread_mutex_lock(&n->mu);
		n->dirty = 1;
		n->wgen++;
		h->wgen0 = n->wgen;
		pthread_mutex_unlock(&n->mu);
	}
	if (created) {
		pthread_mutex_lock(&n->mu);
		n->dirty = 1;
		pthread_mutex_unlock(&n->mu);
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	if (created)
		fuse_reply_create(req, &e, fi);
	else
		fuse_reply_open(req, fi);
	h = NULL;
out:
	if (h) {
		/* Undo file_new. */
		if (h->writable) {
			pthread_mutex_lock(&h->node->mu);
			h->node->writers--;
			pthread_mutex_unlock(&h->node->mu);
		}
		close(h->fd);
		hc_sha256_free(h->hash);
		free(h);
	}
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
			const void *data, size_t size, off_t off)
{
	uint8_t sha[HC_HASH_LEN];
	char hex[HC_HEX_LEN + 1], *path;
	json_t *f;
	int rc;

	rc = hc_sha256(data, size, sha);
	if (rc < 0)
		return rc;
	hc_hex(sha, HC_HASH_LEN, hex);
	path = path_of(fs, h->node);
	f = json_pack("{s:I,s:I,s:I,s:s}", "ino", (json_int_t)h->node->ino,
		      "offset", (json_int_t)off, "length", (json_int_t)size,
		      "sha256", hex);
	rc = record_path(fs, type, writer, path, f);
	free(path);
	return rc;
}

static void hz_write(fuse_req_t req, fuse_ino_t ino, const char *data,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct hz_fs *fs = FS(req);
	struct hz_file *h = (struct hz_file *)(uintptr_t)fi->fh;
	struct hz_node *n = h->node;
	const struct fuse_ctx *ctx;
	hc_actor writer;
	ssize_t done;
	char *path;
	int rc, err;

	(void)ino;
	/*
	 * The writer: the process that made this write(2) (write-through),
	 * else (the kernel flushing its cache or mapped pages) the opener.
	 */
	ctx = fuse_req_ctx(req);
	if (ctx->pid > 0 && (pid_t)ctx->pid != h->actor.pid)
		hz_actor(fs, req, &writer);
	else
		writer = h->actor;
	/*
	 * The record first: never bytes in the tree that the chain does
	 * not show, even if the daemon dies between the two.
	 */
	rc = record_write(fs, h, &writer, "write", data, size, off);
	if (rc < 0) {
		reply_err(req, hz_errno(rc));
		return;
	}
	done = pwrite(h->fd, data, size, off);
	if (done < 0) {
		err = errno;
		path = path_of(fs, n);
		hz_refuse(fs, &writer, "write", path, err);
		free(path);
		reply_err(req, -err);
		return;
	}
	if ((size_t)done != size)
		/* What was written after all: a short write. */
		(void)record_write(fs, h, &writer, "write-short", data,
				   (size_t)done, off);
	pthread_mutex_lock(&n->mu);
	n->dirty = 1;
	n->wgen++;
	h->own++;
	pthread_mutex_unlock(&n->mu);
	if (h->hash) {
		if ((uint64_t)off == h->hash_off)
			hc_sha256_update(h->hash, data, (size_t)done);
		h->hash_off = (uint64_t)off == h->hash_off
				      ? h->hash_off + (uint64_t)done
				      : UINT64_MAX;
	}
	fuse_reply_write(req, (size_t)done);
}

/* Version the file if this handle was its last writer. */
static int close_version(struct hz_fs *fs, struct hz_file *h, const char *why,
			 int last)
{
	struct hz_node *n = h->node;
	uint8_t sha[HC_HASH_LEN];
	const uint8_t *known = NULL;
	struct stat st;
	int rc = 0;

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
		rc = version_locked(fs, n, &h->actor, why, known, h->fd);
		if (known) {
			/* The context was reset by final: rehash no more. */
			hc_sha256_free(h->hash);
			h->hash = NULL;
		}
	}
	pthread_mutex_unlock(&n->mu);
	if (rc == 0)
		poke_committer(fs);
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
		rc = close_version(fs, h, "close", 1);
		if (rc < 0)
			fuse_log(FUSE_LOG_ERR,
				 "hozen: cannot version a closed file: %s\n",
				 hc_error_message());
	}
	close(h->fd);
	hc_sha256_free(h->hash);
	hz_node_release(fs, h->node);
	free(h);
	reply_err(req, 0);
}

static void hz_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	struct hz_fs *fs = FS(req);
	struct hz_file *h = (struct hz_file *)(uintptr_t)fi->fh;
	int rc;

	(void)ino;
	rc = datasync ? fdatasync(h->fd) : fsync(h->fd);
	if (rc < 0) {
		reply_err(req, -errno);
		return;
	}
	/* An fsync makes the bytes, their records and a version durable. */
	if (h->writable) {
		rc = close_version(fs, h, "fsync", 0);
		if (rc == 0)
			rc = vs_sync(fs->vs);
		if (rc < 0) {
			reply_err(req, hz_errno(rc));
			return;
		}
	}
	rc = hc_log_sync(fs->log, hc_log_size(fs->log) - 1);
	reply_err(req, hz_errno(rc));
}

static void hz_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
			 off_t len, struct fuse_file_info *fi)
{
	struct hz_fs *fs = FS(req);
	struct hz_file *h = (struct hz_file *)(uintptr_t)fi->fh;
	char *path;
	json_t *f;
	int rc;

	(void)ino;
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_COLLAPSE_RANGE |
		    FALLOC_FL_ZERO_RANGE | FALLOC_FL_INSERT_RANGE)) {
		/* These destroy or move bytes: preserve first. */
		rc = hz_preserve(fs, h->node, &h->actor, "fallocate");
		if (rc < 0) {
			reply_err(req, hz_errno(rc));
			return;
		}
	}
	if (fallocate(h->fd, mode, off, len) < 0) {
		reply_err(req, -errno);
		return;
	}
	pthread_mutex_lock(&h->node->mu);
	h->node->dirty = 1;
	h->node->wgen++;
	pthread_mutex_unlock(&h->node->mu);
	path = path_of(fs, h->node);
	f = json_pack("{s:i,s:I,s:I}", "mode", mode, "offset", (json_int_t)off,
		      "length", (json_int_t)len);
	rc = record_path(fs, "fallocate", &h->actor, path, f);
	free(path);
	reply_err(req, hz_errno(rc));
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

static void hz_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct hz_fs *fs = FS(req);
	struct hz_node *n = hz_node_get(fs, ino);
	uint8_t sha[HC_HASH_LEN];
	char proc[64], hex[HC_HEX_LEN + 1], *path;
	hc_actor actor;
	json_t *f;
	int fd, rc;

	rc = virt_ro(fs, n, NULL, NULL);
	if (rc == 0)
		rc = refuse_ro(fs, req, "setxattr", n, NULL);
	if (rc == 0 && worm_locked(fs, n))
		rc = refuse_worm(fs, req, "setxattr", n);
	if (rc == 0 && is_mark(name))
		rc = refuse_worm(fs, req, "setxattr", n); /* hozen's own */
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	fd = hz_node_open(fs, n, O_PATH);
	if (fd < 0) {
		reply_err(req, fd);
		return;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	set_nocaps(n, 0);
	rc = setxattr(proc, name, value, size, flags);
	close(fd);
	if (rc < 0) {
		reply_err(req, -errno);
		return;
	}
	hz_actor(fs, req, &actor);
	hc_sha256(value, size, sha);
	hc_hex(sha, HC_HASH_LEN, hex);
	path = path_of(fs, n);
	f = json_pack("{s:s,s:I,s:s}", "name", name, "size", (json_int_t)size,
		      "sha256", hex);
	rc = record_path(fs, "setxattr", &actor, path, f);
	free(path);
	reply_err(req, hz_errno(rc));
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
	hc_actor actor;
	int fd, rc;

	rc = virt_ro(fs, n, NULL, NULL);
	if (rc == 0)
		rc = refuse_ro(fs, req, "removexattr", n, NULL);
	if (rc == 0 && (worm_locked(fs, n) || is_mark(name)))
		rc = refuse_worm(fs, req, "removexattr", n);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	fd = hz_node_open(fs, n, O_PATH);
	if (fd < 0) {
		reply_err(req, fd);
		return;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	set_nocaps(n, 0);
	rc = removexattr(proc, name);
	close(fd);
	if (rc < 0) {
		reply_err(req, -errno);
		return;
	}
	hz_actor(fs, req, &actor);
	path = path_of(fs, n);
	rc = record_path(fs, "removexattr", &actor, path,
			 json_pack("{s:s}", "name", name));
	free(path);
	reply_err(req, hz_errno(rc));
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
