/*
 * test_case.c - the case: every field valid and invalid, Japanese text,
 * time zones, dates in the wrong order, ended and active orders, the
 * chain replaying to case.json, tampering, confidential hashing, the edit
 * document and import.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "case.h"
#include "hashchain.h"
#include "tap.h"

static char base[] = "/tmp/hozen-case-XXXXXX";

/* A valid and an invalid text value for each type. */
static const char *valid_for(const struct case_field_info *f)
{
	switch (f->type) {
	case CASE_DATE:
		return "2026-11-20T10:30:00+09:00";
	case CASE_ENUM:
	case CASE_LIST:
		return f->values ? f->values[0] : "項目 one";
	case CASE_INT:
		return "3";
	case CASE_BOOL:
		return "yes";
	default:
		return "不正アクセス: 東京都千代田区";
	}
}

static const char *invalid_for(const struct case_field_info *f)
{
	switch (f->type) {
	case CASE_DATE:
		return "next tuesday";
	case CASE_ENUM:
	case CASE_LIST:
		return f->values ? "no-such-value" : "";
	case CASE_INT:
		return "6";
	case CASE_BOOL:
		return "maybe";
	default:
		return "";
	}
}

static void test_fields(void)
{
	case_t *c = NULL;
	size_t i;

	case_new(&c);
	for (i = 0; i < case_field_count(); i++) {
		const struct case_field_info *f = case_field_at(i);
		const char *good = valid_for(f), *bad = invalid_for(f);
		char *before, *after;
		int rc;

		if (f->type == CASE_DOCUMENT)
			continue;
		rc = case_set(c, f->name, &good, 1);
		ok(rc == 0 && case_get(c, f->name), "%s: '%s' is valid",
		   f->name, good);
		before = case_value_text(c, f->name);
		rc = case_set(c, f->name, &bad, 1);
		ok(rc == HC_EINVAL && strstr(hc_error_message(), f->name) &&
			   strstr(hc_error_message(), "expected"),
		   "%s: '%s' is refused naming the field and what is "
		   "expected (%s)",
		   f->name, bad, hc_error_message());
		after = case_value_text(c, f->name);
		ok(before && after && !strcmp(before, after),
		   "%s: the refused value changed nothing", f->name);
		free(before);
		free(after);
	}
	ok(case_set(c, "no.such.field", (const char *const[]){"x"}, 1) ==
			   HC_EINVAL &&
		   strstr(hc_error_message(), "no.such.field"),
	   "an unknown field is refused by name");
	ok(case_set(c, "order.source",
		    (const char *const[]){"domestic", "foreign"},
		    2) == HC_EINVAL,
	   "an enum takes one value");
	ok(case_set(c, "incident.reason", (const char *const[]){"a\x01"}, 1) ==
		   HC_EINVAL,
	   "a control character in a text is refused");
	ok(case_set(c, "incident.attack",
		    (const char *const[]){"denial-of-service, other", "other"},
		    2) == 0 &&
		   json_array_size(case_get(c, "incident.attack")) == 2,
	   "an enum list splits on commas and drops duplicates");
	ok(case_validate(c) == 0, "the whole case is valid");
	case_free(c);
}

