/*
 * fsint.h - internal to fs/: the daemon's state, shared by its files.
 *
 * Locking: `tlock` protects the node table and every node's nlookup;
 * `names` (a rwlock) protects every node's parent and name; a node's
 * `mu` protects its versioning state; `cmu` protects the commit state.
 * Order: names, then tlock or a node's mu (never both), then cmu.
 */
#ifndef HOZEN_FS_INT_H
#define HOZEN_FS_INT_H

#define FUSE_USE_VERSION 312

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include <fuse_lowlevel.h>

#include "fs.h"
#include "hashchain.h"
#include "versions.h"

/* hz_node.lfs_mark: whether break_link() has work; under the node's mu. */
enum { LFS_UNKNOWN = 0, LFS_NONE, LFS_MARKED };

/* New content held for the next commit before the committer is woken. */
#define HZ_BATCH_BYTES (32u << 20)

struct hz_node {
	struct hz_node *hnext; /* hash chain, tlock */
	dev_t dev;
	ino_t ino;
	uint64_t nlookup;	    /* tlock */
	unsigned children;	    /* tlock: nodes naming it as parent */
	struct file_handle *handle; /* NULL for the root */

	struct hz_node *parent; /* names; NULL for the root */
	char *name;		/* names */

	pthread_mutex_t mu;
	int dirty;	  /* written since its last version */
	unsigned writers; /* open handles with write access */
	uint64_t wgen;	  /* count of writes, for the streaming hash */
	int versioned;	  /* a version of it exists (WORM: immutable) */
	char blob[41];	  /* its last version's git blob, "" if none */
	/*
	 * It has no security.capability: with the writeback cache the
	 * kernel asks before every write(2), so the answer is cached.
	 */
	int nocaps;
	int lfs_mark;  /* LFS_*: its file is (not) also an LFS object */
	int virt;      /* a node of /.hozen/ (VIRT_*), 0 for the live tree */
	unsigned mode; /* git file mode of that version */
};

/* An open file. */
struct hz_file {
	int fd;
	struct hz_node *node;
	hc_actor actor; /* the opener: writes are attributed to it */
	int writable;
	/* SHA-256 of the content while it is written from 0 in order */
	hc_sha256_ctx *hash;
	uint64_t hash_off;
	uint64_t wgen0, own; /* node->wgen at open; writes via this handle */
};

struct hz_fs {
	struct fs_options opts;
	hc_store *store;
	hc_log *log;
	hc_key *key;
	const char *origin;
	vs_repo *vs;
	int treefd;  /* O_PATH of STORE/tree */
	int mountfd; /* O_RDONLY of STORE/tree, for open_by_handle_at */
	struct fuse_session *se;

	pthread_mutex_t tlock;
	struct hz_node **buckets;
	size_t nbuckets, nnodes;
	struct hz_node root;

	pthread_rwlock_t names;

	pthread_mutex_t cmu;
	pthread_cond_t ccv;
	uint64_t commit_first; /* first record not yet in a commit */
	int commit_stop;
	pthread_t committer;
	int committer_running;

	/*
	 * The case's preservation order is in force: content is versioned
	 * before anything can destroy it, and --worm holds.  0 after a
	 * recorded release (case/case.h): changes are still recorded.
	 */
	int preserving;
	char preserve_why[256]; /* the order's state, for /.hozen/status */
	struct hz_node virt[4]; /* /.hozen/ and its files (virt.c) */
	char mountpoint[4096];
	int reserve_fd; /* STORE/.reserve: room to seal a full disk */
};

/* nodes.c */
int hz_nodes_init(struct hz_fs *fs);
void hz_nodes_free(struct hz_fs *fs);
struct hz_node *hz_node_get(struct hz_fs *fs, fuse_ino_t ino);
fuse_ino_t hz_node_ino(struct hz_fs *fs, struct hz_node *n);
/* Find or add the node of name in parent (which holds its fd in pfd). */
int hz_node_lookup(struct hz_fs *fs, struct hz_node *parent, int pfd,
		   const char *name, struct fuse_entry_param *e,
		   struct hz_node **out);
void hz_node_forget(struct hz_fs *fs, struct hz_node *n, uint64_t nlookup);
/* The node now is the file (dev, ino) with handle h (taken over). */
void hz_node_rehash(struct hz_fs *fs, struct hz_node *n, dev_t dev, ino_t ino,
		    struct file_handle *h);
/* Report the link count without the LFS object sharing the inode. */
void hz_fix_nlink(int fd, struct stat *st);
/* The node of name in the directory pfd if the table has it, or NULL. */
struct hz_node *hz_node_find(struct hz_fs *fs, int pfd, const char *name);
/* Free n if nothing needs it any more (call after it stops being dirty). */
void hz_node_release(struct hz_fs *fs, struct hz_node *n);
/* An fd on the node's file with flags (O_PATH for a handle); -errno. */
int hz_node_open(struct hz_fs *fs, struct hz_node *n, int flags);
/* The node's path relative to the mount root ("" for the root). */
char *hz_node_path(struct hz_fs *fs, struct hz_node *n);
char *hz_child_path(struct hz_fs *fs, struct hz_node *parent, const char *name);
/* After a rename: the node now is name in parent. */
void hz_node_rename(struct hz_fs *fs, struct hz_node *n, struct hz_node *parent,
		    const char *name);

/*
 * openat(dirfd, path, flags) for paths of any length (beyond PATH_MAX),
 * walking directories without following symlinks.  -1 and errno.
 */
int hz_openat_long(int dirfd, const char *path, int flags);

/* virt.c: the read-only /.hozen/ directory */
enum { VIRT_NONE, VIRT_DIR, VIRT_STATUS, VIRT_HEAD, VIRT_CHECKPOINT };
#define VIRT_NAME ".hozen"
void hz_virt_init(struct hz_fs *fs);
/* The virtual node of name in parent, or NULL. */
struct hz_node *hz_virt_lookup(struct hz_fs *fs, struct hz_node *parent,
			       const char *name);
void hz_virt_stat(struct hz_fs *fs, struct hz_node *n, struct stat *st);
/* A memfd with the file's content now; -errno. */
int hz_virt_open(struct hz_fs *fs, struct hz_node *n);
/* Fill a readdir buffer for /.hozen/; returns the bytes used. */
size_t hz_virt_readdir(struct hz_fs *fs, fuse_req_t req, char *buf, size_t size,
		       off_t off);

/* record.c */
/* The actor of a request (cached per pid for a short while). */
void hz_actor(struct hz_fs *fs, fuse_req_t req, hc_actor *out);
/* Set path (or path_b64 for names that are not UTF-8) in fields. */
int hz_json_path(json_t *fields, const char *key, const char *path);
/* Append a record; fields is consumed.  0 or a negative HC_E* code. */
int hz_record(struct hz_fs *fs, const char *type, const hc_actor *actor,
	      json_t *fields, uint64_t *seq_out);
/* Record a refused attempt (op, path, errno); returns -err. */
int hz_refuse(struct hz_fs *fs, const hc_actor *actor, const char *op,
	      const char *path, int err);
/* Map an HC_E* code to a negative errno for FUSE. */
int hz_errno(int code);

/* versioning (ops.c) */
/* Version node's current content if dirty (before it can be lost). */
int hz_preserve(struct hz_fs *fs, struct hz_node *n, const hc_actor *actor,
		const char *why);
/* Commit staged versions now (records up to the current head). */
int hz_commit(struct hz_fs *fs, const char *why);

extern const struct fuse_lowlevel_ops hz_ops;

#endif
