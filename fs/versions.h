/*
 * versions.h - internal to fs/: the store's git repository of file
 * versions (STORE/git, a bare repository written with libgit2).
 *
 * A version is the content of a file at one moment (a close or fsync
 * through the mount, a capture).  Small content is a git blob; content of
 * at least `lfs_threshold` bytes is stored the way Git LFS stores it: a
 * pointer blob ("version https://git-lfs.github.com/spec/v1\noid
 * sha256:HEX\nsize N\n") in git, the content itself as
 * STORE/git/lfs/objects/HEX[0:2]/HEX[2:4]/HEX.  Content git already has
 * (same blob id / same LFS oid) is not stored again.
 *
 * Commits snapshot a tree of paths (relative to the mount root, no
 * leading '/') to blobs; staged changes are kept in memory until
 * vs_commit().  Each commit's message names the range of chain records it
 * covers (trailer "Hozen-Records: FIRST-LAST").
 *
 * New objects are not written one file each: until the next commit they
 * are held in memory, their blobs also appended to a journal
 * (STORE/git/hozen-journal), and each commit writes its batch as one
 * pack, durable before any ref names it.  A crash leaves the journal;
 * vs_open() reads it back, and vs_sync() makes it durable.
 *
 * Content that would itself read back as an LFS pointer is always
 * stored as LFS, whatever its size, so that a blob is an LFS pointer
 * exactly when it parses as one.
 *
 * Every version of a batch (staged, or only stored: a file with no name
 * left, a path git refuses) is also kept reachable from the ref
 * refs/hozen/versions, whose commits' trees name each blob of their batch
 * by its id, so that a version replaced or removed before the batch's
 * commit, or never named, is never garbage to git.
 *
 * Thread safety: every function may be called from several threads; the
 * repository serialises internally (one lock around libgit2; hashing and
 * copying LFS content run outside it).  Errors use hashchain's convention.
 */
#ifndef HOZEN_FS_VERSIONS_H
#define HOZEN_FS_VERSIONS_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "hashchain.h"

typedef struct vs_repo vs_repo;

#define VS_REF "refs/heads/main" /* the snapshots (first-parent history) */

#define VS_LFS_THRESHOLD (1u << 20)  /* default lfs_threshold */
#define VS_BLOB_MAX	 (64u << 20) /* largest blob read back */
#define VS_POINTER_MAX	 1024	     /* largest blob read as an LFS pointer */

/*
 * With opts NULL: threshold 1 MiB, fsync on.  A zeroed struct means fsync
 * OFF.  fsync of git's own files is a process-wide libgit2 setting: once
 * a repository is opened with fsync, every repository in the process
 * fsyncs its git objects and refs (LFS objects follow each repository's
 * own setting).
 */
struct vs_options {
	uint64_t lfs_threshold; /* 0: 1 MiB; at most VS_BLOB_MAX */
	int fsync;		/* fsync objects and refs */
};

/* A stored version. */
struct vs_version {
	uint64_t size;
	uint8_t sha256[HC_HASH_LEN];
	char blob[41]; /* git blob id (the pointer blob for LFS), hex */
	int lfs;       /* stored as an LFS object */
	int existed;   /* git already had it */
	int linked;    /* the LFS object is the file itself (hard link) */
};

/*
 * Open the repository at STORE/git (storefd), creating a bare repository
 * (HEAD -> refs/heads/main) there if the directory is empty, and
 * STORE/git/lfs/objects if missing.  STORE/git must exist (HC_ENOENT).
 * opts may be NULL.  HC_EINVAL for a threshold above VS_BLOB_MAX.
 */
int vs_open(vs_repo **out, int storefd, const struct vs_options *opts);
/*
 * Open the repository at STORE/git for reading (verification), changing
 * nothing on disk; storing and staging then fail with HC_EINVAL.  Safe on
 * a live store (a daemon writing it): libgit2 is given only the objects
 * (no config, refs, alternates or grafts are read through it), and the
 * journal is indexed, not loaded (see vs_check_version).  HC_ENOENT if
 * STORE/git is missing or empty (never mounted), HC_EFORMAT if it holds
 * something that is not a repository, or anything in it (but under
 * lfs/) that is neither a directory nor a regular file (a FIFO would
 * block git, a symlink lead out of the store), HC_EBUSY if the journal
 * kept changing while it was read.
 *
 * vs_open() refuses the same, and also (HC_EFORMAT) a config with any
 * setting vs_check_refs() would report, a commondir or
 * objects/info/alternates: libgit2 reads those when it opens a
 * repository for writing (an include of a FIFO would block it).
 */
