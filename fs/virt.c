/*
 * virt.c - /.hozen/, a read-only directory in the mount that shows the
 * store's state and its history:
 *
 *   status, head, checkpoint  the store, the policy and the order, the
 *                             chain head, the latest checkpoint, what
 *                             waits to be committed (made when opened)
 *   commits/ID/...            the tree of each commit of the snapshot
 *                             history (VS_REF, first parent), by full id;
 *   commits/latest            a symlink to the newest
 *   versions/PATH@N           version N of the file PATH, in chain order,
 *                             under the directories of every path that
 *                             ever had a version
 *
 * The directory is not listed in the root: it is reached by its name,
 * like a NetApp .snapshot.  Nothing in it can be changed; opens there are
 * recorded only for versions and commits' files, and only with
 * --log-reads (who looked at which earlier version).
 *
 * The fixed nodes are fs->virt[kind - 1].  The nodes below commits/ and
 * versions/ are made on lookup, counted like the kernel counts them and
 * freed when it forgets them (and no open file or child needs them).  A
 * table keyed by parent and name gives a name looked up again the same
 * node.  FUSE node ids are the nodes' addresses, like the tree's nodes';
 * inode numbers (st_ino) are 0xffffffffffff00 + kind for the fixed nodes
 * and, for the others, a hash of the parent's inode number and the name
 * with bit 62 set: the same for the same name across lookups and mounts,
 * and above the inode numbers of the filesystems the tree lives on.
 *
 * History never changes: what is below commits/ID/ and a version's name
 * and attributes may be cached by the kernel (TTL); listings, `latest`
 * and the fixed files are made afresh.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsint.h"

#define TTL	      60.0 /* seconds the kernel may keep what never changes */
#define STATIC_INO(k) ((ino_t)(0xffffffffffff00ull + (uint64_t)(k)))
#define DYNAMIC_BIT   (1ull << 62)

/* What a node made on lookup is. */
struct vinfo {
	int kind;
	mode_t mode;	      /* st_mode */
	struct timespec time; /* mtime; 0: the mount root's */
	uint64_t size;
	uint8_t oid[HS_OID_LEN]; /* VIRT_TREE: its tree; files: the blob */
	const hs_path *path;	 /* VIRT_VDIR: its place in the index */
};

struct vnode {
	struct hz_node n;    /* first: &n is what FUSE knows */
	struct vnode *hnext; /* vt->lock */
	uint64_t opens;	     /* vt->lock: open files and directories */
	struct vinfo i;
};

struct hz_virt {
	/* lock protects the table and the counts of its nodes. */
	pthread_mutex_t lock;
	struct vnode **buckets; /* nbuckets: a power of 2 */
	size_t nbuckets, nnodes;
	hs_history *hist;
};

/* A listing, made when read from its start. */
struct hz_vdir {
	char *names; /* NUL-terminated names, one after the other */
	size_t len, cap;
	struct vent {
		size_t name; /* offset in names */
		mode_t type;
		uint64_t ino;
	} * ents;
	size_t n, capents;
	uint64_t ino; /* the directory's, for its entries' */
	int made;
};

static const struct {
	const char *name;
	int kind, parent;
} fixed[VIRT_NSTATIC] = {
	{VIRT_NAME, VIRT_DIR, VIRT_NONE},
	{"status", VIRT_STATUS, VIRT_DIR},
	{"head", VIRT_HEAD, VIRT_DIR},
	{"checkpoint", VIRT_CHECKPOINT, VIRT_DIR},
	{"commits", VIRT_COMMITS, VIRT_DIR},
	{"versions", VIRT_VERSIONS, VIRT_DIR},
	{"latest", VIRT_LATEST, VIRT_COMMITS},
};

static int dynamic(const struct hz_node *n)
{
	return n->virt > VIRT_NSTATIC;
}

static struct vnode *vn(struct hz_node *n)
{
	return (struct vnode *)n; /* n is the first member */
}

