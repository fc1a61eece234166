/*
 * test_keys.c - Ed25519 keys, signed-note key ids and verifier keys, PEM
 * files.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "hashchain.h"
#include "tap.h"

/*
 * Published vectors from the golang.org/x/mod/sumdb/note package
 * documentation and tests (sumdb/note/note.go, note_test.go in
 * https://github.com/golang/mod): the "PeterNeumann" signer and verifier
 * keys, a note it signed, and the "EnochRoot" verifier key.
 */
static const char peter_vkey[] =
	"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
/* The skey is "PRIVATE+KEY+PeterNeumann+c74f20a3+" followed by this. */
static const char peter_skey_b64[] =
	"AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
static const char peter_text[] =
	"If you think cryptography is the answer to your problem,\n"
	"then you don't know what your problem is.\n";
static const char peter_sig_b64[] = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcE"
				    "lZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6K"
				    "E6RyyBwJnAM=";
static const char enoch_vkey[] =
	"EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";

static char dir[] = "/tmp/hozen-test-keys-XXXXXX";

static char *path_in(const char *name)
{
	static char buf[4][256];
	static int i;
	char *p = buf[i++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static int write_file(const char *path, const void *buf, size_t len,
		      mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	int rc = 0;

	if (fd < 0)
		return -1;
	if (write(fd, buf, len) != (ssize_t)len)
		rc = -1;
	if (fchmod(fd, mode) < 0)
		rc = -1;
	close(fd);
	return rc;
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return (mode_t)-1;
	return st.st_mode & 07777;
}

/* Decode base64 with OpenSSL; returns the length or -1. */
static int b64(const char *s, uint8_t *out, size_t cap)
{
	size_t n = strlen(s);
	int pad = (n > 0 && s[n - 1] == '=') + (n > 1 && s[n - 2] == '=');
	int r;

	if (n / 4 * 3 > cap)
		return -1;
	r = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
	return r < 0 ? -1 : r - pad;
}

/* Write pkey as an unencrypted PKCS#8 PEM private key to path. */
static int write_private_pem(EVP_PKEY *pkey, const char *path, mode_t mode)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int rc = -1;

	if (bio && PEM_write_bio_PKCS8PrivateKey(bio, pkey, NULL, NULL, 0, NULL,
						 NULL)) {
		len = BIO_get_mem_data(bio, &data);
		rc = write_file(path, data, (size_t)len, mode);
	}
	BIO_free(bio);
	return rc;
}

static int write_public_pem(EVP_PKEY *pkey, const char *path)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int rc = -1;

	if (bio && PEM_write_bio_PUBKEY(bio, pkey)) {
		len = BIO_get_mem_data(bio, &data);
		rc = write_file(path, data, (size_t)len, 0644);
	}
	BIO_free(bio);
	return rc;
}

static void test_generate_sign_verify(void)
{
	hc_key *k = NULL, *v = NULL, *other = NULL;
	const char msg[] = "evidence\n";
	uint8_t sig[64];
	char hex[9];
	const char *vkey;

	ok(hc_key_generate(&k, "example.com/hozen") == 0, "generate a key");
	if (!k)
		return;
	ok(hc_key_has_private(k), "generated key has a private part");
	ok(strcmp(hc_key_name(k), "example.com/hozen") == 0, "key name kept");
	vkey = hc_key_vkey(k);
	snprintf(hex, sizeof(hex), "%08x", (unsigned)hc_key_id(k));
	ok(strncmp(vkey, "example.com/hozen+", 18) == 0 &&
		   strncmp(vkey + 18, hex, 8) == 0 && vkey[26] == '+' &&
		   strlen(vkey) == 27 + 44,
	   "vkey is NAME+KEYID+BASE64: %s", vkey);

	ok(hc_key_sign(k, msg, strlen(msg), sig) == 0, "sign");
	ok(hc_key_verify(k, msg, strlen(msg), sig) == 0, "verify");
	ok(hc_key_verify(k, "evidencE\n", 9, sig) == HC_EVERIFY,
	   "tampered message fails: %s", hc_error_message());
	sig[17] ^= 0x01;
	ok(hc_key_verify(k, msg, strlen(msg), sig) == HC_EVERIFY,
	   "tampered signature fails");
	sig[17] ^= 0x01;
	ok(hc_key_sign(k, "", 0, sig) == 0 && hc_key_verify(k, "", 0, sig) == 0,
	   "empty message signs and verifies");

	ok(hc_key_parse_vkey(&v, vkey) == 0, "vkey parses back");
	ok(v && hc_key_equal_public(k, v), "vkey round trip: same public key");
	ok(v && !hc_key_has_private(v), "parsed vkey has no private part");
	ok(v && hc_key_id(v) == hc_key_id(k), "same key id");
	ok(v && strcmp(hc_key_vkey(v), vkey) == 0, "same vkey string");
	ok(v && memcmp(hc_key_public_raw(v), hc_key_public_raw(k), 32) == 0,
	   "same raw public key");
	ok(v && hc_key_verify(v, msg, strlen(msg), sig) == HC_EVERIFY,
	   "public key rejects the signature of another message");
	ok(hc_key_sign(k, msg, strlen(msg), sig) == 0 && v &&
		   hc_key_verify(v, msg, strlen(msg), sig) == 0,
	   "public key verifies the private key's signature");
	ok(v && hc_key_sign(v, msg, strlen(msg), sig) == HC_EINVAL,
	   "public-only key cannot sign");

	ok(hc_key_generate(&other, "example.com/hozen") == 0 &&
		   !hc_key_equal_public(k, other),
	   "another key with the same name differs");
	ok(other && hc_key_verify(other, msg, strlen(msg), sig) == HC_EVERIFY,
	   "another key rejects the signature");

	hc_key_free(other);
	hc_key_free(v);
	hc_key_free(k);
	hc_key_free(NULL);
}

