/*
 * record.c - the case in the chain: `case` and `release` records, the
 * durable update of case.json, the replay of the chain into a case and
 * its comparison with case.json.  Byte-level format: docs/FORMAT.md,
 * "Case records".
 *
 * Update protocol, under the log's writer lock: write case.json.new
 * (holding the seq the record will get), append the record and make it
 * durable, rename case.json.new over case.json.  After a crash the next
 * update completes the rename if the chain has the record, or removes
 * case.json.new if it has not.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "internal.h"

#define HASH_DOMAIN "hozen-case-value/1"

int case_value_hash(const char *field, const char *salt_hex,
		    const json_t *value, char out[HC_HEX_LEN + 1])
{
	hc_sha256_ctx *h = NULL;
	uint8_t d[HC_HASH_LEN];
	char *json;
	int rc;

	json = json_dumps(value,
			  JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if (!json)
		return hc_error_set(HC_ENOMEM, "out of memory");
	rc = hc_sha256_new(&h);
	if (rc == 0)
		rc = hc_sha256_update(h, HASH_DOMAIN "\n",
				      strlen(HASH_DOMAIN) + 1);
	if (rc == 0)
		rc = hc_sha256_update(h, field, strlen(field));
	if (rc == 0)
		rc = hc_sha256_update(h, "\n", 1);
	if (rc == 0)
		rc = hc_sha256_update(h, salt_hex, strlen(salt_hex));
	if (rc == 0)
		rc = hc_sha256_update(h, "\n", 1);
	if (rc == 0)
		rc = hc_sha256_update(h, json, strlen(json));
	if (rc == 0)
		rc = hc_sha256_final(h, d);
	if (rc == 0)
		hc_hex(d, HC_HASH_LEN, out);
	hc_sha256_free(h);
	free(json);
	return rc;
}

/* The hash of a case.json entry's value, as JSON (null when unset). */
static json_t *entry_hash(const char *field, const json_t *entry)
{
	const json_t *v = json_object_get(entry, "value");
	const char *salt = json_string_value(json_object_get(entry, "salt"));
	char hex[HC_HEX_LEN + 1];

	if (!v)
		return json_null();
	if (!salt || case_value_hash(field, salt, v, hex) < 0)
		return NULL;
	return json_string(hex);
}

/* -------------------------------------------------------------- changes */

/* An order.end change that lengthens the order (a later or no end). */
static int extends(const json_t *old_end, const json_t *new_end)
{
	time_t a, b;

	if (!new_end || json_is_null(new_end))
		return old_end && !json_is_null(old_end);
	if (!old_end || json_is_null(old_end))
		return 0;
	if (case_parse_date(json_string_value(old_end), &a, NULL) < 0 ||
	    case_parse_date(json_string_value(new_end), &b, NULL) < 0)
		return 0;
	return b > a;
}

/* Give every confidential value of c that lacks one a fresh salt. */
static int salt_values(case_t *c)
{
	const char *name;
	json_t *entry;
	void *tmp;

	json_object_foreach_safe(c->fields, tmp, name, entry)
	{
		const struct case_field_info *f = case_field_find(name);
		int conf = case_entry_confidential(f, entry);
		uint8_t raw[16];
		char hex[33];

		if (!json_object_get(entry, "value")) {
			json_object_del(entry, "salt");
			if (conf == f->confidential)
				json_object_del(c->fields, name);
			continue;
		}
		json_object_set_new(entry, "confidential", json_boolean(conf));
		if (!conf) {
			json_object_del(entry, "salt");
			continue;
		}
		if (json_object_get(entry, "salt"))
			continue;
		if (RAND_bytes(raw, sizeof(raw)) != 1)
			return hc_error_openssl("cannot make a salt");
		hc_hex(raw, sizeof(raw), hex);
		json_object_set_new(entry, "salt", json_string(hex));
	}
	return 0;
}

