/*
 * case.h - the case of a store: the incident and the preservation order
 * it is kept under (G8 preservation checklist, 援助申出書), every change
 * recorded in the chain, and the order's enforcement.
 *
 * The current case is STORE/case.json; every change is a `case` record
 * in the chain, and a release is a `release` record, so that the case is
 * reproducible from the chain alone (docs/FORMAT.md, "Case records").
 * docs/CASE.md maps each G8 item and form field to the field holding it.
 *
 * Conventions are those of hashchain.h: 0 or a negative HC_E* code with a
 * one-line message (hc_error_message()) naming the field and what is
 * expected; the caller owns what comes back through `**out`; every
 * _free() accepts NULL; nothing here prints or exits.
 */
#ifndef HOZEN_CASE_H
#define HOZEN_CASE_H

#include <stddef.h>
#include <time.h>

#include "hashchain.h"

/* ------------------------------------------------------------- the fields */

enum case_type {
	CASE_TEXT,     /* UTF-8 text, newlines allowed */
	CASE_DATE,     /* ISO 8601 date and time with a zone offset */
	CASE_ENUM,     /* one of the field's values */
	CASE_INT,      /* an integer in [min, max] */
	CASE_BOOL,     /* yes / no */
	CASE_DOCUMENT, /* a file: its SHA-256, optionally a checked CMS */
	CASE_LIST,     /* a list of texts, or of values when it has values */
};

/* Which checklist a field is required for (bits). */
enum { CASE_REQ_FORM = 1, CASE_REQ_G8 = 2 };

/* One field of the case, as the single field table defines it. */
struct case_field_info {
	const char *name;	   /* "order.end" */
	enum case_type type;	   /* what a value is */
	const char *const *values; /* enum or list values, NULL-terminated */
	int min, max;		   /* CASE_INT range */
	int confidential;	   /* confidential by default */
	int required;		   /* CASE_REQ_* bits */
	const char *g8;		   /* G8 item it holds, or NULL */
	const char *form;	   /* 援助申出書 field it holds, or NULL */
	const char *label;	   /* short English label */
	const char *expect;	   /* what a valid value is, for messages */
};

/* The number of fields, and field i in table (display) order. */
size_t case_field_count(void);
const struct case_field_info *case_field_at(size_t i);
/* The field named name, or NULL. */
const struct case_field_info *case_field_find(const char *name);
/* The title of the section f belongs to ("The issuer (G8 ...)"). */
const char *case_field_section(const struct case_field_info *f);

/*
 * Parse an ISO 8601 date and time: "2026-11-20T10:30:00+09:00", a "Z" or
 * "+0900" offset, a space for the "T", seconds optional, a date alone
 * (midnight), "JST" or "UTC" for the zone; without a zone the time is
 * JST (+09:00).  *out gets the instant, *offset_out (may be NULL) the
 * offset in seconds east of UTC.  HC_EINVAL with a message otherwise.
 */
int case_parse_date(const char *s, time_t *out, int *offset_out);
/* The canonical form "YYYY-MM-DDTHH:MM:SS+HH:MM" ("Z" for UTC). */
void case_format_date(time_t t, int offset, char out[32]);

/* --------------------------------------------------------------- the case */

typedef struct case_t case_t;

/* A new empty case (no order: a draft). */
int case_new(case_t **out);
/*
 * Read STORE/case.json of the store directory storefd; a store without
 * one has an empty case.  Cheap: does not read the chain.  HC_EFORMAT
 * for a malformed file.
 */
int case_load(case_t **out, int storefd);
void case_free(case_t *c);

/*
 * Set field to the value given as text arguments (n >= 1): a text is the
 * arguments joined by spaces, a list has one item per argument (an enum
 * list also splits on commas), other types take one argument.  Checks
 * the field alone; case_commit() checks the whole case.  A document is
 * set with case_set_document().  HC_EINVAL naming the field and what is
 * expected; the case is unchanged on failure.
 */
