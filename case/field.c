/*
 * field.c - the field table of the case, and what a valid value of each
 * type is: the one place that defines the fields.  Validation, `hozen
 * case check`, the display, the edit document and docs/CASE.md are all
 * driven by this table.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static const char *const source_values[] = {"domestic", "foreign", NULL};
static const char *const records_values[] = {"subscriber", "traffic", "content",
					     "other", NULL};
static const char *const service_values[] = {
	"written", "oral", "oral-confirmed-in-writing", "email", NULL};
static const char *const attack_values[] = {"unauthorized-access",
					    "denial-of-service",
					    "information-leak",
					    "information-alteration",
					    "system-destruction",
					    "other",
					    NULL};

#define FORM CASE_REQ_FORM
#define G8   CASE_REQ_G8
#define TEXT(name, conf, req, g8, form, label, expect)                         \
	{                                                                      \
		name, CASE_TEXT, NULL, 0, 0, conf, req, g8, form, label,       \
			expect                                                 \
	}
#define TYPED(name, type, vals, conf, req, g8, form, label, expect)            \
	{                                                                      \
		name, type, vals, 0, 0, conf, req, g8, form, label, expect     \
	}
#define YESNO "yes or no"
#define DATE  "an ISO 8601 date and time such as 2026-11-20T10:30:00+09:00"

/*
 * Fields of the same G8 item are consecutive: `check` groups them.  An
 * item whose fields are all optional is met when one of them is set.
 */
