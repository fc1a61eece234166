/*
 * cmd_verify.c - hozen verify (a store, or a proof offline) and prove.
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "case.h"
#include "fs.h"
#include "hozen.h"

static const char verify_help[] =
	"usage: hozen verify [OPTIONS] STORE\n"
	"       hozen verify --proof FILE --key KEY [--checkpoint FILE]\n"
	"\n"
	"Verify a store: the marker, the genesis record and key (and the\n"
	"key files), every record's syntax, seq and link to its\n"
	"predecessor, the segments' names, every checkpoint's signature\n"
	"and Merkle root, that the latest checkpoint seals the whole log,\n"
	"the recovery copies of torn lines, that no one else can change\n"
	"the store (modes), that case.json is the case the chain's case\n"
	"records give and the case documents are those they name, and\n"
	"that every file version the chain names is in git with its\n"
	"SHA-256, every commit covers the records it claims, and the live\n"
	"tree holds each file's last version.\n"
	"The verdict is VALID, UNSEALED (every record verifies but the\n"
	"last ones are not covered by a signed checkpoint) or INVALID, with\n"
	"every problem found: the seq or checkpoint, where and why.\n"
	"\n"
	"A store alone cannot show that its tail was cut off together\n"
	"with the checkpoints after it: keep a checkpoint outside the store\n"
	"('hozen checkpoint --out FILE') and give it with --trusted.\n"
	"\n"
	"With --proof, verify an inclusion or consistency proof made by\n"
	"'hozen prove' offline, against the verifier key KEY alone.\n"
	"\n"
	"  -k, --key FILE          trusted verifier key (signed-note vkey or\n"
	"                          PEM); default: the store's own key\n"
	"  -t, --trusted FILE      a checkpoint kept outside the store: the\n"
	"                          log must extend it (no rollback)\n"
	"  -u, --allow-unsealed    an unsealed tail is not a failure\n"
	"  -j, --json              print the report as JSON\n"
	"  -P, --proof FILE        verify this proof document\n"
	"  -c, --checkpoint FILE   with --proof: the proof must be against\n"
	"                          this (trusted) checkpoint\n"
	"  -h, --help              show this help\n"
	"\n"
	"Exit status: 0 valid, 1 invalid or unsealed, 2 error.\n";

static const char *verdict_name(enum hc_verdict v)
{
	switch (v) {
	case HC_VALID:
		return "valid";
	case HC_UNSEALED:
		return "unsealed";
	default:
		return "invalid";
	}
}

/* A JSON string of s, made valid UTF-8 (a planted name may not be). */
static json_t *jtext(const char *s)
{
	char *safe = term_safe(s, strlen(s), 0);
	json_t *j = safe ? json_string(safe) : NULL;

	free(safe);
	return j ? j : json_string("?");
}

static json_t *finding_json(const struct hc_finding *f)
{
	return json_pack("{s:o,s:o,s:o,s:o}", "seq",
			 f->seq >= 0 ? json_integer(f->seq) : json_null(),
			 "checkpoint",
			 f->checkpoint ? json_integer((json_int_t)f->checkpoint)
				       : json_null(),
			 "where", jtext(f->where), "reason", jtext(f->reason));
}

static void print_json(const char *path, const struct hc_verify_report *r,
		       const struct case_verify_report *cr,
		       const struct fs_verify_report *fr, hc_findings *fs)
{
	char root[HC_HEX_LEN + 1];
	json_t *j, *failure = json_null(), *kase = json_null(), *list;
	size_t i;

	hc_hex(r->root, HC_HASH_LEN, root);
	if (r->verdict == HC_INVALID && hc_findings_kept(fs) > 0)
		failure = finding_json(hc_findings_get(fs, 0));
	list = json_array();
	for (i = 0; list && i < hc_findings_kept(fs); i++)
		json_array_append_new(list,
				      finding_json(hc_findings_get(fs, i)));
	j = json_pack("{s:s,s:o,s:I,s:I,s:I,s:s,s:b,s:o}", "verdict",
		      verdict_name(r->verdict), "store", jtext(path), "records",
		      (json_int_t)r->records, "sealed", (json_int_t)r->sealed,
		      "checkpoints", (json_int_t)r->checkpoints, "root", root,
		      "torn", r->torn, "failure", failure);
	if (cr)
		kase = json_pack("{s:b,s:I,s:o,s:o}", "ok", cr->ok, "records",
				 (json_int_t)cr->records, "field",
				 cr->ok ? json_null() : jtext(cr->field),
				 "reason",
				 cr->ok ? json_null() : jtext(cr->reason));
	if (j)
		json_object_set_new(j, "case", kase);
	if (j)
		json_object_set_new(
			j, "files",
			fr ? json_pack("{s:b,s:I,s:I,s:I}", "ok", fr->ok,
				       "versions", (json_int_t)fr->versions,
				       "commits", (json_int_t)fr->commits,
				       "live_files", (json_int_t)fr->files)
			   : json_null());
	if (j)
		json_object_set_new(
			j, "problems",
			json_integer((json_int_t)hc_findings_count(fs)));
	if (j)
		json_object_set_new(j, "findings", list);
	else
		json_decref(list);
	if (j)
		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	putchar('\n');
	json_decref(j);
}