int case_set(case_t *c, const char *field, const char *const *args, size_t n);
/* The same with the value as JSON (as case.json and export hold it). */
int case_set_json(case_t *c, const char *field, const json_t *value);
/* Remove field's value. */
int case_unset(case_t *c, const char *field);
/* Mark field confidential (1) or not (0). */
int case_set_confidential(case_t *c, const char *field, int confidential);
/*
 * Set a document field to the file at path: its name, size and SHA-256.
 * A CMS/PKCS#7 SignedData file (DER, PEM or S/MIME, content attached) is
 * verified with OpenSSL against the certificates in trust_pem (PEM file);
 * its signer is kept.  A signed file without trust_pem, or a signature
 * that does not verify, is refused (HC_EINVAL).  trust_pem may be NULL
 * for a file that is not CMS.
 */
int case_set_document(case_t *c, const char *field, const char *path,
		      const char *trust_pem);

/* The value of field (borrowed JSON, NULL when unset). */
const json_t *case_get(const case_t *c, const char *field);
/* 1 if field is confidential in this case. */
int case_is_confidential(const case_t *c, const char *field);
/* The value as one line of display text (caller frees), NULL if unset. */
char *case_value_text(const case_t *c, const char *field);

/*
 * Check the whole case: every field's value, and the order of dates
 * (incident.occurred <= incident.noticed, order.start <= order.end,
 * order.records_from <= order.records_to).  HC_EINVAL naming the field.
 */
int case_validate(const case_t *c);

/*
 * The case as JSON: {"fields": {NAME: VALUE...}, "confidential": [NAME...]}
 * (caller owns).  With redact, confidential values are left out (and
 * listed under "redacted").  This is what `hozen case export` writes and
 * case_import() reads.
 */
int case_to_json(const case_t *c, int redact, json_t **out);
/*
 * Apply an exported case document (JSON, see case_to_json) or an edit
 * document (text, see case_edit_text) to c: the fields it names are set,
 * a null or empty value unsets.  HC_EINVAL with "line N: " for a text
 * document; c is unchanged on failure.
 */
int case_import(case_t *c, const char *doc, size_t len);

/*
 * The readable edit document of the case (caller frees): comments naming
 * each field, its G8 item and form field and what is expected, then
 * "NAME: VALUE" lines; continuation lines start with two spaces (a text's
 * further lines, a list's items).  case_import() reads it back.
 */
int case_edit_text(const case_t *c, const char *title, char **out);

/* ------------------------------------------------------- the chain record */

/* What case_commit() and case_release() appended. */
struct case_commit_report {
	size_t changes; /* fields changed (0: nothing was written) */
	uint64_t seq;	/* seq of the record */
};

/*
 * Record the differences between the case in the store and c as one
 * `case` record (values of confidential fields only as salted hashes),
 * make it durable and replace case.json.  c must have been loaded from
 * the same store, which must not have changed since (HC_EBUSY).  Refuses
 * (HC_EINVAL) what case_validate() refuses, and shortening order.end of
 * an issued order while it is in force (extending is always allowed).
 * HC_EBUSY, "the store is mounted", while another process holds the log.
 */
int case_commit(int storefd, case_t *c, const hc_actor *actor,
		struct case_commit_report *out);

/*
 * Lift the preservation order: append a `release` record and update
 * case.json.  Refused (HC_EINVAL, saying why) for a draft order, an order
 * already released, or before order.end unless revoked_by names the
 * revoking authority.  reason may be NULL.
 */
int case_release(int storefd, const char *revoked_by, const char *reason,
		 time_t now, const hc_actor *actor,
		 struct case_commit_report *out);

/* ------------------------------------------------------------ enforcement */

enum case_order_state {
	CASE_ORDER_DRAFT,    /* no identified issuer (or no order at all) */
	CASE_ORDER_ACTIVE,   /* issued, the preservation period runs */
	CASE_ORDER_ENDED,    /* issued, the period ended, not yet released */
	CASE_ORDER_RELEASED, /* lifted by `hozen release` after the end */
	CASE_ORDER_REVOKED,  /* lifted by a revocation */
};