static uint64_t child_ino(uint64_t parent_ino, const char *name)
{
	uint64_t h = hc_fnv1a(HC_FNV1A_INIT, &parent_ino, sizeof(parent_ino));

	h = hc_fnv1a(h, name, strlen(name));
	return DYNAMIC_BIT | (h & (DYNAMIC_BIT - 1));
}

/* The inode number a directory's ".." shows. */
static uint64_t parent_ino(struct hz_fs *fs, struct hz_node *n)
{
	return n->parent == &fs->root ? FUSE_ROOT_ID : n->parent->ino;
}

/*
 * A history error at the FUSE boundary: absence is the caller's
 * ENOENT; anything else is logged (what, on which node) and mapped.
 */
static int fail(struct hz_fs *fs, struct hz_node *n, const char *what, int rc)
{
	char *path;

	if (rc == HC_ENOENT)
		return -ENOENT;
	path = hz_node_path(fs, n);
	fuse_log(FUSE_LOG_ERR, "hozen: %s '%s': %s\n", what, path ? path : "?",
		 hc_error_message());
	free(path);
	return hz_errno(rc);
}

/* --------------------------------------------------------------- setup */

int hz_virt_init(struct hz_fs *fs)
{
	struct hz_virt *vt;
	size_t i;
	int rc;

	vt = calloc(1, sizeof(*vt));
	if (!vt)
		return hc_error_set(HC_ENOMEM, "out of memory");
	vt->nbuckets = 1024;
	vt->buckets = calloc(vt->nbuckets, sizeof(*vt->buckets));
	if (!vt->buckets) {
		free(vt);
		return hc_error_set(HC_ENOMEM, "out of memory");
	}
	rc = hs_open(&vt->hist, hc_store_fd(fs->store));
	if (rc < 0) {
		free(vt->buckets);
		free(vt);
		return hc_error_prefix(rc, "cannot open the history for "
					   "/.hozen/");
	}
	pthread_mutex_init(&vt->lock, NULL);
	for (i = 0; i < VIRT_NSTATIC; i++) {
		struct hz_node *n = &fs->virt[i];

		memset(n, 0, sizeof(*n));
		pthread_mutex_init(&n->mu, NULL);
		n->virt = fixed[i].kind;
		n->ino = STATIC_INO(fixed[i].kind);
		n->parent = fixed[i].parent ? &fs->virt[fixed[i].parent - 1]
					    : &fs->root;
		/* Static names, never freed. */
		n->name = (char *)(uintptr_t)fixed[i].name;
	}
	fs->vt = vt;
	return 0;
}

void hz_virt_record(struct hz_fs *fs, const hc_record *rec)
{
	/* An unusable version record is left out of /.hozen/versions. */
	if (hs_load_record(fs->vt->hist, rec) == HC_ENOMEM)
		fuse_log(FUSE_LOG_WARNING,
			 "hozen: out of memory indexing versions for "
			 "/.hozen/versions\n");
}

static void vnode_free(struct vnode *v)
{
	pthread_mutex_destroy(&v->n.mu);
	free(v->n.name);
	free(v);
}

void hz_virt_free(struct hz_fs *fs)
{
	struct hz_virt *vt = fs->vt;
	struct vnode *v, *next;
	size_t i;

	if (!vt)
		return;
	for (i = 0; i < vt->nbuckets; i++)
		for (v = vt->buckets[i]; v; v = next) {
			next = v->hnext;
			vnode_free(v);
		}
	free(vt->buckets);
	hs_free(vt->hist);
	pthread_mutex_destroy(&vt->lock);
	free(vt);
	for (i = 0; i < VIRT_NSTATIC; i++)
		pthread_mutex_destroy(&fs->virt[i].mu);
	fs->vt = NULL;
}

/* --------------------------------------------------------------- nodes */

static size_t vbucket(const struct hz_virt *vt, const struct hz_node *parent,
		      const char *name)
{
	uint64_t h = hc_fnv1a(HC_FNV1A_INIT, &parent, sizeof(parent));

	return (size_t)hc_fnv1a(h, name, strlen(name)) & (vt->nbuckets - 1);
}

