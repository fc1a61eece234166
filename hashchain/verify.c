/*
 * verify.c - verification of a whole store: the marker, the key and its
 * files, every checkpoint, the chain, what else chain/ holds and the
 * recovery copies.  The rules are those of docs/FORMAT.md, "Verifying a
 * store".
 *
 * Every problem is a finding; verification goes on past a problem when
 * what follows still means something (a bad checkpoint file does not stop
 * the chain, a bad key file does not stop the recovery copies), and stops
 * reading records where the chain itself breaks: after that, nothing
 * tells which record is which.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "internal.h"

#define KEY_FILE_MAX (64u << 10)

struct ckpt {
	uint64_t size;
	uint8_t root[HC_HASH_LEN];
};

/* A recovery record's copy of torn bytes (FORMAT.md section 2.4). */
struct recovery {
	uint64_t seq;
	char saved[128]; /* store-relative path of the copy */
	uint64_t length;
	uint8_t sha256[HC_HASH_LEN];
};

struct verifier {
	const hc_store *store;
	const struct hc_verify_options *opts;
	struct hc_verify_report *rep;
	const hc_key *key;   /* the verifying key, NULL if none was found */
	struct ckpt *ck;     /* the good checkpoints, by size */
	size_t nck, next_ck; /* next_ck: next checkpoint to meet */
	uint64_t *bad_ck;    /* checkpoint files that failed */
	size_t nbad;
	uint64_t last_good_ck;
	char *origin;	 /* the genesis record's */
	char *ck_origin; /* the checkpoints' (all the same) */
	uint64_t ck_origin_size;
	hc_checkpoint *trusted; /* the trusted checkpoint, if it verified */
	int trusted_met;	/* the log reached its size */
	struct recovery *recs;
	size_t nrecs, caprecs;
	uint64_t sealed; /* records announced by a checkpoint record so far */
	struct hc_mark last_other; /* where the last record not of type
				      recovery ends */
	int chain_broken; /* records could not all be read and linked */
	int case_stopped; /* on_record failed: not called again */
	size_t failed;	  /* findings so far */
};

