/*
 * test_versions.c - file versions in git: blobs, Git LFS objects and
 * pointers, staging and commits (checked with the git command when it is
 * installed), reading and checking versions, bounded memory, threads, and
 * the cost of storing a large incompressible file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#include <openssl/rand.h>

#include "hashchain.h"
#include "tap.h"
#include "versions.h"

#define MIB (1u << 20)

extern char **environ;

static char base[] = "/tmp/hozen-versions-XXXXXX";
static char gitdir[512], outfile[512];
static int have_git;

/* ----------------------------------------------------------- helpers */

/* Run argv with stdout and stderr into outfile; its exit status or -1. */
static int run(const char *const argv[])
{
	posix_spawn_file_actions_t fa;
	int status = -1;
	pid_t pid;

	if (posix_spawn_file_actions_init(&fa) != 0)
		return -1;
	posix_spawn_file_actions_addopen(&fa, 1, outfile,
					 O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	if (posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv,
			 environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* git --git-dir=STORE/git ARGS... (NULL-terminated); output in *out. */
__attribute__((sentinel)) static int git(char **out, ...)
{
	const char *argv[12];
	char dirarg[600];
	size_t len, n = 0;
	va_list ap;
	int st;

	snprintf(dirarg, sizeof(dirarg), "--git-dir=%s", gitdir);
	argv[n++] = "git";
	argv[n++] = dirarg;
	va_start(ap, out);
	while (n < 11 && (argv[n] = va_arg(ap, const char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	st = run(argv);
	if (out && hc_read_file(AT_FDCWD, outfile, 64 * MIB, out, &len) < 0)
		*out = NULL;
	return st;
}

static int write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc;

	if (fd < 0)
		return -1;
	rc = hc_write_all(fd, buf, len);
	close(fd);
	return rc;
}

static int file_equals(int fd, const void *buf, size_t len)
{
	char *got = malloc(len + 1);
	ssize_t n;
	int same;

	if (!got)
		return 0;
	n = pread(fd, got, len + 1, 0);
	same = n == (ssize_t)len && !memcmp(got, buf, len);
	free(got);
	return same;
}

static void random_bytes(uint8_t *buf, size_t len)
{
	/* Incompressible test content: OpenSSL's generator. */
	while (len > 0) {
		int n = len > (1u << 30) ? 1 << 30 : (int)len;

		if (RAND_bytes(buf, n) != 1)
			abort();
		buf += n;
		len -= (size_t)n;
	}
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long maxrss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* After a failed check: the error message. */
static void why(void)
{
	diag("error: %s", hc_error_message());
}

/* Store path's content with vs_store_fd. */
static int store_path(vs_repo *r, const char *path, const uint8_t *sha,
		      struct vs_version *v)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -1;
	}
	rc = vs_store_fd(r, fd, (uint64_t)st.st_size, sha, v);
	close(fd);
	return rc;
}

static void lfs_path(const uint8_t sha[HC_HASH_LEN], char *out, size_t n)
{
	char hex[HC_HEX_LEN + 1];

	hc_hex(sha, HC_HASH_LEN, hex);
	snprintf(out, n, "%s/lfs/objects/%.2s/%.2s/%s", gitdir, hex, hex + 2,
		 hex);
}

/* ------------------------------------------------------------- tests */

static struct vs_version small, big, linkv;
static char commit2[41], big_pointer[256];

/* The whole of a (small) file, NUL-terminated; NULL if unreadable. */
static char *read_all_file(const char *path, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0 && fstat(fd, &st) == 0 &&
	    (buf = malloc((size_t)st.st_size + 1)) &&
	    hc_pread_all(fd, buf, (size_t)st.st_size, 0) == 0) {
		buf[st.st_size] = '\0';
		*len = (size_t)st.st_size;
	} else {
		free(buf);
		buf = NULL;
	}
	if (fd >= 0)
		close(fd);
	return buf;
}

static void test_blobs(vs_repo *r)
{
	static const char text[] = "hello, evidence\n";
	char path[600], *out = NULL;
	uint8_t sha[HC_HASH_LEN], bad[HC_HASH_LEN];
	struct vs_version v, again;
	size_t jlen = 0, hlen = 0;
	uint64_t esize = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/small.txt", base);
	write_file(path, text, strlen(text));
	hc_sha256(text, strlen(text), sha);
	if (!ok(store_path(r, path, NULL, &small) == 0, "small file stored"))
		why();
	ok(!small.lfs && !small.existed && small.size == strlen(text),
	   "small file is a new blob");
	ok(!memcmp(small.sha256, sha, HC_HASH_LEN), "blob sha256 filled");
	ok(strlen(small.blob) == 40 &&
		   strspn(small.blob, "0123456789abcdef") == 40,
	   "blob id is 40 hex digits (%s)", small.blob);
	ok(store_path(r, path, sha, &again) == 0 && again.existed &&
		   !strcmp(again.blob, small.blob),
	   "same content again: existed, same blob");
	ok(vs_store_buf(r, text, strlen(text), &v) == 0 && v.existed &&
		   !strcmp(v.blob, small.blob) && !v.lfs,
	   "same content as a buffer: existed, same blob");
	memcpy(bad, sha, sizeof(bad));
	bad[0] ^= 1;
	ok(store_path(r, path, bad, &v) == HC_EVERIFY,
	   "blob whose content differs from the given sha256: HC_EVERIFY");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ok(vs_store_fd(r, fd, 100, NULL, &v) == HC_EFORMAT,
	   "size beyond the end of the file: HC_EFORMAT (%s)",
	   hc_error_message());
	ok(vs_store_fd(r, fd, 0, NULL, &v) == 0 &&
		   !strcmp(v.blob, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"),
	   "empty content is git's empty blob");
	close(fd);

	/* Until a commit, a new blob is in the journal as git hashes it. */
	snprintf(path, sizeof(path), "%s/hozen-journal", gitdir);
	out = read_all_file(path, &jlen);
	{
		size_t off = 0;
		int found = 0, e = 0;

		while (out && off < jlen &&
		       (e = vs_journal_entry(out + off, jlen - off, &hlen,
					     &esize)) == 1) {
			found |= esize == 16 &&
				 !memcmp(out + off,
					 "blob 16\0hello, evidence\n", 24);
			off += hlen + (size_t)esize;
		}
		ok(out && off == jlen && e == 1, "the journal parses whole");
		ok(found, "the new blob is in the journal as git hashes it");
	}
	free(out);
	out = NULL;
}

static void test_lfs(vs_repo *r)
{
	uint8_t *data = malloc(3 * MIB), sha[HC_HASH_LEN];
	char path[600], obj[700], pointer[256], hex[HC_HEX_LEN + 1];
	char *out = NULL;
	struct vs_version v;
	struct stat st;
	uint64_t size = 0;
	int fd = -1;

	random_bytes(data, 3 * MIB);
	hc_sha256(data, 3 * MIB, sha);
	hc_hex(sha, HC_HASH_LEN, hex);
	snprintf(path, sizeof(path), "%s/big.bin", base);
	write_file(path, data, 3 * MIB);
	if (!ok(store_path(r, path, NULL, &big) == 0, "3 MiB file stored"))
		why();
	ok(big.lfs && !big.existed && big.size == 3 * MIB, "stored as LFS");
	ok(!memcmp(big.sha256, sha, HC_HASH_LEN),
	   "LFS sha256 is the SHA-256 of the data");
	lfs_path(sha, obj, sizeof(obj));
	fd = open(obj, O_RDONLY | O_CLOEXEC);
	ok(fd >= 0 && file_equals(fd, data, 3 * MIB),
	   "LFS object holds the data");
	if (fd >= 0)
		close(fd);
	memset(&st, 0, sizeof(st));
	stat(obj, &st);
	ok((st.st_mode & 07777) == 0444, "LFS object is read-only (0%o)",
	   (unsigned)(st.st_mode & 07777));
	ok(store_path(r, path, sha, &v) == 0 && v.existed && v.lfs &&
		   !strcmp(v.blob, big.blob),
	   "same large content again, sha256 known: existed");

	snprintf(pointer, sizeof(pointer),
		 "version https://git-lfs.github.com/spec/v1\n"
		 "oid sha256:%s\nsize %u\n",
		 hex, 3 * MIB);
	fd = -1;
	ok(vs_open_version(r, big.blob, &fd, &size) == 0 && size == 3 * MIB &&
		   file_equals(fd, data, 3 * MIB),
	   "vs_open_version: the LFS object");
	if (fd >= 0)
		close(fd);
	{
		/* Not yet in git (the journal holds it): read it back. */
		int pfd = -1;
		uint64_t psize = 0;

		ok(vs_open_version(r, big.blob, &pfd, &psize) == 0 &&
			   psize == 3 * MIB,
		   "the LFS version reads back before any commit");
		if (pfd >= 0)
			close(pfd);
		snprintf(big_pointer, sizeof(big_pointer), "%s", pointer);
		(void)out;
	}

	/* Short content on the LFS path: an error, and no file left. */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	memset(sha, 0x5a, sizeof(sha));
	ok(vs_store_fd(r, fd, 4 * MIB, sha, &v) == HC_EFORMAT,
	   "LFS content shorter than its size: HC_EFORMAT (%s)",
	   hc_error_message());
	close(fd);
	{
		char dir[700];
		struct dirent *de;
		DIR *d;
		int n = 0;

		snprintf(dir, sizeof(dir), "%s/lfs/objects/5a/5a", gitdir);
		d = opendir(dir);
		while (d && (de = readdir(d)))
			n += de->d_name[0] != '.' ||
			     !strncmp(de->d_name, ".tmp", 4);
		if (d)
			closedir(d);
		ok(d && n == 0, "no temporary file left behind");
	}

	/* Content that looks like a pointer is stored as LFS. */
	ok(vs_store_buf(r, pointer, strlen(pointer), &v) == 0 && v.lfs &&
		   v.size == strlen(pointer),
	   "content that looks like a pointer goes to LFS");
	fd = -1;
	ok(vs_open_version(r, v.blob, &fd, &size) == 0 &&
		   size == strlen(pointer) &&
		   file_equals(fd, pointer, strlen(pointer)),
	   "and reads back as itself");
	if (fd >= 0)
		close(fd);
	free(data);
}

static void test_read_check(vs_repo *r)
{
	static const char text[] = "hello, evidence\n";
	char obj[700];
	uint64_t size = 0;
	struct stat st;
	int fd = -1;
	char c;

	ok(vs_open_version(r, small.blob, &fd, &size) == 0 &&
		   size == strlen(text) && file_equals(fd, text, strlen(text)),
	   "vs_open_version: the blob, in a memfd");
	ok(fd >= 0 && write(fd, "x", 1) < 0, "the memfd is read-only");
	if (fd >= 0)
		close(fd);
	ok(vs_open_version(r, "0123456789012345678901234567890123456789", &fd,
			   &size) == HC_ENOENT,
	   "vs_open_version of a missing blob: HC_ENOENT");

	ok(vs_check_version(r, small.blob, small.size, small.sha256, 0) == 0,
	   "check: good blob");
	if (!ok(vs_check_version(r, big.blob, big.size, big.sha256, 1) == 0,
		"check: good LFS version"))
		why();
	ok(vs_check_version(r, small.blob, small.size + 1, small.sha256, 0) ==
		   HC_EVERIFY,
	   "check: wrong size fails (%s)", hc_error_message());
	ok(vs_check_version(r, big.blob, big.size, small.sha256, 1) ==
		   HC_EVERIFY,
	   "check: wrong sha256 fails (%s)", hc_error_message());
	ok(vs_check_version(r, small.blob, small.size, small.sha256, 1) ==
		   HC_EVERIFY,
	   "check: a blob said to be LFS fails (%s)", hc_error_message());
	ok(vs_check_version(r, "0123456789012345678901234567890123456789",
			    small.size, small.sha256, 0) == HC_EVERIFY,
	   "check: missing blob fails (%s)", hc_error_message());
	ok(vs_check_version(r, "xyz", small.size, small.sha256, 0) ==
		   HC_EFORMAT,
	   "check: malformed blob id: HC_EFORMAT");

	/* Corrupt one byte of the LFS object. */
	lfs_path(big.sha256, obj, sizeof(obj));
	chmod(obj, 0644);
	fd = open(obj, O_RDWR | O_CLOEXEC);
	if (fd >= 0 && pread(fd, &c, 1, 12345) == 1) {
		c ^= 0x40;
		if (pwrite(fd, &c, 1, 12345) != 1)
			diag("cannot corrupt the object");
	}
	if (fd >= 0)
		close(fd);
	ok(vs_check_version(r, big.blob, big.size, big.sha256, 1) == HC_EVERIFY,
	   "check: corrupted LFS object fails (%s)", hc_error_message());
	ok(vs_open_version(r, big.blob, &fd, &size) == 0, "still opens");
	close(fd);

	/* A truncated object is moved aside and replaced on the next store. */
	ok(truncate(obj, 1000) == 0, "truncate the LFS object");
	ok(vs_open_version(r, big.blob, &fd, &size) == HC_EVERIFY,
	   "vs_open_version: wrong object size: HC_EVERIFY");
	{
		char path[600];
		struct vs_version v;

		snprintf(path, sizeof(path), "%s/big.bin", base);
		ok(store_path(r, path, big.sha256, &v) == 0 && !v.existed &&
			   !strcmp(v.blob, big.blob),
		   "storing it again replaces the damaged object");
	}
	ok(stat(obj, &st) == 0 && (uint64_t)st.st_size == big.size &&
		   vs_check_version(r, big.blob, big.size, big.sha256, 1) == 0,
	   "and the version checks again");
}

struct tree_line {
	const char *mode, *type, *path;
	const char *blob;
};

/* git ls-tree -r main is exactly lines. */
static int tree_is(const struct tree_line *lines, size_t n)
{
	char *out = NULL, expect[8192];
	size_t i, off = 0;
	int same;

	for (i = 0; i < n; i++)
		off += (size_t)snprintf(expect + off, sizeof(expect) - off,
					"%s %s %s\t%s\n", lines[i].mode,
					lines[i].type, lines[i].blob,
					lines[i].path);
	if (git(&out, "ls-tree", "-r", "main", NULL) != 0 || !out)
		return 0;
	same = !strcmp(out, expect);
	if (!same)
		diag("ls-tree:\n%s-- expected:\n%s", out, expect);
	free(out);
	return same;
}

static void test_commits(vs_repo *r)
{
	struct vs_version a, a2, x, n1, n2;
	char commit1[41] = "", *out = NULL;
	int rc;

	/* The blobs stored so far, though no path names them. */
	ok(vs_staged(r) == 0 && vs_pending(r) > 0 &&
		   vs_commit(r, 1, 1, "nothing", commit1, NULL) == 0 &&
		   vs_pending(r) == 0,
	   "commit with nothing staged keeps the batch's new blobs");
	ok(vs_commit(r, 1, 1, "nothing", commit1, NULL) == 1,
	   "commit with nothing staged and no new blob returns 1");
	ok(vs_store_buf(r, "a\n", 2, &a) == 0 &&
		   vs_store_buf(r, "a, changed\n", 11, &a2) == 0 &&
		   vs_store_buf(r, "x\n", 2, &x) == 0 &&
		   vs_store_buf(r, "new 1\n", 6, &n1) == 0 &&
		   vs_store_buf(r, "new 2\n", 6, &n2) == 0 &&
		   vs_store_buf(r, "small.txt", 9, &linkv) == 0,
	   "store some blobs");

	if (!ok(vs_stage(r, "README", small.blob, 0100644) == 0 &&
			vs_stage(r, "dir/a.txt", a.blob, 0100644) == 0 &&
			vs_stage(r, "dir/sub/big.bin", big.blob, 0100644) ==
				0 &&
			vs_stage(r, "dir/sub/deeper/run.sh", x.blob, 0100755) ==
				0 &&
			vs_stage(r, "dir2/x", x.blob, 0100644) == 0 &&
			vs_stage(r, "link", linkv.blob, 0120000) == 0 &&
			vs_stage_remove(r, "not/there") == 0,
		"stage files, nested directories, a symlink, a no-op removal"))
		why();
	ok(vs_staged(r) == 7, "7 changes staged");

	ok(vs_stage(r, ".git", x.blob, 0100644) == 0 &&
		   !vs_path_storable(r, ".git"),
	   "stage '.git': left out of the snapshot");
	ok(vs_stage(r, "d/.git/config", x.blob, 0100644) == 0 &&
		   !vs_path_storable(r, "d/.git/config") &&
		   vs_path_storable(r, "d/git/config"),
	   "stage 'd/.git/config': left out of the snapshot");
	ok(vs_stage(r, "a/../b", x.blob, 0100644) == HC_EINVAL &&
		   vs_stage(r, "/abs", x.blob, 0100644) == HC_EINVAL &&
		   vs_stage(r, "a//b", x.blob, 0100644) == HC_EINVAL &&
		   vs_stage(r, "a/", x.blob, 0100644) == HC_EINVAL &&
		   vs_stage(r, "", x.blob, 0100644) == HC_EINVAL &&
		   vs_stage_remove(r, "./a") == HC_EINVAL,
	   "bad paths: HC_EINVAL");
	ok(vs_stage(r, "f", x.blob, 0100600) == HC_EINVAL,
	   "bad mode: HC_EINVAL");
	ok(vs_stage(r, "f", "0123456789012345678901234567890123456789",
		    0100644) == HC_ENOENT,
	   "missing blob: HC_ENOENT (%s)", hc_error_message());
	ok(vs_staged(r) == 7, "refused changes are not staged");

	rc = vs_commit(r, 1, 5, "first snapshot", commit1, NULL);
	ok(rc == 0 && strlen(commit1) == 40, "first commit %s (%s)", commit1,
	   rc ? hc_error_message() : "ok");
	ok(vs_staged(r) == 0, "nothing staged after the commit");
	{
		char path[600];
		struct stat st;

		snprintf(path, sizeof(path), "%s/hozen-journal", gitdir);
		ok(stat(path, &st) == 0 && st.st_size == 0 &&
			   vs_batch_bytes(r) == 0,
		   "the commit packed the batch: the journal is empty");
	}

	if (have_git) {
		ok(git(&out, "cat-file", "-t", small.blob, NULL) == 0 && out &&
			   !strcmp(out, "blob\n"),
		   "git cat-file -t: blob");
		free(out);
		out = NULL;
		ok(git(&out, "cat-file", "-p", small.blob, NULL) == 0 && out &&
			   !strcmp(out, "hello, evidence\n"),
		   "git cat-file -p: the content");
		free(out);
		out = NULL;
		ok(git(&out, "cat-file", "-p", big.blob, NULL) == 0 && out &&
			   !strcmp(out, big_pointer),
		   "pointer blob is the exact Git LFS text");
		free(out);
		out = NULL;
		ok(git(&out, "count-objects", "-v", NULL) == 0 && out &&
			   !strncmp(out, "count: 0\n", 9),
		   "no loose object: %s", out ? out : "");
		free(out);
		out = NULL;
	}

	if (have_git) {
		const struct tree_line t1[] = {
			{"100644", "blob", "README", small.blob},
			{"100644", "blob", "dir/a.txt", a.blob},
			{"100644", "blob", "dir/sub/big.bin", big.blob},
			{"100755", "blob", "dir/sub/deeper/run.sh", x.blob},
			{"100644", "blob", "dir2/x", x.blob},
			{"120000", "blob", "link", linkv.blob},
		};

		ok(tree_is(t1, sizeof(t1) / sizeof(t1[0])),
		   "first tree is as staged");
	}

	/* Second: modify, remove a subtree, change types, later wins. */
	if (!ok(vs_stage(r, "dir/a.txt", a2.blob, 0100644) == 0 &&
			vs_stage_remove(r, "dir/sub") == 0 &&
			vs_stage(r, "new.txt", n1.blob, 0100644) == 0 &&
			vs_stage(r, "new.txt", n2.blob, 0100644) == 0 &&
			vs_stage(r, "gone", n1.blob, 0100644) == 0 &&
			vs_stage_remove(r, "gone") == 0 &&
			vs_stage_remove(r, "link") == 0 &&
			vs_stage(r, "link/inside", x.blob, 0100644) == 0 &&
			vs_stage(r, "dir2", n1.blob, 0100644) == 0 &&
			vs_stage(r, "README/now/a/dir", a.blob, 0100644) == 0 &&
			vs_stage_remove(r, "dir/sub/never") == 0,
		"stage the second round"))
		why();
	rc = vs_commit(r, 6, 9, "second snapshot", commit2, NULL);
	ok(rc == 0 && strcmp(commit1, commit2), "second commit %s (%s)",
	   commit2, rc ? hc_error_message() : "ok");

	if (!have_git)
		return;
	{
		const struct tree_line t2[] = {
			{"100644", "blob", "README/now/a/dir", a.blob},
			{"100644", "blob", "dir/a.txt", a2.blob},
			{"100644", "blob", "dir2", n1.blob},
			{"100644", "blob", "link/inside", x.blob},
			{"100644", "blob", "new.txt", n2.blob},
		};

		ok(tree_is(t2, sizeof(t2) / sizeof(t2[0])),
		   "second tree: modified, subtree removed, types changed, "
		   "later change won");
	}
	ok(git(&out, "rev-list", "--count", "main", NULL) == 0 && out &&
		   !strcmp(out, "3\n"),
	   "git log: 3 commits");
	free(out);
	out = NULL;
	ok(git(&out, "log", "--format=%an <%ae>|%B", "main", NULL) == 0 &&
		   out &&
		   !strcmp(out, "hozen <hozen@localhost>|second snapshot\n\n"
				"Hozen-Records: 6-9\n\n"
				"hozen <hozen@localhost>|first snapshot\n\n"
				"Hozen-Records: 1-5\n\n"
				"hozen <hozen@localhost>|nothing\n\n"
				"Hozen-Records: 1-1\n\n"),
	   "git log: authors, summaries and Hozen-Records trailers");
	free(out);
	out = NULL;
	ok(git(&out, "log", "-1", "--format=%(trailers:key=Hozen-Records)",
	       "main", NULL) == 0 &&
		   out && !strcmp(out, "Hozen-Records: 6-9\n\n"),
	   "git parses the trailer");
	free(out);
	out = NULL;
	ok(git(&out, "symbolic-ref", "HEAD", NULL) == 0 && out &&
		   !strcmp(out, "refs/heads/main\n"),
	   "HEAD is refs/heads/main");
	free(out);
}

static void test_existing(int storefd)
{
	char dir[600], *msg = NULL;
	struct vs_version v;
	vs_repo *ro = NULL;
	int fd, n = 0;

	if (!ok(vs_open_existing(&ro, storefd) == 0,
		"vs_open_existing on the repository"))
		why();
	if (!ro)
		return;
	ok(vs_commit_message(ro, commit2, &msg) == 0 && msg &&
		   !strcmp(msg, "second snapshot\n\nHozen-Records: 6-9\n"),
	   "vs_commit_message: the raw message");
	free(msg);
	msg = NULL;
	ok(vs_commit_message(ro, small.blob, &msg) == HC_EFORMAT && !msg,
	   "vs_commit_message of a blob: HC_EFORMAT (%s)", hc_error_message());
	ok(vs_commit_message(ro, "0123456789012345678901234567890123456789",
			     &msg) == HC_ENOENT,
	   "vs_commit_message of a missing commit: HC_ENOENT");
	ok(vs_commit_message(ro, "HEAD", &msg) == HC_EFORMAT,
	   "vs_commit_message of a malformed id: HC_EFORMAT");
	ok(vs_check_version(ro, big.blob, big.size, big.sha256, 1) == 0 &&
		   vs_check_version(ro, small.blob, small.size, small.sha256,
				    0) == 0,
	   "read-only: versions check");
	ok(vs_store_buf(ro, "x", 1, &v) == HC_EINVAL &&
		   vs_stage(ro, "x", small.blob, 0100644) == HC_EINVAL,
	   "read-only: no storing or staging");
	vs_close(ro);
	ro = NULL;

	/* Missing, empty and broken STORE/git. */
	snprintf(dir, sizeof(dir), "%s/store3", base);
	mkdir(dir, 0700);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ok(vs_open_existing(&ro, fd) == HC_ENOENT && !ro,
	   "vs_open_existing without git/: HC_ENOENT");
	mkdirat(fd, "git", 0700);
	ok(vs_open_existing(&ro, fd) == HC_ENOENT && !ro,
	   "vs_open_existing on an empty git/: HC_ENOENT");
	{
		int gfd = openat(fd, "git", O_RDONLY | O_DIRECTORY);
		DIR *d = fdopendir(gfd);
		struct dirent *de;

		while (d && (de = readdir(d)))
			n += strcmp(de->d_name, ".") &&
			     strcmp(de->d_name, "..");
		if (d)
			closedir(d);
		ok(n == 0, "and creates nothing there");
	}
	close(openat(fd, "git/junk", O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	ok(vs_open_existing(&ro, fd) == HC_EFORMAT && !ro,
	   "vs_open_existing on a git/ that is no repository: HC_EFORMAT (%s)",
	   hc_error_message());
	ok(vs_open(&ro, fd, NULL) == HC_EFORMAT && !ro,
	   "vs_open too: HC_EFORMAT");
	close(fd);
}

/* ----------------------------------------------------------- threads */

#define THREADS	   4
#define PER_THREAD 25

struct worker {
	vs_repo *r;
	int id, failed;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	uint8_t *buf = malloc(MIB + 100);
	struct vs_version v;
	char path[64];
	int i;

	if (!buf) {
		w->failed++;
		return NULL;
	}
	for (i = 0; i < PER_THREAD; i++) {
		size_t len = i % 10 == 0 ? MIB + 100 : 100;

		memset(buf, 'a' + w->id, len);
		snprintf((char *)buf, 64, "thread %d item %d\n", w->id, i);
		snprintf(path, sizeof(path), "threads/t%d/f%d", w->id, i);
		if (vs_store_buf(w->r, buf, len, &v) < 0 ||
		    v.lfs != (len >= MIB) ||
		    vs_stage(w->r, path, v.blob, 0100644) < 0 ||
		    vs_check_version(w->r, v.blob, v.size, v.sha256, v.lfs) < 0)
			w->failed++;
	}
	free(buf);
	return NULL;
}

static void test_threads(vs_repo *r)
{
	struct worker w[THREADS];
	pthread_t t[THREADS];
	char commit[41], *out = NULL;
	int i, failed = 0, lines = 0;
	const char *p;

	for (i = 0; i < THREADS; i++) {
		w[i].r = r;
		w[i].id = i;
		w[i].failed = 0;
		pthread_create(&t[i], NULL, work, &w[i]);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		failed += w[i].failed;
	}
	ok(failed == 0, "%d threads store, stage and check concurrently",
	   THREADS);
	ok(vs_commit(r, 10, 10, "threads", commit, NULL) == 0, "commit them");
	if (!have_git)
		return;
	if (git(&out, "ls-tree", "-r", "--name-only", "main", "threads",
		NULL) == 0 &&
	    out)
		for (p = out; (p = strchr(p, '\n')); p++)
			lines++;
	ok(lines == THREADS * PER_THREAD, "all %d files in the tree (%d)",
	   THREADS * PER_THREAD, lines);
	free(out);
}

/* ----------------------------------------------- memory and timing */

static void test_memory(vs_repo *r)
{
	char path[600];
	struct vs_version v;
	long before, after;
	int fd;

	snprintf(path, sizeof(path), "%s/sparse.bin", base);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ok(fd >= 0 && ftruncate(fd, 64 * MIB) == 0, "64 MiB sparse file");
	before = maxrss_kib();
	ok(vs_store_fd(r, fd, 64 * MIB, NULL, &v) == 0 && v.lfs,
	   "stored through LFS");
	after = maxrss_kib();
	ok(after - before < 32 * 1024, "peak RSS grew by %ld KiB (< 32 MiB)",
	   after - before);
	ok(vs_check_version(r, v.blob, v.size, v.sha256, 1) == 0, "and checks");
	close(fd);
	unlink(path);
}

#define RUNS 3

static double time_store(vs_repo *r, int fd, uint64_t size, const uint8_t *sha,
			 const char *unlink_first, int *rc)
{
	struct vs_version v;
	double t0;

	if (unlink_first)
		unlink(unlink_first);
	syncfs(fd); /* start with nothing dirty */
	t0 = now();
	*rc = vs_store_fd(r, fd, size, sha, &v);
	return now() - t0;
}

/* cp src dst, then (with do_fsync) fsync dst. */
static double time_cp(const char *src, const char *dst, int do_fsync, int *rc)
{
	const char *argv[] = {"cp", src, dst, NULL};
	double t0;
	int fd;

	unlink(dst);
	fd = open(src, O_RDONLY | O_CLOEXEC);
	syncfs(fd);
	close(fd);
	t0 = now();
	*rc = run(argv);
	if (*rc == 0 && do_fsync) {
		fd = open(dst, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fsync(fd) < 0)
			*rc = -1;
		if (fd >= 0)
			close(fd);
	}
	return now() - t0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *t)
{
	qsort(t, RUNS, sizeof(*t), cmp_double);
	return t[RUNS / 2];
}

static void report(const char *what, double *t, uint64_t size)
{
	double m = median(t);

	diag("256 MiB incompressible, %-38s %6.3f s %6.0f MB/s", what, m,
	     (double)size / 1e6 / m);
}

static void test_timing(vs_repo *r)
{
	const uint64_t size = 256ull * MIB;
	uint8_t *chunk = malloc(MIB), sha[HC_HASH_LEN];
	char path[600], copy[600], store2[600], obj[700], obj2[700];
	double t_cp[RUNS], t_cps[RUNS], t_lfs[RUNS], t_known[RUNS],
		t_nofsync[RUNS], t_dedup[RUNS];
	struct vs_options o = {.lfs_threshold = MIB, .fsync = 0};
	vs_repo *nofsync = NULL;
	hc_sha256_ctx *c = NULL;
	int fd, sfd, i, bad = 0, rc;
	uint64_t off;

	if (RUNNING_ON_VALGRIND) {
		diag("timing skipped under valgrind");
		free(chunk);
		return;
	}
	snprintf(path, sizeof(path), "%s/random.bin", base);
	snprintf(copy, sizeof(copy), "%s/random.copy", base);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	hc_sha256_new(&c);
	for (off = 0; fd >= 0 && chunk && off < size; off += MIB) {
		random_bytes(chunk, MIB);
		hc_sha256_update(c, chunk, MIB);
		if (hc_write_all(fd, chunk, MIB) < 0)
			break;
	}
	hc_sha256_final(c, sha);
	hc_sha256_free(c);
	free(chunk);
	ok(fd >= 0 && off == size && fsync(fd) == 0,
	   "256 MiB of /dev/urandom in a file");

	snprintf(store2, sizeof(store2), "%s/store2", base);
	mkdir(store2, 0700);
	snprintf(obj2, sizeof(obj2), "%s/git", store2);
	mkdir(obj2, 0700);
	sfd = open(store2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ok(vs_open(&nofsync, sfd, &o) == 0, "a repository without fsync");
	lfs_path(sha, obj, sizeof(obj));
	snprintf(obj2, sizeof(obj2), "%s/git/lfs/objects/%s", store2,
		 obj + strlen(gitdir) + strlen("/lfs/objects/"));

	for (i = 0; i < RUNS && nofsync; i++) {
		t_cp[i] = time_cp(path, copy, 0, &rc);
		bad += rc != 0;
		t_cps[i] = time_cp(path, copy, 1, &rc);
		bad += rc != 0;
		t_lfs[i] = time_store(r, fd, size, NULL, obj, &rc);
		bad += rc != 0;
		t_dedup[i] = time_store(r, fd, size, NULL, NULL, &rc);
		bad += rc != 0;
		t_known[i] = time_store(r, fd, size, sha, obj, &rc);
		bad += rc != 0;
		t_nofsync[i] = time_store(nofsync, fd, size, NULL, obj2, &rc);
		bad += rc != 0;
	}
	ok(nofsync && bad == 0, "cp and LFS stores, %d runs each", RUNS);
	if (nofsync && bad == 0) {
		report("cp:", t_cp, size);
		report("cp + fsync:", t_cps, size);
		report("LFS store, sha256 computed, fsync:", t_lfs, size);
		report("LFS store, sha256 known, fsync:", t_known, size);
		report("LFS store, sha256 computed, no fsync:", t_nofsync,
		       size);
		report("LFS store, already there (hash only):", t_dedup, size);
	}
	vs_close(nofsync);
	close(sfd);
	close(fd);
	unlink(path);
	unlink(copy);
}

/*
 * A crash before the commit: the batch's blobs are only in the journal.
 * Reopening reads them back; an incomplete last entry is kept aside
 * and the good entries stay.
 */
static void test_journal(vs_repo **rp, int storefd)
{
	struct vs_version a, b;
	char path[600], commit[41];
	size_t blobs = 0;
	uint64_t torn = 0, size = 0;
	struct stat st;
	int fd = -1, n = 0;
	struct dirent *de;
	DIR *d;

	ok(vs_store_buf(*rp, "uncommitted one\n", 16, &a) == 0 &&
		   vs_store_buf(*rp, "uncommitted two\n", 16, &b) == 0 &&
		   !a.existed && !b.existed,
	   "two new blobs, not committed");
	ok(vs_batch_bytes(*rp) >= 32, "they are in the batch (%llu bytes)",
	   (unsigned long long)vs_batch_bytes(*rp));
	vs_close(*rp); /* no commit: as after a crash */
	*rp = NULL;
	/* A torn entry at the end, as a power cut in an append leaves. */
	snprintf(path, sizeof(path), "%s/hozen-journal", gitdir);
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	ok(fd >= 0 && write(fd, "blob 99\0only some", 18) == 18,
	   "tear the journal's tail");
	if (fd >= 0)
		close(fd);

	{
		vs_repo *ro = NULL;

		ok(vs_open_existing(&ro, storefd) == 0, "open read-only");
		vs_journal_replayed(ro, &blobs, &torn);
		ok(blobs == 2 && torn == 18 && ro &&
			   vs_open_version(ro, a.blob, &fd, &size) == 0 &&
			   size == 16 &&
			   file_equals(fd, "uncommitted one\n", 16),
		   "read-only: the journal's blobs are readable, the torn "
		   "tail counted (%zu blobs, %llu bytes)",
		   blobs, (unsigned long long)torn);
		if (fd >= 0)
			close(fd);
		fd = -1;
		vs_close(ro);
		ok(stat(path, &st) == 0 && st.st_size == 2 * 24 + 18,
		   "read-only changes nothing on disk");
	}

	if (!ok(vs_open(rp, storefd, NULL) == 0, "reopen after the crash"))
		why();
	vs_journal_replayed(*rp, &blobs, &torn);
	ok(blobs == 2 && torn == 18, "2 blobs read back, 18 bytes torn");
	ok(*rp && vs_open_version(*rp, b.blob, &fd, &size) == 0 && size == 16 &&
		   file_equals(fd, "uncommitted two\n", 16),
	   "a blob read back from the journal has its content");
	if (fd >= 0)
		close(fd);
	ok(stat(path, &st) == 0 && st.st_size == 2 * 24,
	   "the journal keeps the good entries only");
	d = opendir(gitdir);
	while (d && (de = readdir(d))) {
		char aside[1200];

		if (strncmp(de->d_name, "hozen-journal.torn-", 19))
			continue;
		snprintf(aside, sizeof(aside), "%s/%s", gitdir, de->d_name);
		n += stat(aside, &st) == 0 && st.st_size == 2 * 24 + 18;
	}
	if (d)
		closedir(d);
	ok(n == 1, "the whole torn journal is kept aside");
	ok(*rp && vs_stage(*rp, "recovered", a.blob, 0100644) == 0 &&
		   vs_commit(*rp, 15, 15, "recovered", commit, NULL) == 0,
	   "a blob read back can be committed");
	ok(stat(path, &st) == 0 && st.st_size == 0,
	   "after the commit the journal is empty");
}

/*
 * A pack per commit: after VS_MIDX_EVERY (256) of them a multi-pack-index
 * covers them, and every object still reads back, through it too.
 */
static void test_many_packs(vs_repo *r)
{
	char path[600], name[64], commit[41], buf[64];
	struct vs_version v[260];
	struct stat st;
	int i, bad = 0, fd = -1;
	uint64_t size = 0;

	for (i = 0; i < 260; i++) {
		snprintf(buf, sizeof(buf), "pack %d\n", i);
		snprintf(name, sizeof(name), "packs/p%d", i);
		if (vs_store_buf(r, buf, strlen(buf), &v[i]) < 0 ||
		    vs_stage(r, name, v[i].blob, 0100644) < 0 ||
		    vs_commit(r, 100 + (uint64_t)i, 100 + (uint64_t)i, "pack",
			      commit, NULL) != 0)
			bad++;
	}
	ok(bad == 0, "260 commits, a pack each");
	snprintf(path, sizeof(path), "%s/objects/pack/multi-pack-index",
		 gitdir);
	ok(stat(path, &st) == 0 && st.st_size > 0,
	   "a multi-pack-index was written");
	for (i = 0; i < 260; i++) {
		snprintf(buf, sizeof(buf), "pack %d\n", i);
		if (vs_open_version(r, v[i].blob, &fd, &size) < 0 ||
		    !file_equals(fd, buf, strlen(buf)))
			bad++;
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	ok(bad == 0, "every object reads back");
	if (have_git) {
		char *out = NULL;

		ok(git(&out, "fsck", "--strict", "--no-dangling", NULL) == 0,
		   "git fsck --strict passes with it");
		free(out);
	}
	ok(vs_stage_remove(r, "packs") == 0 &&
		   vs_commit(r, 400, 400, "no packs dir", commit, NULL) == 0,
	   "and the directory goes again");
}

/*
 * When commits keep failing, the batch stops at 64 MiB: a further blob
 * is refused (nothing half-taken), and taken once a commit succeeds.
 */
static void test_batch_cap(vs_repo *r)
{
	size_t len = MIB - 1, i, taken = 0;
	uint8_t *buf = malloc(len);
	struct vs_version v;
	char commit[41], name[64];
	uint64_t before;
	int rc = 0;

	if (!buf)
		return;
	memset(buf, 0x5c, len);
	for (i = 0; i < 70 && rc == 0; i++) {
		memcpy(buf, &i, sizeof(i)); /* a new blob each time */
		rc = vs_store_buf(r, buf, len, &v);
		if (rc == 0) {
			taken++;
			snprintf(name, sizeof(name), "cap/b%zu", i);
			vs_stage(r, name, v.blob, 0100644);
		}
	}
	ok(rc == HC_ENOMEM && taken >= 60 && taken < 70,
	   "uncommitted content stops near 64 MiB (%zu blobs taken): %s", taken,
	   rc ? hc_error_message() : "none refused");
	before = vs_batch_bytes(r);
	ok(vs_store_buf(r, buf, len, &v) == HC_ENOMEM &&
		   vs_batch_bytes(r) == before,
	   "refused again, the batch unchanged");
	ok(vs_commit(r, 500, 500, "cap", commit, NULL) == 0 &&
		   vs_batch_bytes(r) == 0,
	   "a commit empties the batch");
	ok(vs_store_buf(r, buf, len, &v) == 0 && !v.existed,
	   "then the refused content is taken");
	ok(vs_stage_remove(r, "cap") == 0 &&
		   vs_stage(r, "cap-last", v.blob, 0100644) == 0 &&
		   vs_commit(r, 501, 501, "cap done", commit, NULL) == 0,
	   "and committed");
	free(buf);
}

/* ------------------------------------------- refs and git's own files */

/* A new store base/name with an empty git/ (its path in gdir). */
static int new_store(const char *name, char *gdir, size_t n)
{
	char dir[600];

	snprintf(dir, sizeof(dir), "%s/%s", base, name);
	mkdir(dir, 0700);
	snprintf(gdir, n, "%s/git", dir);
	mkdir(gdir, 0700);
	return open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Write gdir/rel (its directories made as needed). */
static void put(const char *gdir, const char *rel, const char *text)
{
	char path[1200], *slash;

	snprintf(path, sizeof(path), "%s/%s", gdir, rel);
	for (slash = strchr(path + strlen(gdir) + 1, '/'); slash;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(path, 0755);
		*slash = '/';
	}
	unlink(path);
	if (write_file(path, text, strlen(text)) < 0)
		diag("cannot write '%s'", path);
}

static void del(const char *gdir, const char *rel)
{
	char path[1200];

	snprintf(path, sizeof(path), "%s/%s", gdir, rel);
	if (unlink(path) < 0 && rmdir(path) < 0)
		diag("cannot remove '%s'", path);
}

/*
 * vs_check_refs() on ro finds exactly expect problems, the first naming
 * a file that starts with where (if not NULL).
 */
static int refs_expect(vs_repo *ro, const char *main_id, const char *ver,
		       int expect, const char *where, const char *what)
{
	const struct hc_finding *first;
	hc_findings *f = NULL;
	size_t i;
	int n, good;

	if (hc_findings_new(&f) < 0)
		return ok(0, "%s: no memory", what);
	n = vs_check_refs(ro, main_id, ver, 1, f);
	first = hc_findings_get(f, 0);
	good = n == expect && (size_t)n == hc_findings_count(f) &&
	       (!where || !first ||
		!strncmp(first->where, where, strlen(where)));
	ok(good, "%s: %d finding%s%s%s", what, n, n == 1 ? "" : "s",
	   first ? " - " : "", first ? first->reason : "");
	if (!good) {
		if (n < 0)
			why();
		for (i = 0; i < hc_findings_kept(f); i++)
			diag("%s: %s", hc_findings_get(f, i)->where,
			     hc_findings_get(f, i)->reason);
	}
	hc_findings_free(f);
	return good;
}

/* A commit made with the git command (args after "commit-tree"). */
static int git_commit_tree(char out[41], const char *tree, const char *p1,
			   const char *p2, const char *msg)
{
	char *o = NULL;
	int st;

	if (p2)
		st = git(&o, "commit-tree", tree, "-p", p1, "-p", p2, "-m", msg,
			 NULL);
	else
		st = git(&o, "commit-tree", tree, "-p", p1, "-m", msg, NULL);
	if (st == 0 && o && strlen(o) == 41)
		snprintf(out, 41, "%.40s", o);
	else
		st = -1;
	free(o);
	return st;
}

static void test_refs_history(vs_repo *ro, const char *c2, const char *c3,
			      const char *v3, const char *gdir)
{
	char tree[41], forged[41], line[64], *o = NULL, obj[2048], path[1200];

	setenv("GIT_AUTHOR_NAME", "insider", 1);
	setenv("GIT_AUTHOR_EMAIL", "insider@localhost", 1);
	setenv("GIT_COMMITTER_NAME", "insider", 1);
	setenv("GIT_COMMITTER_EMAIL", "insider@localhost", 1);
	snprintf(line, sizeof(line), "%s^{tree}", c3);
	if (git(&o, "rev-parse", line, NULL) != 0 || !o || strlen(o) != 41) {
		ok(0, "git rev-parse the tree");
		free(o);
		return;
	}
	snprintf(tree, sizeof(tree), "%.40s", o);
	free(o);

	/* A forged commit on top, the chain told of it: no trailer. */
	ok(git_commit_tree(forged, tree, c3, NULL, "forged, no trailer") == 0,
	   "git commit-tree: a forged commit without a trailer");
	snprintf(line, sizeof(line), "%s\n", forged);
	put(gdir, "refs/heads/main", line);
	refs_expect(ro, forged, v3, 1, "git",
		    "a commit of main without its "
		    "Hozen-Records trailer");
	/* A merge. */
	ok(git_commit_tree(forged, tree, c3, c2,
			   "merge\n\nHozen-Records: 7-8") == 0,
	   "git commit-tree: a merge");
	snprintf(line, sizeof(line), "%s\n", forged);
	put(gdir, "refs/heads/main", line);
	refs_expect(ro, forged, v3, 1, "git", "a merge in main");
	/* A commit whose tree is missing. */
	snprintf(obj, sizeof(obj),
		 "tree 0123456789abcdef0123456789abcdef01234567\n"
		 "parent %s\n"
		 "author a <a@localhost> 0 +0000\n"
		 "committer a <a@localhost> 0 +0000\n\n"
		 "no tree\n\nHozen-Records: 9-9\n",
		 c3);
	snprintf(path, sizeof(path), "%s/commit.txt", base);
	write_file(path, obj, strlen(obj));
	if (git(&o, "hash-object", "-t", "commit", "--literally", "-w", path,
		NULL) == 0 &&
	    o && strlen(o) == 41) {
		snprintf(forged, sizeof(forged), "%.40s", o);
		snprintf(line, sizeof(line), "%s\n", forged);
		put(gdir, "refs/heads/main", line);
		refs_expect(ro, forged, v3, 1, "git",
			    "a commit of main whose tree is missing");
	} else {
		ok(0, "git hash-object a commit");
	}
	free(o);
	snprintf(line, sizeof(line), "%s\n", c3);
	put(gdir, "refs/heads/main", line);
}

static void test_refs_config(vs_repo *ro, const char *c3, const char *v3,
			     const char *gdir)
{
	char path[1200], *orig = NULL, *text = NULL;
	size_t len = 0;

	snprintf(path, sizeof(path), "%s/config", gdir);
	orig = read_all_file(path, &len);
	if (!ok(orig != NULL, "read git/config"))
		return;
	text = malloc(len + 1024);
	if (!text) {
		free(orig);
		return;
	}
	snprintf(text, len + 1024, "%s\tpager = less\n", orig);
	put(gdir, "config", text);
	refs_expect(ro, c3, v3, 1, "git/config:", "config: core.pager");
	snprintf(text, len + 1024,
		 "%s[core]\n\thooksPath = /tmp/hooks\n"
		 "\tfsmonitor = /tmp/x\n"
		 "\tsshCommand = sh -c id\n"
		 "[alias]\n\tst = !sh -c id\n"
		 "[include]\n\tpath = /tmp/x.cfg\n",
		 orig);
	put(gdir, "config", text);
	refs_expect(ro, c3, v3, 5, "git/config:",
		    "config: core.hooksPath, core.fsmonitor, "
		    "core.sshCommand, alias.st, include.path: one each");
	snprintf(text, len + 1024, "%s[core] editor = vi\n", orig);
	put(gdir, "config", text);
	refs_expect(ro, c3, v3, 1,
		    "git/config:", "config: a setting on its section's line");
	snprintf(text, len + 1024, "%s\tbare = false\n", orig);
	put(gdir, "config", text);
	refs_expect(ro, c3, v3, 1,
		    "git/config:", "config: an allowed key with another value");
	snprintf(text, len + 1024,
		 "# a comment\n[core]\n\trepositoryformatversion = 0\n"
		 "\tfilemode = false\n\tbare = true\n\n; another\n");
	put(gdir, "config", text);
	refs_expect(ro, c3, v3, 0, NULL,
		    "config: comments, blank lines, filemode = false pass");
	put(gdir, "config", orig);
	free(text);
	free(orig);
}

static void test_refs_files(vs_repo *ro, const char *c1, const char *c3,
			    const char *v3, const char *gdir)
{
	static const struct {
		const char *rel, *text, *where, *what;
	} bad[] = {
		{"refs/tags/v1", NULL, "git/refs/tags/v1", "a tag"},
		{"refs/heads/other", NULL, "git/refs/heads/other",
		 "another branch"},
		{"refs/hozen/other", NULL, "git/refs/hozen/other",
		 "another ref under refs/hozen/"},
		{"FETCH_HEAD", NULL, "git/FETCH_HEAD", "FETCH_HEAD"},
		{"ORIG_HEAD", NULL, "git/ORIG_HEAD", "ORIG_HEAD"},
		{"info/grafts", NULL, "git/info/grafts", "info/grafts"},
		{"shallow", NULL, "git/shallow", "shallow"},
		{"commondir", "../elsewhere\n", "git/commondir", "commondir"},
		{"objects/info/alternates", "/tmp/elsewhere/objects\n",
		 "git/objects/info/alternates", "alternates"},
		{"objects/info/http-alternates", "http://x/objects\n",
		 "git/objects/info/http-alternates", "http-alternates"},
		{"objects/info/commit-graph", "CGPH",
		 "git/objects/info/commit-graph", "a commit-graph"},
		{"hooks/post-update", "#!/bin/sh\nid\n",
		 "git/hooks/post-update", "a hook"},
		{"evidence-elsewhere", "x", "git/evidence-elsewhere",
		 "an unexpected file at the top of git/"},
	};
	char line[128], rel[128], head[41] = "";
	size_t i;

	snprintf(line, sizeof(line), "%s\n", c3);
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		put(gdir, bad[i].rel, bad[i].text ? bad[i].text : line);
		refs_expect(ro, c3, v3, 1, bad[i].where, bad[i].what);
		del(gdir, bad[i].rel);
	}
	snprintf(rel, sizeof(rel), "refs/replace/%s", c3);
	snprintf(line, sizeof(line), "%s\n", c1);
	put(gdir, rel, line);
	refs_expect(ro, c3, v3, 1, "git/refs/replace/", "a replace ref");
	del(gdir, rel);
	put(gdir, "refs/heads/main.lock", line);
	refs_expect(ro, c3, v3, 0, NULL,
		    "refs/heads/main.lock (a ref being written) is no ref");
	del(gdir, "refs/heads/main.lock");
	put(gdir, "HEAD", line);
	refs_expect(ro, c3, v3, 1, "git/HEAD", "a detached HEAD");
	put(gdir, "HEAD", "ref: refs/heads/other\n");
	refs_expect(ro, c3, v3, 1, "git/HEAD", "HEAD on another branch");
	put(gdir, "HEAD", "ref: refs/heads/main\n");

	/* main moved to another commit (the first one). */
	put(gdir, "refs/heads/main", line);
	refs_expect(ro, c3, v3, 1, "git/refs/heads/main",
		    "main moved to another commit");
	ok(vs_head(ro, head) == 0 && !strcmp(head, c1),
	   "vs_head reads the moved ref");
	snprintf(line, sizeof(line), "%s\n", c3);
	put(gdir, "refs/heads/main", line);

	/* The packed-refs form. */
	{
		char packed[512];

		snprintf(packed, sizeof(packed),
			 "# pack-refs with: peeled fully-peeled sorted \n"
			 "%s refs/heads/main\n%s refs/hozen/versions\n",
			 c3, v3);
		put(gdir, "packed-refs", packed);
		del(gdir, "refs/heads/main");
		del(gdir, "refs/hozen/versions");
		refs_expect(ro, c3, v3, 0, NULL,
			    "refs packed as git pack-refs writes them");
		ok(vs_head(ro, head) == 0 && !strcmp(head, c3),
		   "vs_head reads the packed ref");
		snprintf(packed, sizeof(packed),
			 "# pack-refs with: peeled fully-peeled sorted \n"
			 "%s refs/heads/main\n%s refs/hozen/versions\n",
			 c1, v3);
		put(gdir, "packed-refs", packed);
		refs_expect(ro, c3, v3, 1, "git/packed-refs",
			    "a packed main naming another commit");
		snprintf(line, sizeof(line), "%s\n", c3);
		put(gdir, "refs/heads/main", line);
		refs_expect(ro, c3, v3, 0, NULL,
			    "a packed entry a loose ref shadows is ignored, "
			    "as git ignores it");
		snprintf(packed, sizeof(packed),
			 "# pack-refs with: peeled fully-peeled sorted \n"
			 "%s refs/heads/main\n%s refs/hozen/versions\n"
			 "%s refs/tags/v1\n",
			 c3, v3, c1);
		put(gdir, "packed-refs", packed);
		refs_expect(ro, c3, v3, 1, "git/packed-refs:4", "a packed tag");
		del(gdir, "packed-refs");
		refs_expect(ro, c3, NULL, 0, NULL,
			    "without refs/hozen/versions, unchecked");
		refs_expect(ro, c3, v3, 1, "git/refs/hozen/versions",
			    "without refs/hozen/versions, checked");
		snprintf(line, sizeof(line), "%s\n", v3);
		put(gdir, "refs/hozen/versions", line);
	}
	refs_expect(ro, c3, v3, 0, NULL, "all restored");

	/* Not a regular file: a finding, never a hang. */
	{
		char path[1200];

		snprintf(path, sizeof(path), "%s/packed-refs", gdir);
		alarm(60);
		ok(mkfifo(path, 0600) == 0, "a FIFO as packed-refs");
		refs_expect(ro, c3, v3, 1, "git/packed-refs",
			    "a FIFO as packed-refs");
		unlink(path);
		snprintf(path, sizeof(path), "%s/refs/hozen/versions", gdir);
		unlink(path);
		ok(symlink("/etc/hostname", path) == 0,
		   "a symlink as refs/hozen/versions");
		refs_expect(ro, c3, NULL, 1, "git/refs/hozen/versions",
			    "a symlink as a ref");
		unlink(path);
		alarm(0);
		snprintf(line, sizeof(line), "%s\n", v3);
		put(gdir, "refs/hozen/versions", line);
	}
}

/*
 * refs/heads/main, refs/hozen/versions and the rest of git/ against what
 * the chain says and what hozen writes: each tampering is exactly one
 * finding, naming its file.
 */
static void test_refs(void)
{
	char gdir[sizeof(gitdir)], c1[41], c2[41], c3[41], v1[41], v2[41];
	char v3[41], *o = NULL, line[64], path[1200], saved[sizeof(gitdir)];
	struct vs_version a, b;
	vs_repo *w = NULL, *ro = NULL;
	int sfd = new_store("store5", gdir, sizeof(gdir));

	if (!ok(sfd >= 0 && vs_open(&w, sfd, NULL) == 0, "a fresh store"))
		return;
	/* git() works on this store meanwhile. */
	snprintf(saved, sizeof(saved), "%s", gitdir);
	snprintf(gitdir, sizeof(gitdir), "%s", gdir);
	ok(vs_store_buf(w, "refs one\n", 9, &a) == 0 &&
		   vs_stage(w, "one", a.blob, 0100644) == 0 &&
		   vs_commit(w, 1, 2, "first", c1, v1) == 0 && strlen(v1) == 40,
	   "vs_commit gives the refs/hozen/versions commit (%s)", v1);
	ok(vs_store_buf(w, "refs two\n", 9, &b) == 0 &&
		   vs_stage(w, "two", b.blob, 0100644) == 0 &&
		   vs_commit(w, 3, 4, "second", c2, v2) == 0 &&
		   strlen(v2) == 40 && strcmp(v1, v2),
	   "a new one for each batch with versions");
	ok(vs_stage_remove(w, "one") == 0 &&
		   vs_commit(w, 5, 6, "removal", c3, v3) == 0 &&
		   !strcmp(v3, v2),
	   "a batch of removals only: the unchanged one");
	if (have_git) {
		ok(git(&o, "rev-parse", "refs/hozen/versions", NULL) == 0 &&
			   o && !strncmp(o, v3, 40),
		   "it is what refs/hozen/versions names");
		free(o);
		o = NULL;
	}
	vs_close(w);
	w = NULL;
	if (!ok(vs_open_existing(&ro, sfd) == 0, "open it read-only"))
		goto out;
	refs_expect(ro, c3, v3, 0, NULL, "a store as hozen writes it");
	refs_expect(ro, c2, v3, 1, "git/refs/heads/main",
		    "main is not the chain's last commit");
	refs_expect(ro, NULL, v3, 1, "git/refs/heads/main",
		    "main exists, the chain records no commit");
	refs_expect(ro, c3, v1, 1, "git/refs/hozen/versions",
		    "refs/hozen/versions is not the chain's");
	ok(vs_check_refs(ro, "HEAD", NULL, 1, NULL) == HC_EINVAL,
	   "a bad main id: HC_EINVAL");
	test_refs_files(ro, c1, c3, v3, gdir);
	test_refs_config(ro, c3, v3, gdir);
	if (have_git)
		test_refs_history(ro, c2, c3, v3, gdir);
	refs_expect(ro, c3, v3, 0, NULL, "all restored");
	vs_close(ro);
	ro = NULL;

	/* What libgit2 would act on when it opens for writing: refused. */
	alarm(60);
	snprintf(path, sizeof(path), "%s/x.fifo", base);
	mkfifo(path, 0600);
	{
		char cfg[1400];

		snprintf(cfg, sizeof(cfg),
			 "[core]\n\trepositoryformatversion = 0\n"
			 "\tfilemode = true\n\tbare = true\n"
			 "[include]\n\tpath = %s\n",
			 path);
		put(gdir, "config", cfg);
		ok(vs_open(&w, sfd, NULL) == HC_EFORMAT && !w &&
			   strstr(hc_error_message(), "git/config:6"),
		   "vs_open refuses a config including a FIFO (%s)",
		   hc_error_message());
		put(gdir, "config",
		    "[core]\n\trepositoryformatversion = 0\n"
		    "\tfilemode = true\n\tbare = true\n");
	}
	put(gdir, "objects/info/alternates", "/tmp/elsewhere\n");
	ok(vs_open(&w, sfd, NULL) == HC_EFORMAT && !w,
	   "vs_open refuses alternates (%s)", hc_error_message());
	del(gdir, "objects/info/alternates");
	put(gdir, "commondir", "../x\n");
	ok(vs_open(&w, sfd, NULL) == HC_EFORMAT && !w,
	   "vs_open refuses a commondir (%s)", hc_error_message());
	del(gdir, "commondir");
	alarm(0);
	unlink(path);
	ok(vs_open(&w, sfd, NULL) == 0, "and opens the store as it was");
	ok(w && vs_head(w, line) == 0 && !strcmp(line, c3),
	   "vs_head: main (%s)", line);
	vs_close(w);
out:
	snprintf(gitdir, sizeof(gitdir), "%s", saved);
	close(sfd);
}

/*
 * A FIFO, symlink or device anywhere libgit2 or versions.c opens a file:
 * a clear error (or a finding), never a hang.
 */
static void test_not_regular(vs_repo *r, int storefd)
{
	char obj[700], saved[800], path[1200], gdir[700];
	vs_repo *x = NULL;
	uint64_t size = 0;
	int fd = -1, sfd;

	alarm(60);
	/* The LFS object of a version. */
	lfs_path(big.sha256, obj, sizeof(obj));
	snprintf(saved, sizeof(saved), "%s.saved", obj);
	ok(rename(obj, saved) == 0 && mkfifo(obj, 0600) == 0,
	   "a FIFO in place of an LFS object");
	ok(vs_check_version(r, big.blob, big.size, big.sha256, 1) ==
			   HC_EVERIFY &&
		   strstr(hc_error_message(), "FIFO"),
	   "vs_check_version: HC_EVERIFY (%s)", hc_error_message());
	ok(vs_open_version(r, big.blob, &fd, &size) == HC_EVERIFY && fd < 0,
	   "vs_open_version: HC_EVERIFY (%s)", hc_error_message());
	unlink(obj);
	ok(symlink(saved, obj) == 0, "a symlink in place of the LFS object");
	ok(vs_check_version(r, big.blob, big.size, big.sha256, 1) ==
			   HC_EVERIFY &&
		   strstr(hc_error_message(), "symlink"),
	   "vs_check_version: HC_EVERIFY (%s)", hc_error_message());
	unlink(obj);
	ok(rename(saved, obj) == 0 &&
		   vs_check_version(r, big.blob, big.size, big.sha256, 1) == 0,
	   "the object back: the version checks");
	(void)storefd;

	/* In a store of its own: the journal, a pack index, lfs/objects. */
	sfd = new_store("store6", gdir, sizeof(gdir));
	ok(vs_open(&x, sfd, NULL) == 0, "another store");
	vs_close(x);
	x = NULL;
	snprintf(path, sizeof(path), "%s/hozen-journal", gdir);
	unlink(path);
	ok(mkfifo(path, 0600) == 0, "a FIFO in place of the journal");
	ok(vs_open_existing(&x, sfd) == HC_EFORMAT && !x &&
		   strstr(hc_error_message(), "hozen-journal"),
	   "vs_open_existing: HC_EFORMAT (%s)", hc_error_message());
	ok(vs_open(&x, sfd, NULL) == HC_EFORMAT && !x,
	   "vs_open: HC_EFORMAT (%s)", hc_error_message());
	unlink(path);
	ok(symlink("/etc/hostname", path) == 0,
	   "a symlink in place of the journal");
	ok(vs_open_existing(&x, sfd) == HC_EFORMAT && !x &&
		   strstr(hc_error_message(), "symlink"),
	   "vs_open_existing: HC_EFORMAT (%s)", hc_error_message());
	unlink(path);
	snprintf(path, sizeof(path), "%s/objects/pack/pack-0.idx", gdir);
	ok(mkfifo(path, 0600) == 0, "a FIFO as a pack index");
	ok(vs_open_existing(&x, sfd) == HC_EFORMAT && !x &&
		   strstr(hc_error_message(), "pack-0.idx"),
	   "vs_open_existing: HC_EFORMAT (%s)", hc_error_message());
	ok(vs_open(&x, sfd, NULL) == HC_EFORMAT && !x,
	   "vs_open: HC_EFORMAT (%s)", hc_error_message());
	unlink(path);
	snprintf(path, sizeof(path), "%s/lfs/objects", gdir);
	rmdir(path);
	ok(symlink("/tmp", path) == 0, "a symlink as lfs/objects");
	ok(vs_open_existing(&x, sfd) == HC_EFORMAT && !x,
	   "vs_open_existing: HC_EFORMAT (%s)", hc_error_message());
	unlink(path);
	ok(vs_open_existing(&x, sfd) == 0, "without it the store opens");
	vs_close(x);
	alarm(0);
	close(sfd);
}

/* ------------------------------------------------------ a live store */

#define LIVE_MAX 600

struct live {
	pthread_mutex_t mu;
	struct vs_version v[LIVE_MAX];
	size_t n, total; /* published, to write */
	int done, storefd;
	int wfail, rfail;
	unsigned checks, opens, commits;
	char wwhy[512], rwhy[512];
};

/* A daemon: stores blobs (into the journal), commits (emptying it). */
static void *live_writer(void *arg)
{
	struct vs_options o = {.lfs_threshold = MIB, .fsync = 0};
	struct live *L = arg;
	uint8_t *buf = malloc(256 * 1024);
	struct vs_version v;
	char name[64], commit[41];
	vs_repo *w = NULL;
	size_t i, len;

	if (!buf || vs_open(&w, L->storefd, &o) < 0) {
		snprintf(L->wwhy, sizeof(L->wwhy), "open: %s",
			 hc_error_message());
		L->wfail++;
		goto out;
	}
	for (i = 0; i < L->total; i++) {
		len = 1 + (i * 7919) % (256 * 1024 - 1);
		memset(buf, (int)(i & 0xff), len);
		snprintf((char *)buf, len < 32 ? len : 32, "live %zu", i);
		snprintf(name, sizeof(name), "live/f%zu", i);
		if (vs_store_buf(w, buf, len, &v) < 0 ||
		    vs_stage(w, name, v.blob, 0100644) < 0) {
			snprintf(L->wwhy, sizeof(L->wwhy), "store: %s",
				 hc_error_message());
			L->wfail++;
			break;
		}
		pthread_mutex_lock(&L->mu);
		L->v[L->n++] = v;
		pthread_mutex_unlock(&L->mu);
		if (i % 5 == 4) {
			if (vs_commit(w, i, i, "live", commit, NULL) < 0) {
				snprintf(L->wwhy, sizeof(L->wwhy), "commit: %s",
					 hc_error_message());
				L->wfail++;
				break;
			}
			L->commits++;
		}
	}
out:
	pthread_mutex_lock(&L->mu);
	L->done = 1;
	pthread_mutex_unlock(&L->mu);
	vs_close(w);
	free(buf);
	return NULL;
}

/* hozen verify: opens the store, checks every version published. */
static void *live_reader(void *arg)
{
	struct live *L = arg;
	vs_repo *ro = NULL;
	struct vs_version v;
	size_t n, j, from;
	int done = 0, rc;
	unsigned round = 0;

	while (!done) {
		pthread_mutex_lock(&L->mu);
		n = L->n;
		done = L->done;
		pthread_mutex_unlock(&L->mu);
		if (n == 0)
			continue;
		if (!ro || round++ % 8 == 0) {
			vs_close(ro);
			ro = NULL;
			rc = vs_open_existing(&ro, L->storefd);
			L->opens++;
			if (rc < 0) {
				snprintf(L->rwhy, sizeof(L->rwhy),
					 "vs_open_existing: %s",
					 hc_error_message());
				L->rfail++;
				continue;
			}
		}
		/* The newest: in the journal, or just packed. */
		from = n > 12 ? n - 12 : 0;
		for (j = from; j < n; j++) {
			pthread_mutex_lock(&L->mu);
			v = L->v[j];
			pthread_mutex_unlock(&L->mu);
			rc = vs_check_version(ro, v.blob, v.size, v.sha256,
					      v.lfs);
			if (rc == 0 && !vs_has(ro, v.blob))
				rc = hc_error_set(HC_EVERIFY,
						  "vs_has: no blob '%s'",
						  v.blob);
			L->checks++;
			if (rc < 0) {
				snprintf(L->rwhy, sizeof(L->rwhy),
					 "version %zu: %s", j,
					 hc_error_message());
				L->rfail++;
			}
		}
	}
	vs_close(ro);
	return NULL;
}

/*
 * Verification of a mounted store: one thread stores and commits as the
 * daemon does (appending to the journal, packing and emptying it),
 * another opens the store read-only and checks the versions written so
 * far, again and again.  No crash, no version "missing".
 */
static void test_live(void)
{
	static struct live L;
	char gdir[700];
	pthread_t tw, tr;

	memset(&L, 0, sizeof(L));
	pthread_mutex_init(&L.mu, NULL);
	L.total = RUNNING_ON_VALGRIND ? 40 : 400;
	L.storefd = new_store("store7", gdir, sizeof(gdir));
	alarm(RUNNING_ON_VALGRIND ? 600 : 120);
	pthread_create(&tw, NULL, live_writer, &L);
	pthread_create(&tr, NULL, live_reader, &L);
	pthread_join(tw, NULL);
	pthread_join(tr, NULL);
	alarm(0);
	if (!ok(L.wfail == 0, "the writer stored %zu blobs, %u commits", L.n,
		L.commits))
		diag("%s", L.wwhy);
	if (!ok(L.rfail == 0 && L.checks > 0,
		"read-only, every version written so far checks: %u checks, "
		"%u opens, %d failures",
		L.checks, L.opens, L.rfail))
		diag("last failure: %s", L.rwhy);
	pthread_mutex_destroy(&L.mu);
	close(L.storefd);
}

/* ---------------------------------------------- the cost of the check */

/*
 * vs_check_refs on a store of n files in 100 directories, committed in
 * c commits (HOZEN_TEST_REFS_FILES and HOZEN_TEST_REFS_COMMITS change
 * them: the figures in the report came from 100,000 files).
 */
static void test_refs_cost(void)
{
	struct vs_options o = {.lfs_threshold = MIB, .fsync = 0};
	const char *env = getenv("HOZEN_TEST_REFS_FILES");
	const char *envc = getenv("HOZEN_TEST_REFS_COMMITS");
	size_t n = env			 ? strtoul(env, NULL, 10)
		   : RUNNING_ON_VALGRIND ? 1000
					 : 10000;
	size_t c = envc ? strtoul(envc, NULL, 10) : 10;
	char gdir[700], name[64], buf[64], commit[41], versions[41];
	struct vs_version v;
	vs_repo *w = NULL, *ro = NULL;
	size_t i, bad = 0;
	double t0, t_check;
	int sfd = new_store("store8", gdir, sizeof(gdir)), found = -1;

	if (!ok(vs_open(&w, sfd, &o) == 0, "a store for %zu files", n))
		return;
	t0 = now();
	for (i = 0; i < n; i++) {
		snprintf(buf, sizeof(buf), "file %zu\n", i);
		snprintf(name, sizeof(name), "d%03zu/f%06zu", i % 100, i);
		if (vs_store_buf(w, buf, strlen(buf), &v) < 0 ||
		    vs_stage(w, name, v.blob, 0100644) < 0)
			bad++;
		if ((i + 1) % (c && n / c ? n / c : 1) == 0 &&
		    vs_commit(w, i, i, "cost", commit, versions) < 0)
			bad++;
	}
	if (vs_staged(w) && vs_commit(w, n, n, "cost", commit, versions) < 0)
		bad++;
	ok(bad == 0, "%zu files stored, %zu commits (%.1f s)", n, c,
	   now() - t0);
	vs_close(w);
	if (vs_open_existing(&ro, sfd) == 0) {
		t0 = now();
		found = vs_check_refs(ro, commit, versions, 1, NULL);
		t_check = now() - t0;
		ok(found == 0,
		   "vs_check_refs on %zu files: %d findings, %.3f s", n, found,
		   t_check);
	} else {
		ok(0, "open read-only: %s", hc_error_message());
	}
	vs_close(ro);
	close(sfd);
}

int main(void)
{
	const char *git_version_argv[] = {"git", "--version", NULL};
	struct vs_options opts = {.lfs_threshold = MIB, .fsync = 1};
	char path[600], commit[41], *out = NULL;
	vs_repo *r = NULL;
	struct vs_version v;
	int storefd;
	int quick = getenv("HOZEN_TEST_QUICK") != NULL;

	if (!mkdtemp(base)) {
		printf("Bail out! mkdtemp failed\n");
		return 1;
	}
	snprintf(gitdir, sizeof(gitdir), "%s/git", base);
	snprintf(outfile, sizeof(outfile), "%s/out.txt", base);
	mkdir(gitdir, 0700);
	storefd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	have_git = run(git_version_argv) == 0;
	if (!have_git)
		diag("git is not installed: skipping the git command checks");

	if (!ok(vs_open(&r, storefd, &opts) == 0, "create the repository"))
		why();
	if (!r) {
		printf("Bail out! cannot open the repository\n");
		return 1;
	}
	{
		struct vs_options huge = {.lfs_threshold = VS_BLOB_MAX + 1};
		vs_repo *bad = NULL;

		ok(vs_open(&bad, storefd, &huge) == HC_EINVAL && !bad,
		   "threshold above VS_BLOB_MAX: HC_EINVAL");
	}
	test_memory(r); /* first: nothing else has raised the peak yet */
	test_blobs(r);
	test_lfs(r);
	test_read_check(r);
	test_not_regular(r, storefd);
	test_commits(r);

	/* Reopen the existing repository and commit on top. */
	vs_close(r);
	r = NULL;
	if (!ok(vs_open(&r, storefd, NULL) == 0, "reopen the repository"))
		why();
	ok(vs_check_version(r, big.blob, big.size, big.sha256, 1) == 0,
	   "versions check after reopening");
	test_existing(storefd);
	test_threads(r);
	ok(vs_stage_remove(r, "threads") == 0 &&
		   vs_commit(r, 11, 12, "remove a directory", commit, NULL) ==
			   0,
	   "remove a whole directory");
	if (have_git) {
		ok(git(&out, "ls-tree", "--name-only", "main", NULL) == 0 &&
			   out &&
			   !strcmp(out, "README\ndir\ndir2\nlink\nnew.txt\n"),
		   "the directory is gone, the rest stays");
		free(out);
		out = NULL;
	}
	ok(vs_stage_remove(r, "dir") == 0 &&
		   vs_stage(r, "dir/fresh", small.blob, 0100644) == 0 &&
		   vs_commit(r, 13, 14, "replace a directory", commit, NULL) ==
			   0,
	   "remove a directory and add a file below its name");
	if (have_git) {
		ok(git(&out, "ls-tree", "-r", "--name-only", "main", "dir",
		       NULL) == 0 &&
			   out && !strcmp(out, "dir/fresh\n"),
		   "only the new file is in it");
		free(out);
		out = NULL;
		ok(git(&out, "rev-list", "--count", "main", NULL) == 0 && out &&
			   !strcmp(out, "6\n"),
		   "6 commits in all");
		free(out);
		out = NULL;
	}

	if (have_git) {
		int st = git(&out, "fsck", "--strict", "--no-dangling", NULL);

		ok(st == 0, "git fsck --strict passes");
		if (st != 0 && out)
			diag("%s", out);
		free(out);
		out = NULL;
	}

	test_journal(&r, storefd);
	/*
	 * HOZEN_TEST_QUICK (the valgrind run) leaves out what measures size
	 * and speed: hundreds of MiB through valgrind prove nothing more;
	 * and the 260 packs, whose code the sanitized run checks for leaks
	 * (LeakSanitizer) at a tenth of valgrind's time.
	 */
	if (!quick)
		test_many_packs(r);
	if (!quick)
		test_batch_cap(r);
	test_refs();
	test_live();
	if (!quick)
		test_refs_cost();

	/* A stray vs_store_buf after everything: still fine. */
	snprintf(path, sizeof(path), "%s", "late");
	ok(vs_store_buf(r, path, strlen(path), &v) == 0, "late store");

	if (!quick)
		test_timing(r);
	vs_close(r);
	vs_close(NULL);
	close(storefd);
	tap_rmrf(base);
	return tap_done();
}
