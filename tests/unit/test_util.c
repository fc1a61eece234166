/*
 * test_util.c - errors, durable I/O helpers, hex and SHA-256, actors, time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "hashchain.h"
#include "tap.h"

static void test_hash(void)
{
	uint8_t h[HC_HASH_LEN], back[HC_HASH_LEN];
	char hex[HC_HEX_LEN + 1];
	hc_sha256_ctx *c = NULL;

	/* FIPS 180-2, appendix B.1 */
	ok(hc_sha256("abc", 3, h) == 0, "sha256 of abc");
	hc_hex(h, HC_HASH_LEN, hex);
	ok(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb4"
			"10ff61f20015ad"),
	   "sha256 abc matches FIPS 180-2");
	ok(hc_unhex(hex, back, HC_HASH_LEN) == 0 && !memcmp(h, back, 32),
	   "unhex round trip");
	ok(hc_unhex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61"
		    "F20015AD",
		    back, HC_HASH_LEN) == 0 &&
		   !memcmp(h, back, 32),
	   "unhex accepts upper case");
	ok(hc_unhex("zz", back, 1) == HC_EFORMAT, "unhex rejects non-hex");
	ok(hc_unhex("abc", back, 2) == HC_EFORMAT, "unhex rejects odd length");
	ok(hc_unhex("ab:cd", back, 2) == HC_EFORMAT,
	   "unhex rejects separators");
	ok(hc_sha256_new(&c) == 0 && hc_sha256_update(c, "a", 1) == 0 &&
		   hc_sha256_update(c, "bc", 2) == 0 &&
		   hc_sha256_final(c, back) == 0 && !memcmp(h, back, 32),
	   "streaming sha256 equals one-shot");
	ok(hc_sha256_update(c, "abc", 3) == 0 &&
		   hc_sha256_final(c, back) == 0 && !memcmp(h, back, 32),
	   "streaming context is reusable after final");
	hc_sha256_free(c);
	hc_sha256_free(NULL);
}

static void test_errors(void)
{
	int rc;

	rc = hc_error_set(HC_EFORMAT, "bad '%s'", "x");
	ok(rc == HC_EFORMAT && !strcmp(hc_error_message(), "bad 'x'"),
	   "error message set once where found");
	errno = ENOENT;
	rc = hc_error_set(HC_ESYS, "cannot open '%s'", "y");
	ok(rc == HC_ESYS && hc_error_errno() == ENOENT &&
		   strstr(hc_error_message(), "no such file"),
	   "HC_ESYS appends strerror and keeps errno");
	ok(hc_error_exit_code(0) == 0 && hc_error_exit_code(HC_EVERIFY) == 1 &&
		   hc_error_exit_code(HC_ETORN) == 1 &&
		   hc_error_exit_code(HC_EFORMAT) == 2 &&
		   hc_error_exit_code(HC_ESYS) == 2,
	   "exit codes: 0 ok, 1 verification, 2 other");
}

