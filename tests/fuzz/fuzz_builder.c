/*
 * fuzz_builder.c - libFuzzer target for the record builder: records of
 * fuzzed types and members are appended to a real log (hc_log_append),
 * and each must either read back as exactly the record asked for (its
 * line parses, with the next seq, the previous record's hash as prev,
 * the type and every member) and take exactly its line and a newline, or
 * be refused with a message and nothing written.
 *
 * Input: a flags byte (PAD: pad the record to near the 1 MiB limit, the
 * next two bytes saying how far under it; a megabyte a run is slow, so
 * it is one value of the byte, not a bit), then the type up to a NUL,
 * then NAME NUL VALUE NUL pairs; a VALUE starting with '#' is an integer.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hashchain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEGMENT "chain/00000000000000000000.log"
#define PAD	0x01
/* Start a new store when the segment grows past this. */
#define RESET_BYTES (64u << 20)

static struct {
	char dir[64];
	int round;
	hc_store *s;
	hc_log *log;
	uint8_t last[HC_HASH_LEN]; /* hash of the last record */
} st;

static off_t segment_size(void)
{
	struct stat sb;

	if (fstatat(hc_store_fd(st.s), SEGMENT, &sb, 0) < 0)
		abort();
	return sb.st_size;
}

/* The hash of the last line of the segment. */
static void last_hash(void)
{
	off_t n = segment_size(), i;
	char *buf = malloc((size_t)n);
	int fd = openat(hc_store_fd(st.s), SEGMENT, O_RDONLY);

	if (!buf || fd < 0 || pread(fd, buf, (size_t)n, 0) != n)
		abort();
	for (i = n - 1; i > 0 && buf[i - 1] != '\n'; i--)
		;
	if (hc_sha256(buf + i, (size_t)(n - i - 1), st.last) < 0)
		abort();
	close(fd);
	free(buf);
}

/* A fresh store and its log, the old one removed. */
static void reset(void)
{
	char cmd[128];

	if (st.log)
		hc_log_close(st.log);
	hc_store_free(st.s);
	st.log = NULL;
	st.s = NULL;
	if (!st.dir[0])
		snprintf(st.dir, sizeof(st.dir), "/tmp/hozen-fuzz-builder-%ld",
			 (long)getpid());
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", st.dir);
	if (system(cmd) != 0)
		abort();
	if (hc_store_init(st.dir, NULL) < 0 ||
	    hc_store_open(&st.s, st.dir) < 0 ||
	    hc_log_open(&st.log, hc_store_fd(st.s), NULL, NULL) < 0)
		abort();
	last_hash();
}

/* The fields of the input, or NULL if it has none that JSON can hold. */
static json_t *fields_of(const char *p, const char *end, size_t pad)
{
	json_t *f = json_object(), *v;
	const char *name, *val;
	char *buf;

	if (!f)
		abort();
	while (p < end) {
		name = p;
		p = memchr(p, '\0', (size_t)(end - p));
		if (!p)
			break;
		val = ++p;
		p = memchr(p, '\0', (size_t)(end - p));
		if (!p)
			p = end;
		if (val < end && *val == '#') {
			char *num = strndup(val + 1, (size_t)(p - val - 1));

			if (!num)
				abort();
			v = json_integer(strtoll(num, NULL, 10));
			free(num);
		} else {
			/* Maybe not UTF-8: the builder must refuse it. */
			v = json_stringn_nocheck(val, (size_t)(p - val));
		}
		json_object_set_new_nocheck(f, name, v);
		if (p < end)
			p++;
	}
	if (pad) {
		buf = malloc(pad + 1);
		if (!buf)
			abort();
		memset(buf, 'p', pad);
		buf[pad] = '\0';
		json_object_set_new(f, "pad", json_string(buf));
		free(buf);
	}
	return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data + 1,
		   *end = (const char *)data + size;
	const char *type, *name;
	struct hc_appended app;
	char *type_copy, *line;
	size_t pad = 0, len;
	off_t before, after;
	hc_record rec;
	json_t *f, *v;
	static hc_actor self;
	uint64_t seq;
	int rc, fd;

	if (size < 1)
		return 0;
	if (!st.log || segment_size() > RESET_BYTES)
		reset();
	if (data[0] == PAD && size >= 3) {
		pad = HC_RECORD_MAX - (size_t)(data[1] << 8 | data[2]);
		p += 2;
	}
	type = p;
	p = memchr(p, '\0', (size_t)(end - p));
	type_copy =
		strndup(type, p ? (size_t)(p - type) : (size_t)(end - type));
	if (!type_copy)
		abort();
	f = fields_of(p ? p + 1 : end, end, pad);
	if (!self.pid)
		hc_actor_self(&self);
	seq = hc_log_size(st.log);
	before = segment_size();
	memset(&app, 0, sizeof(app));
	rc = hc_log_append(st.log, type_copy, &self, f, &app);
	after = segment_size();
	if (rc < 0) {
		/* Refused: a message, and nothing written. */
		if (!hc_error_message()[0] || after != before ||
		    hc_log_size(st.log) != seq)
			abort();
		goto out;
	}
	len = (size_t)(after - before);
	if (app.seq != seq || hc_log_size(st.log) != seq + 1 || len < 2 ||
	    len - 1 > HC_RECORD_MAX)
		abort();
	line = malloc(len);
	fd = openat(hc_store_fd(st.s), SEGMENT, O_RDONLY);
	if (!line || fd < 0 || pread(fd, line, len, before) != (ssize_t)len ||
	    line[len - 1] != '\n')
		abort();
	close(fd);
	memset(&rec, 0, sizeof(rec));
	if (hc_record_parse(&rec, line, len - 1) < 0 || rec.seq != seq ||
	    memcmp(rec.prev, st.last, HC_HASH_LEN) ||
	    memcmp(rec.hash, app.hash, HC_HASH_LEN) ||
	    strcmp(rec.type, type_copy) ||
	    strcmp(json_string_value(json_object_get(rec.json, "time")),
		   app.time))
		abort();
	json_object_foreach(f, name, v)
	{
		if (!json_equal(json_object_get(rec.json, name), v))
			abort();
	}
	memcpy(st.last, rec.hash, HC_HASH_LEN);
	hc_record_release(&rec);
	free(line);
out:
	json_decref(f);
	free(type_copy);
	return 0;
}
