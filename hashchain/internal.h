/*
 * internal.h - what the files of hashchain/ share and nobody else sees.
 */
#ifndef HOZEN_HASHCHAIN_INTERNAL_H
#define HOZEN_HASHCHAIN_INTERNAL_H

#include <sys/stat.h>
#include "hashchain.h"

#define HC_MARKER      "HOZEN"
#define HC_CHAIN_DIR   "chain"
#define HC_CKPT_DIR    "checkpoints"
#define HC_KEY_PRIVATE "keys/signing.key"
#define HC_KEY_PEM     "keys/signing.pub"
#define HC_KEY_VKEY    "keys/signing.vkey"
#define HC_TORN_DIR    "chain/torn"

/* Segment file name for a segment whose first record is seq. */
void hc_segment_name(uint64_t first, char out[32]);
/* Checkpoint file name (store-relative) for a tree of size. */
void hc_checkpoint_name(uint64_t size, char out[64]);

/* Where a torn tail was found by a reader. */
struct hc_torn {
	char segment[32]; /* segment file name */
	uint64_t offset;  /* offset of the torn bytes in it */
	uint64_t length;  /* their length */
};

/* After hc_reader_next returned HC_ETORN: where the torn bytes are. */
void hc_reader_torn(const hc_reader *r, struct hc_torn *out);
/* The first seq the current segment's name claims. */
uint64_t hc_reader_segment_first(const hc_reader *r);
/* 1 if the last record returned was the first of its segment. */
int hc_reader_at_segment_start(const hc_reader *r);
/* The segment file name of the last record returned. */
const char *hc_reader_segment(const hc_reader *r);
/* Line number (1-based) in its segment of the last record returned. */
uint64_t hc_reader_line(const hc_reader *r);

/* Where a record ends: its segment's first seq, the offset past its line. */
struct hc_mark {
	uint64_t seg;
	uint64_t end;
};

/* Where the last record returned ends. */
void hc_reader_mark(const hc_reader *r, struct hc_mark *out);

/* hc_log_append that also returns the tree ending with the new record. */
int hc_log_append_tree(hc_log *log, const char *type, const hc_actor *actor,
		       json_t *fields, struct hc_appended *out,
		       hc_merkle *tree);

/* A checkpoint record whose checkpoint file is missing. */
struct hc_ck_unsigned {
	uint64_t size;		   /* the tree it seals */
	uint8_t root[HC_HASH_LEN]; /* that tree's root */
};

/*
 * What the log's opening saw: the checkpoint records without their file
 * (list, n: valid until hc_log_close), and the tree size after the last
 * checkpoint record (0: none).
 */
void hc_log_unsigned(const hc_log *log, const struct hc_ck_unsigned **list,
		     size_t *n, uint64_t *sealed);

/*
 * Decode one UTF-8 sequence at s (n > 0 bytes available) into *cp; returns
 * its length, or 0 if it is not well-formed (overlong, surrogate, beyond
 * U+10FFFF).
 */
size_t hc_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);
/* 1 if name[0..n) is a signed-note key name: UTF-8, no space, '+', control. */
int hc_key_name_valid(const char *name, size_t n);
/*
 * Decode canonical padded base64 (RFC 4648 section 4): the input must be
 * exactly what encoding the result gives.  *out is malloc'd; 0 or -1.
 */
int hc_base64_decode(const char *s, size_t n, uint8_t **out, size_t *len);

/* hc_open_regular naming the file `name` in its messages. */
int hc_open_regular_as(int dirfd, const char *path, const char *name, int flags,
		       int *fd_out, struct stat *st_out);
/* 1 if name is 20 decimal digits and suffix, its number in *n. */
int hc_numbered_name(const char *name, const char *suffix, uint64_t *n);

/*
 * 1 if name is the name of a copy of torn bytes (FORMAT.md section 2.4):
 * SEG-OFFSET.torn, or SEG-OFFSET-K.torn (K 1 to 999) when an earlier
 * copy no record names yet holds the first name; its segment's file name
 * in seg, OFFSET in *off.
 */
int hc_torn_name(const char *name, char seg[32], uint64_t *off);

/*
 * 1 if name, in the store's directory dir ("" the top, or
 * "checkpoints"), is the temporary file of an hc_atomic_write a crash
 * interrupted: NAME.tmp.PID for a checkpoint file, case.json.new or seal.
 * Only a writer holding the log writes these: a writer that holds it
 * removes any it finds (hc_remove_tmp_leftovers).
 */
int hc_tmp_leftover(const char *dir, const char *name);
int hc_remove_tmp_leftovers(int storefd);

/*
 * A copy of torn bytes is written while of this mode and made 0400 once
 * whole and synced: a copy of another mode, or empty, is one a crash
 * interrupted (hc_torn_partial says so of a regular file's stat).
 */
#define HC_TORN_PARTIAL 0200
int hc_torn_partial(const struct stat *st);

/*
 * 1 if name (a file of chain/torn/ that no record names) is what a crash
 * inside recovery leaves after a copy was made: a copy (hc_torn_name)
 * SEGMENT-OFFSET, a whole one (a regular file of mode 0400 and one link,
 * of 1 to HC_RECORD_MAX + 1 bytes), where OFFSET is a line boundary of
 * segment SEGMENT, at most its size, and nothing but recovery records
 * lies after it -- last_other, where the log's last record of another
 * type than recovery ends, is at or before it.  Recovery cut the segment
 * there and then appended its records, one per copy; a crash may stop it
 * after any of them (and the appends may have begun a new segment).  A
 * partial copy (hc_torn_partial) is left only while the segment still
 * ends in the torn bytes: the next recovery replaces it.
 */
int hc_torn_interrupted(int storefd, const char *name,
			const struct hc_mark *last_other);

/*
 * The numbers of the files in dirfd named by 20 decimal digits and suffix
 * (".log", ".ckpt"), ascending, in *out (malloc'd).
 */
int hc_list_numbered(int dirfd, const char *suffix, uint64_t **out,
		     size_t *n_out);

/* Longest record type; a type is made of a-z, 0-9 and '-'. */
#define HC_TYPE_MAX 64
/* 1 if type[0..n) is a record type: 1 to HC_TYPE_MAX of [a-z0-9-]. */
int hc_type_valid(const char *type, size_t n);

/*
 * hc_key_load_public of the file's bytes buf[0..len), named path in
 * messages; with pem_only, a verifier key line is refused.
 */
int hc_key_parse_public(hc_key **out, const char *buf, size_t len,
			const char *path, const char *name, int pem_only);

/* Strays of chain/ named in full; more are only counted. */
#define HC_STRAYS_MAX 16

/* What chain/ holds. */
struct hc_chain_dir {
	uint64_t *segs; /* segment first seqs, ascending */
	size_t nsegs;
	/* Entries that are neither segment names nor the directory torn/. */
	char strays[HC_STRAYS_MAX][256];
	size_t nstrays; /* all of them, named or not */
};

/* List chain/ (the directory chainfd) into *out. */
int hc_chain_scan(int chainfd, struct hc_chain_dir *out);
void hc_chain_dir_release(struct hc_chain_dir *d);
/* What the reader found in chain/ (borrowed). */
const struct hc_chain_dir *hc_reader_chain_dir(const hc_reader *r);

/* Genesis "prev": 32 zero bytes. */
extern const uint8_t hc_zero_hash[HC_HASH_LEN];

/* Build the JSON object of an actor. */
json_t *hc_actor_json(const hc_actor *a);

#endif
