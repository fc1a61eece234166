/*
 * merkle.c - the Merkle tree of RFC 9162 section 2.1 (the tree of RFC
 * 6962): leaf and node hashes, the incremental tree, inclusion and
 * consistency proofs and their verification.
 *
 * Proofs are built in O(log n) memory.  The leaf ranges whose subtree
 * hashes make up a proof follow from the sizes alone; the leaves are then
 * read once, in increasing order, each pushed into the small incremental
 * tree of every range that holds it, and each range's root is a proof hash.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "hashchain.h"

/*
 * A tree of at most 2^64 - 1 leaves is at most 64 levels high: an
 * inclusion proof has at most 64 hashes, a consistency proof 65.
 */
#define MAX_SPANS 65

/* The leaves [start, end) whose subtree hash is one proof hash. */
struct span {
	uint64_t start;
	uint64_t end;
};

/* ----------------------------------------------------------------- hashes */

int hc_merkle_leaf_hash(const void *data, size_t len, uint8_t out[HC_HASH_LEN])
{
	static const uint8_t prefix = 0x00;
	hc_sha256_ctx *c = NULL;
	uint8_t h[HC_HASH_LEN];
	int rc;

	if (!data && len > 0)
		return hc_error_set(HC_EINVAL, "leaf data is missing");
	rc = hc_sha256_new(&c);
	if (rc < 0)
		goto out;
	rc = hc_sha256_update(c, &prefix, 1);
	if (rc < 0)
		goto out;
	if (len > 0) {
		rc = hc_sha256_update(c, data, len);
		if (rc < 0)
			goto out;
	}
	rc = hc_sha256_final(c, h);
	if (rc < 0)
		goto out;
	memcpy(out, h, HC_HASH_LEN);
out:
	hc_sha256_free(c);
	return rc;
}

/* out may be left or right: the inputs are copied before out is written. */
int hc_merkle_node_hash(const uint8_t left[HC_HASH_LEN],
			const uint8_t right[HC_HASH_LEN],
			uint8_t out[HC_HASH_LEN])
{
	uint8_t buf[1 + 2 * HC_HASH_LEN];
	uint8_t h[HC_HASH_LEN];
	int rc;

	buf[0] = 0x01;
	memcpy(buf + 1, left, HC_HASH_LEN);
	memcpy(buf + 1 + HC_HASH_LEN, right, HC_HASH_LEN);
	rc = hc_sha256(buf, sizeof(buf), h);
	if (rc < 0)
		return rc;
	memcpy(out, h, HC_HASH_LEN);
	return 0;
}

/* ------------------------------------------------------- incremental tree */

void hc_merkle_init(hc_merkle *t)
{
	memset(t, 0, sizeof(*t));
}

/* The stack holds one subtree per bit set in size, so its depth is fixed. */
static int check_tree(const hc_merkle *t)
{
	if (!t)
		return hc_error_set(HC_EINVAL, "no Merkle tree given");
	if (t->depth > 64 ||
	    t->depth != (unsigned)__builtin_popcountll(t->size))
		return hc_error_set(HC_EINVAL,
				    "inconsistent Merkle tree state (%" PRIu64
				    " leaves, %u subtrees)",
				    t->size, t->depth);
	return 0;
}

int hc_merkle_push(hc_merkle *t, const uint8_t leaf[HC_HASH_LEN])
{
	uint8_t cur[HC_HASH_LEN];
	uint64_t n;
	unsigned d;
	int rc;

	rc = check_tree(t);
	if (rc < 0)
		return rc;
	if (t->size == UINT64_MAX)
		return hc_error_set(HC_EINVAL, "the Merkle tree is full");
	/*
	 * A binary counter: each trailing one bit of size is a subtree as
	 * large as the one being carried, so the two merge.  The tree is
	 * only written once every hash has succeeded.
	 */
	memcpy(cur, leaf, HC_HASH_LEN);
	d = t->depth;
	for (n = t->size; n & 1; n >>= 1) {
		d--;
		rc = hc_merkle_node_hash(t->stack[d], cur, cur);
		if (rc < 0)
			return rc;
	}
	memcpy(t->stack[d], cur, HC_HASH_LEN);
	t->depth = d + 1;
	t->size++;
	return 0;
}

