/*
 * nodes.c - the daemon's inode table.
 *
 * A node is a file of the live tree, known to the kernel by a lookup.
 * Nodes hold a file handle (name_to_handle_at), not an open fd: a daemon
 * that keeps an fd per inode runs out near the open-file limit (20,000
 * here), and a tar of more files than that must still work.  Operations
 * open the node by its handle when they need it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fsint.h"

#define HANDLE_MAX 128

static size_t bucket(struct hz_fs *fs, dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)dev;

	return (size_t)(h % fs->nbuckets);
}

int hz_nodes_init(struct hz_fs *fs)
{
	struct stat st;

	fs->nbuckets = 1 << 16;
	fs->buckets = calloc(fs->nbuckets, sizeof(*fs->buckets));
	if (!fs->buckets)
		return hc_error_set(HC_ENOMEM, "out of memory");
	if (fstat(fs->treefd, &st) < 0)
		return hc_error_set(HC_ESYS, "cannot stat the tree");
	fs->root.dev = st.st_dev;
	fs->root.ino = st.st_ino;
	fs->root.nlookup = 2;
	fs->root.name = strdup("");
	fs->root.fid = TM_ROOT;
	pthread_mutex_init(&fs->root.mu, NULL);
	pthread_rwlock_init(&fs->root.io, NULL);
	pthread_mutex_init(&fs->tlock, NULL);
	pthread_rwlock_init(&fs->names, NULL);
	return fs->root.name ? 0 : hc_error_set(HC_ENOMEM, "out of memory");
}

static void node_free(struct hz_node *n)
{
	pthread_mutex_destroy(&n->mu);
	pthread_rwlock_destroy(&n->io);
	free(n->handle);
	free(n->name);
	free(n);
}

void hz_nodes_free(struct hz_fs *fs)
{
	size_t i;

	if (!fs->buckets)
		return;
	for (i = 0; i < fs->nbuckets; i++) {
		struct hz_node *n = fs->buckets[i], *next;

		for (; n; n = next) {
			next = n->hnext;
			node_free(n);
		}
	}
	free(fs->buckets);
	free(fs->root.name);
	pthread_mutex_destroy(&fs->root.mu);
	pthread_rwlock_destroy(&fs->root.io);
	fs->buckets = NULL;
}

struct hz_node *hz_node_get(struct hz_fs *fs, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return &fs->root;
	return (struct hz_node *)(uintptr_t)ino;
}

fuse_ino_t hz_node_ino(struct hz_fs *fs, struct hz_node *n)
{
	return n == &fs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

int hz_node_open(struct hz_fs *fs, struct hz_node *n, int flags)
{
	int fd;

	if (n->virt)
		return -EROFS; /* /.hozen/ is not in the tree */
	if (n == &fs->root) {
		fd = (flags & O_PATH) ? dup(fs->treefd)
				      : openat(fs->treefd, ".",
					       (flags & ~O_CREAT) | O_CLOEXEC);
	} else {
		fd = open_by_handle_at(
			fs->mountfd, n->handle,
			(flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC);
	}
	return fd < 0 ? -errno : fd;
}

static void drop_unused(struct hz_fs *fs, struct hz_node *n);

static char *join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p = malloc(a + b + 2);

	if (!p)
		return NULL;
	memcpy(p, dir, a);
	if (a)
		p[a++] = '/';
	memcpy(p + a, name, b + 1);
	return p;
}

/* Path of n with names held. */
static char *path_locked(struct hz_fs *fs, struct hz_node *n)
{
	char *parent, *p;

	if (n == &fs->root || !n->parent)
		return strdup(n == &fs->root ? "" : n->name ? n->name : "");
	parent = path_locked(fs, n->parent);
	if (!parent)
		return NULL;
	p = join(parent, n->name);
	free(parent);
	return p;
}

char *hz_node_path(struct hz_fs *fs, struct hz_node *n)
{
	char *p;

	pthread_rwlock_rdlock(&fs->names);
	p = path_locked(fs, n);
	pthread_rwlock_unlock(&fs->names);
	return p;
}

