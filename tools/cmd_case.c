/*
 * cmd_case.c - hozen case (show, set, unset, edit, import, export, check,
 * --fields) and hozen release: option parsing and calls into case/.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "case.h"
#include "hozen.h"

static const char case_help[] =
	"usage: hozen case STORE [--json]\n"
	"       hozen case STORE set [OPTIONS] FIELD VALUE...\n"
	"       hozen case STORE unset FIELD...\n"
	"       hozen case STORE edit [--from FILE]\n"
	"       hozen case STORE import FILE\n"
	"       hozen case STORE export [--redact] [-o FILE]\n"
	"       hozen case STORE check [--json]\n"
	"       hozen case --fields [--markdown]\n"
	"\n"
	"The case of a store: the incident (援助申出書) and the preservation\n"
	"order it is kept under (G8 preservation checklist).  Every change\n"
	"is a 'case' record in the chain with the old and new values (salted\n"
	"hashes for confidential fields), the actor and the time.\n"
	"\n"
	"  (no verb)     show the case, its order state and what is\n"
	"                confidential; --json for JSON\n"
	"  set           set FIELD: a text joins the VALUEs with spaces, a\n"
	"                list takes one item per VALUE; a document field\n"
	"                takes a FILE (a CMS signed file needs --trust CERT)\n"
	"      --confidential, --public   mark FIELD confidential or not\n"
	"      --trust CERT               PEM certificates trusted to sign\n"
	"                                 the issuer's document\n"
	"  unset         remove the values of the FIELDs\n"
	"  edit          edit the case in $VISUAL or $EDITOR; invalid input\n"
	"                changes nothing and is kept in a file the error\n"
	"                names (--from FILE continues from it)\n"
	"  import FILE   set the fields of FILE (export's JSON, or an edit\n"
	"                document)\n"
	"  export        the case as JSON; --redact leaves out confidential\n"
	"                values; -o FILE writes to FILE\n"
	"  check         what the application form and the G8 checklist\n"
	"                still miss, item by item (exit 1 if anything)\n"
	"  --fields      the field table (--markdown: as in docs/CASE.md)\n"
	"\n"
	"Dates are ISO 8601 with a zone (2026-11-20T10:30:00+09:00, Z);\n"
	"without a zone they are JST.  'man hozen-case' has the details.\n";

static const char release_help[] =
	"usage: hozen release [--revoked-by AUTHORITY] [--reason TEXT] STORE\n"
	"\n"
	"Lift the preservation order: after its end (order.end), or before\n"
	"it when the order is revoked, naming the revoking authority.  The\n"
	"release is a 'release' record in the chain.  A draft order (no\n"
	"issuer) cannot be released.  Extending order.end later puts the\n"
	"order back in force.\n"
	"\n"
	"  -r, --revoked-by AUTHORITY  the order was revoked by AUTHORITY\n"
	"  -m, --reason TEXT           a note kept with the release\n"
	"  -h, --help                  show this help\n";

/* The store and its case, as every verb needs them. */
struct session {
	hc_store *store;
	case_t *c;
	int fd;
};

static void session_close(struct session *s)
{
	case_free(s->c);
	hc_store_free(s->store);
	memset(s, 0, sizeof(*s));
}

static int session_open(struct session *s, const char *path)
{
	int rc;

	memset(s, 0, sizeof(*s));
	rc = hc_store_open(&s->store, path);
	if (rc == 0) {
		s->fd = hc_store_fd(s->store);
		rc = case_load(&s->c, s->fd);
	}
	if (rc < 0)
		session_close(s);
	return rc;
}

/* Record the changes made to s->c and say what was recorded. */
static int commit(struct session *s)
{
	struct case_commit_report rep;
	struct case_preservation p;
	hc_actor self;
	int rc;

	hc_actor_self(&self);
	rc = case_commit(s->fd, s->c, &self, &rep);
	if (rc < 0)
		return rc;
	if (rep.changes == 0) {
		printf("nothing changed\n");
		return 0;
	}
	printf("recorded %zu change%s as seq %" PRIu64 "\n", rep.changes,
	       rep.changes == 1 ? "" : "s", rep.seq);
	case_preservation(s->c, time(NULL), &p);
	if (p.state == CASE_ORDER_ENDED || p.state == CASE_ORDER_DRAFT)
		printf("note: %s\n", p.why);
	return 0;
}

