/*
 * cmd_store.c - hozen init, note, checkpoint and recover.
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "hozen.h"

static void free_secret(char *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

static const char init_help[] =
	"usage: hozen init [--name NAME] [--passphrase-file FILE] STORE\n"
	"\n"
	"Create a new store at STORE (a new or empty directory, made 0700):\n"
	"the format marker, an Ed25519 signing key (keys/), the chain with\n"
	"its genesis record and a first signed checkpoint.  Nothing in it\n"
	"can be read or changed by other users.\n"
	"\n"
	"  -n, --name NAME             the store's name (default: STORE's\n"
	"                              last path component)\n"
	"  -p, --passphrase-file FILE  encrypt the private key with the\n"
	"                              passphrase on FILE's first line\n"
	"  -h, --help                  show this help\n";

int cmd_init(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"name", required_argument, NULL, 'n'},
		{"passphrase-file", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct hc_init_options opts = {0};
	const char *pass_file = NULL;
	char *pass = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "n:p:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (!*optarg)
				return fail_usage("init", "--name is empty");
			opts.name = optarg;
			break;
		case 'p':
			pass_file = optarg;
			break;
		case 'h':
			return print_help(init_help);
		default:
			return fail_option("init", argv);
		}
	}
	if (optind + 1 != argc)
		return fail_usage("init", "expected one STORE argument");
	rc = read_passphrase(pass_file, &pass);
	if (rc < 0)
		return fail_hc(rc);
	opts.passphrase = pass;
	rc = hc_store_init(argv[optind], &opts);
	free_secret(pass);
	if (rc < 0)
		return fail_hc(rc);
	printf("initialized store '%s'\n", argv[optind]);
	return EXIT_OK;
}

static const char note_help[] =
	"usage: hozen note STORE TEXT...\n"
	"\n"
	"Record a responder's note (what was done, seen or decided) in the\n"
	"chain, attributed to the calling user and process.  The words of\n"
	"TEXT are joined with spaces; the text must be valid UTF-8 and not\n"
	"empty or only whitespace.  The record is durable when the command\n"
	"returns; it is sealed by the next 'hozen checkpoint'.\n"
	"\n"
	"  -h, --help   show this help\n";

int cmd_note(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct hc_appended app;
	hc_store *s = NULL;
	hc_log *log = NULL;
	json_t *fields = NULL;
	char *text = NULL;
	size_t len = 0, pos = 0;
	hc_actor self;
	int c, i, rc;

	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		if (c == 'h')
			return print_help(note_help);
		return fail_option("note", argv);
	}
	if (argc - optind < 2)
		return fail_usage("note", "expected STORE and TEXT");
	for (i = optind + 1; i < argc; i++)
		len += strlen(argv[i]) + 1;
	text = malloc(len);
	if (!text)
		return fail_usage("note", "out of memory");
	for (i = optind + 1; i < argc; i++) {
		size_t n = strlen(argv[i]);

		memcpy(text + pos, argv[i], n);
		pos += n;
		text[pos++] = i + 1 < argc ? ' ' : '\0';
	}
	if (text[strspn(text, " \t\n\v\f\r")] == '\0') {
		free(text);
		return fail_usage("note", "the note is empty: give the text "
					  "to record");
	}
	rc = hc_store_open(&s, argv[optind]);
	if (rc == 0)
		rc = hc_log_open(&log, hc_store_fd(s), NULL, NULL);
	if (rc < 0)
		goto out;
	fields = json_pack("{s:s}", "text", text);
	if (!fields) {
		rc = hc_error_set(HC_EINVAL, "the note is not valid UTF-8");
		goto out;
	}
	hc_actor_self(&self);
	rc = hc_log_append(log, "note", &self, fields, &app);
	if (rc == 0)
		rc = hc_log_sync(log, app.seq);
	if (rc == 0) {
		rc = hc_log_close(log);
		log = NULL;
	}
	if (rc == 0)
		printf("recorded note as seq %" PRIu64 "\n", app.seq);
out:
	hc_log_close(log);
	json_decref(fields);
	hc_store_free(s);
	free(text);
	return rc < 0 ? fail_hc(rc) : EXIT_OK;
}

static const char checkpoint_help[] =
	"usage: hozen checkpoint [--passphrase-file FILE] [--out FILE] STORE\n"
	"       hozen checkpoint --latest --out FILE STORE\n"
	"\n"
	"Append a checkpoint record, then sign the Merkle root of the whole\n"
	"chain (which ends with that record) with the store's key and write\n"
	"it to checkpoints/ as a C2SP tlog-checkpoint signed note.\n"
	"\n"
	"A store alone cannot show that its tail was cut off together with\n"
	"the checkpoints after it: with --out, also write the checkpoint to\n"
	"FILE, to hand to someone who keeps it outside the store; 'hozen\n"
	"verify --trusted FILE' then shows the log still extends it.\n"
	"\n"
	"  -p, --passphrase-file FILE  passphrase of an encrypted key\n"
	"  -o, --out FILE              also write the checkpoint (the signed\n"
	"                              note) to FILE, atomically, mode 0600\n"
	"  -l, --latest                with --out: write the store's latest\n"
	"                              checkpoint, taking no new one (needs\n"
	"                              no key; works while it is mounted)\n"
	"  -h, --help                  show this help\n";

static const char recover_help[] =
	"usage: hozen recover [--passphrase-file FILE] STORE\n"
	"\n"
	"After a crash: if the log ends in a torn line (an append the crash\n"
	"interrupted), copy its bytes to chain/torn/, cut them from the\n"
	"segment and record what was cut (offset, length, SHA-256); rewrite\n"
	"any checkpoint the chain announces that checkpoints/ lacks; name\n"
	"the records no checkpoint covered in an 'adopt' record; then\n"
	"take a new checkpoint.  A store whose chain is broken is refused:\n"
	"recovery never hides tampering.\n"
	"\n"
	"  -p, --passphrase-file FILE  passphrase of an encrypted key\n"
	"  -h, --help                  show this help\n";

/* Shared by checkpoint and recover: the store and its signing key. */
static int load_signing(const char *path, const char *pass_file,
			hc_store **s_out, hc_key **key_out)
{
	char *pass = NULL;
	int rc;

	rc = read_passphrase(pass_file, &pass);
	if (rc == 0)
		rc = hc_store_open(s_out, path);
	if (rc == 0) {
		rc = hc_store_private_key(*s_out, pass, key_out);
		if (rc < 0) {
			hc_store_free(*s_out);
			*s_out = NULL;
		}
	}
	free_secret(pass);
	return rc;
}

