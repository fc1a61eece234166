/*
 * hashchain.h - the record log, its Merkle tree, signed checkpoints and
 * proofs: the source of truth of a hozen store.
 *
 * The byte-level format is specified in docs/FORMAT.md; this header is the
 * contract of the C interface.  Conventions:
 *
 *  - Functions return 0 on success or a negative HC_E* code, and set a
 *    one-line, thread-local message where the error is found
 *    (hc_error_message()).  Outputs are untouched on failure.
 *  - The caller owns what comes back through a `**out` parameter and frees
 *    it with the matching _free(); every _free() accepts NULL.  A returned
 *    `const` pointer is borrowed from its object.
 *  - Nothing in this module prints or exits.
 */
#ifndef HOZEN_HASHCHAIN_H
#define HOZEN_HASHCHAIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <jansson.h>

#define HC_FORMAT_VERSION 1
#define HC_HASH_LEN	  32
#define HC_HEX_LEN	  64
/* Largest record line accepted, without its newline. */
#define HC_RECORD_MAX (1u << 20)

/* ---------------------------------------------------------------- errors */

enum hc_error {
	HC_OK = 0,
	HC_ESYS = -1,	 /* a system call failed; errno is kept */
	HC_EINVAL = -2,	 /* bad argument from the caller */
	HC_EFORMAT = -3, /* malformed input (file, record, key, proof) */
	HC_EVERIFY = -4, /* evidence fails verification */
	HC_ETORN = -5,	 /* the log ends in a torn (incomplete) line */
	HC_ENOMEM = -6,
	HC_ECRYPTO = -7, /* OpenSSL failed */
	HC_ENOENT = -8,	 /* a required file or item does not exist */
	HC_EEXIST = -9,	 /* refusing to overwrite */
	HC_EBUSY = -10,	 /* the store is locked by another writer */
};

/* The message of the last error set on this thread ("" if none). */
const char *hc_error_message(void);
/* The errno saved with the last HC_ESYS on this thread. */
int hc_error_errno(void);
/*
 * Set the thread's message (printf-style) and return `code`, so that
 * `return hc_error_set(HC_EFORMAT, "...")` reads well.  HC_ESYS appends
 * strerror(errno) and saves errno.
 */
