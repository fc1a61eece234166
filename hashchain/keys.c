/*
 * keys.c - Ed25519 signing and verifier keys, named as C2SP signed-note
 * keys (https://c2sp.org/signed-note).
 *
 * A key is an OpenSSL EVP_PKEY with its note name, key ID and verifier key
 * string:
 *
 *   key ID = big-endian uint32 of SHA-256(name || 0x0A || 0x01 || pub)[:4]
 *   vkey   = name "+" 8 lower-case hex digits of the key ID "+"
 *            base64(0x01 || pub)
 *
 * where pub is the raw 32-byte Ed25519 public key and 0x01 the signed-note
 * algorithm byte of Ed25519.  Private keys live on disk as PEM PKCS#8,
 * optionally encrypted with AES-256-CBC.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "internal.h"

#define ED25519_LEN 32
#define SIG_LEN	    64
#define ALG_ED25519 0x01
/* Longest key name accepted; names are host/path strings. */
#define NAME_MAX_LEN 1024
/* Longest verifier key string accepted. */
#define VKEY_MAX_LEN (NAME_MAX_LEN + 64)
/* Largest key file read: a PEM key is well under 1 KiB. */
#define KEY_FILE_MAX (64u * 1024)

struct hc_key {
	EVP_PKEY *pkey;
	int has_private;
	char *name;
	char *vkey;
	uint32_t id;
	uint8_t pub[ED25519_LEN];
};

/* ------------------------------------------------------- names and base64 */

/*
 * A signed-note key name: non-empty UTF-8 without Unicode spaces, '+' or
 * control characters (a note may not contain the latter at all).
 */
static int check_name(const char *name)
{
	size_t n;

	if (!name || !*name)
		return hc_error_set(HC_EINVAL, "key name is empty");
	n = strlen(name);
	if (n > NAME_MAX_LEN)
		return hc_error_set(HC_EINVAL,
				    "key name is too long (%zu bytes, at most "
				    "%d)",
				    n, NAME_MAX_LEN);
	if (!hc_key_name_valid(name, n))
		return hc_error_set(HC_EINVAL,
				    "key name '%s' is not UTF-8 without "
				    "spaces, '+' and control characters",
				    name);
	return 0;
}

/* -------------------------------------------------------------- the key */

/*
 * Make a key of pkey (which it takes over, also on failure) named name.
 * pkey must be Ed25519; has_private says whether it holds the private
 * part.
 */
static int key_new(hc_key **out, EVP_PKEY *pkey, int has_private,
		   const char *name)
{
	uint8_t idbuf[NAME_MAX_LEN + 2 + ED25519_LEN], hash[HC_HASH_LEN];
	uint8_t algpub[1 + ED25519_LEN];
	char b64[4 * ((sizeof(algpub) + 2) / 3) + 1];
	size_t publen = ED25519_LEN, namelen, vlen;
	hc_key *k = NULL;
	int rc, n;

	if (name) {
		rc = check_name(name);
		if (rc < 0)
			goto out;
	}
	if (!EVP_PKEY_is_a(pkey, "ED25519")) {
		rc = hc_error_set(HC_EFORMAT, "not an Ed25519 key (type %s)",
				  EVP_PKEY_get0_type_name(pkey)
					  ? EVP_PKEY_get0_type_name(pkey)
					  : "an unknown type");
		goto out;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		rc = hc_error_set(HC_ENOMEM, "out of memory");
		goto out;
	}
	if (!EVP_PKEY_get_raw_public_key(pkey, k->pub, &publen) ||
	    publen != ED25519_LEN) {
		rc = hc_error_openssl("cannot get the Ed25519 public key");
		goto out;
	}
	k->pkey = pkey;
	pkey = NULL;
	k->has_private = has_private;
	k->name = strdup(name ? name : "");
	if (!k->name) {
		rc = hc_error_set(HC_ENOMEM, "out of memory");
		goto out;
	}
	if (!name) {
		/* A PEM key has no name, so no key id or vkey yet. */
		k->vkey = strdup("");
		if (!k->vkey) {
			rc = hc_error_set(HC_ENOMEM, "out of memory");
			goto out;
		}
		*out = k;
		return 0;
	}

	/* key ID = SHA-256(name || "\n" || 0x01 || pub)[:4], big-endian */
	namelen = strlen(name);
	memcpy(idbuf, name, namelen);
	idbuf[namelen] = '\n';
	idbuf[namelen + 1] = ALG_ED25519;
	memcpy(idbuf + namelen + 2, k->pub, ED25519_LEN);
	rc = hc_sha256(idbuf, namelen + 2 + ED25519_LEN, hash);
	if (rc < 0)
		goto out;
	k->id = (uint32_t)hash[0] << 24 | (uint32_t)hash[1] << 16 |
		(uint32_t)hash[2] << 8 | hash[3];

	algpub[0] = ALG_ED25519;
	memcpy(algpub + 1, k->pub, ED25519_LEN);
	EVP_EncodeBlock((unsigned char *)b64, algpub, sizeof(algpub));
	vlen = namelen + 1 + 8 + 1 + strlen(b64) + 1;
	k->vkey = malloc(vlen);
	if (!k->vkey) {
		rc = hc_error_set(HC_ENOMEM, "out of memory");
		goto out;
	}
	n = snprintf(k->vkey, vlen, "%s+%08x+%s", name, (unsigned)k->id, b64);
	if (n < 0 || (size_t)n >= vlen) {
		rc = hc_error_set(HC_EINVAL, "cannot format verifier key");
		goto out;
	}
	*out = k;
	k = NULL;
	rc = 0;
out:
	EVP_PKEY_free(pkey);
	hc_key_free(k);
	return rc;
}

