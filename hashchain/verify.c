/*
 * verify.c - verification of a whole store: the chain, the key and every
 * checkpoint.  The rules are those of docs/FORMAT.md, "Verifying a store".
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"

struct ckpt {
	uint64_t size;
	uint8_t root[HC_HASH_LEN];
};

struct verifier {
	const hc_store *store;
	const struct hc_verify_options *opts;
	struct hc_verify_report *rep;
	const hc_key *key;
	struct ckpt *ck;
	size_t nck, next_ck; /* next_ck: next checkpoint to meet */
	uint64_t last_good_ck;
	char *origin;	 /* the genesis record's */
	char *ck_origin; /* the checkpoints' (all the same) */
	uint64_t ck_origin_size;
	int failed;
};

__attribute__((format(printf, 5, 6))) static void
fail(struct verifier *v, int64_t seq, uint64_t ckpt, const char *where,
     const char *fmt, ...)
{
	va_list ap;

	if (v->failed)
		return;
	v->failed = 1;
	v->rep->verdict = HC_INVALID;
	v->rep->fail_seq = seq;
	v->rep->fail_checkpoint = ckpt;
	snprintf(v->rep->where, sizeof(v->rep->where), "%s", where);
	va_start(ap, fmt);
	vsnprintf(v->rep->reason, sizeof(v->rep->reason), fmt, ap);
	va_end(ap);
	hc_findings_add(v->opts->findings, seq, ckpt, where, "%s",
			v->rep->reason);
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
	for (i = 0; i < n && !v->failed; i++) {
		hc_checkpoint_name(sizes[i], path);
		rc = hc_store_read_checkpoint(v->store, sizes[i], v->key, &c);
		if (rc == HC_EVERIFY || rc == HC_EFORMAT || rc == HC_ENOENT) {
			fail(v, -1, sizes[i], path, "%s", hc_error_message());
			break;
		}
		if (rc < 0)
			goto out;
		if (c->size == 0) {
			fail(v, -1, sizes[i], path,
			     "a checkpoint of the empty tree is not valid");
		}
		if (!v->ck_origin) {
			v->ck_origin = strdup(c->origin);
			v->ck_origin_size = c->size;
		} else if (strcmp(v->ck_origin, c->origin) != 0) {
			fail(v, -1, sizes[i], path,
			     "checkpoint origin '%s' differs from the origin "
			     "'%s' of the checkpoint of size %" PRIu64,
			     c->origin, v->ck_origin, v->ck_origin_size);
		}
		v->ck[v->nck].size = c->size;
		memcpy(v->ck[v->nck].root, c->root, HC_HASH_LEN);
		v->nck++;
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
	size_t lo = 0, hi = v->nck;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v->ck[mid].size == size)
			return 1;
		if (v->ck[mid].size < size)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* The genesis record: seq 0, zero prev, the key and the origin. */
static void check_genesis(struct verifier *v, const hc_record *rec,
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
		return;
	}
	if (CRYPTO_memcmp(rec->prev, hc_zero_hash, HC_HASH_LEN)) {
		fail(v, 0, 0, where, "the genesis 'prev' is not all zeros");
		return;
	}
	if (!vkey || !origin || hc_key_parse_vkey(&gk, vkey) < 0) {
		fail(v, 0, 0, where,
		     "the genesis record lacks a valid 'key.vkey' or "
		     "'store.origin'");
		return;
	}
	if (!hc_key_equal_public(gk, v->key)) {
		fail(v, 0, 0, where,
		     "the genesis record names the key '%s', not the "
		     "verifying key '%s'",
		     vkey, hc_key_vkey(v->key));
		hc_key_free(gk);
		return;
	}
	hc_key_free(gk);
	/* Checked against the checkpoints once the chain verified. */
	v->origin = strdup(origin);
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
			return 0;
		}
		v->last_good_ck = tree->size;
		v->rep->checkpoints++;
		v->next_ck++;
	}
	return 0;
}

int hc_verify_store(const hc_store *s, const struct hc_verify_options *opts,
		    struct hc_verify_report *report)
{
	static const struct hc_verify_options no_opts;
	struct hc_verify_report rep;
	struct verifier v;
	hc_reader *r = NULL;
	hc_key *store_key = NULL;
	hc_record rec;
	hc_merkle tree;
	uint8_t last[HC_HASH_LEN];
	char where[512], prev_where[512] = "", pending_where[512] = "";
	char pending_prev_where[512] = "";
	int64_t pending = -1; /* seq whose link from its predecessor broke */
	uint64_t p = 0;
	int rc, krc;

	memset(&rep, 0, sizeof(rep));
	memset(&v, 0, sizeof(v));
	memset(&rec, 0, sizeof(rec));
	rep.fail_seq = -1;
	v.store = s;
	v.opts = opts ? opts : &no_opts;
	v.rep = &rep;
	hc_merkle_init(&tree);