int hc_error_set(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * Put context before the thread's current message ("what: message") and
 * return code; errno and the message's own detail are kept.
 */
int hc_error_prefix(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Turn OpenSSL's error queue into our message (and clear the queue). */
int hc_error_openssl(const char *what);
/* Exit code hozen documents for a code: 0, 1 (HC_EVERIFY, HC_ETORN) or 2. */
int hc_error_exit_code(int code);

/* ------------------------------------------------------- durable file I/O */

/*
 * All disk writes of hozen go through these, so that crash and fault tests
 * hit one layer.  Paths are opened with O_NOFOLLOW and O_CLOEXEC.
 */

/* Write all of buf to fd (retrying short writes and EINTR). */
int hc_write_all(int fd, const void *buf, size_t len);
/* Read exactly len bytes at offset; HC_EFORMAT on a short file. */
int hc_pread_all(int fd, void *buf, size_t len, off_t off);
/*
 * Atomically replace path (relative to dirfd, or AT_FDCWD) with buf:
 * write a temporary file, fsync it, rename it over path, fsync the
 * directory.  mode is the new file's mode.
 */
int hc_atomic_write(int dirfd, const char *path, const void *buf, size_t len,
		    mode_t mode);
/* Create path exclusively with mode, write buf, fsync file and directory. */
int hc_create_file(int dirfd, const char *path, const void *buf, size_t len,
		   mode_t mode);
/* fsync the directory dirfd/path ("." for dirfd itself). */
int hc_fsync_dir(int dirfd, const char *path);
/*
 * Open dirfd/path (dirfd AT_FDCWD for a path the user gave) with flags
 * (O_RDONLY, O_WRONLY | O_APPEND, O_RDWR) plus O_NONBLOCK, O_NOFOLLOW
 * and O_CLOEXEC, and check with fstat that it is a regular file: a FIFO,
 * device, socket or directory in its place is refused without blocking
 * (HC_EFORMAT, "'x' is not a regular file (a FIFO)"), a symlink too
 * (HC_EFORMAT), a missing file is HC_ENOENT.  O_NONBLOCK is cleared on
 * the returned descriptor *fd_out; its stat goes to *st_out (may be
 * NULL).
 */
int hc_open_regular(int dirfd, const char *path, int flags, int *fd_out,
		    struct stat *st_out);
/*
 * Read a whole regular file of at most max bytes into a NUL-terminated
 * buffer (*out, length *len_out).  Opens it with hc_open_regular: refuses
 * symlinks, FIFOs and other non-regular files, and larger files.
 */
int hc_read_file(int dirfd, const char *path, size_t max, char **out,
		 size_t *len_out);

/* ---------------------------------------------------------------- hashing */

/* SHA-256 of buf. */
int hc_sha256(const void *buf, size_t len, uint8_t out[HC_HASH_LEN]);
/* Lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void hc_hex(const uint8_t *buf, size_t n, char *out);
/*
 * FNV-1a (64-bit) of n bytes, continuing from h (HC_FNV1A_INIT to
 * start): for hash tables in memory, never for evidence.
 */
#define HC_FNV1A_INIT 0xcbf29ce484222325ull
uint64_t hc_fnv1a(uint64_t h, const void *p, size_t n);
/* Parse exactly 2n lower- or upper-case hex digits; HC_EFORMAT otherwise. */
int hc_unhex(const char *hex, uint8_t *out, size_t n);

typedef struct hc_sha256_ctx hc_sha256_ctx;
/* Streaming SHA-256 for large content. */
int hc_sha256_new(hc_sha256_ctx **out);
int hc_sha256_update(hc_sha256_ctx *c, const void *buf, size_t len);
/* Finish into out and reset the context for reuse. */
int hc_sha256_final(hc_sha256_ctx *c, uint8_t out[HC_HASH_LEN]);
void hc_sha256_free(hc_sha256_ctx *c);

/* ----------------------------------------------------------------- actors */

/*
 * Who caused an event: the process, as the kernel and /proc name it, and
 * the thread that made the request when it is not the process's main
 * thread.
 */
typedef struct hc_actor {
	uid_t uid;
	gid_t gid;
	pid_t pid;	 /* the process (its thread group id) */
	pid_t tid;	 /* the thread, if not the main one; else 0 */
	char comm[64];	 /* /proc/PID/comm, "" if unknown */
	char thread[64]; /* /proc/TID/comm of the thread (with tid) */
	char exe[4096];	 /* /proc/PID/exe target, "" if unknown */
} hc_actor;

/*
 * Fill *out for the task tid (a process or one of its threads; the FUSE
 * request names the thread) with the given uid and gid (the request
 * names them too); the process, comm and exe are read from /proc and
 * left empty when the task is gone.  Never fails.
 */
void hc_actor_from_pid(hc_actor *out, pid_t tid, uid_t uid, gid_t gid);
/*
 * The thread group (process) of task tid from /proc/TID/status, or 0 if
 * it is gone.
 */
pid_t hc_proc_tgid(pid_t tid);
/* The calling process itself. */
void hc_actor_self(hc_actor *out);

/* -------------------------------------------------------------------- keys */

/* An Ed25519 signing key or verifier key, with its signed-note name. */
typedef struct hc_key hc_key;

/* Generate a new Ed25519 key pair; name is the signed-note key name. */
int hc_key_generate(hc_key **out, const char *name);
/*
 * Load a private key from a PEM file (PKCS#8, optionally encrypted with
 * passphrase, which may be NULL).  Refuses a file readable by group or
 * others.  The key name is taken from name.
 */
int hc_key_load_private(hc_key **out, const char *path, const char *name,
			const char *passphrase);
/*
 * Load a verifier key from a file holding either a signed-note verifier
 * key line (NAME+KEYID+BASE64) or a PEM public key, named name.  A PEM key
 * loaded with name NULL is unnamed: it verifies the signature lines of a
 * note named by the note's origin (the public key is what is trusted).
 */
int hc_key_load_public(hc_key **out, const char *path, const char *name);
/* Parse a signed-note verifier key string "NAME+HEX8+BASE64". */
int hc_key_parse_vkey(hc_key **out, const char *vkey);
/*
 * Write the private key as PEM PKCS#8 (mode 0400, exclusive create),
 * encrypted with AES-256 when passphrase is non-NULL.
 */
int hc_key_save_private(const hc_key *key, int dirfd, const char *path,
			const char *passphrase);
/* Write the public key as PEM (0400, exclusive create). */
int hc_key_save_public_pem(const hc_key *key, int dirfd, const char *path);
/* The verifier key string (borrowed). */
const char *hc_key_vkey(const hc_key *key);
/* The key name (borrowed). */
const char *hc_key_name(const hc_key *key);
/* The 4-byte signed-note key id. */
uint32_t hc_key_id(const hc_key *key);
/* The raw 32-byte Ed25519 public key. */
const uint8_t *hc_key_public_raw(const hc_key *key);
/* 1 if the key holds a private part. */
int hc_key_has_private(const hc_key *key);
/* 1 if both keys have the same public key and name (or one is unnamed). */
int hc_key_equal_public(const hc_key *a, const hc_key *b);
/* 1 unless the key was loaded from PEM without a name. */
int hc_key_is_named(const hc_key *key);
/* A copy of key (sharing the OpenSSL key) named name. */
int hc_key_with_name(hc_key **out, const hc_key *key, const char *name);
/* Sign msg with Ed25519 into sig (64 bytes). */
int hc_key_sign(const hc_key *key, const void *msg, size_t len,
		uint8_t sig[64]);
/* 0 if sig is valid for msg, HC_EVERIFY if not. */
int hc_key_verify(const hc_key *key, const void *msg, size_t len,
		  const uint8_t sig[64]);
/* Wipes the private part. */
void hc_key_free(hc_key *key);

/* -------------------------------------------------------------- Merkle tree */

/* RFC 9162 hashes: leaf = SHA-256(0x00 || data), node = SHA-256(0x01||l||r). */
int hc_merkle_leaf_hash(const void *data, size_t len, uint8_t out[HC_HASH_LEN]);
int hc_merkle_node_hash(const uint8_t left[HC_HASH_LEN],
			const uint8_t right[HC_HASH_LEN],
			uint8_t out[HC_HASH_LEN]);

/*
 * The incremental tree: the roots of the perfect subtrees along its right
 * edge (at most 64), O(log n) state however many leaves.
 */
typedef struct hc_merkle {
	uint64_t size;
	uint8_t stack[64]
		     [HC_HASH_LEN]; /* stack[i]: i-th subtree, largest first */
	unsigned depth;		    /* number of subtrees on the stack */
} hc_merkle;

void hc_merkle_init(hc_merkle *t);
/* Add a leaf by its leaf hash. */
int hc_merkle_push(hc_merkle *t, const uint8_t leaf[HC_HASH_LEN]);
/* Root hash of the tree so far (of the empty tree: SHA-256 of ""). */
int hc_merkle_root(const hc_merkle *t, uint8_t out[HC_HASH_LEN]);

/*
 * A source of leaf hashes for proofs: read(ctx, index, out) fills out with
 * the leaf hash at index.  Proofs call it in increasing index order.
 */
typedef int (*hc_leaf_reader)(void *ctx, uint64_t index,
			      uint8_t out[HC_HASH_LEN]);

/* A proof: a list of hashes, in RFC 9162 order. */
typedef struct hc_proof {
	size_t n;
	uint8_t (*hash)[HC_HASH_LEN];
} hc_proof;

/* Inclusion proof of leaf `index` in the tree of `size` leaves. */
int hc_merkle_inclusion_proof(hc_proof *out, uint64_t index, uint64_t size,
			      hc_leaf_reader read, void *ctx);
/* Consistency proof between sizes old_size and new_size. */
int hc_merkle_consistency_proof(hc_proof *out, uint64_t old_size,
				uint64_t new_size, hc_leaf_reader read,
				void *ctx);
/* 0 if proof shows leaf at index is in the tree with root; HC_EVERIFY not. */
int hc_merkle_verify_inclusion(const uint8_t leaf[HC_HASH_LEN], uint64_t index,
			       uint64_t size, const hc_proof *proof,
			       const uint8_t root[HC_HASH_LEN]);
/* 0 if proof shows old tree is a prefix of new tree; HC_EVERIFY not. */
int hc_merkle_verify_consistency(uint64_t old_size, uint64_t new_size,
				 const uint8_t old_root[HC_HASH_LEN],
				 const uint8_t new_root[HC_HASH_LEN],
				 const hc_proof *proof);
void hc_proof_release(hc_proof *p);

/* ------------------------------------------------------------- checkpoints */

/* A C2SP tlog-checkpoint, with the signed-note signatures it carries. */
typedef struct hc_checkpoint {
	char *origin;
	uint64_t size;
	uint8_t root[HC_HASH_LEN];
	char *extensions; /* extension lines, each ending in '\n', or NULL */
	char *text;	  /* the complete signed note */
} hc_checkpoint;

/* Build and sign the checkpoint (origin, size, root) with key. */
int hc_checkpoint_sign(hc_checkpoint **out, const char *origin, uint64_t size,
		       const uint8_t root[HC_HASH_LEN], const char *extensions,
		       const hc_key *key);
/*
 * Parse a signed note and check that a signature by key is on it
 * (signatures by other keys are ignored, as signed-note readers do).
 * HC_EFORMAT for a malformed note, HC_EVERIFY for no valid signature.
 */
int hc_checkpoint_parse(hc_checkpoint **out, const char *text, size_t len,
			const hc_key *key);
void hc_checkpoint_free(hc_checkpoint *c);

/* ------------------------------------------------------------------ records */

/* A record as read back from the log. */
typedef struct hc_record {
	uint64_t seq;
	uint8_t hash[HC_HASH_LEN]; /* SHA-256 of the line */
	uint8_t leaf[HC_HASH_LEN]; /* RFC 9162 leaf hash of the line */
	uint8_t prev[HC_HASH_LEN]; /* as the record states it */
	const char *type;	   /* borrowed from json */
	json_t *json;		   /* the parsed record (owned) */
	const char *line;	   /* the exact bytes, borrowed */
	size_t len;
} hc_record;

/*
 * Parse and check one record line (without newline): at most
 * HC_RECORD_MAX bytes of valid UTF-8 JSON object, no duplicate keys, and
 * the common members exactly as FORMAT.md section 2.2 says hozen writes
 * them: the line begins {"v":1,"seq":N,"prev":"HEX","time":"TIME",
 * "type":"T","actor":{ with N decimal without leading zeros, HEX 64
 * lower-case hex digits, TIME YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ and T of
 * a-z, 0-9 and '-'.  Fills *out (release with hc_record_release);
 * HC_EFORMAT with a message otherwise.
 */
int hc_record_parse(hc_record *out, const char *line, size_t len);
void hc_record_release(hc_record *r);

/* --------------------------------------------------------------------- log */

typedef struct hc_log hc_log;

struct hc_log_options {
	/* Start a new segment when the current one reaches this size. */
	uint64_t segment_bytes; /* 0: 256 MiB */
	/*
	 * Group commit: a background thread makes appended records durable
	 * within this many milliseconds.  0 disables the thread; records are
	 * then durable only at hc_log_sync() and hc_log_close().
	 */
	unsigned flush_ms;
	/*
	 * If the log ends in a torn line, move the torn bytes to
	 * chain/torn/, cut the segment back to its last complete record and
	 * append a "recovery" record naming them.  Without it, opening a torn
	 * log for writing fails with HC_ETORN.
	 */
	int recover;
	/*
	 * Keep this many bytes allocated after the end of the current
	 * segment (fallocate, the file's size unchanged), topped up as
	 * records use them: records still fit when the disk is full, so a
	 * full disk refuses content before it refuses records.  The room
	 * left is given back at close.  0: none.
	 */
	uint64_t reserve_bytes;
};

/* What hc_log_open found and did. */
struct hc_log_open_report {
	uint64_t records;     /* complete records in the log */
	int torn;	      /* the log ended in a torn line */
	uint64_t torn_bytes;  /* its length */
	char torn_saved[256]; /* where recovery saved it, store-relative */
};

/*
 * Open the log in the store directory storefd for appending, taking the
 * store's writer lock (HC_EBUSY if another process holds it).  Reads the
 * whole log to rebuild the chain head and the Merkle frontier.
 * opts may be NULL; report may be NULL.
 */
int hc_log_open(hc_log **out, int storefd, const struct hc_log_options *opts,
		struct hc_log_open_report *report);

/* The result of an append. */
struct hc_appended {
	uint64_t seq;
	uint8_t hash[HC_HASH_LEN];
	char time[40]; /* the record's "time" member, NUL-terminated */
};

/*
 * Append a record of type with the given actor and fields (a JSON object
 * whose members follow the common ones; borrowed, may be NULL).  Safe
 * from many threads; the record is in the kernel when this returns and
 * durable after hc_log_sync() or the next group commit.  The field names
 * v, seq, prev, time, type and actor are reserved.
 */
int hc_log_append(hc_log *log, const char *type, const hc_actor *actor,
		  json_t *fields, struct hc_appended *out);
/* Make every record up to and including seq durable (group commit). */
int hc_log_sync(hc_log *log, uint64_t seq);
/* Number of records; the next seq. */
uint64_t hc_log_size(hc_log *log);
/* The chain head: the number of records and the last record's hash. */
void hc_log_head(hc_log *log, uint64_t *size, uint8_t hash[HC_HASH_LEN]);
/* The current Merkle tree state (copied under the log's lock). */
void hc_log_merkle(hc_log *log, hc_merkle *out);
/* The store directory fd (borrowed). */
int hc_log_storefd(const hc_log *log);
/* Sync, stop the flusher, release the lock.  Returns the sync result. */
int hc_log_close(hc_log *log);

/*
 * Create the first segment holding the genesis record; used by store
 * creation.  fields are the genesis fields (store, created, key...).
 */
int hc_log_create(int storefd, const hc_actor *actor, json_t *fields);

/* ------------------------------------------------------------- log reading */

typedef struct hc_reader hc_reader;

/*
 * Read the log of the store at storefd from its first record, across
 * segments, without taking the writer lock.
 */
int hc_reader_open(hc_reader **out, int storefd);
/*
 * Next record into *rec (valid until the next call).  Returns 1 for a
 * record, 0 at the clean end, HC_ETORN for a torn last line, HC_EFORMAT
 * for a malformed line (message names segment and line), HC_ESYS.
 * Checks nothing about the chain: see hc_verify.
 */
int hc_reader_next(hc_reader *r, hc_record *rec);
/* Where the reader is: "chain/<segment>.log:<line>" of the last record. */
const char *hc_reader_where(const hc_reader *r);
void hc_reader_free(hc_reader *r);

/* ------------------------------------------------------------------- store */

typedef struct hc_store hc_store;

struct hc_init_options {
	const char *name;	/* store name, default: directory basename */
	const char *passphrase; /* encrypt the private key, or NULL */
	json_t *genesis_extra;	/* extra genesis fields (borrowed), or NULL */
};

/*
 * Create a new store at path (which must not exist or be an empty
 * directory): marker, keys, chain with genesis, checkpoints/, git/ and
 * tree/ directories.
 */
int hc_store_init(const char *path, const struct hc_init_options *opts);

/*
 * Open a store for reading or writing (O_RDONLY directory fd, marker
 * checked).  A directory without the HOZEN marker is not a store
 * (HC_ENOENT); a marker that is not exactly that of FORMAT.md section 1
 * (or not a regular file) is a store that fails verification
 * (HC_EVERIFY): nothing may write to it.
 */
int hc_store_open(hc_store **out, const char *path);
/*
 * Open a store to verify it: as hc_store_open, but a marker that exists
 * and is wrong is not an error; hc_verify_store reports it as a finding.
 * Never use the result to write.
 */
int hc_store_open_verify(hc_store **out, const char *path);
/*
 * Why the marker of a store opened with hc_store_open_verify is not the
 * marker (borrowed), or NULL when it is (always NULL after
 * hc_store_open).
 */
const char *hc_store_marker_problem(const hc_store *s);
int hc_store_fd(const hc_store *s);
const char *hc_store_path(const hc_store *s);
/* The store's verifier key as the store holds it (keys/signing.vkey). */
int hc_store_public_key(const hc_store *s, hc_key **out);
/* Load the store's signing key (passphrase may be NULL). */
int hc_store_private_key(const hc_store *s, const char *passphrase,
			 hc_key **out);
/* The checkpoint origin line of the store (borrowed; from the genesis). */
int hc_store_origin(hc_store *s, const char **out);
void hc_store_free(hc_store *s);

/* A checkpoint written by hc_store_checkpoint. */
struct hc_checkpoint_result {
	uint64_t size;
	uint8_t root[HC_HASH_LEN];
	char path[64]; /* store-relative */
};

/*
 * Take a checkpoint: append a "checkpoint" record, make the log durable,
 * sign the tree that ends with that record and write it to checkpoints/.
 */
int hc_store_checkpoint(hc_log *log, const hc_key *key, const char *origin,
			const hc_actor *actor,
			struct hc_checkpoint_result *out);

/* List the checkpoint sizes in checkpoints/, ascending (*out malloc'd). */
int hc_store_checkpoints(const hc_store *s, uint64_t **out, size_t *n_out);
/* Read and verify checkpoint of the given size against key. */
int hc_store_read_checkpoint(const hc_store *s, uint64_t size,
			     const hc_key *key, hc_checkpoint **out);

/* What hc_store_recover found and did. */
struct hc_recover_report {
	int torn;	      /* a torn last line was preserved */
	uint64_t torn_bytes;  /* its length */
	char torn_saved[256]; /* where, store-relative */
	size_t rewritten;     /* announced checkpoints that were rewritten */
	/*
	 * Records no checkpoint record announced (a session that crashed,
	 * a note written while unmounted), now sealed by the key: adopted
	 * (0 or 1), their first and last seq; an "adopt" record names them.
	 */
	int adopted;
	uint64_t adopted_first, adopted_last;
	struct hc_checkpoint_result checkpoint; /* the new checkpoint */
};

/*
 * Bring a store back to a verifiable state after a crash: preserve a torn
 * last line in chain/torn/ and record it, rewrite every checkpoint the
 * chain announces but checkpoints/ lacks (the tree it names is recomputed
 * from the log), record the range of records no checkpoint record
 * announced (an "adopt" record), then take a new checkpoint.  Refuses a
 * log whose chain is
 * broken (HC_EVERIFY): recovery never papers over tampering.
 */
int hc_store_recover(hc_store *s, const hc_key *key, const hc_actor *actor,
		     struct hc_recover_report *out);

/* ---------------------------------------------------------------- findings */

/*
 * The problems a verification found: every one, not only the first, so
 * that a verifier's report lists them all (`hozen verify`, text and
 * --json).  Each names the record (seq) or checkpoint concerned when
 * there is one, the store-relative file (and line) and why.  Safe to add
 * to from several threads.
 */
struct hc_finding {
	int64_t seq;	     /* the record concerned, or -1 */
	uint64_t checkpoint; /* the checkpoint concerned (its size), or 0 */
	char where[512];     /* store-relative file (and line), or "" */
	char reason[512];    /* one line */
};

/* At most this many findings are kept; the rest are only counted. */
#define HC_FINDINGS_MAX 1000

typedef struct hc_findings hc_findings;

int hc_findings_new(hc_findings **out);
void hc_findings_free(hc_findings *f);
/*
 * Add a finding (reason printf-style).  Never fails: past
 * HC_FINDINGS_MAX, or out of memory, a finding is counted but not kept.
 * f may be NULL (then nothing happens).
 */
void hc_findings_add(hc_findings *f, int64_t seq, uint64_t checkpoint,
		     const char *where, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Every finding added, kept or not (0 for NULL). */
size_t hc_findings_count(hc_findings *f);
/* The findings kept (at most HC_FINDINGS_MAX). */
size_t hc_findings_kept(hc_findings *f);
/* The i-th finding kept, in the order added (borrowed), or NULL. */
const struct hc_finding *hc_findings_get(hc_findings *f, size_t i);

/* ------------------------------------------------------------------- modes */

/*
 * The permissions of the store's own files (FORMAT.md section 1): add a
 * finding to f for the store directory if group or others have any
 * access to it, and for every file or directory outside tree/ that the
 * group or others may write.  Not looked at: tree/ itself and what it
 * holds (the users' modes), symlinks, and files of git/lfs/objects/ with
 * more than one link (a live file of tree/).  Returns 0, or an error when
 * it could not look (the findings so far are kept).
 */
int hc_store_check_modes(const hc_store *s, hc_findings *f);
/*
 * Take every access of group and others away from what
 * hc_store_check_modes looks at (chmod g-rwx,o-rwx), the store directory
 * first.  *repaired gets an array of {"path": store-relative ("." for the
 * store directory; "path_b64" for a name that is not UTF-8), "old": mode,
 * "new": mode} (integers), or NULL if nothing changed.  Never follows a
 * symlink.  On error *repaired is untouched (what was changed stays
 * changed).
 */
int hc_store_repair_modes(const hc_store *s, json_t **repaired);

/* ------------------------------------------------------------------ verify */

enum hc_verdict {
	HC_VALID = 0,	 /* every record verifies and is sealed */
	HC_UNSEALED = 1, /* every record verifies; the tail is not sealed */
	HC_INVALID = 2,	 /* the evidence fails verification */
};

struct hc_verify_options {
	const hc_key *trusted_key; /* pin the key; NULL: the store's own */
	int allow_unsealed;	   /* an unsealed tail is not a failure */
	/*
	 * A checkpoint kept outside the store (the signed note, not
	 * NUL-terminated), or NULL: it must verify with the verifying key,
	 * be of the store's origin, and the log must extend it (records
	 * 0..size-1 have its root).  A note that does not parse makes
	 * hc_verify_store fail with HC_EFORMAT.
	 */
	const char *trusted_checkpoint;
	size_t trusted_checkpoint_len;
	/* Called for every good record, e.g. for later checks (may be NULL). */
	int (*on_record)(void *ctx, const hc_record *rec);
	void *ctx;
	/* Every problem found is also added here (may be NULL). */
	hc_findings *findings;
};

struct hc_verify_report {
	enum hc_verdict verdict;
	uint64_t records;     /* complete records read */
	uint64_t sealed;      /* records covered by the latest checkpoint */
	size_t checkpoints;   /* checkpoints verified */
	uint64_t latest_size; /* size of the latest good checkpoint */
	uint8_t root[HC_HASH_LEN]; /* root of the whole log */
	/* On HC_INVALID: */
	int64_t fail_seq;	  /* first failing seq, or -1 */
	uint64_t fail_checkpoint; /* failing checkpoint size, or 0 */
	char where[512];	  /* file (and line) concerned */
	char reason[512];	  /* why, one line */
	int torn;		  /* the log ends in a torn line */
	/*
	 * Every record was read, parsed and linked: what depends on the
	 * whole chain (the case, the files) can be checked.
	 */
	int chain_intact;
	/* on_record failed (HC_EVERIFY) and was not called again. */
	int on_record_failed;
};

/*
 * Verify the whole store (FORMAT.md section 5): the marker, the key and
 * keys/signing.pub, every checkpoint's signature and root, genesis, every
 * record's syntax, seq and link, the names of the segments and whatever
 * else is in chain/, the recovery copies in chain/torn/, that the latest
 * checkpoint covers the log, and the trusted checkpoint if one is given.
 * It goes on past a problem when the rest still means something: every
 * problem is added to opts->findings, the first also to the report.  Not
 * checked here: modes (hc_store_check_modes), the case (case/) and the
 * files (fs/).  Returns 0 with the verdict in *report (also on
 * HC_INVALID), or a negative code when it could not verify at all.
 */
int hc_verify_store(const hc_store *s, const struct hc_verify_options *opts,
		    struct hc_verify_report *report);

/* ------------------------------------------------------------------ proofs */

/*
 * An inclusion proof of record seq against the latest checkpoint, as a
 * self-contained JSON document (see FORMAT.md) in *out (caller frees).
 */
int hc_prove_inclusion(const hc_store *s, uint64_t seq, char **out);
/* A consistency proof between two checkpoints of the store. */
int hc_prove_consistency(const hc_store *s, uint64_t old_size,
			 uint64_t new_size, char **out);
/*
 * Verify a proof document offline with key alone.  If checkpoint is
 * non-NULL the proof must be against that checkpoint text (or, for
 * inclusion, one consistent with it is not enough: same size and root).
 * Returns 0 valid, HC_EVERIFY (message says why), HC_EFORMAT.
 * On success *summary (caller frees, may be NULL) describes what was shown.
 */
int hc_proof_verify(const char *doc, size_t len, const hc_key *key,
		    const char *checkpoint, size_t checkpoint_len,
		    char **summary);

/* ------------------------------------------------------------------- time */

/* Now as RFC 3339 UTC with nanoseconds: 2026-11-22T01:39:16.123456789Z. */
void hc_time_now(char out[40]);

#endif
