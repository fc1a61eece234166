/*
 * test_checkpoint.c - C2SP tlog-checkpoints in signed notes: round trips,
 * a published checkpoint, and forgeries that must fail.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "hashchain.h"
#include "tap.h"

/*
 * A checkpoint of the Go checksum database, "retrieved from
 * https://sum.golang.org/latest, 2024-09-23", as published in the tests of
 * sigsum-go (https://github.com/sigsum/sigsum-go,
 * pkg/checkpoint/checkpoint_test.go, TestGoSumDBCheckpoint), and the
 * sum.golang.org verifier key as the Go command embeds it
 * (https://github.com/golang/go, src/cmd/go/internal/modfetch/key.go).
 */
static const char sumdb_vkey[] =
	"sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
static const char sumdb_checkpoint[] =
	"go.sum database tree\n"
	"30055305\n"
	"mXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=\n"
	"\n"
	"\xe2\x80\x94 sum.golang.org "
	"Az3grpgEild5qw7+5dtV13Kf1C2Xurm8q4fhdxvcsDHn"
	"qNTaxL2AFjBY+2TyGKevucFcAAlWFJJYle3EJlDCrQ+y3A8=\n";
static const char sumdb_root_b64[] =
	"mXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=";

/*
 * A signed note that is not a checkpoint, from golang.org/x/mod/sumdb/note
 * (https://github.com/golang/mod, sumdb/note/note.go).
 */
static const char peter_vkey[] =
	"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
static const char peter_note[] =
	"If you think cryptography is the answer to your problem,\n"
	"then you don't know what your problem is.\n"
	"\n"
	"\xe2\x80\x94 PeterNeumann "
	"x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInN"
	"IuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

#define EM "\xe2\x80\x94 "

static hc_key *key, *key2, *other;
static uint8_t root[HC_HASH_LEN];

/* Parse text with k; the result code, *out untouched on failure. */
static int parse_with(const char *text, size_t len, const hc_key *k)
{
	static hc_checkpoint sentinel;
	hc_checkpoint *c = &sentinel;
	int rc = hc_checkpoint_parse(&c, text, len, k);

	if (rc == 0) {
		hc_checkpoint_free(c);
	} else if (c != &sentinel) {
		diag("output changed on failure");
		return 1;
	}
	return rc;
}

static int parse(const char *text)
{
	return parse_with(text, strlen(text), key);
}

/* text with the first occurrence of from replaced by to (malloc'd). */
static char *replace(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	size_t n = strlen(text) - strlen(from) + strlen(to) + 1;
	char *s;

	if (!at)
		return NULL;
	s = malloc(n);
	if (!s)
		return NULL;
	snprintf(s, n, "%.*s%s%s", (int)(at - text), text, to,
		 at + strlen(from));
	return s;
}

/* Check parse(replace(text, from, to)) == want. */
static void forged(const char *text, const char *from, const char *to, int want,
		   const char *what)
{
	char *s = replace(text, from, to);

	ok(s && parse(s) == want, "%s: %s", what,
	   s ? hc_error_message() : "replace failed");
	free(s);
}

/*
 * The signature line's base64 of text (*b64) decoded into raw (68 bytes
 * and a byte of padding).
 */
static int sig_of(const char *text, uint8_t raw[70], const char **b64)
{
	const char *p = strstr(text, "\n\n" EM);
	int r;

	if (!p)
		return -1;
	p = strchr(p + 2 + strlen(EM), ' ') + 1;
	*b64 = p;
	r = EVP_DecodeBlock(raw, (const unsigned char *)p, 92);
	return r == 69 ? 0 : -1; /* 68 bytes and one byte of padding */
}

/* The text with the signature line replaced by base64 of raw. */
static char *resign(const char *text, const uint8_t raw[68])
{
	char b64[93], old[93];
	const char *p;
	uint8_t tmp[70];

	if (sig_of(text, tmp, &p) < 0)
		return NULL;
	memcpy(old, p, 92);
	old[92] = '\0';
	EVP_EncodeBlock((unsigned char *)b64, raw, 68);
	return replace(text, old, b64);
}