int vs_open_existing(vs_repo **out, int storefd);

/*
 * Store the first `size` bytes of the open file fd as a version.  If
 * sha256 is non-NULL it is the known SHA-256 of exactly those bytes
 * (hashed while they streamed past) and the content is not re-hashed
 * for LFS; otherwise it is computed.  For a blob the content is always
 * hashed, and HC_EVERIFY is returned if it does not match sha256.  Reads
 * fd (which must be readable) with pread or copy_file_range (its offset is
 * not used); memory stays bounded (1 MiB chunks) whatever the size.  The
 * caller keeps the content still while it is stored.  HC_EFORMAT if fd
 * holds fewer than size bytes.
 *
 * An LFS object already present with another size is moved aside
 * (.damaged-HEX-...) and replaced.
 */
int vs_store_fd(vs_repo *r, int fd, uint64_t size, const uint8_t *sha256,
		struct vs_version *out);
/*
 * vs_store_fd, but content stored as LFS is hard-linked into
 * lfs/objects instead of copied (out->linked): versioning a large file
 * costs no copy.  The caller must then never let the file change in
 * place: it replaces it with a copy before the next write (the
 * filesystem does, see fs/ops.c).  Falls back to a copy when it cannot
 * link.
 */
int vs_store_fd_link(vs_repo *r, int fd, uint64_t size, const uint8_t *sha256,
		     struct vs_version *out);
/*
 * 1 if the LFS object hex (64 hex digits) is the file st describes (a
 * version linked by vs_store_fd_link that still shares its blocks).
 */
int vs_lfs_is(vs_repo *r, const char *hex, const struct stat *st);
/*
 * Give the LFS object hex blocks of its own before the file fd, which it
 * shares them with, changes: copy fd's content to a new file, make it
 * durable and put it in the object's place (the directory synced too).
 * Does nothing if they no longer share.  The caller keeps fd's content
 * still meanwhile.
 */
int vs_lfs_unshare(vs_repo *r, const char *hex, int fd);
/*
 * Store a buffer (small content: symlink targets, command output); as
 * LFS if len >= the threshold.
 */
int vs_store_buf(vs_repo *r, const void *buf, size_t len,
		 struct vs_version *out);

/*
 * Stage path -> blob (mode 0100644, 0100755 or 0120000) for the next
 * commit.  Later changes to a path win over earlier ones; an upsert
 * replaces whatever stands in its way (a directory where the file goes,
 * a file where one of its directories goes).  path: non-empty
 * components separated by single '/', none "." or "..", no leading or
 * trailing '/'.  HC_EINVAL for a bad path or mode; HC_ENOENT if blob is
 * not in the repository.  A path with a name git refuses in a tree
 * (".git", and its NTFS/HFS aliases such as "git~1") is not staged
 * (returns 0): snapshots leave it out, refs/hozen/versions keeps its
 * versions, and the chain names them.
 */
int vs_stage(vs_repo *r, const char *path, const char *blob, unsigned mode);
/* 1 if git can hold path in a tree (vs_stage stages it), else 0. */
int vs_path_storable(vs_repo *r, const char *path);
/*
 * Stage the removal of path (a file or a whole directory) from the tree.
 * Removing a path that is not in the tree at commit time does nothing.
 */
int vs_stage_remove(vs_repo *r, const char *path);
/* Content of at least this many bytes is stored as LFS. */
uint64_t vs_lfs_threshold(vs_repo *r);
/* Number of staged changes not yet committed. */
size_t vs_staged(vs_repo *r);
/*
 * Staged changes and new blobs not yet committed: what vs_commit()
 * commits (a version no path names, such as one written after its file's
 * last name went, is committed too: refs/hozen/versions keeps it).
 */