__attribute__((format(printf, 5, 6))) static void
fail(struct verifier *v, int64_t seq, uint64_t ckpt, const char *where,
     const char *fmt, ...)
{
	char reason[sizeof(v->rep->reason)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	hc_findings_add(v->opts->findings, seq, ckpt, where, "%s", reason);
	v->rep->verdict = HC_INVALID;
	if (v->failed++)
		return;
	/* The first problem is also the report's. */
	v->rep->fail_seq = seq;
	v->rep->fail_checkpoint = ckpt;
	snprintf(v->rep->where, sizeof(v->rep->where), "%s", where);
	memcpy(v->rep->reason, reason, sizeof(reason));
}

/* ------------------------------------------------------------ the key */

/* The key the genesis record names, when the store's vkey is unusable. */
static int genesis_key(const hc_store *s, hc_key **out)
{
	hc_reader *r = NULL;
	hc_record rec;
	const char *vkey;
	int rc;

	memset(&rec, 0, sizeof(rec));
	rc = hc_reader_open(&r, hc_store_fd(s));
	if (rc == 0)
		rc = hc_reader_next(r, &rec);
	if (rc == 1) {
		vkey = json_string_value(json_object_get(
			json_object_get(rec.json, "key"), "vkey"));
		rc = vkey && rec.seq == 0 ? hc_key_parse_vkey(out, vkey)
					  : HC_EFORMAT;
	} else if (rc == 0) {
		rc = HC_EFORMAT;
	}
	hc_record_release(&rec);
	hc_reader_free(r);
	return rc;
}

/*
 * The verifying key: the trusted key, or else keys/signing.vkey (or, if
 * that is unusable, the genesis record's key, so that the rest can still
 * be checked; the verdict is INVALID already).  *store_key gets the
 * store's own key when it could be read.
 */
static int find_key(struct verifier *v, hc_key **store_key, hc_key **fallback)
{
	int krc;

	krc = hc_store_public_key(v->store, store_key);
	if (krc == HC_ESYS || krc == HC_ENOMEM)
		return krc; /* cannot read it: not a verdict on the evidence */
	if (krc < 0)
		fail(v, -1, 0, HC_KEY_VKEY, "%s", hc_error_message());
	if (v->opts->trusted_key) {
		v->key = v->opts->trusted_key;
		if (krc == 0 && !hc_key_equal_public(*store_key, v->key))
			fail(v, -1, 0, HC_KEY_VKEY,
			     "the store's key '%s' is not the trusted key '%s'",
			     hc_key_vkey(*store_key), hc_key_vkey(v->key));
		return 0;
	}
	if (krc == 0) {
		v->key = *store_key;
		return 0;
	}
	if (genesis_key(v->store, fallback) == 0)
		v->key = *fallback;
	return 0;
}

/*
 * keys/signing.pub is the verifying key as PEM (FORMAT.md section 1): the
 * key FORMAT.md's openssl recipe checks signatures with.
 */
static int check_pem(struct verifier *v)
{
	hc_key *pem = NULL;
	char *text = NULL;
	size_t len = 0;
	int rc;

	rc = hc_read_file(hc_store_fd(v->store), HC_KEY_PEM, KEY_FILE_MAX,
			  &text, &len);
	if (rc == HC_ESYS || rc == HC_ENOMEM)
		return rc;
	if (rc == HC_ENOENT) {
		fail(v, -1, 0, HC_KEY_PEM,
		     "'%s' is missing: it is the verifying key as PEM, which "
		     "FORMAT.md's openssl recipe checks signatures with",
		     HC_KEY_PEM);
		return 0;
	}
	if (rc == 0)
		rc = hc_key_parse_public(&pem, text, len, HC_KEY_PEM, NULL, 1);
	free(text);
	if (rc == HC_ENOMEM)
		return rc;
	if (rc < 0) {
		fail(v, -1, 0, HC_KEY_PEM, "%s", hc_error_message());
		return 0;
	}
	if (v->key && !hc_key_equal_public(pem, v->key))
		fail(v, -1, 0, HC_KEY_PEM,
		     "'%s' holds another Ed25519 key than the verifying key "
		     "'%s' (replaced?)",
		     HC_KEY_PEM, hc_key_vkey(v->key));
	hc_key_free(pem);
	return 0;
}

/*
 * keys/signing.key, when it is not encrypted, is the private half of the
 * verifying key: a replaced one would sign the next checkpoint.  An
 * encrypted one needs its passphrase (hozen checks it before it signs);
 * a store handed over without it is not a problem.
 */
static int check_private(struct verifier *v)
{
	char path[PATH_MAX], *text = NULL;
	hc_key *key = NULL;
	size_t len = 0;
	int rc, n;

	rc = hc_read_file(hc_store_fd(v->store), HC_KEY_PRIVATE, KEY_FILE_MAX,
			  &text, &len);
	if (rc == HC_ENOENT)
		return 0;
	if (rc == HC_ESYS || rc == HC_ENOMEM)
		return rc;
	if (rc < 0) {
		fail(v, -1, 0, HC_KEY_PRIVATE, "%s", hc_error_message());
		return 0;
	}
	if (memmem(text, len, "ENCRYPTED", 9) || !v->key) {
		free(text);
		return 0;
	}
	free(text);
	n = snprintf(path, sizeof(path), "%s/%s", hc_store_path(v->store),
		     HC_KEY_PRIVATE);
	if (n < 0 || (size_t)n >= sizeof(path))
		return hc_error_set(HC_EINVAL, "store path too long");
	rc = hc_key_load_private(&key, path, hc_key_name(v->key), NULL);
	if (rc == HC_ENOMEM)
		return rc;
	if (rc < 0)
		fail(v, -1, 0, HC_KEY_PRIVATE, "%s", hc_error_message());
	else if (!hc_key_equal_public(key, v->key))
		fail(v, -1, 0, HC_KEY_PRIVATE,
		     "'%s' is not the private half of the verifying key "
		     "'%s' (replaced?)",
		     HC_KEY_PRIVATE, hc_key_vkey(v->key));
	hc_key_free(key);
	return 0;
}

/*
 * The store holds what FORMAT.md section 1 lists and nothing else: at its
 * top, in keys/ and in checkpoints/ (chain/ is checked with the log, git/
 * and tree/ by fs/).
 */
static int check_layout_dir(struct verifier *v, const char *dir,
			    const char *const *names)
{
	int sfd = hc_store_fd(v->store), fd;
	char where[300];
	struct dirent *de;
	uint64_t n;
	size_t i;
	DIR *d;

	fd = *dir ? openat(sfd, dir,
			   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
		  : openat(sfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0; /* missing or not a directory: reported elsewhere */
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return hc_error_set(HC_ESYS, "cannot read '%s'",
				    *dir ? dir : ".");
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		for (i = 0; names[i]; i++)
			if (!strcmp(de->d_name, names[i]))
				break;
		if (names[i])
			continue;
		if (!strcmp(dir, HC_CKPT_DIR) &&
		    hc_numbered_name(de->d_name, ".ckpt", &n))
			continue;
		snprintf(where, sizeof(where), "%s%s%.200s", dir,
			 *dir ? "/" : "", de->d_name);
		if (hc_tmp_leftover(dir, de->d_name))
			fail(v, -1, 0, where,
			     "the temporary file of a write a crash "
			     "interrupted: 'hozen recover' (or the next "
			     "mount) removes it");
		else
			fail(v, -1, 0, where,
			     "no file of a store has this name (FORMAT.md "
			     "section 1): added by hand, or left by an "
			     "interrupted write");
	}
	closedir(d);
	return 0;
}

static int check_layout(struct verifier *v)
{
	static const char *const top[] = {
		"HOZEN",     "chain",	      "checkpoints",
		"keys",	     "git",	      "tree",
		"case.json", "case.json.new", "case-documents",
		"seal",	     ".reserve",      NULL};
	static const char *const keys[] = {"signing.key", "signing.pub",
					   "signing.vkey", NULL};
	static const char *const none[] = {NULL};
	int rc;

	rc = check_layout_dir(v, "", top);
	if (rc == 0)
		rc = check_layout_dir(v, "keys", keys);
	if (rc == 0)
		rc = check_layout_dir(v, HC_CKPT_DIR, none);
	return rc;
}

/* ------------------------------------------------------- checkpoints */

static int add_bad(struct verifier *v, uint64_t size)
{
	uint64_t *b = realloc(v->bad_ck, (v->nbad + 1) * sizeof(*b));

	if (!b)
		return hc_error_set(HC_ENOMEM, "out of memory");
	v->bad_ck = b;
	v->bad_ck[v->nbad++] = size;
	return 0;
}

/* Load and check every checkpoint's signature, sorted by size. */
static int load_checkpoints(struct verifier *v)
{
	uint64_t *sizes = NULL;
	hc_checkpoint *c = NULL;
	char path[64];
	size_t n = 0, i;
	int rc;

	rc = hc_store_checkpoints(v->store, &sizes, &n);
	if (rc < 0)
		return rc;
	v->ck = calloc(n ? n : 1, sizeof(*v->ck));
	if (!v->ck) {
		free(sizes);
		return hc_error_set(HC_ENOMEM, "out of memory");
	}
	for (i = 0; i < n; i++) {
		hc_checkpoint_name(sizes[i], path);
		rc = hc_store_read_checkpoint(v->store, sizes[i], v->key, &c);
		if (rc == HC_EVERIFY || rc == HC_EFORMAT || rc == HC_ENOENT) {
			fail(v, -1, sizes[i], path, "%s", hc_error_message());
			rc = add_bad(v, sizes[i]);
			if (rc < 0)
				goto out;
			continue;
		}
		if (rc < 0)
			goto out;
		if (c->size == 0) {
			fail(v, -1, sizes[i], path,
			     "a checkpoint of the empty tree is not valid");
		} else if (!v->ck_origin) {
			v->ck_origin = strdup(c->origin);
			v->ck_origin_size = c->size;
			if (!v->ck_origin) {
				rc = hc_error_set(HC_ENOMEM, "out of memory");
				goto out;
			}
		} else if (strcmp(v->ck_origin, c->origin) != 0) {
			fail(v, -1, sizes[i], path,
			     "checkpoint origin '%s' differs from the origin "
			     "'%s' of the checkpoint of size %" PRIu64,
			     c->origin, v->ck_origin, v->ck_origin_size);
			hc_checkpoint_free(c);
			c = NULL;
			rc = add_bad(v, sizes[i]);
			if (rc < 0)
				goto out;
			continue;
		}
		if (c->size > 0) {
			v->ck[v->nck].size = c->size;
			memcpy(v->ck[v->nck].root, c->root, HC_HASH_LEN);
			v->nck++;
		} else {
			rc = add_bad(v, sizes[i]);
			if (rc < 0)
				goto out;
		}
		hc_checkpoint_free(c);
		c = NULL;
	}
	rc = 0;
out:
	hc_checkpoint_free(c);
	free(sizes);
	return rc;
}

static int have_checkpoint(const struct verifier *v, uint64_t size)
{
	size_t lo = 0, hi = v->nck, i;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v->ck[mid].size == size)
			return 1;
		if (v->ck[mid].size < size)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* A file that is there but failed was reported already. */
	for (i = 0; i < v->nbad; i++)
		if (v->bad_ck[i] == size)
			return 1;
	return 0;
}

/* The checkpoint kept outside the store, verified with the key. */
static int load_trusted(struct verifier *v)
{
	const char *what = "trusted checkpoint";
	int rc;

	if (!v->opts->trusted_checkpoint)
		return 0;
	if (!v->key) {
		fail(v, -1, 0, what,
		     "cannot be checked: there is no verifying key");
		return 0;
	}
	rc = hc_checkpoint_parse(&v->trusted, v->opts->trusted_checkpoint,
				 v->opts->trusted_checkpoint_len, v->key);
	if (rc == HC_EVERIFY) {
		fail(v, -1, 0, what,
		     "it is not signed by the verifying key '%s' (%s): the "
		     "store's key was replaced, or it is another store's",
		     hc_key_vkey(v->key), hc_error_message());
		return 0;
	}
	if (rc < 0)
		return hc_error_prefix(rc, "%s", what);
	if (v->trusted->size == 0) {
		fail(v, -1, 0, what,
		     "a checkpoint of the empty tree pins nothing");
		hc_checkpoint_free(v->trusted);
		v->trusted = NULL;
	}
	return 0;
}

/* ----------------------------------------------------------- records */

/* The genesis record: seq 0, zero prev, the key and the origin. */
static int check_genesis(struct verifier *v, const hc_record *rec,
			 const char *where)
{
	json_t *key = json_object_get(rec->json, "key");
	json_t *store = json_object_get(rec->json, "store");
	const char *vkey = json_string_value(json_object_get(key, "vkey"));
	const char *origin =
		json_string_value(json_object_get(store, "origin"));
	hc_key *gk = NULL;

	if (strcmp(rec->type, "genesis") != 0) {
		fail(v, 0, 0, where,
		     "the first record is of type '%s', not "
		     "a genesis record",
		     rec->type);
		return 0;
	}
	if (CRYPTO_memcmp(rec->prev, hc_zero_hash, HC_HASH_LEN))
		fail(v, 0, 0, where, "the genesis 'prev' is not all zeros");
	if (!vkey || !origin || hc_key_parse_vkey(&gk, vkey) < 0) {
		fail(v, 0, 0, where,
		     "the genesis record lacks a valid 'key.vkey' or "
		     "'store.origin'");
		return 0;
	}
	if (v->key && !hc_key_equal_public(gk, v->key))
		fail(v, 0, 0, where,
		     "the genesis record names the key '%s', not the "
		     "verifying key '%s'",
		     vkey, hc_key_vkey(v->key));
	hc_key_free(gk);
	/* Checked against the checkpoints once the chain verified. */
	v->origin = strdup(origin);
	return v->origin ? 0 : hc_error_set(HC_ENOMEM, "out of memory");
}

/* Compare the tree with the checkpoints of this size. */
static int check_roots(struct verifier *v, const hc_merkle *tree)
{
	uint8_t root[HC_HASH_LEN];
	char path[64];
	int rc;

	while (v->next_ck < v->nck && v->ck[v->next_ck].size == tree->size) {
		rc = hc_merkle_root(tree, root);
		if (rc < 0)
			return rc;
		hc_checkpoint_name(tree->size, path);
		if (CRYPTO_memcmp(root, v->ck[v->next_ck].root, HC_HASH_LEN)) {
			fail(v, (int64_t)v->last_good_ck, tree->size, path,
			     "the signed root does not match records "
			     "0..%" PRIu64 ": a record in seq %" PRIu64
			     "..%" PRIu64 " was altered, inserted or removed",
			     tree->size - 1, v->last_good_ck, tree->size - 1);
		} else {
			v->last_good_ck = tree->size;
			v->rep->checkpoints++;
		}
		v->next_ck++;
	}
	if (v->trusted && v->trusted->size == tree->size) {
		v->trusted_met = 1;
		rc = hc_merkle_root(tree, root);
		if (rc < 0)
			return rc;
		if (CRYPTO_memcmp(root, v->trusted->root, HC_HASH_LEN))
			fail(v, -1, tree->size, "trusted checkpoint",
			     "records 0..%" PRIu64 " do not have the root the "
			     "trusted checkpoint signs: the log was rolled "
			     "back or rewritten",
			     tree->size - 1);
	}
	return 0;
}

/* Keep what a recovery record says of its copy, for check_torn. */
/*
 * An adopt record (FORMAT.md section 2.5) names the records no checkpoint
 * record announced before it: from the one after the last checkpoint
 * record to one before it.
 */
static void check_adopt(struct verifier *v, const hc_record *rec,
			const char *where)
{
	json_t *first = json_object_get(rec->json, "first");
	json_t *last = json_object_get(rec->json, "last");

	if (!json_is_integer(first) || !json_is_integer(last) ||
	    json_integer_value(first) < 0 || json_integer_value(last) < 0 ||
	    (uint64_t)json_integer_value(first) != v->sealed ||
	    json_integer_value(last) < json_integer_value(first) ||
	    (uint64_t)json_integer_value(last) >= rec->seq)
		fail(v, (int64_t)rec->seq, 0, where,
		     "the adopt record does not name the records after the "
		     "last checkpoint record (first %" PRIu64 ", last before "
		     "seq %" PRIu64 ")",
		     v->sealed, rec->seq);
}

static int note_recovery(struct verifier *v, const hc_record *rec,
			 const char *where)
{
	json_t *t = json_object_get(rec->json, "torn");
	const char *seg = json_string_value(json_object_get(t, "segment"));
	const char *saved = json_string_value(json_object_get(t, "saved"));
	const char *sha = json_string_value(json_object_get(t, "sha256"));
	json_t *off = json_object_get(t, "offset");
	json_t *len = json_object_get(t, "length");
	char want[128], sseg[32];
	struct recovery *r;
	uint64_t first, soff;

	if (!seg || !saved || !sha || !json_is_integer(off) ||
	    !json_is_integer(len) || json_integer_value(off) < 0 ||
	    json_integer_value(len) < 0 ||
	    !hc_numbered_name(seg, ".log", &first)) {
		fail(v, (int64_t)rec->seq, 0, where,
		     "the recovery record lacks a valid 'torn' object "
		     "(segment, offset, length, sha256, saved)");
		return 0;
	}
	snprintf(want, sizeof(want), "%s/%.20s-%020" PRIu64 ".torn",
		 HC_TORN_DIR, seg, (uint64_t)json_integer_value(off));
	/* Or SEG-OFFSET-K.torn, beside an earlier copy at that offset. */
	if (strcmp(saved, want) != 0 &&
	    !(strncmp(saved, HC_TORN_DIR "/", strlen(HC_TORN_DIR) + 1) == 0 &&
	      hc_torn_name(saved + strlen(HC_TORN_DIR) + 1, sseg, &soff) &&
	      strcmp(sseg, seg) == 0 &&
	      soff == (uint64_t)json_integer_value(off))) {
		fail(v, (int64_t)rec->seq, 0, where,
		     "the recovery record names its copy '%.200s', not '%s' "
		     "(FORMAT.md section 2.4)",
		     saved, want);
		return 0;
	}
	if (v->nrecs == v->caprecs) {
		size_t cap = v->caprecs ? 2 * v->caprecs : 8;
		struct recovery *nr = realloc(v->recs, cap * sizeof(*nr));

		if (!nr)
			return hc_error_set(HC_ENOMEM, "out of memory");
		v->recs = nr;
		v->caprecs = cap;
	}
	r = &v->recs[v->nrecs];
	memset(r, 0, sizeof(*r));
	if (strlen(sha) != HC_HEX_LEN ||
	    strspn(sha, "0123456789abcdef") != HC_HEX_LEN ||
	    hc_unhex(sha, r->sha256, HC_HASH_LEN) < 0) {
		fail(v, (int64_t)rec->seq, 0, where,
		     "the recovery record's 'sha256' is not 64 lower-case hex "
		     "digits");
		return 0;
	}
	r->seq = rec->seq;
	snprintf(r->saved, sizeof(r->saved), "%s", saved);
	r->length = (uint64_t)json_integer_value(len);
	v->nrecs++;
	return 0;
}

/* Feed one good record to the caller's hook (the case replay). */
static int call_hook(struct verifier *v, const hc_record *rec,
		     const char *where)
{
	int rc;

	if (!v->opts->on_record || v->case_stopped)
		return 0;
	rc = v->opts->on_record(v->opts->ctx, rec);
	if (rc == HC_EVERIFY) {
		/* What the hook builds is meaningless after this. */
		fail(v, (int64_t)rec->seq, 0, where, "%s", hc_error_message());
		v->case_stopped = 1;
		return 0;
	}
	return rc;
}

/* ----------------------------------------------------- chain/ itself */

/* chain/ holds segments and torn/, nothing else (FORMAT.md 2.1). */
static int check_chain_dir(struct verifier *v)
{
	struct hc_chain_dir d;
	char where[300];
	size_t i;
	int fd, rc;

	fd = openat(hc_store_fd(v->store), HC_CHAIN_DIR,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0; /* the reader reported it */
	rc = hc_chain_scan(fd, &d);
	close(fd);
	if (rc < 0)
		return rc;
	for (i = 0; i < d.nstrays && i < HC_STRAYS_MAX; i++) {
		snprintf(where, sizeof(where), "chain/%s", d.strays[i]);
		if (!strcmp(d.strays[i], "torn"))
			fail(v, -1, 0, where,
			     "'chain/torn' is not a directory");
		else
			fail(v, -1, 0, where,
			     "not a log segment: chain/ holds only segments "
			     "(20 digits and '.log') and the directory torn/");
	}
	if (d.nstrays > HC_STRAYS_MAX)
		fail(v, -1, 0, HC_CHAIN_DIR,
		     "%zu more files that are not log segments",
		     d.nstrays - HC_STRAYS_MAX);
	hc_chain_dir_release(&d);
	return 0;
}

/* SHA-256 and length of an open file, read to its end. */
static int hash_fd(int fd, uint8_t out[HC_HASH_LEN], uint64_t *len)
{
	hc_sha256_ctx *h = NULL;
	char buf[65536];
	ssize_t n;
	int rc;

	*len = 0;
	rc = hc_sha256_new(&h);
	while (rc == 0) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = hc_error_set(HC_ESYS, "read failed");
		if (n <= 0)
			break;
		*len += (uint64_t)n;
		rc = hc_sha256_update(h, buf, (size_t)n);
	}
	if (rc == 0)
		rc = hc_sha256_final(h, out);
	hc_sha256_free(h);
	return rc;
}

/*
 * Every recovery record's copy is in chain/torn/ with its length and
 * SHA-256, mode 0400; with the whole chain read, every file there is a
 * recovery record's copy (FORMAT.md section 2.4).
 */
static int check_torn(struct verifier *v)
{
	int sfd = hc_store_fd(v->store), fd, rc = 0;
	uint8_t h[HC_HASH_LEN];
	struct dirent *de;
	struct stat st;
	char path[300];
	uint64_t len;
	DIR *d;
	size_t i;

	for (i = 0; i < v->nrecs; i++) {
		struct recovery *r = &v->recs[i];

		rc = hc_open_regular(sfd, r->saved, O_RDONLY, &fd, &st);
		if (rc == HC_ENOENT || rc == HC_EFORMAT) {
			fail(v, (int64_t)r->seq, 0, r->saved,
			     "the copy of the torn bytes that seq %" PRIu64
			     " recorded: %s",
			     r->seq, hc_error_message());
			continue;
		}
		if (rc < 0)
			return rc;
		rc = hash_fd(fd, h, &len);
		close(fd);
		if (rc < 0)
			return hc_error_prefix(rc, "'%s'", r->saved);
		if (len != r->length ||
		    CRYPTO_memcmp(h, r->sha256, HC_HASH_LEN))
			fail(v, (int64_t)r->seq, 0, r->saved,
			     "the copy of the torn bytes is not what seq "
			     "%" PRIu64 " recorded (%" PRIu64 " bytes and "
			     "their SHA-256): altered or replaced",
			     r->seq, r->length);
		else if ((st.st_mode & 07777) != 0400)
			fail(v, (int64_t)r->seq, 0, r->saved,
			     "mode %04o; a recovery copy is 0400",
			     (unsigned)(st.st_mode & 07777));
	}
	/* Files no record names: only known once every record was read. */
	if (v->chain_broken)
		return 0;
	fd = openat(sfd, HC_TORN_DIR,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
			return 0; /* none, or a stray of chain/ */
		return hc_error_set(HC_ESYS, "cannot open '%s'", HC_TORN_DIR);
	}
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return hc_error_set(HC_ESYS, "cannot read '%s'", HC_TORN_DIR);
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", HC_TORN_DIR, de->d_name);
		for (i = 0; i < v->nrecs; i++)
			if (!strcmp(v->recs[i].saved, path))
				break;
		if (i < v->nrecs)
			continue;
		if (hc_torn_interrupted(sfd, de->d_name, &v->last_other)) {
			/* What 'hozen recover' records (hashchain/log.c). */
			v->rep->torn = 1;
			fail(v, -1, 0, path,
			     "torn bytes saved by a recovery that a crash "
			     "interrupted, not yet recorded: run 'hozen "
			     "recover' to record and seal them");
		} else {
			fail(v, -1, 0, path,
			     "no recovery record names this file: chain/torn/ "
			     "holds only the copies that recovery records "
			     "name");
		}
	}
	closedir(d);
	return 0;
}