char *hz_child_path(struct hz_fs *fs, struct hz_node *parent, const char *name)
{
	char *dir = hz_node_path(fs, parent), *p;

	if (!dir)
		return NULL;
	p = join(dir, name);
	free(dir);
	return p;
}

void hz_node_rename(struct hz_fs *fs, struct hz_node *n, struct hz_node *parent,
		    const char *name)
{
	char *copy = strdup(name);

	if (!copy)
		return; /* keeps the old name: paths are best effort */
	pthread_rwlock_wrlock(&fs->names);
	free(n->name);
	n->name = copy;
	pthread_mutex_lock(&fs->tlock);
	if (n->parent != parent) {
		parent->children++;
		if (n->parent)
			n->parent->children--;
		/* The old parent may now be unused. */
		if (n->parent)
			drop_unused(fs, n->parent);
		n->parent = parent;
	}
	pthread_mutex_unlock(&fs->tlock);
	pthread_rwlock_unlock(&fs->names);
}

/* Same file: inode numbers are reused, handles carry the generation. */
static int same_file(const struct hz_node *n, const struct stat *st,
		     const struct file_handle *h)
{
	return n->ino == st->st_ino && n->dev == st->st_dev && n->handle &&
	       n->handle->handle_type == h->handle_type &&
	       n->handle->handle_bytes == h->handle_bytes &&
	       !memcmp(n->handle->f_handle, h->f_handle, h->handle_bytes);
}

/* The node of that file in bucket b, its lookup counted; tlock held. */
static struct hz_node *find_locked(struct hz_fs *fs, size_t b,
				   const struct stat *st,
				   const struct file_handle *h)
{
	struct hz_node *o;

	for (o = fs->buckets[b]; o; o = o->hnext)
		if (same_file(o, st, h)) {
			o->nlookup++;
			return o;
		}
	return NULL;
}

/*
 * A mark of an older daemon ("1"): find the object by the content's
 * SHA-256; 1 and hex if it is this very inode.
 */
static int hz_lfs_legacy(struct hz_fs *fs, int pathfd, const struct stat *st,
			 char hex[HC_HEX_LEN + 1])
{
	uint8_t sha[HC_HASH_LEN], *buf;
	hc_sha256_ctx *c = NULL;
	char proc[64];
	ssize_t k;
	int fd, rc;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pathfd);
	fd = open(proc, O_RDONLY | O_CLOEXEC);
	buf = malloc(1 << 20);
	rc = fd >= 0 && buf ? hc_sha256_new(&c) : -1;
	while (rc == 0 && (k = read(fd, buf, 1 << 20)) > 0)
		rc = hc_sha256_update(c, buf, (size_t)k);
	if (rc == 0)
		rc = hc_sha256_final(c, sha);
	hc_sha256_free(c);
	free(buf);
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		return 0;
	hc_hex(sha, HC_HASH_LEN, hex);
	if (vs_lfs_is(fs->vs, hex, st)) {
		(void)setxattr(proc, HZ_LFS_MARK, hex, HC_HEX_LEN, 0);
		return 1;
	}
	(void)removexattr(proc, HZ_LFS_MARK);
	return 0;
}

/*
 * What a new node is: its fid (the mark the daemon sets at creation, or
 * the model's for its path), whether it is WORM-locked (the model), and
 * whether its last version still shares its blocks (the LFS mark names
 * an object that is this very inode; a stale mark, left by a crash
 * after the object got blocks of its own, is removed).
 */