/* Twice the buckets when the table is full; lock held. */
static void vgrow(struct hz_virt *vt)
{
	size_t n = vt->nbuckets * 2, oldn = vt->nbuckets, i, b;
	struct vnode **nb = calloc(n, sizeof(*nb)), **old = vt->buckets;
	struct vnode *v, *next;

	if (!nb)
		return; /* longer chains, still correct */
	vt->buckets = nb;
	vt->nbuckets = n;
	for (i = 0; i < oldn; i++)
		for (v = old[i]; v; v = next) {
			next = v->hnext;
			b = vbucket(vt, v->n.parent, v->n.name);
			v->hnext = nb[b];
			nb[b] = v;
		}
	free(old);
}

/* What a name is stays what it was, but for one case: see vnode_get. */
static int same(const struct vinfo *a, const struct vinfo *b)
{
	return a->kind == b->kind && a->path == b->path &&
	       !memcmp(a->oid, b->oid, HS_OID_LEN);
}

/*
 * The node name in parent, made like vi if there is none yet, with its
 * lookup counted.  The one name whose meaning can change is that of a
 * directory of versions/ named NAME@N, which version N of a file NAME
 * hides once it exists: it gets a node of its own.
 */
static int vnode_get(struct hz_fs *fs, struct hz_node *parent, const char *name,
		     const struct vinfo *vi, struct hz_node **out)
{
	struct hz_virt *vt = fs->vt;
	struct vnode *v;
	size_t b;

	pthread_mutex_lock(&vt->lock);
	b = vbucket(vt, parent, name);
	for (v = vt->buckets[b]; v; v = v->hnext)
		if (v->n.parent == parent && same(&v->i, vi) &&
		    !strcmp(v->n.name, name))
			break;
	if (!v) {
		v = calloc(1, sizeof(*v));
		if (!v || !(v->n.name = strdup(name))) {
			pthread_mutex_unlock(&vt->lock);
			free(v);
			return -ENOMEM;
		}
		pthread_mutex_init(&v->n.mu, NULL);
		v->n.virt = vi->kind;
		v->n.parent = parent;
		v->n.ino = (ino_t)child_ino(parent->ino, name);
		v->i = *vi;
		v->hnext = vt->buckets[b];
		vt->buckets[b] = v;
		if (dynamic(parent))
			parent->children++;
		if (++vt->nnodes > vt->nbuckets)
			vgrow(vt);
	}
	v->n.nlookup++;
	pthread_mutex_unlock(&vt->lock);
	*out = &v->n;
	return 0;
}

/*
 * Free v if nothing needs it any more, then the same for its parent;
 * lock held.
 */
static void vnode_drop(struct hz_virt *vt, struct vnode *v)
{
	struct hz_node *parent;
	struct vnode **pp;

	while (v) {
		if (v->n.nlookup || v->n.children || v->opens)
			return;
		for (pp = &vt->buckets[vbucket(vt, v->n.parent, v->n.name)];
		     *pp; pp = &(*pp)->hnext)
			if (*pp == v) {
				*pp = v->hnext;
				break;
			}
		vt->nnodes--;
		parent = v->n.parent;
		vnode_free(v);
		v = NULL;
		if (dynamic(parent)) {
			parent->children--;
			v = vn(parent);
		}
	}
}

void hz_virt_forget(struct hz_fs *fs, struct hz_node *n, uint64_t nlookup)
{
	if (!dynamic(n))
		return;
	pthread_mutex_lock(&fs->vt->lock);
	n->nlookup -= nlookup < n->nlookup ? nlookup : n->nlookup;
	vnode_drop(fs->vt, vn(n));
	pthread_mutex_unlock(&fs->vt->lock);
}

void hz_virt_release(struct hz_fs *fs, struct hz_node *n)
{
	if (!dynamic(n))
		return;
	pthread_mutex_lock(&fs->vt->lock);
	if (vn(n)->opens)
		vn(n)->opens--;
	vnode_drop(fs->vt, vn(n));
	pthread_mutex_unlock(&fs->vt->lock);
}

