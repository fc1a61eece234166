/*
 * cmd_log.c - hozen log: the records, as a table or as JSON lines.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hozen.h"

static const char log_help[] =
	"usage: hozen log [OPTIONS] STORE\n"
	"\n"
	"Show the records of the store's chain: a table by default, or the\n"
	"exact record lines (JSON, one per line) with --json.  This reads\n"
	"the records; it does not verify them: use 'hozen verify'.\n"
	"\n"
	"  -j, --json         print each record's exact line\n"
	"  -f, --from SEQ     start at this seq (default 0)\n"
	"  -t, --to SEQ       stop after this seq\n"
	"  -T, --type TYPE    only records of this type (repeatable, or a\n"
	"                     comma-separated list)\n"
	"  -h, --help         show this help\n";

struct log_filter {
	uint64_t from, to;
	char **types;
	size_t ntypes;
};

static int type_wanted(const struct log_filter *f, const char *type)
{
	size_t i;

	if (f->ntypes == 0)
		return 1;
	for (i = 0; i < f->ntypes; i++)
		if (!strcmp(f->types[i], type))
			return 1;
	return 0;
}

static int add_types(struct log_filter *f, const char *list)
{
	char *copy = strdup(list), *tok, *save = NULL;
	char **nt;

	if (!copy)
		return -1;
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		nt = realloc(f->types, (f->ntypes + 1) * sizeof(*nt));
		if (!nt)
			break;
		f->types = nt;
		f->types[f->ntypes] = strdup(tok);
		if (!f->types[f->ntypes])
			break;
		f->ntypes++;
	}
	free(copy);
	return tok ? -1 : 0;
}

/* The record's own fields, without the common ones, as compact JSON. */
static char *details(json_t *rec)
{
	static const char *const common[] = {"v",    "seq",  "prev",
					     "time", "type", "actor"};
	json_t *d = json_deep_copy(rec);
	char *s;
	size_t i;

	if (!d)
		return NULL;
	for (i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		json_object_del(d, common[i]);
	s = json_object_size(d)
		    ? json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER)
		    : strdup("");
	json_decref(d);
	return s;
}

/* 1 if a case record changes a confidential field (values hashed). */
static int confidential(const hc_record *rec)
{
	json_t *changes = json_object_get(rec->json, "changes"), *c;
	size_t i;

	json_array_foreach(
		changes, i,
		c) if (json_is_true(json_object_get(c,
						    "confidential"))) return 1;
	return 0;
}

/* A string member printed safely (a process names itself as it likes). */
static char *safe(const char *s)
{
	return term_safe(s ? s : "?", strlen(s ? s : "?"), 1);
}

static void print_row(const hc_record *rec)
{
	json_t *actor = json_object_get(rec->json, "actor");
	char *time =
		safe(json_string_value(json_object_get(rec->json, "time")));
	char *comm = safe(json_string_value(json_object_get(actor, "comm")));
	char *type = safe(rec->type);
	char *who = NULL, *d = details(rec->json), *sd = NULL;
	size_t wn = (comm ? strlen(comm) : 1) + 64;
	int n = -1;

	/* The details are JSON: its escapes stay, what it leaves raw not. */
	if (d)
		sd = term_safe(d, strlen(d), 0);
	who = malloc(wn);
	if (who)
		n = snprintf(who, wn,
			     "uid=%" JSON_INTEGER_FORMAT
			     " pid=%" JSON_INTEGER_FORMAT " %s",
			     json_integer_value(json_object_get(actor, "uid")),
			     json_integer_value(json_object_get(actor, "pid")),
			     comm ? comm : "?");
	printf("%-6" PRIu64 " %-30s %-11s %-28s %s%s\n", rec->seq,
	       time ? time : "?", type ? type : "?",
	       n >= 0 && (size_t)n < wn ? who : "?",
	       confidential(rec) ? "[confidential: values hashed] " : "",
	       sd ? sd : "");
	free(who);
	free(sd);
	free(d);
	free(type);
	free(comm);
	free(time);
}

int cmd_log(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'},
		{"from", required_argument, NULL, 'f'},
		{"to", required_argument, NULL, 't'},
		{"type", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct log_filter f = {.from = 0, .to = UINT64_MAX};
	hc_store *s = NULL;
	hc_reader *r = NULL;
	hc_record rec;
	int json = 0, c, rc, ex = EXIT_OK;
	size_t i;

	memset(&rec, 0, sizeof(rec));
	while ((c = getopt_long(argc, argv, "jf:t:T:h", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 'f':
			if (parse_u64(optarg, &f.from) < 0) {
				ex = fail_usage("log",
						"--from: '%s' is not a "
						"seq number",
						optarg);
				goto out;
			}
			break;
		case 't':
			if (parse_u64(optarg, &f.to) < 0) {
				ex = fail_usage("log",
						"--to: '%s' is not a "
						"seq number",
						optarg);
				goto out;
			}
			break;
		case 'T':
			if (add_types(&f, optarg) < 0) {
				ex = fail_usage("log", "out of memory");
				goto out;
			}
			break;
		case 'h':
			ex = print_help(log_help);
			goto out;
		default:
			ex = fail_option("log", argv);
			goto out;
		}
	}
	if (optind + 1 != argc) {
		ex = fail_usage("log", "expected one STORE argument");
		goto out;
	}
	if (f.from > f.to) {
		ex = fail_usage("log", "--from is after --to");
		goto out;
	}
	rc = hc_store_open(&s, argv[optind]);
	if (rc == 0)
		rc = hc_reader_open(&r, hc_store_fd(s));
	if (rc < 0) {
		ex = fail_hc(rc);
		goto out;
	}
	if (!json)
		printf("%-6s %-30s %-11s %-28s %s\n", "SEQ", "TIME", "TYPE",
		       "ACTOR", "DETAILS");
	while ((rc = hc_reader_next(r, &rec)) == 1) {
		if (rec.seq < f.from || !type_wanted(&f, rec.type))
			continue;
		if (rec.seq > f.to)
			break;
		if (json) {
			fwrite(rec.line, 1, rec.len, stdout);
			putchar('\n');
		} else {
			print_row(&rec);
		}
	}
	if (fflush(stdout) != 0) {
		ex = fail_usage("log", "cannot write the output");
		goto out;
	}
	if (rc < 0)
		ex = fail_hc(rc == HC_EFORMAT ? HC_EVERIFY : rc);
out:
	hc_record_release(&rec);
	hc_reader_free(r);
	hc_store_free(s);
	for (i = 0; i < f.ntypes; i++)
		free(f.types[i]);
	free(f.types);
	return ex;
}
