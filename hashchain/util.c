/*
 * util.c - errors, durable file I/O, hashing helpers, actors and time.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "internal.h"

/* ---------------------------------------------------------------- errors */

static _Thread_local char err_msg[1024];
static _Thread_local int err_errno;

const char *hc_error_message(void)
{
	return err_msg;
}

int hc_error_errno(void)
{
	return err_errno;
}

int hc_error_set(int code, const char *fmt, ...)
{
	int saved = errno;
	char buf[sizeof(err_msg)];
	va_list ap;
	size_t n;

	/* Format aside: the arguments may point into err_msg itself. */
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (code == HC_ESYS) {
		err_errno = saved;
		n = strlen(buf);
		if (n + 3 < sizeof(buf)) {
			/* "permission denied": messages are lower case. */
			snprintf(buf + n, sizeof(buf) - n, ": %s",
				 strerror(saved));
			buf[n + 2] = (char)tolower((unsigned char)buf[n + 2]);
		}
	}
	memcpy(err_msg, buf, sizeof(err_msg));
	errno = saved;
	return code;
}

int hc_error_prefix(int code, const char *fmt, ...)
{
	char buf[sizeof(err_msg)];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	n = strlen(buf);
	if (n + 3 < sizeof(buf)) {
		/* Truncating the older detail is fine: the prefix matters. */
		size_t m = strnlen(err_msg, sizeof(buf) - n - 3);

		memcpy(buf + n, ": ", 2);
		memcpy(buf + n + 2, err_msg, m);
		buf[n + 2 + m] = '\0';
	}
	memcpy(err_msg, buf, sizeof(err_msg));
	return code;
}

int hc_error_openssl(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "unknown error";

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return hc_error_set(HC_ECRYPTO, "%s: %s", what, buf);
}

int hc_error_exit_code(int code)
{
	if (code == HC_OK)
		return 0;
	if (code == HC_EVERIFY || code == HC_ETORN)
		return 1;
	return 2;
}

/* ------------------------------------------------------- durable file I/O */

int hc_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return hc_error_set(HC_ESYS, "write failed");
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int hc_pread_all(int fd, void *buf, size_t len, off_t off)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return hc_error_set(HC_ESYS, "read failed");
		}
		if (n == 0)
			return hc_error_set(HC_EFORMAT,
					    "unexpected end of file");
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

int hc_fsync_dir(int dirfd, const char *path)
{
	int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return hc_error_set(HC_ESYS, "cannot open directory '%s'",
				    path);
	if (fsync(fd) < 0)
		rc = hc_error_set(HC_ESYS, "cannot sync directory '%s'", path);
	close(fd);
	return rc;
}

/* The directory part of path, "." when it has none. */
static void dir_of(const char *path, char *out, size_t n)
{
	const char *slash = strrchr(path, '/');

	if (!slash) {
		snprintf(out, n, ".");
		return;
	}
	if (slash == path) {
		snprintf(out, n, "/");
		return;
	}
	snprintf(out, n, "%.*s", (int)(slash - path), path);
}

static int write_new(int dirfd, const char *path, const void *buf, size_t len,
		     mode_t mode, int flags)
{
	int fd, rc;

	fd = openat(dirfd, path,
		    O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | flags, mode);
	if (fd < 0)
		return hc_error_set(errno == EEXIST ? HC_EEXIST : HC_ESYS,
				    "cannot create '%s'", path);
	rc = hc_write_all(fd, buf, len);
	if (rc == 0 && fchmod(fd, mode) < 0)
		rc = hc_error_set(HC_ESYS, "cannot chmod '%s'", path);
	if (rc == 0 && fsync(fd) < 0)
		rc = hc_error_set(HC_ESYS, "cannot sync '%s'", path);
	if (close(fd) < 0 && rc == 0)
		rc = hc_error_set(HC_ESYS, "cannot close '%s'", path);
	return rc;
}

int hc_create_file(int dirfd, const char *path, const void *buf, size_t len,
		   mode_t mode)
{
	char dir[PATH_MAX];
	int rc;

	rc = write_new(dirfd, path, buf, len, mode, O_EXCL);
	if (rc < 0)
		return rc;
	dir_of(path, dir, sizeof(dir));
	return hc_fsync_dir(dirfd, dir);
}