int hc_merkle_root(const hc_merkle *t, uint8_t out[HC_HASH_LEN])
{
	uint8_t cur[HC_HASH_LEN];
	unsigned i;
	int rc;

	rc = check_tree(t);
	if (rc < 0)
		return rc;
	if (t->depth == 0) {
		rc = hc_sha256("", 0, cur);
		if (rc < 0)
			return rc;
		memcpy(out, cur, HC_HASH_LEN);
		return 0;
	}
	/* root = H(S1, H(S2, ... H(Sd-1, Sd))): fold from the right. */
	memcpy(cur, t->stack[t->depth - 1], HC_HASH_LEN);
	for (i = t->depth - 1; i-- > 0;) {
		rc = hc_merkle_node_hash(t->stack[i], cur, cur);
		if (rc < 0)
			return rc;
	}
	memcpy(out, cur, HC_HASH_LEN);
	return 0;
}

/* ------------------------------------------------------------ proof shape */

/* The largest power of two smaller than n (n >= 2): RFC 9162's k. */
static uint64_t split_of(uint64_t n)
{
	return UINT64_C(1) << (63 - __builtin_clzll(n - 1));
}

static void reverse_spans(struct span *s, size_t n)
{
	struct span tmp;
	size_t i;

	for (i = 0; i < n / 2; i++) {
		tmp = s[i];
		s[i] = s[n - 1 - i];
		s[n - 1 - i] = tmp;
	}
}

/*
 * The spans of PATH(index, D[0:size]) (RFC 9162 2.1.3.1), in proof order.
 * The recursion appends each level's sibling after the deeper path, so
 * walking down from the root yields them in reverse.
 */
static size_t inclusion_spans(uint64_t index, uint64_t size, struct span *s)
{
	uint64_t start = 0, end = size, k;
	size_t n = 0;

	while (end - start > 1) {
		k = split_of(end - start);
		if (index < start + k) {
			s[n].start = start + k;
			s[n].end = end;
			end = start + k;
		} else {
			s[n].start = start;
			s[n].end = start + k;
			start += k;
		}
		n++;
	}
	reverse_spans(s, n);
	return n;
}

/*
 * The spans of PROOF(m, D[0:size]) = SUBPROOF(m, D[0:size], true) (RFC
 * 9162 2.1.4.1), in proof order.  m is relative to start; whole is the
 * flag b: the current subtree is still the one the old root covers whole.
 */
static size_t consistency_spans(uint64_t m, uint64_t size, struct span *s)
{
	uint64_t start = 0, end = size, k;
	int whole = 1;
	size_t n = 0;

	while (m != end - start) {
		k = split_of(end - start);
		if (m <= k) {
			s[n].start = start + k;
			s[n].end = end;
			end = start + k;
		} else {
			s[n].start = start;
			s[n].end = start + k;
			start += k;
			m -= k;
			whole = 0;
		}
		n++;
	}
	if (!whole) {
		s[n].start = start;
		s[n].end = end;
		n++;
	}
	reverse_spans(s, n);
	return n;
}

/* The first leaf index >= from inside a span into *idx; 0 if none is. */
static int next_leaf(const struct span *s, size_t n, uint64_t from,
		     uint64_t *idx)
{
	uint64_t best = 0, c;
	int found = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i].end <= from)
			continue;
		c = s[i].start > from ? s[i].start : from;
		if (!found || c < best)
			best = c;
		found = 1;
	}
	*idx = best;
	return found;
}

/*
 * Read the leaves of the spans once, in increasing index order, into one
 * incremental tree per span, and make the span roots the proof.
 */