/* One side ("old" or "new") of a change. */
static int put_side(json_t *ch, const char *side, const char *field,
		    const json_t *entry, int conf)
{
	char key[16];
	json_t *v;

	snprintf(key, sizeof(key), "%s%s", side, conf ? "_sha256" : "");
	v = conf ? entry_hash(field, entry)
		 : json_incref(json_object_get(entry, "value"));
	if (!v && !conf)
		v = json_null();
	if (!v)
		return hc_error_set(HC_EFORMAT,
				    "'%s': a confidential value without salt",
				    field);
	return json_object_set_new(ch, key, v) < 0
		       ? hc_error_set(HC_ENOMEM, "out of memory")
		       : 0;
}

/* The changes from old to c, in table order, as a JSON array. */
static int diff(const case_t *old, const case_t *c, json_t **out)
{
	json_t *changes = json_array(), *ch;
	size_t i;
	int rc = 0;

	for (i = 0; changes && rc == 0 && i < case_field_count(); i++) {
		const struct case_field_info *f = case_field_at(i);
		json_t *oe = case_entry(old, f->name),
		       *ne = case_entry(c, f->name);
		int oc = case_entry_confidential(f, oe);
		int nc = case_entry_confidential(f, ne);

		if (oc == nc &&
		    json_equal(json_object_get(oe, "value"),
			       json_object_get(ne, "value")) &&
		    (!nc || json_equal(json_object_get(oe, "salt"),
				       json_object_get(ne, "salt"))))
			continue;
		if (!json_object_get(oe, "value") &&
		    !json_object_get(ne, "value") && oc == nc)
			continue;
		ch = json_pack("{s:s,s:b}", "field", f->name, "confidential",
			       nc);
		rc = ch ? put_side(ch, "old", f->name, oe, oc)
			: hc_error_set(HC_ENOMEM, "out of memory");
		if (rc == 0)
			rc = put_side(ch, "new", f->name, ne, nc);
		if (rc == 0 && json_array_append_new(changes, ch) < 0)
			rc = hc_error_set(HC_ENOMEM, "out of memory");
		else if (rc < 0)
			json_decref(ch);
	}
	if (!changes)
		return hc_error_set(HC_ENOMEM, "out of memory");
	if (rc < 0) {
		json_decref(changes);
		return rc;
	}
	*out = changes;
	return 0;
}

/* ---------------------------------------------------------- the update */

static int open_log(int storefd, hc_log **log)
{
	int rc = hc_log_open(log, storefd, NULL, NULL);

	if (rc == HC_EBUSY)
		return hc_error_set(HC_EBUSY,
				    "the store is mounted (or another hozen "
				    "is writing to it): change the case "
				    "through the mount's control or after "
				    "unmounting");
	return rc;
}

/* Complete or undo an update a crash interrupted (see the top). */
static int finish_pending(int storefd)
{
	case_replay *r = NULL;
	case_t *next = NULL;
	char *text = NULL;
	size_t len = 0;
	int rc;

	rc = hc_read_file(storefd, CASE_FILE_NEW, CASE_FILE_MAX, &text, &len);
	if (rc < 0) {
		if (rc == HC_ENOENT || hc_error_errno() == ENOENT)
			return 0;
		return rc;
	}
	rc = case_parse(&next, text, len);
	if (rc == 0)
		rc = case_replay_store(&r, storefd);
	if (rc == 0 && case_replay_last_seq(r) == next->seq && next->seq >= 0) {
		if (renameat(storefd, CASE_FILE_NEW, storefd, CASE_FILE) < 0)
			rc = hc_error_set(HC_ESYS, "cannot rename '%s'",
					  CASE_FILE_NEW);
	} else if (unlinkat(storefd, CASE_FILE_NEW, 0) < 0) {
		rc = hc_error_set(HC_ESYS, "cannot remove '%s'", CASE_FILE_NEW);
	}
	if (rc == 0)
		rc = hc_fsync_dir(storefd, ".");
	case_replay_free(r);
	case_free(next);
	free(text);
	return rc;
}