int hc_key_generate(hc_key **out, const char *name)
{
	EVP_PKEY *pkey;
	int rc;

	if (!out)
		return hc_error_set(HC_EINVAL, "no output for the key");
	rc = check_name(name);
	if (rc < 0)
		return rc;
	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!pkey)
		return hc_error_openssl("cannot generate an Ed25519 key");
	return key_new(out, pkey, 1, name);
}

/* ------------------------------------------------------------- key files */

struct passphrase {
	const char *pass;
	int asked;
};

/*
 * PEM password callback: give the caller's passphrase, never prompt (the
 * default callback would read the terminal).
 */
static int pem_passphrase(char *buf, int size, int rwflag, void *u)
{
	struct passphrase *p = u;
	size_t n;

	(void)rwflag;
	p->asked = 1;
	if (!p->pass || size <= 0)
		return -1;
	n = strlen(p->pass);
	if (n > (size_t)size)
		return -1;
	memcpy(buf, p->pass, n);
	return (int)n;
}

/*
 * Read the private key file at path: no symlink, a regular file of at
 * most KEY_FILE_MAX bytes, no permission bits for group or others.
 */
static int read_private_file(const char *path, char **out, size_t *len_out)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd, rc;

	rc = hc_open_regular(AT_FDCWD, path, O_RDONLY, &fd, &st);
	if (rc == HC_EFORMAT && errno == ELOOP)
		return hc_error_set(HC_EFORMAT,
				    "private key '%s' is a symbolic link; give "
				    "the key file itself",
				    path);
	if (rc < 0)
		return rc;
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		rc = hc_error_set(HC_EINVAL,
				  "private key '%s' is accessible by group or "
				  "others (mode %04o); run chmod go-rwx '%s'",
				  path, (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	if (st.st_size < 0 || (uint64_t)st.st_size > KEY_FILE_MAX) {
		rc = hc_error_set(HC_EFORMAT,
				  "'%s' is too large for a key (%lld bytes, at "
				  "most %u)",
				  path, (long long)st.st_size, KEY_FILE_MAX);
		goto out;
	}
	len = (size_t)st.st_size;
	buf = malloc(len + 1);
	if (!buf) {
		rc = hc_error_set(HC_ENOMEM, "out of memory");
		goto out;
	}
	if (len > 0) {
		rc = hc_pread_all(fd, buf, len, 0);
		if (rc < 0)
			goto out;
	}
	buf[len] = '\0';
	*out = buf;
	*len_out = len;
	buf = NULL;
	rc = 0;
out:
	if (buf) {
		OPENSSL_cleanse(buf, len);
		free(buf);
	}
	close(fd);
	return rc;
}

int hc_key_load_private(hc_key **out, const char *path, const char *name,
			const char *passphrase)
{
	struct passphrase pp = {passphrase, 0};
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if (!out || !path)
		return hc_error_set(HC_EINVAL, "no key file given");
	rc = check_name(name);
	if (rc < 0)
		return rc;
	rc = read_private_file(path, &buf, &len);
	if (rc < 0)
		return rc;
	bio = BIO_new_mem_buf(buf, (int)len);
	if (!bio) {
		rc = hc_error_openssl("cannot read private key");
		goto out;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, pem_passphrase, &pp);
	if (!pkey) {
		ERR_clear_error();
		if (pp.asked && !passphrase)
			rc = hc_error_set(HC_EINVAL,
					  "private key '%s' is encrypted: a "
					  "passphrase is needed",
					  path);
		else if (pp.asked)
			rc = hc_error_set(HC_EINVAL,
					  "cannot decrypt private key '%s': "
					  "wrong passphrase or damaged file",
					  path);
		else
			rc = hc_error_set(HC_EFORMAT,
					  "'%s' is not a PEM private key",
					  path);
		goto out;
	}
	if (!EVP_PKEY_is_a(pkey, "ED25519")) {
		rc = hc_error_set(HC_EFORMAT,
				  "'%s' holds a key of type %s; hozen keys "
				  "are Ed25519",
				  path, EVP_PKEY_get0_type_name(pkey));
		goto out;
	}
	rc = key_new(out, pkey, 1, name);
	pkey = NULL;
out:
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	if (buf)
		OPENSSL_cleanse(buf, len);
	free(buf);
	return rc;
}

static int ascii_space(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Skip leading and trailing ASCII whitespace of [*s, *s + *n). */
static void trim(const char **s, size_t *n)
{
	while (*n > 0 && ascii_space((*s)[0])) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && ascii_space((*s)[*n - 1]))
		(*n)--;
}

int hc_key_load_public(hc_key **out, const char *path, const char *name)
{
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if (!out || !path)
		return hc_error_set(HC_EINVAL, "no key file given");
	rc = hc_read_file(AT_FDCWD, path, KEY_FILE_MAX, &buf, &len);
	if (rc < 0)
		return rc;
	rc = hc_key_parse_public(out, buf, len, path, name, 0);
	free(buf);
	return rc;
}

int hc_key_parse_public(hc_key **out, const char *buf, size_t len,
			const char *path, const char *name, int pem_only)
{
	static const char pem[] = "-----BEGIN ";
	static const char priv[] = "PRIVATE KEY-----";
	struct passphrase pp = {NULL, 0};
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;
	char *line = NULL;
	const char *s;
	size_t n;
	int rc;

	s = buf;
	n = len;
	trim(&s, &n);
	if (memchr(s, '\0', n)) {
		rc = hc_error_set(HC_EFORMAT,
				  "'%s' is not a key file (NUL byte)", path);
		goto out;
	}
	if (n < sizeof(pem) - 1 || memcmp(s, pem, sizeof(pem) - 1) != 0) {
		if (pem_only) {
			rc = hc_error_set(HC_EFORMAT,
					  "'%s' is not a PEM public key", path);
			goto out;
		}
		/* A verifier key line. */
		if (memchr(s, '\n', n)) {
			rc = hc_error_set(HC_EFORMAT,
					  "'%s' holds more than one line; "
					  "expected one verifier key",
					  path);
			goto out;
		}
		line = strndup(s, n);
		if (!line) {
			rc = hc_error_set(HC_ENOMEM, "out of memory");
			goto out;
		}
		rc = hc_key_parse_vkey(out, line);
		if (rc < 0)
			rc = hc_error_prefix(rc, "'%s'", path);
		goto out;
	}
	if (name) {
		rc = check_name(name);
		if (rc < 0)
			goto out;
	}
	if (memmem(s, n, priv, sizeof(priv) - 1)) {
		rc = hc_error_set(HC_EINVAL,
				  "'%s' holds a private key; give the public "
				  "key",
				  path);
		goto out;
	}
	bio = BIO_new_mem_buf(s, (int)n);
	if (!bio) {
		rc = hc_error_openssl("cannot read public key");
		goto out;
	}
	/* Never prompt, even for a PEM with an encryption header. */
	pkey = PEM_read_bio_PUBKEY(bio, NULL, pem_passphrase, &pp);
	if (!pkey) {
		ERR_clear_error();
		rc = hc_error_set(HC_EFORMAT,
				  pem_only ? "'%s' is not a PEM public key"
					   : "'%s' is neither a verifier key "
					     "nor a PEM public key",
				  path);
		goto out;
	}
	if (!EVP_PKEY_is_a(pkey, "ED25519")) {
		rc = hc_error_set(HC_EFORMAT,
				  "'%s' holds a public key of type %s; hozen "
				  "keys are Ed25519",
				  path, EVP_PKEY_get0_type_name(pkey));
		goto out;
	}
	rc = key_new(out, pkey, 0, name);
	pkey = NULL;
out:
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	free(line);
	return rc;
}

int hc_key_parse_vkey(hc_key **out, const char *vkey)
{
	EVP_PKEY *pkey = NULL;
	hc_key *k = NULL;
	const char *p1, *p2;
	char *name = NULL, hex[9];
	uint8_t *raw = NULL, idb[4];
	size_t n, rawlen = 0;
	uint32_t id;
	int rc;

	if (!out || !vkey)
		return hc_error_set(HC_EINVAL, "no verifier key given");
	n = strlen(vkey);
	if (n > VKEY_MAX_LEN)
		return hc_error_set(HC_EFORMAT, "verifier key is too long");
	p1 = strchr(vkey, '+');
	p2 = p1 ? strchr(p1 + 1, '+') : NULL;
	if (!p2 || p2 - p1 - 1 != 8)
		return hc_error_set(HC_EFORMAT,
				    "malformed verifier key: expected "
				    "NAME+KEYID+BASE64 with an 8-digit key id");
	name = strndup(vkey, (size_t)(p1 - vkey));
	if (!name)
		return hc_error_set(HC_ENOMEM, "out of memory");
	if (check_name(name) < 0) {
		rc = hc_error_set(HC_EFORMAT,
				  "malformed verifier key: invalid key name "
				  "'%s'",
				  name);
		goto out;
	}
	memcpy(hex, p1 + 1, 8);
	hex[8] = '\0';
	if (hc_unhex(hex, idb, 4) < 0) {
		rc = hc_error_set(HC_EFORMAT,
				  "malformed verifier key: key id '%s' is not "
				  "8 hex digits",
				  hex);
		goto out;
	}
	id = (uint32_t)idb[0] << 24 | (uint32_t)idb[1] << 16 |
	     (uint32_t)idb[2] << 8 | idb[3];
	if (hc_base64_decode(p2 + 1, strlen(p2 + 1), &raw, &rawlen) < 0 ||
	    rawlen == 0) {
		rc = hc_error_set(HC_EFORMAT,
				  "malformed verifier key: key data is not "
				  "canonical base64");
		goto out;
	}
	if (raw[0] != ALG_ED25519) {
		rc = hc_error_set(HC_EFORMAT,
				  "verifier key '%s' uses algorithm %u; only "
				  "Ed25519 (1) is supported",
				  name, raw[0]);
		goto out;
	}
	if (rawlen != 1 + ED25519_LEN) {
		rc = hc_error_set(HC_EFORMAT,
				  "verifier key '%s' has a %zu-byte public "
				  "key; Ed25519 keys have 32",
				  name, rawlen - 1);
		goto out;
	}
	pkey = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, raw + 1,
					      ED25519_LEN);
	if (!pkey) {
		rc = hc_error_openssl("cannot load Ed25519 public key");
		goto out;
	}
	rc = key_new(&k, pkey, 0, name);
	pkey = NULL;
	if (rc < 0)
		goto out;
	if (k->id != id) {
		rc = hc_error_set(HC_EFORMAT,
				  "verifier key '%s': key id %08x does not "
				  "match the key (%08x)",
				  name, (unsigned)id, (unsigned)k->id);
		goto out;
	}
	*out = k;
	k = NULL;
out:
	hc_key_free(k);
	EVP_PKEY_free(pkey);
	free(raw);
	free(name);
	return rc;
}