/* n bytes (a multiple of 64) of extension lines. */
static char *make_lines(size_t n)
{
	char *s = malloc(n + 1);
	size_t i;

	if (!s)
		return NULL;
	for (i = 0; i < n; i++)
		s[i] = i % 64 == 63 ? '\n' : 'x';
	s[n] = '\0';
	return s;
}

static void test_round_trip(void)
{
	hc_checkpoint *c = NULL, *d = NULL;
	char want[512], b64[45];
	int n;

	ok(hc_checkpoint_sign(&c, "example.com/hozen", 42, root, NULL, key) ==
		   0,
	   "sign a checkpoint");
	if (!c)
		return;
	EVP_EncodeBlock((unsigned char *)b64, root, 32);
	n = snprintf(want, sizeof(want),
		     "example.com/hozen\n42\n%s\n\n" EM "example.com/hozen ",
		     b64);
	ok(n > 0 && strncmp(c->text, want, (size_t)n) == 0 &&
		   strlen(c->text) == (size_t)n + 92 + 1 &&
		   c->text[strlen(c->text) - 1] == '\n',
	   "text is the C2SP checkpoint layout");
	ok(strcmp(c->origin, "example.com/hozen") == 0 && c->size == 42 &&
		   memcmp(c->root, root, 32) == 0 && c->extensions == NULL,
	   "fields filled");
	ok(hc_checkpoint_parse(&d, c->text, strlen(c->text), key) == 0,
	   "parse it back");
	ok(d && strcmp(d->origin, c->origin) == 0 && d->size == 42 &&
		   memcmp(d->root, root, 32) == 0 && !d->extensions &&
		   strcmp(d->text, c->text) == 0,
	   "same fields and text");
	hc_checkpoint_free(d);
	d = NULL;
	ok(parse_with(c->text, strlen(c->text), other) == HC_EVERIFY &&
		   strstr(hc_error_message(), "no valid signature by key '"),
	   "wrong key (other name): %s", hc_error_message());
	ok(parse_with(c->text, strlen(c->text), key2) == HC_EVERIFY,
	   "wrong key (same name, other key): %s", hc_error_message());
	hc_checkpoint_free(c);
	c = NULL;

	ok(hc_checkpoint_sign(&c, "o", 0, root, "", key) == 0 && c &&
		   c->size == 0 && !c->extensions,
	   "size 0, empty extensions as none");
	hc_checkpoint_free(c);
	c = NULL;
	ok(hc_checkpoint_sign(&c, "origin with spaces \xc3\xa9", UINT64_MAX,
			      root, "ext one\nsecond \xe2\x9c\x93\n",
			      key) == 0 &&
		   c && c->size == UINT64_MAX &&
		   strcmp(c->extensions, "ext one\nsecond \xe2\x9c\x93\n") ==
			   0 &&
		   strstr(c->text, "\n18446744073709551615\n"),
	   "largest size, UTF-8 origin, extension lines");
	if (c) {
		ok(hc_checkpoint_parse(&d, c->text, strlen(c->text), key) ==
				   0 &&
			   strcmp(d->extensions, c->extensions) == 0,
		   "extension lines parse back");
		hc_checkpoint_free(d);
	}
	hc_checkpoint_free(c);
	hc_checkpoint_free(NULL);
}

static void test_sign_arguments(void)
{
	hc_checkpoint *c = NULL;
	hc_key *pub = NULL;

	ok(hc_checkpoint_sign(&c, "", 1, root, NULL, key) == HC_EINVAL,
	   "empty origin refused");
	ok(hc_checkpoint_sign(&c, "a\nb", 1, root, NULL, key) == HC_EINVAL,
	   "origin with newline refused");
	ok(hc_checkpoint_sign(&c, "a\rb", 1, root, NULL, key) == HC_EINVAL,
	   "origin with CR refused");
	ok(hc_checkpoint_sign(&c, "o", 1, root, "ext", key) == HC_EINVAL,
	   "extension without final newline refused");
	ok(hc_checkpoint_sign(&c, "o", 1, root, "a\n\nb\n", key) == HC_EINVAL,
	   "empty extension line refused");
	ok(hc_checkpoint_sign(&c, "o", 1, root, "\n", key) == HC_EINVAL,
	   "extension of one empty line refused");
	ok(hc_key_parse_vkey(&pub, hc_key_vkey(key)) == 0 &&
		   hc_checkpoint_sign(&c, "o", 1, root, NULL, pub) == HC_EINVAL,
	   "public-only key cannot sign");
	ok(c == NULL, "output untouched on failure");
	hc_key_free(pub);
}