/* ----------------------------------------------------------------- show */

static void print_value(const char *name, const char *text, int conf)
{
	const char *nl;
	char head[96];

	snprintf(head, sizeof(head), "%s%s", name,
		 conf ? " [confidential]" : "");
	printf("  %-44s ", head);
	if (!text) {
		printf("-\n");
		return;
	}
	while ((nl = strchr(text, '\n'))) {
		printf("%.*s\n  %-44s ", (int)(nl - text), text, "");
		text = nl + 1;
	}
	printf("%s\n", text);
}

static json_t *state_json(const case_t *c, time_t now)
{
	struct case_preservation p;
	struct case_confidentiality k;

	case_preservation(c, now, &p);
	case_confidentiality(c, now, &k);
	return json_pack("{s:s,s:b,s:s,s:{s:b,s:i,s:i}}", "order",
			 case_order_state_name(p.state),
			 "preservation_in_force", p.in_force, "why", p.why,
			 "confidentiality", "in_force", k.in_force,
			 "towards_recipient", k.towards_recipient,
			 "towards_subject", k.towards_subject);
}

static int show(struct session *s, const char *path, int json)
{
	struct case_preservation p;
	struct case_confidentiality k;
	const char *last = NULL;
	time_t now = time(NULL);
	size_t i;

	if (json) {
		json_t *doc = NULL, *state = state_json(s->c, now);
		int rc = case_to_json(s->c, 0, &doc);

		if (rc < 0) {
			json_decref(state);
			return rc;
		}
		json_object_del(doc, "hozen_case_export");
		json_object_set_new(doc, "store", json_string(path));
		json_object_set_new(doc, "state", state);
		json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(doc);
		return 0;
	}
	case_preservation(s->c, now, &p);
	case_confidentiality(s->c, now, &k);
	printf("case:            %s\n", path);
	printf("order:           %s%s\n",
	       p.state == CASE_ORDER_DRAFT ? "DRAFT"
					   : case_order_state_name(p.state),
	       p.state == CASE_ORDER_DRAFT ? " (no identified issuer)" : "");
	printf("preservation:    %s: %s\n", p.in_force ? "IN FORCE" : "lifted",
	       p.why);
	printf("confidentiality: %s\n",
	       k.in_force ? "IN FORCE: exports must be encrypted to their "
			    "recipient or leave out [confidential] fields"
			  : "not in force");
	for (i = 0; i < case_field_count(); i++) {
		const struct case_field_info *f = case_field_at(i);
		const char *sec = case_field_section(f);
		char *text = case_value_text(s->c, f->name);

		if (sec != last)
			printf("\n%s\n", sec);
		last = sec;
		print_value(f->name, text, case_is_confidential(s->c, f->name));
		free(text);
	}
	return 0;
}

static int show_fields(int markdown)
{
	size_t i, j;

	if (markdown)
		printf("| field | type | confidential | G8 item | 援助申出書 | "
		       "required for | what it holds |\n"
		       "| --- | --- | --- | --- | --- | --- | --- |\n");
	for (i = 0; i < case_field_count(); i++) {
		const struct case_field_info *f = case_field_at(i);
		static const char *const types[] = {"text", "date", "enum",
						    "int",  "bool", "document",
						    "list"};
		char vals[256] = "";

		if (f->type == CASE_INT)
			snprintf(vals, sizeof(vals), " %d to %d", f->min,
				 f->max);
		for (j = 0; f->values && f->values[j]; j++) {
			size_t n = strlen(vals);

			snprintf(vals + n, sizeof(vals) - n, "%s%s",
				 j ? ", " : ": ", f->values[j]);
		}
		if (markdown)
			printf("| `%s` | %s%s | %s | %s | %s | %s%s%s | %s |\n",
			       f->name, types[f->type], vals,
			       f->confidential ? "yes" : "", f->g8 ? f->g8 : "",
			       f->form ? f->form : "",
			       f->required & CASE_REQ_FORM ? "form" : "",
			       f->required == (CASE_REQ_FORM | CASE_REQ_G8)
				       ? ", "
				       : "",
			       f->required & CASE_REQ_G8 ? "G8" : "", f->label);
		else
			printf("%-32s %s%s\n", f->name, types[f->type], vals);
	}
	return EXIT_OK;
}