static int write_documents(int storefd, const case_t *c)
{
	char path[128];
	size_t i;
	int rc;

	if (c->ndocs && mkdirat(storefd, CASE_DOC_DIR, 0700) < 0 &&
	    errno != EEXIST)
		return hc_error_set(HC_ESYS, "cannot create '%s'",
				    CASE_DOC_DIR);
	for (i = 0; i < c->ndocs; i++) {
		snprintf(path, sizeof(path), "%s/%s", CASE_DOC_DIR,
			 c->docs[i].sha256);
		rc = hc_create_file(storefd, path, c->docs[i].buf,
				    c->docs[i].len, 0400);
		if (rc < 0 && rc != HC_EEXIST)
			return rc;
	}
	return 0;
}

/*
 * Append a record of type with fields for the new case c (whose seq is
 * set here), durably, install c as case.json and close the log (*logp
 * is NULL then; on failure the caller closes it).
 */
static int record(hc_log **logp, int storefd, case_t *c, const char *type,
		  json_t *fields, const hc_actor *actor,
		  struct case_commit_report *out, size_t changes)
{
	hc_log *log = *logp;
	struct hc_appended app;
	size_t len = 0;
	char *text = NULL;
	int rc;

	c->seq = (int64_t)hc_log_size(log);
	rc = write_documents(storefd, c);
	if (rc == 0)
		rc = case_serialise(c, &text, &len);
	if (rc == 0)
		rc = hc_atomic_write(storefd, CASE_FILE_NEW, text, len, 0600);
	if (rc == 0)
		rc = hc_log_append(log, type, actor, fields, &app);
	if (rc == 0)
		rc = hc_log_sync(log, app.seq);
	if (rc == 0 && renameat(storefd, CASE_FILE_NEW, storefd, CASE_FILE) < 0)
		rc = hc_error_set(HC_ESYS, "cannot rename '%s'", CASE_FILE_NEW);
	if (rc == 0)
		rc = hc_fsync_dir(storefd, ".");
	if (rc == 0) {
		*logp = NULL;
		rc = hc_log_close(log);
	}
	if (rc == 0 && out) {
		out->changes = changes;
		out->seq = app.seq;
	}
	free(text);
	return rc;
}

/* Open the log and load the case as the store has it, under the lock. */
static int begin(int storefd, hc_log **log, case_t **disk)
{
	int rc = open_log(storefd, log);

	if (rc == 0)
		rc = finish_pending(storefd);
	if (rc == 0)
		rc = case_load(disk, storefd);
	return rc;
}

static int check_shortening(const case_t *disk, const case_t *c)
{
	const json_t *oe = case_get(disk, "order.end");
	const json_t *ne = case_get(c, "order.end");
	struct case_preservation p;

	case_preservation(disk, 0, &p);
	if (!oe || json_equal(oe, ne) || extends(oe, ne) ||
	    p.state == CASE_ORDER_DRAFT || !p.in_force)
		return 0;
	return hc_error_set(HC_EINVAL,
			    "'order.end': the preservation period of an issued "
			    "order can be extended, not shortened (it ends "
			    "%s); an early end is a revocation: 'hozen "
			    "release --revoked-by AUTHORITY'",
			    json_string_value(oe));
}

int case_commit(int storefd, case_t *c, const hc_actor *actor,
		struct case_commit_report *out)
{
	case_t *disk = NULL;
	json_t *changes = NULL, *fields = NULL;
	hc_log *log = NULL;
	int rc;

	rc = case_validate(c);
	if (rc == 0)
		rc = begin(storefd, &log, &disk);
	if (rc == 0 && disk->seq != c->seq)
		rc = hc_error_set(HC_EBUSY,
				  "the case changed since it was read (now at "
				  "seq %lld); run the command again",
				  (long long)disk->seq);
	if (rc == 0)
		rc = check_shortening(disk, c);
	if (rc == 0)
		rc = salt_values(c);
	if (rc == 0)
		rc = diff(disk, c, &changes);
	if (rc < 0)
		goto out;
	if (json_array_size(changes) == 0) {
		if (out)
			out->changes = 0;
		goto out;
	}
	if (c->release &&
	    extends(case_get(disk, "order.end"), case_get(c, "order.end"))) {
		json_decref(c->release);
		c->release = NULL;
	}
	fields = json_pack("{s:O}", "changes", changes);
	rc = fields ? record(&log, storefd, c, "case", fields, actor, out,
			     json_array_size(changes))
		    : hc_error_set(HC_ENOMEM, "out of memory");
out:
	hc_log_close(log);
	json_decref(fields);
	json_decref(changes);
	case_free(disk);
	return rc;
}

