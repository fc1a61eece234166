/*
 * case.c - the case in memory: case.json, setting and reading fields,
 * the whole-case checks, enforcement state and completeness.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int case_new(case_t **out)
{
	case_t *c = calloc(1, sizeof(*c));

	if (!c || !(c->fields = json_object())) {
		free(c);
		return hc_error_set(HC_ENOMEM, "out of memory");
	}
	c->seq = -1;
	*out = c;
	return 0;
}

void case_free(case_t *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->ndocs; i++)
		free(c->docs[i].buf);
	free(c->docs);
	json_decref(c->fields);
	json_decref(c->release);
	free(c);
}

int case_copy(case_t **out, const case_t *c)
{
	case_t *n = calloc(1, sizeof(*n));

	if (!n)
		return hc_error_set(HC_ENOMEM, "out of memory");
	n->fields = json_deep_copy(c->fields);
	n->release = c->release ? json_deep_copy(c->release) : NULL;
	n->seq = c->seq;
	if (!n->fields || (c->release && !n->release)) {
		case_free(n);
		return hc_error_set(HC_ENOMEM, "out of memory");
	}
	*out = n;
	return 0;
}

json_t *case_entry(const case_t *c, const char *field)
{
	return json_object_get(c->fields, field);
}

int case_entry_confidential(const struct case_field_info *f,
			    const json_t *entry)
{
	json_t *conf = json_object_get(entry, "confidential");

	return json_is_boolean(conf) ? json_is_true(conf) : f->confidential;
}

/* ------------------------------------------------------------- case.json */

int case_serialise(const case_t *c, char **out, size_t *len)
{
	json_t *doc;
	char *text, *t;

	doc = json_pack("{s:i,s:o,s:O}", "hozen_case", 1, "seq",
			c->seq >= 0 ? json_integer(c->seq) : json_null(),
			"fields", c->fields);
	if (doc && c->release)
		json_object_set(doc, "release", c->release);
	text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	json_decref(doc);
	t = text ? realloc(text, strlen(text) + 2) : NULL;
	if (!t) {
		free(text);
		return hc_error_set(HC_ENOMEM, "out of memory");
	}
	*len = strlen(t);
	memcpy(t + *len, "\n", 2);
	*len += 1;
	*out = t;
	return 0;
}

/* Check one case.json entry: known field, valid value, salt if needed. */
static int parse_entry(const char *name, json_t *entry)
{
	const struct case_field_info *f;
	json_t *v, *norm = NULL, *salt, *conf;
	int rc;

	rc = case_field_lookup(name, &f);
	if (rc < 0)
		return rc;
	v = json_object_get(entry, "value");
	salt = json_object_get(entry, "salt");
	conf = json_object_get(entry, "confidential");
	if (!json_is_object(entry) || (conf && !json_is_boolean(conf)))
		return hc_error_set(HC_EFORMAT, "'%s': malformed entry", name);
	if (v) {
		rc = case_field_value(f, v, &norm);
		if (rc < 0)
			return hc_error_set(HC_EFORMAT, "%s",
					    hc_error_message());
		rc = json_equal(norm, v) ? 0
					 : hc_error_set(HC_EFORMAT,
							"'%s': value is not in "
							"canonical form",
							name);
		json_decref(norm);
		if (rc < 0)
			return rc;
	}
	if (v && case_entry_confidential(f, entry) &&
	    (!json_is_string(salt) || json_string_length(salt) != 32))
		return hc_error_set(HC_EFORMAT,
				    "'%s': a confidential value needs its salt",
				    name);
	return 0;
}

int case_json_load(const char *text, size_t len, int code, json_t **out)
{
	json_error_t jerr;

	*out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!*out)
		return hc_error_set(code, "line %d: %s", jerr.line, jerr.text);
	return 0;
}