/* Print s safely for a terminal. */
static void put_safe(const char *s)
{
	char *safe = term_safe(s, strlen(s), 1);

	fputs(safe ? safe : "?", stdout);
	free(safe);
}

static void print_text(const char *path, const struct hc_verify_report *r,
		       const struct case_verify_report *cr,
		       const struct fs_verify_report *fr, hc_findings *fs)
{
	char root[HC_HEX_LEN + 1];
	size_t i, n = hc_findings_count(fs);

	hc_hex(r->root, HC_HASH_LEN, root);
	printf("store:        ");
	put_safe(path);
	putchar('\n');
	if (!r->chain_intact)
		printf("records:      %" PRIu64 " read before the chain "
		       "broke\n",
		       r->records);
	else
		printf("records:      %" PRIu64 "\n", r->records);
	printf("checkpoints:  %zu verified\n", r->checkpoints);
	printf("sealed:       %" PRIu64 " of %" PRIu64 " records\n", r->sealed,
	       r->records);
	if (r->chain_intact)
		printf("root:         %s\n", root);
	if (cr && cr->ok && cr->records == 0)
		printf("case:         no case records\n");
	else if (cr && cr->ok)
		printf("case:         case.json matches the chain (%" PRIu64
		       " case records)\n",
		       cr->records);
	if (fr && fr->ok)
		printf("files:        %" PRIu64 " versions in git, %" PRIu64
		       " commits, %" PRIu64 " live files match the chain\n",
		       fr->versions, fr->commits, fr->files);
	switch (r->verdict) {
	case HC_VALID:
		printf("verdict:      VALID\n");
		break;
	case HC_UNSEALED:
		printf("verdict:      UNSEALED: records %" PRIu64 "..%" PRIu64
		       " are not covered by a signed checkpoint; run "
		       "'hozen checkpoint' (or pass --allow-unsealed)\n",
		       r->sealed, r->records - 1);
		break;
	case HC_INVALID:
		printf("verdict:      INVALID: %zu problem%s\n", n,
		       n == 1 ? "" : "s");
		for (i = 0; i < hc_findings_kept(fs); i++) {
			const struct hc_finding *f = hc_findings_get(fs, i);

			char label[32], at[64] = "";
			int n1 = 0;

			snprintf(label, sizeof(label), "problem %zu:", i + 1);
			if (f->seq >= 0)
				n1 = snprintf(at, sizeof(at), "seq %" PRId64,
					      f->seq);
			if (f->checkpoint && n1 >= 0 && (size_t)n1 < sizeof(at))
				snprintf(at + n1, sizeof(at) - (size_t)n1,
					 "%scheckpoint %" PRIu64,
					 f->seq >= 0 ? ", " : "",
					 f->checkpoint);
			if (at[0])
				printf("%-14s%s", label, at);
			else
				printf("%s", label);
			printf("\n  where:      ");
			put_safe(f->where);
			printf("\n  reason:     ");
			put_safe(f->reason);
			putchar('\n');
		}
		if (hc_findings_kept(fs) < n)
			printf("(%zu more problems not shown)\n",
			       n - hc_findings_kept(fs));
		break;
	}
}