int hc_atomic_write(int dirfd, const char *path, const void *buf, size_t len,
		    mode_t mode)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	int rc, n;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return hc_error_set(HC_EINVAL, "path too long: '%s'", path);
	(void)unlinkat(dirfd, tmp, 0);
	rc = write_new(dirfd, tmp, buf, len, mode, O_EXCL);
	if (rc < 0) {
		(void)unlinkat(dirfd, tmp, 0);
		return hc_error_prefix(rc, "cannot write '%s'", path);
	}
	if (renameat(dirfd, tmp, dirfd, path) < 0) {
		rc = hc_error_set(HC_ESYS, "cannot rename '%s' to '%s'", tmp,
				  path);
		(void)unlinkat(dirfd, tmp, 0);
		return rc;
	}
	dir_of(path, dir, sizeof(dir));
	return hc_fsync_dir(dirfd, dir);
}

/* What a file that is not a regular file is, for messages. */
static const char *file_kind(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	if (S_ISLNK(mode))
		return "a symbolic link";
	return "not a file";
}

int hc_open_regular(int dirfd, const char *path, int flags, int *fd_out,
		    struct stat *st_out)
{
	return hc_open_regular_as(dirfd, path, path, flags, fd_out, st_out);
}

int hc_open_regular_as(int dirfd, const char *path, const char *name, int flags,
		       int *fd_out, struct stat *st_out)
{
	struct stat st;
	int fd, fl, rc;

	fd = openat(dirfd, path, flags | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return hc_error_set(HC_ENOENT, "'%s' does not exist",
					    name);
		if (errno == ELOOP)
			return hc_error_set(HC_EFORMAT,
					    "'%s' is a symbolic link", name);
		if (errno == ENXIO || errno == EISDIR) {
			/* A FIFO without reader, a socket, a directory. */
			if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0)
				return hc_error_set(HC_EFORMAT,
						    "'%s' is not a regular "
						    "file (%s)",
						    name,
						    file_kind(st.st_mode));
		}
		return hc_error_set(HC_ESYS, "cannot open '%s'", name);
	}
	if (fstat(fd, &st) < 0) {
		rc = hc_error_set(HC_ESYS, "cannot stat '%s'", name);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = hc_error_set(HC_EFORMAT, "'%s' is not a regular file (%s)",
				  name, file_kind(st.st_mode));
		goto fail;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		rc = hc_error_set(HC_ESYS, "cannot open '%s'", name);
		goto fail;
	}
	if (st_out)
		*st_out = st;
	*fd_out = fd;
	return 0;
fail:
	close(fd);
	return rc;
}