int case_parse(case_t **out, const char *text, size_t len)
{
	json_t *doc, *fields, *seq, *entry;
	const char *name;
	case_t *c = NULL;
	int rc = 0;

	rc = case_json_load(text, len, HC_EFORMAT, &doc);
	if (rc < 0)
		return rc;
	fields = json_object_get(doc, "fields");
	seq = json_object_get(doc, "seq");
	if (json_integer_value(json_object_get(doc, "hozen_case")) != 1 ||
	    !json_is_object(fields) ||
	    !(json_is_null(seq) ||
	      (json_is_integer(seq) && json_integer_value(seq) >= 0))) {
		rc = hc_error_set(HC_EFORMAT, "not a hozen case file");
		goto out;
	}
	json_object_foreach(fields, name, entry)
	{
		rc = parse_entry(name, entry);
		if (rc < 0)
			goto out;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = hc_error_set(HC_ENOMEM, "out of memory");
		goto out;
	}
	c->fields = json_incref(fields);
	c->release = json_incref(json_object_get(doc, "release"));
	c->seq = json_is_integer(seq) ? json_integer_value(seq) : -1;
	*out = c;
out:
	json_decref(doc);
	return rc;
}

int case_load(case_t **out, int storefd)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	rc = hc_read_file(storefd, CASE_FILE, CASE_FILE_MAX, &text, &len);
	if (rc < 0 && hc_error_errno() == ENOENT && rc == HC_ESYS)
		return case_new(out);
	if (rc == HC_ENOENT)
		return case_new(out);
	if (rc == 0) {
		rc = case_parse(out, text, len);
		if (rc < 0)
			rc = case_error_prefix(rc, "%s: ", CASE_FILE);
	}
	free(text);
	return rc;
}

/* ---------------------------------------------------------------- setting */

/* Put value (a new reference, consumed) as field's value. */
static int put_value(case_t *c, const struct case_field_info *f, json_t *value)
{
	json_t *entry = case_entry(c, f->name), *n;

	n = entry ? json_deep_copy(entry) : json_object();
	if (!n || json_object_set_new(n, "value", value) < 0) {
		json_decref(n);
		return hc_error_set(HC_ENOMEM, "out of memory");
	}
	if (!json_object_get(n, "confidential"))
		json_object_set_new(n, "confidential",
				    json_boolean(f->confidential));
	json_object_del(n, "salt"); /* a new value gets a new salt */
	return json_object_set_new(c->fields, f->name, n) < 0
		       ? hc_error_set(HC_ENOMEM, "out of memory")
		       : 0;
}

int case_set_json(case_t *c, const char *field, const json_t *value)
{
	const struct case_field_info *f;
	json_t *norm = NULL;
	int rc;

	rc = case_field_lookup(field, &f);
	if (rc == 0)
		rc = case_field_value(f, value, &norm);
	if (rc < 0)
		return rc;
	if (json_equal(norm, json_object_get(case_entry(c, field), "value"))) {
		json_decref(norm);
		return 0;
	}
	return put_value(c, f, norm);
}

int case_set(case_t *c, const char *field, const char *const *args, size_t n)
{
	const struct case_field_info *f;
	json_t *in = NULL;
	size_t i, len = 0;
	char *text;
	int rc;

	rc = case_field_lookup(field, &f);
	if (rc < 0)
		return rc;
	if (n == 0)
		return hc_error_set(HC_EINVAL, "'%s': no value given", field);
	if (f->type == CASE_DOCUMENT)
		return hc_error_set(HC_EINVAL,
				    "'%s' is a document: give a file", field);
	if (f->type == CASE_LIST) {
		in = json_array();
		for (i = 0; in && i < n; i++)
			if (json_array_append_new(in, json_string(args[i])))
				return hc_error_set(HC_EINVAL,
						    "'%s': not valid UTF-8",
						    field);
	} else if (f->type == CASE_TEXT) {
		for (i = 0; i < n; i++)
			len += strlen(args[i]) + 1;
		text = malloc(len);
		if (!text)
			return hc_error_set(HC_ENOMEM, "out of memory");
		for (i = 0, len = 0; i < n; i++) {
			memcpy(text + len, args[i], strlen(args[i]));
			len += strlen(args[i]);
			text[len++] = i + 1 < n ? ' ' : '\0';
		}
		in = json_string(text);
		free(text);
	} else if (n > 1) {
		return hc_error_set(HC_EINVAL,
				    "'%s': expected one value, got %zu", field,
				    n);
	} else {
		in = json_string(args[0]);
	}
	if (!in)
		return hc_error_set(HC_EINVAL, "'%s': not valid UTF-8", field);
	rc = case_set_json(c, field, in);
	json_decref(in);
	return rc;
}