static void opened(struct hz_fs *fs, struct hz_node *n)
{
	if (!dynamic(n))
		return;
	pthread_mutex_lock(&fs->vt->lock);
	vn(n)->opens++;
	pthread_mutex_unlock(&fs->vt->lock);
}

/* ------------------------------------------------------------- lookups */

/* commits/ID */
static int commit_info(struct hz_fs *fs, struct hz_node *parent,
		       const char *name, struct vinfo *vi)
{
	int64_t t;
	int rc;

	rc = hs_commit(fs->vt->hist, name, vi->oid, &t);
	if (rc < 0)
		return fail(fs, parent, "cannot look up a commit in", rc);
	vi->kind = VIRT_TREE;
	vi->mode = S_IFDIR | 0555;
	vi->time.tv_sec = (time_t)t;
	return 0;
}

/* A name in a commit's tree. */
static int tree_info(struct hz_fs *fs, struct hz_node *parent, const char *name,
		     struct vinfo *vi)
{
	struct hs_entry e;
	int rc;

	rc = hs_tree_entry(fs->vt->hist, vn(parent)->i.oid, name, &e);
	if (rc < 0)
		return fail(fs, parent, "cannot look up a name in", rc);
	memcpy(vi->oid, e.oid, HS_OID_LEN);
	vi->size = e.size;
	vi->time = vn(parent)->i.time; /* the commit's */
	switch (e.kind) {
	case HS_DIR:
		vi->kind = VIRT_TREE;
		vi->mode = S_IFDIR | 0555;
		break;
	case HS_LINK:
		vi->kind = VIRT_LINK;
		vi->mode = S_IFLNK | 0777;
		break;
	default:
		vi->kind = VIRT_BLOB;
		vi->mode = S_IFREG | (e.kind == HS_EXEC ? 0555 : 0444);
	}
	return 0;
}

/* A name in a directory of versions/. */
static int version_info(struct hz_fs *fs, struct hz_node *parent,
			const char *name, struct vinfo *vi)
{
	const hs_path *dir = parent->virt == VIRT_VERSIONS
				     ? hs_root(fs->vt->hist)
				     : vn(parent)->i.path;
	struct hs_version v;
	int rc;

	rc = hs_lookup(fs->vt->hist, dir, name, &vi->path, &v);
	if (rc < 0)
		return fail(fs, parent, "cannot look up a version in", rc);
	if (rc == HS_DIR) {
		vi->kind = VIRT_VDIR;
		vi->mode = S_IFDIR | 0555;
		return 0;
	}
	vi->kind = VIRT_VFILE;
	vi->mode = S_IFREG | 0444;
	vi->size = v.size;
	vi->time = v.time;
	memcpy(vi->oid, v.blob, HS_OID_LEN);
	vi->path = NULL;
	return 0;
}

int hz_virt_lookup(struct hz_fs *fs, struct hz_node *parent, const char *name,
		   struct fuse_entry_param *e)
{
	struct hz_node *n = NULL;
	struct vinfo vi;
	char hex[41];
	size_t i;
	int rc = 0;