int hc_read_file(int dirfd, const char *path, size_t max, char **out,
		 size_t *len_out)
{
	struct stat st;
	char *buf = NULL;
	int fd, rc;

	rc = hc_open_regular(dirfd, path, O_RDONLY, &fd, &st);
	if (rc < 0)
		return rc;
	if ((uint64_t)st.st_size > max) {
		rc = hc_error_set(HC_EFORMAT,
				  "'%s' is too large (%lld bytes, at most %zu)",
				  path, (long long)st.st_size, max);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = hc_error_set(HC_ENOMEM, "out of memory reading '%s'",
				  path);
		goto out;
	}
	if (st.st_size > 0) {
		rc = hc_pread_all(fd, buf, (size_t)st.st_size, 0);
		if (rc < 0) {
			rc = hc_error_prefix(rc, "cannot read '%s'", path);
			goto out;
		}
	}
	buf[st.st_size] = '\0';
	*out = buf;
	if (len_out)
		*len_out = (size_t)st.st_size;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int hc_numbered_name(const char *name, const char *suffix, uint64_t *n)
{
	size_t i;

	if (strlen(name) != 20 + strlen(suffix) || strcmp(name + 20, suffix))
		return 0;
	*n = 0;
	for (i = 0; i < 20; i++) {
		if (name[i] < '0' || name[i] > '9' ||
		    *n > (UINT64_MAX - 9) / 10)
			return 0;
		*n = *n * 10 + (uint64_t)(name[i] - '0');
	}
	return 1;
}

int hc_torn_name(const char *name, char seg[32], uint64_t *off)
{
	char num[32];
	uint64_t n;
	size_t len = strlen(name), k;

	if (len < 46 || name[20] != '-' || strcmp(name + len - 5, ".torn"))
		return 0;
	if (len > 46) {
		/* -K: K of 1 to 3 digits, no leading zero */
		k = len - 46 - 1;
		if (name[41] != '-' || k < 1 || k > 3 || name[42] == '0' ||
		    strspn(name + 42, "0123456789") != k)
			return 0;
	}
	snprintf(seg, 32, "%.20s.log", name);
	snprintf(num, sizeof(num), "%.20s.x", name + 21);
	return hc_numbered_name(seg, ".log", &n) &&
	       hc_numbered_name(num, ".x", off);
}

int hc_tmp_leftover(const char *dir, const char *name)
{
	static const char *const top[] = {"case.json.new", "seal", NULL};
	const char *t = strstr(name, ".tmp.");
	char base[64];
	uint64_t n;
	size_t i;

	if (!t || (size_t)(t - name) >= sizeof(base) || !t[5] ||
	    strspn(t + 5, "0123456789") != strlen(t + 5))
		return 0;
	snprintf(base, sizeof(base), "%.*s", (int)(t - name), name);
	if (!strcmp(dir, HC_CKPT_DIR))
		return hc_numbered_name(base, ".ckpt", &n);
	if (*dir)
		return 0;
	for (i = 0; top[i]; i++)
		if (!strcmp(base, top[i]))
			return 1;
	return 0;
}

int hc_remove_tmp_leftovers(int storefd)
{
	static const char *const dirs[] = {"", HC_CKPT_DIR};
	struct dirent *de;
	size_t i;
	int fd, gone;
	DIR *d;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		fd = openat(storefd, *dirs[i] ? dirs[i] : ".",
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue; /* missing: verify says so */
		d = fdopendir(fd);
		if (!d) {
			close(fd);
			return hc_error_set(HC_ESYS, "cannot read '%s'",
					    *dirs[i] ? dirs[i] : ".");
		}
		gone = 0;
		while ((de = readdir(d)))
			if (hc_tmp_leftover(dirs[i], de->d_name) &&
			    unlinkat(dirfd(d), de->d_name, 0) == 0)
				gone++;
		if (gone && fsync(dirfd(d)) < 0) {
			closedir(d);
			return hc_error_set(HC_ESYS, "cannot sync '%s'",
					    *dirs[i] ? dirs[i] : ".");
		}
		closedir(d);
	}
	return 0;
}

int hc_torn_partial(const struct stat *st)
{
	return S_ISREG(st->st_mode) && st->st_nlink == 1 &&
	       ((st->st_mode & 07777) == HC_TORN_PARTIAL || st->st_size == 0);
}

int hc_torn_interrupted(int storefd, const char *name,
			const struct hc_mark *last_other)
{
	char seg[32], before;
	uint64_t n, off;
	struct stat st, cst;
	int fd, sfd, yes = 0;

	if (!hc_torn_name(name, seg, &off) ||
	    !hc_numbered_name(seg, ".log", &n))
		return 0;
	/* Nothing but recovery records after the cut. */
	if (n < last_other->seg ||
	    (n == last_other->seg && off < last_other->end))
		return 0;
	fd = openat(storefd, HC_TORN_DIR,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	/* What recovery writes: a regular file of one line at most. */
	if (fstatat(fd, name, &cst, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(cst.st_mode) || cst.st_nlink != 1 ||
	    (uint64_t)cst.st_size > HC_RECORD_MAX + 1) {
		close(fd);
		return 0;
	}
	close(fd);
	/* Whole: a copy a crash interrupted is replaced, not adopted. */
	if ((cst.st_mode & 07777) != 0400 || cst.st_size < 1)
		return 0;
	fd = openat(storefd, HC_CHAIN_DIR,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	/*
	 * Recovery cut the segment where the copy began, at a line's start:
	 * the segment's start, the end of the last other record, or just
	 * after a newline.
	 */
	sfd = openat(fd, seg, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (sfd >= 0 && fstat(sfd, &st) == 0 && S_ISREG(st.st_mode) &&
	    off <= (uint64_t)st.st_size &&
	    (off == 0 || (n == last_other->seg && off == last_other->end) ||
	     (pread(sfd, &before, 1, (off_t)off - 1) == 1 && before == '\n')))
		yes = 1;
	if (sfd >= 0)
		close(sfd);
	close(fd);
	return yes;
}

int hc_list_numbered(int dirfd, const char *suffix, uint64_t **out,
		     size_t *n_out)
{
	DIR *d = NULL;
	struct dirent *de;
	uint64_t *v = NULL, num;
	size_t n = 0, cap = 0;
	int fd, rc = 0;

	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return hc_error_set(HC_ESYS, "cannot read the directory");
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return hc_error_set(HC_ESYS, "cannot read the directory");
	}
	while ((de = readdir(d))) {
		if (!hc_numbered_name(de->d_name, suffix, &num))
			continue;
		if (n == cap) {
			uint64_t *nv;

			cap = cap ? 2 * cap : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				rc = hc_error_set(HC_ENOMEM, "out of memory");
				goto out;
			}
			v = nv;
		}
		v[n++] = num;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_u64);
	*out = v;
	*n_out = n;
	v = NULL;
out:
	free(v);
	closedir(d);
	return rc;
}

/* ---------------------------------------------------------------- hashing */

static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* SHA-256 fetched once: EVP_MD_fetch is costly on a hot path. */
static EVP_MD *sha256_md(void)
{
	pthread_once(&sha256_once, sha256_fetch);
	return sha256;
}

int hc_sha256(const void *buf, size_t len, uint8_t out[HC_HASH_LEN])
{
	unsigned int n = 0;
	EVP_MD *md = sha256_md();

	if (!md || !EVP_Digest(buf, len, out, &n, md, NULL) || n != HC_HASH_LEN)
		return hc_error_openssl("SHA-256");
	return 0;
}

struct hc_sha256_ctx {
	EVP_MD_CTX *ctx;
};

int hc_sha256_new(hc_sha256_ctx **out)
{
	hc_sha256_ctx *c = calloc(1, sizeof(*c));
	EVP_MD *md = sha256_md();

	if (!c)
		return hc_error_set(HC_ENOMEM, "out of memory");
	c->ctx = EVP_MD_CTX_new();
	if (!c->ctx || !md || !EVP_DigestInit_ex2(c->ctx, md, NULL)) {
		hc_sha256_free(c);
		return hc_error_openssl("SHA-256 init");
	}
	*out = c;
	return 0;
}

int hc_sha256_update(hc_sha256_ctx *c, const void *buf, size_t len)
{
	if (!EVP_DigestUpdate(c->ctx, buf, len))
		return hc_error_openssl("SHA-256 update");
	return 0;
}

int hc_sha256_final(hc_sha256_ctx *c, uint8_t out[HC_HASH_LEN])
{
	unsigned int n = 0;

	if (!EVP_DigestFinal_ex(c->ctx, out, &n) || n != HC_HASH_LEN ||
	    !EVP_DigestInit_ex2(c->ctx, NULL, NULL))
		return hc_error_openssl("SHA-256 final");
	return 0;
}

void hc_sha256_free(hc_sha256_ctx *c)
{
	if (!c)
		return;
	EVP_MD_CTX_free(c->ctx);
	free(c);
}

uint64_t hc_fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

void hc_hex(const uint8_t *buf, size_t n, char *out)
{
	/* OPENSSL_buf2hexstr uses upper case and colons; we need neither. */
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[buf[i] >> 4];
		out[2 * i + 1] = digits[buf[i] & 15];
	}
	out[2 * n] = '\0';
}

int hc_unhex(const char *hex, uint8_t *out, size_t n)
{
	uint8_t tmp[256];
	size_t len = 0;
	unsigned char *dec;

	if (n > sizeof(tmp) || strlen(hex) != 2 * n)
		return hc_error_set(HC_EFORMAT, "expected %zu hex digits",
				    2 * n);
	dec = OPENSSL_hexstr2buf_ex(tmp, sizeof(tmp), &len, hex, '\0') ? tmp
								       : NULL;
	if (!dec || len != n) {
		ERR_clear_error();
		return hc_error_set(HC_EFORMAT, "invalid hex digits");
	}
	memcpy(out, tmp, n);
	return 0;
}

/* ------------------------------------------------------ text and base64 */

/*
 * Decode one UTF-8 sequence at s (n bytes available) into *cp; returns its
 * length, or 0 if it is not well-formed (overlong, surrogate, > U+10FFFF).
 */
size_t hc_utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t need, k;
	uint32_t min, c;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] < 0xc2)
		return 0;
	if (s[0] < 0xe0) {
		need = 1;
		min = 0x80;
		c = s[0] & 0x1f;
	} else if (s[0] < 0xf0) {
		need = 2;
		min = 0x800;
		c = s[0] & 0x0f;
	} else if (s[0] < 0xf5) {
		need = 3;
		min = 0x10000;
		c = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < need + 1)
		return 0;
	for (k = 1; k <= need; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[k] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return need + 1;
}