static void test_names(void)
{
	static const char *const bad[] = {
		"",
		"a b",
		"a+b",
		"a\tb",
		"a\nb",
		"a\xc2\xa0"
		"b", /* U+00A0 no-break space */
		"a\xe2\x80\x83"
		"b", /* U+2003 em space */
		"a\xe3\x80\x80"
		"b", /* U+3000 ideographic space */
		"a\x01"
		"b",		/* control character */
		"\xff",		/* not UTF-8 */
		"\xc0\xae",	/* overlong */
		"\xed\xa0\x80", /* surrogate */
	};
	hc_key *k = NULL;
	char *longname;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		k = NULL;
		ok(hc_key_generate(&k, bad[i]) == HC_EINVAL && !k,
		   "invalid key name %zu refused", i);
	}
	ok(hc_key_generate(&k, NULL) == HC_EINVAL, "NULL name refused");
	ok(hc_key_generate(&k, "h\xc3\xb6zen.example/caf\xc3\xa9") == 0,
	   "UTF-8 key name accepted");
	hc_key_free(k);
	longname = malloc(2000);
	if (longname) {
		memset(longname, 'a', 1999);
		longname[1999] = '\0';
		k = NULL;
		ok(hc_key_generate(&k, longname) == HC_EINVAL && !k,
		   "overlong key name refused");
		free(longname);
	}
}