static void node_identify(struct hz_fs *fs, struct hz_node *n, int pfd,
			  const char *name, struct hz_node *parent,
			  const struct stat *st, uint64_t known)
{
	char proc[64], val[HC_HEX_LEN + 1], *end, *path;
	struct tm_info info;
	ssize_t len;
	int fd;

	n->fid = known;
	/* Just created (one link, no version yet): nothing more to read. */
	fd = known != TM_NONE && st->st_nlink == 1
		     ? -1
		     : openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		len = getxattr(proc, TM_XATTR_FID, val, sizeof(val) - 1);
		if (len > 0) {
			val[len] = '\0';
			errno = 0;
			n->fid = strtoull(val, &end, 10);
			if (*end || errno)
				n->fid = TM_NONE;
		}
		if (S_ISREG(st->st_mode) && st->st_nlink > 1) {
			len = getxattr(proc, HZ_LFS_MARK, val, sizeof(val) - 1);
			if (len == HC_HEX_LEN) {
				val[len] = '\0';
				if (vs_lfs_is(fs->vs, val, st)) {
					n->shared = 1;
					memcpy(n->lfs_hex, val, sizeof(val));
				} else {
					(void)removexattr(proc, HZ_LFS_MARK);
				}
			} else if (len >= 0) {
				/* An older mark without its object's name. */
				n->shared =
					hz_lfs_legacy(fs, fd, st, n->lfs_hex);
			}
		}
		close(fd);
	}
	path = n->fid == TM_NONE ? hz_child_path(fs, parent, name) : NULL;
	pthread_mutex_lock(&fs->mmu);
	if (path && fs->model && tm_lookup(fs->model, path, &n->fid) < 0)
		n->fid = TM_NONE;
	if (n->fid != TM_NONE && fs->model &&
	    tm_get(fs->model, n->fid, &info) == 0)
		n->locked = info.locked;
	pthread_mutex_unlock(&fs->mmu);
	free(path);
}

/*
 * The node of name in parent: of the file open as fd if fd >= 0 (then
 * with fid known), else of what name is now.
 */
static int node_lookup(struct hz_fs *fs, struct hz_node *parent, int pfd,
		       const char *name, int fd, uint64_t fid,
		       struct fuse_entry_param *e, struct hz_node **out)
{
	struct file_handle *h = NULL;
	struct hz_node *n, *o;
	int mount_id, err;
	size_t b;