	memset(&vi, 0, sizeof(vi));
	if (parent == &fs->root) {
		if (strcmp(name, VIRT_NAME))
			return 0;
		n = &fs->virt[VIRT_DIR - 1];
	} else if (!parent->virt) {
		return 0;
	}
	switch (n ? VIRT_NONE : parent->virt) {
	case VIRT_NONE:
		break;
	case VIRT_DIR:
		for (i = 0; i < VIRT_NSTATIC; i++)
			if (fixed[i].parent == VIRT_DIR &&
			    !strcmp(name, fixed[i].name))
				n = &fs->virt[i];
		rc = n ? 0 : -ENOENT;
		break;
	case VIRT_COMMITS:
		if (strcmp(name, "latest")) {
			rc = commit_info(fs, parent, name, &vi);
			break;
		}
		rc = hs_latest(fs->vt->hist, hex, NULL);
		if (rc < 0)
			rc = fail(fs, parent, "cannot read the history of", rc);
		else if (rc == 1)
			rc = -ENOENT; /* no commit yet */
		else
			n = &fs->virt[VIRT_LATEST - 1];
		break;
	case VIRT_TREE:
		rc = tree_info(fs, parent, name, &vi);
		break;
	case VIRT_VERSIONS:
	case VIRT_VDIR:
		rc = version_info(fs, parent, name, &vi);
		break;
	default:
		rc = -ENOTDIR;
	}
	if (rc == 0 && !n)
		rc = vnode_get(fs, parent, name, &vi, &n);
	if (rc < 0)
		return rc;
	memset(e, 0, sizeof(*e));
	e->attr_timeout = e->entry_timeout = hz_virt_stat(fs, n, &e->attr);
	if (n->virt == VIRT_VDIR)
		e->entry_timeout = 0; /* NAME@N may come to be a version */
	e->ino = hz_node_ino(fs, n);
	return 1;
}

double hz_virt_stat(struct hz_fs *fs, struct hz_node *n, struct stat *st)
{
	struct stat root;

	memset(st, 0, sizeof(*st));
	if (fstat(fs->mountfd, &root) == 0) {
		st->st_dev = root.st_dev;
		st->st_atim = st->st_mtim = st->st_ctim = root.st_mtim;
	}
	st->st_ino = n->ino;
	st->st_uid = 0;
	st->st_gid = 0;
	st->st_nlink = 1; /* for directories: "not counted", as btrfs says */
	st->st_blksize = 4096;
	if (dynamic(n)) {
		const struct vinfo *vi = &vn(n)->i;

		st->st_mode = vi->mode;
		st->st_size = (off_t)vi->size;
		st->st_blocks = (blkcnt_t)((vi->size + 511) / 512);
		if (vi->time.tv_sec || vi->time.tv_nsec)
			st->st_atim = st->st_mtim = st->st_ctim = vi->time;
		return TTL;
	}
	switch (n->virt) {
	case VIRT_DIR:
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 4; /* ., its name, commits/.., versions/.. */
		break;
	case VIRT_COMMITS:
	case VIRT_VERSIONS:
		/*
		 * root's: git does not keep who may read a file, and the
		 * tree's permissions must not be undone by its history.
		 */
		st->st_mode = S_IFDIR | 0500;
		break;
	case VIRT_LATEST:
		st->st_mode = S_IFLNK | 0777;
		st->st_size = 40;
		break;
	default:
		st->st_mode = S_IFREG | 0444;
		/* The size is known once made: read to the end. */
		st->st_size = 0;
	}
	return 0;
}

/* --------------------------------------------------------------- files */

/* The latest checkpoint's text, or NULL. */
static char *latest_checkpoint(struct hz_fs *fs)
{
	uint64_t *sizes = NULL;
	hc_checkpoint *c = NULL;
	hc_key *pub = NULL;
	char *text = NULL;
	size_t n = 0;

	if (hc_store_checkpoints(fs->store, &sizes, &n) == 0 && n > 0 &&
	    hc_store_public_key(fs->store, &pub) == 0 &&
	    hc_store_read_checkpoint(fs->store, sizes[n - 1], pub, &c) == 0)
		text = strdup(c->text);
	hc_checkpoint_free(c);
	hc_key_free(pub);
	free(sizes);
	return text;
}