static void test_published_vkeys(void)
{
	hc_key *peter = NULL, *enoch = NULL, *k = NULL;
	uint8_t sig[128];
	char b[sizeof(peter_vkey)];
	size_t i, j, accepted = 0;
	int n;

	ok(hc_key_parse_vkey(&peter, peter_vkey) == 0,
	   "published PeterNeumann vkey parses");
	if (!peter)
		return;
	ok(hc_key_id(peter) == 0xc74f20a3, "PeterNeumann key id c74f20a3");
	ok(strcmp(hc_key_name(peter), "PeterNeumann") == 0, "name");
	ok(strcmp(hc_key_vkey(peter), peter_vkey) == 0,
	   "vkey formats back identically");

	n = b64(peter_sig_b64, sig, sizeof(sig));
	ok(n == 68 && sig[0] == 0xc7 && sig[1] == 0x4f && sig[2] == 0x20 &&
		   sig[3] == 0xa3,
	   "published signature starts with the key id");
	ok(n == 68 && hc_key_verify(peter, peter_text, strlen(peter_text),
				    sig + 4) == 0,
	   "published PeterNeumann signature verifies");
	ok(n == 68 && hc_key_verify(peter, peter_text, strlen(peter_text) - 1,
				    sig + 4) == HC_EVERIFY,
	   "published signature fails without the final newline");

	ok(hc_key_parse_vkey(&enoch, enoch_vkey) == 0 && enoch &&
		   hc_key_id(enoch) == 0xaf0cfe78,
	   "published EnochRoot vkey parses, key id af0cfe78");
	ok(enoch && !hc_key_equal_public(peter, enoch), "keys differ");
	ok(n == 68 && enoch &&
		   hc_key_verify(enoch, peter_text, strlen(peter_text),
				 sig + 4) == HC_EVERIFY,
	   "EnochRoot does not verify PeterNeumann's signature");

	/* From note_test.go: manglings with adjusted key hashes. */
	k = NULL;
	ok(hc_key_parse_vkey(&k,
			     "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqi"
			     "BfsVkmqq/LDE4izWy10TWBADKEY==") == HC_EFORMAT &&
		   !k,
	   "wrong key length refused: %s", hc_error_message());
	ok(hc_key_parse_vkey(&k, "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqi"
				 "BfsVkmqq/LDE4izWy10TW") == HC_EFORMAT &&
		   !k,
	   "unknown algorithm refused: %s", hc_error_message());
	ok(hc_key_parse_vkey(&k, "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqi"
				 "BfsVkmqq/LDE4izWy10TW") == HC_EFORMAT &&
		   !k,
	   "wrong key id refused: %s", hc_error_message());
	ok(hc_key_parse_vkey(&k, "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqi"
				 "BfsVkmqq/LDE4izWy10TW\n") == HC_EFORMAT &&
		   !k,
	   "trailing newline refused (the string is exact)");
	ok(hc_key_parse_vkey(&k, "PeterNeumann+c74f20a3") == HC_EFORMAT,
	   "missing key data refused");
	ok(hc_key_parse_vkey(&k, "") == HC_EFORMAT, "empty vkey refused");

	/* As note_test.go: every other substring and every bumped byte. */
	for (i = 0; i <= strlen(peter_vkey); i++) {
		for (j = i + 1; j <= strlen(peter_vkey); j++) {
			if (i == 0 && j == strlen(peter_vkey))
				continue;
			memcpy(b, peter_vkey + i, j - i);
			b[j - i] = '\0';
			k = NULL;
			if (hc_key_parse_vkey(&k, b) == 0) {
				accepted++;
				hc_key_free(k);
			}
		}
	}
	for (i = 0; i < strlen(peter_vkey); i++) {
		memcpy(b, peter_vkey, sizeof(b));
		b[i]++;
		k = NULL;
		if (hc_key_parse_vkey(&k, b) == 0) {
			accepted++;
			hc_key_free(k);
		}
	}
	ok(accepted == 0,
	   "no substring or mangling of the vkey is accepted (%zu were)",
	   accepted);

	hc_key_free(enoch);
	hc_key_free(peter);
}

/*
 * The PeterNeumann signer key's seed, loaded through a PEM file, must give
 * the published vkey and (Ed25519 being deterministic) the published
 * signature.
 */
static void test_published_signer(void)
{
	EVP_PKEY *pkey = NULL;
	hc_key *k = NULL;
	uint8_t seed[40], sig[64], want[128];
	int n = b64(peter_skey_b64, seed, sizeof(seed));
	int m = b64(peter_sig_b64, want, sizeof(want));

	ok(n == 33 && seed[0] == 0x01, "published skey is 0x01 || seed");
	if (n != 33 || m != 68)
		return;
	pkey = EVP_PKEY_new_raw_private_key_ex(NULL, "ED25519", NULL, seed + 1,
					       32);
	ok(pkey && write_private_pem(pkey, path_in("peter.pem"), 0600) == 0,
	   "write the published seed as PEM");
	ok(hc_key_load_private(&k, path_in("peter.pem"), "PeterNeumann",
			       NULL) == 0,
	   "load it");
	ok(k && strcmp(hc_key_vkey(k), peter_vkey) == 0,
	   "its vkey is the published one");
	ok(k && hc_key_sign(k, peter_text, strlen(peter_text), sig) == 0 &&
		   memcmp(sig, want + 4, 64) == 0,
	   "signing the published text gives the published signature");
	hc_key_free(k);
	EVP_PKEY_free(pkey);
	OPENSSL_cleanse(seed, sizeof(seed));
}

