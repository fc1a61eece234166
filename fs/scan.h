/*
 * scan.h - internal to fs/: what a reading of the chain learns about the
 * files, for `hozen verify` (fs_verify) and for the daemon before it
 * mounts, so both read the records the same way.  No FUSE here.
 *
 * Fed every record in seq order (fs_scan_record), it keeps the model of
 * the live tree (model.h), the state git's refs must be in (the last
 * recorded commit of main and of refs/hozen/versions), the sessions of
 * the mount (whether the last one ended with an unmount), the seal the
 * last unmount left, and the versions recorded since the last commit;
 * with a repository it also checks every version's content and every
 * commit's trailer as they come.  What does not hold goes to findings.
 */
#ifndef HOZEN_FS_SCAN_H
#define HOZEN_FS_SCAN_H

#include <stdint.h>

#include "hashchain.h"
#include "model.h"
#include "versions.h"

#define FS_SEAL_FILE "seal" /* STORE/seal: the tree at the last unmount */

struct fs_scan {
	tm_model *model;       /* owned */
	hc_findings *findings; /* borrowed, may be NULL */
	vs_repo *vs;	       /* borrowed: check versions and commits */
	int check_git;	       /* versions and commits are in git */
	int check_content;     /* and every version's content (verify) */

	char main[41];	     /* the last commit record's commit, or "" */
	char versions[41];   /* its refs/hozen/versions commit, or "" */
	int versions_named;  /* the last commit record names `versions` */
	uint64_t covered;    /* records below it are in a recorded commit */
	uint64_t last_mount; /* seq of the last mount record (0: none) */
	int open;	     /* it has no unmount record after it */
	char seal[HC_HEX_LEN + 1]; /* the last unmount's seal, "" if none */
	uint64_t seal_seq;

	/* version records since the last commit record: {fid, blob, seq} */
	json_t *recent;
	json_t *missing; /* blob -> seq: not in git, unless declared lost */

	uint64_t records;
	uint64_t nversions; /* version records checked against git */
	uint64_t ncommits;  /* commit records checked against git */
};

int fs_scan_init(struct fs_scan *s, hc_findings *f, vs_repo *vs);
void fs_scan_release(struct fs_scan *s);
/* One record, in seq order (where: its location, for findings). */
int fs_scan_record(struct fs_scan *s, const hc_record *rec, const char *where);
/*
 * After the last record: acts that could not have happened, versions
 * git lacks that no version-lost record declares.
 */
int fs_scan_finish(struct fs_scan *s);

/*
 * The seal of the tree: for every regular file the model knows the
 * content of, the stat of its first name (inode, size, mtime, ctime),
 * one line per fid in fid order, into *out (malloc'd; *len).  The
 * daemon writes it to STORE/seal at unmount and names its SHA-256 in the
 * unmount record; at the next mount a file whose stat is still the
 * sealed one needs no reading to know it still holds its version.
 */
int fs_seal_make(tm_model *m, int treefd, char **out, size_t *len,
		 uint64_t *files);
/*
 * Load STORE/seal if its SHA-256 is hex; *out a table for fs_seal_same
 * (json object fid -> "ino size mtime ctime").  HC_EVERIFY if it does not
 * match, HC_ENOENT if missing.
 */
int fs_seal_load(int storefd, const char *hex, json_t **out);
/* 1 if st is what the seal says of fid. */
int fs_seal_same(json_t *seal, uint64_t fid, const struct stat *st);

/*
 * What refs/heads/main's tree lacks against the model (every name with
 * its file's last version; a file changed since its version and a
 * directory show nothing): fn(ctx, path, blob, git mode) for each name
 * whose blob or mode differs or that main lacks, fn(ctx, path, NULL, 0)
 * for each file main has that the model does not name.  Stops at fn's
 * first non-zero return, which it returns.
 */
int fs_snapshot_diff(tm_model *m, vs_repo *vs,
		     int (*fn)(void *ctx, const char *path, const char *blob,
			       unsigned mode),
		     void *ctx);

#endif