size_t vs_pending(vs_repo *r);
/*
 * Bytes of new blobs since the last commit: they are held in memory (and
 * in the journal) until vs_commit() packs them, so commit before this
 * grows large.
 */
uint64_t vs_batch_bytes(vs_repo *r);
/*
 * What vs_open() read back from the journal a crash left: blobs, and
 * bytes of an incomplete or malformed tail (kept aside as
 * STORE/git/hozen-journal.torn-TIME).
 */
void vs_journal_replayed(vs_repo *r, size_t *blobs, uint64_t *torn);
/*
 * Parse one journal entry at buf (len bytes available): "blob SIZE\0"
 * (SIZE decimal, no leading zero, at most VS_BLOB_MAX) then SIZE bytes.
 * 1 with *hdr (the header's length, with its NUL) and *size; 0 if the
 * bytes end before the entry does (a torn tail); HC_EFORMAT if it is
 * malformed.
 */
int vs_journal_entry(const void *buf, size_t len, size_t *hdr, uint64_t *size);

/*
 * Commit the staged changes on top of the current HEAD (refs/heads/main)
 * with a message naming records first..last; commit_out gets the commit
 * id (hex).  versions_out (may be NULL) gets the commit refs/hozen/versions
 * names afterwards: the one made for this batch, or the unchanged one
 * when the batch only removes paths ("" if the ref does not exist).
 * With nothing staged and no new blob, does nothing and returns 1
 * (outputs untouched).
 * summary is one non-empty line; the message is "SUMMARY\n\nHozen-Records:
 * FIRST-LAST\n", author and committer "hozen <hozen@localhost>", now.
 * On failure the staged changes are kept.
 */
int vs_commit(vs_repo *r, uint64_t first, uint64_t last, const char *summary,
	      char commit_out[41], char versions_out[41]);

/*
 * Check STORE/git's refs and files against what the chain records and
 * what hozen writes (FORMAT.md §8.2), adding to f (may be NULL) one
 * finding per problem, each naming the store-relative file concerned
 * ("git/config:3", "git/refs/tags/x", ...):
 *
 *  - HEAD is exactly the symbolic ref "ref: refs/heads/main";
 *  - refs/heads/main names exactly main_id (NULL: it must not exist),
 *    refs/hozen/versions exactly versions_id (NULL: not checked), as git
 *    reads them (the loose file, else the packed-refs entry; a packed
 *    entry a loose file shadows is ignored, as git ignores it);
 *  - no other ref: no other file under refs/ (files named *.lock are
 *    refs being written and git reads none), no other packed-refs entry,
 *    no pseudo-ref (FETCH_HEAD, ORIG_HEAD, any top-level upper-case
 *    name but HEAD);
 *  - no info/grafts, shallow, commondir, objects/info/alternates,
 *    http-alternates, commit-graph(s); nothing in hooks/ but *.sample
 *    files; info/ holds only exclude, objects/info/ only packs, and the
 *    top of git/ only HEAD, config, description, packed-refs, hooks/,
 *    info/, objects/, refs/, lfs/, hozen-journal(.torn-*) and *.lock;
 *  - config holds only blank lines, comments, the header [core] and the
 *    settings libgit2's bare init writes: repositoryformatversion = 0,
 *    bare = true, filemode = true|false, symlinks = false, ignorecase =
 *    true, precomposeunicode = true|false (anything else, such as
 *    core.pager, core.hooksPath, core.fsmonitor, core.sshCommand,
 *    alias.*, include.*, is a finding: git would act on it);
 *  - with history, every commit of the first-parent history of
 *    refs/heads/main reads, has at most one parent and ends in its
 *    trailer "Hozen-Records: FIRST-LAST", and every tree it reaches
 *    reads; without, the commit main names exists.
 *
 * Returns the number of findings added (0: no problem), or a negative
 * code when it could not check (HC_EINVAL for a main_id or versions_id
 * that is not 40 lower-case hex digits, I/O errors).  Cost: one read of
 * each commit of main and of each distinct tree they reach (blobs are
 * not read), so it grows with the tree data of the whole history: for
 * 100,000 files in 100 directories, 0.13 s committed in 10 commits, 6 to
 * 9 s in 400 commits that each rewrote every directory (about 1.4 GB of
 * trees to inflate and hash); see test_refs_cost().
 *
 * On a live store the daemon moves refs/heads/main before it records
 * the commit: read main_id after the ref, or expect a finding.
 */