/*
 * Write the PEM the writer puts into a memory BIO to dirfd/path with mode,
 * exclusively.  The BIO is in secure memory, wiped when it is freed.
 */
static int save_pem(const hc_key *key, int dirfd, const char *path,
		    const char *passphrase, int private)
{
	BIO *bio = NULL;
	char *data = NULL;
	long len;
	int rc, ok;

	if (!key || !path)
		return hc_error_set(HC_EINVAL, "no key or path given");
	if (private && !key->has_private)
		return hc_error_set(HC_EINVAL,
				    "key '%s' has no private part to save",
				    key->name);
	if (passphrase && !*passphrase)
		return hc_error_set(HC_EINVAL, "the passphrase is empty");
	if (passphrase && strlen(passphrase) > INT_MAX)
		return hc_error_set(HC_EINVAL, "the passphrase is too long");
	bio = BIO_new(BIO_s_secmem());
	if (!bio)
		return hc_error_openssl("cannot encode key");
	if (!private)
		ok = PEM_write_bio_PUBKEY(bio, key->pkey);
	else if (passphrase)
		ok = PEM_write_bio_PKCS8PrivateKey(
			bio, key->pkey, EVP_aes_256_cbc(), passphrase,
			(int)strlen(passphrase), NULL, NULL);
	else
		ok = PEM_write_bio_PKCS8PrivateKey(bio, key->pkey, NULL, NULL,
						   0, NULL, NULL);
	if (!ok) {
		rc = hc_error_openssl("cannot encode key as PEM");
		goto out;
	}
	len = BIO_get_mem_data(bio, &data);
	if (len <= 0 || !data) {
		rc = hc_error_openssl("cannot encode key as PEM");
		goto out;
	}
	/* Never rewritten: read-only from the start (FORMAT.md section 1). */
	rc = hc_create_file(dirfd, path, data, (size_t)len, 0400);
	OPENSSL_cleanse(data, (size_t)len);
out:
	BIO_free(bio);
	return rc;
}