	memset(e, 0, sizeof(*e));
	e->attr_timeout = 1.0;
	e->entry_timeout = 1.0;
	if (fd >= 0 ? fstat(fd, &e->attr) < 0
		    : fstatat(pfd, name, &e->attr, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	h = malloc(sizeof(*h) + HANDLE_MAX);
	if (!h)
		return -ENOMEM;
	h->handle_bytes = HANDLE_MAX;
	if ((fd >= 0 ? name_to_handle_at(fd, "", h, &mount_id, AT_EMPTY_PATH)
		     : name_to_handle_at(pfd, name, h, &mount_id, 0)) < 0) {
		err = -errno;
		free(h);
		return err;
	}
	b = bucket(fs, e->attr.st_dev, e->attr.st_ino);
	pthread_mutex_lock(&fs->tlock);
	o = find_locked(fs, b, &e->attr, h);
	pthread_mutex_unlock(&fs->tlock);
	if (o) {
		free(h);
		/* A hard link seen under a new name keeps its first one. */
		n = o;
		goto found;
	}

	n = calloc(1, sizeof(*n));
	if (!n || !(n->name = strdup(name))) {
		free(n);
		free(h);
		return -ENOMEM;
	}
	n->dev = e->attr.st_dev;
	n->ino = e->attr.st_ino;
	n->handle = h;
	n->parent = parent;
	n->nlookup = 1;
	pthread_mutex_init(&n->mu, NULL);
	pthread_rwlock_init(&n->io, NULL);
	node_identify(fs, n, pfd, name, parent, &e->attr,
		      fd >= 0 ? fid : TM_NONE);

	pthread_mutex_lock(&fs->tlock);
	/* Another thread may have added it meanwhile. */
	o = find_locked(fs, b, &e->attr, h);
	if (o) {
		pthread_mutex_unlock(&fs->tlock);
		node_free(n);
		n = o;
		goto found;
	}
	n->hnext = fs->buckets[b];
	fs->buckets[b] = n;
	fs->nnodes++;
	parent->children++;
	pthread_mutex_unlock(&fs->tlock);
found:
	if (n->shared && S_ISREG(e->attr.st_mode) && e->attr.st_nlink > 1)
		e->attr.st_nlink--; /* the LFS object is not a name of it */
	e->ino = hz_node_ino(fs, n);
	if (out)
		*out = n;
	return 0;
}

/*
 * Unlink n from the table and free it if the kernel forgot it, it holds
 * no unversioned content and no node names it as parent; then the same
 * for its parent.  tlock held.
 */
static void drop_unused(struct hz_fs *fs, struct hz_node *n)
{
	struct hz_node **pp, *parent;
	int busy;

	while (n && n != &fs->root) {
		if (n->nlookup || n->children)
			return;
		pthread_mutex_lock(&n->mu);
		busy = n->dirty || n->writers;
		pthread_mutex_unlock(&n->mu);
		if (busy)
			return;
		for (pp = &fs->buckets[bucket(fs, n->dev, n->ino)]; *pp;
		     pp = &(*pp)->hnext)
			if (*pp == n) {
				*pp = n->hnext;
				break;
			}
		fs->nnodes--;
		parent = n->parent;
		node_free(n);
		if (parent)
			parent->children--;
		n = parent;
	}
}

void hz_node_forget(struct hz_fs *fs, struct hz_node *n, uint64_t nlookup)
{
	if (n->virt) {
		hz_virt_forget(fs, n, nlookup);
		return;
	}
	if (n == &fs->root)
		return;
	pthread_rwlock_wrlock(&fs->names);
	pthread_mutex_lock(&fs->tlock);
	n->nlookup -= nlookup < n->nlookup ? nlookup : n->nlookup;
	drop_unused(fs, n);
	pthread_mutex_unlock(&fs->tlock);
	pthread_rwlock_unlock(&fs->names);
}

void hz_node_release(struct hz_fs *fs, struct hz_node *n)
{
	if (n->virt)
		hz_virt_release(fs, n); /* its open file is closed */
	else
		hz_node_forget(fs, n, 0);
}

struct hz_node *hz_node_find(struct hz_fs *fs, int pfd, const char *name)
{
	struct file_handle *h;
	struct hz_node *n = NULL;
	struct stat st;
	int mount_id;

	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return NULL;
	h = malloc(sizeof(*h) + HANDLE_MAX);
	if (!h)
		return NULL;
	h->handle_bytes = HANDLE_MAX;
	if (name_to_handle_at(pfd, name, h, &mount_id, 0) == 0) {
		pthread_mutex_lock(&fs->tlock);
		for (n = fs->buckets[bucket(fs, st.st_dev, st.st_ino)]; n;
		     n = n->hnext)
			if (same_file(n, &st, h))
				break;
		pthread_mutex_unlock(&fs->tlock);
	}
	free(h);
	return n;
}

void hz_node_rehash(struct hz_fs *fs, struct hz_node *n, dev_t dev, ino_t ino,
		    struct file_handle *h)
{
	struct hz_node **pp;

	pthread_mutex_lock(&fs->tlock);
	for (pp = &fs->buckets[bucket(fs, n->dev, n->ino)]; *pp;
	     pp = &(*pp)->hnext)
		if (*pp == n) {
			*pp = n->hnext;
			break;
		}
	free(n->handle);
	n->handle = h;
	n->dev = dev;
	n->ino = ino;
	n->hnext = fs->buckets[bucket(fs, dev, ino)];
	fs->buckets[bucket(fs, dev, ino)] = n;
	pthread_mutex_unlock(&fs->tlock);
}

void hz_fix_nlink(struct hz_node *n, struct stat *st)
{
	/* A version that shares a file's blocks is not a name of it. */
	if (S_ISREG(st->st_mode) && st->st_nlink > 1 && n->shared)
		st->st_nlink--;
}

int hz_node_lookup(struct hz_fs *fs, struct hz_node *parent, int pfd,
		   const char *name, struct fuse_entry_param *e,
		   struct hz_node **out)
{
	return node_lookup(fs, parent, pfd, name, -1, TM_NONE, e, out);
}

int hz_node_lookup_created(struct hz_fs *fs, struct hz_node *parent, int pfd,
			   const char *name, int fd, uint64_t fid,
			   struct fuse_entry_param *e, struct hz_node **out)
{
	return node_lookup(fs, parent, pfd, name, fd, fid, e, out);
}