static void test_dates(void)
{
	static const struct {
		const char *in, *canon;
		long long epoch;
	} good[] = {
		{"2026-11-20T10:30:00+09:00", "2026-11-20T10:30:00+09:00",
		 1795138200},
		{"2026-11-20T01:30:00Z", "2026-11-20T01:30:00Z", 1795138200},
		{"2026-11-20 10:30", "2026-11-20T10:30:00+09:00", 1795138200},
		{"2026-11-20T10:30 JST", "2026-11-20T10:30:00+09:00",
		 1795138200},
		{"2026-11-20T01:30:00 UTC", "2026-11-20T01:30:00Z", 1795138200},
		{"2026-11-19T20:30:00-05:00", "2026-11-19T20:30:00-05:00",
		 1795138200},
		{"2026-11-20T07:00:00+0530", "2026-11-20T07:00:00+05:30",
		 1795138200},
		{"2026-11-20", "2026-11-20T00:00:00+09:00", 1795100400},
		{"2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z", 1709164800},
	};
	static const char *const bad[] = {
		"2026-02-30",
		"2026-13-01T00:00Z",
		"2026-11-20T25:00",
		"10:30",
		"2026-11-20T10:30+15:00",
		"2026-11-20T10:30:00+9",
		"2026/11/20",
		"2026-11-20T10:30:61",
		"",
		"2026-11-20T10:30 PST",
	};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		time_t t = 0;
		int off = 0, rc = case_parse_date(good[i].in, &t, &off);
		char out[32] = "";

		if (rc == 0)
			case_format_date(t, off, out);
		ok(rc == 0 && (long long)t == good[i].epoch &&
			   !strcmp(out, good[i].canon),
		   "date '%s' is %lld, written %s (got %lld %s)", good[i].in,
		   good[i].epoch, good[i].canon, (long long)t, out);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		time_t t;

		ok(case_parse_date(bad[i], &t, NULL) == HC_EINVAL,
		   "date '%s' is refused (%s)", bad[i], hc_error_message());
	}
}

/* A store with a case, for the tests that record. */
static int new_store(const char *name, char *path, size_t n, hc_store **s)
{
	snprintf(path, n, "%s/%s", base, name);
	if (hc_store_init(path, NULL) < 0)
		return -1;
	return hc_store_open(s, path);
}

static int set1(int fd, const char *field, const char *value)
{
	struct case_commit_report rep;
	case_t *c = NULL;
	hc_actor self;
	int rc;

	hc_actor_self(&self);
	rc = case_load(&c, fd);
	if (rc == 0)
		rc = value ? case_set(c, field, &value, 1)
			   : case_unset(c, field);
	if (rc == 0)
		rc = case_commit(fd, c, &self, &rep);
	case_free(c);
	return rc;
}

static int verify_case(int fd, struct case_verify_report *rep)
{
	case_replay *r = NULL;
	int rc = case_replay_store(&r, fd);

	if (rc == 0)
		rc = case_replay_verify(r, fd, NULL, rep);
	case_replay_free(r);
	return rc;
}

static char *read_all(int fd, const char *path)
{
	char *t = NULL;

	if (hc_read_file(fd, path, 1u << 24, &t, NULL) < 0)
		return NULL;
	return t;
}