static const struct case_field_info fields[] = {
	/* The preservation order: the G8 preservation checklist. */
	TYPED("order.source", CASE_ENUM, source_values, 0, G8, "checklist 1",
	      NULL, "source of the request", NULL),
	TEXT("order.law", 0, G8, "checklist 2.1", NULL,
	     "law authorising the order", "a text"),
	TEXT("order.offence", 1, G8, "checklist 2.2", NULL,
	     "offence the order rests on", "a text"),
	TYPED("order.proportional", CASE_BOOL, NULL, 0, G8, "checklist 3.1",
	      NULL, "proportional to the records sought", YESNO),
	TYPED("order.relevant", CASE_BOOL, NULL, 0, G8, "checklist 3.1", NULL,
	      "relevant to the investigation", YESNO),
	TYPED("order.not_burdensome", CASE_BOOL, NULL, 0, G8, "checklist 3.1",
	      NULL, "not unduly burdensome to the recipient", YESNO),
	TEXT("order.scope", 0, G8, "checklist 3.1", NULL, "scope of the order",
	     "a text"),
	TYPED("order.publicly_available", CASE_BOOL, NULL, 0, G8,
	      "checklist 3.2", NULL, "the records are publicly available",
	      YESNO),
	TEXT("order.known.person", 1, 0, "checklist 4", NULL,
	     "known: the person (e.g. name)", "a text"),
	TYPED("order.known.accounts", CASE_LIST, NULL, 1, 0, "checklist 4",
	      NULL, "known: account names", "a list of texts"),
	TEXT("order.known.communications", 1, 0, "checklist 4", NULL,
	     "known: communications (e.g. mail from A to B)", "a text"),
	TYPED("order.known.files", CASE_LIST, NULL, 1, 0, "checklist 4", NULL,
	      "known: files (images, documents)", "a list of texts"),
	TEXT("order.recipient", 0, G8, "checklist 5.1", NULL,
	     "recipient of the order", "a text"),
	TEXT("order.recipient_department", 0, G8, "checklist 5.2", NULL,
	     "department receiving a copy", "a text"),
	TYPED("order.records", CASE_LIST, records_values, 0, G8, "checklist 6",
	      NULL, "records to preserve", NULL),
	TEXT("order.records_other", 0, 0, "checklist 6", NULL,
	     "other records to preserve (6.4)", "a text"),
	TYPED("order.start", CASE_DATE, NULL, 0, 0, "checklist 7.1", NULL,
	      "preservation starts", DATE),
	TYPED("order.end", CASE_DATE, NULL, 0, G8, "checklist 7.1", NULL,
	      "preservation ends", DATE),
	TYPED("order.records_from", CASE_DATE, NULL, 0, G8, "checklist 7.2",
	      NULL, "period of the records: from", DATE),
	TYPED("order.records_to", CASE_DATE, NULL, 0, 0, "checklist 7.2", NULL,
	      "period of the records: to", DATE),
	TEXT("order.reimbursement", 0, G8, "checklist 8", NULL,
	     "reimbursement of the recipient", "a text"),
	TYPED("order.service", CASE_ENUM, service_values, 0, G8, "checklist 9",
	      NULL, "means of service", NULL),
	TEXT("order.disclosure_plan", 0, G8, "checklist 10", NULL,
	     "plan for later disclosure", "a text"),
	/* The G8 items to consider in a legal framework. */
	TEXT("issuer.authority", 0, G8, "framework 5.1", NULL,
	     "issuing authority", "a text"),
	TEXT("issuer.person", 0, G8, "framework 5.1", NULL, "issuing person",
	     "a text"),
	TEXT("issuer.contact", 0, G8, "framework 5.1", NULL, "issuer's contact",
	     "a text"),
	TEXT("issuer.jurisdiction", 0, 0, "framework 6", NULL,
	     "issuer's jurisdiction", "a text"),
	TYPED("issuer.document", CASE_DOCUMENT, NULL, 0, G8, "framework 5.2",
	      NULL, "the issuer's communication (authentication)",
	      "a file (a CMS signed file is checked against --trust CERT)"),
	TYPED("confidentiality.recipient", CASE_BOOL, NULL, 0, G8,
	      "framework 7.1", NULL, "confidential towards the recipient",
	      YESNO),
	TYPED("confidentiality.subject", CASE_BOOL, NULL, 0, G8,
	      "framework 7.1", NULL, "confidential towards the subject", YESNO),
	TYPED("confidentiality.until", CASE_DATE, NULL, 0, 0, "framework 7.3",
	      NULL, "confidentiality ends", DATE),
	TEXT("use.scope", 0, 0, "framework 14", NULL,
	     "permitted scope of use of the data", "a text"),
	/* The incident: the form 援助申出書 and the NISC categories. */
	TEXT("applicant.name", 0, FORM, NULL, "申出人 氏名又は名称",
	     "applicant (name or organisation)", "a text"),
	TEXT("applicant.name_kana", 0, FORM, NULL, "申出人 (ふりがな)",
	     "applicant, in furigana", "a text"),
	TEXT("applicant.address", 0, FORM, NULL, "申出人 住所",
	     "applicant's address", "a text"),
	TEXT("applicant.representative", 0, FORM, NULL,
	     "法人にあっては、その代表者の氏名",
	     "representative (for an organisation)", "a text"),
	TEXT("applicant.representative_kana", 0, FORM, NULL,
	     "代表者 (ふりがな)", "representative, in furigana", "a text"),
	TEXT("applicant.contact", 0, FORM, NULL, "申出に関する連絡先",
	     "contact for the application", "a text"),
	TEXT("application.commission", 0, FORM, NULL, "公安委員会 殿",
	     "Public Safety Commission applied to", "a text"),
	TYPED("application.date", CASE_DATE, NULL, 0, 0, NULL, "年月日",
	      "date of the application", DATE),
	TEXT("incident.computer.location", 0, FORM, NULL,
	     "特定電子計算機 設置場所", "where the computer is installed",
	     "a text"),
	TEXT("incident.computer.use", 0, FORM, NULL, "特定電子計算機 用途",
	     "what the computer is used for", "a text"),
	TYPED("incident.noticed", CASE_DATE, NULL, 0, FORM, NULL,
	      "不正アクセス行為を認知した日時",
	      "when the unauthorized access was noticed", DATE),
	TYPED("incident.occurred", CASE_DATE, NULL, 0, FORM, NULL,
	      "不正アクセス行為が行われた日時",
	      "when the unauthorized access happened", DATE),
	TEXT("incident.reason", 0, FORM, NULL,
	     "不正アクセス行為が行われたと認める理由",
	     "why it is believed to be unauthorized access", "a text"),
	TEXT("incident.system.hardware", 0, 0, NULL, NULL, "system: hardware",
	     "a text"),
	TYPED("incident.system.software", CASE_LIST, NULL, 0, 0, NULL, NULL,
	      "system: software names and versions", "a list of texts"),
	TEXT("incident.system.patches", 0, 0, NULL, NULL, "system: patch state",
	     "a text"),
	TYPED("incident.attack", CASE_LIST, attack_values, 0, 0, NULL, NULL,
	      "kind of attack", NULL),
	{"incident.severity", CASE_INT, NULL, 0, 5, 0, 0, NULL, NULL,
	 "severity (NISC scale)", "an integer from 0 (none) to 5 (crisis)"},
	TEXT("incident.sector", 0, 0, NULL, NULL, "sector", "a text"),
};