int case_unset(case_t *c, const char *field)
{
	const struct case_field_info *f;
	json_t *entry;
	int rc;

	rc = case_field_lookup(field, &f);
	if (rc < 0)
		return rc;
	entry = case_entry(c, field);
	if (!entry)
		return 0;
	json_object_del(entry, "value");
	json_object_del(entry, "salt");
	if (case_entry_confidential(f, entry) == f->confidential)
		json_object_del(c->fields, field);
	return 0;
}

int case_field_enforced(const char *name)
{
	return !strcmp(name, "order.end") ||
	       !strcmp(name, "issuer.authority") ||
	       !strncmp(name, "confidentiality.", 16);
}

int case_stage_document(case_t *c, const char *sha256_hex, const char *buf,
			size_t len)
{
	struct case_staged *d = realloc(c->docs, (c->ndocs + 1) * sizeof(*d));

	if (!d)
		return hc_error_set(HC_ENOMEM, "out of memory");
	c->docs = d;
	d += c->ndocs;
	snprintf(d->sha256, sizeof(d->sha256), "%s", sha256_hex);
	d->buf = malloc(len ? len : 1);
	if (!d->buf)
		return hc_error_set(HC_ENOMEM, "out of memory");
	memcpy(d->buf, buf, len);
	d->len = len;
	c->ndocs++;
	return 0;
}

int case_set_confidential(case_t *c, const char *field, int confidential)
{
	const struct case_field_info *f;
	json_t *entry, *n;
	int rc;

	rc = case_field_lookup(field, &f);
	if (rc < 0)
		return rc;
	if (confidential && case_field_enforced(field))
		return hc_error_set(HC_EINVAL,
				    "'%s' drives enforcement and cannot be "
				    "confidential",
				    field);
	entry = case_entry(c, field);
	if (case_entry_confidential(f, entry) == !!confidential)
		return 0;
	n = entry ? json_deep_copy(entry) : json_object();
	if (!n || json_object_set_new(n, "confidential",
				      json_boolean(confidential)) < 0) {
		json_decref(n);
		return hc_error_set(HC_ENOMEM, "out of memory");
	}
	json_object_del(n, "salt");
	return json_object_set_new(c->fields, field, n) < 0
		       ? hc_error_set(HC_ENOMEM, "out of memory")
		       : 0;
}

const json_t *case_get(const case_t *c, const char *field)
{
	return json_object_get(case_entry(c, field), "value");
}

int case_is_confidential(const case_t *c, const char *field)
{
	const struct case_field_info *f = case_field_find(field);

	return f ? case_entry_confidential(f, case_entry(c, field)) : 0;
}

char *case_value_text(const case_t *c, const char *field)
{
	const struct case_field_info *f = case_field_find(field);

	return f ? case_field_text(f, case_get(c, field)) : NULL;
}

time_t case_date(const case_t *c, const char *field, int *set)
{
	const char *s = json_string_value(case_get(c, field));
	time_t t = 0;

	*set = s && case_parse_date(s, &t, NULL) == 0;
	return *set ? t : 0;
}

/* ------------------------------------------------------------ validation */

/* Dates that must not be in the wrong order: first <= second. */
static const struct {
	const char *first, *second, *why;
} date_order[] = {
	{"incident.occurred", "incident.noticed",
	 "the access cannot be noticed before it happened"},
	{"order.start", "order.end",
	 "preservation cannot end before it starts"},
	{"order.records_from", "order.records_to",
	 "the period of the records cannot end before it starts"},
};