static void test_private_files(void)
{
	hc_key *k = NULL, *l = NULL;
	const char msg[] = "m";
	uint8_t sig[64];
	char *buf = NULL;
	size_t len = 0;

	if (hc_key_generate(&k, "example.com/files") < 0)
		return;

	ok(hc_key_save_private(k, AT_FDCWD, path_in("plain.pem"), NULL) == 0,
	   "save private key without passphrase");
	ok(mode_of(path_in("plain.pem")) == 0400, "saved with mode 0400");
	ok(hc_read_file(AT_FDCWD, path_in("plain.pem"), 65536, &buf, &len) ==
			   0 &&
		   strstr(buf, "-----BEGIN PRIVATE KEY-----"),
	   "an unencrypted PKCS#8 PEM");
	free(buf);
	buf = NULL;
	ok(hc_key_save_private(k, AT_FDCWD, path_in("plain.pem"), NULL) ==
		   HC_EEXIST,
	   "saving again refuses to overwrite");
	ok(hc_key_load_private(&l, path_in("plain.pem"), "example.com/files",
			       NULL) == 0,
	   "load it back");
	ok(l && hc_key_equal_public(k, l) && hc_key_has_private(l),
	   "same key, with private part");
	ok(l && hc_key_sign(l, msg, 1, sig) == 0 &&
		   hc_key_verify(k, msg, 1, sig) == 0,
	   "loaded key signs for the original");
	hc_key_free(l);
	l = NULL;
	ok(hc_key_load_private(&l, path_in("plain.pem"), "a+b", NULL) ==
			   HC_EINVAL &&
		   !l,
	   "invalid name refused on load");

	ok(hc_key_save_private(k, AT_FDCWD, path_in("enc.pem"),
			       "correct horse") == 0,
	   "save private key with passphrase");
	ok(mode_of(path_in("enc.pem")) == 0400, "saved with mode 0400");
	ok(hc_read_file(AT_FDCWD, path_in("enc.pem"), 65536, &buf, &len) == 0 &&
		   strstr(buf, "-----BEGIN ENCRYPTED PRIVATE KEY-----"),
	   "an encrypted PKCS#8 PEM");
	free(buf);
	ok(hc_key_load_private(&l, path_in("enc.pem"), "example.com/files",
			       "correct horse") == 0 &&
		   hc_key_equal_public(k, l),
	   "load with the passphrase");
	hc_key_free(l);
	l = NULL;
	ok(hc_key_load_private(&l, path_in("enc.pem"), "example.com/files",
			       "battery staple") < 0 &&
		   !l,
	   "wrong passphrase fails: %s", hc_error_message());
	ok(hc_key_load_private(&l, path_in("enc.pem"), "example.com/files",
			       NULL) < 0 &&
		   !l && strstr(hc_error_message(), "passphrase"),
	   "no passphrase fails (no prompt): %s", hc_error_message());
	ok(hc_key_save_private(k, AT_FDCWD, path_in("empty.pem"), "") ==
		   HC_EINVAL,
	   "empty passphrase refused");

	ok(chmod(path_in("plain.pem"), 0644) == 0 &&
		   hc_key_load_private(&l, path_in("plain.pem"),
				       "example.com/files", NULL) < 0 &&
		   !l && strstr(hc_error_message(), "chmod go-rwx"),
	   "0644 private key refused: %s", hc_error_message());
	ok(chmod(path_in("plain.pem"), 0640) == 0 &&
		   hc_key_load_private(&l, path_in("plain.pem"),
				       "example.com/files", NULL) < 0,
	   "0640 private key refused");
	ok(chmod(path_in("plain.pem"), 0400) == 0 &&
		   hc_key_load_private(&l, path_in("plain.pem"),
				       "example.com/files", NULL) == 0,
	   "0400 private key accepted");
	hc_key_free(l);
	l = NULL;

	ok(symlink(path_in("enc.pem"), path_in("link.pem")) == 0 &&
		   hc_key_load_private(&l, path_in("link.pem"),
				       "example.com/files",
				       "correct horse") < 0 &&
		   !l,
	   "symlinked private key refused: %s", hc_error_message());
	ok(hc_key_load_private(&l, path_in("missing.pem"), "example.com/files",
			       NULL) == HC_ENOENT,
	   "missing key file: HC_ENOENT");
	ok(write_file(path_in("junk.pem"), "junk\n", 5, 0600) == 0 &&
		   hc_key_load_private(&l, path_in("junk.pem"),
				       "example.com/files", NULL) == HC_EFORMAT,
	   "junk file refused: %s", hc_error_message());

	l = NULL;
	ok(hc_key_parse_vkey(&l, hc_key_vkey(k)) == 0 &&
		   hc_key_save_private(l, AT_FDCWD, path_in("pub.pem"), NULL) ==
			   HC_EINVAL,
	   "cannot save the private part of a public key");
	hc_key_free(l);
	hc_key_free(k);
}