static void test_record(void)
{
	static const char ja[] = "株式会社ほぜん 〒100-0001 東京都千代田区"
				 "千代田1-1\n二行目: 「不正アクセス」";
	struct case_verify_report vr;
	char path[256], *before, *after, *log;
	hc_store *s = NULL;
	case_t *c = NULL;
	int fd, rc;

	if (new_store("record", path, sizeof(path), &s) < 0) {
		ok(0, "store: %s", hc_error_message());
		return;
	}
	fd = hc_store_fd(s);
	ok(set1(fd, "applicant.name", ja) == 0, "a Japanese text is recorded");
	ok(set1(fd, "incident.occurred", "2026-11-20T10:00+09:00") == 0 &&
		   set1(fd, "incident.noticed", "2026-11-20T02:00Z") == 0,
	   "dates in two zones are recorded");
	ok(case_load(&c, fd) == 0 &&
		   !strcmp(json_string_value(case_get(c, "applicant.name")),
			   ja),
	   "the Japanese text round-trips exactly through case.json");
	case_free(c);
	c = NULL;

	/* Wrong order: nothing written. */
	before = read_all(fd, "case.json");
	log = read_all(fd, "chain/00000000000000000000.log");
	rc = set1(fd, "incident.noticed", "2026-11-20T09:59+09:00");
	ok(rc == HC_EINVAL && strstr(hc_error_message(), "incident.noticed") &&
		   strstr(hc_error_message(), "before"),
	   "noticed before it happened is refused (%s)", hc_error_message());
	after = read_all(fd, "case.json");
	ok(before && after && !strcmp(before, after),
	   "the refused change left case.json as it was");
	free(after);
	after = read_all(fd, "chain/00000000000000000000.log");
	ok(log && after && !strcmp(log, after),
	   "the refused change wrote no record");
	free(after);
	free(before);
	free(log);
	ok(set1(fd, "order.start", "2026-12-01") == 0 &&
		   set1(fd, "order.end", "2026-11-30") == HC_EINVAL &&
		   strstr(hc_error_message(), "order.end"),
	   "an order that ends before it starts is refused");

	/* Confidential values: hashed in the chain, checked against it. */
	ok(set1(fd, "order.known.person", "山田 太郎") == 0,
	   "a confidential value is recorded");
	log = read_all(fd, "chain/00000000000000000000.log");
	ok(log && !strstr(log, "山田") && strstr(log, "\"new_sha256\""),
	   "the chain holds its hash, not the value");
	free(log);
	ok(case_load(&c, fd) == 0 &&
		   case_is_confidential(c, "order.known.person"),
	   "it is marked confidential");
	{
		json_t *all = NULL, *red = NULL;

		ok(case_to_json(c, 0, &all) == 0 &&
			   case_to_json(c, 1, &red) == 0 &&
			   json_object_get(json_object_get(all, "fields"),
					   "order.known.person") &&
			   !json_object_get(json_object_get(red, "fields"),
					    "order.known.person"),
		   "a redacted export leaves it out");
		json_decref(all);
		json_decref(red);
	}
	ok(case_set_confidential(c, "order.end", 1) == HC_EINVAL,
	   "a field enforcement reads cannot be made confidential");
	case_free(c);
	c = NULL;

	ok(verify_case(fd, &vr) == 0 && vr.ok && vr.records == 5,
	   "the chain replays to case.json (%s)", vr.reason);

	/* case.json edited behind the tool's back. */
	before = read_all(fd, "case.json");
	{
		char *p = strstr(before, "二行目"), *copy = strdup(before);
		int wfd = openat(fd, "case.json", O_WRONLY | O_TRUNC);

		copy[p - before] = 'X';
		memmove(copy + (p - before) + 1, copy + (p - before) + 3,
			strlen(copy + (p - before) + 3) + 1);
		ok(wfd >= 0 && write(wfd, copy, strlen(copy)) > 0,
		   "case.json edited by hand");
		close(wfd);
		free(copy);
	}
	ok(verify_case(fd, &vr) == 0 && !vr.ok &&
		   !strcmp(vr.field, "applicant.name"),
	   "a hand-edited value is found, naming the field (%s)", vr.reason);
	{
		char *p = strstr(before, "山田"), *copy = strdup(before);
		int wfd = openat(fd, "case.json", O_WRONLY | O_TRUNC);

		memcpy(copy + (p - before), "川", 3);
		ok(wfd >= 0 && write(wfd, copy, strlen(copy)) > 0,
		   "a confidential value edited by hand");
		close(wfd);
		free(copy);
	}
	ok(verify_case(fd, &vr) == 0 && !vr.ok &&
		   !strcmp(vr.field, "order.known.person"),
	   "a hand-edited confidential value is found by its hash (%s)",
	   vr.reason);
	hc_atomic_write(fd, "case.json", before, strlen(before), 0644);
	ok(verify_case(fd, &vr) == 0 && vr.ok, "restored, it verifies again");
	free(before);
	hc_store_free(s);
}