size_t case_field_count(void)
{
	return sizeof(fields) / sizeof(fields[0]);
}

const struct case_field_info *case_field_at(size_t i)
{
	return i < case_field_count() ? &fields[i] : NULL;
}

const struct case_field_info *case_field_find(const char *name)
{
	size_t i;

	for (i = 0; name && i < case_field_count(); i++)
		if (!strcmp(fields[i].name, name))
			return &fields[i];
	return NULL;
}

int case_field_lookup(const char *name, const struct case_field_info **out)
{
	*out = case_field_find(name);
	if (!*out)
		return hc_error_set(HC_EINVAL,
				    "unknown field '%s' (see 'hozen case "
				    "--fields')",
				    name ? name : "");
	return 0;
}

int case_error_prefix(int code, const char *fmt, ...)
{
	char msg[1024], pre[256];
	va_list ap;

	snprintf(msg, sizeof(msg), "%s", hc_error_message());
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	return hc_error_set(code, "%s%s", pre, msg);
}

/* ------------------------------------------------------------------ dates */

#define JST_OFFSET (9 * 3600)

/* Two decimal digits at p, or -1. */
static int two_digits(const char *p)
{
	if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]))
		return -1;
	return (p[0] - '0') * 10 + (p[1] - '0');
}

/* A zone suffix: Z, UTC, JST, +HH:MM, +HHMM or +HH; -1 if none of them. */
static int parse_zone(const char *p, int *off)
{
	int sign, h, m = 0;

	while (*p == ' ')
		p++;
	if (!*p || !strcmp(p, "JST")) {
		*off = JST_OFFSET;
		return 0;
	}
	if (!strcmp(p, "Z") || !strcmp(p, "UTC")) {
		*off = 0;
		return 0;
	}
	if (*p != '+' && *p != '-')
		return -1;
	sign = *p++ == '-' ? -1 : 1;
	h = two_digits(p);
	if (h < 0) /* never step past a short string's end */
		return -1;
	p += 2;
	if (*p == ':')
		p++;
	if (*p) {
		m = two_digits(p);
		if (m < 0)
			return -1;
		p += 2;
	}
	if (h > 14 || m > 59 || *p)
		return -1;
	*off = sign * (h * 3600 + m * 60);
	return 0;
}

int case_parse_date(const char *s, time_t *out, int *offset_out)
{
	struct tm tm, chk;
	const char *p, *q;
	time_t t;
	int off;

	memset(&tm, 0, sizeof(tm));
	p = s ? strptime(s, "%Y-%m-%d", &tm) : NULL;
	if (!p || p - s != 10)
		goto bad;
	if (*p == 'T' || (*p == ' ' && isdigit((unsigned char)p[1]))) {
		q = strptime(p + 1, "%H:%M", &tm);
		if (!q || q - p != 6)
			goto bad;
		p = q;
		if (*p == ':') {
			q = strptime(p + 1, "%S", &tm);
			if (!q || q - p != 3 || tm.tm_sec > 59)
				goto bad;
			p = q;
		}
	}
	if (parse_zone(p, &off) < 0)
		goto bad;
	tm.tm_isdst = 0;
	chk = tm;
	t = timegm(&chk);
	if (t == (time_t)-1 || chk.tm_mday != tm.tm_mday ||
	    chk.tm_mon != tm.tm_mon || chk.tm_hour != tm.tm_hour)
		return hc_error_set(HC_EINVAL,
				    "expected a date of the calendar, got '%s'",
				    s);
	*out = t - off;
	if (offset_out)
		*offset_out = off;
	return 0;
bad:
	return hc_error_set(HC_EINVAL,
			    "expected an ISO 8601 date and time such as "
			    "2026-11-20T10:30:00+09:00, got '%s'",
			    s ? s : "");
}