static int make_status(struct hz_fs *fs, FILE *f)
{
	uint8_t head[HC_HASH_LEN];
	char hex[HC_HEX_LEN + 1], *ck;
	uint64_t size;

	hc_log_head(fs->log, &size, head);
	hc_hex(head, HC_HASH_LEN, hex);
	fprintf(f, "store:         %s\n", hc_store_path(fs->store));
	fprintf(f, "origin:        %s\n", fs->origin);
	fprintf(f, "mounted on:    %s\n", fs->mountpoint);
	fprintf(f, "policy:        %s%s%s\n",
		fs->opts.read_only ? "read-only (write blocker)"
		: fs->opts.worm	   ? "worm (immutable once closed)"
				: "preserve (versions kept before any removal)",
		fs->opts.log_reads ? ", reads recorded" : "",
		fs->opts.no_xattr_read ? ", xattr reads off" : "");
	fprintf(f, "preservation:  %s: %s\n",
		fs->preserving ? "in force" : "lifted", fs->preserve_why);
	fprintf(f, "records:       %" PRIu64 "\n", size);
	fprintf(f, "chain head:    %s\n", hex);
	fprintf(f, "uncommitted:   %zu version(s) staged for git\n",
		vs_staged(fs->vs));
	ck = latest_checkpoint(fs);
	if (ck) {
		char *nl = strchr(ck, '\n'),
		     *nl2 = nl ? strchr(nl + 1, '\n') : 0;

		fprintf(f, "checkpoint:    %.*s records (see checkpoint)\n",
			nl && nl2 ? (int)(nl2 - nl - 1) : 0, nl ? nl + 1 : "");
	}
	free(ck);
	return 0;
}

