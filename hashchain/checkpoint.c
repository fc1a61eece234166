/*
 * checkpoint.c - C2SP tlog-checkpoints (https://c2sp.org/tlog-checkpoint)
 * in C2SP signed notes (https://c2sp.org/signed-note).
 *
 * The bytes, exactly:
 *
 *   origin "\n"                       non-empty
 *   size "\n"                         decimal, no leading zero but "0"
 *   base64(root) "\n"                 canonical, 32 bytes
 *   *(extension "\n")                 each non-empty
 *   "\n"                              the blank line
 *   1*("\xE2\x80\x94 " name " " base64(key id || signature) "\n")
 *
 * The body is everything up to and including the newline before the
 * blank line (the last "\n\n" of the note); each Ed25519 signature is over
 * the body bytes.  The key id is 4 bytes, big-endian.  The whole note is
 * UTF-8 without control characters other than "\n" (so no "\r", no NUL),
 * at most NOTE_MAX bytes with at most SIGS_MAX signature lines.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "internal.h"

#define NOTE_MAX (1u << 20)
#define SIGS_MAX 100
#define SIG_LEN	 64
/* base64 of the 32-byte root: 44 characters. */
#define ROOT_B64_LEN 44

static const char sig_prefix[] = "\xe2\x80\x94 "; /* U+2014, space */
#define SIG_PREFIX_LEN (sizeof(sig_prefix) - 1)

/* ------------------------------------------------------------ text checks */

/*
 * Check that text is UTF-8 with no control character but "\n".  what
 * names it in the message ("note", "origin"); lines count from 1.
 */
static int check_text(const char *text, size_t len, const char *what)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t i = 0, k, line = 1;
	uint32_t c;

	while (i < len) {
		if (s[i] == '\n') {
			line++;
			i++;
			continue;
		}
		if (s[i] == '\r')
			return hc_error_set(HC_EFORMAT,
					    "%s line %zu: carriage return "
					    "(CRLF line endings are not "
					    "allowed)",
					    what, line);
		if (s[i] == '\0')
			return hc_error_set(HC_EFORMAT, "%s line %zu: NUL byte",
					    what, line);
		if (s[i] < 0x20)
			return hc_error_set(HC_EFORMAT,
					    "%s line %zu: control character "
					    "0x%02x",
					    what, line, s[i]);
		k = hc_utf8_next(s + i, len - i, &c);
		if (!k)
			return hc_error_set(HC_EFORMAT,
					    "%s line %zu: invalid UTF-8", what,
					    line);
		i += k;
	}
	return 0;
}

