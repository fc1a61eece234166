/*
 * proof.c - inclusion and consistency proof documents (FORMAT.md,
 * "Proofs"): producing them from a store, and verifying them offline
 * against a verifier key alone.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"

#define PROOF_VERSION 1
#define PROOF_MAX     (4u << 20)

/* Leaf hashes read sequentially from the log. */
struct log_leaves {
	hc_reader *r;
	hc_record rec;
	uint64_t next; /* index of the next record the reader returns */
	uint64_t want_seq;
	char *want_line; /* copy of the record want_seq, when met */
};

static int read_leaf(void *ctx, uint64_t index, uint8_t out[HC_HASH_LEN])
{
	struct log_leaves *l = ctx;
	int rc;

	while (l->next <= index) {
		rc = hc_reader_next(l->r, &l->rec);
		if (rc == 0 || rc == HC_ETORN)
			return hc_error_set(
				HC_EVERIFY,
				"the log ends before record %" PRIu64, index);
		if (rc < 0)
			return rc;
		if (l->rec.seq != l->next)
			return hc_error_set(HC_EVERIFY,
					    "%s: seq %" PRIu64 " where %" PRIu64
					    " was expected; run 'hozen verify'",
					    hc_reader_where(l->r), l->rec.seq,
					    l->next);
		if (l->next == l->want_seq && !l->want_line) {
			l->want_line = strndup(l->rec.line, l->rec.len);
			if (!l->want_line)
				return hc_error_set(HC_ENOMEM, "out of memory");
		}
		l->next++;
	}
	memcpy(out, l->rec.leaf, HC_HASH_LEN);
	return 0;
}