static int verify_proof(const char *proof_path, const char *key_path,
			const char *ckpt_path)
{
	char *doc = NULL, *ck = NULL, *summary = NULL;
	size_t len = 0, cklen = 0;
	hc_key *key = NULL;
	int rc;

	if (!key_path) {
		fprintf(stderr, "hozen: --proof needs --key: a proof is "
				"verified against a key you trust, not one it "
				"brings\n");
		return EXIT_ERROR;
	}
	rc = hc_key_load_public(&key, key_path, NULL);
	if (rc == 0) {
		rc = hc_read_file(AT_FDCWD, proof_path, 4u << 20, &doc, &len);
		if (rc < 0)
			rc = hc_error_prefix(rc, "proof");
	}
	if (rc == 0 && ckpt_path)
		rc = hc_read_file(AT_FDCWD, ckpt_path, 1u << 16, &ck, &cklen);
	if (rc < 0) {
		rc = fail_hc(rc == HC_EVERIFY ? HC_EFORMAT : rc);
		goto out;
	}
	rc = hc_proof_verify(doc, len, key, ck, cklen, &summary);
	if (rc == HC_EVERIFY || rc == HC_EFORMAT) {
		printf("proof:        %s\nverdict:      INVALID\n  reason:     "
		       "%s\n",
		       proof_path, hc_error_message());
		rc = EXIT_INVALID;
	} else if (rc < 0) {
		rc = fail_hc(rc);
	} else {
		printf("proof:        %s\nshows:        %s\nverdict:      "
		       "VALID\n",
		       proof_path, summary);
		rc = EXIT_OK;
	}
out:
	free(summary);
	free(doc);
	free(ck);
	hc_key_free(key);
	return rc;
}

/* Read a file the user named for an option; exit 2 when it cannot be. */
static int read_named(const char *opt, const char *path, size_t max, char **out,
		      size_t *len)
{
	int rc = hc_read_file(AT_FDCWD, path, max, out, len);

	if (rc < 0)
		return hc_error_prefix(rc == HC_EVERIFY ? HC_EFORMAT : rc, "%s",
				       opt);
	return 0;
}