int hc_key_save_private(const hc_key *key, int dirfd, const char *path,
			const char *passphrase)
{
	return save_pem(key, dirfd, path, passphrase, 1);
}

int hc_key_save_public_pem(const hc_key *key, int dirfd, const char *path)
{
	return save_pem(key, dirfd, path, NULL, 0);
}

const char *hc_key_vkey(const hc_key *key)
{
	return key->vkey;
}

const char *hc_key_name(const hc_key *key)
{
	return key->name;
}

uint32_t hc_key_id(const hc_key *key)
{
	return key->id;
}

const uint8_t *hc_key_public_raw(const hc_key *key)
{
	return key->pub;
}

int hc_key_has_private(const hc_key *key)
{
	return key && key->has_private;
}

int hc_key_equal_public(const hc_key *a, const hc_key *b)
{
	if (!a || !b)
		return 0;
	/* An unnamed key is the same as any name of its public key. */
	return CRYPTO_memcmp(a->pub, b->pub, ED25519_LEN) == 0 &&
	       (!a->name[0] || !b->name[0] || strcmp(a->name, b->name) == 0);
}

int hc_key_is_named(const hc_key *key)
{
	return key->name[0] != '\0';
}

int hc_key_with_name(hc_key **out, const hc_key *key, const char *name)
{
	if (!name)
		return hc_error_set(HC_EINVAL, "key name is empty");
	if (!EVP_PKEY_up_ref(key->pkey))
		return hc_error_openssl("cannot share the key");
	return key_new(out, key->pkey, key->has_private, name);
}

