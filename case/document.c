/*
 * document.c - the issuer's document: its SHA-256, and for a CMS/PKCS#7
 * signed file its signature, checked with OpenSSL against certificates
 * the user trusts.  The file is kept in the store, named by its SHA-256.
 */
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "internal.h"

#define DOC_MAX (256u << 20)

/* Parse buf as CMS in DER, PEM or S/MIME; NULL if it is none of them. */
static CMS_ContentInfo *parse_cms(const char *buf, size_t len)
{
	CMS_ContentInfo *cms = NULL;
	BIO *b;

	b = BIO_new_mem_buf(buf, (int)len);
	if (b)
		cms = d2i_CMS_bio(b, NULL);
	BIO_free(b);
	if (!cms && (b = BIO_new_mem_buf(buf, (int)len))) {
		cms = PEM_read_bio_CMS(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	if (!cms && (b = BIO_new_mem_buf(buf, (int)len))) {
		cms = SMIME_read_CMS(b, NULL);
		BIO_free(b);
	}
	ERR_clear_error();
	if (cms && OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
		CMS_ContentInfo_free(cms);
		cms = NULL;
	}
	return cms;
}

/*
 * The trusted certificates of the PEM file pem[0..len) (read with
 * hc_read_file: a FIFO in its place is refused, never opened by OpenSSL).
 */
static int load_trust(const char *path, const char *pem, size_t len,
		      X509_STORE **out)
{
	X509_STORE *st = X509_STORE_new();
	X509 *cert;
	BIO *b = NULL;
	int n = 0, rc = 0;

	if (!st)
		return hc_error_openssl("cannot make a certificate store");
	b = BIO_new_mem_buf(pem, (int)len);
	while (b && (cert = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		if (X509_STORE_add_cert(st, cert) == 1)
			n++;
		X509_free(cert);
	}
	ERR_clear_error();
	if (n == 0) {
		rc = hc_error_set(HC_EINVAL,
				  "'issuer.document': cannot read trusted "
				  "certificates from '%s' (PEM expected)",
				  path);
		X509_STORE_free(st);
	} else {
		*out = st;
	}
	BIO_free(b);
	return rc;
}

/* Verify the signature; *signer gets the signer's subject (malloc'd). */
static int verify_cms(const char *field, CMS_ContentInfo *cms,
		      const char *trust, char **signer, char *trust_hex)
{
	STACK_OF(X509) *signers = NULL;
	X509_STORE *st = NULL;
	char *trust_pem = NULL;
	size_t trust_len = 0;
	uint8_t h[HC_HASH_LEN];
	BIO *content = NULL;
	int rc;

	if (!trust)
		return hc_error_set(HC_EINVAL,
				    "'%s' is a CMS signed file: give the "
				    "certificate you trust (--trust CERT) to "
				    "check its signature",
				    field);
	rc = hc_read_file(AT_FDCWD, trust, 1u << 20, &trust_pem, &trust_len);
	if (rc == 0)
		rc = load_trust(trust, trust_pem, trust_len, &st);
	if (rc < 0)
		goto out;
	rc = hc_sha256(trust_pem, trust_len, h);
	if (rc < 0)
		goto out;
	hc_hex(h, HC_HASH_LEN, trust_hex);
	content = BIO_new(BIO_s_null());
	if (!content || CMS_verify(cms, NULL, st, NULL, content, 0) != 1) {
		unsigned long e = ERR_get_error();
		char buf[256] = "unknown error";

		if (e)
			ERR_error_string_n(e, buf, sizeof(buf));
		ERR_clear_error();
		rc = hc_error_set(HC_EINVAL,
				  "'%s': the CMS signature does not verify "
				  "against '%s': %s",
				  field, trust, buf);
		goto out;
	}
	signers = CMS_get0_signers(cms);
	if (signers && sk_X509_num(signers) > 0)
		*signer = X509_NAME_oneline(
			X509_get_subject_name(sk_X509_value(signers, 0)), NULL,
			0);
	if (!*signer)
		*signer = OPENSSL_strdup("?");
	rc = *signer ? 0 : hc_error_set(HC_ENOMEM, "out of memory");
out:
	sk_X509_free(signers);
	BIO_free(content);
	X509_STORE_free(st);
	free(trust_pem);
	return rc;
}

int case_set_document(case_t *c, const char *field, const char *path,
		      const char *trust_pem)
{
	const struct case_field_info *f;
	CMS_ContentInfo *cms = NULL;
	char *buf = NULL, *signer = NULL, *copy = NULL;
	char hex[HC_HEX_LEN + 1], trust_hex[HC_HEX_LEN + 1] = "";
	uint8_t h[HC_HASH_LEN];
	size_t len = 0;
	json_t *v = NULL;
	int rc;

	rc = case_field_lookup(field, &f);
	if (rc == 0 && f->type != CASE_DOCUMENT)
		rc = hc_error_set(HC_EINVAL, "'%s' is not a document field",
				  field);
	if (rc == 0) {
		rc = hc_read_file(AT_FDCWD, path, DOC_MAX, &buf, &len);
		if (rc < 0)
			rc = case_error_prefix(rc, "'%s': ", field);
	}
	if (rc == 0)
		rc = hc_sha256(buf, len, h);
	if (rc < 0)
		goto out;
	hc_hex(h, HC_HASH_LEN, hex);
	cms = parse_cms(buf, len);
	if (cms)
		rc = verify_cms(field, cms, trust_pem, &signer, trust_hex);
	else if (trust_pem)
		rc = hc_error_set(HC_EINVAL,
				  "'%s': '%s' is not a CMS/PKCS#7 signed "
				  "file, but --trust was given",
				  field, path);
	if (rc < 0)
		goto out;
	copy = strdup(path);
	v = json_pack("{s:s,s:s,s:I,s:s}", "name", copy ? basename(copy) : "",
		      "sha256", hex, "size", (json_int_t)len, "signature",
		      cms ? "cms-verified" : "none");
	if (v && cms)
		json_object_update_new(v,
				       json_pack("{s:s,s:s}", "signer", signer,
						 "trust_sha256", trust_hex));
	if (!v) {
		rc = hc_error_set(HC_EINVAL, "'%s': the file name is not UTF-8",
				  field);
		goto out;
	}
	rc = case_set_json(c, field, v);
	if (rc == 0)
		rc = case_stage_document(c, hex, buf, len);
out:
	json_decref(v);
	free(copy);
	OPENSSL_free(signer);
	CMS_ContentInfo_free(cms);
	free(buf);
	return rc;
}
