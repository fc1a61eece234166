/*
 * test_merkle.c - the RFC 9162 Merkle tree (hashchain/merkle.c) against
 * published test vectors, a recursive reference written from the RFC's
 * definitions, and corrupted proofs that must fail.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hashchain.h"
#include "tap.h"

#define HL HC_HASH_LEN

/* ------------------------------------------------------ published vectors */

/*
 * The reference tree of RFC 6962 implementations: eight leaf inputs and
 * the root of every prefix of it (index = tree size).  From
 * google/certificate-transparency cpp/merkletree/merkle_tree_test.cc
 * (kInputs, kSHA256EmptyTreeHash, kSHA256Roots); the same values are in
 * transparency-dev/merkle testonly/constants.go (LeafInputs, RootHashes).
 */
static const char *const leaf_inputs[8] = {
	"",
	"00",
	"10",
	"2021",
	"3031",
	"40414243",
	"5051525354555657",
	"606162636465666768696a6b6c6d6e6f",
};

static const char *const root_hex[9] = {
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

/*
 * Every perfect subtree of the reference tree, level by level, left to
 * right.  transparency-dev/merkle testonly/constants.go, NodeHashes().
 */
static const char *const node_hex[15] = {
	/* level 0: the leaf hashes */
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	"0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
	"07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
	"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
	"4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
	"b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
	"46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
	/* level 1 */
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
	"ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	/* level 2 */
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
	/* level 3 */
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

/* A node of node_hex. */
struct node_ref {
	int lvl, idx;
};

/*
 * The stack of the incremental tree after each leaf (index = tree size),
 * largest subtree first.  transparency-dev/merkle testonly/constants.go,
 * CompactTrees().
 */
static const struct {
	unsigned depth;
	struct node_ref node[3];
} compact_trees[9] = {
	{0, {{0, 0}}}, /* empty */
	{1, {{0, 0}}},
	{1, {{1, 0}}},
	{2, {{1, 0}, {0, 2}}},
	{1, {{2, 0}}},
	{2, {{2, 0}, {0, 4}}},
	{2, {{2, 0}, {1, 2}}},
	{3, {{2, 0}, {1, 2}, {0, 6}}},
	{1, {{3, 0}}}, /* 8 leaves */
};

/* A proof of a pair of numbers (index and size, or old and new size). */
struct hex_proof {
	uint64_t a, b;
	size_t n;
	const char *hash[3];
};

/*
 * Inclusion proofs (index, size): google/certificate-transparency
 * cpp/merkletree/merkle_tree_test.cc kSHA256Paths and transparency-dev/
 * merkle proof/verify_test.go inclusionProofs.  Their leaf numbers are
 * 1-based; the indexes here are 0-based.
 */
static const struct hex_proof published_paths[] = {
	{0, 1, 0, {NULL}},
	{0,
	 8,
	 3,
	 {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	  "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	  "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
	{5,
	 8,
	 3,
	 {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
	  "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
	{2,
	 3,
	 1,
	 {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
	{1,
	 5,
	 3,
	 {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	  "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	  "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

/*
 * Consistency proofs (old size, new size): google/certificate-transparency
 * cpp/merkletree/merkle_tree_test.cc kSHA256Proofs, and (6, 7) from
 * transparency-dev/merkle proof/verify_test.go consistencyProofs.
 */
static const struct hex_proof published_proofs[] = {
	{1, 1, 0, {NULL}},
	{1,
	 8,
	 3,
	 {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	  "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	  "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
	{6,
	 8,
	 3,
	 {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
	  "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
	{2,
	 5,
	 2,
	 {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	  "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
	{6,
	 7,
	 3,
	 {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
	  "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
	  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
};

/*
 * Proofs given as nodes of the reference tree: transparency-dev/merkle
 * proof/proof_test.go, TestInclusion and TestConsistency (the cases with
 * trees of at most 8 leaves).  A node of a smaller tree that is not a
 * perfect subtree is "rehashed" there from two nodes: H(l, r).
 */
struct node_elem {
	int lvl, idx;	/* a node */
	int rlvl, ridx; /* rlvl < 0: the node alone, else H(node, this one) */
};

struct node_proof {
	uint64_t a, b;
	size_t n;
	struct node_elem e[4];
};

/* clang-format off */
#define N(l, i) {l, i, -1, -1}
/* l = H(i, j) in the trees of 7 leaves: node (1, 2) and leaf (0, 6). */
#define LJ {1, 2, 0, 6}
/* clang-format on */

/* (index, size) */
static const struct node_proof node_paths[] = {
	{0, 1, 0, {N(0, 0)}},
	{0, 2, 1, {N(0, 1)}},
	{1, 2, 1, {N(0, 0)}},
	{1, 3, 2, {N(0, 0), N(0, 2)}},
	{0, 7, 3, {N(0, 1), N(1, 1), LJ}},
	{1, 7, 3, {N(0, 0), N(1, 1), LJ}},
	{2, 7, 3, {N(0, 3), N(1, 0), LJ}},
	{3, 7, 3, {N(0, 2), N(1, 0), LJ}},
	{4, 7, 3, {N(0, 5), N(0, 6), N(2, 0)}},
	{5, 7, 3, {N(0, 4), N(0, 6), N(2, 0)}},
	{6, 7, 2, {N(1, 2), N(2, 0)}},
	{2, 4, 2, {N(0, 3), N(1, 0)}},
	{3, 5, 3, {N(0, 2), N(1, 0), N(0, 4)}},
	{3, 6, 3, {N(0, 2), N(1, 0), N(1, 2)}},
	{4, 6, 2, {N(0, 5), N(2, 0)}},
};

/* (old size, new size) */
static const struct node_proof node_proofs[] = {
	{1, 2, 1, {N(0, 1)}},
	{1, 4, 2, {N(0, 1), N(1, 1)}},
	{1, 6, 3, {N(0, 1), N(1, 1), N(1, 2)}},
	{2, 3, 1, {N(0, 2)}},
	{2, 8, 2, {N(1, 1), N(2, 1)}},
	{3, 7, 4, {N(0, 2), N(0, 3), N(1, 0), LJ}},
	{4, 7, 1, {LJ}},
	{5, 7, 4, {N(0, 4), N(0, 5), N(0, 6), N(2, 0)}},
	{6, 7, 3, {N(1, 2), N(0, 6), N(2, 0)}},
	{7, 8, 4, {N(0, 6), N(0, 7), N(1, 2), N(2, 0)}},
	{1, 1, 0, {N(0, 0)}},
	{2, 2, 0, {N(0, 0)}},
	{3, 3, 0, {N(0, 0)}},
	{4, 4, 0, {N(0, 0)}},
	{5, 5, 0, {N(0, 0)}},
	{7, 7, 0, {N(0, 0)}},
	{8, 8, 0, {N(0, 0)}},
	{2, 4, 1, {N(1, 1)}},
	{3, 5, 4, {N(0, 2), N(0, 3), N(1, 0), N(0, 4)}},
	{3, 6, 4, {N(0, 2), N(0, 3), N(1, 0), N(1, 2)}},
	{4, 6, 1, {N(1, 2)}},
	{1, 7, 3, {N(0, 1), N(1, 1), LJ}},
};

/* transparency-dev/merkle proof/verify_test.go: a hash in no tree. */
static const char some_hash_hex[] =
	"abacaba000000000000000000000000000000000000000000060061e00123456";

/* -------------------------------------------------------------- helpers */

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static uint8_t leaf_hash[8][HL]; /* of leaf_inputs */
static uint8_t roots[9][HL];	 /* root_hex */
static uint8_t nodes[4][8][HL];	 /* node_hex */
static uint8_t zero_hash[HL];	 /* all zero */
static uint8_t some_hash[HL];	 /* some_hash_hex */
static int diag_budget = 30;	 /* failure details to print */

static void h32(const char *hex, uint8_t out[HL])
{
	if (hc_unhex(hex, out, HL) < 0) {
		printf("Bail out! bad test vector '%s'\n", hex);
		exit(1);
	}
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
	return p;
}

static const char *hexs(const uint8_t h[HL])
{
	static char buf[4][HC_HEX_LEN + 1];
	static int next;
	char *b = buf[next++ % 4];

	hc_hex(h, HL, b);
	return b;
}

__attribute__((format(printf, 1, 2))) static void fail_note(const char *fmt,
							    ...)
{
	va_list ap;

	if (diag_budget <= 0)
		return;
	diag_budget--;
	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" (%s)\n", hc_error_message());
}

static void clear_error(void)
{
	hc_error_set(HC_OK, "%s", "");
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int is_pow2(uint64_t n)
{
	return n != 0 && (n & (n - 1)) == 0;
}

/* A list of hashes, as the reference builds proofs. */
struct hlist {
	size_t n;
	uint8_t h[70][HL];
};

static void hlist_push(struct hlist *l, const uint8_t h[HL])
{
	memcpy(l->h[l->n++], h, HL);
}

/* want: n hashes. */
static int proof_equals(const hc_proof *p, const void *want, size_t n)
{
	return p->n == n && (n == 0 || memcmp(p->hash, want, n * HL) == 0);
}

/* A proof holding a copy of the n hashes at h. */
static hc_proof proof_of(const void *h, size_t n)
{
	hc_proof p = {n, NULL};

	p.hash = xmalloc(n * HL);
	if (n > 0)
		memcpy(p.hash, h, n * HL);
	return p;
}

/*
 * A copy of p with h inserted before position pos, or (h NULL) without the
 * hash at pos.
 */
static hc_proof edited(const hc_proof *p, size_t pos, const uint8_t *h)
{
	hc_proof q = {0, NULL};
	size_t i;

	q.hash = xmalloc((p->n + 1) * HL);
	for (i = 0; i <= p->n; i++) {
		if (i == pos && h)
			memcpy(q.hash[q.n++], h, HL);
		if (i < p->n && !(i == pos && !h))
			memcpy(q.hash[q.n++], p->hash[i], HL);
	}
	return q;
}

/* --------------------------------------------- reference implementation */

/*
 * Straight from the definitions of RFC 9162 2.1.1, 2.1.3.1 and 2.1.4.1,
 * recursive and over leaves in memory, for cross-checking.
 */
static uint64_t ref_k(uint64_t n)
{
	uint64_t k = 1;

	while (k * 2 < n)
		k *= 2;
	return k;
}

static void ref_mth(const uint8_t (*d)[HL], uint64_t n, uint8_t out[HL])
{
	uint8_t l[HL], r[HL];
	uint64_t k;

	if (n == 0) {
		hc_sha256("", 0, out);
		return;
	}
	if (n == 1) {
		memcpy(out, d[0], HL);
		return;
	}
	k = ref_k(n);
	ref_mth(d, k, l);
	ref_mth(d + k, n - k, r);
	hc_merkle_node_hash(l, r, out);
}

static void ref_path(uint64_t m, const uint8_t (*d)[HL], uint64_t n,
		     struct hlist *out)
{
	uint8_t h[HL];
	uint64_t k;

	if (n <= 1)
		return;
	k = ref_k(n);
	if (m < k) {
		ref_path(m, d, k, out);
		ref_mth(d + k, n - k, h);
	} else {
		ref_path(m - k, d + k, n - k, out);
		ref_mth(d, k, h);
	}
	hlist_push(out, h);
}

static void ref_subproof(uint64_t m, const uint8_t (*d)[HL], uint64_t n, int b,
			 struct hlist *out)
{
	uint8_t h[HL];
	uint64_t k;

	if (m == n) {
		if (!b) {
			ref_mth(d, n, h);
			hlist_push(out, h);
		}
		return;
	}
	k = ref_k(n);
	if (m <= k) {
		ref_subproof(m, d, k, b, out);
		ref_mth(d + k, n - k, h);
	} else {
		ref_subproof(m - k, d + k, n - k, 0, out);
		ref_mth(d, k, h);
	}
	hlist_push(out, h);
}

/* ----------------------------------------------------------- leaf reader */

struct reader {
	const uint8_t (*leaves)[HL]; /* NULL: leaf i is hash_of_index(i) */
	uint64_t count;		     /* leaves there are */
	uint64_t calls;
	uint64_t last;	  /* index of the last call */
	int bad_order;	  /* called for an index not above the last */
	uint64_t watch;	  /* an index that should not be read */
	int watched;	  /* it was read */
	uint64_t fail_at; /* fail on this index (UINT64_MAX: never) */
	int fail_code;	  /* returned there */
};

static void reader_init(struct reader *r, const uint8_t (*leaves)[HL],
			uint64_t count)
{
	memset(r, 0, sizeof(*r));
	r->leaves = leaves;
	r->count = count;
	r->watch = UINT64_MAX;
	r->fail_at = UINT64_MAX;
}

/* A leaf hash for any index without storing it: H(0x00 || BE64(index)). */
static void hash_of_index(uint64_t index, uint8_t out[HL])
{
	uint8_t be[8];
	int i;

	for (i = 0; i < 8; i++)
		be[i] = (uint8_t)(index >> (56 - 8 * i));
	hc_merkle_leaf_hash(be, sizeof(be), out);
}

static int read_leaf(void *ctx, uint64_t index, uint8_t out[HL])
{
	struct reader *r = ctx;

	if (r->calls > 0 && index <= r->last)
		r->bad_order = 1;
	r->calls++;
	r->last = index;
	if (index == r->watch)
		r->watched = 1;
	if (index == r->fail_at) {
		if (r->fail_code < 0)
			hc_error_set(r->fail_code,
				     "test reader fails at %" PRIu64, index);
		return r->fail_code;
	}
	if (index >= r->count)
		return hc_error_set(HC_EFORMAT, "no leaf %" PRIu64, index);
	if (r->leaves)
		memcpy(out, r->leaves[index], HL);
	else
		hash_of_index(index, out);
	return 0;
}

/* Leaves a consistency proof reads: all, but those under a power-of-two
 * old root, which the verifier has (RFC 9162 2.1.4.2 step 2). */
static uint64_t consistency_reads(uint64_t m, uint64_t n)
{
	if (m == n)
		return 0;
	return is_pow2(m) ? n - m : n;
}

/* ------------------------------------------------------------ corruptions */

/*
 * rc is the failure expected when the arguments are (in)valid, with a
 * message that says why (containing `why` if not NULL).
 */
static int rejected_as(int rc, int invalid, const char *why)
{
	return rc == (invalid ? HC_EINVAL : HC_EVERIFY) &&
	       hc_error_message()[0] != '\0' &&
	       (!why || strstr(hc_error_message(), why));
}

static int rejected(int rc, int invalid)
{
	return rejected_as(rc, invalid, NULL);
}

/* What the verifiers say about a proof of the wrong length. */
static const char *length_error(size_t got, size_t want)
{
	if (got == want)
		return "does not lead to the";
	return got > want ? "too long" : "too short";
}

/*
 * Corrupted forms of a good inclusion proof, after transparency-dev/merkle
 * proof/verify_test.go corruptInclusionProof (itself after CT's
 * VerifierCheck), and every single-bit flip of every proof hash when
 * all_bits.  Each must fail with HC_EVERIFY, or HC_EINVAL where the altered
 * index or size is out of range.  Returns how many did not; *probes counts
 * the corruptions tried.
 */
static int inclusion_corruptions(const uint8_t leaf[HL], uint64_t index,
				 uint64_t size, const hc_proof *p,
				 const uint8_t root[HL], int all_bits,
				 int *probes)
{
	const uint64_t idx[] = {index - 1, index + 1, index ^ 2, index, index};
	const uint64_t sz[] = {size, size, size, size * 2, size / 2};
	uint8_t h[HL], wrong_leaf[HL];
	hc_proof q;
	size_t i, j, bits;
	int bad = 0, rc;

	for (i = 0; i < ARRAY_SIZE(idx); i++) {
		clear_error();
		rc = hc_merkle_verify_inclusion(leaf, idx[i], sz[i], p, root);
		(*probes)++;
		if (!rejected(rc, idx[i] >= sz[i])) {
			bad++;
			fail_note("inclusion %" PRIu64 "/%" PRIu64
				  " accepted as %" PRIu64 "/%" PRIu64 ": %d",
				  index, size, idx[i], sz[i], rc);
		}
	}
	/* Wrong leaf, wrong roots. */
	memcpy(h, leaf, HL);
	h[HL - 1] ^= 1;
	hc_merkle_leaf_hash("WrongLeaf", 9, wrong_leaf);
	{
		const uint8_t *leaves[] = {h, wrong_leaf, leaf, leaf, leaf};
		const uint8_t *rts[] = {root, root, roots[0], some_hash,
					leaf_hash[0]};

		for (i = 0; i < ARRAY_SIZE(leaves); i++) {
			if (memcmp(leaves[i], leaf, HL) == 0 &&
			    memcmp(rts[i], root, HL) == 0)
				continue;
			clear_error();
			rc = hc_merkle_verify_inclusion(leaves[i], index, size,
							p, rts[i]);
			(*probes)++;
			if (!rejected(rc, 0)) {
				bad++;
				fail_note("inclusion %" PRIu64 "/%" PRIu64
					  " accepted with wrong leaf or root "
					  "#%zu",
					  index, size, i);
			}
		}
	}
	/* Extended, truncated, changed. */
	for (i = 0; i < 8 + 2 * p->n; i++) {
		switch (i) {
		case 0:
			q = edited(p, p->n, zero_hash); /* trailing garbage */
			break;
		case 1:
			q = edited(p, p->n, root); /* trailing root */
			break;
		case 2:
			q = edited(p, 0, zero_hash); /* preceding garbage */
			break;
		case 3:
			q = edited(p, 0, root); /* preceding root */
			break;
		case 4:
			q = edited(p, p->n, leaf); /* trailing leaf */
			break;
		case 5: /* inserted component */
			if (p->n < 2)
				continue;
			q = edited(p, 1, some_hash);
			break;
		case 6: /* removed last */
			if (p->n == 0)
				continue;
			q = edited(p, p->n - 1, NULL);
			break;
		case 7: /* removed first */
			if (p->n == 0)
				continue;
			q = edited(p, 0, NULL);
			break;
		default: /* one hash replaced */
			j = (i - 8) / 2;
			q = edited(p, p->n, NULL);
			memcpy(q.hash[j], (i - 8) % 2 ? root : some_hash, HL);
			break;
		}
		clear_error();
		rc = hc_merkle_verify_inclusion(leaf, index, size, &q, root);
		(*probes)++;
		if (!rejected_as(rc, 0, length_error(q.n, p->n))) {
			bad++;
			fail_note("inclusion %" PRIu64 "/%" PRIu64
				  " accepted with edit #%zu",
				  index, size, i);
		}
		hc_proof_release(&q);
	}
	/* Flipped bits. */
	bits = all_bits ? 8 * HL : 1;
	for (j = 0; j < p->n; j++) {
		for (i = 0; i < bits; i++) {
			q = edited(p, p->n, NULL);
			q.hash[j][all_bits ? i / 8 : 0] ^=
				(uint8_t)(all_bits ? 1u << (i % 8) : 8u);
			clear_error();
			rc = hc_merkle_verify_inclusion(leaf, index, size, &q,
							root);
			(*probes)++;
			if (!rejected_as(rc, 0, "does not lead to the root")) {
				bad++;
				fail_note("inclusion %" PRIu64 "/%" PRIu64
					  " accepted with bit %zu of hash %zu "
					  "flipped",
					  index, size, i, j);
			}
			hc_proof_release(&q);
		}
	}
	return bad;
}

/*
 * The same for a consistency proof with old < new, after transparency-dev/
 * merkle corruptConsistencyProof and CT's VerifierConsistencyCheck.
 */
static int consistency_corruptions(uint64_t m, uint64_t n, const uint8_t r1[HL],
				   const uint8_t r2[HL], const hc_proof *p,
				   int all_bits, int *probes)
{
	const uint64_t ms[] = {m - 1, m + 1, m ^ 2, m, m};
	const uint64_t ns[] = {n, n, n, n * 2, n / 2};
	uint8_t f1[HL], f2[HL];
	hc_proof q;
	size_t i, j, bits;
	int bad = 0, rc;

	for (i = 0; i < ARRAY_SIZE(ms); i++) {
		clear_error();
		rc = hc_merkle_verify_consistency(ms[i], ns[i], r1, r2, p);
		(*probes)++;
		if (!rejected(rc, ms[i] == 0 || ms[i] > ns[i])) {
			bad++;
			fail_note("consistency %" PRIu64 "->%" PRIu64
				  " accepted as %" PRIu64 "->%" PRIu64 ": %d",
				  m, n, ms[i], ns[i], rc);
		}
	}
	memcpy(f1, r1, HL);
	f1[0] ^= 0x80;
	memcpy(f2, r2, HL);
	f2[HL - 1] ^= 0x01;
	{
		const uint8_t *a[] = {f1, r1, r2, roots[0], r1};
		const uint8_t *b[] = {r2, f2, r1, r2, some_hash};

		for (i = 0; i < ARRAY_SIZE(a); i++) {
			clear_error();
			rc = hc_merkle_verify_consistency(m, n, a[i], b[i], p);
			(*probes)++;
			if (!rejected(rc, 0)) {
				bad++;
				fail_note("consistency %" PRIu64 "->%" PRIu64
					  " accepted with wrong roots #%zu",
					  m, n, i);
			}
		}
	}
	for (i = 0; i < 11 + 2 * p->n; i++) {
		switch (i) {
		case 0: /* empty proof */
			q = edited(p, p->n, NULL);
			q.n = 0;
			break;
		case 1:
			q = edited(p, p->n, zero_hash);
			break;
		case 2:
			q = edited(p, p->n, r1);
			break;
		case 3:
			q = edited(p, p->n, r2);
			break;
		case 4:
			q = edited(p, p->n, p->hash[p->n - 1]);
			break;
		case 5:
			q = edited(p, 0, zero_hash);
			break;
		case 6:
			q = edited(p, 0, r1);
			break;
		case 7:
			q = edited(p, 0, r2);
			break;
		case 8:
			q = edited(p, 0, p->hash[0]);
			break;
		case 9: /* truncated */
			q = edited(p, p->n - 1, NULL);
			break;
		case 10: /* first hash removed */
			q = edited(p, 0, NULL);
			break;
		default: /* one hash replaced */
			j = (i - 11) / 2;
			q = edited(p, p->n, NULL);
			memcpy(q.hash[j], (i - 11) % 2 ? r1 : roots[0], HL);
			break;
		}
		clear_error();
		rc = hc_merkle_verify_consistency(m, n, r1, r2, &q);
		(*probes)++;
		if (!rejected_as(rc, 0,
				 q.n ? length_error(q.n, p->n) : "is empty")) {
			bad++;
			fail_note("consistency %" PRIu64 "->%" PRIu64
				  " accepted with edit #%zu",
				  m, n, i);
		}
		hc_proof_release(&q);
	}
	bits = all_bits ? 8 * HL : 1;
	for (j = 0; j < p->n; j++) {
		for (i = 0; i < bits; i++) {
			q = edited(p, p->n, NULL);
			q.hash[j][all_bits ? i / 8 : 0] ^=
				(uint8_t)(all_bits ? 1u << (i % 8) : 16u);
			clear_error();
			rc = hc_merkle_verify_consistency(m, n, r1, r2, &q);
			(*probes)++;
			if (!rejected_as(rc, 0, "does not lead to the")) {
				bad++;
				fail_note("consistency %" PRIu64 "->%" PRIu64
					  " accepted with bit %zu of hash %zu "
					  "flipped",
					  m, n, i, j);
			}
			hc_proof_release(&q);
		}
	}
	return bad;
}

/* ------------------------------------------------------------------ tests */

static void load_vectors(void)
{
	uint8_t data[16];
	size_t i, l, n;

	for (i = 0; i < 8; i++) {
		n = strlen(leaf_inputs[i]) / 2;
		if (n > 0 && hc_unhex(leaf_inputs[i], data, n) < 0) {
			printf("Bail out! bad leaf input %zu\n", i);
			exit(1);
		}
		hc_merkle_leaf_hash(data, n, leaf_hash[i]);
	}
	for (i = 0; i < 9; i++)
		h32(root_hex[i], roots[i]);
	for (n = 0, l = 0; l < 4; l++)
		for (i = 0; i < (8u >> l); i++)
			h32(node_hex[n++], nodes[l][i]);
	h32(some_hash_hex, some_hash);
}

static void node_elem_hash(const struct node_elem *e, uint8_t out[HL])
{
	if (e->rlvl < 0)
		memcpy(out, nodes[e->lvl][e->idx], HL);
	else
		hc_merkle_node_hash(nodes[e->lvl][e->idx],
				    nodes[e->rlvl][e->ridx], out);
}

static void test_hashes(void)
{
	uint8_t h[HL], *big;
	size_t i, l, bad = 0;
	const size_t big_len = 1u << 20;

	for (i = 0; i < 8; i++)
		if (memcmp(leaf_hash[i], nodes[0][i], HL) != 0)
			bad++;
	ok(bad == 0, "leaf hashes of the 8 inputs are the published ones");

	bad = 0;
	for (l = 1; l < 4; l++) {
		for (i = 0; i < (8u >> l); i++) {
			if (hc_merkle_node_hash(nodes[l - 1][2 * i],
						nodes[l - 1][2 * i + 1],
						h) < 0 ||
			    memcmp(h, nodes[l][i], HL) != 0)
				bad++;
		}
	}
	ok(bad == 0, "node hashes of every level are the published ones");

	/* Leaf hash of a large leaf against SHA-256 of 0x00 || data. */
	big = xmalloc(big_len + 1);
	big[0] = 0x00;
	for (i = 0; i < big_len; i++)
		big[i + 1] = (uint8_t)(i * 131 + 7);
	{
		uint8_t want[HL];

		hc_sha256(big, big_len + 1, want);
		ok(hc_merkle_leaf_hash(big + 1, big_len, h) == 0 &&
			   memcmp(h, want, HL) == 0,
		   "leaf hash of 1 MiB is SHA-256(0x00 || data)");
	}
	free(big);

	memcpy(h, nodes[0][0], HL);
	ok(hc_merkle_node_hash(h, nodes[0][1], h) == 0 &&
		   memcmp(h, nodes[1][0], HL) == 0,
	   "node hash may write over its left input");
}

static void test_roots(void)
{
	hc_merkle t, saved;
	uint8_t h[HL];
	size_t i, j;
	int good;

	hc_merkle_init(&t);
	good = hc_merkle_root(&t, h) == 0;
	ok(good && memcmp(h, roots[0], HL) == 0,
	   "empty tree root is SHA-256(\"\") %s", hexs(h));
	for (i = 0; i < 8; i++) {
		good = hc_merkle_push(&t, leaf_hash[i]) == 0 &&
		       hc_merkle_root(&t, h) == 0;
		ok(good && t.size == i + 1 && memcmp(h, roots[i + 1], HL) == 0,
		   "root of %zu leaves is the published %.16s...", i + 1,
		   root_hex[i + 1]);
		good = t.depth == compact_trees[i + 1].depth;
		for (j = 0; good && j < t.depth; j++) {
			const struct node_ref *r =
				&compact_trees[i + 1].node[j];

			good = memcmp(t.stack[j], nodes[r->lvl][r->idx], HL) ==
			       0;
		}
		ok(good, "stack of %zu leaves is the published compact tree",
		   i + 1);
	}
	/* Building again shows root does not disturb the tree. */
	hc_merkle_init(&t);
	for (i = 0; i < 8; i++)
		hc_merkle_push(&t, leaf_hash[i]);
	ok(hc_merkle_root(&t, h) == 0 && memcmp(h, roots[8], HL) == 0,
	   "root of 8 leaves pushed at once");
	ref_mth((const uint8_t(*)[HL])leaf_hash, 8, h);
	ok(memcmp(h, roots[8], HL) == 0, "reference MTH agrees");

	/* A state whose depth does not match its size is refused. */
	t.depth = 2;
	saved = t;
	ok(hc_merkle_push(&t, leaf_hash[0]) == HC_EINVAL &&
		   memcmp(&t, &saved, sizeof(t)) == 0,
	   "push refuses an inconsistent tree and leaves it alone");
	memcpy(h, zero_hash, HL);
	ok(hc_merkle_root(&t, h) == HC_EINVAL && memcmp(h, zero_hash, HL) == 0,
	   "root refuses an inconsistent tree");
	hc_merkle_init(&t);
	t.size = UINT64_MAX;
	t.depth = 64;
	ok(hc_merkle_push(&t, leaf_hash[0]) == HC_EINVAL,
	   "push refuses a full tree");
}

static const struct hex_proof *find_hex(const struct hex_proof *v, size_t n,
					uint64_t a, uint64_t b)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i].a == a && v[i].b == b)
			return &v[i];
	return NULL;
}

static const struct node_proof *find_node(const struct node_proof *v, size_t n,
					  uint64_t a, uint64_t b)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i].a == a && v[i].b == b)
			return &v[i];
	return NULL;
}

/* Compare p with the published proofs for (a, b); counts what it found. */
static int matches_published(const hc_proof *p, const struct hex_proof *hp,
			     const struct node_proof *np, int *found)
{
	uint8_t want[4][HL];
	size_t i;
	int good = 1;

	if (hp) {
		for (i = 0; i < hp->n; i++)
			h32(hp->hash[i], want[i]);
		good = good && proof_equals(p, want, hp->n);
		(*found)++;
	}
	if (np) {
		for (i = 0; i < np->n; i++)
			node_elem_hash(&np->e[i], want[i]);
		good = good && proof_equals(p, want, np->n);
		(*found)++;
	}
	return good;
}

static void test_inclusion_small(void)
{
	const struct hex_proof *hp;
	const struct node_proof *np;
	struct reader rd;
	struct hlist ref;
	hc_proof p;
	uint64_t size, i;
	int rc, found = 0, published = 0, bad, probes = 0;

	for (size = 1; size <= 8; size++) {
		for (i = 0; i < size; i++) {
			reader_init(&rd, (const uint8_t(*)[HL])leaf_hash, 8);
			rd.watch = i;
			rc = hc_merkle_inclusion_proof(&p, i, size, read_leaf,
						       &rd);
			ok(rc == 0 && !rd.bad_order && rd.calls == size - 1 &&
				   !rd.watched,
			   "inclusion %" PRIu64 "/%" PRIu64 ": built, %" PRIu64
			   " leaves read once in order",
			   i, size, rd.calls);
			if (rc < 0) {
				diag("%s", hc_error_message());
				continue;
			}
			ref.n = 0;
			ref_path(i, (const uint8_t(*)[HL])leaf_hash, size,
				 &ref);
			hp = find_hex(published_paths,
				      ARRAY_SIZE(published_paths), i, size);
			np = find_node(node_paths, ARRAY_SIZE(node_paths), i,
				       size);
			found = 0;
			ok(proof_equals(&p, ref.h, ref.n) &&
				   matches_published(&p, hp, np, &found),
			   "inclusion %" PRIu64 "/%" PRIu64
			   ": %zu hashes, as the reference%s",
			   i, size, p.n,
			   found ? " and the published vectors" : "");
			published += found > 0;
			ok(hc_merkle_verify_inclusion(leaf_hash[i], i, size, &p,
						      roots[size]) == 0,
			   "inclusion %" PRIu64 "/%" PRIu64
			   " verifies against the published root",
			   i, size);
			probes = 0;
			bad = inclusion_corruptions(leaf_hash[i], i, size, &p,
						    roots[size], 1, &probes);
			ok(bad == 0,
			   "inclusion %" PRIu64 "/%" PRIu64
			   ": %d corruptions rejected",
			   i, size, probes - bad);
			hc_proof_release(&p);
		}
	}
	diag("%d of 36 inclusion proofs compared with published ones",
	     published);
	ok(published == 19, "19 inclusion proofs have published vectors");
}

static void test_consistency_small(void)
{
	const struct hex_proof *hp;
	const struct node_proof *np;
	struct reader rd;
	struct hlist ref;
	hc_proof p;
	uint64_t m, n;
	int rc, found = 0, published = 0, bad, probes = 0;

	for (n = 1; n <= 8; n++) {
		for (m = 1; m <= n; m++) {
			reader_init(&rd, (const uint8_t(*)[HL])leaf_hash, 8);
			rc = hc_merkle_consistency_proof(&p, m, n, read_leaf,
							 &rd);
			ok(rc == 0 && !rd.bad_order &&
				   rd.calls == consistency_reads(m, n),
			   "consistency %" PRIu64 "->%" PRIu64
			   ": built, %" PRIu64 " leaves read once in order",
			   m, n, rd.calls);
			if (rc < 0) {
				diag("%s", hc_error_message());
				continue;
			}
			ref.n = 0;
			ref_subproof(m, (const uint8_t(*)[HL])leaf_hash, n, 1,
				     &ref);
			hp = find_hex(published_proofs,
				      ARRAY_SIZE(published_proofs), m, n);
			np = find_node(node_proofs, ARRAY_SIZE(node_proofs), m,
				       n);
			found = 0;
			ok(proof_equals(&p, ref.h, ref.n) &&
				   matches_published(&p, hp, np, &found),
			   "consistency %" PRIu64 "->%" PRIu64
			   ": %zu hashes, as the reference%s",
			   m, n, p.n,
			   found ? " and the published vectors" : "");
			published += found > 0;
			ok(hc_merkle_verify_consistency(m, n, roots[m],
							roots[n], &p) == 0,
			   "consistency %" PRIu64 "->%" PRIu64
			   " verifies between the published roots",
			   m, n);
			if (m == n) {
				hc_proof_release(&p);
				continue;
			}
			probes = 0;
			bad = consistency_corruptions(m, n, roots[m], roots[n],
						      &p, 1, &probes);
			ok(bad == 0,
			   "consistency %" PRIu64 "->%" PRIu64
			   ": %d corruptions rejected",
			   m, n, probes - bad);
			hc_proof_release(&p);
		}
	}
	diag("%d of 36 consistency proofs compared with published ones",
	     published);
	ok(published == 25, "25 consistency proofs have published vectors");
}

/* The published proofs verify as given, before any of ours is built. */
static void test_published_verify(void)
{
	uint8_t h[3][HL];
	hc_proof p;
	size_t i, j;
	int bad = 0;

	for (i = 0; i < ARRAY_SIZE(published_paths); i++) {
		const struct hex_proof *v = &published_paths[i];

		for (j = 0; j < v->n; j++)
			h32(v->hash[j], h[j]);
		p = proof_of(h, v->n);
		if (hc_merkle_verify_inclusion(leaf_hash[v->a], v->a, v->b, &p,
					       roots[v->b]) != 0)
			bad++;
		hc_proof_release(&p);
	}
	ok(bad == 0, "published inclusion proofs verify");
	bad = 0;
	for (i = 0; i < ARRAY_SIZE(published_proofs); i++) {
		const struct hex_proof *v = &published_proofs[i];

		for (j = 0; j < v->n; j++)
			h32(v->hash[j], h[j]);
		p = proof_of(h, v->n);
		if (hc_merkle_verify_consistency(v->a, v->b, roots[v->a],
						 roots[v->b], &p) != 0)
			bad++;
		hc_proof_release(&p);
	}
	ok(bad == 0, "published consistency proofs verify");
}

static void test_arguments(void)
{
	hc_proof p, sentinel = {12345, (uint8_t(*)[HL])zero_hash};
	struct reader rd;
	int rc;

	p = sentinel;
	reader_init(&rd, (const uint8_t(*)[HL])leaf_hash, 8);
	ok(hc_merkle_inclusion_proof(&p, 8, 8, read_leaf, &rd) == HC_EINVAL &&
		   hc_merkle_inclusion_proof(&p, 0, 0, read_leaf, &rd) ==
			   HC_EINVAL &&
		   hc_merkle_inclusion_proof(&p, UINT64_MAX, 8, read_leaf,
					     &rd) == HC_EINVAL,
	   "inclusion proof refuses index >= size: %s", hc_error_message());
	ok(hc_merkle_consistency_proof(&p, 0, 5, read_leaf, &rd) == HC_EINVAL &&
		   hc_merkle_consistency_proof(&p, 0, 0, read_leaf, &rd) ==
			   HC_EINVAL,
	   "consistency proof refuses old size 0: %s", hc_error_message());
	ok(hc_merkle_consistency_proof(&p, 6, 5, read_leaf, &rd) == HC_EINVAL,
	   "consistency proof refuses old > new: %s", hc_error_message());
	ok(hc_merkle_inclusion_proof(&p, 0, 8, NULL, &rd) == HC_EINVAL &&
		   hc_merkle_consistency_proof(NULL, 1, 8, read_leaf, &rd) ==
			   HC_EINVAL,
	   "proofs refuse a missing reader or output");
	ok(rd.calls == 0 && p.n == sentinel.n && p.hash == sentinel.hash,
	   "refused proofs read nothing and leave the output alone");

	rc = hc_merkle_consistency_proof(&p, 5, 5, read_leaf, &rd);
	ok(rc == 0 && p.n == 0 && p.hash == NULL && rd.calls == 0,
	   "consistency proof between equal sizes is empty, reads nothing");
	hc_proof_release(&p);

	/* A failing reader: its code and message come back, nothing else. */
	p = sentinel;
	reader_init(&rd, (const uint8_t(*)[HL])leaf_hash, 8);
	rd.fail_at = 3;
	rd.fail_code = HC_ESYS;
	rc = hc_merkle_inclusion_proof(&p, 0, 8, read_leaf, &rd);
	ok(rc == HC_ESYS && strstr(hc_error_message(), "test reader") &&
		   p.n == sentinel.n && p.hash == sentinel.hash && rd.last == 3,
	   "a reader's error stops the proof: %s", hc_error_message());
	reader_init(&rd, (const uint8_t(*)[HL])leaf_hash, 8);
	rd.fail_at = 6;
	rd.fail_code = 1;
	rc = hc_merkle_consistency_proof(&p, 3, 8, read_leaf, &rd);
	ok(rc == HC_EINVAL && p.n == sentinel.n,
	   "a reader returning 1 is an error: %s", hc_error_message());
	reader_init(&rd, (const uint8_t(*)[HL])leaf_hash, 5);
	rc = hc_merkle_inclusion_proof(&p, 0, 8, read_leaf, &rd);
	ok(rc == HC_EFORMAT && p.n == sentinel.n,
	   "a log shorter than the tree fails: %s", hc_error_message());

	/* Verification arguments (from CT's VerifyPath and VerifyConsistency).
	 */
	p.n = 0;
	p.hash = NULL;
	ok(hc_merkle_verify_inclusion(leaf_hash[0], 0, 0, &p, roots[0]) ==
			   HC_EINVAL &&
		   hc_merkle_verify_inclusion(leaf_hash[0], 1, 0, &p,
					      roots[0]) == HC_EINVAL &&
		   hc_merkle_verify_inclusion(leaf_hash[0], 2, 1, &p,
					      roots[1]) == HC_EINVAL,
	   "verify inclusion refuses index >= size");
	ok(hc_merkle_verify_inclusion(leaf_hash[0], 0, 1, &p, roots[1]) == 0,
	   "leaf 0 of 1 is the root with an empty proof");
	ok(hc_merkle_verify_inclusion(leaf_hash[0], 0, 1, &p, some_hash) ==
			   HC_EVERIFY &&
		   hc_merkle_verify_inclusion(some_hash, 0, 1, &p, roots[1]) ==
			   HC_EVERIFY,
	   "a single leaf that is not the root fails: %s", hc_error_message());
	ok(hc_merkle_verify_consistency(0, 0, roots[0], roots[0], &p) ==
			   HC_EINVAL &&
		   hc_merkle_verify_consistency(0, 1, roots[0], roots[1], &p) ==
			   HC_EINVAL,
	   "verify consistency refuses old size 0");
	ok(hc_merkle_verify_consistency(1, 0, roots[1], roots[0], &p) ==
			   HC_EINVAL &&
		   hc_merkle_verify_consistency(2, 1, roots[2], roots[1], &p) ==
			   HC_EINVAL,
	   "verify consistency refuses old > new (time travel)");
	ok(hc_merkle_verify_consistency(1, 2, roots[1], roots[2], &p) ==
		   HC_EVERIFY,
	   "an empty proof between different sizes fails: %s",
	   hc_error_message());
	ok(hc_merkle_verify_consistency(3, 3, roots[3], roots[3], &p) == 0,
	   "equal sizes, equal roots, empty proof verifies");
	ok(hc_merkle_verify_consistency(3, 3, roots[3], roots[4], &p) ==
		   HC_EVERIFY,
	   "equal sizes, different roots fails: %s", hc_error_message());
	p = proof_of(roots[3], 1);
	ok(hc_merkle_verify_consistency(3, 3, roots[3], roots[3], &p) ==
		   HC_EVERIFY,
	   "equal sizes with a non-empty proof fails: %s", hc_error_message());
	hc_proof_release(&p);
	ok(p.n == 0 && p.hash == NULL, "hc_proof_release zeroes the proof");
	hc_proof_release(&p);
	hc_proof_release(NULL);
	ok(hc_merkle_verify_inclusion(leaf_hash[0], 0, 1, NULL, roots[1]) ==
			   HC_EINVAL &&
		   hc_merkle_verify_consistency(1, 2, roots[1], roots[2],
						NULL) == HC_EINVAL,
	   "verifiers refuse a missing proof");
}

/* Trees far too large to read whole, where proofs need few leaves. */
static void test_huge(void)
{
	const uint64_t big = UINT64_C(1) << 63;
	uint8_t h[64][HL], r[HL], leaf[HL], x[HL], mth[HL];
	hc_merkle t;
	struct reader rd;
	hc_proof p;
	size_t i;
	int rc;

	/* (2^40, 2^40 + 1): one leaf, read at its index. */
	reader_init(&rd, NULL, UINT64_MAX);
	rc = hc_merkle_consistency_proof(
		&p, UINT64_C(1) << 40, (UINT64_C(1) << 40) + 1, read_leaf, &rd);
	hash_of_index(UINT64_C(1) << 40, leaf);
	memcpy(x, some_hash, HL);
	hc_merkle_node_hash(x, leaf, r);
	ok(rc == 0 && rd.calls == 1 && rd.last == UINT64_C(1) << 40 &&
		   p.n == 1 && memcmp(p.hash[0], leaf, HL) == 0 &&
		   hc_merkle_verify_consistency(UINT64_C(1) << 40,
						(UINT64_C(1) << 40) + 1, x, r,
						&p) == 0,
	   "consistency 2^40 -> 2^40+1 reads only leaf 2^40 and verifies");
	hc_proof_release(&p);

	/* (2^63, 2^63 + 3): the three new leaves. */
	reader_init(&rd, NULL, UINT64_MAX);
	rc = hc_merkle_consistency_proof(&p, big, big + 3, read_leaf, &rd);
	hc_merkle_init(&t);
	for (i = 0; i < 3; i++) {
		hash_of_index(big + i, leaf);
		hc_merkle_push(&t, leaf);
	}
	hc_merkle_root(&t, mth);
	hc_merkle_node_hash(x, mth, r);
	ok(rc == 0 && rd.calls == 3 && !rd.bad_order && p.n == 1 &&
		   memcmp(p.hash[0], mth, HL) == 0 &&
		   hc_merkle_verify_consistency(big, big + 3, x, r, &p) == 0,
	   "consistency 2^63 -> 2^63+3 reads 3 leaves and verifies");
	hc_proof_release(&p);

	/*
	 * Leaf 0 of 2^63: 63 right siblings.  The last leaf of 2^64 - 1
	 * leaves: 63 left siblings (the perfect subtrees 2^1 .. 2^63).
	 */
	for (i = 0; i < 64; i++)
		hash_of_index(i + 1000, h[i]);
	memcpy(r, leaf_hash[0], HL);
	for (i = 0; i < 63; i++)
		hc_merkle_node_hash(r, h[i], r);
	p = proof_of(h, 63);
	ok(hc_merkle_verify_inclusion(leaf_hash[0], 0, big, &p, r) == 0,
	   "leaf 0 of 2^63 verifies with 63 hashes");
	p.n = 62;
	ok(hc_merkle_verify_inclusion(leaf_hash[0], 0, big, &p, r) ==
		   HC_EVERIFY,
	   "and not with 62: %s", hc_error_message());
	hc_proof_release(&p);
	p = proof_of(h, 64);
	ok(hc_merkle_verify_inclusion(leaf_hash[0], 0, big, &p, r) ==
		   HC_EVERIFY,
	   "nor with 64: %s", hc_error_message());
	hc_proof_release(&p);
	memcpy(r, leaf_hash[0], HL);
	for (i = 0; i < 63; i++)
		hc_merkle_node_hash(h[i], r, r);
	p = proof_of(h, 63);
	ok(hc_merkle_verify_inclusion(leaf_hash[0], UINT64_MAX - 1, UINT64_MAX,
				      &p, r) == 0,
	   "the last leaf of 2^64-1 verifies with 63 left siblings");
	ok(hc_merkle_verify_inclusion(leaf_hash[0], UINT64_MAX - 2, UINT64_MAX,
				      &p, r) == HC_EVERIFY,
	   "but not as the leaf before it");
	hc_proof_release(&p);
}

/* Leaves derived from the index: leaf_hash(SHA-256(BE64(i))). */
static void random_leaves(uint8_t (*leaves)[HL], size_t n)
{
	uint8_t be[8], data[HL];
	size_t i;
	int j;

	for (i = 0; i < n; i++) {
		for (j = 0; j < 8; j++)
			be[j] = (uint8_t)((uint64_t)i >> (56 - 8 * j));
		hc_sha256(be, sizeof(be), data);
		hc_merkle_leaf_hash(data, sizeof(data), leaves[i]);
	}
}

/* Values to try in 1..n: all of them when n is small, else a sample. */
static size_t sample(uint64_t n, uint64_t lo, uint64_t *seed, uint64_t *out)
{
	size_t c = 0, i;
	uint64_t v;

	if (n - lo < 40) {
		for (v = lo; v <= n; v++)
			out[c++] = v;
		return c;
	}
	out[c++] = lo;
	out[c++] = lo + 1;
	out[c++] = n / 2;
	out[c++] = n - 1;
	out[c++] = n;
	for (v = 1; v * 2 <= n; v *= 2)
		;
	out[c++] = v; /* a power of two */
	for (i = 0; i < 4; i++)
		out[c++] = lo + xorshift(seed) % (n - lo + 1);
	return c;
}

static void test_random(void)
{
	/*
	 * Quadratic: under valgrind (HOZEN_TEST_QUICK) up to 130 leaves,
	 * still past the power of two 128.
	 */
	const uint64_t max = getenv("HOZEN_TEST_QUICK") ? 130 : 300;
	uint8_t(*leaves)[HL] = xmalloc(max * HL);
	uint8_t(*rts)[HL] = xmalloc((max + 1) * HL);
	uint64_t seed = UINT64_C(0x9e3779b97f4a7c15), vals[64], size, v;
	struct hlist *ref = xmalloc(sizeof(*ref));
	struct reader rd;
	hc_merkle t;
	hc_proof p;
	size_t nv, k, bit;
	int bad_built, bad_ref, bad_verify, bad_flip, count, rc;

	random_leaves(leaves, max);
	hc_merkle_init(&t);
	hc_merkle_root(&t, rts[0]);
	bad_ref = 0;
	for (size = 1; size <= max; size++) {
		hc_merkle_push(&t, leaves[size - 1]);
		hc_merkle_root(&t, rts[size]);
		ref_mth((const uint8_t(*)[HL])leaves, size, ref->h[0]);
		bad_ref += memcmp(ref->h[0], rts[size], HL) != 0;
	}
	ok(bad_ref == 0,
	   "incremental roots of 1..%" PRIu64 " leaves match the "
	   "reference",
	   max);

	for (size = 1; size <= max; size++) {
		bad_built = bad_ref = bad_verify = bad_flip = count = 0;
		nv = sample(size - 1, 0, &seed, vals);
		for (k = 0; k < nv; k++) {
			v = vals[k];
			reader_init(&rd, (const uint8_t(*)[HL])leaves, size);
			rd.watch = v;
			rc = hc_merkle_inclusion_proof(&p, v, size, read_leaf,
						       &rd);
			count++;
			if (rc < 0 || rd.bad_order || rd.watched ||
			    rd.calls != size - 1) {
				bad_built++;
				fail_note("inclusion %" PRIu64 "/%" PRIu64
					  ": rc %d, order %d, %" PRIu64
					  " reads",
					  v, size, rc, rd.bad_order, rd.calls);
				if (rc < 0)
					continue;
			}
			if (size <= 64) {
				ref->n = 0;
				ref_path(v, (const uint8_t(*)[HL])leaves, size,
					 ref);
				bad_ref += !proof_equals(&p, ref->h, ref->n);
			}
			if (hc_merkle_verify_inclusion(leaves[v], v, size, &p,
						       rts[size]) != 0) {
				bad_verify++;
				fail_note("inclusion %" PRIu64 "/%" PRIu64
					  " does not verify",
					  v, size);
			}
			if (p.n > 0) {
				bit = xorshift(&seed) % (p.n * 8 * HL);
				p.hash[bit / (8 * HL)][bit / 8 % HL] ^=
					(uint8_t)(1u << (bit % 8));
				bad_flip += hc_merkle_verify_inclusion(
						    leaves[v], v, size, &p,
						    rts[size]) != HC_EVERIFY;
			}
			hc_proof_release(&p);
		}
		nv = sample(size, 1, &seed, vals);
		for (k = 0; k < nv; k++) {
			v = vals[k];
			reader_init(&rd, (const uint8_t(*)[HL])leaves, size);
			rc = hc_merkle_consistency_proof(&p, v, size, read_leaf,
							 &rd);
			count++;
			if (rc < 0 || rd.bad_order ||
			    rd.calls != consistency_reads(v, size)) {
				bad_built++;
				fail_note("consistency %" PRIu64 "->%" PRIu64
					  ": rc %d, order %d, %" PRIu64
					  " reads",
					  v, size, rc, rd.bad_order, rd.calls);
				if (rc < 0)
					continue;
			}
			if (size <= 64) {
				ref->n = 0;
				ref_subproof(v, (const uint8_t(*)[HL])leaves,
					     size, 1, ref);
				bad_ref += !proof_equals(&p, ref->h, ref->n);
			}
			if (hc_merkle_verify_consistency(v, size, rts[v],
							 rts[size], &p) != 0) {
				bad_verify++;
				fail_note("consistency %" PRIu64 "->%" PRIu64
					  " does not verify",
					  v, size);
			}
			if (p.n > 0) {
				bit = xorshift(&seed) % (p.n * 8 * HL);
				p.hash[bit / (8 * HL)][bit / 8 % HL] ^=
					(uint8_t)(1u << (bit % 8));
				bad_flip += hc_merkle_verify_consistency(
						    v, size, rts[v], rts[size],
						    &p) != HC_EVERIFY;
			}
			hc_proof_release(&p);
		}
		if (bad_built || bad_ref || bad_verify || bad_flip)
			diag("size %" PRIu64
			     ": %d built badly, %d differ from the reference, "
			     "%d do not verify, %d verify with a bit flipped",
			     size, bad_built, bad_ref, bad_verify, bad_flip);
		ok(!bad_built && !bad_ref && !bad_verify && !bad_flip,
		   "size %" PRIu64 ": %d proofs built in order%s, verify, "
		   "fail when flipped",
		   size, count, size <= 64 ? ", equal the reference" : "");
	}
	/* Corruptions of a sample of larger proofs, one bit per hash. */
	{
		int bad = 0, probes = 0;
		uint64_t sizes[] = {100, 127, 128, 129, 255, 256, 257, 300};
		size_t s;

		for (s = 0; s < ARRAY_SIZE(sizes) && sizes[s] <= max; s++) {
			size = sizes[s];
			nv = sample(size - 1, 0, &seed, vals);
			for (k = 0; k < nv; k++) {
				v = vals[k];
				reader_init(&rd, (const uint8_t(*)[HL])leaves,
					    size);
				if (hc_merkle_inclusion_proof(
					    &p, v, size, read_leaf, &rd) < 0) {
					bad++;
					continue;
				}
				bad += inclusion_corruptions(leaves[v], v, size,
							     &p, rts[size], 0,
							     &probes);
				hc_proof_release(&p);
				if (v == 0 || v == size)
					continue;
				reader_init(&rd, (const uint8_t(*)[HL])leaves,
					    size);
				if (hc_merkle_consistency_proof(
					    &p, v, size, read_leaf, &rd) < 0) {
					bad++;
					continue;
				}
				bad += consistency_corruptions(v, size, rts[v],
							       rts[size], &p, 0,
							       &probes);
				hc_proof_release(&p);
			}
		}
		ok(bad == 0, "%d corruptions of larger proofs rejected",
		   probes - bad);
	}
	free(ref);
	free(rts);
	free(leaves);
}

int main(void)
{
	load_vectors();
	test_hashes();
	test_roots();
	test_published_verify();
	test_inclusion_small();
	test_consistency_small();
	test_arguments();
	test_huge();
	test_random();
	return tap_done();
}
