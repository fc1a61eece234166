/*
 * cmd_mount.c - hozen mount: serve a store's live tree through FUSE.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "fs.h"
#include "hozen.h"

static const char mount_help[] =
	"usage: hozen mount [OPTIONS] STORE MOUNTPOINT\n"
	"\n"
	"Serve the store's live tree on MOUNTPOINT.  Work there with any\n"
	"tool: every change (write, create, rename, link, attribute and\n"
	"xattr change, removal, refused attempt) becomes a record in the\n"
	"chain naming the process that made it, with the SHA-256 of every\n"
	"write; every closed or fsync'ed file is versioned in the store's\n"
	"git repository.  Files created through the mount belong to the\n"
	"caller.  Unmount with 'fusermount3 -u MOUNTPOINT' (or SIGTERM):\n"
	"everything is committed, checkpointed and the unmount recorded.\n"
	"\n"
	"Before mounting, the store is checked as 'hozen verify' checks it\n"
	"(the chain, the case, git's refs, the live tree against what the\n"
	"records make it; a file is read only if it changed since the seal\n"
	"of the last unmount), and a store that fails is refused.  After\n"
	"a crash it is recovered first: a torn log tail kept and recorded,\n"
	"acts recorded but never done marked failed, files written but\n"
	"not versioned versioned.\n"
	"\n"
	"Policy: by default (preserve) removals, truncations and renames\n"
	"apply to the live view only: a file's content is versioned before\n"
	"anything can replace it, and every version stays in git.\n"
	"\n"
	"  -r, --read-only          write blocker: every change is refused\n"
	"                           with EROFS (and recorded)\n"
	"  -w, --worm               a file is immutable (EPERM) from its\n"
	"                           first version: the close of its last\n"
	"                           handle open for writing, or its first\n"
	"                           fsync, whichever comes first; also\n"
	"                           through handles opened before, and in\n"
	"                           every later mount while the order is\n"
	"                           in force\n"
	"  -R, --log-reads          record every open for reading too\n"
	"                           (also of /.hozen/'s versions)\n"
	"  -X, --no-xattr-read      do not serve xattr reads (ENOSYS); on\n"
	"                           kernels before 5.11 small writes get\n"
	"                           about 3 times faster (the kernel asks\n"
	"                           for capabilities before each one)\n"
	"  -W, --writeback          let the kernel cache writes: faster\n"
	"                           small writes, but a write record then\n"
	"                           covers what the kernel merged and names\n"
	"                           the handle's opener, not each write(2)'s\n"
	"                           process\n"
	"  -F, --force              mount a store that fails verification\n"
	"                           (every problem recorded in the mount\n"
	"                           record)\n"
	"  -N, --nonempty           mount over a directory that is not\n"
	"                           empty (its content is hidden meanwhile)\n"
	"  -f, --foreground         do not daemonize; log to stderr\n"
	"  -p, --passphrase-file F  passphrase of an encrypted key\n"
	"  -c, --commit-every N     versions per git commit (256)\n"
	"  -i, --commit-interval MS at most this long between commits\n"
	"                           (1000 ms)\n"
	"  -o, --option OPT         pass a mount option to FUSE\n"
	"  -d, --debug              FUSE debug output (with -f)\n"
	"  -h, --help               show this help\n";

int cmd_mount(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"read-only", no_argument, NULL, 'r'},
		{"worm", no_argument, NULL, 'w'},
		{"log-reads", no_argument, NULL, 'R'},
		{"no-xattr-read", no_argument, NULL, 'X'},
		{"writeback", no_argument, NULL, 'W'},
		{"force", no_argument, NULL, 'F'},
		{"nonempty", no_argument, NULL, 'N'},
		{"foreground", no_argument, NULL, 'f'},
		{"passphrase-file", required_argument, NULL, 'p'},
		{"commit-every", required_argument, NULL, 'c'},
		{"commit-interval", required_argument, NULL, 'i'},
		{"option", required_argument, NULL, 'o'},
		{"debug", no_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct fs_options o = {0};
	const char *pass_file = NULL, *extra[32] = {NULL};
	char *pass = NULL;
	uint64_t n;
	int c, rc, nextra = 0;

	while ((c = getopt_long(argc, argv, "rwRXWFNfp:c:i:o:dh", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'r':
			o.read_only = 1;
			break;
		case 'w':
			o.worm = 1;
			break;
		case 'R':
			o.log_reads = 1;
			break;
		case 'W':
			o.writeback = 1;
			break;
		case 'X':
			o.no_xattr_read = 1;
			break;
		case 'F':
			o.force = 1;
			break;
		case 'N':
			o.nonempty = 1;
			break;
		case 'f':
			o.foreground = 1;
			break;
		case 'p':
			pass_file = optarg;
			break;
		case 'c':
			if (parse_u64(optarg, &n) < 0 || n == 0 || n > 1000000)
				return fail_usage("mount",
						  "--commit-every: expected a "
						  "number from 1 to 1000000");
			o.commit_every = (unsigned)n;
			break;
		case 'i':
			if (parse_u64(optarg, &n) < 0 || n == 0 || n > 86400000)
				return fail_usage("mount",
						  "--commit-interval: expected "
						  "milliseconds from 1 to "
						  "86400000");
			o.commit_ms = (unsigned)n;
			break;
		case 'o':
			if (nextra == 31)
				return fail_usage("mount", "too many -o");
			extra[nextra++] = optarg;
			break;
		case 'd':
			o.debug = 1;
			break;
		case 'h':
			return print_help(mount_help);
		default:
			return fail_option("mount", argv);
		}
	}
	if (optind + 2 != argc)
		return fail_usage("mount", "expected STORE and MOUNTPOINT");
	if (o.read_only && o.worm)
		return fail_usage("mount", "--read-only and --worm exclude "
					   "each other");
	rc = read_passphrase(pass_file, &pass);
	if (rc < 0)
		return fail_hc(rc);
	o.store = argv[optind];
	o.mountpoint = argv[optind + 1];
	o.passphrase = pass;
	o.fuse_args = extra;
	rc = fs_mount(&o);
	if (pass) {
		OPENSSL_cleanse(pass, strlen(pass));
		free(pass);
	}
	return rc < 0 ? fail_hc(rc) : EXIT_OK;
}

static const char unmount_help[] =
	"usage: hozen unmount [--timeout SECONDS] MOUNTPOINT\n"
	"\n"
	"Unmount a hozen mount and wait until its daemon has committed the\n"
	"last versions, recorded the unmount and signed a checkpoint, so\n"
	"that the store can be verified or exported right away.\n"
	"\n"
	"  -t, --timeout SECONDS  wait at most this long (default 120)\n"
	"  -h, --help             show this help\n";

int cmd_unmount(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	uint64_t timeout = 120;
	int c, rc;

	while ((c = getopt_long(argc, argv, "t:h", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (parse_u64(optarg, &timeout) < 0 || timeout > 86400)
				return fail_usage(
					"unmount",
					"--timeout: expected seconds");
			break;
		case 'h':
			return print_help(unmount_help);
		default:
			return fail_option("unmount", argv);
		}
	}
	if (optind + 1 != argc)
		return fail_usage("unmount", "expected one MOUNTPOINT");
	rc = fs_unmount(argv[optind], (unsigned)timeout);
	if (rc < 0)
		return fail_hc(rc);
	printf("unmounted '%s'; the store is sealed\n", argv[optind]);
	return EXIT_OK;
}
