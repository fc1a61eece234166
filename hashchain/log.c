/*
 * log.c - the append-only record log: segments, appends from many
 * threads, group commit, torn-tail detection and recovery, and reading.
 *
 * Locking: `mu` protects the chain head (next_seq, last_hash, tree), the
 * current segment (segfd, seg_first, seg_bytes), the dump buffer and
 * `failed`.  `sync_mu` protects `durable` and `syncing` and is never held
 * while taking `mu`.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "internal.h"

const uint8_t hc_zero_hash[HC_HASH_LEN];

void hc_segment_name(uint64_t first, char out[32])
{
	snprintf(out, 32, "%020" PRIu64 ".log", first);
}

/*
 * Set key to s, or key_b64 to its base64 when s is not UTF-8 (a process
 * may name itself with any bytes; an executable's path may hold any).
 */
static int set_text(json_t *j, const char *key, const char *s)
{
	json_t *v = json_string(s);
	char b64key[32], *b64;
	size_t n;
	int rc;

	if (v)
		return json_object_set_new(j, key, v);
	n = strlen(s);
	b64 = malloc(4 * ((n + 2) / 3) + 1);
	if (!b64)
		return -1;
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)s, (int)n);
	snprintf(b64key, sizeof(b64key), "%s_b64", key);
	rc = json_object_set_new(j, b64key, json_string(b64));
	free(b64);
	return rc;
}

json_t *hc_actor_json(const hc_actor *a)
{
	json_t *j = json_pack("{s:I,s:I,s:I}", "uid", (json_int_t)a->uid, "gid",
			      (json_int_t)a->gid, "pid", (json_int_t)a->pid);

	if (j && (set_text(j, "comm", a->comm) || set_text(j, "exe", a->exe)))
		goto fail;
	/* A thread other than the main one: which, and its own name. */
	if (j && a->tid > 0 && a->tid != a->pid &&
	    (json_object_set_new(j, "tid", json_integer(a->tid)) ||
	     set_text(j, "thread", a->thread)))
		goto fail;
	return j;
fail:
	json_decref(j);
	return NULL;
}

/* -------------------------------------------------------------- reader */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

#define READ_CHUNK (1u << 20)

struct hc_reader {
	int chainfd;
	struct hc_chain_dir dir;
	uint64_t *segs;	   /* dir.segs */
	size_t nsegs, cur; /* cur: index of the open segment */
	uint64_t total;	   /* lines returned so far, over all segments */
	int fd;		   /* open segment, -1 before the first */
	int started;	   /* the first segment was opened (or tried) */
	char *buf;	   /* [start, end) unread bytes */
	size_t cap, start, end;
	uint64_t file_off; /* file offset of buf[0] */
	int eof;
	uint64_t line;	       /* line number of the last record */
	uint64_t rec_line_end; /* offset just past it in its segment */
	int at_start;	       /* last record opened its segment */
	struct hc_torn torn;
	char where[64];

	/*
	 * Lines are read a batch at a time and parsed on two threads
	 * (parsing JSON is three quarters of verifying); `shown` is where
	 * the record last returned came from, for the accessors.
	 */
	struct batch_slot *slots;
	size_t n, pos;
	char *arena;
	size_t arena_cap;
	int finished, final_rc;
	char final_msg[1024];
	struct {
		uint64_t line, end;
		size_t cur;
		int at_start;
	} shown;
};

#define BATCH	     1024
#define ARENA_TARGET (4u << 20)

struct batch_slot {
	size_t off, len;
	uint64_t line, end;
	size_t cur;
	int at_start;
	int rc;
	hc_record rec;
	char msg[512];
};

/* Note an entry of chain/ that has no business there. */
static void add_stray(struct hc_chain_dir *d, const char *name)
{
	if (d->nstrays < HC_STRAYS_MAX)
		snprintf(d->strays[d->nstrays], sizeof(d->strays[0]), "%s",
			 name);
	d->nstrays++;
}

int hc_chain_scan(int chainfd, struct hc_chain_dir *out)
{
	struct hc_chain_dir d;
	DIR *dir = NULL;
	struct dirent *de;
	struct stat st;
	uint64_t num, *v;
	size_t cap = 0;
	int fd, rc = 0;

	memset(&d, 0, sizeof(d));
	fd = openat(chainfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(dir = fdopendir(fd))) {
		rc = hc_error_set(HC_ESYS, "cannot read 'chain'");
		if (fd >= 0)
			close(fd);
		return rc;
	}
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!strcmp(de->d_name, "torn")) {
			if (fstatat(chainfd, "torn", &st, AT_SYMLINK_NOFOLLOW) <
				    0 ||
			    !S_ISDIR(st.st_mode))
				add_stray(&d, de->d_name);
			continue;
		}
		if (!hc_numbered_name(de->d_name, ".log", &num)) {
			add_stray(&d, de->d_name);
			continue;
		}
		if (d.nsegs == cap) {
			cap = cap ? 2 * cap : 16;
			v = realloc(d.segs, cap * sizeof(*v));
			if (!v) {
				rc = hc_error_set(HC_ENOMEM, "out of memory");
				goto out;
			}
			d.segs = v;
		}
		d.segs[d.nsegs++] = num;
	}
	if (d.nsegs > 1)
		qsort(d.segs, d.nsegs, sizeof(*d.segs), cmp_u64);
	*out = d;
	d.segs = NULL;
out:
	free(d.segs);
	closedir(dir);
	return rc;
}

void hc_chain_dir_release(struct hc_chain_dir *d)
{
	free(d->segs);
	memset(d, 0, sizeof(*d));
}