static void test_published(void)
{
	hc_key *sumdb = NULL, *peter = NULL;
	hc_checkpoint *c = NULL;
	uint8_t want[33];
	char *s;

	ok(hc_key_parse_vkey(&sumdb, sumdb_vkey) == 0 &&
		   hc_key_id(sumdb) == 0x033de0ae,
	   "sum.golang.org vkey parses, key id 033de0ae");
	if (!sumdb)
		return;
	ok(hc_checkpoint_parse(&c, sumdb_checkpoint, strlen(sumdb_checkpoint),
			       sumdb) == 0,
	   "published sum.golang.org checkpoint verifies");
	ok(EVP_DecodeBlock(want, (const unsigned char *)sumdb_root_b64, 44) ==
		   33,
	   "decode published root");
	ok(c && strcmp(c->origin, "go.sum database tree") == 0 &&
		   c->size == 30055305 && memcmp(c->root, want, 32) == 0 &&
		   !c->extensions,
	   "its origin, size and root");
	hc_checkpoint_free(c);
	ok(parse_with(sumdb_checkpoint, strlen(sumdb_checkpoint), key) ==
		   HC_EVERIFY,
	   "it is not signed by our key");

	s = replace(sumdb_checkpoint, "30055305", "30055306");
	ok(s && parse_with(s, strlen(s), sumdb) == HC_EVERIFY,
	   "published checkpoint with size + 1 fails: %s", hc_error_message());
	free(s);
	s = replace(sumdb_checkpoint, "mXfg", "mXfh");
	ok(s && parse_with(s, strlen(s), sumdb) == HC_EVERIFY,
	   "published checkpoint with another root fails");
	free(s);
	s = replace(sumdb_checkpoint, "go.sum", "go.Sum");
	ok(s && parse_with(s, strlen(s), sumdb) == HC_EVERIFY,
	   "published checkpoint with another origin fails");
	free(s);

	ok(hc_key_parse_vkey(&peter, peter_vkey) == 0 &&
		   parse_with(peter_note, strlen(peter_note), peter) ==
			   HC_EFORMAT,
	   "a signed note that is not a checkpoint: %s", hc_error_message());
	hc_key_free(peter);
	hc_key_free(sumdb);
}