void case_format_date(time_t t, int offset, char out[32])
{
	struct tm tm;
	time_t local = t + offset;
	int a = offset < 0 ? -offset : offset;

	gmtime_r(&local, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	if (offset == 0)
		snprintf(out + 19, 13, "Z");
	else
		snprintf(out + 19, 13, "%c%02d:%02d", offset < 0 ? '-' : '+',
			 a / 3600, a / 60 % 60);
}

/* ----------------------------------------------------------------- values */

/* "one of: a, b, c" for a field with values. */
static void values_list(const struct case_field_info *f, char *out, size_t n)
{
	size_t i, len;

	snprintf(out, n, "%s",
		 f->type == CASE_LIST ? "a list of: " : "one of: ");
	for (i = 0; f->values[i]; i++) {
		len = strlen(out);
		snprintf(out + len, n - len, "%s%s", i ? ", " : "",
			 f->values[i]);
	}
}

static int bad_value(const struct case_field_info *f, const json_t *in,
		     const char *why)
{
	char expect[256], *got;
	int rc;

	if (f->values)
		values_list(f, expect, sizeof(expect));
	else
		snprintf(expect, sizeof(expect), "%s", f->expect);
	if (json_is_string(in))
		got = strdup(json_string_value(in));
	else
		got = json_dumps(in, JSON_ENCODE_ANY | JSON_COMPACT);
	rc = hc_error_set(HC_EINVAL, "'%s': expected %s, got '%.200s'%s%s",
			  f->name, expect, got ? got : "?", why ? ": " : "",
			  why ? why : "");
	free(got);
	return rc;
}

/* A text: non-empty, bounded, no control characters but tab and newline. */
static int check_text(const struct case_field_info *f, const json_t *in)
{
	const char *s = json_string_value(in);
	size_t i, n = json_string_length(in);

	if (!s || n == 0)
		return bad_value(f, in,
				 "empty (use 'unset' to remove a value)");
	if (n > CASE_TEXT_MAX)
		return bad_value(f, in, "longer than 64 KiB");
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f)
			return bad_value(f, in, "control character");
	}
	return 0;
}

static int in_values(const struct case_field_info *f, const char *s)
{
	size_t i;

	for (i = 0; s && f->values[i]; i++)
		if (!strcmp(f->values[i], s))
			return 1;
	return 0;
}

static int list_value(const struct case_field_info *f, const json_t *in,
		      json_t **out)
{
	json_t *arr = json_array(), *item, *copy = NULL;
	size_t i, j;
	int rc = 0;

	if (!arr)
		return hc_error_set(HC_ENOMEM, "out of memory");
	if (json_is_string(in)) {
		copy = json_array();
		if (!copy || json_array_append(copy, (json_t *)in) < 0) {
			rc = hc_error_set(HC_ENOMEM, "out of memory");
			goto out;
		}
		in = copy;
	}
	if (!json_is_array(in) || json_array_size(in) > CASE_LIST_MAX) {
		rc = bad_value(f, in, NULL);
		goto out;
	}
	json_array_foreach(in, i, item)
	{
		const char *s = json_string_value(item), *p;

		if (!f->values) {
			rc = check_text(f, item);
			if (rc == 0)
				rc = json_array_append(arr, item) < 0
					     ? hc_error_set(HC_ENOMEM, "oom")
					     : 0;
			if (rc < 0)
				goto out;
			continue;
		}
		/* An enum list: items may be comma-separated. */
		for (p = s; p && *p;) {
			size_t n = strcspn(p, ",");
			char one[64];
			int dup = 0;

			while (n && (*p == ' ')) {
				p++;
				n--;
			}
			snprintf(one, sizeof(one), "%.*s", (int)n, p);
			while (*one && one[strlen(one) - 1] == ' ')
				one[strlen(one) - 1] = '\0';
			p += n + (p[n] == ',');
			if (!*one)
				continue;
			if (!in_values(f, one)) {
				json_t *bad = json_string(one);

				rc = bad_value(f, bad ? bad : item, NULL);
				json_decref(bad);
				goto out;
			}
			for (j = 0; j < json_array_size(arr); j++)
				if (!strcmp(json_string_value(
						    json_array_get(arr, j)),
					    one))
					dup = 1;
			if (!dup &&
			    json_array_append_new(arr, json_string(one)))
				rc = hc_error_set(HC_ENOMEM, "out of memory");
			if (rc < 0)
				goto out;
		}
		if (!s) {
			rc = bad_value(f, item, NULL);
			goto out;
		}
	}
	if (json_array_size(arr) == 0)
		rc = bad_value(f, in, "empty (use 'unset' to remove a value)");
out:
	json_decref(copy);
	if (rc < 0) {
		json_decref(arr);
		return rc;
	}
	*out = arr;
	return 0;
}