static void test_hash(void)
{
	static const char input[] = "hozen-case-value/1\norder.known.person\n"
				    "000102030405060708090a0b0c0d0e0f\n"
				    "\"山田\"";
	uint8_t d[HC_HASH_LEN];
	char want[HC_HEX_LEN + 1], got[HC_HEX_LEN + 1] = "";
	json_t *v = json_string("山田");

	hc_sha256(input, strlen(input), d);
	hc_hex(d, HC_HASH_LEN, want);
	ok(case_value_hash("order.known.person",
			   "000102030405060708090a0b0c0d0e0f", v, got) == 0 &&
		   !strcmp(got, want),
	   "the value hash is SHA-256 over domain, field, salt and JSON, as "
	   "FORMAT.md says");
	json_decref(v);
}

static void test_order(void)
{
	struct case_commit_report rep;
	struct case_preservation p;
	struct case_confidentiality k;
	char path[256];
	hc_store *s = NULL;
	case_t *c = NULL;
	hc_actor self;
	time_t end;
	int fd;

	hc_actor_self(&self);
	if (new_store("order", path, sizeof(path), &s) < 0) {
		ok(0, "store: %s", hc_error_message());
		return;
	}
	fd = hc_store_fd(s);
	case_load(&c, fd);
	case_preservation(c, time(NULL), &p);
	ok(p.in_force && p.state == CASE_ORDER_DRAFT,
	   "no order at all: a draft, preservation in force");
	case_confidentiality(c, time(NULL), &k);
	ok(k.in_force, "undecided confidentiality is in force");
	case_free(c);
	c = NULL;
	ok(case_release(fd, "地方裁判所", NULL, time(NULL), &self, &rep) ==
			   HC_EINVAL &&
		   strstr(hc_error_message(), "draft"),
	   "a draft cannot be released, even revoked");

	set1(fd, "order.end", "2030-01-01T00:00:00+09:00");
	set1(fd, "issuer.authority", "警視庁 サイバー犯罪対策課");
	case_load(&c, fd);
	case_parse_date("2030-01-01T00:00:00+09:00", &end, NULL);
	case_preservation(c, end - 1, &p);
	ok(p.in_force && p.state == CASE_ORDER_ACTIVE && p.end == end,
	   "an issued order before its end is active");
	case_preservation(c, end, &p);
	ok(p.in_force && p.state == CASE_ORDER_ENDED,
	   "at its end it has ended but stays in force until released");
	case_free(c);
	c = NULL;
	ok(case_release(fd, NULL, NULL, end - 1, &self, &rep) == HC_EINVAL &&
		   strstr(hc_error_message(), "--revoked-by"),
	   "release before the end is refused (%s)", hc_error_message());
	ok(set1(fd, "order.end", "2029-01-01") == HC_EINVAL &&
		   strstr(hc_error_message(), "shortened"),
	   "shortening an issued order is refused");
	ok(set1(fd, "order.end", "2031-01-01") == 0, "extending it is allowed");
	case_parse_date("2031-01-01", &end, NULL);
	ok(case_release(fd, NULL, "期間満了", end + 5, &self, &rep) == 0,
	   "release after the end is allowed");
	case_load(&c, fd);
	case_preservation(c, end + 10, &p);
	ok(!p.in_force && p.state == CASE_ORDER_RELEASED,
	   "released: preservation is lifted");
	case_free(c);
	c = NULL;
	ok(case_release(fd, NULL, NULL, end + 20, &self, &rep) == HC_EINVAL,
	   "a second release is refused");
	ok(set1(fd, "order.end", "2032-01-01") == 0 && case_load(&c, fd) == 0 &&
		   case_preservation(c, end + 30, &p) == 0 && p.in_force &&
		   p.state == CASE_ORDER_ACTIVE,
	   "an extension after the release puts the order back in force");
	case_free(c);
	c = NULL;
	ok(case_release(fd, "東京地方裁判所", "取消し", end + 40, &self,
			&rep) == 0 &&
		   case_load(&c, fd) == 0 &&
		   case_preservation(c, end + 50, &p) == 0 && !p.in_force &&
		   p.state == CASE_ORDER_REVOKED &&
		   strstr(p.why, "東京地方裁判所"),
	   "a revocation releases before the end, naming the authority");
	case_free(c);
	c = NULL;
	{
		struct case_verify_report vr;

		ok(verify_case(fd, &vr) == 0 && vr.ok,
		   "releases and extensions replay to case.json (%s)",
		   vr.reason);
	}
	set1(fd, "confidentiality.recipient", "no");
	set1(fd, "confidentiality.subject", "yes");
	set1(fd, "confidentiality.until", "2026-01-01T00:00Z");
	case_load(&c, fd);
	case_parse_date("2026-01-01T00:00Z", &end, NULL);
	case_confidentiality(c, end - 1, &k);
	ok(k.in_force && k.towards_subject == 1 && k.towards_recipient == 0,
	   "confidentiality runs until its end date");
	case_confidentiality(c, end, &k);
	ok(!k.in_force, "and ends then");
	case_free(c);
	hc_store_free(s);
}