static void test_public_files(void)
{
	hc_key *k = NULL, *l = NULL;
	EVP_PKEY *ec = NULL;
	char *line;
	size_t n;

	if (hc_key_generate(&k, "example.com/pub") < 0)
		return;
	ok(hc_key_save_public_pem(k, AT_FDCWD, path_in("pub.pem")) == 0,
	   "save public PEM");
	ok(mode_of(path_in("pub.pem")) == 0400, "saved with mode 0400");
	ok(hc_key_load_public(&l, path_in("pub.pem"), "example.com/pub") == 0,
	   "load public PEM");
	ok(l && hc_key_equal_public(k, l) && !hc_key_has_private(l),
	   "same public key, no private part");
	hc_key_free(l);
	l = NULL;
	ok(hc_key_load_public(&l, path_in("pub.pem"), NULL) == 0 && l &&
		   !hc_key_is_named(l) && hc_key_equal_public(k, l),
	   "a PEM public key loads unnamed without a name");
	{
		hc_key *named = NULL;

		ok(l && hc_key_with_name(&named, l, hc_key_name(k)) == 0 &&
			   hc_key_is_named(named) &&
			   hc_key_id(named) == hc_key_id(k) &&
			   !strcmp(hc_key_vkey(named), hc_key_vkey(k)),
		   "naming it gives the same key id and vkey");
		hc_key_free(named);
	}
	hc_key_free(l);
	l = NULL;

	n = strlen(hc_key_vkey(k)) + 8;
	line = malloc(n);
	if (line) {
		snprintf(line, n, "  %s \n\n", hc_key_vkey(k));
		ok(write_file(path_in("signing.vkey"), line, strlen(line),
			      0644) == 0 &&
			   hc_key_load_public(&l, path_in("signing.vkey"),
					      NULL) == 0 &&
			   hc_key_equal_public(k, l),
		   "load a vkey file (whitespace trimmed)");
		hc_key_free(l);
		l = NULL;
		line[2] ^= 1;
		ok(write_file(path_in("bad.vkey"), line, strlen(line), 0644) ==
				   0 &&
			   hc_key_load_public(&l, path_in("bad.vkey"), NULL) ==
				   HC_EFORMAT,
		   "a mangled vkey file is refused: %s", hc_error_message());
		free(line);
	}
	ok(write_file(path_in("two.vkey"), "a+00000000+AA==\nb\n", 18, 0644) ==
			   0 &&
		   hc_key_load_public(&l, path_in("two.vkey"), NULL) ==
			   HC_EFORMAT,
	   "a vkey file of two lines is refused");

	ok(hc_key_save_private(k, AT_FDCWD, path_in("priv.pem"), NULL) == 0 &&
		   hc_key_load_public(&l, path_in("priv.pem"),
				      "example.com/pub") < 0 &&
		   !l,
	   "a private key is not taken as public: %s", hc_error_message());

	ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ok(ec && write_public_pem(ec, path_in("ec-pub.pem")) == 0 &&
		   hc_key_load_public(&l, path_in("ec-pub.pem"),
				      "example.com/pub") == HC_EFORMAT &&
		   !l && strstr(hc_error_message(), "Ed25519"),
	   "EC public PEM refused: %s", hc_error_message());
	ok(ec && write_private_pem(ec, path_in("ec-priv.pem"), 0600) == 0 &&
		   hc_key_load_private(&l, path_in("ec-priv.pem"),
				       "example.com/pub", NULL) == HC_EFORMAT &&
		   !l && strstr(hc_error_message(), "Ed25519"),
	   "EC private PEM refused: %s", hc_error_message());
	EVP_PKEY_free(ec);
	hc_key_free(k);
}

static void cleanup(void)
{
	static const char *const files[] = {
		"peter.pem", "plain.pem", "enc.pem",	  "link.pem",
		"junk.pem",  "pub.pem",	  "signing.vkey", "bad.vkey",
		"two.vkey",  "priv.pem",  "ec-pub.pem",	  "ec-priv.pem",
	};
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlink(path_in(files[i]));
	rmdir(dir);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		printf("Bail out! mkdtemp failed\n");
		return 1;
	}
	test_generate_sign_verify();
	test_names();
	test_published_vkeys();
	test_published_signer();
	test_private_files();
	test_public_files();
	cleanup();
	return tap_done();
}