int hc_reader_open(hc_reader **out, int storefd)
{
	hc_reader *r;
	int rc;

	r = calloc(1, sizeof(*r));
	if (!r)
		return hc_error_set(HC_ENOMEM, "out of memory");
	r->fd = -1;
	r->chainfd = openat(storefd, HC_CHAIN_DIR,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (r->chainfd < 0) {
		rc = hc_error_set(errno == ENOENT ? HC_ENOENT : HC_ESYS,
				  "cannot open 'chain'");
		goto fail;
	}
	rc = hc_chain_scan(r->chainfd, &r->dir);
	if (rc < 0)
		goto fail;
	r->segs = r->dir.segs;
	r->nsegs = r->dir.nsegs;
	if (r->nsegs == 0) {
		rc = hc_error_set(HC_EVERIFY,
				  "chain: no log segment (missing genesis)");
		goto fail;
	}
	r->cap = READ_CHUNK + HC_RECORD_MAX + 2;
	r->buf = malloc(r->cap);
	r->slots = calloc(BATCH, sizeof(*r->slots));
	if (!r->buf || !r->slots) {
		rc = hc_error_set(HC_ENOMEM, "out of memory");
		goto fail;
	}
	*out = r;
	return 0;
fail:
	hc_reader_free(r);
	return rc;
}

/*
 * Open segment i, which must be named by the number of lines before it
 * (FORMAT.md section 2.1).  On failure the reader points at the segment
 * (line 0) for hc_reader_where.
 */
static int open_segment(hc_reader *r, size_t i)
{
	char name[32], shown[48];
	int rc;

	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	r->cur = i;
	r->start = r->end = 0;
	r->file_off = 0;
	r->eof = 0;
	r->line = 0;
	r->at_start = 1;
	hc_segment_name(r->segs[i], name);
	if (i == 0 && r->segs[0] != 0)
		return hc_error_set(HC_EFORMAT,
				    "chain/%s: the first segment is named for "
				    "seq %" PRIu64 ", but the log begins at "
				    "seq 0",
				    name, r->segs[0]);
	if (r->segs[i] != r->total)
		return hc_error_set(HC_EFORMAT,
				    "chain/%s: the segment is named for seq "
				    "%" PRIu64 ", but the segments before it "
				    "hold %" PRIu64 " records",
				    name, r->segs[i], r->total);
	snprintf(shown, sizeof(shown), "chain/%s", name);
	rc = hc_open_regular_as(r->chainfd, name, shown, O_RDONLY, &r->fd,
				NULL);
	if (rc < 0)
		r->fd = -1;
	return rc;
}

/* Read more bytes of the current segment into buf; sets eof. */
static int fill(hc_reader *r)
{
	ssize_t n;

	if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->file_off += r->start;
		r->end -= r->start;
		r->start = 0;
	}
	for (;;) {
		n = read(r->fd, r->buf + r->end, r->cap - r->end);
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
	if (n < 0)
		return hc_error_set(HC_ESYS, "cannot read 'chain/%s'",
				    hc_reader_segment(r));
	if (n == 0)
		r->eof = 1;
	r->end += (size_t)n;
	return 0;
}

/*
 * The next line, unparsed: *line points into the read buffer until the
 * next call.  1, 0 at the clean end, or a negative code with the message
 * set (torn or incomplete last line, a line over the limit).
 */
static int raw_next(hc_reader *r, const char **line, size_t *len_out)
{
	char *nl;
	size_t len;
	int rc;

	if (!r->started) {
		r->started = 1;
		rc = open_segment(r, 0);
		if (rc < 0)
			return rc;
	}
	for (;;) {
		nl = memchr(r->buf + r->start, '\n', r->end - r->start);
		if (nl)
			break;
		if (r->end - r->start > HC_RECORD_MAX) {
			r->line++; /* the bad line is the one reported */
			return hc_error_set(HC_EFORMAT,
					    "chain/%s:%" PRIu64
					    ": line longer than %u bytes",
					    hc_reader_segment(r), r->line,
					    HC_RECORD_MAX);
		}
		if (!r->eof) {
			rc = fill(r);
			if (rc < 0)
				return rc;
			continue;
		}
		if (r->end > r->start) {
			/* Bytes without a newline at the end of a segment. */
			hc_segment_name(r->segs[r->cur], r->torn.segment);
			r->torn.offset = r->file_off + r->start;
			r->torn.length = r->end - r->start;
			if (r->cur + 1 < r->nsegs) {
				r->line++; /* the bad line is the one reported
					    */
				return hc_error_set(
					HC_EFORMAT,
					"chain/%s:%" PRIu64
					": incomplete line at the end of a "
					"segment that is not the last",
					r->torn.segment, r->line);
			}
			return hc_error_set(HC_ETORN,
					    "chain/%s:%" PRIu64
					    ": torn last line (%" PRIu64
					    " bytes at offset %" PRIu64
					    " without a newline)",
					    r->torn.segment, r->line + 1,
					    r->torn.length, r->torn.offset);
		}
		if (r->line == 0 && r->cur + 1 < r->nsegs) {
			char name[32];

			hc_segment_name(r->segs[r->cur], name);
			return hc_error_set(HC_EFORMAT,
					    "chain/%s: an empty segment that "
					    "is not the last",
					    name);
		}
		/*
		 * An empty last segment is a crash between creating it and
		 * its first append: open_segment checked its name.
		 */
		if (r->cur + 1 >= r->nsegs)
			return 0;
		rc = open_segment(r, r->cur + 1);
		if (rc < 0)
			return rc;
	}
	len = (size_t)(nl - (r->buf + r->start));
	r->at_start = r->line == 0;
	r->line++;
	r->total++;
	*line = r->buf + r->start;
	*len_out = len;
	r->start += len + 1;
	r->rec_line_end = r->file_off + r->start;
	return 1;
}

struct parse_job {
	hc_reader *r;
	size_t from, to;
};

static void *parse_slots(void *arg)
{
	struct parse_job *j = arg;
	hc_reader *r = j->r;
	char name[32];
	size_t i;

	for (i = j->from; i < j->to; i++) {
		struct batch_slot *sl = &r->slots[i];

		sl->rc = hc_record_parse(&sl->rec, r->arena + sl->off, sl->len);
		if (sl->rc < 0) {
			hc_segment_name(r->segs[sl->cur], name);
			snprintf(sl->msg, sizeof(sl->msg),
				 "chain/%s:%" PRIu64 ": %.400s", name, sl->line,
				 hc_error_message());
		}
	}
	return NULL;
}

/* Read the next batch of lines and parse them, on two threads. */
static int refill(hc_reader *r)
{
	struct parse_job a, b;
	const char *line = NULL;
	pthread_t th;
	size_t len = 0, used = 0, i;
	int rc, threaded;

	for (i = r->pos; i < r->n; i++)
		hc_record_release(&r->slots[i].rec);
	r->n = r->pos = 0;
	while (r->n < BATCH && used < ARENA_TARGET) {
		rc = raw_next(r, &line, &len);
		if (rc <= 0) {
			r->finished = 1;
			r->final_rc = rc;
			snprintf(r->final_msg, sizeof(r->final_msg), "%s",
				 rc < 0 ? hc_error_message() : "");
			break;
		}
		if (used + len > r->arena_cap) {
			size_t cap = r->arena_cap ? 2 * r->arena_cap : 1 << 20;
			char *na;

			while (cap < used + len)
				cap *= 2;
			na = realloc(r->arena, cap);
			if (!na)
				return hc_error_set(HC_ENOMEM, "out of memory");
			r->arena = na;
			r->arena_cap = cap;
		}
		memcpy(r->arena + used, line, len);
		r->slots[r->n] = (struct batch_slot){
			.off = used,
			.len = len,
			.line = r->line,
			.end = r->rec_line_end,
			.cur = r->cur,
			.at_start = r->at_start,
		};
		used += len;
		r->n++;
	}
	a = (struct parse_job){r, 0, r->n / 2};
	b = (struct parse_job){r, r->n / 2, r->n};
	threaded =
		r->n >= 256 && pthread_create(&th, NULL, parse_slots, &a) == 0;
	if (!threaded)
		parse_slots(&a);
	parse_slots(&b);
	if (threaded)
		pthread_join(th, NULL);
	return 0;
}

/* Set the thread's message again (an HC_ESYS one has its reason). */
static int keep_message(int code, const char *msg)
{
	hc_error_set(HC_EFORMAT, "%s", msg);
	return code;
}

int hc_reader_next(hc_reader *r, hc_record *rec)
{
	struct batch_slot *sl;
	int rc;

	while (r->pos >= r->n) {
		if (r->finished) {
			/* Where the reading stopped, for the accessors. */
			r->shown.line = r->line;
			r->shown.end = r->rec_line_end;
			r->shown.cur = r->cur;
			r->shown.at_start = 0;
			if (r->final_rc < 0)
				return keep_message(r->final_rc, r->final_msg);
			return 0;
		}
		rc = refill(r);
		if (rc < 0)
			return rc;
	}
	sl = &r->slots[r->pos++];
	r->shown.line = sl->line;
	r->shown.end = sl->end;
	r->shown.cur = sl->cur;
	r->shown.at_start = sl->at_start;
	if (sl->rc < 0) {
		size_t i;

		/* Nothing after a bad line is returned. */
		for (i = r->pos; i < r->n; i++)
			hc_record_release(&r->slots[i].rec);
		r->finished = 1;
		r->n = r->pos;
		r->final_rc = sl->rc;
		snprintf(r->final_msg, sizeof(r->final_msg), "%s", sl->msg);
		return keep_message(sl->rc, sl->msg);
	}
	hc_record_release(rec);
	*rec = sl->rec;
	memset(&sl->rec, 0, sizeof(sl->rec));
	return 1;
}

const char *hc_reader_segment(const hc_reader *r)
{
	static _Thread_local char name[32];

	hc_segment_name(r->segs[r->shown.cur], name);
	return name;
}

const char *hc_reader_where(const hc_reader *r)
{
	hc_reader *w = (hc_reader *)r;

	if (r->shown.line == 0)
		snprintf(w->where, sizeof(w->where), "chain/%s",
			 hc_reader_segment(r));
	else
		snprintf(w->where, sizeof(w->where), "chain/%s:%" PRIu64,
			 hc_reader_segment(r), r->shown.line);
	return w->where;
}

const struct hc_chain_dir *hc_reader_chain_dir(const hc_reader *r)
{
	return &r->dir;
}

void hc_reader_torn(const hc_reader *r, struct hc_torn *out)
{
	*out = r->torn;
}

uint64_t hc_reader_segment_first(const hc_reader *r)
{
	return r->segs[r->shown.cur];
}

int hc_reader_at_segment_start(const hc_reader *r)
{
	return r->shown.at_start;
}

uint64_t hc_reader_line(const hc_reader *r)
{
	return r->shown.line;
}

void hc_reader_mark(const hc_reader *r, struct hc_mark *out)
{
	out->seg = r->segs[r->shown.cur];
	out->end = r->shown.end;
}

void hc_reader_free(hc_reader *r)
{
	size_t i;

	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	if (r->chainfd >= 0)
		close(r->chainfd);
	if (r->slots)
		for (i = r->pos; i < r->n; i++)
			hc_record_release(&r->slots[i].rec);
	free(r->slots);
	free(r->arena);
	hc_chain_dir_release(&r->dir);
	free(r->buf);
	free(r);
}

/* -------------------------------------------------------------- writer */

struct hc_log {
	int storefd; /* borrowed */
	int chainfd;
	struct hc_log_options opts;

	pthread_mutex_t mu;
	int segfd;
	uint64_t seg_first, seg_bytes;
	uint64_t next_seq;
	uint8_t last_hash[HC_HASH_LEN];
	hc_merkle tree;
	char *dump; /* buffer for the record line */
	size_t dump_cap;
	int failed;	   /* a write could not be undone: refuse appends */
	uint64_t reserved; /* the segment's blocks are allocated up to here */

	pthread_mutex_t sync_mu;
	pthread_cond_t sync_cv;
	uint64_t durable; /* records [0, durable) are durable */
	int syncing;	  /* an fdatasync is in flight */

	pthread_t flusher;
	int flusher_running;
	int stop; /* protected by sync_mu */

	/* What the opening's replay saw of recovery records. */
	struct hc_mark last_other; /* where the last record of another
				      type than recovery ends */
	json_t *torn_named;	   /* the copies they name ("saved") */

	/* What the opening's replay saw of checkpoint records. */
	uint64_t ck_sealed;		/* size after the last one, or 0 */
	struct hc_ck_unsigned *ck_miss; /* those without their file */
	size_t ck_nmiss;
};

/*
 * The part of a record line after its chain members, made by jansson
 * outside the log's lock: "type":T,"actor":A[,fields...]} -- so that the
 * lock covers only what needs it (seq, prev, time, hash, write).
 */
static int build_body(const char *type, const hc_actor *actor, json_t *fields,
		      char **out, size_t *len_out)
{
	json_t *t = json_string(type), *a = hc_actor_json(actor);
	char *ts = NULL, *as = NULL, *fs = NULL, *body = NULL;
	size_t tl, al, fl = 0, len;
	int rc = 0;

	ts = t ? json_dumps(t, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	as = a ? json_dumps(a, JSON_COMPACT) : NULL;
	if (fields && json_object_size(fields) > 0) {
		fs = json_dumps(fields, JSON_COMPACT);
		if (!fs) {
			rc = hc_error_set(HC_EINVAL,
					  "record cannot be encoded as JSON "
					  "(invalid UTF-8 in a field?)");
			goto out;
		}
		fl = strlen(fs) - 2; /* without its braces */
	}
	if (!ts || !as) {
		rc = hc_error_set(HC_EINVAL, "record type or actor cannot be "
					     "encoded (invalid UTF-8?)");
		goto out;
	}
	tl = strlen(ts);
	al = strlen(as);
	len = 7 + tl + 9 + al + (fl ? 1 + fl : 0) + 1;
	if (len > HC_RECORD_MAX) {
		rc = hc_error_set(HC_EINVAL,
				  "record of %zu bytes exceeds the limit of %u",
				  len, HC_RECORD_MAX);
		goto out;
	}
	body = malloc(len + 1);
	if (!body) {
		rc = hc_error_set(HC_ENOMEM, "out of memory");
		goto out;
	}
	memcpy(body, "\"type\":", 7);
	memcpy(body + 7, ts, tl);
	memcpy(body + 7 + tl, ",\"actor\":", 9);
	memcpy(body + 16 + tl, as, al);
	len = 16 + tl + al;
	if (fl) {
		body[len++] = ',';
		memcpy(body + len, fs + 1, fl);
		len += fl;
	}
	body[len++] = '}';
	body[len] = '\0';
	*out = body;
	*len_out = len;
	body = NULL;
out:
	free(body);
	free(ts);
	free(as);
	free(fs);
	json_decref(t);
	json_decref(a);
	return rc;
}

/* Longest header: {"v":1,"seq":N,"prev":"HEX","time":"TIME", is ~150. */
#define HEAD_MAX 256
/* The dump buffer starts at this size and doubles as records need. */
#define DUMP_MIN 4096

/*
 * The whole line: the chain members, then body.  Called with mu held;
 * the line (with its newline) is left in log->dump, its time in now.
 * The header is formatted first, so the buffer is sized exactly.
 */
static int build_line(hc_log *log, const char *body, size_t body_len,
		      size_t *len_out, char now[40])
{
	char prev[HC_HEX_LEN + 1], head[HEAD_MAX];
	size_t need, cap;
	int n;

	hc_hex(log->last_hash, HC_HASH_LEN, prev);
	hc_time_now(now);
	n = snprintf(head, sizeof(head),
		     "{\"v\":%d,\"seq\":%" PRIu64
		     ",\"prev\":\"%s\",\"time\":\"%s\",",
		     HC_FORMAT_VERSION, log->next_seq, prev, now);
	if (n < 0 || (size_t)n >= sizeof(head))
		return hc_error_set(HC_EINVAL, "cannot build the record");
	if (body_len > HC_RECORD_MAX - (size_t)n)
		return hc_error_set(HC_EINVAL,
				    "record of %zu bytes exceeds the limit of "
				    "%u",
				    (size_t)n + body_len, HC_RECORD_MAX);
	need = (size_t)n + body_len + 1; /* and the newline */
	if (need > log->dump_cap) {
		char *nd;

		for (cap = log->dump_cap ? log->dump_cap : DUMP_MIN; cap < need;
		     cap *= 2)
			;
		nd = malloc(cap);
		if (!nd)
			return hc_error_set(HC_ENOMEM, "out of memory");
		free(log->dump);
		log->dump = nd;
		log->dump_cap = cap;
	}
	memcpy(log->dump, head, (size_t)n);
	memcpy(log->dump + n, body, body_len);
	log->dump[need - 1] = '\n';
	*len_out = need - 1;
	return 0;
}

/* 1 if s is valid UTF-8. */
static int utf8_valid(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, k;
	uint32_t c;

	while (i < n) {
		k = hc_utf8_next(u + i, n - i, &c);
		if (!k)
			return 0;
		i += k;
	}
	return 1;
}

/*
 * Every member name in j is UTF-8: jansson checks string values when it
 * encodes them, but writes a name that is not UTF-8 as "" (a name set
 * with json_object_set_nocheck), and the record would not say what was
 * asked.  Depth is bounded as a reader's would be.
 */
static int check_keys(json_t *j, int depth)
{
	const char *name;
	json_t *v;
	size_t i;
	int rc;

	if (depth > 64)
		return hc_error_set(HC_EINVAL, "record fields nested too "
					       "deeply");
	if (json_is_object(j)) {
		json_object_foreach(j, name, v)
		{
			if (!utf8_valid(name))
				return hc_error_set(HC_EINVAL,
						    "a field name is not "
						    "valid UTF-8");
			rc = check_keys(v, depth + 1);
			if (rc < 0)
				return rc;
		}
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
		{
			rc = check_keys(v, depth + 1);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

static int check_fields(const char *type, json_t *fields)
{
	static const char *const reserved[] = {"v",    "seq",  "prev",
					       "time", "type", "actor"};
	size_t i;

	if (!type || !*type)
		return hc_error_set(HC_EINVAL, "record type is empty");
	if (!hc_type_valid(type, strlen(type)))
		return hc_error_set(HC_EINVAL,
				    "record type '%.80s' is not 1 to %d "
				    "characters of a-z, 0-9 and '-'",
				    type, HC_TYPE_MAX);
	if (!fields)
		return 0;
	if (!json_is_object(fields))
		return hc_error_set(HC_EINVAL, "record fields not an object");
	for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (json_object_get(fields, reserved[i]))
			return hc_error_set(HC_EINVAL, "field '%s' is reserved",
					    reserved[i]);
	return check_keys(fields, 0);
}

/*
 * Top up the room kept after the segment's end (opts.reserve_bytes):
 * when less than half of it is left, allocate up to a whole reserve
 * again.  A full disk leaves what is left of it to the records.  mu held.
 */
static void reserve_more(hc_log *log)
{
	uint64_t want = log->seg_bytes + log->opts.reserve_bytes;

	if (!log->opts.reserve_bytes)
		return;
	if (log->reserved < log->seg_bytes)
		log->reserved = log->seg_bytes;
	if (log->reserved >= log->seg_bytes + log->opts.reserve_bytes / 2)
		return;
	if (fallocate(log->segfd, FALLOC_FL_KEEP_SIZE, (off_t)log->reserved,
		      (off_t)(want - log->reserved)) == 0)
		log->reserved = want;
}

/* Give back the room kept after the segment's end.  mu held. */
static void reserve_release(hc_log *log)
{
	if (log->opts.reserve_bytes && log->segfd >= 0 &&
	    log->reserved > log->seg_bytes &&
	    ftruncate(log->segfd, (off_t)log->seg_bytes) == 0)
		log->reserved = log->seg_bytes;
}

/* Start a new segment at next_seq.  mu held. */
static int rotate(hc_log *log)
{
	char name[32];
	int fd;

	if (fdatasync(log->segfd) < 0)
		return hc_error_set(HC_ESYS, "cannot sync log segment");
	hc_segment_name(log->next_seq, name);
	fd = openat(log->chainfd, name,
		    O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW |
			    O_CLOEXEC,
		    0600);
	if (fd < 0)
		return hc_error_set(HC_ESYS, "cannot create 'chain/%s'", name);
	if (fsync(log->chainfd) < 0) {
		close(fd);
		(void)unlinkat(log->chainfd, name, 0);
		return hc_error_set(HC_ESYS, "cannot sync directory 'chain'");
	}
	/* A sync in flight holds its own dup of the old fd. */
	reserve_release(log);
	close(log->segfd);
	log->segfd = fd;
	log->seg_first = log->next_seq;
	log->seg_bytes = 0;
	log->reserved = 0;
	reserve_more(log);
	return 0;
}

int hc_log_append(hc_log *log, const char *type, const hc_actor *actor,
		  json_t *fields, struct hc_appended *out)
{
	return hc_log_append_tree(log, type, actor, fields, out, NULL);
}

int hc_log_append_tree(hc_log *log, const char *type, const hc_actor *actor,
		       json_t *fields, struct hc_appended *out, hc_merkle *tree)
{
	uint8_t hash[HC_HASH_LEN], leaf[HC_HASH_LEN];
	char *body = NULL, now[40];
	size_t len, body_len;
	int rc;

	rc = check_fields(type, fields);
	if (rc == 0)
		rc = build_body(type, actor, fields, &body, &body_len);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&log->mu);
	if (log->failed) {
		rc = hc_error_set(HC_ESYS,
				  "the log is in a failed state after an "
				  "earlier write error");
		goto out;
	}
	if (log->seg_bytes >= log->opts.segment_bytes && log->seg_bytes > 0) {
		rc = rotate(log);
		if (rc < 0)
			goto out;
	}
	rc = build_line(log, body, body_len, &len, now);
	if (rc < 0)
		goto out;
	rc = hc_sha256(log->dump, len, hash);
	if (rc == 0)
		rc = hc_merkle_leaf_hash(log->dump, len, leaf);
	if (rc < 0)
		goto out;
	rc = hc_write_all(log->segfd, log->dump, len + 1);
	if (rc < 0) {
		/* Undo a partial line so the log never holds a torn one. */
		if (ftruncate(log->segfd, (off_t)log->seg_bytes) < 0)
			log->failed = 1;
		goto out;
	}
	rc = hc_merkle_push(&log->tree, leaf);
	if (rc < 0) {
		log->failed = 1;
		goto out;
	}
	memcpy(log->last_hash, hash, HC_HASH_LEN);
	log->seg_bytes += len + 1;
	reserve_more(log);
	if (out) {
		out->seq = log->next_seq;
		memcpy(out->hash, hash, HC_HASH_LEN);
		memcpy(out->time, now, sizeof(out->time));
	}
	if (tree)
		*tree = log->tree;
	log->next_seq++;
out:
	pthread_mutex_unlock(&log->mu);
	free(body);
	return rc;
}

int hc_log_sync(hc_log *log, uint64_t seq)
{
	uint64_t target;
	int fd, rc = 0;

	pthread_mutex_lock(&log->sync_mu);
	for (;;) {
		if (log->durable > seq)
			goto out;
		if (!log->syncing)
			break;
		/* Someone else is syncing: its result may cover us. */
		pthread_cond_wait(&log->sync_cv, &log->sync_mu);
	}
	log->syncing = 1;
	pthread_mutex_unlock(&log->sync_mu);

	/* Everything appended so far rides along with this fdatasync. */
	pthread_mutex_lock(&log->mu);
	target = log->next_seq;
	fd = dup(log->segfd);
	pthread_mutex_unlock(&log->mu);
	if (fd < 0)
		rc = hc_error_set(HC_ESYS, "cannot sync the log");
	else if (fdatasync(fd) < 0)
		rc = hc_error_set(HC_ESYS, "cannot sync the log");
	if (fd >= 0)
		close(fd);

	pthread_mutex_lock(&log->sync_mu);
	log->syncing = 0;
	if (rc == 0 && target > log->durable)
		log->durable = target;
	pthread_cond_broadcast(&log->sync_cv);
out:
	pthread_mutex_unlock(&log->sync_mu);
	return rc;
}

static void *flusher_main(void *arg)
{
	hc_log *log = arg;
	struct timespec until;
	uint64_t appended;
	int stop;

	for (;;) {
		pthread_mutex_lock(&log->sync_mu);
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += (long)log->opts.flush_ms * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (!log->stop &&
		       pthread_cond_timedwait(&log->sync_cv, &log->sync_mu,
					      &until) != ETIMEDOUT)
			;
		stop = log->stop;
		pthread_mutex_unlock(&log->sync_mu);
		if (stop)
			break;
		appended = hc_log_size(log);
		/* An error here is sticky for nobody: the next sync reports. */
		if (appended > 0)
			(void)hc_log_sync(log, appended - 1);
	}
	return NULL;
}

uint64_t hc_log_size(hc_log *log)
{
	uint64_t n;

	pthread_mutex_lock(&log->mu);
	n = log->next_seq;
	pthread_mutex_unlock(&log->mu);
	return n;
}

void hc_log_head(hc_log *log, uint64_t *size, uint8_t hash[HC_HASH_LEN])
{
	pthread_mutex_lock(&log->mu);
	*size = log->next_seq;
	memcpy(hash, log->last_hash, HC_HASH_LEN);
	pthread_mutex_unlock(&log->mu);
}

void hc_log_merkle(hc_log *log, hc_merkle *out)
{
	pthread_mutex_lock(&log->mu);
	*out = log->tree;
	pthread_mutex_unlock(&log->mu);
}

int hc_log_storefd(const hc_log *log)
{
	return log->storefd;
}

static void log_free(hc_log *log)
{
	if (!log)
		return;
	if (log->segfd >= 0)
		close(log->segfd);
	if (log->chainfd >= 0)
		close(log->chainfd); /* releases the flock */
	pthread_mutex_destroy(&log->mu);
	pthread_mutex_destroy(&log->sync_mu);
	pthread_cond_destroy(&log->sync_cv);
	free(log->dump);
	free(log->ck_miss);
	json_decref(log->torn_named);
	free(log);
}

int hc_log_close(hc_log *log)
{
	int rc = 0;

	if (!log)
		return 0;
	if (log->flusher_running) {
		pthread_mutex_lock(&log->sync_mu);
		log->stop = 1;
		pthread_cond_broadcast(&log->sync_cv);
		pthread_mutex_unlock(&log->sync_mu);
		pthread_join(log->flusher, NULL);
	}
	if (log->next_seq > 0)
		rc = hc_log_sync(log, log->next_seq - 1);
	pthread_mutex_lock(&log->mu);
	reserve_release(log);
	pthread_mutex_unlock(&log->mu);
	log_free(log);
	return rc;
}

/*
 * What file path holds against buf: 0 the same bytes, in a whole copy;
 * 1 a copy a crash interrupted (not yet of mode 0400); 2 anything else
 * (or unreadable).
 */
static int content_of(int dirfd, const char *path, const char *buf, size_t len)
{
	struct stat st;
	char *have;
	int fd, rc = 2;

	/* Looked at before it is opened: a 0200 file is not readable. */
	if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    hc_torn_partial(&st))
		return 1;
	if (hc_open_regular_as(dirfd, path, path, O_RDONLY, &fd, &st) < 0)
		return 2;
	if ((st.st_mode & 07777) != 0400 || (uint64_t)st.st_size != len) {
		close(fd);
		return 2;
	}
	have = malloc(len ? len : 1);
	if (have && hc_pread_all(fd, have, len, 0) == 0 &&
	    memcmp(have, buf, len) == 0)
		rc = 0;
	free(have);
	close(fd);
	return rc;
}

/*
 * Create the copy of torn bytes path: written and synced while of mode
 * HC_TORN_PARTIAL, then made 0400 and synced again, so that a copy of
 * mode 0400 is always whole and one a crash interrupted says so.
 */
static int create_copy(int dirfd, const char *path, const char *buf, size_t len)
{
	int fd, rc;

	fd = openat(dirfd, path,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    HC_TORN_PARTIAL);
	if (fd < 0)
		return hc_error_set(errno == EEXIST ? HC_EEXIST : HC_ESYS,
				    "cannot create '%s'", path);
	/* Whatever the umask took: partial until whole. */
	rc = fchmod(fd, HC_TORN_PARTIAL) < 0
		     ? hc_error_set(HC_ESYS, "cannot chmod '%s'", path)
		     : hc_write_all(fd, buf, len);
	if (rc == 0 && (fsync(fd) < 0 || fchmod(fd, 0400) < 0 || fsync(fd) < 0))
		rc = hc_error_set(HC_ESYS, "cannot save '%s'", path);
	if (close(fd) < 0 && rc == 0)
		rc = hc_error_set(HC_ESYS, "cannot close '%s'", path);
	return rc < 0 ? rc : hc_fsync_dir(dirfd, HC_TORN_DIR);
}

/*
 * Save the torn bytes to chain/torn/, then cut the segment back to its
 * last complete line.  The recovery record is appended by the caller.
 */
static int save_torn(hc_log *log, const struct hc_torn *t, json_t **info)
{
	char path[128], hex[HC_HEX_LEN + 1];
	uint8_t hash[HC_HASH_LEN];
	char *bytes = NULL;
	int fd = -1, rc, k, have;

	if (t->length > HC_RECORD_MAX + 1)
		return hc_error_set(HC_EFORMAT, "torn tail too large");
	bytes = malloc(t->length ? t->length : 1);
	if (!bytes)
		return hc_error_set(HC_ENOMEM, "out of memory");
	snprintf(path, sizeof(path), "chain/%s", t->segment);
	rc = hc_open_regular_as(log->chainfd, t->segment, path, O_RDWR, &fd,
				NULL);
	if (rc < 0) {
		fd = -1;
		goto out;
	}
	rc = hc_pread_all(fd, bytes, t->length, (off_t)t->offset);
	if (rc < 0)
		goto out;
	/*
	 * The records before the torn bytes were read from the page cache:
	 * make them durable before the copy is, or a power cut could leave
	 * a copy at an offset past the segment's end, that no recovery can
	 * tell from a planted file.
	 */
	if (fdatasync(fd) < 0) {
		rc = hc_error_set(HC_ESYS, "cannot sync 'chain/%s'",
				  t->segment);
		goto out;
	}
	rc = hc_sha256(bytes, t->length, hash);
	if (rc < 0)
		goto out;
	hc_hex(hash, HC_HASH_LEN, hex);
	if (mkdirat(log->storefd, HC_TORN_DIR, 0700) < 0 && errno != EEXIST) {
		rc = hc_error_set(HC_ESYS, "cannot create '%s'", HC_TORN_DIR);
		goto out;
	}
	/*
	 * The copy's name holds: a copy not yet 0400 (a crash while saving:
	 * replaced by a whole one); the same bytes (a crash after saving,
	 * before cutting: done); or other bytes -- an earlier copy that a
	 * crash kept from being recorded, and these bytes are what was torn
	 * after its cut (a torn recovery record can begin with the very
	 * bytes of the line it replaced): kept, and these go to the next
	 * name, -1, -2...
	 */
	for (k = 0;; k++) {
		if (k > 999) {
			rc = hc_error_set(HC_EFORMAT,
					  "too many copies of torn bytes at "
					  "offset %" PRIu64 " of 'chain/%s'",
					  t->offset, t->segment);
			goto out;
		}
		if (k)
			snprintf(path, sizeof(path),
				 "%s/%.20s-%020" PRIu64 "-%d.torn", HC_TORN_DIR,
				 t->segment, t->offset, k);
		else
			snprintf(path, sizeof(path),
				 "%s/%.20s-%020" PRIu64 ".torn", HC_TORN_DIR,
				 t->segment, t->offset);
		rc = create_copy(log->storefd, path, bytes, t->length);
		if (rc != HC_EEXIST)
			break;
		have = content_of(log->storefd, path, bytes, t->length);
		if (have == 0) {
			rc = 0; /* saved before: only the cut is left */
			break;
		}
		if (have == 1) {
			if (unlinkat(log->storefd, path, 0) < 0)
				rc = hc_error_set(HC_ESYS,
						  "cannot replace '%s'", path);
			else
				rc = create_copy(log->storefd, path, bytes,
						 t->length);
			break;
		}
	}
	if (rc < 0)
		goto out;
	if (ftruncate(fd, (off_t)t->offset) < 0 || fsync(fd) < 0) {
		rc = hc_error_set(HC_ESYS,
				  "cannot cut the torn line from "
				  "'chain/%s'",
				  t->segment);
		goto out;
	}
	*info = json_pack("{s:s,s:I,s:I,s:s,s:s}", "segment", t->segment,
			  "offset", (json_int_t)t->offset, "length",
			  (json_int_t)t->length, "sha256", hex, "saved", path);
	if (!*info)
		rc = hc_error_set(HC_ENOMEM, "out of memory");
out:
	if (fd >= 0)
		close(fd);
	free(bytes);
	return rc;
}

/*
 * A crash between save_torn() and its recovery record leaves a copy of
 * torn bytes that no record names (hc_torn_interrupted says which: the
 * record's append may have begun a new segment, so the copy's segment is
 * not always the last).  Append a description of each such copy, for
 * the recovery record the crash prevented, to infos.
 */
static int find_unrecorded_torn(hc_log *log, json_t *infos)
{
	char path[300], hex[HC_HEX_LEN + 1], seg[32];
	uint8_t hash[HC_HASH_LEN];
	struct dirent *de;
	struct stat st;
	uint64_t off;
	int dfd, fd, rc = 0;
	size_t i;
	char *bytes;
	DIR *d;

	dfd = openat(log->storefd, HC_TORN_DIR,
		     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT || errno == ENOTDIR
			       ? 0
			       : hc_error_set(HC_ESYS, "cannot open '%s'",
					      HC_TORN_DIR);
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return hc_error_set(HC_ESYS, "cannot read '%s'", HC_TORN_DIR);
	}
	while (rc == 0 && (de = readdir(d))) {
		if (!hc_torn_interrupted(log->storefd, de->d_name,
					 &log->last_other))
			continue;
		snprintf(path, sizeof(path), "%s/%s", HC_TORN_DIR, de->d_name);
		for (i = 0; i < json_array_size(log->torn_named); i++)
			if (!strcmp(json_string_value(
					    json_array_get(log->torn_named, i)),
				    path))
				break;
		if (i < json_array_size(log->torn_named))
			continue; /* recorded */
		(void)hc_torn_name(de->d_name, seg, &off);
		rc = hc_open_regular_as(log->storefd, path, path, O_RDONLY, &fd,
					&st);
		if (rc < 0)
			break;
		bytes = st.st_size <= HC_RECORD_MAX + 1
				? malloc(st.st_size ? (size_t)st.st_size : 1)
				: NULL;
		rc = bytes ? hc_pread_all(fd, bytes, (size_t)st.st_size, 0)
			   : hc_error_set(HC_EFORMAT,
					  "'%s' is not a copy of torn bytes",
					  path);
		close(fd);
		if (rc == 0)
			rc = hc_sha256(bytes, (size_t)st.st_size, hash);
		free(bytes);
		if (rc < 0)
			break;
		hc_hex(hash, HC_HASH_LEN, hex);
		if (json_array_append_new(
			    infos, json_pack("{s:s,s:I,s:I,s:s,s:s}", "segment",
					     seg, "offset", (json_int_t)off,
					     "length", (json_int_t)st.st_size,
					     "sha256", hex, "saved", path)))
			rc = hc_error_set(HC_ENOMEM, "out of memory");
	}
	closedir(d);
	return rc;
}

/* Replay the log to find its head; *torn set if it ends in a torn line. */
/*
 * The record just pushed is a checkpoint record: the records so far are
 * sealed; remember the tree's root if its checkpoint file is missing (a
 * crash between the record and the file), for hc_log_unsigned.
 */
static int note_checkpoint(hc_log *log)
{
	struct hc_ck_unsigned *more;
	char path[64];
	struct stat st;
	int rc;

	log->ck_sealed = log->tree.size;
	hc_checkpoint_name(log->tree.size, path);
	if (fstatat(log->storefd, path, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	more = realloc(log->ck_miss, (log->ck_nmiss + 1) * sizeof(*more));
	if (!more)
		return hc_error_set(HC_ENOMEM, "out of memory");
	log->ck_miss = more;
	more[log->ck_nmiss].size = log->tree.size;
	rc = hc_merkle_root(&log->tree, more[log->ck_nmiss].root);
	if (rc == 0)
		log->ck_nmiss++;
	return rc;
}

void hc_log_unsigned(const hc_log *log, const struct hc_ck_unsigned **list,
		     size_t *n, uint64_t *sealed)
{
	*list = log->ck_miss;
	*n = log->ck_nmiss;
	*sealed = log->ck_sealed;
}

static int replay(hc_log *log, int *torn, struct hc_torn *where)
{
	hc_reader *r = NULL;
	hc_record rec;
	int rc;

	memset(&rec, 0, sizeof(rec));
	*torn = 0;
	rc = hc_reader_open(&r, log->storefd);
	if (rc < 0)
		return rc;
	if (hc_reader_chain_dir(r)->nstrays > 0) {
		/* Appending beside a planted file would build on it. */
		rc = hc_error_set(HC_EVERIFY,
				  "'chain/%s' is not a log segment (chain/ "
				  "holds only segments and torn/): refusing "
				  "to write; run 'hozen verify'",
				  hc_reader_chain_dir(r)->strays[0]);
		goto out;
	}
	while ((rc = hc_reader_next(r, &rec)) == 1) {
		if (rec.seq != log->next_seq ||
		    CRYPTO_memcmp(rec.prev, log->last_hash, HC_HASH_LEN)) {
			rc = hc_error_set(HC_EVERIFY,
					  "%s: the chain is broken at seq "
					  "%" PRIu64 "; run 'hozen verify'",
					  hc_reader_where(r), log->next_seq);
			goto out;
		}
		if (hc_reader_at_segment_start(r) &&
		    hc_reader_segment_first(r) != rec.seq) {
			rc = hc_error_set(HC_EVERIFY,
					  "%s: segment name does not match "
					  "its first seq %" PRIu64,
					  hc_reader_where(r), rec.seq);
			goto out;
		}
		memcpy(log->last_hash, rec.hash, HC_HASH_LEN);
		rc = hc_merkle_push(&log->tree, rec.leaf);
		if (rc == 0 && !strcmp(rec.type, "checkpoint"))
			rc = note_checkpoint(log);
		if (rc == 0 && !strcmp(rec.type, "recovery")) {
			json_t *saved = json_object_get(
				json_object_get(rec.json, "torn"), "saved");

			if (json_is_string(saved) &&
			    json_array_append(log->torn_named, saved))
				rc = hc_error_set(HC_ENOMEM, "out of memory");
		} else {
			hc_reader_mark(r, &log->last_other);
		}
		if (rc < 0)
			goto out;
		log->next_seq++;
	}
	if (rc == HC_ETORN) {
		*torn = 1;
		hc_reader_torn(r, where);
		rc = 0;
	}
	if (rc == 0 && log->next_seq == 0)
		rc = hc_error_set(HC_EVERIFY, "chain: the log has no genesis "
					      "record");
	log->seg_first = hc_reader_segment_first(r);
out:
	hc_record_release(&rec);
	hc_reader_free(r);
	return rc;
}

int hc_log_open(hc_log **out, int storefd, const struct hc_log_options *opts,
		struct hc_log_open_report *report)
{
	struct hc_log_open_report rep;
	struct hc_torn torn;
	json_t *torn_info = NULL, *infos = NULL;
	size_t i;
	hc_log *log;
	char name[32];
	struct stat st;
	int is_torn = 0, rc;
	hc_actor self;

	memset(&rep, 0, sizeof(rep));
	log = calloc(1, sizeof(*log));
	if (!log)
		return hc_error_set(HC_ENOMEM, "out of memory");
	log->storefd = storefd;
	log->segfd = -1;
	pthread_mutex_init(&log->mu, NULL);
	pthread_mutex_init(&log->sync_mu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&log->sync_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (opts)
		log->opts = *opts;
	if (!log->opts.segment_bytes)
		log->opts.segment_bytes = 256ull << 20;
	hc_merkle_init(&log->tree);
	log->torn_named = json_array();
	if (!log->torn_named) {
		rc = hc_error_set(HC_ENOMEM, "out of memory");
		goto fail;
	}

	log->chainfd = openat(storefd, HC_CHAIN_DIR,
			      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (log->chainfd < 0) {
		rc = hc_error_set(HC_ESYS, "cannot open 'chain'");
		goto fail;
	}
	if (flock(log->chainfd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK
			     ? hc_error_set(
				       HC_EBUSY,
				       "another hozen process is writing to "
				       "this store (is it mounted?)")
			     : hc_error_set(HC_ESYS, "cannot lock the store");
		goto fail;
	}
	rc = replay(log, &is_torn, &torn);
	if (rc == 0 && log->opts.recover)
		rc = hc_remove_tmp_leftovers(storefd);
	if (rc < 0)
		goto fail;
	if (is_torn) {
		rep.torn = 1;
		rep.torn_bytes = torn.length;
		if (!log->opts.recover) {
			rc = hc_error_set(
				HC_ETORN,
				"chain/%s: the log ends in a torn "
				"line of %" PRIu64 " bytes at offset %" PRIu64
				" (crash during an append?); "
				"run 'hozen recover' to preserve "
				"and seal it",
				torn.segment, torn.length, torn.offset);
			goto fail;
		}
		rc = save_torn(log, &torn, &torn_info);
		if (rc < 0)
			goto fail;
		snprintf(
			rep.torn_saved, sizeof(rep.torn_saved), "%s",
			json_string_value(json_object_get(torn_info, "saved")));
	}
	hc_segment_name(log->seg_first, name);
	{
		char shown[48];

		snprintf(shown, sizeof(shown), "chain/%s", name);
		rc = hc_open_regular_as(log->chainfd, name, shown,
					O_WRONLY | O_APPEND, &log->segfd, &st);
		if (rc < 0) {
			log->segfd = -1;
			goto fail;
		}
	}
	log->seg_bytes = (uint64_t)st.st_size;
	/* Copies a crash kept from being recorded (the torn one too). */
	infos = json_array();
	rc = infos ? find_unrecorded_torn(log, infos)
		   : hc_error_set(HC_ENOMEM, "out of memory");
	if (rc < 0)
		goto fail;
	json_decref(torn_info); /* save_torn's copy is among them */
	torn_info = NULL;
	if (json_array_size(infos) && !log->opts.recover) {
		rc = hc_error_set(
			HC_ETORN,
			"%s: torn bytes saved by a recovery that a crash "
			"interrupted, not yet recorded; run 'hozen recover' "
			"to record and seal them",
			json_string_value(json_object_get(
				json_array_get(infos, 0), "saved")));
		goto fail;
	}
	if (json_array_size(infos) && !rep.torn) {
		rep.torn = 1;
		rep.torn_bytes = (uint64_t)json_integer_value(
			json_object_get(json_array_get(infos, 0), "length"));
		snprintf(rep.torn_saved, sizeof(rep.torn_saved), "%s",
			 json_string_value(json_object_get(
				 json_array_get(infos, 0), "saved")));
	}
	log->reserved = log->seg_bytes;
	reserve_more(log);
	/* Everything replayed was read back from disk; sync it once. */
	if (fdatasync(log->segfd) < 0) {
		rc = hc_error_set(HC_ESYS, "cannot sync 'chain/%s'", name);
		goto fail;
	}
	log->durable = log->next_seq;
	for (i = 0; i < json_array_size(infos); i++) {
		json_t *f =
			json_pack("{s:O}", "torn", json_array_get(infos, i));

		hc_actor_self(&self);
		rc = f ? hc_log_append(log, "recovery", &self, f, NULL)
		       : hc_error_set(HC_ENOMEM, "out of memory");
		json_decref(f);
		if (rc == 0)
			rc = hc_log_sync(log, log->next_seq - 1);
		if (rc < 0)
			goto fail;
	}
	json_decref(infos);
	infos = NULL;
	if (log->opts.flush_ms) {
		if (pthread_create(&log->flusher, NULL, flusher_main, log)) {
			rc = hc_error_set(HC_ESYS, "cannot start the flusher");
			goto fail;
		}
		log->flusher_running = 1;
	}
	rep.records = log->next_seq;
	if (report)
		*report = rep;
	*out = log;
	return 0;
fail:
	json_decref(torn_info);
	json_decref(infos);
	log_free(log);
	return rc;
}

int hc_log_create(int storefd, const hc_actor *actor, json_t *fields)
{
	hc_log tmp;
	char name[32], path[64], now[40], *body = NULL;
	size_t len, body_len;
	int rc;

	rc = check_fields("genesis", fields);
	if (rc == 0)
		rc = build_body("genesis", actor, fields, &body, &body_len);
	if (rc < 0)
		return rc;
	memset(&tmp, 0, sizeof(tmp));
	rc = build_line(&tmp, body, body_len, &len, now);
	if (rc == 0) {
		hc_segment_name(0, name);
		snprintf(path, sizeof(path), "%s/%s", HC_CHAIN_DIR, name);
		rc = hc_create_file(storefd, path, tmp.dump, len + 1, 0600);
	}
	free(tmp.dump);
	free(body);
	return rc;
}
