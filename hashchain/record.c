/*
 * record.c - parsing and checking one record line.
 */
#include <string.h>

#include "hashchain.h"

int hc_record_parse(hc_record *out, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *root = NULL, *v, *seq, *prev, *time, *type, *actor;
	hc_record r;
	int rc = 0;

	memset(&r, 0, sizeof(r));
	if (len > HC_RECORD_MAX)
		return hc_error_set(HC_EFORMAT,
				    "record of %zu bytes is larger than the "
				    "limit of %u",
				    len, HC_RECORD_MAX);
	if (memchr(line, '\n', len))
		return hc_error_set(HC_EFORMAT, "record contains a newline");
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root && json_error_code(&jerr) == json_error_invalid_utf8)
		return hc_error_set(HC_EFORMAT,
				    "invalid UTF-8 (column %d): records are "
				    "UTF-8 JSON",
				    jerr.column);
	if (!root)
		return hc_error_set(HC_EFORMAT,
				    "not valid JSON: %s (column %d)", jerr.text,
				    jerr.column);
	if (!json_is_object(root)) {
		rc = hc_error_set(HC_EFORMAT, "record is not a JSON object");
		goto out;
	}
	v = json_object_get(root, "v");
	seq = json_object_get(root, "seq");
	prev = json_object_get(root, "prev");
	time = json_object_get(root, "time");
	type = json_object_get(root, "type");
	actor = json_object_get(root, "actor");
	if (!json_is_integer(v) || json_integer_value(v) != HC_FORMAT_VERSION) {
		rc = hc_error_set(HC_EFORMAT,
				  "field 'v' must be the integer %d",
				  HC_FORMAT_VERSION);
		goto out;
	}
	if (!json_is_integer(seq) || json_integer_value(seq) < 0) {
		rc = hc_error_set(HC_EFORMAT,
				  "field 'seq' must be a non-negative integer");
		goto out;
	}
	if (!json_is_string(prev) ||
	    hc_unhex(json_string_value(prev), r.prev, HC_HASH_LEN) < 0) {
		rc = hc_error_set(HC_EFORMAT,
				  "field 'prev' must be 64 hex digits");
		goto out;
	}
	if (!json_is_string(time) || json_string_length(time) == 0) {
		rc = hc_error_set(HC_EFORMAT, "field 'time' must be a string");
		goto out;
	}
	if (!json_is_string(type) || json_string_length(type) == 0) {
		rc = hc_error_set(HC_EFORMAT, "field 'type' must be a string");
		goto out;
	}
	if (!json_is_object(actor)) {
		rc = hc_error_set(HC_EFORMAT,
				  "field 'actor' must be an object");
		goto out;
	}
	rc = hc_sha256(line, len, r.hash);
	if (rc == 0)
		rc = hc_merkle_leaf_hash(line, len, r.leaf);
	if (rc < 0)
		goto out;
	r.seq = (uint64_t)json_integer_value(seq);
	r.type = json_string_value(type);
	r.json = root;
	r.line = line;
	r.len = len;
	root = NULL;
	*out = r;
out:
	json_decref(root);
	return rc;
}

void hc_record_release(hc_record *r)
{
	if (!r)
		return;
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}
