/*
 * fsint.h - internal to fs/: the daemon's state, shared by its files.
 *
 * Locking: `tlock` protects the node table and every node's nlookup;
 * `names` (a rwlock) protects every node's parent and name; a node's
 * `io` (a rwlock) is held shared by every change of its content (a
 * write, a truncation, an fallocate) from its record to its act, and
 * exclusively while the node is versioned or its version stops sharing
 * its blocks, so that a version is exactly the content its record names;
 * a node's `mu` protects its versioning state; `mmu` serialises
 * appending a record with applying it to the model; `cmu` protects the
 * commit state.  Order: names, then io, then tlock or mu (never both),
 * then cmu, then mmu.  The nodes of /.hozen/ are virt.c's: their parent
 * and name never change, and virt.c's own lock protects the counts of
 * those it makes.
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
#include "history.h"
#include "model.h"
#include "versions.h"

/*
 * A file whose last version shares its blocks (the version's LFS object
 * is a hard link to it) carries this xattr, whose value is the object's
 * name (the content's SHA-256 in hex).
 */
#define HZ_LFS_MARK "trusted.hozen.lfs"

/* New content held for the next commit before the committer is woken. */
#define HZ_BATCH_BYTES (32u << 20)

/* What a node of /.hozen/ is (0: a node of the tree). */
enum {
	VIRT_NONE,
	/* fixed: fs->virt[kind - 1] */
	VIRT_DIR,	 /* /.hozen/ */
	VIRT_STATUS,	 /* /.hozen/status */
	VIRT_HEAD,	 /* /.hozen/head */
	VIRT_CHECKPOINT, /* /.hozen/checkpoint */
	VIRT_COMMITS,	 /* /.hozen/commits/ */
	VIRT_VERSIONS,	 /* /.hozen/versions/ */
	VIRT_LATEST,	 /* /.hozen/commits/latest */
	/* made on lookup, freed when forgotten */
	VIRT_TREE,  /* a directory of a commit (its root tree or below) */
	VIRT_BLOB,  /* a regular file of a commit */
	VIRT_LINK,  /* a symlink of a commit */
	VIRT_VDIR,  /* a directory of /.hozen/versions/ */
	VIRT_VFILE, /* a version, /.hozen/versions/PATH@N */
};
#define VIRT_NSTATIC VIRT_LATEST
#define VIRT_NAME    ".hozen"

struct hz_node {
	struct hz_node *hnext; /* hash chain, tlock */
	dev_t dev;
	ino_t ino;
	uint64_t nlookup;	    /* tlock */
	unsigned children;	    /* tlock: nodes naming it as parent */
	struct file_handle *handle; /* NULL for the root */

	struct hz_node *parent; /* names; NULL for the root */
	char *name;		/* names */

	uint64_t fid; /* the file's identity (model.h), TM_NONE unknown */

	pthread_rwlock_t io; /* content changes (shared) / versions (excl.) */
	/*
	 * Its last version shares its blocks: the LFS object lfs_hex is a
	 * hard link to it, and must get blocks of its own before the
	 * content changes (io held exclusively to change it).
	 */
	int shared;
	char lfs_hex[HC_HEX_LEN + 1];

	pthread_mutex_t mu;
	int dirty;	  /* written since its last version */
	unsigned writers; /* open handles with write access */
	uint64_t wgen;	  /* count of writes, for the streaming hash */
	int locked;	  /* WORM: a version under a WORM mount (the model's) */
	/*
	 * It has no security.capability: with the writeback cache the
	 * kernel asks before every write(2), so the answer is cached.
	 */
	int nocaps;
	int virt;      /* a node of /.hozen/ (VIRT_*), 0 for the live tree */
	unsigned mode; /* git file mode of that version */
	char blob[41]; /* /.hozen/: the blob it shows */
};