static void test_forgeries(void)
{
	hc_checkpoint *c = NULL, *c2 = NULL, *cx = NULL;
	uint8_t raw[70];
	const char *b64, *sigline2;
	char *s, *t;
	char rootb64[45], root2[45];
	size_t i, n;

	if (hc_checkpoint_sign(&c, "example.com/hozen", 42, root,
			       "ext-a\next-b\n", key) < 0)
		return;
	if (hc_checkpoint_sign(&c2, "example.com/hozen", 42, root,
			       "ext-a\next-b\n", key2) < 0)
		return;
	ok(parse(c->text) == 0, "the genuine note verifies");

	forged(c->text, "example.com/hozen\n", "example.com/hozeN\n",
	       HC_EVERIFY, "altered origin");
	forged(c->text, "\n42\n", "\n43\n", HC_EVERIFY, "altered size");
	forged(c->text, "\n42\n", "\n420\n", HC_EVERIFY, "extended size");
	EVP_EncodeBlock((unsigned char *)rootb64, root, 32);
	memcpy(root2, rootb64, sizeof(root2));
	root2[5] = root2[5] == 'A' ? 'B' : 'A';
	forged(c->text, rootb64, root2, HC_EVERIFY, "altered root");
	forged(c->text, "ext-a\n", "ext-A\n", HC_EVERIFY, "altered extension");
	forged(c->text, "ext-b\n", "", HC_EVERIFY, "dropped extension");
	forged(c->text, "ext-b\n", "ext-b\next-c\n", HC_EVERIFY,
	       "added extension");

	ok(sig_of(c->text, raw, &b64) == 0, "decode the signature line");
	raw[4 + 10] ^= 0x01;
	s = resign(c->text, raw);
	ok(s && parse(s) == HC_EVERIFY &&
		   strstr(hc_error_message(), "does not verify"),
	   "altered signature byte: %s", hc_error_message());
	free(s);
	raw[4 + 10] ^= 0x01;
	raw[67] ^= 0x80;
	s = resign(c->text, raw);
	ok(s && parse(s) == HC_EVERIFY, "altered last signature byte");
	free(s);
	raw[67] ^= 0x80;
	raw[1] ^= 0x01;
	s = resign(c->text, raw);
	ok(s && parse(s) == HC_EVERIFY &&
		   strstr(hc_error_message(), "no valid signature by key"),
	   "altered key id (signature ignored): %s", hc_error_message());
	free(s);
	raw[1] ^= 0x01;
	s = resign(c->text, raw);
	ok(s && parse(s) == 0, "re-encoding the genuine signature verifies");
	free(s);

	forged(c->text, EM "example.com/hozen ", EM "example.com/hozeN ",
	       HC_EVERIFY, "signature under another key name");
	ok(parse_with(c->text, strlen(c->text), key2) == HC_EVERIFY,
	   "wrong key");
	ok(parse(c2->text) == HC_EVERIFY,
	   "signature by a different key only: %s", hc_error_message());

	/* Both signatures: ours is found, the unknown one ignored. */
	sigline2 = strstr(c2->text, "\n\n") + 2;
	n = strlen(c->text) + strlen(sigline2) + 1;
	s = malloc(n);
	t = malloc(n);
	if (s && t) {
		snprintf(s, n, "%s%s", c->text, sigline2);
		ok(parse(s) == 0, "extra signature by an unknown key ignored");
		ok(parse_with(s, strlen(s), key2) == 0, "and it verifies too");
		snprintf(t, n, "%.*s%s%s",
			 (int)(strstr(c->text, "\n\n") + 2 - c->text), c->text,
			 sigline2, strstr(c->text, "\n\n") + 2);
		ok(parse(t) == 0, "unknown signature first, ours second");
	}
	free(t);
	free(s);

	/* A second line by our key that does not verify rejects the note. */
	raw[30] ^= 0x04;
	s = resign(c->text, raw);
	raw[30] ^= 0x04;
	if (s) {
		const char *bad = strstr(s, "\n\n") + 2;

		n = strlen(c->text) + strlen(bad) + 1;
		t = malloc(n);
		if (t) {
			snprintf(t, n, "%s%s", c->text, bad);
			ok(parse(t) == HC_EVERIFY,
			   "a failing signature by our key rejects the note "
			   "even beside a good one: %s",
			   hc_error_message());
		}
		free(t);
	}
	free(s);

	/* Framing. */
	forged(c->text, "ext-b\n\n", "ext-b\n", HC_EFORMAT,
	       "missing blank line");
	forged(c->text, "ext-b\n\n", "ext-b\n\n\n", HC_EFORMAT,
	       "two blank lines (an empty extension line)");
	forged(c->text, "\n42\n", "\n\n42\n", HC_EFORMAT,
	       "blank line in the body");
	n = strlen(c->text) + 32;
	s = malloc(n);
	if (s) {
		snprintf(s, n, "%sgarbage\n", c->text);
		ok(parse(s) == HC_EFORMAT, "trailing garbage line: %s",
		   hc_error_message());
		snprintf(s, n, "%sgarbage", c->text);
		ok(parse(s) == HC_EFORMAT, "trailing garbage without newline");
		snprintf(s, n, "%s\n", c->text);
		ok(parse(s) == HC_EFORMAT, "trailing blank line: %s",
		   hc_error_message());
		snprintf(s, n, "%s", c->text);
		s[strlen(s) - 1] = '\0';
		ok(parse(s) == HC_EFORMAT, "missing final newline: %s",
		   hc_error_message());
		snprintf(s, n, "%s", c->text);
		ok(parse_with(s, strlen(s) + 1, key) == HC_EFORMAT,
		   "a NUL byte after the note: %s", hc_error_message());
		free(s);
	}
	n = 2 * strlen(c->text) + 1;
	s = malloc(n);
	if (s) {
		for (i = 0, t = s; c->text[i]; i++) {
			if (c->text[i] == '\n')
				*t++ = '\r';
			*t++ = c->text[i];
		}
		*t = '\0';
		ok(parse(s) == HC_EFORMAT, "CRLF line endings: %s",
		   hc_error_message());
		free(s);
	}
	forged(c->text, "ext-b", "ext\rb", HC_EFORMAT, "CR inside a line");
	forged(c->text, "ext-b", "ext\tb", HC_EFORMAT, "tab inside a line");
	forged(c->text, "ext-b",
	       "ext\xff"
	       "b",
	       HC_EFORMAT, "invalid UTF-8");
	forged(c->text, "ext-b",
	       "ext\xc0\xaf"
	       "b",
	       HC_EFORMAT, "overlong UTF-8");
	forged(c->text, "ext-b",
	       "ext\xed\xa0\x80"
	       "b",
	       HC_EFORMAT, "UTF-8 surrogate");
	forged(c->text, "ext-b", "ext\xe2\x80", HC_EFORMAT, "truncated UTF-8");
	n = strlen(c->text);
	s = strdup(c->text);
	if (s) {
		s[3] = '\0';
		ok(parse_with(s, n, key) == HC_EFORMAT, "NUL byte inside: %s",
		   hc_error_message());
		free(s);
	}

	/* The body's lines. */
	forged(c->text, "example.com/hozen\n42", "\n42", HC_EFORMAT,
	       "empty origin");
	forged(c->text, "\n42\n", "\n042\n", HC_EFORMAT, "leading zero");
	forged(c->text, "\n42\n", "\n00\n", HC_EFORMAT, "size 00");
	forged(c->text, "\n42\n", "\n-1\n", HC_EFORMAT, "negative size");
	forged(c->text, "\n42\n", "\n+42\n", HC_EFORMAT, "size with sign");
	forged(c->text, "\n42\n", "\n 42\n", HC_EFORMAT, "size with space");
	forged(c->text, "\n42\n", "\n4a\n", HC_EFORMAT, "hex size");
	forged(c->text, "\n42\n", "\n\n", HC_EFORMAT, "empty size");
	forged(c->text, "\n42\n", "\n18446744073709551616\n", HC_EFORMAT,
	       "size 2^64 overflows");
	forged(c->text, "\n42\n", "\n99999999999999999999999\n", HC_EFORMAT,
	       "long size overflows");
	forged(c->text, "\n42\n", "\n18446744073709551615\n", HC_EVERIFY,
	       "size 2^64-1 is well-formed (but not signed)");
	memcpy(root2, rootb64, sizeof(root2));
	root2[43] = '\0';
	forged(c->text, rootb64, root2, HC_EFORMAT, "root without padding");
	forged(c->text, rootb64, "AAAA", HC_EFORMAT, "root of 3 bytes");
	forged(c->text, rootb64,
	       "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", HC_EFORMAT,
	       "root of 36 bytes");
	forged(c->text, rootb64,
	       "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", HC_EFORMAT,
	       "root of 31 bytes");
	forged(c->text, rootb64,
	       "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=", HC_EFORMAT,
	       "non-canonical root (trailing bits)");
	forged(c->text, rootb64,
	       "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-=", HC_EFORMAT,
	       "root in URL-safe base64");
	forged(c->text, rootb64,
	       "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA AA=", HC_EFORMAT,
	       "root with a space");
	ok(parse("o\n42\n\n" EM "example.com/hozen AAAAAAAA\n") == HC_EFORMAT,
	   "missing root line: %s", hc_error_message());
	ok(parse("o\n\n" EM "example.com/hozen AAAAAAAA\n") == HC_EFORMAT,
	   "missing size line: %s", hc_error_message());

	/* Signature lines. */
	forged(c->text, EM "example", "-- example", HC_EFORMAT,
	       "ASCII dashes for the em dash");
	forged(c->text, EM "example",
	       "\xe2\x80\x94"
	       "example",
	       HC_EFORMAT, "no space after the em dash");
	forged(c->text, EM "example", "\xe2\x80\x93 example", HC_EFORMAT,
	       "en dash");
	forged(c->text, "example.com/hozen ", "example.com/hozen  ", HC_EFORMAT,
	       "two spaces after the name");
	forged(c->text, EM "example.com/hozen ", EM "a+b ", HC_EFORMAT,
	       "'+' in a signature's key name");
	forged(c->text, EM "example.com/hozen ", EM " ", HC_EFORMAT,
	       "empty key name");
	ok(sig_of(c->text, raw, &b64) == 0, "decode the signature again");
	forged(c->text, b64, "AAAA\n", HC_EFORMAT, "signature of 3 bytes");
	forged(c->text, b64, "AAAAAA==\n", HC_EFORMAT,
	       "signature of 4 bytes (only a key id)");
	forged(c->text, b64, "\n", HC_EFORMAT, "empty signature");
	s = strdup(c->text);
	if (s) {
		n = strlen(s);
		s[n - 2] = '\n'; /* drop the signature's final '=' */
		s[n - 1] = '\0';
		ok(parse(s) == HC_EFORMAT, "signature without padding");
		free(s);
	}

	/* Signature counts. */
	n = strlen(c->text) + 101 * (strlen(sigline2) + 1);
	s = malloc(n);
	if (s) {
		size_t len = (size_t)(strstr(c->text, "\n\n") + 2 - c->text);

		memcpy(s, c->text, len);
		for (i = 0; i < 99; i++) {
			memcpy(s + len, sigline2, strlen(sigline2));
			len += strlen(sigline2);
		}
		strcpy(s + len, strstr(c->text, "\n\n") + 2);
		ok(parse(s) == 0, "100 signature lines accepted");
		len += strlen(s + len);
		memcpy(s + len, sigline2, strlen(sigline2) + 1);
		ok(parse(s) == HC_EFORMAT, "101 signature lines refused: %s",
		   hc_error_message());
		free(s);
	}

	/* Size limits. */
	n = (1u << 20) + 1;
	s = malloc(n + 1);
	if (s) {
		memset(s, 'a', n);
		s[n] = '\0';
		memcpy(s, c->text, strlen(c->text));
		s[n - 1] = '\n';
		ok(parse_with(s, n, key) == HC_EFORMAT &&
			   strstr(hc_error_message(), "too large"),
		   "huge note refused: %s", hc_error_message());
		free(s);
	}
	s = make_lines(900 * 1024);
	ok(s && hc_checkpoint_sign(&cx, "o", 7, root, s, key) == 0 && cx &&
		   strlen(cx->extensions) == 900 * 1024,
	   "a large (900 KiB) note signs and parses");
	hc_checkpoint_free(cx);
	cx = NULL;
	free(s);
	s = make_lines((1u << 20) - 64);
	ok(s && hc_checkpoint_sign(&cx, "o", 7, root, s, key) == HC_EINVAL &&
		   !cx,
	   "a note over 1 MiB is not signed: %s", hc_error_message());
	free(s);

	hc_checkpoint_free(c2);
	hc_checkpoint_free(c);
}

int main(void)
{
	size_t i;

	for (i = 0; i < sizeof(root); i++)
		root[i] = (uint8_t)(i * 7 + 1);
	if (hc_key_generate(&key, "example.com/hozen") < 0 ||
	    hc_key_generate(&key2, "example.com/hozen") < 0 ||
	    hc_key_generate(&other, "example.com/other") < 0) {
		printf("Bail out! key generation: %s\n", hc_error_message());
		return 1;
	}
	test_round_trip();
	test_sign_arguments();
	test_published();
	test_forgeries();
	hc_key_free(other);
	hc_key_free(key2);
	hc_key_free(key);
	return tap_done();
}