static void test_edit(void)
{
	static const char doc[] = "# comment\n"
				  "incident.reason: 一行目\n"
				  "  二行目\n"
				  "order.records: subscriber\n"
				  "  traffic\n"
				  "incident.severity: 2\n";
	static const char json[] = "{\"fields\":{\"incident.severity\":null,"
				   "\"order.source\":\"foreign\"}}";
	case_t *c = NULL, *d = NULL;
	char *text = NULL, *text2 = NULL;
	int rc;

	case_new(&c);
	ok(case_import(c, doc, strlen(doc)) == 0 &&
		   !strcmp(json_string_value(case_get(c, "incident.reason")),
			   "一行目\n二行目") &&
		   json_array_size(case_get(c, "order.records")) == 2,
	   "an edit document sets texts over lines and lists by item");
	ok(case_edit_text(c, "test", &text) == 0 && case_new(&d) == 0 &&
		   case_import(d, text, strlen(text)) == 0 &&
		   case_edit_text(d, "test", &text2) == 0 &&
		   !strcmp(text, text2),
	   "the edit document reads back to the same case");
	rc = case_import(c, "incident.severity: 9\n", 21);
	ok(rc == HC_EINVAL && strstr(hc_error_message(), "line 1") &&
		   strstr(hc_error_message(), "incident.severity"),
	   "an invalid value is refused with its line (%s)",
	   hc_error_message());
	ok(json_integer_value(case_get(c, "incident.severity")) == 2,
	   "and nothing changed");
	ok(case_import(c, "incident.reason: x\nwhat\n", 23) == HC_EINVAL &&
		   strstr(hc_error_message(), "line 2"),
	   "a stray line is refused with its line");
	ok(case_import(c, json, strlen(json)) == 0 &&
		   !case_get(c, "incident.severity") &&
		   !strcmp(json_string_value(case_get(c, "order.source")),
			   "foreign"),
	   "an exported JSON document imports (null unsets)");
	free(text);
	free(text2);
	case_free(c);
	case_free(d);
}

static void test_check(void)
{
	struct case_missing *m = NULL;
	case_t *c = NULL;
	size_t n = 0, i, form = 0;
	int person = 0, known = 0;

	case_new(&c);
	ok(case_check(c, &m, &n) == 0 && n > 0, "an empty case misses items");
	for (i = 0; i < n; i++) {
		form += !strcmp(m[i].list, "form");
		person += !strcmp(m[i].field, "issuer.person");
		known += !strcmp(m[i].item, "checklist 4");
	}
	ok(form == 12 && person == 1 && known == 1,
	   "it lists each form field and G8 item (%zu form)", form);
	free(m);
	case_free(c);
}

int main(void)
{
	if (!mkdtemp(base)) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	test_fields();
	test_dates();
	test_hash();
	test_record();
	test_order();
	test_edit();
	test_check();
	tap_rmrf(base);
	return tap_done();
}