/* Unicode White_Space, as Go's unicode.IsSpace (used by signed notes). */
static int unicode_space(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 ||
	       c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
	       c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f ||
	       c == 0x3000;
}

int hc_key_name_valid(const char *name, size_t n)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t i = 0, k;
	uint32_t c;

	if (n == 0)
		return 0;
	while (i < n) {
		k = hc_utf8_next(s + i, n - i, &c);
		if (!k || c == '+' || c < 0x20 || unicode_space(c))
			return 0;
		i += k;
	}
	return 1;
}

/*
 * Decode canonical standard base64 (RFC 4648 section 4, padded): the
 * input must be exactly what EVP_EncodeBlock gives for the decoded bytes.
 * *out is malloc'd; returns 0 or -1 (no message set).
 */
int hc_base64_decode(const char *s, size_t n, uint8_t **out, size_t *len)
{
	uint8_t *buf = NULL;
	char *again = NULL;
	size_t pad, dlen;
	int r, rc = -1;

	if (n == 0 || n % 4 != 0 || n > INT_MAX / 2)
		return -1;
	pad = (s[n - 1] == '=') + (s[n - 2] == '=');
	buf = malloc(n / 4 * 3 + 1);
	again = malloc(n + 1);
	if (!buf || !again)
		goto out;
	r = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)n);
	if (r < 0 || (size_t)r != n / 4 * 3)
		goto out;
	dlen = (size_t)r - pad;
	r = EVP_EncodeBlock((unsigned char *)again, buf, (int)dlen);
	if (r < 0 || (size_t)r != n || memcmp(again, s, n) != 0)
		goto out;
	*out = buf;
	*len = dlen;
	buf = NULL;
	rc = 0;