/* An open file. */
struct hz_file {
	int fd;
	struct hz_node *node;
	hc_actor actor; /* the opener: the kernel's own writes are its */
	int writable;
	/*
	 * SHA-256 of the content while it is written from 0 in order.  A
	 * write claims its turn (a ticket) and the end offset under hmu
	 * when its bytes are in the file, and hashes after its reply, in
	 * ticket order: hash_done of hash_next claimed turns are hashed.
	 */
	pthread_mutex_t hmu;
	pthread_cond_t hcv;
	hc_sha256_ctx *hash;
	uint64_t hash_off;
	uint64_t hash_next, hash_done;
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
	/* wire.c: the kernel's INIT offers HANDLE_KILLPRIV_V2; taken */
	uint64_t init_unique;
	int init_offers_v2, killpriv_v2;

	pthread_mutex_t tlock;
	struct hz_node **buckets;
	size_t nbuckets, nnodes;
	struct hz_node root;

	pthread_rwlock_t names;

	/* The live tree as the records made it; mmu held (model.h). */
	tm_model *model;
	pthread_mutex_t mmu;

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
	struct hz_node virt[VIRT_NSTATIC]; /* /.hozen/'s fixed nodes */
	struct hz_virt *vt; /* /.hozen/'s history and other nodes (virt.c) */
	char mountpoint[4096];
	int reserve_fd; /* STORE/.reserve: room to seal a full disk */
};

/* nodes.c */
int hz_nodes_init(struct hz_fs *fs);
void hz_nodes_free(struct hz_fs *fs);
struct hz_node *hz_node_get(struct hz_fs *fs, fuse_ino_t ino);
fuse_ino_t hz_node_ino(struct hz_fs *fs, struct hz_node *n);

/* wire.c: hozen's own I/O on /dev/fuse (HANDLE_KILLPRIV_V2) */
int hz_wire_attach(struct hz_fs *fs);
/* The request being served asks to drop setuid/setgid (no CAP_FSETID). */
int hz_wire_kill(void);
/* Find or add the node of name in parent (which holds its fd in pfd). */
int hz_node_lookup(struct hz_fs *fs, struct hz_node *parent, int pfd,
		   const char *name, struct fuse_entry_param *e,
		   struct hz_node **out);
/*
 * hz_node_lookup of the file the daemon has just created as name, open
 * as fd, with fid (its create record's seq, already in its xattr): the
 * node is that very inode (read through fd, not the name), and its fid
 * is not read back.
 */
int hz_node_lookup_created(struct hz_fs *fs, struct hz_node *parent, int pfd,
			   const char *name, int fd, uint64_t fid,
			   struct fuse_entry_param *e, struct hz_node **out);
void hz_node_forget(struct hz_fs *fs, struct hz_node *n, uint64_t nlookup);
/* The node now is the file (dev, ino) with handle h (taken over). */
void hz_node_rehash(struct hz_fs *fs, struct hz_node *n, dev_t dev, ino_t ino,
		    struct file_handle *h);
/* Report the link count without the LFS object sharing the inode. */
void hz_fix_nlink(struct hz_node *n, struct stat *st);
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
 * virt.c: the read-only /.hozen/ directory.  Errors of the calls made by
 * FUSE operations are -errno; what is not the caller's doing is also
 * logged.
 *
 * Set up /.hozen/ and open the history (after vs_open: STORE/git must be
 * a repository).  0 or HC_E*.
 */
int hz_virt_init(struct hz_fs *fs);
/*
 * Index a record of the chain (a version) for /.hozen/versions, as the
 * daemon reads the chain before serving.
 */
void hz_virt_record(struct hz_fs *fs, const hc_record *rec);
/* Free every node of /.hozen/ and the history; accepts what init left. */
void hz_virt_free(struct hz_fs *fs);
/*
 * Look up name in parent: 0 if it is not a node of /.hozen/ (parent is
 * in the tree and name is not ".hozen"); 1 with *e filled (and the
 * node's lookup counted); -errno.
 */
int hz_virt_lookup(struct hz_fs *fs, struct hz_node *parent, const char *name,
		   struct fuse_entry_param *e);
/* Attributes of a node of /.hozen/; returns how long they hold (s). */
double hz_virt_stat(struct hz_fs *fs, struct hz_node *n, struct stat *st);
/*
 * Open a file of /.hozen/ for reading: an fd of its content, with fi's
 * caching set; with --log-reads, an open of a version or of a commit's
 * file is recorded first (and refused if it cannot be).  -errno.
 */