/* ------------------------------------------------------------ the store */

int hc_verify_store(const hc_store *s, const struct hc_verify_options *opts,
		    struct hc_verify_report *report)
{
	static const struct hc_verify_options no_opts;
	struct hc_verify_report rep;
	struct verifier v;
	hc_reader *r = NULL;
	hc_key *store_key = NULL, *fallback = NULL;
	hc_record rec;
	hc_merkle tree;
	uint8_t last[HC_HASH_LEN];
	char where[512], prev_where[512] = "", pending_where[512] = "";
	char pending_prev_where[512] = "";
	int64_t pending = -1; /* seq whose link from its predecessor broke */
	uint64_t p = 0;
	int rc;

	memset(&rep, 0, sizeof(rep));
	memset(&v, 0, sizeof(v));
	memset(&rec, 0, sizeof(rec));
	rep.fail_seq = -1;
	v.store = s;
	v.opts = opts ? opts : &no_opts;
	v.rep = &rep;
	hc_merkle_init(&tree);

	if (hc_store_marker_problem(s))
		fail(&v, -1, 0, HC_MARKER, "%s", hc_store_marker_problem(s));
	rc = find_key(&v, &store_key, &fallback);
	if (rc == 0)
		rc = load_trusted(&v);
	if (rc == 0 && v.key)
		rc = load_checkpoints(&v);
	if (rc < 0)
		goto out;