static int parse_size(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0)
		return hc_error_set(HC_EFORMAT, "tree size line is empty");
	if (n > 1 && p[0] == '0')
		return hc_error_set(HC_EFORMAT,
				    "tree size '%.*s' has a leading zero",
				    (int)(n > 32 ? 32 : n), p);
	for (i = 0; i < n; i++) {
		unsigned d = (unsigned char)p[i] - '0';

		if (d > 9)
			return hc_error_set(HC_EFORMAT,
					    "tree size '%.*s' is not a decimal "
					    "number",
					    (int)(n > 32 ? 32 : n), p);
		if (v > (UINT64_MAX - d) / 10)
			return hc_error_set(HC_EFORMAT,
					    "tree size '%.*s' is too large",
					    (int)(n > 32 ? 32 : n), p);
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* Parse the body (len bytes, ending in "\n") into c. */
static int parse_body(hc_checkpoint *c, const char *body, size_t len)
{
	const char *p = body, *end = body + len, *nl;
	uint8_t *root = NULL;
	size_t rootlen = 0, line;
	int rc;

	/* Line 1: origin. */
	nl = memchr(p, '\n', (size_t)(end - p));
	if (nl == p)
		return hc_error_set(HC_EFORMAT, "origin line is empty");
	c->origin = strndup(p, (size_t)(nl - p));
	if (!c->origin)
		return hc_error_set(HC_ENOMEM, "out of memory");
	p = nl + 1;

	/* Line 2: tree size. */
	if (p == end)
		return hc_error_set(HC_EFORMAT, "tree size line is missing");
	nl = memchr(p, '\n', (size_t)(end - p));
	rc = parse_size(p, (size_t)(nl - p), &c->size);
	if (rc < 0)
		return rc;
	p = nl + 1;

	/* Line 3: root hash. */
	if (p == end)
		return hc_error_set(HC_EFORMAT, "root hash line is missing");
	nl = memchr(p, '\n', (size_t)(end - p));
	if (nl - p != ROOT_B64_LEN ||
	    hc_base64_decode(p, ROOT_B64_LEN, &root, &rootlen) < 0 ||
	    rootlen != HC_HASH_LEN) {
		free(root);
		return hc_error_set(HC_EFORMAT,
				    "root hash is not the canonical base64 "
				    "of %d bytes",
				    HC_HASH_LEN);
	}
	memcpy(c->root, root, HC_HASH_LEN);
	free(root);
	p = nl + 1;

	/* Extension lines, each non-empty. */
	if (p == end)
		return 0;
	for (nl = p, line = 4; nl < end; line++) {
		if (*nl == '\n')
			return hc_error_set(HC_EFORMAT,
					    "note line %zu: empty extension "
					    "line",
					    line);
		nl = memchr(nl, '\n', (size_t)(end - nl));
		nl++;
	}
	c->extensions = strndup(p, (size_t)(end - p));
	if (!c->extensions)
		return hc_error_set(HC_ENOMEM, "out of memory");
	return 0;
}

/* ------------------------------------------------------------ signatures */

/*
 * Check the signature lines sigs[0, len) (ending in "\n"; the first is
 * note line `line`) and verify those by key over body.  Lines by other
 * keys are checked for form and otherwise ignored; a line by key that
 * does not verify rejects the note.
 */
static int check_signatures(const char *sigs, size_t len, size_t line,
			    const char *body, size_t body_len,
			    const hc_key *key)
{
	const char *p = sigs, *end = sigs + len, *nl, *name, *sp;
	const char *kname = hc_key_name(key);
	size_t kname_len = strlen(kname), count = 0, matched = 0;
	size_t bad_line = 0, rawlen = 0;
	uint8_t *raw = NULL;
	uint32_t id;
	int rc = 0;

	for (; p < end; p = nl + 1, line++) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (++count > SIGS_MAX) {
			rc = hc_error_set(HC_EFORMAT,
					  "too many signature lines (more than "
					  "%d)",
					  SIGS_MAX);
			goto out;
		}
		if ((size_t)(nl - p) < SIG_PREFIX_LEN ||
		    memcmp(p, sig_prefix, SIG_PREFIX_LEN) != 0) {
			rc = hc_error_set(
				HC_EFORMAT,
				"note line %zu: expected a signature "
				"line ('\xe2\x80\x94 NAME SIGNATURE')",
				line);
			goto out;
		}
		name = p + SIG_PREFIX_LEN;
		sp = memchr(name, ' ', (size_t)(nl - name));
		if (!sp || !hc_key_name_valid(name, (size_t)(sp - name))) {
			rc = hc_error_set(HC_EFORMAT,
					  "note line %zu: signature line has "
					  "no valid key name",
					  line);
			goto out;
		}
		if (hc_base64_decode(sp + 1, (size_t)(nl - sp - 1), &raw,
				     &rawlen) < 0 ||
		    rawlen < 5) {
			rc = hc_error_set(HC_EFORMAT,
					  "note line %zu: signature is not "
					  "canonical base64 of a key id and a "
					  "signature",
					  line);
			goto out;
		}
		id = (uint32_t)raw[0] << 24 | (uint32_t)raw[1] << 16 |
		     (uint32_t)raw[2] << 8 | raw[3];
		if ((size_t)(sp - name) == kname_len &&
		    memcmp(name, kname, kname_len) == 0 &&
		    id == hc_key_id(key)) {
			matched++;
			if (!bad_line &&
			    (rawlen != 4 + SIG_LEN ||
			     hc_key_verify(key, body, body_len, raw + 4) != 0))
				bad_line = line;
		}
		free(raw);
		raw = NULL;
	}
	if (bad_line)
		rc = hc_error_set(HC_EVERIFY,
				  "no valid signature by key '%s': the "
				  "signature on note line %zu does not verify",
				  kname, bad_line);
	else if (!matched)
		rc = hc_error_set(HC_EVERIFY, "no valid signature by key '%s'",
				  kname);
out:
	free(raw);
	return rc;
}