	krc = hc_store_public_key(s, &store_key);
	if (v.opts->trusted_key) {
		v.key = v.opts->trusted_key;
		if (krc == 0 && !hc_key_equal_public(store_key, v.key))
			fail(&v, -1, 0, HC_KEY_VKEY,
			     "the store's key '%s' is not the trusted key '%s'",
			     hc_key_vkey(store_key), hc_key_vkey(v.key));
	} else if (krc == HC_ESYS || krc == HC_ENOMEM) {
		rc = krc; /* cannot read it: not a verdict on the evidence */
		goto out;
	} else if (krc < 0) {
		fail(&v, -1, 0, HC_KEY_VKEY, "%s", hc_error_message());
	} else {
		v.key = store_key;
	}
	if (v.failed)
		goto done;
	rc = load_checkpoints(&v);
	if (rc < 0)
		goto out;
	if (v.failed)
		goto done;

	rc = hc_reader_open(&r, hc_store_fd(s));
	if (rc == HC_EVERIFY) {
		fail(&v, 0, 0, HC_CHAIN_DIR, "%s", hc_error_message());
		goto done;
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
				snprintf(where, sizeof(where),
					 "chain/%s:%" PRIu64,
					 hc_reader_segment(r),
					 hc_reader_line(r));
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
			break;
		}
		if (p == 0) {
			check_genesis(&v, &rec, where);
			if (v.failed)
				break;
		} else {
			int linked =
				!CRYPTO_memcmp(rec.prev, last, HC_HASH_LEN);

			if (strcmp(rec.type, "genesis") == 0) {
				fail(&v, (int64_t)p, 0, where,
				     "a second genesis record");
				break;
			}
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
				break;
			}
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
			break;
		}
		if (strcmp(rec.type, "checkpoint") == 0 &&
		    !have_checkpoint(&v, p + 1)) {
			char path[64];

			hc_checkpoint_name(p + 1, path);
			fail(&v, (int64_t)p, p + 1, where,
			     "seq %" PRIu64 " announces checkpoint '%s', which "
			     "is missing (deleted, or a crash before it was "
			     "written: 'hozen recover' rewrites it)",
			     p, path);
			break;
		}
		rc = hc_merkle_push(&tree, rec.leaf);
		if (rc < 0)
			goto out;
		memcpy(last, rec.hash, HC_HASH_LEN);
		snprintf(prev_where, sizeof(prev_where), "%s", where);
		/* A broken link is named by the next record, not the root. */
		rc = pending < 0 ? check_roots(&v, &tree) : 0;
		if (rc < 0)
			goto out;
		if (v.failed)
			break;
		if (v.opts->on_record && pending < 0) {
			rc = v.opts->on_record(v.opts->ctx, &rec);
			if (rc == HC_EVERIFY) {
				fail(&v, (int64_t)p, 0, where, "%s",
				     hc_error_message());
				break;
			}
			if (rc < 0)
				goto out;
		}
		p++;
	}
	rep.records = p;
	if (!v.failed && pending >= 0)
		/* The last record: no successor tells which side changed. */
		fail(&v, pending,
		     v.next_ck < v.nck && v.ck[v.next_ck].size == p ? p : 0,
		     pending_where,
		     "the last record, seq %" PRId64 ", does not link to seq "
		     "%" PRId64 ": it (or seq %" PRId64 ") was altered",
		     pending, pending - 1, pending - 1);
	if (!v.failed && p == 0)
		fail(&v, 0, 0, HC_CHAIN_DIR, "the log has no genesis record");
	if (!v.failed && v.origin && v.ck_origin &&
	    strcmp(v.origin, v.ck_origin) != 0) {
		char path[64];

		hc_checkpoint_name(v.ck_origin_size, path);
		fail(&v, -1, v.ck_origin_size, path,
		     "checkpoint origin '%s' is not the store's '%s'",
		     v.ck_origin, v.origin);
	}
	if (!v.failed && v.next_ck < v.nck) {
		char path[64];

		hc_checkpoint_name(v.ck[v.next_ck].size, path);
		fail(&v, (int64_t)p, v.ck[v.next_ck].size, path,
		     "the checkpoint covers %" PRIu64
		     " records but the log has only %" PRIu64
		     ": the log was truncated",
		     v.ck[v.next_ck].size, p);
	}
	rc = hc_merkle_root(&tree, rep.root);
	if (rc < 0)
		goto out;
done:
	rep.sealed = v.last_good_ck;
	rep.latest_size = v.last_good_ck;
	if (!v.failed && rep.sealed < rep.records && !v.opts->allow_unsealed)
		rep.verdict = HC_UNSEALED;
	*report = rep;
	rc = 0;
out:
	hc_record_release(&rec);
	hc_reader_free(r);
	hc_key_free(store_key);
	free(v.ck);
	free(v.origin);
	free(v.ck_origin);
	return rc;
}