static int build_proof(hc_proof *out, const struct span *s, size_t n,
		       hc_leaf_reader read, void *ctx)
{
	uint8_t(*hash)[HC_HASH_LEN] = NULL;
	hc_merkle *trees = NULL;
	uint8_t leaf[HC_HASH_LEN];
	uint64_t idx;
	size_t i;
	int more, rc = 0;

	if (n == 0) {
		out->n = 0;
		out->hash = NULL;
		return 0;
	}
	trees = malloc(n * sizeof(*trees));
	hash = malloc(n * sizeof(*hash));
	if (!trees || !hash) {
		rc = hc_error_set(HC_ENOMEM, "out of memory for a proof");
		goto out;
	}
	for (i = 0; i < n; i++)
		hc_merkle_init(&trees[i]);
	/* A span ends at most at size <= UINT64_MAX, so idx + 1 is safe. */
	for (more = next_leaf(s, n, 0, &idx); more;
	     more = next_leaf(s, n, idx + 1, &idx)) {
		rc = read(ctx, idx, leaf);
		if (rc > 0)
			rc = hc_error_set(HC_EINVAL,
					  "leaf reader returned %d for leaf "
					  "%" PRIu64,
					  rc, idx);
		if (rc < 0)
			goto out;
		for (i = 0; i < n; i++) {
			if (idx < s[i].start || idx >= s[i].end)
				continue;
			rc = hc_merkle_push(&trees[i], leaf);
			if (rc < 0)
				goto out;
		}
	}
	for (i = 0; i < n; i++) {
		rc = hc_merkle_root(&trees[i], hash[i]);
		if (rc < 0)
			goto out;
	}
	out->n = n;
	out->hash = hash;
	hash = NULL;
out:
	free(trees);
	free(hash);
	return rc;
}

int hc_merkle_inclusion_proof(hc_proof *out, uint64_t index, uint64_t size,
			      hc_leaf_reader read, void *ctx)
{
	struct span s[MAX_SPANS];
	size_t n;

	if (!out || !read)
		return hc_error_set(HC_EINVAL,
				    "inclusion proof: no output or reader");
	if (index >= size)
		return hc_error_set(HC_EINVAL,
				    "leaf %" PRIu64
				    " is not in a tree of %" PRIu64 " leaves",
				    index, size);
	n = inclusion_spans(index, size, s);
	return build_proof(out, s, n, read, ctx);
}

int hc_merkle_consistency_proof(hc_proof *out, uint64_t old_size,
				uint64_t new_size, hc_leaf_reader read,
				void *ctx)
{
	struct span s[MAX_SPANS];
	size_t n;

	if (!out || !read)
		return hc_error_set(HC_EINVAL,
				    "consistency proof: no output or reader");
	if (old_size == 0)
		return hc_error_set(HC_EINVAL,
				    "no consistency proof from an empty tree");
	if (old_size > new_size)
		return hc_error_set(HC_EINVAL,
				    "old tree size %" PRIu64
				    " is larger than new tree size %" PRIu64,
				    old_size, new_size);
	n = consistency_spans(old_size, new_size, s);
	return build_proof(out, s, n, read, ctx);
}

void hc_proof_release(hc_proof *p)
{
	if (!p)
		return;
	free(p->hash);
	memset(p, 0, sizeof(*p));
}

/* ------------------------------------------------------------ verification */

static int check_proof_arg(const hc_proof *proof)
{
	if (!proof || (proof->n > 0 && !proof->hash))
		return hc_error_set(HC_EINVAL, "no proof given");
	return 0;
}