static int check(struct session *s, int json)
{
	struct case_missing *m = NULL;
	size_t i, n = 0;
	int rc;

	rc = case_check(s->c, &m, &n);
	if (rc < 0)
		return fail_hc(rc);
	if (json) {
		json_t *arr = json_array();

		for (i = 0; arr && i < n; i++)
			json_array_append_new(
				arr, json_pack("{s:s,s:s,s:s}", "list",
					       m[i].list, "item", m[i].item,
					       "field", m[i].field));
		json_dumpf(arr, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(arr);
	} else {
		for (i = 0; i < n; i++) {
			const char *one = m[i].field;
			const struct case_field_info *f = case_field_find(one);
			int group = !(f->required &
				      (*m[i].list == 'f' ? CASE_REQ_FORM
							 : CASE_REQ_G8));

			printf("missing  %-4s %-32s %s%s\n", m[i].list,
			       m[i].item, group ? "one of the fields of " : "",
			       group ? "the item, e.g. " : "");
			printf("         %-4s %-32s %s (%s)\n", "", "", one,
			       f->label);
		}
		if (n == 0)
			printf("complete: the application form and the G8 "
			       "checklist have every item\n");
	}
	free(m);
	return n ? EXIT_INVALID : EXIT_OK;
}

/* ------------------------------------------------------------------ set */

static int set(struct session *s, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"confidential", no_argument, NULL, 'c'},
		{"public", no_argument, NULL, 'p'},
		{"trust", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const struct case_field_info *f;
	const char *trust = NULL, *field;
	int conf = -1, c, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, "+cpt:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
		case 'p':
			conf = c == 'c';
			break;
		case 't':
			trust = optarg;
			break;
		case 'h':
			return print_help(case_help);
		default:
			return fail_usage("case", "invalid option");
		}
	}
	if (optind >= argc)
		return fail_usage("case", "set: expected FIELD [VALUE...]");
	field = argv[optind++];
	f = case_field_find(field);
	if (!f)
		return fail_usage("case",
				  "unknown field '%s' (see 'hozen "
				  "case --fields')",
				  field);
	if (optind == argc && conf < 0)
		return fail_usage("case", "set: '%s': no value given", field);
	rc = 0;
	if (conf >= 0)
		rc = case_set_confidential(s->c, field, conf);
	if (rc == 0 && optind < argc && f->type == CASE_DOCUMENT) {
		if (argc - optind != 1)
			return fail_usage(
				"case", "set: '%s': expected one FILE", field);
		rc = case_set_document(s->c, field, argv[optind], trust);
	} else if (rc == 0 && optind < argc) {
		rc = case_set(s->c, field, (const char *const *)argv + optind,
			      (size_t)(argc - optind));
	}
	if (rc == 0)
		rc = commit(s);
	return rc < 0 ? fail_hc(rc) : EXIT_OK;
}

static int unset(struct session *s, int argc, char **argv)
{
	int i, rc = 0;

	if (argc < 2)
		return fail_usage("case", "unset: expected FIELD...");
	for (i = 1; rc == 0 && i < argc; i++)
		rc = case_unset(s->c, argv[i]);
	if (rc == 0)
		rc = commit(s);
	return rc < 0 ? fail_hc(rc) : EXIT_OK;
}