static int document_value(const struct case_field_info *f, const json_t *in,
			  json_t **out)
{
	const char *name = NULL, *sha = NULL, *sig = NULL;
	json_int_t size = -1;
	uint8_t raw[HC_HASH_LEN];

	if (!json_is_object(in) ||
	    json_unpack((json_t *)in, "{s:s,s:s,s:I,s:s}", "name", &name,
			"sha256", &sha, "size", &size, "signature", &sig) < 0 ||
	    strlen(sha) != HC_HEX_LEN || hc_unhex(sha, raw, HC_HASH_LEN) < 0 ||
	    size < 0 || (strcmp(sig, "none") && strcmp(sig, "cms-verified")))
		return hc_error_set(HC_EINVAL,
				    "'%s': expected a document: set it with "
				    "'hozen case STORE set %s FILE'",
				    f->name, f->name);
	*out = json_deep_copy(in);
	return *out ? 0 : hc_error_set(HC_ENOMEM, "out of memory");
}

int case_field_value(const struct case_field_info *f, const json_t *in,
		     json_t **out)
{
	const char *s = json_string_value(in);
	char buf[32], *end;
	time_t t;
	long v;
	int off;

	switch (f->type) {
	case CASE_TEXT:
		if (!json_is_string(in))
			return bad_value(f, in, NULL);
		if (check_text(f, in) < 0)
			return HC_EINVAL;
		*out = json_incref((json_t *)in);
		return 0;
	case CASE_DATE:
		if (!s)
			return bad_value(f, in, NULL);
		if (case_parse_date(s, &t, &off) < 0)
			return case_error_prefix(HC_EINVAL, "'%s': ", f->name);
		case_format_date(t, off, buf);
		*out = json_string(buf);
		break;
	case CASE_ENUM:
		if (!in_values(f, s))
			return bad_value(f, in, NULL);
		*out = json_incref((json_t *)in);
		return 0;
	case CASE_INT:
		if (json_is_integer(in)) {
			v = (long)json_integer_value(in);
		} else {
			errno = 0;
			v = s && *s ? strtol(s, &end, 10) : 0;
			if (!s || !*s || errno || *end)
				return bad_value(f, in, NULL);
		}
		if (v < f->min || v > f->max)
			return bad_value(f, in, "out of range");
		*out = json_integer(v);
		break;
	case CASE_BOOL:
		if (json_is_boolean(in)) {
			*out = json_incref((json_t *)in);
			return 0;
		}
		if (s && (!strcmp(s, "yes") || !strcmp(s, "true")))
			*out = json_true();
		else if (s && (!strcmp(s, "no") || !strcmp(s, "false")))
			*out = json_false();
		else
			return bad_value(f, in, NULL);
		return 0;
	case CASE_LIST:
		return list_value(f, in, out);
	case CASE_DOCUMENT:
		return document_value(f, in, out);
	}
	return *out ? 0 : hc_error_set(HC_ENOMEM, "out of memory");
}

char *case_field_text(const struct case_field_info *f, const json_t *v)
{
	char *s = NULL;
	size_t i, len = 0;
	json_t *item;
	FILE *m;

	if (!v)
		return NULL;
	switch (f->type) {
	case CASE_BOOL:
		return strdup(json_is_true(v) ? "yes" : "no");
	case CASE_INT:
		return json_dumps(v, JSON_ENCODE_ANY);
	case CASE_LIST:
		m = open_memstream(&s, &len);
		if (!m)
			return NULL;
		json_array_foreach(v, i, item) fprintf(m, "%s%s", i ? ", " : "",
						       json_string_value(item));
		fclose(m);
		return s;
	case CASE_DOCUMENT:
		m = open_memstream(&s, &len);
		if (!m)
			return NULL;
		fprintf(m, "%s (%" JSON_INTEGER_FORMAT " bytes, sha256 %s",
			json_string_value(json_object_get(v, "name")),
			json_integer_value(json_object_get(v, "size")),
			json_string_value(json_object_get(v, "sha256")));
		if (json_object_get(v, "signer"))
			fprintf(m, ", CMS signature verified, signer %s",
				json_string_value(
					json_object_get(v, "signer")));
		else
			fprintf(m, ", not signed");
		fprintf(m, ")");
		fclose(m);
		return s;
	default:
		return strdup(json_string_value(v));
	}
}
