/*
 * test_record.c - parsing and checking one record line.
 */
#include <stdlib.h>
#include <string.h>

#include "hashchain.h"
#include "tap.h"

#define PREV                                                                   \
	"\"prev\":\""                                                          \
	"0000000000000000000000000000000000000000000000000000000000000000\""
#define ACTOR                                                                  \
	"\"actor\":{\"uid\":0,\"gid\":0,\"pid\":1,\"comm\":\"init\","          \
	"\"exe\":\"/sbin/init\"}"
#define TIME "\"time\":\"2026-11-22T00:00:00.123456789Z\""
#define GOOD                                                                   \
	"{\"v\":1,\"seq\":7," PREV "," TIME ",\"type\":\"note\"," ACTOR        \
	",\"text\":\"保全\"}"

static int parses(const char *line)
{
	hc_record r;
	int rc;

	memset(&r, 0, sizeof(r));
	rc = hc_record_parse(&r, line, strlen(line));
	hc_record_release(&r);
	return rc;
}

int main(void)
{
	static const struct {
		const char *line, *why;
	} bad[] = {
		{"", "empty line"},
		{"[]", "an array"},
		{"\"str\"", "a string"},
		{"{\"v\":1", "unterminated object"},
		{"{\"v\":2,\"seq\":0," PREV
		 ",\"time\":\"t\",\"type\":\"x\"," ACTOR "}",
		 "version 2"},
		{"{\"v\":\"1\",\"seq\":0," PREV
		 ",\"time\":\"t\",\"type\":\"x\"," ACTOR "}",
		 "version as string"},
		{"{\"v\":1,\"seq\":-1," PREV
		 ",\"time\":\"t\",\"type\":\"x\"," ACTOR "}",
		 "negative seq"},
		{"{\"v\":1,\"seq\":1.5," PREV
		 ",\"time\":\"t\",\"type\":\"x\"," ACTOR "}",
		 "fractional seq"},
		{"{\"v\":1,\"seq\":0,\"prev\":\"00\",\"time\":\"t\",\"type\":"
		 "\"x\"," ACTOR "}",
		 "short prev"},
		{"{\"v\":1,\"seq\":0," PREV ",\"type\":\"x\"," ACTOR "}",
		 "missing time"},
		{"{\"v\":1,\"seq\":0," PREV ",\"time\":\"t\"," ACTOR "}",
		 "missing type"},
		{"{\"v\":1,\"seq\":0," PREV
		 ",\"time\":\"t\",\"type\":\"\"," ACTOR "}",
		 "empty type"},
		{"{\"v\":1,\"seq\":0," PREV ",\"time\":\"t\",\"type\":\"x\"}",
		 "missing actor"},
		{"{\"v\":1,\"v\":1,\"seq\":0," PREV
		 ",\"time\":\"t\",\"type\":\"x\"," ACTOR "}",
		 "duplicate key"},
		{"{\"v\":1,\"seq\":0," PREV
		 ",\"time\":\"t\",\"type\":\"x\"," ACTOR ",\"t\":\"\xff\xfe\"}",
		 "invalid UTF-8"},
		{"{\"v\":1,\"seq\":0," PREV
		 ",\"time\":\"t\",\"type\":\"x\"," ACTOR
		 ",\"t\":\"a\\u0000b\"}",
		 "NUL in a string"},
		{"{\"v\":1,\"seq\":0," PREV
		 ",\"time\":\"t\",\"type\":\"x\"," ACTOR "} {}",
		 "trailing data"},
	};
	/*
	 * Valid JSON with every common member of the right type, but not
	 * written as FORMAT.md section 2.2 says: readers reject it.
	 */
	static const struct {
		const char *line, *why, *msg;
	} strict[] = {
		{"{\"v\":1,\"seq\":7," PREV
		 ",\"time\":\"2026-11-22T00:00:00Z\",\"type\":\"note\"," ACTOR
		 "}",
		 "a time without nanoseconds", "nanoseconds"},
		{"{\"v\":1,\"seq\":7," PREV
		 ",\"time\":\"2026-11-22T00:00:00.1234567890Z\",\"type\":"
		 "\"note\"," ACTOR "}",
		 "a time with 10 digits of fraction", "nanoseconds"},
		{"{\"v\":1,\"seq\":7," PREV
		 ",\"time\":\"2026-11-22T00:00:00.123456789+00:00\",\"type\":"
		 "\"note\"," ACTOR "}",
		 "a time with an offset", "nanoseconds"},
		{"{\"v\":1,\"seq\":7," PREV
		 ",\"time\":\"2026-13-22T00:00:00.123456789Z\",\"type\":"
		 "\"note\"," ACTOR "}",
		 "month 13", "nanoseconds"},
		{"{\"v\":1,\"seq\":7," PREV
		 ",\"time\":\"2026-11-22 00:00:00.123456789Z\",\"type\":"
		 "\"note\"," ACTOR "}",
		 "a space for the T", "nanoseconds"},
		{"{\"v\":1,\"seq\":7,\"prev\":"
		 "\"ABCDEF000000000000000000000000000"
		 "0000000000000000000000000000000\"," TIME
		 ",\"type\":\"note\"," ACTOR "}",
		 "an upper-case prev", "lower-case"},
		{"{\"v\":1,\"seq\":7,\"prev\":"
		 "\"\\u00300000000000000000000000000000"
		 "00000000000000000000000000000000000\"," TIME
		 ",\"type\":\"note\"," ACTOR "}",
		 "an escaped digit in prev", "lower-case"},
		{"{\"seq\":7,\"v\":1," PREV "," TIME ",\"type\":\"note\"," ACTOR
		 "}",
		 "seq before v", "begin"},
		{"{\"v\":1,\"seq\":7," TIME "," PREV ",\"type\":\"note\"," ACTOR
		 "}",
		 "time before prev", "prev"},
		{"{\"v\":1,\"seq\":7," PREV ",\"type\":\"note\"," TIME "," ACTOR
		 "}",
		 "type before time", "'time'"},
		{"{\"v\":1,\"seq\":7," PREV "," TIME "," ACTOR
		 ",\"type\":\"note\""
		 "}",
		 "actor before type", "type"},
		{"{\"v\":1,\"seq\":7," PREV "," TIME ",\"type\":\"note\","
		 "\"text\":\"x\"," ACTOR "}",
		 "a member between type and actor", "actor"},
		{"{ \"v\":1,\"seq\":7," PREV "," TIME
		 ",\"type\":\"note\"," ACTOR "}",
		 "whitespace", "begin"},
		{"{\"v\":1,\"seq\": 7," PREV "," TIME
		 ",\"type\":\"note\"," ACTOR "}",
		 "whitespace before seq", "leading zeros"},
		{"{\"v\":1,\"seq\":7," PREV "," TIME ",\"type\":\"Note\"," ACTOR
		 "}",
		 "an upper-case type", "a-z"},
		{"{\"v\":1,\"seq\":7," PREV "," TIME
		 ",\"type\":\"no\\u0074e\"," ACTOR "}",
		 "an escaped type", "a-z"},
		{"{\"v\":1,\"seq\":7," PREV "," TIME ",\"type\":\"n o\"," ACTOR
		 "}",
		 "a space in the type", "a-z"},
	};
	hc_record r;
	uint8_t h[HC_HASH_LEN];
	char *huge;
	size_t i, n;

	static const char good[] = GOOD;

	memset(&r, 0, sizeof(r));
	ok(hc_record_parse(&r, good, strlen(good)) == 0, "good record parses");
	ok(r.seq == 7 && !strcmp(r.type, "note") && r.len == strlen(good) &&
		   r.line == good,
	   "fields and exact line kept");
	hc_sha256(GOOD, strlen(GOOD), h);
	ok(!memcmp(h, r.hash, HC_HASH_LEN), "hash is SHA-256 of the line");
	hc_merkle_leaf_hash(GOOD, strlen(GOOD), h);
	ok(!memcmp(h, r.leaf, HC_HASH_LEN), "leaf is the RFC 9162 leaf hash");
	ok(!strcmp(json_string_value(json_object_get(r.json, "text")), "保全"),
	   "Japanese text round-trips");
	hc_record_release(&r);
	hc_record_release(&r);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parses(bad[i].line);

		ok(rc == HC_EFORMAT && hc_error_message()[0], "rejects %s: %s",
		   bad[i].why, hc_error_message());
	}
	for (i = 0; i < sizeof(strict) / sizeof(strict[0]); i++) {
		int rc = parses(strict[i].line);

		ok(rc == HC_EFORMAT &&
			   strstr(hc_error_message(), strict[i].msg),
		   "rejects %s: %s", strict[i].why, hc_error_message());
	}
	ok(parses("{\"v\":1,\"seq\":0," PREV "," TIME
		  ",\"type\":\"version-lost\"," ACTOR "}") == 0,
	   "seq 0 and a type with a hyphen parse");
	ok(parses("{\"v\":1,\"seq\":18446744073709551615," PREV "," TIME
		  ",\"type\":\"x\"," ACTOR "}") == HC_EFORMAT,
	   "a seq beyond JSON's integers is refused: %s", hc_error_message());
	ok(hc_record_parse(&r, "{\"v\":1}\n{}", 10) == HC_EFORMAT,
	   "rejects an embedded newline");

	n = HC_RECORD_MAX + 1;
	huge = malloc(n);
	memset(huge, ' ', n);
	huge[0] = '{';
	huge[n - 1] = '}';
	ok(hc_record_parse(&r, huge, n) == HC_EFORMAT &&
		   strstr(hc_error_message(), "larger"),
	   "rejects a line over the limit: %s", hc_error_message());
	free(huge);
	return tap_done();
}
