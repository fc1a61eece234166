/*
 * modes.c - the permissions of a store's own files (FORMAT.md section 1):
 * nothing in a store may be changed by another user, and the store
 * directory keeps everyone else out.  Every entry belongs to the store
 * directory's owner or to root (a copy made by a verifier belongs to the
 * verifier, whole), and no file has a set-id or sticky bit.  Checked by `hozen
 * verify`, repaired when a store is mounted.
 *
 * Not looked at: tree/ and what it holds (the live files keep their
 * users' modes; the mount serves them and the 0700 store directory
 * protects them), symlinks (their mode means nothing), and objects under
 * git/lfs/objects/ with more than one link (they are a live file of tree/
 * and carry its mode).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "internal.h"

#define LFS_OBJECTS "git/lfs/objects/"
/* The store's own tree is shallow (git/objects/pack/...). */
#define DEPTH_MAX 32

struct walk {
	uid_t uid, gid;	       /* the store directory's owner */
	hc_findings *findings; /* check: every problem goes here */
	json_t *repaired;      /* repair: what was changed, or NULL */
	int repair;
	char path[PATH_MAX]; /* store-relative path of the entry */
};

/* {"path": P} or, for a name that is not UTF-8, {"path_b64": ...}. */
static json_t *path_json(const char *path)
{
	size_t n = strlen(path);
	json_t *j = json_string(path);
	char *b64;

	if (j)
		return json_pack("{s:o}", "path", j);
	b64 = malloc(4 * ((n + 2) / 3) + 1);
	if (!b64)
		return NULL;
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)path,
			(int)n);
	j = json_pack("{s:s}", "path_b64", b64);
	free(b64);
	return j;
}

/* chmod name in dirfd to mode, on the inode that st describes, never a link. */
static int chmod_entry(int dirfd, const char *name, const struct stat *st,
		       mode_t mode, const char *path)
{
	struct stat now;
	char proc[64];
	int fd, rc = 0;

	fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0; /* gone meanwhile: nothing to repair */
		return hc_error_set(HC_ESYS, "cannot open '%s'", path);
	}
	if (fstat(fd, &now) < 0) {
		rc = hc_error_set(HC_ESYS, "cannot stat '%s'", path);
		goto out;
	}
	/* Replaced since it was looked at (or a link now): leave it. */
	if (S_ISLNK(now.st_mode) || now.st_ino != st->st_ino ||
	    now.st_dev != st->st_dev)
		goto out;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (chmod(proc, mode) < 0 &&
	    (errno != ENOENT || fchmodat(dirfd, name, mode, 0) < 0))
		rc = hc_error_set(HC_ESYS, "cannot chmod '%s'", path);
out:
	close(fd);
	return rc;
}

/* chown name in dirfd to the store's owner, on the inode st describes. */
static int chown_entry(struct walk *w, int dirfd, const char *name,
		       const struct stat *st)
{
	struct stat now;
	int fd, rc = 0;

	fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT
			       ? 0
			       : hc_error_set(HC_ESYS, "cannot open '%s'",
					      w->path);
	if (fstat(fd, &now) == 0 && !S_ISLNK(now.st_mode) &&
	    now.st_ino == st->st_ino && now.st_dev == st->st_dev &&
	    fchownat(fd, "", w->uid, w->gid, AT_EMPTY_PATH) < 0)
		rc = hc_error_set(HC_ESYS, "cannot give '%s' to uid %u",
				  w->path, (unsigned)w->uid);
	close(fd);
	return rc;
}

/* Another owner than the store directory's: a finding, or repaired. */
static int visit_owner(struct walk *w, int dirfd, const char *name,
		       const struct stat *st)
{
	json_t *e;
	int rc;

	/* Root's files are no one else's (the daemon runs as root). */
	if (st->st_uid == w->uid || st->st_uid == 0)
		return 0;
	if (!w->repair) {
		hc_findings_add(w->findings, -1, 0, w->path,
				"owned by uid %u, not by the store "
				"directory's owner (uid %u) or root: that "
				"user can change it (chown, or mount the "
				"store, which repairs owners)",
				(unsigned)st->st_uid, (unsigned)w->uid);
		return 0;
	}
	rc = chown_entry(w, dirfd, name, st);
	if (rc < 0)
		return rc;
	e = path_json(w->path);
	if (!e ||
	    json_object_set_new(e, "owner",
				json_pack("{s:[i,i],s:[i,i]}", "old",
					  (int)st->st_uid, (int)st->st_gid,
					  "new", (int)w->uid, (int)w->gid)) <
		    0 ||
	    json_array_append_new(w->repaired, e) < 0)
		return hc_error_set(HC_ENOMEM, "out of memory");
	return 0;
}

/* Check or repair one entry (not the store directory). */
static int visit(struct walk *w, int dirfd, const char *name,
		 const struct stat *st)
{
	mode_t mode = st->st_mode & 07777;
	mode_t bad = S_ISDIR(st->st_mode) ? 077 : 07077;
	json_t *e;
	int rc;

	rc = visit_owner(w, dirfd, name, st);
	if (rc < 0)
		return rc;
	if (!w->repair) {
		if (!S_ISDIR(st->st_mode) && (mode & 07000))
			hc_findings_add(w->findings, -1, 0, w->path,
					"mode %04o has set-id or sticky bits: "
					"hozen writes none",
					(unsigned)mode);
		if (mode & (S_IWGRP | S_IWOTH))
			hc_findings_add(w->findings, -1, 0, w->path,
					"mode %04o lets %s change it: hozen "
					"writes 0700, 0600 and 0400 (chmod "
					"go-rwx, or mount the store, which "
					"repairs modes)",
					(unsigned)mode,
					(mode & S_IWGRP) && (mode & S_IWOTH)
						? "group and others"
					: (mode & S_IWGRP) ? "the group"
							   : "others");
		return 0;
	}
	if (!(mode & bad))
		return 0;
	rc = chmod_entry(dirfd, name, st, mode & ~bad, w->path);
	if (rc < 0)
		return rc;
	e = path_json(w->path);
	if (!e || json_object_set_new(e, "old", json_integer(mode)) < 0 ||
	    json_object_set_new(e, "new", json_integer(mode & ~bad)) < 0 ||
	    json_array_append_new(w->repaired, e) < 0)
		return hc_error_set(HC_ENOMEM, "out of memory");
	return 0;
}