/* Apply a document (export JSON or edit text) and record it. */
static int apply(struct session *s, const char *text, size_t len)
{
	int rc = case_import(s->c, text, len);

	return rc < 0 ? rc : commit(s);
}

static int import(struct session *s, int argc, char **argv)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (argc != 2)
		return fail_usage("case", "import: expected one FILE");
	rc = hc_read_file(AT_FDCWD, argv[1], 16u << 20, &text, &len);
	if (rc == 0)
		rc = apply(s, text, len);
	free(text);
	return rc < 0 ? fail_hc(rc) : EXIT_OK;
}

static int export(struct session *s, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"redact", no_argument, NULL, 'r'},
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	const char *output = NULL;
	json_t *doc = NULL;
	char *text = NULL;
	int redact = 0, c, rc;

	optind = 0;
	while ((c = getopt_long(argc, argv, "ro:", longopts, NULL)) != -1) {
		if (c == 'r')
			redact = 1;
		else if (c == 'o')
			output = optarg;
		else
			return fail_usage("case", "invalid option");
	}
	if (optind != argc)
		return fail_usage("case", "export: unexpected '%s'",
				  argv[optind]);
	rc = case_to_json(s->c, redact, &doc);
	if (rc < 0)
		return fail_hc(rc);
	text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	if (!text)
		return fail_usage("case", "out of memory");
	if (output) {
		size_t n = strlen(text);
		char *t = realloc(text, n + 2);

		if (t) {
			text = t;
			memcpy(text + n, "\n", 2);
			rc = hc_atomic_write(AT_FDCWD, output, text, n + 1,
					     0600);
		}
	} else {
		printf("%s\n", text);
	}
	free(text);
	return rc < 0 ? fail_hc(rc) : EXIT_OK;
}

/* ----------------------------------------------------------------- edit */

/* Run the user's editor on path; 0 when it exits 0. */
static int run_editor(const char *path)
{
	const char *ed = getenv("VISUAL");
	int status;
	pid_t pid;

	if (!ed || !*ed)
		ed = getenv("EDITOR");
	if (!ed || !*ed)
		ed = "vi";
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return hc_error_set(HC_ESYS, "cannot start the editor");
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", "exec $0 \"$1\"", ed, path,
		      (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return hc_error_set(HC_ESYS, "cannot wait for the "
						     "editor");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return hc_error_set(HC_EINVAL, "the editor '%s' failed", ed);
	return 0;
}

static int edit(struct session *s, const char *store, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"from", required_argument, NULL, 'f'},
		{NULL, 0, NULL, 0},
	};
	const char *from = NULL, *tmpdir = getenv("TMPDIR");
	char path[4096], *before = NULL, *after = NULL;
	size_t blen = 0, alen = 0;
	int c, fd, rc, keep = 1;

	optind = 0;
	while ((c = getopt_long(argc, argv, "f:", longopts, NULL)) != -1) {
		if (c != 'f')
			return fail_usage("case", "invalid option");
		from = optarg;
	}
	if (optind != argc)
		return fail_usage("case", "edit: unexpected '%s'",
				  argv[optind]);
	rc = from ? hc_read_file(AT_FDCWD, from, 16u << 20, &before, &blen)
		  : case_edit_text(s->c, store, &before);
	if (rc < 0)
		return fail_hc(rc);
	if (!from)
		blen = strlen(before);
	snprintf(path, sizeof(path), "%s/hozen-case-XXXXXX.txt",
		 tmpdir && *tmpdir ? tmpdir : "/tmp");
	fd = mkstemps(path, 4);
	if (fd < 0) {
		rc = hc_error_set(HC_ESYS, "cannot create '%s'", path);
		free(before);
		return fail_hc(rc);
	}
	rc = hc_write_all(fd, before, blen);
	close(fd);
	if (rc == 0)
		rc = run_editor(path);
	if (rc == 0)
		rc = hc_read_file(AT_FDCWD, path, 16u << 20, &after, &alen);
	if (rc == 0 && alen == blen && !memcmp(before, after, alen) && !from) {
		printf("nothing changed\n");
		keep = 0;
	} else if (rc == 0) {
		rc = apply(s, after, alen);
		keep = rc < 0;
	}
	if (!keep)
		unlink(path);
	free(before);
	free(after);
	if (rc < 0) {
		fprintf(stderr,
			"hozen: %s\n"
			"hozen: nothing was changed; your text is kept in %s\n"
			"hozen: fix it and run 'hozen case %s edit --from "
			"%s'\n",
			hc_error_message(), path, store, path);
		return hc_error_exit_code(rc);
	}
	return EXIT_OK;
}