int vs_check_refs(vs_repo *r, const char *main_id, const char *versions_id,
		  int history, hc_findings *f);

/*
 * Open version content for reading: for an LFS pointer blob, an fd on
 * the LFS object (O_RDONLY, O_NOFOLLOW, O_NONBLOCK); for another blob, a
 * sealed read-only memfd holding it.  *size_out (may be NULL) gets the
 * content size.  The caller closes *fd_out.  HC_ENOENT if the blob or
 * LFS object is missing, HC_EFORMAT if blob is not a blob or larger than
 * VS_BLOB_MAX, HC_EVERIFY if the LFS object's size is not the pointer's
 * or it is not a regular file (a FIFO, a symlink), HC_EBUSY if the
 * journal kept changing.  Used by verification and /.hozen/.
 */
int vs_open_version(vs_repo *r, const char *blob, int *fd_out,
		    uint64_t *size_out);

/*
 * Check a version the chain names: blob exists (for LFS, the pointer
 * parses and the object exists) and its content has SHA-256 sha256 and
 * the given size.  HC_EVERIFY with a message naming what differs (also
 * for a missing blob or object, or an LFS object that is not a regular
 * file), HC_EFORMAT for a malformed blob id, other codes when it could
 * not check (HC_EBUSY: the journal kept changing).  Reads the content
 * once.
 *
 * Opened with vs_open_existing(), a blob counts as present when it is
 * in git or in the journal (written, not yet packed), as the journal is
 * when the blob is looked for: a live daemon may append to the journal
 * and a commit empty it (packing its blobs first) at any time.  The
 * same holds for vs_open_version() and vs_has().
 */
int vs_check_version(vs_repo *r, const char *blob, uint64_t size,
		     const uint8_t sha256[HC_HASH_LEN], int lfs);

/*
 * The raw message of commit (40 lower-case hex digits) into *out
 * (malloc'd, NUL-terminated; the caller frees it).  HC_ENOENT if there is
 * no such object, HC_EFORMAT for a malformed id or an object that is not
 * a commit.
 */
int vs_commit_message(vs_repo *r, const char *commit, char **out);

/* Accepts NULL.  Staged changes not committed are dropped. */
/*
 * With opts->fsync off, objects are written without an fsync each (an
 * fsync per small object caps versioning near 1,300/s); vs_sync makes
 * every object written so far durable at once (syncfs), and vs_commit
 * does so before and after it commits.
 */
int vs_sync(vs_repo *r);
/*
 * Parse a Git LFS pointer exactly as hozen writes it (version, oid
 * sha256, size lines, nothing else); HC_EFORMAT saying what is wrong.
 */
int vs_parse_pointer(const char *text, size_t len, uint8_t sha[HC_HASH_LEN],
		     uint64_t *size);
/*
 * The commit refs/heads/main names (read as git reads it), in id_out; 1
 * if there is none, HC_EFORMAT if it is not a ref git can read.
 */
int vs_head(vs_repo *r, char id_out[41]);
/*
 * Call fn for every file of the tree refs/heads/main names (path, blob
 * id in hex, git mode), stopping at fn's first non-zero return (which
 * is returned); nothing if there is no commit.  fn must not call back
 * into the repository.
 */
int vs_head_foreach(vs_repo *r,
		    int (*fn)(void *ctx, const char *path, const char *blob,
			      unsigned mode),
		    void *ctx);
/* 1 if git has the object blob (hex). */
int vs_has(vs_repo *r, const char *blob);

void vs_close(vs_repo *r);

/*
 * For fs/ code that calls libgit2 itself: set our message from libgit2's
 * last error ("WHAT: libgit2's message", WHAT printf-style) and return
 * the code for the libgit2 return code gerr and error class: HC_ENOENT
 * (GIT_ENOTFOUND), HC_EEXIST, HC_EINVAL, HC_EBUSY, HC_ESYS (OS errors,
 * errno kept), HC_ENOMEM, otherwise HC_EFORMAT.
 */
int vs_git_error(int gerr, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