int case_release(int storefd, const char *revoked_by, const char *reason,
		 time_t now, const hc_actor *actor,
		 struct case_commit_report *out)
{
	struct case_preservation p;
	case_t *c = NULL;
	json_t *fields = NULL;
	hc_log *log = NULL;
	char at[32];
	int rc;

	rc = begin(storefd, &log, &c);
	if (rc < 0)
		goto out;
	case_preservation(c, now, &p);
	if (p.state == CASE_ORDER_DRAFT)
		rc = hc_error_set(HC_EINVAL,
				  "refusing to release: %s; record the issuer "
				  "(issuer.authority) first",
				  p.why);
	else if (!p.in_force)
		rc = hc_error_set(HC_EINVAL, "refusing to release: %s", p.why);
	else if (p.state == CASE_ORDER_ACTIVE && !revoked_by)
		rc = hc_error_set(HC_EINVAL,
				  "refusing to release: %s; before its end "
				  "the order can only be revoked, naming the "
				  "revoking authority (--revoked-by AUTHORITY)",
				  p.why);
	else if (revoked_by && !*revoked_by)
		rc = hc_error_set(HC_EINVAL, "--revoked-by: empty authority");
	if (rc < 0)
		goto out;
	case_format_date(now, 9 * 3600, at);
	fields = json_pack("{s:s,s:s,s:O}", "at", at, "reason",
			   revoked_by ? "revoked" : "ended", "end",
			   case_get(c, "order.end") ? case_get(c, "order.end")
						    : json_null());
	if (fields && revoked_by &&
	    json_object_set_new(fields, "revoked_by", json_string(revoked_by)))
		rc = hc_error_set(HC_EINVAL, "--revoked-by: not valid UTF-8");
	if (fields && reason &&
	    json_object_set_new(fields, "note", json_string(reason)))
		rc = hc_error_set(HC_EINVAL, "--reason: not valid UTF-8");
	if (!fields)
		rc = hc_error_set(HC_ENOMEM, "out of memory");
	if (rc < 0)
		goto out;
	json_decref(c->release);
	c->release = json_deep_copy(fields);
	json_object_del(c->release, "end");
	json_object_set_new(c->release, "seq",
			    json_integer((json_int_t)hc_log_size(log)));
	rc = record(&log, storefd, c, "release", fields, actor, out, 1);
out:
	hc_log_close(log);
	json_decref(fields);
	case_free(c);
	return rc;
}

/* ---------------------------------------------------------------- replay */

struct case_replay {
	case_t *c;
	uint64_t records;
	/*
	 * Every public value a document field had, over the whole history:
	 * {"field", "seq", "sha256", "size"}; and how many values were
	 * confidential (only their salted hash is in the chain).
	 */
	json_t *docs;
	size_t hidden_docs;
};