static void test_files(void)
{
	char dir[] = "/tmp/hozen-util-XXXXXX", *buf = NULL, big[5000];
	size_t len = 0;
	struct stat st;
	int dfd;

	ok(mkdtemp(dir) != NULL, "temp dir");
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	ok(hc_create_file(dfd, "a", "hello", 5, 0600) == 0, "create file");
	ok(hc_create_file(dfd, "a", "again", 5, 0600) == HC_EEXIST,
	   "create refuses to overwrite");
	ok(fstatat(dfd, "a", &st, 0) == 0 && (st.st_mode & 0777) == 0600,
	   "create sets the mode");
	ok(hc_read_file(dfd, "a", 100, &buf, &len) == 0 && len == 5 &&
		   !strcmp(buf, "hello"),
	   "read file back");
	free(buf);
	buf = NULL;
	ok(hc_atomic_write(dfd, "a", "replaced", 8, 0644) == 0,
	   "atomic replace");
	ok(hc_read_file(dfd, "a", 100, &buf, &len) == 0 &&
		   !strcmp(buf, "replaced"),
	   "atomic replace content");
	free(buf);
	buf = NULL;
	ok(faccessat(dfd, "a.tmp.1", F_OK, 0) != 0,
	   "no temporary file left behind");
	ok(hc_read_file(dfd, "a", 4, &buf, &len) == HC_EFORMAT && !buf,
	   "read refuses a file over the limit");
	ok(symlinkat("a", dfd, "link") == 0, "make symlink");
	ok(hc_read_file(dfd, "link", 100, &buf, &len) == HC_EFORMAT &&
		   strstr(hc_error_message(), "symbolic link"),
	   "read refuses a symlink");
	ok(hc_atomic_write(dfd, "link", "x", 1, 0644) == 0 &&
		   fstatat(dfd, "link", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		   S_ISREG(st.st_mode),
	   "atomic write replaces a symlink, never writes through it");
	ok(hc_read_file(dfd, "missing", 100, &buf, &len) == HC_ENOENT,
	   "read of a missing file is HC_ENOENT");
	memset(big, 'x', sizeof(big));
	ok(hc_create_file(dfd, "big", big, sizeof(big), 0644) == 0 &&
		   hc_read_file(dfd, "big", sizeof(big), &buf, &len) == 0 &&
		   len == sizeof(big),
	   "file of exactly the limit is read");
	free(buf);
	ok(hc_fsync_dir(dfd, ".") == 0, "fsync dir");
	close(dfd);
	tap_rmrf(dir);
}

/* A FIFO, a socket, a directory or a link in place of a file. */
static void test_odd_files(void)
{
	char dir[] = "/tmp/hozen-odd-XXXXXX", *buf = NULL;
	struct sockaddr_un sa;
	struct stat st;
	int dfd, fd = -1, sock, rc;

	ok(mkdtemp(dir) != NULL, "temp dir");
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	ok(mkfifoat(dfd, "fifo", 0600) == 0, "make a FIFO");
	/* Without a writer, opening a FIFO blocks unless O_NONBLOCK. */
	ok(hc_read_file(dfd, "fifo", 100, &buf, NULL) == HC_EFORMAT &&
		   strstr(hc_error_message(), "not a regular file (a FIFO)"),
	   "read of a FIFO is refused at once: %s", hc_error_message());
	ok(hc_open_regular(dfd, "fifo", O_WRONLY | O_APPEND, &fd, NULL) ==
			   HC_EFORMAT &&
		   fd == -1 && strstr(hc_error_message(), "FIFO"),
	   "open of a FIFO for appending is refused at once: %s",
	   hc_error_message());
	ok(hc_open_regular(dfd, "fifo", O_RDWR, &fd, NULL) == HC_EFORMAT,
	   "open of a FIFO read-write is refused: %s", hc_error_message());
	ok(mkdirat(dfd, "sub", 0700) == 0 &&
		   hc_read_file(dfd, "sub", 100, &buf, NULL) == HC_EFORMAT &&
		   strstr(hc_error_message(), "a directory"),
	   "read of a directory is refused: %s", hc_error_message());
	ok(hc_open_regular(dfd, "sub", O_WRONLY, &fd, NULL) == HC_EFORMAT,
	   "open of a directory for writing is refused: %s",
	   hc_error_message());
	sock = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", dir);
	rc = sock >= 0 ? bind(sock, (struct sockaddr *)&sa, sizeof(sa)) : -1;
	ok(rc == 0 &&
		   hc_read_file(dfd, "sock", 100, &buf, NULL) == HC_EFORMAT &&
		   strstr(hc_error_message(), "socket"),
	   "read of a socket is refused: %s", hc_error_message());
	if (sock >= 0)
		close(sock);
	ok(symlinkat("fifo", dfd, "link") == 0 &&
		   hc_open_regular(dfd, "link", O_RDONLY, &fd, NULL) ==
			   HC_EFORMAT,
	   "a symlink to a FIFO is refused: %s", hc_error_message());
	ok(hc_create_file(dfd, "file", "abc", 3, 0600) == 0 &&
		   hc_open_regular(dfd, "file", O_RDONLY, &fd, &st) == 0 &&
		   st.st_size == 3 && !(fcntl(fd, F_GETFL) & O_NONBLOCK) &&
		   (fcntl(fd, F_GETFD) & FD_CLOEXEC),
	   "a regular file opens, blocking, close-on-exec, with its stat");
	if (fd >= 0)
		close(fd);
	ok(hc_open_regular(dfd, "none", O_RDONLY, &fd, NULL) == HC_ENOENT,
	   "a missing file is HC_ENOENT");
	free(buf);
	close(dfd);
	tap_rmrf(dir);
}

static void test_actor_time(void)
{
	hc_actor a;
	char t[40];

	hc_actor_self(&a);
	/* Under valgrind the command is memcheck's. */
	ok(a.pid == getpid() && a.uid == getuid() && a.comm[0] &&
		   a.exe[0] == '/',
	   "actor of self: pid, uid, comm '%s', exe", a.comm);
	hc_actor_from_pid(&a, 999999999, 1, 2);
	ok(a.uid == 1 && a.gid == 2 && !a.comm[0] && !a.exe[0],
	   "actor of a vanished process keeps ids, empty names");
	hc_time_now(t);
	ok(strlen(t) == 30 && t[10] == 'T' && t[29] == 'Z' && t[19] == '.',
	   "time is RFC 3339 UTC with nanoseconds: %s", t);
}

int main(void)
{
	test_hash();
	test_errors();
	test_files();
	test_odd_files();
	test_actor_time();
	return tap_done();
}