/* --------------------------------------------------------------- the API */

static int parse_note(hc_checkpoint **out, const char *text, size_t len,
		      const hc_key *key);

int hc_checkpoint_parse(hc_checkpoint **out, const char *text, size_t len,
			const hc_key *key)
{
	hc_key *named = NULL;
	char *origin;
	const char *nl;
	int rc;

	if (!key || hc_key_is_named(key))
		return parse_note(out, text, len, key);
	/* An unnamed (PEM) key signs under the note's origin. */
	nl = text ? memchr(text, '\n', len) : NULL;
	if (!nl)
		return hc_error_set(HC_EFORMAT, "note has no origin line");
	origin = strndup(text, (size_t)(nl - text));
	if (!origin)
		return hc_error_set(HC_ENOMEM, "out of memory");
	rc = hc_key_with_name(&named, key, origin);
	free(origin);
	if (rc < 0)
		return hc_error_set(HC_EFORMAT,
				    "note origin is not a key name");
	rc = parse_note(out, text, len, named);
	hc_key_free(named);
	return rc;
}

static int parse_note(hc_checkpoint **out, const char *text, size_t len,
		      const hc_key *key)
{
	hc_checkpoint *c = NULL;
	size_t i, body_len = 0, line;
	int rc;

	if (!out || (!text && len) || !key)
		return hc_error_set(HC_EINVAL, "bad arguments to parse a "
					       "checkpoint");
	if (len > NOTE_MAX)
		return hc_error_set(HC_EFORMAT,
				    "note is too large (%zu bytes, at most %u)",
				    len, NOTE_MAX);
	rc = check_text(text, len, "note");
	if (rc < 0)
		return rc;
	if (len == 0 || text[len - 1] != '\n')
		return hc_error_set(HC_EFORMAT,
				    "note does not end with a newline");
	/* The body ends at the last blank line. */
	for (i = len - 1; i > 0; i--) {
		if (text[i] == '\n' && text[i - 1] == '\n') {
			body_len = i;
			break;
		}
	}
	if (body_len == 0)
		return hc_error_set(HC_EFORMAT,
				    "note has no blank line before its "
				    "signatures");
	if (body_len + 1 == len)
		return hc_error_set(HC_EFORMAT,
				    "note has no signature after its blank "
				    "line");
	c = calloc(1, sizeof(*c));
	if (!c)
		return hc_error_set(HC_ENOMEM, "out of memory");
	rc = parse_body(c, text, body_len);
	if (rc < 0)
		goto out;
	for (i = 0, line = 2; i < body_len; i++)
		line += text[i] == '\n';
	rc = check_signatures(text + body_len + 1, len - body_len - 1, line,
			      text, body_len, key);
	if (rc < 0)
		goto out;
	c->text = malloc(len + 1);
	if (!c->text) {
		rc = hc_error_set(HC_ENOMEM, "out of memory");
		goto out;
	}
	memcpy(c->text, text, len);
	c->text[len] = '\0';
	*out = c;
	c = NULL;
out:
	hc_checkpoint_free(c);
	return rc;
}

/* Extension lines: UTF-8 text, each line non-empty and ending in "\n". */
static int check_extensions(const char *ext, size_t n)
{
	int rc;

	rc = check_text(ext, n, "extension");
	if (rc < 0)
		return rc;
	if (ext[n - 1] != '\n')
		return hc_error_set(HC_EINVAL,
				    "extension lines must end with a newline");
	if (ext[0] == '\n' || memmem(ext, n, "\n\n", 2))
		return hc_error_set(HC_EINVAL,
				    "extension lines must not be empty");
	return 0;
}