static json_t *hashes_json(const hc_proof *p)
{
	json_t *a = json_array();
	char hex[HC_HEX_LEN + 1];
	size_t i;

	for (i = 0; a && i < p->n; i++) {
		hc_hex(p->hash[i], HC_HASH_LEN, hex);
		if (json_array_append_new(a, json_string(hex)) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/*
 * The checkpoint of size want (0: the latest) of the store, verified with
 * the store's key.
 */
static int latest_checkpoint(const hc_store *s, uint64_t want,
			     hc_checkpoint **out)
{
	uint64_t *sizes = NULL;
	hc_key *key = NULL;
	size_t n = 0;
	int rc;

	rc = hc_store_public_key(s, &key);
	if (rc == 0)
		rc = hc_store_checkpoints(s, &sizes, &n);
	if (rc < 0)
		goto out;
	if (n == 0) {
		rc = hc_error_set(HC_ENOENT, "the store has no checkpoint; run "
					     "'hozen checkpoint' first");
		goto out;
	}
	rc = hc_store_read_checkpoint(s, want ? want : sizes[n - 1], key, out);
out:
	free(sizes);
	hc_key_free(key);
	return rc;
}

int hc_prove_inclusion(const hc_store *s, uint64_t seq, char **out)
{
	struct log_leaves l;
	hc_checkpoint *ck = NULL;
	hc_proof proof = {0};
	json_t *doc = NULL;
	char *text = NULL;
	int rc;

	memset(&l, 0, sizeof(l));
	l.want_seq = seq;
	rc = latest_checkpoint(s, 0, &ck);
	if (rc < 0)
		return rc;
	if (seq >= ck->size) {
		rc = hc_error_set(HC_EINVAL,
				  "seq %" PRIu64 " is not covered by the "
				  "latest checkpoint (size %" PRIu64
				  "); run 'hozen checkpoint' first",
				  seq, ck->size);
		goto out;
	}
	rc = hc_reader_open(&l.r, hc_store_fd(s));
	if (rc == 0)
		rc = hc_merkle_inclusion_proof(&proof, seq, ck->size, read_leaf,
					       &l);
	if (rc == 0 && !l.want_line) {
		uint8_t dummy[HC_HASH_LEN];

		rc = read_leaf(&l, seq, dummy);
	}
	if (rc < 0)
		goto out;
	doc = json_pack("{s:i,s:s,s:I,s:s,s:I,s:o,s:s}", "hozen_proof",
			PROOF_VERSION, "type", "inclusion", "seq",
			(json_int_t)seq, "record", l.want_line, "tree_size",
			(json_int_t)ck->size, "path", hashes_json(&proof),
			"checkpoint", ck->text);
	text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
	if (!text) {
		rc = hc_error_set(HC_ENOMEM, "cannot build the proof");
		goto out;
	}
	*out = text;
out:
	json_decref(doc);
	hc_proof_release(&proof);
	hc_record_release(&l.rec);
	hc_reader_free(l.r);
	free(l.want_line);
	hc_checkpoint_free(ck);
	return rc;
}

int hc_prove_consistency(const hc_store *s, uint64_t old_size,
			 uint64_t new_size, char **out)
{
	struct log_leaves l;
	hc_checkpoint *a = NULL, *b = NULL;
	hc_proof proof = {0};
	json_t *doc = NULL;
	char *text = NULL;
	int rc;

	memset(&l, 0, sizeof(l));
	l.want_seq = UINT64_MAX;
	rc = latest_checkpoint(s, old_size, &a);
	if (rc == 0)
		rc = latest_checkpoint(s, new_size, &b);
	if (rc < 0)
		goto out;
	if (a->size > b->size) {
		rc = hc_error_set(HC_EINVAL, "the old checkpoint is larger "
					     "than the new one");
		goto out;
	}
	rc = hc_reader_open(&l.r, hc_store_fd(s));
	if (rc == 0)
		rc = hc_merkle_consistency_proof(&proof, a->size, b->size,
						 read_leaf, &l);
	if (rc < 0)
		goto out;
	doc = json_pack("{s:i,s:s,s:o,s:s,s:s}", "hozen_proof", PROOF_VERSION,
			"type", "consistency", "path", hashes_json(&proof),
			"old_checkpoint", a->text, "checkpoint", b->text);
	text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
	if (!text) {
		rc = hc_error_set(HC_ENOMEM, "cannot build the proof");
		goto out;
	}
	*out = text;
out:
	json_decref(doc);
	hc_proof_release(&proof);
	hc_record_release(&l.rec);
	hc_reader_free(l.r);
	hc_checkpoint_free(a);
	hc_checkpoint_free(b);
	return rc;
}

/* ---------------------------------------------------------------- verify */

static int parse_path(json_t *arr, hc_proof *out)
{
	size_t i, n;

	if (!json_is_array(arr))
		return hc_error_set(HC_EFORMAT, "'path' must be an array");
	n = json_array_size(arr);
	if (n > 128)
		return hc_error_set(HC_EFORMAT,
				    "'path' has %zu hashes; a "
				    "proof has at most 128",
				    n);
	out->n = n;
	out->hash = calloc(n ? n : 1, HC_HASH_LEN);
	if (!out->hash)
		return hc_error_set(HC_ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		const char *hex = json_string_value(json_array_get(arr, i));

		if (!hex || hc_unhex(hex, out->hash[i], HC_HASH_LEN) < 0)
			return hc_error_set(HC_EFORMAT,
					    "'path' entry %zu is not 64 hex "
					    "digits",
					    i);
	}
	return 0;
}

static int parse_ckpt_field(json_t *doc, const char *field, const hc_key *key,
			    hc_checkpoint **out)
{
	json_t *t = json_object_get(doc, field);
	int rc;

	if (!json_is_string(t))
		return hc_error_set(HC_EFORMAT, "'%s' must be a string", field);
	rc = hc_checkpoint_parse(out, json_string_value(t),
				 json_string_length(t), key);
	if (rc < 0)
		return hc_error_prefix(rc, "'%s'", field);
	return 0;
}

int hc_proof_verify(const char *doc_text, size_t len, const hc_key *key,
		    const char *checkpoint, size_t checkpoint_len,
		    char **summary)
{
	json_error_t jerr;
	json_t *doc = NULL, *v;
	hc_checkpoint *ck = NULL, *old = NULL, *pin = NULL;
	hc_record rec;
	hc_proof proof = {0};
	const char *type, *line;
	char buf[1024];
	int rc, n;

	memset(&rec, 0, sizeof(rec));
	if (len > PROOF_MAX)
		return hc_error_set(HC_EFORMAT, "proof larger than %u bytes",
				    PROOF_MAX);
	doc = json_loadb(doc_text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc || !json_is_object(doc)) {
		rc = hc_error_set(HC_EFORMAT, "not a proof document: %s",
				  doc ? "not a JSON object" : jerr.text);
		goto out;
	}
	v = json_object_get(doc, "hozen_proof");
	type = json_string_value(json_object_get(doc, "type"));
	if (!json_is_integer(v) || json_integer_value(v) != PROOF_VERSION ||
	    !type) {
		rc = hc_error_set(HC_EFORMAT, "not a hozen proof of version %d",
				  PROOF_VERSION);
		goto out;
	}
	rc = parse_ckpt_field(doc, "checkpoint", key, &ck);
	if (rc == 0)
		rc = parse_path(json_object_get(doc, "path"), &proof);
	if (rc < 0)
		goto out;
	if (checkpoint) {
		rc = hc_checkpoint_parse(&pin, checkpoint, checkpoint_len, key);
		if (rc < 0) {
			rc = hc_error_prefix(rc, "trusted checkpoint");
			goto out;
		}
		if (pin->size != ck->size ||
		    CRYPTO_memcmp(pin->root, ck->root, HC_HASH_LEN) ||
		    strcmp(pin->origin, ck->origin)) {
			rc = hc_error_set(HC_EVERIFY,
					  "the proof is against a checkpoint "
					  "of size %" PRIu64
					  ", not the trusted one (size "
					  "%" PRIu64 ")",
					  ck->size, pin->size);
			goto out;
		}
	}
	if (strcmp(type, "inclusion") == 0) {
		json_t *seq = json_object_get(doc, "seq");
		json_t *size = json_object_get(doc, "tree_size");

		line = json_string_value(json_object_get(doc, "record"));
		if (!json_is_integer(seq) || json_integer_value(seq) < 0 ||
		    !json_is_integer(size) || !line) {
			rc = hc_error_set(HC_EFORMAT,
					  "an inclusion proof needs 'seq', "
					  "'tree_size' and 'record'");
			goto out;
		}
		if ((uint64_t)json_integer_value(size) != ck->size) {
			rc = hc_error_set(HC_EVERIFY,
					  "'tree_size' is not the checkpoint's "
					  "size");
			goto out;
		}
		rc = hc_record_parse(
			&rec, line,
			json_string_length(json_object_get(doc, "record")));
		if (rc < 0) {
			rc = hc_error_prefix(HC_EVERIFY, "'record'");
			goto out;
		}
		if (rec.seq != (uint64_t)json_integer_value(seq)) {
			rc = hc_error_set(HC_EVERIFY,
					  "the record's seq is not the proof's "
					  "'seq'");
			goto out;
		}
		rc = hc_merkle_verify_inclusion(rec.leaf, rec.seq, ck->size,
						&proof, ck->root);
		if (rc == HC_EINVAL) /* sizes no honest proof has */
			rc = HC_EVERIFY;
		if (rc < 0)
			goto out;
		n = snprintf(
			buf, sizeof(buf),
			"record seq %" PRIu64 " (%s, %s) is in the log "
			"'%s' of %" PRIu64 " records signed by '%s'",
			rec.seq, rec.type,
			json_string_value(json_object_get(rec.json, "time")),
			ck->origin, ck->size,
			hc_key_is_named(key) ? hc_key_name(key)
					     : "the given key");
	} else if (strcmp(type, "consistency") == 0) {
		rc = parse_ckpt_field(doc, "old_checkpoint", key, &old);
		if (rc < 0)
			goto out;
		if (strcmp(old->origin, ck->origin) != 0) {
			rc = hc_error_set(HC_EVERIFY, "the two checkpoints are "
						      "of different logs");
			goto out;
		}
		rc = hc_merkle_verify_consistency(old->size, ck->size,
						  old->root, ck->root, &proof);
		if (rc == HC_EINVAL)
			rc = HC_EVERIFY;
		if (rc < 0)
			goto out;
		n = snprintf(buf, sizeof(buf),
			     "the log '%s' of %" PRIu64
			     " records only appended to its checkpoint of "
			     "%" PRIu64 " records",
			     ck->origin, ck->size, old->size);
	} else {
		rc = hc_error_set(HC_EFORMAT, "unknown proof type '%s'", type);
		goto out;
	}
	if (summary) {
		*summary = n > 0 ? strdup(buf) : NULL;
		if (!*summary) {
			rc = hc_error_set(HC_ENOMEM, "out of memory");
			goto out;
		}
	}
	rc = 0;
out:
	hc_record_release(&rec);
	hc_proof_release(&proof);
	hc_checkpoint_free(ck);
	hc_checkpoint_free(old);
	hc_checkpoint_free(pin);
	json_decref(doc);
	return rc;
}
