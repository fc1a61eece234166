/*
 * test_proof.c - proof documents from a store, verified offline; forged
 * documents must fail.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hashchain.h"
#include "tap.h"

static char base[] = "/tmp/hozen-proof-XXXXXX";

static int checkpoint(hc_store *s, hc_key *key)
{
	const char *origin;
	hc_log *log = NULL;
	hc_actor self;
	int rc;

	hc_actor_self(&self);
	rc = hc_store_origin(s, &origin);
	if (rc == 0)
		rc = hc_log_open(&log, hc_store_fd(s), NULL, NULL);
	if (rc == 0)
		rc = hc_store_checkpoint(log, key, origin, &self, NULL);
	hc_log_close(log);
	return rc;
}

static int append(hc_store *s, int n)
{
	hc_log *log = NULL;
	hc_actor self;
	int i, rc;

	hc_actor_self(&self);
	rc = hc_log_open(&log, hc_store_fd(s), NULL, NULL);
	for (i = 0; rc == 0 && i < n; i++) {
		json_t *f = json_pack("{s:i,s:s}", "i", i, "text", "証拠");

		rc = hc_log_append(log, "note", &self, f, NULL);
		json_decref(f);
	}
	hc_log_close(log);
	return rc;
}

/* Replace the first occurrence of `from` in doc by `to` (same length). */
static char *forge(const char *doc, const char *from, const char *to)
{
	char *copy = strdup(doc), *p = strstr(copy, from);

	if (p)
		memcpy(p, to, strlen(to));
	return copy;
}

int main(void)
{
	char path[256], *doc = NULL, *summary = NULL, *bad;
	hc_store *s = NULL, *other = NULL;
	hc_key *key = NULL, *pub = NULL, *other_key = NULL;
	uint64_t seq, *sizes = NULL;
	size_t n = 0, i, j;
	int all_ok = 1, all_bad = 1, rc;

	if (!mkdtemp(base))
		return 1;
	snprintf(path, sizeof(path), "%s/s", base);
	ok(hc_store_init(path, NULL) == 0 && hc_store_open(&s, path) == 0,
	   "store");
	ok(hc_store_private_key(s, NULL, &key) == 0 &&
		   hc_store_public_key(s, &pub) == 0,
	   "keys");
	ok(append(s, 20) == 0 && checkpoint(s, key) == 0 &&
		   append(s, 13) == 0 && checkpoint(s, key) == 0,
	   "37 records, checkpoints at 2, 23 and 37");

	for (seq = 0; seq < 37; seq++) {
		if (hc_prove_inclusion(s, seq, &doc) < 0 ||
		    hc_proof_verify(doc, strlen(doc), pub, NULL, 0, NULL) < 0) {
			all_ok = 0;
			diag("seq %" PRIu64 ": %s", seq, hc_error_message());
		}
		free(doc);
		doc = NULL;
	}
	ok(all_ok, "an inclusion proof of every record verifies");
	ok(hc_prove_inclusion(s, 37, &doc) == HC_EINVAL,
	   "no proof of a record beyond the checkpoint: %s",
	   hc_error_message());

	ok(hc_prove_inclusion(s, 7, &doc) == 0, "proof of seq 7");
	rc = hc_proof_verify(doc, strlen(doc), pub, NULL, 0, &summary);
	ok(rc == 0 && strstr(summary, "seq 7"), "verifies: %s", summary);
	free(summary);
	bad = forge(doc, "\\\"i\\\":5", "\\\"i\\\":6");
	ok(hc_proof_verify(bad, strlen(bad), pub, NULL, 0, NULL) == HC_EVERIFY,
	   "edited record fails: %s", hc_error_message());
	free(bad);
	bad = forge(doc, "\"seq\": 7", "\"seq\": 8");
	ok(hc_proof_verify(bad, strlen(bad), pub, NULL, 0, NULL) == HC_EVERIFY,
	   "wrong seq fails: %s", hc_error_message());
	free(bad);
	bad = strdup(doc);
	{
		char *p = strstr(bad, "\"path\": [\n    \"") + 15;

		*p = *p == '0' ? '1' : '0';
	}
	ok(hc_proof_verify(bad, strlen(bad), pub, NULL, 0, NULL) == HC_EVERIFY,
	   "flipped path hash fails: %s", hc_error_message());
	free(bad);
	bad = forge(doc, "\"tree_size\": 37", "\"tree_size\": 36");
	ok(hc_proof_verify(bad, strlen(bad), pub, NULL, 0, NULL) < 0,
	   "wrong tree size fails: %s", hc_error_message());
	free(bad);
	ok(hc_proof_verify("{}", 2, pub, NULL, 0, NULL) == HC_EFORMAT,
	   "empty document is malformed");
	ok(hc_proof_verify("not json", 8, pub, NULL, 0, NULL) == HC_EFORMAT,
	   "non-JSON is malformed");

	snprintf(path, sizeof(path), "%s/other", base);
	ok(hc_store_init(path, NULL) == 0 && hc_store_open(&other, path) == 0 &&
		   hc_store_public_key(other, &other_key) == 0,
	   "another store");
	ok(hc_proof_verify(doc, strlen(doc), other_key, NULL, 0, NULL) ==
		   HC_EVERIFY,
	   "another store's key fails: %s", hc_error_message());
	free(doc);
	doc = NULL;

	ok(hc_store_checkpoints(s, &sizes, &n) == 0 && n == 3,
	   "three checkpoints");
	for (i = 0; i < n; i++)
		for (j = i; j < n; j++) {
			if (hc_prove_consistency(s, sizes[i], sizes[j], &doc) <
				    0 ||
			    hc_proof_verify(doc, strlen(doc), pub, NULL, 0,
					    NULL) < 0) {
				all_bad = 0;
				diag("%" PRIu64 "->%" PRIu64 ": %s", sizes[i],
				     sizes[j], hc_error_message());
			}
			free(doc);
			doc = NULL;
		}
	ok(all_bad, "consistency proofs between every pair verify");
	ok(hc_prove_consistency(s, sizes[0], sizes[2], &doc) == 0,
	   "consistency 2 -> 37");
	bad = strdup(doc);
	{
		char *p = strstr(bad, "\"path\": [\n    \"") + 15;

		*p = *p == '0' ? '1' : '0';
	}
	ok(hc_proof_verify(bad, strlen(bad), pub, NULL, 0, NULL) == HC_EVERIFY,
	   "flipped consistency hash fails: %s", hc_error_message());
	free(bad);
	free(doc);
	free(sizes);

	hc_key_free(key);
	hc_key_free(pub);
	hc_key_free(other_key);
	hc_store_free(s);
	hc_store_free(other);
	tap_rmrf(base);
	return tap_done();
}