int hz_virt_open(struct hz_fs *fs, fuse_req_t req, struct hz_node *n,
		 struct fuse_file_info *fi);
/* A symlink's target into buf (NUL-terminated); its length or -errno. */
ssize_t hz_virt_readlink(struct hz_fs *fs, struct hz_node *n, char *buf,
			 size_t size);
/* A directory of /.hozen/ opened for listing. */
struct hz_vdir;
int hz_virt_opendir(struct hz_fs *fs, struct hz_node *n, struct hz_vdir **out);
/* Fill a readdir buffer from entry off on; the bytes used or -errno. */
ssize_t hz_virt_readdir(struct hz_fs *fs, fuse_req_t req, struct hz_node *n,
			struct hz_vdir *d, char *buf, size_t size, off_t off);
void hz_virt_closedir(struct hz_fs *fs, struct hz_node *n, struct hz_vdir *d);
/* The kernel forgot nlookup lookups of n (a node of /.hozen/). */
void hz_virt_forget(struct hz_fs *fs, struct hz_node *n, uint64_t nlookup);
/* A file of /.hozen/ that hz_virt_open opened is closed. */
void hz_virt_release(struct hz_fs *fs, struct hz_node *n);
/*
 * A version v of path was recorded, its record's time `time`: add it to
 * /.hozen/versions (a failure is logged; the next mount has it).
 */
void hz_virt_versioned(struct hz_fs *fs, const char *path,
		       const struct vs_version *v, const char *time);

/* record.c */
/*
 * The actor of a request, read from /proc as the request comes: the
 * process (tgid), its comm and exe, and the thread when it is not the
 * main one; uid and gid as the request gives them.
 */
void hz_actor(struct hz_fs *fs, fuse_req_t req, hc_actor *out);
/* Set path (or path_b64 for names that are not UTF-8) in fields. */
int hz_json_path(json_t *fields, const char *key, const char *path);
/* A name of fid now (the model's first), malloc'd; NULL if it has none. */
char *hz_fid_path(struct hz_fs *fs, uint64_t fid);
/* Set "path" (a name of fid, if it has one) and "fid" in fields. */
int hz_json_file(json_t *fields, struct hz_fs *fs, uint64_t fid);
/*
 * Append a record and apply it to the model, in the chain's order;
 * fields is consumed.  0 or a negative HC_E* code (nothing appended).
 */
int hz_record(struct hz_fs *fs, const char *type, const hc_actor *actor,
	      json_t *fields, uint64_t *seq_out);
/*
 * The "time" member of the last record this thread appended with
 * hz_record ("" before the first).
 */
const char *hz_record_time(void);
/* Record a refused attempt (op, path, fid or TM_NONE, errno): -err. */
int hz_refuse(struct hz_fs *fs, const hc_actor *actor, const char *op,
	      const char *path, uint64_t fid, int err);
/*
 * The act of record `of` did not happen (errno err): record that (the
 * model undoes it) and return -err.  path and to name the entries it
 * was about (may be NULL), fid the file (or TM_NONE).
 */
int hz_failed(struct hz_fs *fs, const hc_actor *actor, uint64_t of,
	      const char *op, int err, const char *path, const char *to,
	      uint64_t fid);
/* Map an HC_E* code to a negative errno for FUSE. */
int hz_errno(int code);

/* versioning (ops.c) */
/* Version node's current content if dirty (before it can be lost). */
int hz_preserve(struct hz_fs *fs, struct hz_node *n, const hc_actor *actor,
		const char *why);
/*
 * Version every file written since its last version (at unmount: the
 * kernel may drop the RELEASE of a file closed just before, so its
 * close never came).  The daemon is the actor; why says when.
 */
int hz_version_dirty(struct hz_fs *fs, const char *why);
/* Commit staged versions now (records up to the current head). */
int hz_commit(struct hz_fs *fs, const char *why);

extern const struct fuse_lowlevel_ops hz_ops;

#endif
