/*
 * history.h - internal to fs/: the past as the store keeps it, which
 * /.hozen/commits/ and /.hozen/versions/ show (virt.c).
 *
 *  - Commits: the first-parent history of VS_REF and the trees of its
 *    commits, read through a read-only libgit2 handle of this module's
 *    own on STORE/git.  The ref is read again at every call that lists
 *    or finds commits, so commits the daemon makes appear at once.
 *  - Versions: an index of every `version` record of the chain by the
 *    path it names, in chain order: built from the chain at mount
 *    (hs_load) and added to as the daemon records versions (hs_add).
 *    Paths are kept as a tree of their components (each name once per
 *    directory); a version takes 40 bytes (blob id as 20 bytes, size,
 *    time).  Nothing is ever removed: a path that had a version keeps
 *    it, whatever happened to the file since.
 *
 * Content is not read here: vs_open_version() opens a blob's content
 * (resolving LFS pointers) through the store's own handle.
 *
 * Thread safety: every function may be called from several threads.  The
 * git handle has a mutex of its own, the index a rwlock; callbacks run
 * with that lock held and must not call back into this module.  Errors
 * follow hashchain's convention (0 or a negative HC_E* code, message
 * set).
 */
#ifndef HOZEN_FS_HISTORY_H
#define HOZEN_FS_HISTORY_H

#include <stdint.h>
#include <time.h>

#include "hashchain.h"

#define HS_OID_LEN 20 /* a git object id (SHA-1), binary */

typedef struct hs_history hs_history;
/* A path of the index: a directory, a file with versions, or both. */
typedef struct hs_path hs_path;

/* What a name is. */
enum hs_kind {
	HS_DIR = 1, /* a tree; in the index, a path below which are versions */
	HS_FILE,    /* a regular file (git mode 100644), a version */
	HS_EXEC,    /* a regular file with git mode 100755 */
	HS_LINK,    /* a symlink (git mode 120000): its target is its blob */
};

/* One version of the index, as its record gives it. */
struct hs_version {
	uint8_t blob[HS_OID_LEN]; /* the git blob (an LFS pointer for LFS) */
	uint64_t size;		  /* the content's size */
	struct timespec time;	  /* the record's "time" */
};

/* An entry of a commit's tree. */
struct hs_entry {
	int kind;		 /* enum hs_kind */
	uint8_t oid[HS_OID_LEN]; /* the tree or the blob */
	uint64_t size; /* content size (of the LFS object for a pointer) */
};

/*
 * Open STORE/git (storefd is the store directory) read-only, with an
 * empty index.  HC_ENOENT if STORE/git is missing, HC_EFORMAT if it is
 * not a git repository.
 */
int hs_open(hs_history **out, int storefd);
/* Accepts NULL. */
void hs_free(hs_history *h);

/* ------------------------------------------------------------ commits */

/*
 * The commit VS_REF names, as 40 lower-case hex digits and its commit
 * time.  Returns 0, or 1 if there is no commit yet.
 */
int hs_latest(hs_history *h, char hex[41], int64_t *time_out);
/*
 * Call fn(ctx, hex, time) for each commit of VS_REF's first-parent
 * history, newest first; a non-zero return from fn stops the walk and is
 * returned.  The history is cached and only its new commits are read.
 */
int hs_commits_each(hs_history *h,
		    int (*fn)(void *ctx, const char *hex, int64_t time),
		    void *ctx);
/*
 * The commit named by hex (40 lower-case hex digits) if it is in VS_REF's
 * first-parent history: its root tree and commit time.  HC_ENOENT if it
 * is not (or hex is not such a name).
 */
int hs_commit(hs_history *h, const char *hex, uint8_t tree[HS_OID_LEN],
	      int64_t *time_out);

/* --------------------------------------------------------------- trees */

/*
 * The entry name of tree, with the size of a blob's content (reading
 * blobs small enough to be an LFS pointer).  HC_ENOENT if tree has no
 * such entry or only one hozen does not show (a submodule); HC_EFORMAT
 * if tree or the blob is missing from git or malformed.
 */
int hs_tree_entry(hs_history *h, const uint8_t tree[HS_OID_LEN],
		  const char *name, struct hs_entry *out);
/*
 * Call fn(ctx, name, kind) for each entry of tree that hozen shows, in
 * git's order; a non-zero return from fn stops and is returned.
 */
int hs_tree_each(hs_history *h, const uint8_t tree[HS_OID_LEN],
		 int (*fn)(void *ctx, const char *name, int kind), void *ctx);

/* ------------------------------------------------------------- versions */

/*
 * Add every `version` record of the chain of the store at storefd to the
 * index, in chain order.  A record the index cannot hold (no path, a
 * path with an empty, "." or ".." component, a malformed blob, size or
 * time) is skipped and counted in *skipped (may be NULL); nothing the
 * daemon writes is such.  Fails only when the chain cannot be read.
 */
int hs_load(hs_history *h, int storefd, uint64_t *skipped);
/*
 * Add one record to the index as hs_load does (a version record; others
 * are ignored), for a caller that reads the chain itself.  HC_EINVAL for
 * a version record without a usable path, blob, size or time.
 */
int hs_load_record(hs_history *h, const hc_record *rec);
/*
 * Add a version of path (relative to the mount root, byte-exact as the
 * record names it): blob (40 hex digits), the content's size and the
 * record's time (RFC 3339 UTC as records give it, e.g.
 * "2026-11-22T01:53:22.498740444Z").  HC_EINVAL for a bad path, blob or
 * time; HC_ENOMEM.
 */
int hs_add(hs_history *h, const char *path, const char *blob, uint64_t size,
	   const char *time);
/* The index's root (the mount root).  Paths are never freed or moved. */
const hs_path *hs_root(hs_history *h);
/*
 * Look up name in the index's directory dir: "NAME@N" is version N (from
 * 1, in chain order) of the file NAME in dir: *v is filled, HS_FILE
 * returned.  Otherwise NAME is a directory if some version lies below
 * it: *sub is set, HS_DIR returned.  (A directory whose own name ends in
 * "@N" is hidden by version N of a file of the base name, if there is
 * one.)  HC_ENOENT if neither.
 */
int hs_lookup(hs_history *h, const hs_path *dir, const char *name,
	      const hs_path **sub, struct hs_version *v);
/*
 * Call fn(ctx, name, kind) for each entry of dir: NAME (HS_DIR) for each
 * directory, NAME@1 ... NAME@K (HS_FILE) for the versions of each file,
 * in the order the index first saw them; a non-zero return from fn stops
 * and is returned.
 */
int hs_dir_each(hs_history *h, const hs_path *dir,
		int (*fn)(void *ctx, const char *name, int kind), void *ctx);
/* The number of versions in the index. */
uint64_t hs_versions(hs_history *h);

#endif
