/*
 * record.c - parsing and checking one record line.
 */
#include <string.h>

#include "internal.h"

int hc_type_valid(const char *type, size_t n)
{
	size_t i;

	if (n == 0 || n > HC_TYPE_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((type[i] >= 'a' && type[i] <= 'z') ||
		      (type[i] >= '0' && type[i] <= '9') || type[i] == '-'))
			return 0;
	return 1;
}

/* Digits at s[0..n), as a number; -1 if one is not a digit. */
static int digits(const char *s, size_t n)
{
	int v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* 1 if t[0..30) is YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ with sane fields. */
static int time_valid(const char *t)
{
	int mo, d, h, mi, sec;

	if (t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' ||
	    t[16] != ':' || t[19] != '.' || t[29] != 'Z')
		return 0;
	mo = digits(t + 5, 2);
	d = digits(t + 8, 2);
	h = digits(t + 11, 2);
	mi = digits(t + 14, 2);
	sec = digits(t + 17, 2);
	return digits(t, 4) >= 0 && digits(t + 20, 9) >= 0 && mo >= 1 &&
	       mo <= 12 && d >= 1 && d <= 31 && h >= 0 && h <= 23 && mi >= 0 &&
	       mi <= 59 && sec >= 0 && sec <= 60;
}

/* line[*i..) starts with lit: advance past it. */
static int take(const char *line, size_t len, size_t *i, const char *lit)
{
	size_t n = strlen(lit);

	if (len - *i < n || memcmp(line + *i, lit, n) != 0)
		return 0;
	*i += n;
	return 1;
}

/*
 * The common members, byte for byte as FORMAT.md section 2.2 says hozen
 * writes them: {"v":1,"seq":N,"prev":"HEX64","time":"TIME","type":"T",
 * "actor":{ -- readers reject anything else (a cheap prefix check; the
 * JSON is parsed already).
 */
static int check_prefix(const char *line, size_t len)
{
	size_t i = 0, k;

	if (!take(line, len, &i, "{\"v\":1,\"seq\":"))
		return hc_error_set(HC_EFORMAT,
				    "the record must begin {\"v\":1,\"seq\": "
				    "(members in the order of FORMAT.md "
				    "section 2.2, no whitespace)");
	for (k = 0; i + k < len && line[i + k] >= '0' && line[i + k] <= '9';
	     k++)
		;
	if (k == 0 || k > 20 || (k > 1 && line[i] == '0'))
		return hc_error_set(HC_EFORMAT,
				    "'seq' must be written in decimal without "
				    "leading zeros");
	i += k;
	if (!take(line, len, &i, ",\"prev\":\""))
		return hc_error_set(HC_EFORMAT,
				    "'prev' must follow 'seq' (members in the "
				    "order of FORMAT.md section 2.2)");
	for (k = 0; k < HC_HEX_LEN; k++)
		if (i + k >= len ||
		    !((line[i + k] >= '0' && line[i + k] <= '9') ||
		      (line[i + k] >= 'a' && line[i + k] <= 'f')))
			return hc_error_set(HC_EFORMAT,
					    "'prev' must be 64 lower-case hex "
					    "digits");
	i += HC_HEX_LEN;
	if (!take(line, len, &i, "\",\"time\":\""))
		return hc_error_set(HC_EFORMAT,
				    "'prev' must be 64 lower-case hex digits, "
				    "followed by 'time'");
	if (len - i < 31 || !time_valid(line + i) || line[i + 30] != '"')
		return hc_error_set(HC_EFORMAT,
				    "'time' must be UTC with nanoseconds: "
				    "YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ");
	i += 31;
	if (!take(line, len, &i, ",\"type\":\""))
		return hc_error_set(HC_EFORMAT,
				    "'type' must follow 'time' (members in "
				    "the order of FORMAT.md section 2.2)");
	for (k = 0; i + k < len && line[i + k] != '"'; k++)
		;
	if (!hc_type_valid(line + i, k))
		return hc_error_set(HC_EFORMAT,
				    "'type' must be 1 to %d characters of a-z, "
				    "0-9 and '-'",
				    HC_TYPE_MAX);
	i += k + 1;
	if (!take(line, len, &i, ",\"actor\":{"))
		return hc_error_set(HC_EFORMAT,
				    "'actor' must follow 'type' (members in "
				    "the order of FORMAT.md section 2.2)");
	return 0;
}

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
	rc = check_prefix(line, len);
	if (rc < 0)
		goto out;
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