int case_replay_new(case_replay **out)
{
	case_replay *r = calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return hc_error_set(HC_ENOMEM, "out of memory");
	rc = case_new(&r->c);
	if (rc == 0 && !(r->docs = json_array()))
		rc = hc_error_set(HC_ENOMEM, "out of memory");
	if (rc < 0) {
		case_replay_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void case_replay_free(case_replay *r)
{
	if (!r)
		return;
	case_free(r->c);
	json_decref(r->docs);
	free(r);
}

int64_t case_replay_last_seq(const case_replay *r)
{
	return r->c->seq;
}

/* The replayed entry's comparable side: value, or sha256 when hashed. */
static const json_t *replayed(const json_t *entry, int conf)
{
	const json_t *v = json_object_get(entry, conf ? "sha256" : "value");

	return v ? v : json_null();
}

static int bad_record(uint64_t seq, const char *field, const char *why)
{
	return hc_error_set(HC_EVERIFY, "case record seq %llu: '%s': %s",
			    (unsigned long long)seq, field, why);
}

static int replay_change(case_replay *r, uint64_t seq, json_t *ch)
{
	const struct case_field_info *f;
	const char *name = json_string_value(json_object_get(ch, "field"));
	json_t *conf = json_object_get(ch, "confidential"), *entry, *old, *nw;
	json_t *norm = NULL;
	int oc, nc;

	f = case_field_find(name);
	if (!f || !json_is_boolean(conf))
		return bad_record(seq, name ? name : "?", "not a field change");
	entry = case_entry(r->c, name);
	oc = case_entry_confidential(f, entry);
	nc = json_is_true(conf);
	old = json_object_get(ch, oc ? "old_sha256" : "old");
	nw = json_object_get(ch, nc ? "new_sha256" : "new");
	if (!old || !nw)
		return bad_record(seq, name,
				  "old or new value missing (or hashed when "
				  "it should not be)");
	if (!json_equal(old, replayed(entry, oc)))
		return bad_record(seq, name,
				  "its old value is not the value the chain "
				  "gave it before");
	if (nc && !json_is_null(nw) &&
	    (!json_is_string(nw) || json_string_length(nw) != HC_HEX_LEN))
		return bad_record(seq, name, "malformed new_sha256");
	if (!nc && !json_is_null(nw)) {
		if (case_field_value(f, nw, &norm) < 0 ||
		    !json_equal(norm, nw)) {
			json_decref(norm);
			return bad_record(seq, name,
					  "the new value is not valid");
		}
		json_decref(norm);
	}
	if (f->type == CASE_DOCUMENT && !json_is_null(nw)) {
		json_t *d = nc ? NULL
			       : json_pack("{s:s,s:I,s:O,s:O}", "field", name,
					   "seq", (json_int_t)seq, "sha256",
					   json_object_get(nw, "sha256"),
					   "size", json_object_get(nw, "size"));

		if (nc)
			r->hidden_docs++;
		else if (!d || json_array_append_new(r->docs, d) < 0)
			return hc_error_set(HC_ENOMEM, "out of memory");
	}
	if (!strcmp(name, "order.end") && r->c->release &&
	    extends(json_object_get(entry, "value"), nw)) {
		json_decref(r->c->release);
		r->c->release = NULL;
	}
	entry = json_pack("{s:b}", "confidential", nc);
	if (entry && !json_is_null(nw))
		json_object_set(entry, nc ? "sha256" : "value", nw);
	if (!entry || json_object_set_new(r->c->fields, name, entry) < 0)
		return hc_error_set(HC_ENOMEM, "out of memory");
	return 0;
}

int case_replay_on_record(void *ctx, const hc_record *rec)
{
	case_replay *r = ctx;
	json_t *changes, *ch, *rel;
	size_t i;
	int rc;

	if (!strcmp(rec->type, "release")) {
		rel = json_deep_copy(rec->json);
		if (!rel)
			return hc_error_set(HC_ENOMEM, "out of memory");
		if (!json_is_string(json_object_get(rel, "at")) ||
		    !json_is_string(json_object_get(rel, "reason"))) {
			json_decref(rel);
			return bad_record(rec->seq, "release",
					  "malformed release record");
		}
		json_object_del(rel, "end");
		for (i = 0; i < 6; i++) {
			static const char *const common[] = {
				"v", "seq", "prev", "time", "type", "actor"};

			json_object_del(rel, common[i]);
		}
		json_object_set_new(rel, "seq",
				    json_integer((json_int_t)rec->seq));
		json_decref(r->c->release);
		r->c->release = rel;
		r->c->seq = (int64_t)rec->seq;
		r->records++;
		return 0;
	}
	if (strcmp(rec->type, "case"))
		return 0;
	changes = json_object_get(rec->json, "changes");
	if (!json_is_array(changes) || json_array_size(changes) == 0)
		return bad_record(rec->seq, "changes", "not a list of changes");
	json_array_foreach(changes, i, ch)
	{
		rc = replay_change(r, rec->seq, ch);
		if (rc < 0)
			return rc;
	}
	r->c->seq = (int64_t)rec->seq;
	r->records++;
	return 0;
}

int case_replay_store(case_replay **out, int storefd)
{
	case_replay *r = NULL;
	hc_reader *rd = NULL;
	hc_record rec;
	int rc;

	memset(&rec, 0, sizeof(rec));
	rc = case_replay_new(&r);
	if (rc == 0)
		rc = hc_reader_open(&rd, storefd);
	while (rc == 0 && (rc = hc_reader_next(rd, &rec)) == 1)
		rc = case_replay_on_record(r, &rec);
	hc_record_release(&rec);
	hc_reader_free(rd);
	if (rc < 0) {
		case_replay_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

/* ---------------------------------------------------------------- verify */

/* What case_replay_verify found, every problem added to findings. */
struct checker {
	hc_findings *findings;
	struct case_verify_report *rep;
	json_t *docs; /* the documents referenced: replay's and case.json's */
	size_t revealed; /* confidential documents case.json shows */
};

/* Note a difference (the reason's format starts with the field). */
__attribute__((format(printf, 4, 5))) static void mismatch(struct checker *k,
							   const char *field,
							   const char *where,
							   const char *fmt, ...)
{
	char reason[sizeof(k->rep->reason)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	hc_findings_add(k->findings, -1, 0, where, "%s", reason);
	if (!k->rep->ok)
		return;
	k->rep->ok = 0;
	snprintf(k->rep->field, sizeof(k->rep->field), "%s", field);
	snprintf(k->rep->where, sizeof(k->rep->where), "%s", where);
	memcpy(k->rep->reason, reason, sizeof(reason));
}

/* Compare one field of case.json (entry) with the replay. */
static void compare_field(struct checker *k, const struct case_field_info *f,
			  const json_t *entry, const json_t *rentry)
{
	int jc = case_entry_confidential(f, entry);
	int rc = case_entry_confidential(f, rentry);
	json_t *h, *d;
	int same;

	if (jc != rc) {
		mismatch(k, f->name, CASE_FILE,
			 "'%s': case.json %s it confidential, the chain does "
			 "not agree",
			 f->name, jc ? "marks" : "does not mark");
		return;
	}
	if (!jc) {
		if (!json_equal(replayed(entry, 0), replayed(rentry, 0)))
			mismatch(k, f->name, CASE_FILE,
				 "'%s': the value in case.json is not the "
				 "value recorded in the chain",
				 f->name);
		return;
	}
	h = entry_hash(f->name, entry);
	same = h && json_equal(h, replayed(rentry, 1));
	json_decref(h);
	if (!same) {
		mismatch(k, f->name, CASE_FILE,
			 "'%s': the confidential value in case.json does not "
			 "match its salted hash in the chain",
			 f->name);
		return;
	}
	/* A confidential document: case.json holds which it is. */
	if (f->type != CASE_DOCUMENT || !json_object_get(entry, "value"))
		return;
	d = json_pack(
		"{s:s,s:n,s:O,s:O}", "field", f->name, "seq", "sha256",
		json_object_get(json_object_get(entry, "value"), "sha256"),
		"size",
		json_object_get(json_object_get(entry, "value"), "size"));
	if (d && json_array_append_new(k->docs, d) == 0)
		k->revealed++;
}

/* The SHA-256 of an open file, read to its end; its length in *len. */
static int hash_fd(int fd, char hex[HC_HEX_LEN + 1], uint64_t *len)
{
	hc_sha256_ctx *h = NULL;
	uint8_t d[HC_HASH_LEN];
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
		rc = hc_sha256_final(h, d);
	if (rc == 0)
		hc_hex(d, HC_HASH_LEN, hex);
	hc_sha256_free(h);
	return rc;
}

/* 1 if name is a SHA-256 in lower-case hex. */
static int hex_name(const char *name)
{
	return strlen(name) == HC_HEX_LEN &&
	       strspn(name, "0123456789abcdef") == HC_HEX_LEN;
}

/*
 * Every document the case referenced is in case-documents/ under its
 * SHA-256, with that content and size; every file there is a document
 * named by its SHA-256 that a case record references (FORMAT.md 2.6).
 */
static int check_documents(struct checker *k, int storefd, size_t hidden_docs)
{
	char path[128], hex[HC_HEX_LEN + 1];
	json_t *seen = json_object(), *d;
	struct dirent *de;
	uint64_t len;
	size_t i, unref = 0;
	DIR *dir = NULL;
	int fd, rc = 0;

	if (!seen)
		return hc_error_set(HC_ENOMEM, "out of memory");
	json_array_foreach(k->docs, i, d)
	{
		const char *sha =
			json_string_value(json_object_get(d, "sha256"));
		const char *field =
			json_string_value(json_object_get(d, "field"));
		json_t *seq = json_object_get(d, "seq");
		json_int_t size =
			json_integer_value(json_object_get(d, "size"));
		char when[48] = "";

		if (!sha || !hex_name(sha) || json_object_get(seen, sha))
			continue;
		json_object_set_new(seen, sha, json_true());
		if (json_is_integer(seq))
			snprintf(when, sizeof(when),
				 " (seq %" JSON_INTEGER_FORMAT ")",
				 json_integer_value(seq));
		snprintf(path, sizeof(path), "%s/%s", CASE_DOC_DIR, sha);
		rc = hc_open_regular(storefd, path, O_RDONLY, &fd, NULL);
		if (rc == HC_ENOENT || rc == HC_EFORMAT) {
			mismatch(k, field, path, "the document of '%s'%s: %s",
				 field, when, hc_error_message());
			rc = 0;
			continue;
		}
		if (rc < 0)
			goto out;
		rc = hash_fd(fd, hex, &len);
		close(fd);
		if (rc < 0)
			goto out;
		if (strcmp(hex, sha) != 0 || (json_int_t)len != size)
			mismatch(k, field, path,
				 "the document of '%s'%s is not the one "
				 "recorded (%" JSON_INTEGER_FORMAT
				 " bytes and their SHA-256): altered or "
				 "replaced",
				 field, when, size);
	}
	fd = openat(storefd, CASE_DOC_DIR,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		goto out;
	if (fd < 0 || !(dir = fdopendir(fd))) {
		rc = hc_error_set(HC_ESYS, "cannot read '%s'", CASE_DOC_DIR);
		if (fd >= 0)
			close(fd);
		goto out;
	}
	/* Files no public value names: a confidential one may name them. */
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    !json_object_get(seen, de->d_name))
			unref++;
	rewinddir(dir);
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    json_object_get(seen, de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%.80s", CASE_DOC_DIR,
			 de->d_name);
		if (!hex_name(de->d_name)) {
			mismatch(k, "case-documents", path,
				 "not a document: case-documents/ holds "
				 "documents named by their SHA-256 in "
				 "lower-case hex");
			continue;
		}
		rc = hc_open_regular(dirfd(dir), de->d_name, O_RDONLY, &fd,
				     NULL);
		if (rc == HC_EFORMAT || rc == HC_ENOENT) {
			mismatch(k, "case-documents", path, "%s",
				 hc_error_message());
			rc = 0;
			continue;
		}
		if (rc < 0)
			goto out;
		rc = hash_fd(fd, hex, &len);
		close(fd);
		if (rc < 0)
			goto out;
		if (strcmp(hex, de->d_name) != 0)
			mismatch(k, "case-documents", path,
				 "its content's SHA-256 is not its name: "
				 "altered or replaced");
		else if (unref > hidden_docs)
			mismatch(k, "case-documents", path,
				 "no case record references this document "
				 "(%zu unreferenced, the chain has %zu "
				 "confidential document values)",
				 unref, hidden_docs);
	}
out:
	if (dir)
		closedir(dir);
	json_decref(seen);
	return rc;
}

int case_replay_verify(const case_replay *r, int storefd, hc_findings *findings,
		       struct case_verify_report *out)
{
	struct case_verify_report rep;
	struct checker k;
	json_t *doc = NULL, *fields, *entry, *seq;
	const char *name;
	char *text = NULL;
	size_t i, len = 0;
	int rc;

	memset(&rep, 0, sizeof(rep));
	rep.ok = 1;
	rep.records = r->records;
	k.findings = findings;
	k.rep = &rep;
	k.revealed = 0;
	k.docs = json_deep_copy(r->docs);
	if (!k.docs)
		return hc_error_set(HC_ENOMEM, "out of memory");
	rc = hc_read_file(storefd, CASE_FILE, CASE_FILE_MAX, &text, &len);
	if (rc == HC_ENOENT) {
		rc = 0;
		if (r->records)
			mismatch(&k, CASE_FILE, CASE_FILE,
				 "'%s' is missing, but the chain has case "
				 "records",
				 CASE_FILE);
		goto documents;
	}
	if (rc == HC_EFORMAT) {
		mismatch(&k, CASE_FILE, CASE_FILE, "%s", hc_error_message());
		rc = 0;
		goto documents;
	}
	if (rc < 0)
		goto out;
	if (case_json_load(text, len, HC_EFORMAT, &doc) < 0) {
		mismatch(&k, CASE_FILE, CASE_FILE,
			 "'%s' is not a case file: %s", CASE_FILE,
			 hc_error_message());
		goto documents;
	}
	fields = json_object_get(doc, "fields");
	seq = json_object_get(doc, "seq");
	if (!json_is_object(doc) ||
	    json_integer_value(json_object_get(doc, "hozen_case")) != 1 ||
	    !json_is_integer(json_object_get(doc, "hozen_case")) ||
	    !json_is_object(fields) ||
	    !(json_is_null(seq) || json_is_integer(seq))) {
		mismatch(&k, CASE_FILE, CASE_FILE,
			 "'%s' is not a case file: it needs \"hozen_case\": 1, "
			 "\"seq\" and \"fields\" (FORMAT.md section 2.6)",
			 CASE_FILE);
		goto documents;
	}
	json_object_foreach(fields, name, entry)
	{
		if (!case_field_find(name))
			mismatch(&k, name, CASE_FILE, "'%s': not a case field",
				 name);
	}
	for (i = 0; i < case_field_count(); i++) {
		const struct case_field_info *f = case_field_at(i);

		compare_field(&k, f, json_object_get(fields, f->name),
			      case_entry(r->c, f->name));
	}
	if (!json_equal(json_object_get(doc, "release"), r->c->release) &&
	    (json_object_get(doc, "release") || r->c->release))
		mismatch(&k, "release", CASE_FILE,
			 "'release': the release in case.json is not the one "
			 "recorded in the chain");
	if (!(r->c->seq < 0 ? json_is_null(seq)
			    : json_integer_value(seq) == r->c->seq))
		mismatch(
			&k, "seq", CASE_FILE,
			"'seq': case.json does not follow the last case "
			"record of the chain%s",
			faccessat(storefd, CASE_FILE_NEW, F_OK,
				  AT_SYMLINK_NOFOLLOW) == 0
				? " (case.json.new is left by an interrupted "
				  "change: the next 'hozen case set' completes "
				  "it)"
				: "");
documents:
	rc = check_documents(
		&k, storefd,
		r->hidden_docs > k.revealed ? r->hidden_docs - k.revealed : 0);
	if (rc < 0)
		goto out;
	*out = rep;
out:
	json_decref(k.docs);
	json_decref(doc);
	free(text);
	return rc;
}