/* RFC 9162 2.1.3.2, step by step. */
int hc_merkle_verify_inclusion(const uint8_t leaf[HC_HASH_LEN], uint64_t index,
			       uint64_t size, const hc_proof *proof,
			       const uint8_t root[HC_HASH_LEN])
{
	uint8_t r[HC_HASH_LEN];
	uint64_t fn, sn;
	size_t i;
	int rc;

	rc = check_proof_arg(proof);
	if (rc < 0)
		return rc;
	if (!leaf || !root)
		return hc_error_set(HC_EINVAL, "no leaf hash or root given");
	if (index >= size)
		return hc_error_set(HC_EINVAL,
				    "leaf %" PRIu64
				    " is not in a tree of %" PRIu64 " leaves",
				    index, size);
	fn = index;
	sn = size - 1;
	memcpy(r, leaf, HC_HASH_LEN);
	for (i = 0; i < proof->n; i++) {
		if (sn == 0)
			return hc_error_set(HC_EVERIFY,
					    "inclusion proof of leaf %" PRIu64
					    " in %" PRIu64
					    " leaves is too long (%zu hashes)",
					    index, size, proof->n);
		if ((fn & 1) || fn == sn) {
			rc = hc_merkle_node_hash(proof->hash[i], r, r);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			rc = hc_merkle_node_hash(r, proof->hash[i], r);
		}
		if (rc < 0)
			return rc;
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return hc_error_set(HC_EVERIFY,
				    "inclusion proof of leaf %" PRIu64
				    " in %" PRIu64
				    " leaves is too short (%zu hashes)",
				    index, size, proof->n);
	if (CRYPTO_memcmp(r, root, HC_HASH_LEN) != 0)
		return hc_error_set(HC_EVERIFY,
				    "inclusion proof of leaf %" PRIu64
				    " in %" PRIu64
				    " leaves does not lead to the root",
				    index, size);
	return 0;
}

/* RFC 9162 2.1.4.2, step by step, for 0 < old_size <= new_size. */
int hc_merkle_verify_consistency(uint64_t old_size, uint64_t new_size,
				 const uint8_t old_root[HC_HASH_LEN],
				 const uint8_t new_root[HC_HASH_LEN],
				 const hc_proof *proof)
{
	uint8_t fr[HC_HASH_LEN], sr[HC_HASH_LEN];
	const uint8_t *c;
	uint64_t fn, sn;
	size_t i;
	int rc;

	rc = check_proof_arg(proof);
	if (rc < 0)
		return rc;
	if (!old_root || !new_root)
		return hc_error_set(HC_EINVAL, "no tree roots given");
	if (old_size == 0)
		return hc_error_set(HC_EINVAL,
				    "no consistency proof from an empty tree");
	if (old_size > new_size)
		return hc_error_set(HC_EINVAL,
				    "old tree size %" PRIu64
				    " is larger than new tree size %" PRIu64,
				    old_size, new_size);
	if (old_size == new_size) {
		if (proof->n != 0)
			return hc_error_set(HC_EVERIFY,
					    "consistency proof between two "
					    "trees of %" PRIu64
					    " leaves is not empty",
					    old_size);
		if (CRYPTO_memcmp(old_root, new_root, HC_HASH_LEN) != 0)
			return hc_error_set(HC_EVERIFY,
					    "two trees of %" PRIu64
					    " leaves have different roots",
					    old_size);
		return 0;
	}
	/* 1. */
	if (proof->n == 0)
		return hc_error_set(HC_EVERIFY,
				    "consistency proof from %" PRIu64
				    " to %" PRIu64 " leaves is empty",
				    old_size, new_size);
	/* 2. Prepending old_root: the proof is then read from its start. */
	i = 0;
	if ((old_size & (old_size - 1)) == 0) {
		c = old_root;
	} else {
		c = proof->hash[0];
		i = 1;
	}
	/* 3., 4. */
	fn = old_size - 1;
	sn = new_size - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	/* 5. */
	memcpy(fr, c, HC_HASH_LEN);
	memcpy(sr, c, HC_HASH_LEN);
	/* 6. */
	for (; i < proof->n; i++) {
		c = proof->hash[i];
		if (sn == 0)
			return hc_error_set(HC_EVERIFY,
					    "consistency proof from %" PRIu64
					    " to %" PRIu64
					    " leaves is too long (%zu hashes)",
					    old_size, new_size, proof->n);
		if ((fn & 1) || fn == sn) {
			rc = hc_merkle_node_hash(c, fr, fr);
			if (rc == 0)
				rc = hc_merkle_node_hash(c, sr, sr);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			rc = hc_merkle_node_hash(sr, c, sr);
		}
		if (rc < 0)
			return rc;
		fn >>= 1;
		sn >>= 1;
	}
	/* 7. */
	if (sn != 0)
		return hc_error_set(HC_EVERIFY,
				    "consistency proof from %" PRIu64
				    " to %" PRIu64
				    " leaves is too short (%zu hashes)",
				    old_size, new_size, proof->n);
	if (CRYPTO_memcmp(fr, old_root, HC_HASH_LEN) != 0)
		return hc_error_set(HC_EVERIFY,
				    "consistency proof from %" PRIu64
				    " to %" PRIu64
				    " leaves does not lead to the old root",
				    old_size, new_size);
	if (CRYPTO_memcmp(sr, new_root, HC_HASH_LEN) != 0)
		return hc_error_set(HC_EVERIFY,
				    "consistency proof from %" PRIu64
				    " to %" PRIu64
				    " leaves does not lead to the new root",
				    old_size, new_size);
	return 0;
}
