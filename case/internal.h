/*
 * internal.h - what the files of case/ share and nobody else sees.
 */
#ifndef HOZEN_CASE_INTERNAL_H
#define HOZEN_CASE_INTERNAL_H

#include "case.h"

#define CASE_FILE     "case.json"
#define CASE_FILE_NEW "case.json.new"
#define CASE_DOC_DIR  "case-documents"
#define CASE_FILE_MAX (16u << 20)
#define CASE_TEXT_MAX (64u << 10)
#define CASE_LIST_MAX 1000

/* A document read by case_set_document(), written to the store at commit. */
struct case_staged {
	char sha256[HC_HEX_LEN + 1];
	char *buf;
	size_t len;
};

/*
 * A case.  fields maps a field name to its entry: {"confidential": bool,
 * "value": V} and "salt" (32 hex digits) for a confidential value; an
 * entry may lack a value when it only marks confidentiality.  In a
 * replay, a confidential entry holds "sha256" instead of "value" and
 * "salt".  release is {"seq", "at", "reason", "revoked_by", "note"}.
 */
struct case_t {
	json_t *fields;	 /* object, owned */
	json_t *release; /* object or NULL, owned */
	int64_t seq;	 /* seq of the last case record applied, -1: none */
	struct case_staged *docs; /* documents to write at commit */
	size_t ndocs;
};

/* Keep a copy of a document's bytes, to be written by case_commit(). */
int case_stage_document(case_t *c, const char *sha256_hex, const char *buf,
			size_t len);
/* Read an edit document (edit.c); case_import() is the entry point. */
int case_import_text(case_t *c, const char *doc, size_t len);
/* The seq of the last case or release record replayed, -1 if none. */
int64_t case_replay_last_seq(const case_replay *r);
/* 1 for the fields enforcement reads, which cannot be confidential. */
int case_field_enforced(const char *name);

/*
 * Normalise a value for field f: in may be the JSON value or its text
 * form (a string for a date, integer, yes/no, enum; a string or an array
 * of strings for a list).  *out is a new reference.  HC_EINVAL naming
 * the field and what is expected.
 */
int case_field_value(const struct case_field_info *f, const json_t *in,
		     json_t **out);
/* A value as display text (caller frees). */
char *case_field_text(const struct case_field_info *f, const json_t *v);
/* Look a field up; HC_EINVAL "unknown field" (with the known ones). */
int case_field_lookup(const char *name, const struct case_field_info **out);

/* The entry of field in c, or NULL. */
json_t *case_entry(const case_t *c, const char *field);
/* Effective confidentiality of an entry (NULL: the default) of f. */
int case_entry_confidential(const struct case_field_info *f,
			    const json_t *entry);
/* A deep copy of c. */
int case_copy(case_t **out, const case_t *c);
/* Serialise c as case.json (caller frees). */
int case_serialise(const case_t *c, char **out, size_t *len);
/* Parse a JSON document (duplicate names refused); code on failure. */
int case_json_load(const char *text, size_t len, int code, json_t **out);
/* Parse case.json text into a new case. */
int case_parse(case_t **out, const char *text, size_t len);

/* The instant of a date field of c, or 0 with *set 0. */
time_t case_date(const case_t *c, const char *field, int *set);

/* Put a prefix (printf-style) before the current error message. */
int case_error_prefix(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
