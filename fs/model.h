/*
 * model.h - the live tree as the chain's records determine it
 * (docs/FORMAT.md §8.5): what `hozen verify` compares STORE/tree/ with,
 * what the daemon keeps up to date as it records, and what crash
 * recovery reconciles the tree with.  Nothing here belongs to the FUSE
 * daemon: capture and verify use it without one.
 *
 * Every file the chain knows has an identity, its fid: the seq of the
 * record that created it (create, mkdir, mknod, symlink); 0 is the root
 * of the tree.  For each fid the model holds what the records say of it
 * (type, permission bits, owner, a symlink's target, a device number,
 * the SHA-256 of a regular file's content as its last version gives it,
 * or that it changed since), and the names: directory entries (the fid
 * of a directory, a name) -> fid.  Names are byte strings (no '/', no
 * NUL); paths are names joined by '/', relative to the root, "" for it.
 *
 * Records are applied in seq order with tm_apply.  A `failed` record
 * undoes the act of the record it names (the daemon appends one when an
 * act it recorded did not happen): the model keeps what it needs to undo
 * each of the last TM_UNDO_DEPTH acts.  Records that do not fit (a
 * rename of a name that does not exist, an unlink of a directory) are
 * findings unless a `failed` record names them.
 *
 * Not thread-safe: the caller serialises.  Errors follow hashchain's
 * convention (0 or a negative HC_E* code, message set).
 */
#ifndef HOZEN_FS_MODEL_H
#define HOZEN_FS_MODEL_H

#include <stdint.h>
#include <sys/types.h>

#include "hashchain.h"

typedef struct tm_model tm_model;

#define TM_ROOT	      0ull
#define TM_NONE	      UINT64_MAX	  /* no fid */
#define TM_UNDO_DEPTH 16384		  /* acts a `failed` record can undo */
#define TM_XATTR_FID  "trusted.hozen.fid" /* a tree file's fid, decimal */

/* What the model knows of a regular file's content. */
enum tm_content {
	TM_UNKNOWN = 0, /* no record says (written before records did) */
	TM_KNOWN,	/* its last version: sha256, size, blob */
	TM_PENDING, /* changed since its last version (or never versioned) */
};

/* What the model says of one fid (tm_get). */
struct tm_info {
	uint64_t fid;
	mode_t mode;   /* type and permission bits; 0 if unknown */
	int has_owner; /* uid and gid are known */
	uid_t uid;
	gid_t gid;
	dev_t rdev;  /* devices */
	int content; /* enum tm_content, regular files */
	uint8_t sha256[HC_HASH_LEN];
	uint64_t size;
	char blob[41];	/* the last version's (a symlink's target blob) */
	int locked;	/* WORM: a version under a WORM mount */
	uint32_t nlink; /* names it has */
	uint64_t versions;
};

int tm_new(tm_model **out);
void tm_free(tm_model *m);

/*
 * Apply record rec (the whole parsed record; seq and type as read, where
 * its location for findings) in seq order.  What does not fit the model
 * is added to f (which may be NULL) and otherwise skipped.  0, or
 * HC_ENOMEM.
 */
int tm_apply(tm_model *m, uint64_t seq, const char *type, json_t *rec,
	     const char *where, hc_findings *f);
/*
 * After the last record: every act that could not have happened and that
 * no `failed` record named is added to f.  Returns how many.
 */
size_t tm_finish(tm_model *m, hc_findings *f);

/* The fid path names now: 0, HC_ENOENT, HC_EINVAL for a bad path. */
int tm_lookup(tm_model *m, const char *path, uint64_t *fid);
/* What the model says of fid: 0 or HC_ENOENT. */
int tm_get(tm_model *m, uint64_t fid, struct tm_info *out);
/*
 * Every name of fid as a path (malloc'd, NULL-terminated array of
 * malloc'd strings, tm_paths_free); an empty array for a file with no
 * name (removed while open).  HC_ENOENT for an unknown fid.
 */
int tm_paths(tm_model *m, uint64_t fid, char ***out);
void tm_paths_free(char **paths);
/* Call fn for every fid (stops at fn's first non-zero return). */
int tm_foreach(tm_model *m, int (*fn)(void *ctx, const struct tm_info *i),
	       void *ctx);