static int walk_dir(struct walk *w, int dirfd, size_t plen, int depth)
{
	struct dirent *de;
	struct stat st;
	DIR *d = NULL;
	size_t n;
	int fd, sub, rc = 0;

	if (depth > DEPTH_MAX)
		return hc_error_set(HC_EFORMAT,
				    "'%s': directories nested deeper than %d",
				    w->path, DEPTH_MAX);
	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		rc = hc_error_set(HC_ESYS, "cannot read '%s'",
				  plen ? w->path : ".");
		if (fd >= 0)
			close(fd);
		return rc;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		n = strlen(de->d_name);
		if (plen + (plen ? 1 : 0) + n >= sizeof(w->path)) {
			rc = hc_error_set(HC_EFORMAT, "a path in the store is "
						      "too long");
			goto out;
		}
		if (plen)
			w->path[plen] = '/';
		memcpy(w->path + plen + (plen ? 1 : 0), de->d_name, n + 1);
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			rc = hc_error_set(HC_ESYS, "cannot stat '%s'", w->path);
			goto out;
		}
		if (S_ISLNK(st.st_mode))
			continue;
		/* The live tree keeps its users' modes, its root too. */
		if (depth == 0 && !strcmp(de->d_name, "tree"))
			continue;
		if (S_ISREG(st.st_mode) && st.st_nlink > 1 &&
		    !strncmp(w->path, LFS_OBJECTS, strlen(LFS_OBJECTS)))
			continue;
		/* A directory is repaired before anything in it. */
		rc = visit(w, dirfd, de->d_name, &st);
		if (rc < 0)
			goto out;
		if (!S_ISDIR(st.st_mode))
			continue;
		sub = openat(dirfd, de->d_name,
			     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0) {
			rc = hc_error_set(HC_ESYS, "cannot open '%s'", w->path);
			goto out;
		}
		rc = walk_dir(w, sub, plen + (plen ? 1 : 0) + n, depth + 1);
		close(sub);
		if (rc < 0)
			goto out;
	}
out:
	w->path[plen] = '\0';
	closedir(d);
	return rc;
}

int hc_store_check_modes(const hc_store *s, hc_findings *f)
{
	struct walk *w;
	struct stat st;
	mode_t mode;
	int rc;

	if (fstat(hc_store_fd(s), &st) < 0)
		return hc_error_set(HC_ESYS, "cannot stat '%s'",
				    hc_store_path(s));
	mode = st.st_mode & 07777;
	if (mode & 077)
		hc_findings_add(f, -1, 0, ".",
				"the store directory has mode %04o: other "
				"users can %s it; it must be 0700 (chmod 700 "
				"the store, or mount it, which repairs modes)",
				(unsigned)mode,
				mode & 022 ? "change what is in" : "look into");
	w = calloc(1, sizeof(*w));
	if (!w)
		return hc_error_set(HC_ENOMEM, "out of memory");
	w->uid = st.st_uid;
	w->gid = st.st_gid;
	w->findings = f;
	rc = walk_dir(w, hc_store_fd(s), 0, 0);
	free(w);
	return rc;
}

int hc_store_repair_modes(const hc_store *s, json_t **repaired)
{
	struct walk *w;
	struct stat st;
	mode_t mode;
	json_t *e;
	int rc;

	w = calloc(1, sizeof(*w));
	if (!w)
		return hc_error_set(HC_ENOMEM, "out of memory");
	w->repair = 1;
	w->repaired = json_array();
	if (!w->repaired) {
		rc = hc_error_set(HC_ENOMEM, "out of memory");
		goto out;
	}
	/* The store directory first: then nobody else can get in. */
	if (fstat(hc_store_fd(s), &st) < 0) {
		rc = hc_error_set(HC_ESYS, "cannot stat '%s'",
				  hc_store_path(s));
		goto out;
	}
	w->uid = st.st_uid;
	w->gid = st.st_gid;
	mode = st.st_mode & 07777;
	if (mode & 077) {
		if (fchmod(hc_store_fd(s), mode & ~077u) < 0) {
			rc = hc_error_set(HC_ESYS, "cannot chmod '%s'",
					  hc_store_path(s));
			goto out;
		}
		e = json_pack("{s:s,s:i,s:i}", "path", ".", "old", (int)mode,
			      "new", (int)(mode & ~077u));
		if (!e || json_array_append_new(w->repaired, e) < 0) {
			rc = hc_error_set(HC_ENOMEM, "out of memory");
			goto out;
		}
	}
	rc = walk_dir(w, hc_store_fd(s), 0, 0);
	if (rc < 0)
		goto out;
	if (json_array_size(w->repaired) == 0) {
		*repaired = NULL;
	} else {
		*repaired = w->repaired;
		w->repaired = NULL;
	}
out:
	json_decref(w->repaired);
	free(w);
	return rc;
}