int hc_checkpoint_sign(hc_checkpoint **out, const char *origin, uint64_t size,
		       const uint8_t root[HC_HASH_LEN], const char *extensions,
		       const hc_key *key)
{
	char root_b64[ROOT_B64_LEN + 1],
		sig_b64[4 * ((4 + SIG_LEN + 2) / 3) + 1];
	uint8_t sig[4 + SIG_LEN];
	const char *name;
	char *text = NULL;
	size_t origin_len, ext_len, name_len, body_len, sig_b64_len, len;
	uint32_t id;
	int rc, n;

	if (!out || !origin || !root || !key)
		return hc_error_set(HC_EINVAL, "bad arguments to sign a "
					       "checkpoint");
	if (!hc_key_has_private(key))
		return hc_error_set(HC_EINVAL,
				    "key '%s' has no private part to sign with",
				    hc_key_name(key));
	origin_len = strlen(origin);
	ext_len = extensions ? strlen(extensions) : 0;
	name = hc_key_name(key);
	name_len = strlen(name);
	if (origin_len == 0)
		return hc_error_set(HC_EINVAL, "checkpoint origin is empty");
	if (origin_len > NOTE_MAX || ext_len > NOTE_MAX)
		return hc_error_set(HC_EINVAL, "checkpoint is too large");
	if (memchr(origin, '\n', origin_len))
		return hc_error_set(HC_EINVAL,
				    "checkpoint origin contains a newline");
	rc = check_text(origin, origin_len, "origin");
	if (rc < 0)
		return hc_error_set(HC_EINVAL, "checkpoint origin is not "
					       "UTF-8 text without control "
					       "characters");
	if (ext_len) {
		rc = check_extensions(extensions, ext_len);
		if (rc < 0)
			return rc == HC_EFORMAT ? HC_EINVAL : rc;
	}

	EVP_EncodeBlock((unsigned char *)root_b64, root, HC_HASH_LEN);
	sig_b64_len = sizeof(sig_b64) - 1;
	/* origin, 20 digits, root, extensions, with their newlines */
	body_len = origin_len + 1 + 20 + 1 + ROOT_B64_LEN + 1 + ext_len;
	len = body_len + 1 + SIG_PREFIX_LEN + name_len + 1 + sig_b64_len + 1;
	text = malloc(len + 1);
	if (!text)
		return hc_error_set(HC_ENOMEM, "out of memory");
	n = snprintf(text, len + 1, "%s\n%" PRIu64 "\n%s\n%s", origin, size,
		     root_b64, ext_len ? extensions : "");
	if (n < 0 || (size_t)n > body_len) {
		rc = hc_error_set(HC_EINVAL, "cannot format checkpoint");
		goto out;
	}
	body_len = (size_t)n;

	id = hc_key_id(key);
	sig[0] = (uint8_t)(id >> 24);
	sig[1] = (uint8_t)(id >> 16);
	sig[2] = (uint8_t)(id >> 8);
	sig[3] = (uint8_t)id;
	rc = hc_key_sign(key, text, body_len, sig + 4);
	if (rc < 0)
		goto out;
	EVP_EncodeBlock((unsigned char *)sig_b64, sig, sizeof(sig));

	len = body_len;
	text[len++] = '\n';
	memcpy(text + len, sig_prefix, SIG_PREFIX_LEN);
	len += SIG_PREFIX_LEN;
	memcpy(text + len, name, name_len);
	len += name_len;
	text[len++] = ' ';
	memcpy(text + len, sig_b64, sig_b64_len);
	len += sig_b64_len;
	text[len++] = '\n';
	text[len] = '\0';
	if (len > NOTE_MAX) {
		rc = hc_error_set(HC_EINVAL,
				  "checkpoint is too large (%zu bytes, at most "
				  "%u)",
				  len, NOTE_MAX);
		goto out;
	}
	/* Read back what was written: what we sign is what we accept. */
	rc = hc_checkpoint_parse(out, text, len, key);
out:
	free(text);
	return rc;
}

void hc_checkpoint_free(hc_checkpoint *c)
{
	if (!c)
		return;
	free(c->origin);
	free(c->extensions);
	free(c->text);
	free(c);
}