/*
 * Call fn for every name below the directory path ("" for the root), a
 * directory before what it holds, with the path of each; stops at fn's
 * first non-zero return, which it returns.  0 if path is not a directory.
 */
int tm_walk(tm_model *m, const char *path,
	    int (*fn)(void *ctx, const char *path, const struct tm_info *i),
	    void *ctx);
/* Files and names in the model, and fids whose content is pending. */
void tm_counts(tm_model *m, uint64_t *files, uint64_t *names,
	       uint64_t *pending);
/* Lock fid (WORM): the daemon, as it versions under --worm. */
void tm_lock(tm_model *m, uint64_t fid);
/* The seq of the last `mount` record applied (0 if none). */
uint64_t tm_last_mount(tm_model *m);

/*
 * Undo the act of record seq in the model only (crash recovery trying
 * whether "it did not happen" explains the tree): 0, HC_ENOENT if seq is
 * not among the acts the model can undo, HC_EINVAL if a later record
 * changed what it changed.  A `failed` record for seq applied later
 * does nothing more.
 */
int tm_revert(tm_model *m, uint64_t seq);
/* The kind of act record seq was ("create", "rename"...), or NULL. */
const char *tm_act_type(tm_model *m, uint64_t seq);

/* --------------------------------------------------------- the tree */

/* What tm_check_tree does besides comparing. */
struct tm_check_options {
	int hash;     /* compare regular files' content with their SHA-256 */
	int fix_fids; /* set a missing fid xattr (the daemon) */
	/*
	 * With hash: a file's content is not hashed when skip_hash says so
	 * (the daemon's seal shows it unchanged since it was checked).
	 */
	int (*skip_hash)(void *ctx, uint64_t fid, const struct stat *st);
	void *ctx;
	/*
	 * Called for each difference with the seq of the last record that
	 * changed the entry or file concerned (0 if none), its path and
	 * kind (TM_DIFF_*), before it is added to the findings; returning 1
	 * leaves it out of them.
	 */
	int (*on_diff)(void *ctx, uint64_t seq, const char *path, int kind);
};

/* Kinds of difference (tm_check_options.on_diff). */
enum {
	TM_DIFF_NAME = 1, /* a name missing, unexplained, or of another type */
	TM_DIFF_ATTR,	  /* permission bits or owner */
	TM_DIFF_OTHER,	  /* content, target, device, hard links, fid mark */
};

/*
 * The seq of the latest act among the last TM_UNDO_DEPTH that changed
 * the name path (created, removed or moved it), or 0.
 */
uint64_t tm_last_change(tm_model *m, const char *path);

/* What tm_check_tree found. */
struct tm_check_report {
	uint64_t entries; /* names of the tree checked */
	uint64_t hashed;  /* regular files whose content was hashed */
	uint64_t bytes;	  /* bytes hashed */
	uint64_t pending; /* files changed since their last version */
	uint64_t diffs;	  /* differences found */
};

/*
 * Compare the tree at treefd (STORE/tree) with the model: every name,
 * its type, permission bits, owner, a symlink's target, a device's
 * number, regular files' content (opts->hash), hard links; nothing on
 * disk that the model lacks and nothing the model has that is missing.
 * Differences go to f ("tree/PATH" as where, PATH escaped).  0, or a
 * negative code when the tree could not be read.
 */
int tm_check_tree(tm_model *m, int treefd, const struct tm_check_options *o,
		  hc_findings *f, struct tm_check_report *out);

/*
 * The path a record member names: key ("path", "to", "target") or
 * key_b64 (base64 of bytes that are not UTF-8), into *out (malloc'd,
 * NUL-terminated).  HC_ENOENT if neither is there, HC_EFORMAT if
 * malformed.
 */
int tm_record_path(json_t *rec, const char *key, char **out);
/*
 * openat(dirfd, path, flags) for paths of any length (beyond PATH_MAX),
 * walking directories without following symlinks.  -1 and errno.
 */
int tm_openat(int dirfd, const char *path, int flags);
/* path with control characters and bytes that are not UTF-8 as \xNN. */
char *tm_printable(const char *path);

#endif