/* The text of the checkpoint of size in the store, verified with key. */
static int checkpoint_text(const hc_store *s, uint64_t size, const hc_key *key,
			   hc_checkpoint **out)
{
	hc_key *pub = NULL;
	uint64_t *sizes = NULL;
	size_t n = 0;
	int rc = 0;

	if (!key) {
		rc = hc_store_public_key(s, &pub);
		if (rc == 0)
			rc = hc_store_checkpoints(s, &sizes, &n);
		if (rc == 0 && n == 0)
			rc = hc_error_set(HC_ENOENT,
					  "the store has no checkpoint; run "
					  "'hozen checkpoint' first");
		if (rc == 0)
			size = sizes[n - 1];
		key = pub;
	}
	if (rc == 0)
		rc = hc_store_read_checkpoint(s, size, key, out);
	free(sizes);
	hc_key_free(pub);
	return rc;
}

int cmd_checkpoint(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"passphrase-file", required_argument, NULL, 'p'},
		{"out", required_argument, NULL, 'o'},
		{"latest", no_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct hc_checkpoint_result res;
	const char *pass_file = NULL, *out_path = NULL, *origin;
	char hex[HC_HEX_LEN + 1];
	hc_checkpoint *ck = NULL;
	hc_store *s = NULL;
	hc_key *key = NULL;
	hc_log *log = NULL;
	hc_actor self;
	int latest = 0, c, rc;

	while ((c = getopt_long(argc, argv, "p:o:lh", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			pass_file = optarg;
			break;
		case 'o':
			out_path = optarg;
			break;
		case 'l':
			latest = 1;
			break;
		case 'h':
			return print_help(checkpoint_help);
		default:
			return fail_option("checkpoint", argv);
		}
	}
	if (optind + 1 != argc)
		return fail_usage("checkpoint", "expected one STORE argument");
	if (latest && !out_path)
		return fail_usage("checkpoint",
				  "--latest goes with --out FILE");
	if (latest && pass_file)
		return fail_usage("checkpoint", "--latest takes no new "
						"checkpoint: it needs no "
						"--passphrase-file");
	if (latest) {
		rc = hc_store_open(&s, argv[optind]);
		if (rc == 0)
			rc = checkpoint_text(s, 0, NULL, &ck);
		goto write_out;
	}
	rc = load_signing(argv[optind], pass_file, &s, &key);
	if (rc < 0)
		return fail_hc(rc);
	hc_actor_self(&self);
	rc = hc_store_origin(s, &origin);
	if (rc == 0)
		rc = hc_log_open(&log, hc_store_fd(s), NULL, NULL);
	if (rc == 0)
		rc = hc_store_checkpoint(log, key, origin, &self, &res);
	if (rc == 0) {
		rc = hc_log_close(log);
		log = NULL;
	}
	hc_log_close(log);
	if (rc == 0 && out_path)
		rc = checkpoint_text(s, res.size, key, &ck);
write_out:
	if (rc == 0 && out_path) {
		rc = hc_atomic_write(AT_FDCWD, out_path, ck->text,
				     strlen(ck->text), 0600);
		if (rc < 0)
			rc = hc_error_prefix(rc, "--out");
	}
	hc_key_free(key);
	hc_store_free(s);
	if (rc < 0) {
		hc_checkpoint_free(ck);
		return fail_hc(rc);
	}
	if (latest) {
		hc_hex(ck->root, HC_HASH_LEN, hex);
		printf("latest checkpoint of %" PRIu64 " records, root %s, "
		       "written to %s\n",
		       ck->size, hex, out_path);
	} else {
		hc_hex(res.root, HC_HASH_LEN, hex);
		printf("checkpoint of %" PRIu64 " records, root %s, written "
		       "to %s%s%s\n",
		       res.size, hex, res.path, out_path ? " and " : "",
		       out_path ? out_path : "");
	}
	hc_checkpoint_free(ck);
	return EXIT_OK;
}

int cmd_recover(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"passphrase-file", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct hc_recover_report rep;
	const char *pass_file = NULL;
	hc_store *s = NULL;
	hc_key *key = NULL;
	hc_actor self;
	int c, rc;

	while ((c = getopt_long(argc, argv, "p:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			pass_file = optarg;
			break;
		case 'h':
			return print_help(recover_help);
		default:
			return fail_option("recover", argv);
		}
	}
	if (optind + 1 != argc)
		return fail_usage("recover", "expected one STORE argument");
	rc = load_signing(argv[optind], pass_file, &s, &key);
	if (rc < 0)
		return fail_hc(rc);
	hc_actor_self(&self);
	rc = hc_store_recover(s, key, &self, &rep);
	hc_key_free(key);
	hc_store_free(s);
	if (rc < 0)
		return fail_hc(rc);
	if (rep.torn)
		printf("preserved a torn last line of %" PRIu64
		       " bytes in %s and recorded it\n",
		       rep.torn_bytes, rep.torn_saved);
	else
		printf("the log ended cleanly\n");
	if (rep.rewritten)
		printf("rewrote %zu missing checkpoint(s)\n", rep.rewritten);
	if (rep.adopted)
		printf("sealed records %" PRIu64 "-%" PRIu64
		       ", which no checkpoint covered (written while no daemon "
		       "ran, or before a crash), and recorded that\n",
		       rep.adopted_first, rep.adopted_last);
	printf("checkpoint of %" PRIu64 " records written to %s\n",
	       rep.checkpoint.size, rep.checkpoint.path);
	return EXIT_OK;
}