int hc_key_sign(const hc_key *key, const void *msg, size_t len, uint8_t sig[64])
{
	EVP_MD_CTX *ctx = NULL;
	size_t siglen = SIG_LEN;
	int rc = 0;

	if (!key || (!msg && len) || !sig)
		return hc_error_set(HC_EINVAL, "bad arguments to sign");
	if (!key->has_private)
		return hc_error_set(HC_EINVAL,
				    "key '%s' has no private part to sign with",
				    key->name);
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, key->pkey) != 1 ||
	    EVP_DigestSign(ctx, sig, &siglen, msg, len) != 1 ||
	    siglen != SIG_LEN)
		rc = hc_error_openssl("Ed25519 signing failed");
	EVP_MD_CTX_free(ctx);
	return rc;
}

int hc_key_verify(const hc_key *key, const void *msg, size_t len,
		  const uint8_t sig[64])
{
	EVP_MD_CTX *ctx = NULL;
	int rc = 0;

	if (!key || (!msg && len) || !sig)
		return hc_error_set(HC_EINVAL, "bad arguments to verify");
	ctx = EVP_MD_CTX_new();
	if (!ctx ||
	    EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key->pkey) != 1) {
		rc = hc_error_openssl("Ed25519 verification setup failed");
		goto out;
	}
	if (EVP_DigestVerify(ctx, sig, SIG_LEN, msg, len) != 1) {
		ERR_clear_error();
		rc = hc_error_set(HC_EVERIFY,
				  "signature by key '%s' does not verify",
				  key->name);
	}
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

void hc_key_free(hc_key *key)
{
	if (!key)
		return;
	/* EVP_PKEY_free wipes the Ed25519 private key it holds. */
	EVP_PKEY_free(key->pkey);
	free(key->name);
	free(key->vkey);
	OPENSSL_cleanse(key, sizeof(*key));
	free(key);
}