/* status, head or checkpoint: a memfd made now. */
static int open_made(struct hz_fs *fs, struct hz_node *n)
{
	uint8_t head[HC_HASH_LEN];
	char hex[HC_HEX_LEN + 1], *ck;
	uint64_t size;
	FILE *f;
	int fd, dupfd, rc = 0;

	fd = memfd_create("hozen", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	dupfd = dup(fd);
	f = dupfd >= 0 ? fdopen(dupfd, "w") : NULL;
	if (!f) {
		if (dupfd >= 0)
			close(dupfd);
		close(fd);
		return -ENOMEM;
	}
	switch (n->virt) {
	case VIRT_STATUS:
		rc = make_status(fs, f);
		break;
	case VIRT_HEAD:
		hc_log_head(fs->log, &size, head);
		hc_hex(head, HC_HASH_LEN, hex);
		fprintf(f, "%" PRIu64 " %s\n", size, hex);
		break;
	default:
		ck = latest_checkpoint(fs);
		if (ck)
			fputs(ck, f);
		free(ck);
	}
	if (fclose(f) != 0 && rc == 0)
		rc = -EIO;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

/* With --log-reads: an `open` record naming the version read. */
static int record_open(struct hz_fs *fs, fuse_req_t req, struct hz_node *n,
		       int flags, const char *blob)
{
	hc_actor actor;
	char *path;
	json_t *f;
	int rc;

	hz_actor(fs, req, &actor);
	path = hz_node_path(fs, n);
	f = json_pack("{s:I,s:I,s:b,s:s}", "ino", (json_int_t)n->ino, "flags",
		      (json_int_t)flags, "created", 0, "blob", blob);
	if (!path || !f || hz_json_path(f, "path", path) < 0) {
		free(path);
		json_decref(f);
		return -ENOMEM;
	}
	free(path);
	rc = hz_record(fs, "open", &actor, f, NULL);
	return hz_errno(rc);
}

/* A version or a commit's file: its content, by blob. */
static int open_content(struct hz_fs *fs, fuse_req_t req, struct hz_node *n,
			struct fuse_file_info *fi)
{
	const struct vinfo *vi = &vn(n)->i;
	char hex[41];
	uint64_t size;
	int fd, rc;

	hc_hex(vi->oid, HS_OID_LEN, hex);
	rc = vs_open_version(fs->vs, hex, &fd, &size);
	if (rc == HC_ENOENT) /* the name is there: its content is lost */
		rc = HC_EFORMAT;
	if (rc < 0)
		return fail(fs, n, "cannot open", rc);
	if (size != vi->size) {
		close(fd);
		rc = hc_error_set(HC_EVERIFY,
				  "blob %s holds %" PRIu64
				  " bytes, its record %" PRIu64,
				  hex, size, vi->size);
		return fail(fs, n, "cannot open", rc);
	}
	if (fs->opts.log_reads) {
		rc = record_open(fs, req, n, fi->flags, hex);
		if (rc < 0) {
			close(fd);
			return rc;
		}
	}
	fi->keep_cache = 1; /* it never changes */
	return fd;
}

int hz_virt_open(struct hz_fs *fs, fuse_req_t req, struct hz_node *n,
		 struct fuse_file_info *fi)
{
	int fd;

	switch (n->virt) {
	case VIRT_STATUS:
	case VIRT_HEAD:
	case VIRT_CHECKPOINT:
		fi->direct_io = 1; /* its size is known only when read */
		return open_made(fs, n);
	case VIRT_BLOB:
	case VIRT_VFILE:
		fd = open_content(fs, req, n, fi);
		if (fd >= 0)
			opened(fs, n);
		return fd;
	case VIRT_LATEST:
	case VIRT_LINK:
		return -ELOOP;
	default:
		return -EISDIR;
	}
}

ssize_t hz_virt_readlink(struct hz_fs *fs, struct hz_node *n, char *buf,
			 size_t size)
{
	uint64_t len;
	char hex[41];
	int fd, rc;

	if (n->virt == VIRT_LATEST) {
		rc = hs_latest(fs->vt->hist, hex, NULL);
		if (rc == 1)
			return -ENOENT;
		if (rc < 0)
			return fail(fs, n, "cannot read", rc);
		if (size < sizeof(hex))
			return -ENAMETOOLONG;
		memcpy(buf, hex, sizeof(hex));
		return (ssize_t)strlen(hex);
	}
	if (n->virt != VIRT_LINK)
		return -EINVAL;
	hc_hex(vn(n)->i.oid, HS_OID_LEN, hex);
	rc = vs_open_version(fs->vs, hex, &fd, &len);
	if (rc == HC_ENOENT)
		rc = HC_EFORMAT;
	if (rc < 0)
		return fail(fs, n, "cannot read", rc);
	if (len >= size) {
		close(fd);
		return -ENAMETOOLONG;
	}
	rc = hc_pread_all(fd, buf, (size_t)len, 0);
	close(fd);
	if (rc < 0)
		return fail(fs, n, "cannot read", rc);
	buf[len] = '\0';
	return (ssize_t)len;
}

/* --------------------------------------------------------- directories */

static int is_dir(const struct hz_node *n)
{
	switch (n->virt) {
	case VIRT_DIR:
	case VIRT_COMMITS:
	case VIRT_VERSIONS:
	case VIRT_TREE:
	case VIRT_VDIR:
		return 1;
	default:
		return 0;
	}
}

int hz_virt_opendir(struct hz_fs *fs, struct hz_node *n, struct hz_vdir **out)
{
	struct hz_vdir *d;

	if (!is_dir(n))
		return -ENOTDIR;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->ino = n->ino;
	opened(fs, n);
	*out = d;
	return 0;
}

void hz_virt_closedir(struct hz_fs *fs, struct hz_node *n, struct hz_vdir *d)
{
	if (!d)
		return;
	free(d->names);
	free(d->ents);
	free(d);
	hz_virt_release(fs, n);
}

static int vdir_add(struct hz_vdir *d, const char *name, mode_t type,
		    uint64_t ino)
{
	size_t len = strlen(name) + 1;

	if (d->len + len > d->cap) {
		size_t cap = d->cap ? d->cap : 4096;
		char *grown;

		while (cap < d->len + len)
			cap *= 2;
		grown = realloc(d->names, cap);
		if (!grown)
			return hc_error_set(HC_ENOMEM, "out of memory");
		d->names = grown;
		d->cap = cap;
	}
	if (d->n == d->capents) {
		size_t cap = d->capents ? 2 * d->capents : 64;
		struct vent *grown = realloc(d->ents, cap * sizeof(*grown));

		if (!grown)
			return hc_error_set(HC_ENOMEM, "out of memory");
		d->ents = grown;
		d->capents = cap;
	}
	memcpy(d->names + d->len, name, len);
	d->ents[d->n].name = d->len;
	d->ents[d->n].type = type;
	d->ents[d->n].ino = ino;
	d->n++;
	d->len += len;
	return 0;
}

static int add_commit(void *ctx, const char *hex, int64_t time)
{
	struct hz_vdir *d = ctx;

	(void)time;
	return vdir_add(d, hex, S_IFDIR, child_ino(d->ino, hex));
}

static int add_entry(void *ctx, const char *name, int kind)
{
	struct hz_vdir *d = ctx;

	return vdir_add(d, name,
			kind == HS_DIR	  ? S_IFDIR
			: kind == HS_LINK ? S_IFLNK
					  : S_IFREG,
			child_ino(d->ino, name));
}

/* The listing of n, made now. */
static int vdir_make(struct hz_fs *fs, struct hz_node *n, struct hz_vdir *d)
{
	hs_history *hist = fs->vt->hist;
	char hex[41];
	size_t i;
	int rc;

	d->n = d->len = 0;
	d->made = 0;
	rc = vdir_add(d, ".", S_IFDIR, n->ino);
	if (rc == 0)
		rc = vdir_add(d, "..", S_IFDIR, parent_ino(fs, n));
	switch (rc < 0 ? VIRT_NONE : n->virt) {
	case VIRT_DIR:
		for (i = 0; rc == 0 && i < VIRT_NSTATIC; i++)
			if (fixed[i].parent == VIRT_DIR)
				rc = vdir_add(d, fixed[i].name,
					      is_dir(&fs->virt[i]) ? S_IFDIR
								   : S_IFREG,
					      STATIC_INO(fixed[i].kind));
		break;
	case VIRT_COMMITS:
		rc = hs_latest(hist, hex, NULL);
		if (rc == 0)
			rc = vdir_add(d, "latest", S_IFLNK,
				      STATIC_INO(VIRT_LATEST));
		if (rc >= 0)
			rc = hs_commits_each(hist, add_commit, d);
		break;
	case VIRT_TREE:
		rc = hs_tree_each(hist, vn(n)->i.oid, add_entry, d);
		break;
	case VIRT_VERSIONS:
		rc = hs_dir_each(hist, hs_root(hist), add_entry, d);
		break;
	case VIRT_VDIR:
		rc = hs_dir_each(hist, vn(n)->i.path, add_entry, d);
		break;
	default:
		break;
	}
	if (rc < 0)
		return fail(fs, n, "cannot list", rc);
	d->made = 1;
	return 0;
}

ssize_t hz_virt_readdir(struct hz_fs *fs, fuse_req_t req, struct hz_node *n,
			struct hz_vdir *d, char *buf, size_t size, off_t off)
{
	size_t used = 0, i, len;
	struct stat st;
	int rc;

	if (off == 0 || !d->made) {
		rc = vdir_make(fs, n, d);
		if (rc < 0)
			return rc;
	}
	for (i = (size_t)off; i < d->n; i++) {
		memset(&st, 0, sizeof(st));
		st.st_mode = d->ents[i].type;
		st.st_ino = (ino_t)d->ents[i].ino;
		len = fuse_add_direntry(req, buf + used, size - used,
					d->names + d->ents[i].name, &st,
					(off_t)(i + 1));
		if (len > size - used)
			break;
		used += len;
	}
	return (ssize_t)used;
}

/* ------------------------------------------------------------ versions */

void hz_virt_versioned(struct hz_fs *fs, const char *path,
		       const struct vs_version *v, const char *time)
{
	int rc;

	if (!fs->vt)
		return;
	rc = hs_add(fs->vt->hist, path, v->blob, v->size, time);
	if (rc < 0)
		fuse_log(FUSE_LOG_ERR,
			 "hozen: /.hozen/versions lacks a version of '%s' "
			 "until the next mount: %s\n",
			 path, hc_error_message());
}