int case_validate(const case_t *c)
{
	const char *name;
	json_t *entry;
	size_t i;
	int rc, a, b;

	json_object_foreach(c->fields, name, entry)
	{
		const struct case_field_info *f;
		json_t *v = json_object_get(entry, "value"), *norm = NULL;

		rc = case_field_lookup(name, &f);
		if (rc == 0 && v)
			rc = case_field_value(f, v, &norm);
		json_decref(norm);
		if (rc < 0)
			return rc;
	}
	for (i = 0; i < sizeof(date_order) / sizeof(date_order[0]); i++) {
		time_t t1 = case_date(c, date_order[i].first, &a);
		time_t t2 = case_date(c, date_order[i].second, &b);

		if (a && b && t2 < t1)
			return hc_error_set(
				HC_EINVAL, "'%s': %s is before '%s' %s: %s",
				date_order[i].second,
				json_string_value(
					case_get(c, date_order[i].second)),
				date_order[i].first,
				json_string_value(
					case_get(c, date_order[i].first)),
				date_order[i].why);
	}
	return 0;
}

/* ------------------------------------------------------------ enforcement */

const char *case_order_state_name(enum case_order_state s)
{
	static const char *const names[] = {"draft", "active", "ended",
					    "released", "revoked"};

	return (unsigned)s < 5 ? names[s] : "?";
}

int case_preservation(const case_t *c, time_t now,
		      struct case_preservation *out)
{
	struct case_preservation p;
	const char *rel_time, *by;
	char end[32] = "";
	int set;

	memset(&p, 0, sizeof(p));
	p.in_force = 1;
	p.end = case_date(c, "order.end", &set);
	if (set)
		snprintf(end, sizeof(end), "%s",
			 json_string_value(case_get(c, "order.end")));
	rel_time = json_string_value(json_object_get(c->release, "at"));
	by = json_string_value(json_object_get(c->release, "revoked_by"));
	if (c->release) {
		time_t t = 0;

		if (rel_time)
			(void)case_parse_date(rel_time, &t, NULL);
		p.in_force = 0;
		p.released = t;
		p.state = by ? CASE_ORDER_REVOKED : CASE_ORDER_RELEASED;
		if (by)
			snprintf(p.why, sizeof(p.why),
				 "the order was revoked by %.120s; "
				 "preservation was released at %s",
				 by, rel_time ? rel_time : "?");
		else
			snprintf(p.why, sizeof(p.why),
				 "the order ended and preservation was "
				 "released at %s",
				 rel_time ? rel_time : "?");
	} else if (!case_get(c, "issuer.authority")) {
		p.state = CASE_ORDER_DRAFT;
		snprintf(p.why, sizeof(p.why),
			 "the order is a draft (no identified issuer): the "
			 "store is under preservation until it is issued "
			 "and released");
	} else if (!set || now < p.end) {
		p.state = CASE_ORDER_ACTIVE;
		snprintf(p.why, sizeof(p.why),
			 "the preservation order is in force %s%s",
			 set ? "until " : "without an end date", end);
	} else {
		p.state = CASE_ORDER_ENDED;
		snprintf(p.why, sizeof(p.why),
			 "the preservation period ended at %s; preservation "
			 "stays in force until 'hozen release'",
			 end);
	}
	*out = p;
	return 0;
}

static int tristate(const case_t *c, const char *field)
{
	const json_t *v = case_get(c, field);

	return v ? json_is_true(v) : -1;
}

int case_confidentiality(const case_t *c, time_t now,
			 struct case_confidentiality *out)
{
	struct case_confidentiality k;
	int set;

	memset(&k, 0, sizeof(k));
	k.towards_recipient = tristate(c, "confidentiality.recipient");
	k.towards_subject = tristate(c, "confidentiality.subject");
	k.until = case_date(c, "confidentiality.until", &set);
	k.in_force = (k.towards_recipient != 0 || k.towards_subject != 0) &&
		     (!set || now < k.until);
	*out = k;
	return 0;
}

/* ---------------------------------------------------------- completeness */

static int add_missing(struct case_missing **arr, size_t *n, const char *list,
		       const char *item, const char *field)
{
	struct case_missing *a = realloc(*arr, (*n + 1) * sizeof(**arr));

	if (!a)
		return hc_error_set(HC_ENOMEM, "out of memory");
	a[*n].list = list;
	a[*n].item = item;
	a[*n].field = field;
	*arr = a;
	(*n)++;
	return 0;
}