int cmd_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"key", required_argument, NULL, 'k'},
		{"trusted", required_argument, NULL, 't'},
		{"allow-unsealed", no_argument, NULL, 'u'},
		{"json", no_argument, NULL, 'j'},
		{"proof", required_argument, NULL, 'P'},
		{"checkpoint", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct hc_verify_options opts = {0};
	struct hc_verify_report rep;
	struct case_verify_report crep;
	struct fs_verify_report frep;
	const char *key_path = NULL, *proof = NULL, *ckpt = NULL;
	const char *trusted = NULL;
	const struct hc_finding *first;
	case_replay *replay = NULL;
	hc_findings *findings = NULL;
	hc_store *s = NULL;
	hc_key *key = NULL;
	char *trusted_text = NULL;
	size_t trusted_len = 0;
	int json = 0, have_case = 0, have_files = 0, c, rc, ex;

	while ((c = getopt_long(argc, argv, "k:t:ujP:c:h", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'k':
			key_path = optarg;
			break;
		case 't':
			trusted = optarg;
			break;
		case 'u':
			opts.allow_unsealed = 1;
			break;
		case 'j':
			json = 1;
			break;
		case 'P':
			proof = optarg;
			break;
		case 'c':
			ckpt = optarg;
			break;
		case 'h':
			return print_help(verify_help);
		default:
			return fail_option("verify", argv);
		}
	}
	if (proof) {
		if (optind != argc)
			return fail_usage("verify", "--proof takes no STORE");
		if (trusted)
			return fail_usage("verify", "--trusted goes with a "
						    "STORE, not --proof "
						    "(--checkpoint pins a "
						    "proof)");
		return verify_proof(proof, key_path, ckpt);
	}
	if (ckpt)
		return fail_usage("verify", "--checkpoint goes with --proof");
	if (optind + 1 != argc)
		return fail_usage("verify", "expected one STORE argument");
	rc = hc_findings_new(&findings);
	if (rc == 0 && key_path) {
		rc = hc_key_load_public(&key, key_path, NULL);
		if (rc == HC_EVERIFY)
			rc = HC_EFORMAT;
		opts.trusted_key = key;
	}
	if (rc == 0 && trusted)
		rc = read_named("--trusted", trusted, 1u << 16, &trusted_text,
				&trusted_len);
	opts.trusted_checkpoint = trusted_text;
	opts.trusted_checkpoint_len = trusted_len;
	opts.findings = findings;
	if (rc == 0)
		rc = case_replay_new(&replay);
	if (rc == 0)
		rc = hc_store_open_verify(&s, argv[optind]);
	opts.on_record = case_replay_on_record;
	opts.ctx = replay;
	if (rc == 0)
		rc = hc_verify_store(s, &opts, &rep);
	/* Nobody else may change the store (FORMAT.md section 1). */
	if (rc == 0)
		rc = hc_store_check_modes(s, findings);
	/* The case and the files need the whole chain to mean anything. */
	if (rc == 0 && rep.chain_intact && !rep.on_record_failed) {
		rc = case_replay_verify(replay, hc_store_fd(s), findings,
					&crep);
		have_case = rc == 0;
	}
	if (rc == 0 && rep.chain_intact && !hc_store_marker_problem(s)) {
		/* The files: versions in git, commits, the live tree. */
		rc = fs_verify(argv[optind], findings, &frep);
		have_files = rc == 0;
	}
	if (rc < 0) {
		ex = fail_hc(rc);
		goto out;
	}
	/* Every problem makes it INVALID; the first is the failure. */
	if (hc_findings_count(findings) > 0) {
		rep.verdict = HC_INVALID;
		first = hc_findings_get(findings, 0);
		if (first) {
			rep.fail_seq = first->seq;
			rep.fail_checkpoint = first->checkpoint;
			snprintf(rep.where, sizeof(rep.where), "%s",
				 first->where);
			snprintf(rep.reason, sizeof(rep.reason), "%s",
				 first->reason);
		}
	}
	if (json)
		print_json(argv[optind], &rep, have_case ? &crep : NULL,
			   have_files ? &frep : NULL, findings);
	else
		print_text(argv[optind], &rep, have_case ? &crep : NULL,
			   have_files ? &frep : NULL, findings);
	ex = rep.verdict == HC_VALID ? EXIT_OK : EXIT_INVALID;
out:
	case_replay_free(replay);
	hc_store_free(s);
	hc_key_free(key);
	hc_findings_free(findings);
	free(trusted_text);
	return ex;
}

static const char prove_help[] =
	"usage: hozen prove STORE --seq N [-o FILE]\n"
	"       hozen prove STORE --consistency OLD[:NEW] [-o FILE]\n"
	"\n"
	"Write a proof document (JSON, see docs/FORMAT.md) that anyone can\n"
	"check offline with 'hozen verify --proof FILE --key KEY':\n"
	"\n"
	"  -s, --seq N              record N is in the log, against the\n"
	"                           latest checkpoint (the record itself is\n"
	"                           disclosed; no other record is)\n"
	"  -C, --consistency OLD[:NEW]\n"
	"                           the checkpoint of size NEW (default: the\n"
	"                           latest) only appended to that of size OLD\n"
	"  -o, --output FILE        write to FILE instead of stdout\n"
	"  -h, --help               show this help\n";

int cmd_prove(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"seq", required_argument, NULL, 's'},
		{"consistency", required_argument, NULL, 'C'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *seq_arg = NULL, *cons = NULL, *output = NULL;
	uint64_t seq = 0, old_size = 0, new_size = 0;
	hc_store *s = NULL;
	char *doc = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "s:C:o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			seq_arg = optarg;
			break;
		case 'C':
			cons = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case 'h':
			return print_help(prove_help);
		default:
			return fail_option("prove", argv);
		}
	}
	if (optind + 1 != argc)
		return fail_usage("prove", "expected one STORE argument");
	if (!seq_arg == !cons)
		return fail_usage("prove", "give exactly one of --seq and "
					   "--consistency");
	if (seq_arg && parse_u64(seq_arg, &seq) < 0)
		return fail_usage("prove", "--seq: '%s' is not a seq number",
				  seq_arg);
	if (cons) {
		char *colon = strchr(cons, ':');
		char old_part[32];

		snprintf(old_part, sizeof(old_part), "%.*s",
			 colon ? (int)(colon - cons) : (int)strlen(cons), cons);
		if (parse_u64(old_part, &old_size) < 0 || old_size == 0 ||
		    (colon && parse_u64(colon + 1, &new_size) < 0))
			return fail_usage("prove",
					  "--consistency: expected OLD or "
					  "OLD:NEW checkpoint sizes, got '%s'",
					  cons);
	}
	rc = hc_store_open(&s, argv[optind]);
	if (rc == 0)
		rc = seq_arg ? hc_prove_inclusion(s, seq, &doc)
			     : hc_prove_consistency(s, old_size, new_size,
						    &doc);
	hc_store_free(s);
	if (rc < 0)
		return fail_hc(rc);
	if (output) {
		size_t n = strlen(doc);

		doc[n] = '\n';
		rc = hc_atomic_write(AT_FDCWD, output, doc, n + 1, 0600);
		doc[n] = '\0';
	} else {
		printf("%s\n", doc);
	}
	free(doc);
	return rc < 0 ? fail_hc(rc) : EXIT_OK;
}