/* ------------------------------------------------------------ dispatch */

int cmd_case(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'},
		{"fields", no_argument, NULL, 'F'},
		{"markdown", no_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct session s;
	const char *store, *verb;
	int json = 0, fields = 0, markdown = 0, c, rc, ex;

	while ((c = getopt_long(argc, argv, "+jFmh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 'F':
			fields = 1;
			break;
		case 'm':
			markdown = 1;
			break;
		case 'h':
			return print_help(case_help);
		default:
			return fail_usage("case", "invalid option");
		}
	}
	if (fields)
		return optind == argc ? show_fields(markdown)
				      : fail_usage("case", "--fields takes no "
							   "STORE");
	if (optind >= argc)
		return fail_usage("case", "expected a STORE");
	store = argv[optind++];
	verb = optind < argc ? argv[optind] : NULL;
	if (verb && (!strcmp(verb, "--json") || !strcmp(verb, "-j"))) {
		json = 1;
		verb = ++optind < argc ? argv[optind] : NULL;
	}
	if (verb && (!strcmp(verb, "--help") || !strcmp(verb, "-h")))
		return print_help(case_help);
	if (verb && strcmp(verb, "set") && strcmp(verb, "unset") &&
	    strcmp(verb, "edit") && strcmp(verb, "import") &&
	    strcmp(verb, "export") && strcmp(verb, "check"))
		return fail_usage("case", "unknown verb '%s'", verb);
	rc = session_open(&s, store);
	if (rc < 0)
		return fail_hc(rc);
	argc -= optind;
	argv += optind;
	if (!verb)
		ex = (rc = show(&s, store, json)) < 0 ? fail_hc(rc) : EXIT_OK;
	else if (!strcmp(verb, "set"))
		ex = set(&s, argc, argv);
	else if (!strcmp(verb, "unset"))
		ex = unset(&s, argc, argv);
	else if (!strcmp(verb, "edit"))
		ex = edit(&s, store, argc, argv);
	else if (!strcmp(verb, "import"))
		ex = import(&s, argc, argv);
	else if (!strcmp(verb, "export"))
		ex = export(&s, argc, argv);
	else
		ex = check(&s,
			   json || (argc > 1 && !strcmp(argv[1], "--json")));
	session_close(&s);
	return ex;
}

int cmd_release(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"revoked-by", required_argument, NULL, 'r'},
		{"reason", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct case_commit_report rep;
	const char *by = NULL, *reason = NULL;
	hc_store *s = NULL;
	hc_actor self;
	int c, rc;

	while ((c = getopt_long(argc, argv, "r:m:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			by = optarg;
			break;
		case 'm':
			reason = optarg;
			break;
		case 'h':
			return print_help(release_help);
		default:
			return fail_usage("release", "invalid option");
		}
	}
	if (optind + 1 != argc)
		return fail_usage("release", "expected one STORE argument");
	hc_actor_self(&self);
	rc = hc_store_open(&s, argv[optind]);
	if (rc == 0)
		rc = case_release(hc_store_fd(s), by, reason, time(NULL), &self,
				  &rep);
	hc_store_free(s);
	if (rc < 0)
		return fail_hc(rc);
	printf("released the preservation order%s%s; recorded as seq %" PRIu64
	       "\n",
	       by ? ", revoked by " : "", by ? by : "", rep.seq);
	return EXIT_OK;
}
