/*
 * edit.c - the readable edit document of a case: written for $EDITOR by
 * case_edit_text(), read back by case_import().
 *
 *   # comments
 *   NAME: first line of the value
 *     further line of a text, or further item of a list
 *
 * An empty value unsets the field; a field the document does not name is
 * left as it is; a document field is shown as a comment only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const char *case_field_section(const struct case_field_info *f)
{
	const char *name = f->name;
	static const struct {
		const char *prefix, *title;
	} s[] = {
		{"order.",
		 "The preservation order (G8 preservation checklist)"},
		{"issuer.", "The issuer (G8 legal framework 5)"},
		{"confidentiality.", "Confidentiality (G8 legal framework 7)"},
		{"use.", "Scope of use (G8 legal framework 14)"},
		{"applicant.", "The applicant (援助申出書 その1)"},
		{"application.", "The application (援助申出書)"},
		{"incident.", "The incident"},
	};
	size_t i;

	for (i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		if (!strncmp(name, s[i].prefix, strlen(s[i].prefix)))
			return s[i].title;
	return "Other";
}

static void put_value(FILE *m, const struct case_field_info *f, const json_t *v)
{
	const char *s, *nl;
	json_t *item;
	size_t i;

	if (!v) {
		fputc('\n', m);
		return;
	}
	if (f->type == CASE_LIST) {
		fputc('\n', m);
		json_array_foreach(v, i, item)
			fprintf(m, "  %s\n", json_string_value(item));
		return;
	}
	if (f->type != CASE_TEXT) {
		char *t = case_field_text(f, v);

		fprintf(m, " %s\n", t ? t : "");
		free(t);
		return;
	}
	s = json_string_value(v);
	fputc(' ', m);
	while ((nl = strchr(s, '\n'))) {
		fprintf(m, "%.*s\n  ", (int)(nl - s), s);
		s = nl + 1;
	}
	fprintf(m, "%s\n", s);
}

int case_edit_text(const case_t *c, const char *title, char **out)
{
	const char *last = NULL;
	char *text = NULL, expect[256];
	size_t i, j, len = 0;
	FILE *m = open_memstream(&text, &len);

	if (!m)
		return hc_error_set(HC_ENOMEM, "out of memory");
	fprintf(m,
		"# hozen case: %s\n"
		"#\n"
		"# Write each value after \"NAME:\".  Lines starting with two\n"
		"# spaces continue the field above: further lines of a text,\n"
		"# one item per line of a list.  An empty value unsets a "
		"field;\n"
		"# a field left out of this document is not changed.  Dates "
		"are\n"
		"# ISO 8601 with a zone, e.g. 2026-11-20T10:30:00+09:00 (no\n"
		"# zone: JST).  Fields marked [confidential] are recorded in\n"
		"# the chain only as salted hashes.  If what you save is\n"
		"# invalid, nothing changes and your text is kept.\n",
		title);
	for (i = 0; i < case_field_count(); i++) {
		const struct case_field_info *f = case_field_at(i);
		const char *sec = case_field_section(f);

		if (sec != last)
			fprintf(m, "\n# ==== %s ====\n", sec);
		last = sec;
		fprintf(m, "\n# %s%s", f->label,
			case_is_confidential(c, f->name) ? " [confidential]"
							 : "");
		if (f->g8)
			fprintf(m, " [G8 %s]", f->g8);
		if (f->form)
			fprintf(m, " [援助申出書: %s]", f->form);
		if (f->values) {
			snprintf(expect, sizeof(expect), "%s",
				 f->type == CASE_LIST ? "items from:"
						      : "one of:");
			for (j = 0; f->values[j]; j++) {
				size_t n = strlen(expect);

				snprintf(expect + n, sizeof(expect) - n, " %s",
					 f->values[j]);
			}
		} else {
			snprintf(expect, sizeof(expect), "%s", f->expect);
		}
		fprintf(m, "\n#   %s\n", expect);
		if (f->type == CASE_DOCUMENT) {
			char *t = case_value_text(c, f->name);

			fprintf(m,
				"#   set with: hozen case STORE set %s FILE "
				"[--trust CERT]\n# %s: %s\n",
				f->name, f->name, t ? t : "(not set)");
			free(t);
			continue;
		}
		fprintf(m, "%s:", f->name);
		put_value(m, f, case_get(c, f->name));
	}
	if (fclose(m) != 0 || !text) {
		free(text);
		return hc_error_set(HC_ENOMEM, "out of memory");
	}
	*out = text;
	return 0;
}

/* ----------------------------------------------------------------- parse */

