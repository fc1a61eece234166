/*
 * fs.h - the evidence filesystem: `hozen mount` serves a store's live tree
 * through FUSE, records every change in the store's chain and keeps every
 * version of every file in the store's git repository.
 *
 * The policy (docs/FORMAT.md, "The filesystem"):
 *  - preserve (default): changes and removals apply to the live view only;
 *    a file's content is versioned in git before anything can replace or
 *    remove it, so every version stays reachable;
 *  - worm: a file is immutable once closed (EPERM for writes, truncation,
 *    removal, renaming and attribute changes), like S3 Object Lock's
 *    compliance mode;
 *  - read_only: a write blocker, EROFS for every change.
 * Every refused attempt is recorded.
 */
#ifndef HOZEN_FS_H
#define HOZEN_FS_H

#include <stdint.h>

#include "hashchain.h"

struct fs_options {
	const char *store;	/* store directory */
	const char *mountpoint; /* where to mount */
	int foreground;		/* do not daemonize */
	int read_only;		/* write blocker */
	int worm;		/* files immutable once closed */
	int log_reads;		/* record every open for reading */
	int force;		/* mount even if verification fails */
	int nonempty;		/* mount over a directory that is not empty */
	int debug;		/* FUSE debug output */
	/*
	 * Do not serve getxattr/listxattr: the kernel asks for
	 * security.capability before every write(2) until a filesystem
	 * says it has no xattrs at all; this makes small writes about
	 * three times faster, and xattrs unreadable through the mount
	 * (setting them still works and is recorded).
	 */
	int no_xattr_read;
	/*
	 * Let the kernel cache writes (FUSE writeback cache): small writes
	 * reach the daemon merged, later, through whichever handle the
	 * kernel picks, so a write record names the opener of that handle
	 * and covers what the kernel merged, not one write(2) of one
	 * process.  Off by default: each write(2) is recorded as it is
	 * made, naming the process that made it.
	 */
	int writeback;
	const char *passphrase;	      /* of the signing key, or NULL */
	unsigned commit_every;	      /* versions per commit (0: 256) */
	unsigned commit_ms;	      /* at most this long before a commit
					 (0: 1000) */
	unsigned checkpoint_s;	      /* seconds between checkpoints (0: 60) */
	uint64_t lfs_threshold;	      /* versions this large go to LFS */
	const char *const *fuse_args; /* extra -o options, NULL-terminated */
};

/*
 * Mount the store and serve it until it is unmounted (fusermount3 -u,
 * umount) or the daemon gets SIGTERM/SIGINT/SIGHUP; then flush
 * everything, commit, checkpoint and record the unmount.  Before
 * mounting: recover from a crash (torn log tail, versions closed but not
 * committed) and verify the store (refusing a store that fails unless
 * force, which is recorded).  Unless foreground, it daemonizes once the
 * mount is up, and logs to syslog.  Returns 0 or a negative HC_E* code
 * with the message set.
 */
int fs_mount(const struct fs_options *opts);

/*
 * Unmount a hozen mount and wait (at most timeout_s) until its daemon has
 * committed, checkpointed and released the store.
 */
int fs_unmount(const char *mountpoint, unsigned timeout_s);

/* What fs_verify found. */
struct fs_verify_report {
	int ok;		   /* everything agrees */
	int live;	   /* the store is mounted: its tree was not checked */
	uint64_t versions; /* version records checked against git */
	uint64_t commits;  /* commit records checked against git */
	uint64_t files;	   /* names of the live tree checked */
	uint64_t hashed;   /* live files whose content was hashed */
	uint64_t bytes;	   /* bytes of it */
	uint64_t pending;  /* files written since their last version */
	uint64_t problems; /* findings added */
	int64_t fail_seq;  /* the first finding's record, or -1 */
	char where[512];   /* its location: record, git, tree/PATH */
	char reason[512];
};

/*
 * Check what the chain says of files (run after the chain verified):
 * every version record names content in git with the SHA-256 and size it
 * gives (blob or LFS object), every commit record names a commit covering
 * the records it claims, and the live tree is what the records make it
 * (docs/FORMAT.md §8.5): every name, type, mode, owner, symlink target
 * and hard link, every file's content its last version, nothing the
 * records do not explain; the seal of the last unmount.  A mounted store
 * is checked but for its tree (report->live).  Returns 0 with a summary
 * in *out and every problem added to findings (which may be NULL), or a
 * negative code when it could not check.
 */
int fs_verify(const char *store, hc_findings *findings,
	      struct fs_verify_report *out);

#endif