out:
	ERR_clear_error();
	free(buf);
	free(again);
	return rc;
}

/* ----------------------------------------------------------------- actors */

static void read_proc_line(pid_t pid, const char *what, char *out, size_t n)
{
	char path[64];
	ssize_t len;
	int fd;

	out[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, what);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	len = read(fd, out, n - 1);
	close(fd);
	if (len <= 0) {
		out[0] = '\0';
		return;
	}
	out[len] = '\0';
	out[strcspn(out, "\n")] = '\0';
}

pid_t hc_proc_tgid(pid_t tid)
{
	char path[64], buf[1024], *p;
	ssize_t len;
	long tgid;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return 0;
	buf[len] = '\0';
	p = strstr(buf, "\nTgid:");
	if (!p || sscanf(p + 6, "%ld", &tgid) != 1 || tgid <= 0)
		return 0;
	return (pid_t)tgid;
}

void hc_actor_from_pid(hc_actor *out, pid_t tid, uid_t uid, gid_t gid)
{
	char path[64];
	ssize_t len;
	pid_t pid;

	memset(out, 0, sizeof(*out));
	out->uid = uid;
	out->gid = gid;
	out->pid = tid;
	if (tid <= 0)
		return;
	pid = hc_proc_tgid(tid);
	if (pid > 0 && pid != tid) {
		out->pid = pid;
		out->tid = tid;
		read_proc_line(tid, "comm", out->thread, sizeof(out->thread));
	}
	read_proc_line(out->pid, "comm", out->comm, sizeof(out->comm));
	snprintf(path, sizeof(path), "/proc/%ld/exe", (long)out->pid);
	len = readlink(path, out->exe, sizeof(out->exe) - 1);
	out->exe[len > 0 ? len : 0] = '\0';
}

void hc_actor_self(hc_actor *out)
{
	hc_actor_from_pid(out, getpid(), getuid(), getgid());
}

/* ------------------------------------------------------------------- time */

void hc_time_now(char out[40])
{
	struct timespec ts;
	struct tm tm;
	char base[24];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		base[0] = '\0';
	snprintf(out, 40, "%.23s.%09dZ", base, (int)ts.tv_nsec);
}