	rc = hc_reader_open(&r, hc_store_fd(s));
	if (rc == HC_EVERIFY || rc == HC_ENOENT) {
		fail(&v, 0, 0, HC_CHAIN_DIR, "%s", hc_error_message());
		v.chain_broken = 1;
		goto after_chain;
	}
	if (rc < 0)
		goto out;
	for (;;) {
		rc = hc_reader_next(r, &rec);
		if (rc == 0)
			break;
		if (rc == HC_EFORMAT || rc == HC_ETORN) {
			struct hc_torn t;

			if (rc == HC_ETORN) {
				rep.torn = 1;
				hc_reader_torn(r, &t);
				snprintf(where, sizeof(where),
					 "chain/%s:%" PRIu64, t.segment,
					 hc_reader_line(r) + 1);
			} else {
				snprintf(where, sizeof(where), "%s",
					 hc_reader_where(r));
			}
			if (pending >= 0)
				fail(&v, pending - 1, 0, pending_prev_where,
				     "record seq %" PRId64
				     " was altered: its hash does not match "
				     "the 'prev' of seq %" PRId64,
				     pending - 1, pending);
			fail(&v, (int64_t)p, 0, where, "%s%s",
			     hc_error_message(),
			     rc == HC_ETORN ? "; run 'hozen recover' to "
					      "preserve and seal it"
					    : "");
			pending = -1;
			v.chain_broken = 1;
			break;
		}
		if (rc < 0)
			goto out;
		snprintf(where, sizeof(where), "%s", hc_reader_where(r));

		if (rec.seq != p) {
			if (rec.seq > p)
				fail(&v, (int64_t)p, 0, where,
				     "seq %" PRIu64 " is missing: found seq "
				     "%" PRIu64 " where %" PRIu64
				     " was expected (record removed or "
				     "records reordered)",
				     p, rec.seq, p);
			else if (p > 0 &&
				 !CRYPTO_memcmp(rec.prev, last, HC_HASH_LEN))
				/* It links to its predecessor: its seq
				 * field is what was altered. */
				fail(&v, (int64_t)p, 0, where,
				     "record seq %" PRIu64 " was altered: it "
				     "says seq %" PRIu64,
				     p, rec.seq);
			else
				fail(&v, (int64_t)rec.seq, 0, where,
				     "seq %" PRIu64 " appears again where "
				     "%" PRIu64 " was expected (record "
				     "inserted or duplicated)",
				     rec.seq, p);
			pending = -1;
			v.chain_broken = 1;
			break;
		}
		if (p == 0) {
			rc = check_genesis(&v, &rec, where);
			if (rc < 0)
				goto out;
		} else {
			int linked =
				!CRYPTO_memcmp(rec.prev, last, HC_HASH_LEN);

			if (pending >= 0) {
				/*
				 * The link into `pending` broke.  If this
				 * link breaks too, `pending` itself changed
				 * (its prev and so its hash); otherwise its
				 * predecessor did.
				 */
				if (!linked)
					fail(&v, pending, 0, pending_where,
					     "record seq %" PRId64
					     " was altered: its 'prev' does "
					     "not match seq %" PRId64
					     " and its hash does not match "
					     "the 'prev' of seq %" PRIu64,
					     pending, pending - 1, p);
				else
					fail(&v, pending - 1, 0,
					     pending_prev_where,
					     "record seq %" PRId64
					     " was altered: its hash does not "
					     "match the 'prev' of seq %" PRId64,
					     pending - 1, pending);
				pending = -1;
				v.chain_broken = 1;
				break;
			}
			if (strcmp(rec.type, "genesis") == 0)
				fail(&v, (int64_t)p, 0, where,
				     "a second genesis record");
			if (!linked) {
				pending = (int64_t)p;
				snprintf(pending_where, sizeof(pending_where),
					 "%s", where);
				snprintf(pending_prev_where,
					 sizeof(pending_prev_where), "%s",
					 prev_where);
			}
		}
		if (hc_reader_at_segment_start(r) &&
		    hc_reader_segment_first(r) != rec.seq) {
			fail(&v, (int64_t)p, 0, where,
			     "the segment's name says it starts at seq "
			     "%" PRIu64,
			     hc_reader_segment_first(r));
			pending = -1;
			v.chain_broken = 1;
			break;
		}
		if (v.key && strcmp(rec.type, "checkpoint") == 0 &&
		    !have_checkpoint(&v, p + 1)) {
			char path[64];

			hc_checkpoint_name(p + 1, path);
			fail(&v, (int64_t)p, p + 1, where,
			     "seq %" PRIu64 " announces checkpoint '%s', which "
			     "is missing (deleted, or a crash before it was "
			     "written: 'hozen recover' rewrites it)",
			     p, path);
		}
		if (strcmp(rec.type, "recovery") == 0) {
			rc = note_recovery(&v, &rec, where);
			if (rc < 0)
				goto out;
		} else {
			hc_reader_mark(r, &v.last_other);
		}
		if (strcmp(rec.type, "adopt") == 0)
			check_adopt(&v, &rec, where);
		if (strcmp(rec.type, "checkpoint") == 0)
			v.sealed = p + 1;
		rc = hc_merkle_push(&tree, rec.leaf);
		if (rc < 0)
			goto out;
		memcpy(last, rec.hash, HC_HASH_LEN);
		snprintf(prev_where, sizeof(prev_where), "%s", where);
		/* A broken link is named by the next record, not the root. */
		if (pending < 0) {
			rc = check_roots(&v, &tree);
			if (rc == 0)
				rc = call_hook(&v, &rec, where);
			if (rc < 0)
				goto out;
		}
		p++;
	}
	if (pending >= 0) {
		/* The last record: no successor tells which side changed. */
		fail(&v, pending,
		     v.next_ck < v.nck && v.ck[v.next_ck].size == p ? p : 0,
		     pending_where,
		     "the last record, seq %" PRId64 ", does not link to seq "
		     "%" PRId64 ": it (or seq %" PRId64 ") was altered",
		     pending, pending - 1, pending - 1);
		v.chain_broken = 1;
	}
after_chain:
	rep.records = p;
	if (!v.chain_broken && p == 0) {
		fail(&v, 0, 0, HC_CHAIN_DIR, "the log has no genesis record");
		v.chain_broken = 1;
	}
	if (v.origin && v.ck_origin && strcmp(v.origin, v.ck_origin) != 0) {
		char path[64];

		hc_checkpoint_name(v.ck_origin_size, path);
		fail(&v, -1, v.ck_origin_size, path,
		     "checkpoint origin '%s' is not the store's '%s'",
		     v.ck_origin, v.origin);
	}
	if (!v.chain_broken && v.next_ck < v.nck) {
		char path[64];

		hc_checkpoint_name(v.ck[v.next_ck].size, path);
		fail(&v, (int64_t)p, v.ck[v.next_ck].size, path,
		     "the checkpoint covers %" PRIu64
		     " records but the log has only %" PRIu64
		     ": the log was truncated",
		     v.ck[v.next_ck].size, p);
	}
	if (v.trusted && v.origin && strcmp(v.trusted->origin, v.origin))
		fail(&v, -1, 0, "trusted checkpoint",
		     "it is of origin '%s', not the store's '%s'",
		     v.trusted->origin, v.origin);
	else if (v.trusted && !v.chain_broken && !v.trusted_met)
		fail(&v, (int64_t)p, 0, "trusted checkpoint",
		     "it covers %" PRIu64 " records but the log has only "
		     "%" PRIu64 ": the log was rolled back or rewritten",
		     v.trusted->size, p);
	rc = check_pem(&v);
	if (rc == 0)
		rc = check_private(&v);
	if (rc == 0)
		rc = check_layout(&v);
	if (rc == 0)
		rc = check_chain_dir(&v);
	if (rc == 0)
		rc = check_torn(&v);
	if (rc == 0)
		rc = hc_merkle_root(&tree, rep.root);
	if (rc < 0)
		goto out;
	rep.sealed = v.last_good_ck;
	rep.latest_size = v.last_good_ck;
	rep.chain_intact = !v.chain_broken;
	rep.on_record_failed = v.case_stopped;
	if (!v.failed && rep.sealed < rep.records && !v.opts->allow_unsealed)
		rep.verdict = HC_UNSEALED;
	*report = rep;
	rc = 0;
out:
	hc_record_release(&rec);
	hc_reader_free(r);
	hc_key_free(store_key);
	hc_key_free(fallback);
	hc_checkpoint_free(v.trusted);
	free(v.ck);
	free(v.bad_ck);
	free(v.recs);
	free(v.origin);
	free(v.ck_origin);
	return rc;
}