int case_check(const case_t *c, struct case_missing **out, size_t *n_out)
{
	struct case_missing *arr = NULL;
	size_t i, j, n = 0, count = case_field_count();
	int rc = 0;

	/* The form: every required field. */
	for (i = 0; rc == 0 && i < count; i++) {
		const struct case_field_info *f = case_field_at(i);

		if ((f->required & CASE_REQ_FORM) && !case_get(c, f->name))
			rc = add_missing(&arr, &n, "form", f->form, f->name);
	}
	/* The G8 items: required fields, or one of an all-optional item. */
	for (i = 0; rc == 0 && i < count; i = j) {
		const struct case_field_info *f = case_field_at(i);
		int any_required = 0, any_set = 0;

		for (j = i; j < count && case_field_at(j)->g8 && f->g8 &&
			    !strcmp(case_field_at(j)->g8, f->g8);
		     j++) {
			any_required |=
				case_field_at(j)->required & CASE_REQ_G8;
			any_set |= case_get(c, case_field_at(j)->name) != NULL;
		}
		if (j == i) {
			j = i + 1;
			continue;
		}
		if (!any_required && !any_set) {
			rc = add_missing(&arr, &n, "G8", f->g8, f->name);
			continue;
		}
		for (; rc == 0 && i < j; i++) {
			const struct case_field_info *g = case_field_at(i);

			if ((g->required & CASE_REQ_G8) &&
			    !case_get(c, g->name))
				rc = add_missing(&arr, &n, "G8", g->g8,
						 g->name);
		}
	}
	if (rc < 0) {
		free(arr);
		return rc;
	}
	*out = arr;
	*n_out = n;
	return 0;
}

/* ---------------------------------------------------------- export/import */

int case_to_json(const case_t *c, int redact, json_t **out)
{
	json_t *doc, *fields, *conf, *red;
	size_t i;

	doc = json_pack("{s:i,s:o,s:o,s:o}", "hozen_case_export", 1, "fields",
			json_object(), "confidential", json_array(), "redacted",
			json_array());
	if (!doc)
		return hc_error_set(HC_ENOMEM, "out of memory");
	fields = json_object_get(doc, "fields");
	conf = json_object_get(doc, "confidential");
	red = json_object_get(doc, "redacted");
	for (i = 0; i < case_field_count(); i++) {
		const char *name = case_field_at(i)->name;
		const json_t *v = case_get(c, name);
		int secret = case_is_confidential(c, name);

		if (secret)
			json_array_append_new(conf, json_string(name));
		if (!v)
			continue;
		if (secret && redact)
			json_array_append_new(red, json_string(name));
		else
			json_object_set(fields, name, (json_t *)v);
	}
	if (!redact)
		json_object_del(doc, "redacted");
	*out = doc;
	return 0;
}

/* Apply an exported JSON document. */
static int import_json(case_t *c, const char *doc, size_t len)
{
	json_t *j, *fields, *conf, *v;
	const char *name;
	size_t i;
	int rc = 0;

	rc = case_json_load(doc, len, HC_EINVAL, &j);
	if (rc < 0)
		return rc;
	fields = json_object_get(j, "fields");
	conf = json_object_get(j, "confidential");
	if (!json_is_object(fields) || (conf && !json_is_array(conf))) {
		rc = hc_error_set(HC_EINVAL,
				  "expected a case document: {\"fields\": "
				  "{...}} as 'hozen case export' writes");
		goto out;
	}
	json_array_foreach(conf, i, v)
	{
		rc = case_set_confidential(c, json_string_value(v), 1);
		if (rc < 0)
			goto out;
	}
	json_object_foreach(fields, name, v)
	{
		rc = json_is_null(v) ? case_unset(c, name)
				     : case_set_json(c, name, v);
		if (rc < 0)
			goto out;
	}
out:
	json_decref(j);
	return rc;
}

int case_import(case_t *c, const char *doc, size_t len)
{
	case_t *work = NULL;
	size_t i = 0;
	int rc;

	rc = case_copy(&work, c);
	if (rc < 0)
		return rc;
	while (i < len && strchr(" \t\r\n", doc[i]))
		i++;
	if (i < len && doc[i] == '{')
		rc = import_json(work, doc, len);
	else
		rc = case_import_text(work, doc, len);
	if (rc == 0) {
		json_t *t = c->fields;

		c->fields = work->fields;
		work->fields = t;
	}
	case_free(work);
	return rc;
}