/* The field being read: its name, first-line value and further lines. */
struct pending {
	const struct case_field_info *f;
	unsigned line;
	json_t *lines; /* array of strings */
};

/* Apply the field read so far to c. */
static int flush(case_t *c, struct pending *p)
{
	json_t *value = NULL;
	size_t i, n, len = 0;
	char *text = NULL;
	FILE *m;
	int rc = 0;

	if (!p->f)
		return 0;
	/* Drop empty lines at either end. */
	while ((n = json_array_size(p->lines)) &&
	       !json_string_length(json_array_get(p->lines, n - 1)))
		json_array_remove(p->lines, n - 1);
	while (json_array_size(p->lines) &&
	       !json_string_length(json_array_get(p->lines, 0)))
		json_array_remove(p->lines, 0);
	n = json_array_size(p->lines);
	if (n == 0) {
		rc = case_unset(c, p->f->name);
	} else if (p->f->type == CASE_LIST) {
		rc = case_set_json(c, p->f->name, p->lines);
	} else if (p->f->type == CASE_TEXT || n == 1) {
		m = open_memstream(&text, &len);
		for (i = 0; m && i < n; i++)
			fprintf(m, "%s%s", i ? "\n" : "",
				json_string_value(json_array_get(p->lines, i)));
		if (!m || fclose(m) != 0 || !(value = json_string(text)))
			rc = hc_error_set(HC_EINVAL, "'%s': not valid UTF-8",
					  p->f->name);
		else
			rc = case_set_json(c, p->f->name, value);
	} else {
		rc = hc_error_set(HC_EINVAL, "'%s': expected one line",
				  p->f->name);
	}
	if (rc < 0)
		rc = case_error_prefix(rc, "line %u: ", p->line);
	free(text);
	json_decref(value);
	json_array_clear(p->lines);
	p->f = NULL;
	return rc;
}

static int add_line(struct pending *p, const char *s, size_t n)
{
	json_t *str = json_stringn(s, n);

	if (!str || json_array_append_new(p->lines, str) < 0)
		return hc_error_set(HC_EINVAL, "line %u: not valid UTF-8",
				    p->line);
	return 0;
}

int case_import_text(case_t *c, const char *doc, size_t len)
{
	struct pending p = {NULL, 0, json_array()};
	const char *line = doc, *end = doc + len, *nl, *colon;
	unsigned no = 0;
	int rc = 0;

	if (!p.lines)
		return hc_error_set(HC_ENOMEM, "out of memory");
	for (; rc == 0 && line < end; line = nl + 1) {
		size_t n;

		nl = memchr(line, '\n', (size_t)(end - line));
		if (!nl)
			nl = end;
		n = (size_t)(nl - line);
		if (n && line[n - 1] == '\r')
			n--;
		no++;
		if (n >= 2 && line[0] == ' ' && line[1] == ' ') {
			if (!p.f) {
				rc = hc_error_set(HC_EINVAL,
						  "line %u: a continuation "
						  "line must follow a field",
						  no);
				break;
			}
			rc = add_line(&p, line + 2, n - 2);
			continue;
		}
		rc = flush(c, &p);
		if (rc < 0 || n == 0 || line[0] == '#')
			continue;
		colon = memchr(line, ':', n);
		if (!colon) {
			rc = hc_error_set(HC_EINVAL,
					  "line %u: expected 'NAME: VALUE', a "
					  "'#' comment or a line starting with "
					  "two spaces",
					  no);
			break;
		}
		{
			char name[64];

			snprintf(name, sizeof(name), "%.*s",
				 (int)(colon - line), line);
			p.f = case_field_find(name);
			p.line = no;
			if (!p.f) {
				rc = hc_error_set(HC_EINVAL,
						  "line %u: unknown field '%s'",
						  no, name);
				break;
			}
			if (p.f->type == CASE_DOCUMENT) {
				rc = hc_error_set(
					HC_EINVAL,
					"line %u: '%s' is a document: set it "
					"with 'hozen case STORE set %s FILE'",
					no, name, name);
				break;
			}
		}
		colon++;
		while (colon < line + n && *colon == ' ')
			colon++;
		if (colon < line + n)
			rc = add_line(&p, colon, (size_t)(line + n - colon));
	}
	if (rc == 0)
		rc = flush(c, &p);
	json_decref(p.lines);
	return rc;
}