struct case_preservation {
	/*
	 * 1: nothing preserved may be removed.  Preservation is lifted only
	 * by a recorded release: a draft, an active and an ended order all
	 * keep it in force; no clock makes evidence disappear.
	 */
	int in_force;
	enum case_order_state state;
	time_t end;	 /* order.end, 0 if unset */
	time_t released; /* time of the release, 0 if none */
	char why[256];	 /* one line, for `hozen status` and refusals */
};

/* The preservation state of c at time now.  Never fails for a valid c. */
int case_preservation(const case_t *c, time_t now,
		      struct case_preservation *out);

struct case_confidentiality {
	/*
	 * 1: exports must be encrypted to a named recipient or leave out the
	 * confidential fields.  In force unless the order says it is not
	 * confidential towards both recipient and subject, or its end date
	 * has passed: undecided means confidential.
	 */
	int in_force;
	int towards_recipient; /* 1 yes, 0 no, -1 not stated */
	int towards_subject;   /* idem */
	time_t until;	       /* confidentiality.until, 0 if unset */
};

int case_confidentiality(const case_t *c, time_t now,
			 struct case_confidentiality *out);

/* The name of the state ("draft", "active", ...). */
const char *case_order_state_name(enum case_order_state s);

/* ---------------------------------------------------------- completeness */

/* One unmet item of `hozen case check`. */
struct case_missing {
	const char *list;  /* "form" or "G8" */
	const char *item;  /* the form field or G8 item */
	const char *field; /* the field to fill ("a or b" for one of) */
};

/*
 * What is still missing for the application form and the G8 checklist,
 * item by item, in *out (malloc'd array, caller frees), *n_out items.
 */
int case_check(const case_t *c, struct case_missing **out, size_t *n_out);

/* ---------------------------------------------------------------- replay */

typedef struct case_replay case_replay;

int case_replay_new(case_replay **out);
/*
 * Feed one record (in seq order): `case` and `release` records change
 * the replayed case; others are ignored.  HC_EVERIFY when a record's old
 * value is not the replayed one.  Its signature is that of
 * hc_verify_options.on_record: pass the replay as ctx.
 */
int case_replay_on_record(void *replay, const hc_record *rec);
/* Read the whole chain of storefd into a new replay. */
int case_replay_store(case_replay **out, int storefd);
void case_replay_free(case_replay *r);

/* The result of comparing case.json with the chain. */
struct case_verify_report {
	int ok;		  /* 1: case.json is what the chain says */
	uint64_t records; /* case and release records replayed */
	/* The first problem: */
	char field[64];	  /* the differing field, "" if none */
	char where[512];  /* case.json or case-documents/SHA256 */
	char reason[512]; /* why, one line */
};

/*
 * Compare STORE/case.json with the replay: every field (a confidential
 * value through its salted hash), the confidentiality marks, the release
 * and seq; and the documents (FORMAT.md section 2.6): every document a
 * document field ever had (its public values over the whole history, and
 * the current one) is in case-documents/ under its SHA-256 with that
 * content and size, and every file there is a document named by its
 * SHA-256 that a case record references (unless the chain's confidential
 * document values, whose documents cannot be told, may reference it).
 * Every problem is added to findings (may be NULL), the first also to
 * *out.  Returns 0 with the result in *out, or a negative code when it
 * could not compare (an unreadable file: a malformed case.json is a
 * mismatch, not an error).
 */
int case_replay_verify(const case_replay *r, int storefd, hc_findings *findings,
		       struct case_verify_report *out);

/* The salted hash of a confidential value (docs/FORMAT.md), hex. */
int case_value_hash(const char *field, const char *salt_hex,
		    const json_t *value, char out[HC_HEX_LEN + 1]);

#endif
