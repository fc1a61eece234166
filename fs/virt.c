/*
 * virt.c - /.hozen/, a read-only directory in the mount that shows the
 * store's state: `status` (the store, the policy and the order, the chain
 * head, the latest checkpoint, what waits to be committed), `head` (the
 * chain head as "SIZE HASH"), `checkpoint` (the latest signed checkpoint,
 * as a verifier would pin it).  The contents are made when a file is
 * opened.  The directory is not listed in the root: it is reached by its
 * name, like a NetApp .snapshot.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsint.h"

static const struct {
	const char *name;
	int kind;
} files[] = {
	{"status", VIRT_STATUS},
	{"head", VIRT_HEAD},
	{"checkpoint", VIRT_CHECKPOINT},
};

void hz_virt_init(struct hz_fs *fs)
{
	size_t i;

	for (i = 0; i < 4; i++) {
		memset(&fs->virt[i], 0, sizeof(fs->virt[i]));
		pthread_mutex_init(&fs->virt[i].mu, NULL);
		fs->virt[i].virt = i == 0 ? VIRT_DIR : files[i - 1].kind;
		fs->virt[i].ino = (ino_t) - (long)(i + 1); /* stat only */
		fs->virt[i].parent = i == 0 ? &fs->root : &fs->virt[0];
		/* Static names, never freed: these nodes are not in the table.
		 */
		fs->virt[i].name =
			(char *)(uintptr_t)(i == 0 ? VIRT_NAME
						   : files[i - 1].name);
	}
}

struct hz_node *hz_virt_lookup(struct hz_fs *fs, struct hz_node *parent,
			       const char *name)
{
	size_t i;

	if (parent == &fs->root && !strcmp(name, VIRT_NAME))
		return &fs->virt[0];
	if (parent != &fs->virt[0])
		return NULL;
	for (i = 0; i < 3; i++)
		if (!strcmp(name, files[i].name))
			return &fs->virt[i + 1];
	return NULL;
}

void hz_virt_stat(struct hz_fs *fs, struct hz_node *n, struct stat *st)
{
	struct stat root;

	memset(st, 0, sizeof(*st));
	if (fstat(fs->mountfd, &root) == 0) {
		st->st_dev = root.st_dev;
		st->st_atim = st->st_mtim = st->st_ctim = root.st_mtim;
	}
	st->st_ino = (ino_t)(0xffffffffffff00ull + (uint64_t)n->virt);
	st->st_uid = 0;
	st->st_gid = 0;
	if (n->virt == VIRT_DIR) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		/* The size is known once made: read to the end. */
		st->st_size = 0;
	}
}

/* The latest checkpoint's text, or NULL. */
static char *latest_checkpoint(struct hz_fs *fs)
{
	uint64_t *sizes = NULL;
	hc_checkpoint *c = NULL;
	hc_key *pub = NULL;
	char *text = NULL;
	size_t n = 0;

	if (hc_store_checkpoints(fs->store, &sizes, &n) == 0 && n > 0 &&
	    hc_store_public_key(fs->store, &pub) == 0 &&
	    hc_store_read_checkpoint(fs->store, sizes[n - 1], pub, &c) == 0)
		text = strdup(c->text);
	hc_checkpoint_free(c);
	hc_key_free(pub);
	free(sizes);
	return text;
}

static int make_status(struct hz_fs *fs, FILE *f)
{
	uint8_t head[HC_HASH_LEN];
	char hex[HC_HEX_LEN + 1], *ck;
	uint64_t size;

	hc_log_head(fs->log, &size, head);
	hc_hex(head, HC_HASH_LEN, hex);
	fprintf(f, "store:         %s\n", hc_store_path(fs->store));
	fprintf(f, "origin:        %s\n", fs->origin);
	fprintf(f, "mounted on:    %s\n", fs->mountpoint);
	fprintf(f, "policy:        %s%s%s\n",
		fs->opts.read_only ? "read-only (write blocker)"
		: fs->opts.worm	   ? "worm (immutable once closed)"
				: "preserve (versions kept before any removal)",
		fs->opts.log_reads ? ", reads recorded" : "",
		fs->opts.no_xattr_read ? ", xattr reads off" : "");
	fprintf(f, "preservation:  %s: %s\n",
		fs->preserving ? "in force" : "lifted", fs->preserve_why);
	fprintf(f, "records:       %" PRIu64 "\n", size);
	fprintf(f, "chain head:    %s\n", hex);
	fprintf(f, "uncommitted:   %zu version(s) staged for git\n",
		vs_staged(fs->vs));
	ck = latest_checkpoint(fs);
	if (ck) {
		char *nl = strchr(ck, '\n'),
		     *nl2 = nl ? strchr(nl + 1, '\n') : 0;

		fprintf(f, "checkpoint:    %.*s records (see checkpoint)\n",
			nl && nl2 ? (int)(nl2 - nl - 1) : 0, nl ? nl + 1 : "");
	}
	free(ck);
	return 0;
}

int hz_virt_open(struct hz_fs *fs, struct hz_node *n)
{
	uint8_t head[HC_HASH_LEN];
	char hex[HC_HEX_LEN + 1], *ck;
	uint64_t size;
	FILE *f;
	int fd, dupfd, rc = 0;

	fd = memfd_create("hozen", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	dupfd = dup(fd);
	f = dupfd >= 0 ? fdopen(dupfd, "w") : NULL;
	if (!f) {
		if (dupfd >= 0)
			close(dupfd);
		close(fd);
		return -ENOMEM;
	}
	switch (n->virt) {
	case VIRT_STATUS:
		rc = make_status(fs, f);
		break;
	case VIRT_HEAD:
		hc_log_head(fs->log, &size, head);
		hc_hex(head, HC_HASH_LEN, hex);
		fprintf(f, "%" PRIu64 " %s\n", size, hex);
		break;
	case VIRT_CHECKPOINT:
		ck = latest_checkpoint(fs);
		if (ck)
			fputs(ck, f);
		free(ck);
		break;
	default:
		rc = -EISDIR;
	}
	if (fclose(f) != 0 && rc == 0)
		rc = -EIO;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

size_t hz_virt_readdir(struct hz_fs *fs, fuse_req_t req, char *buf, size_t size,
		       off_t off)
{
	static const char *const names[] = {".", "..", "status", "head",
					    "checkpoint"};
	size_t used = 0, i, len;
	struct stat st;

	for (i = (size_t)off; i < sizeof(names) / sizeof(names[0]); i++) {
		memset(&st, 0, sizeof(st));
		st.st_mode = i < 2 ? S_IFDIR : S_IFREG;
		st.st_ino = i < 2 ? 1 : (ino_t)(0xffffffffffff00ull + i);
		len = fuse_add_direntry(req, buf + used, size - used, names[i],
					&st, (off_t)(i + 1));
		if (len > size - used)
			break;
		used += len;
	}
	(void)fs;
	return used;
}
