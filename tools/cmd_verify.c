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
	"Verify a store: the genesis record and key, every record's syntax,\n"
	"seq and link to its predecessor, every checkpoint's signature and\n"
	"Merkle root, that the latest checkpoint seals the whole log, and\n"
	"that case.json is the case the chain's case records give, and\n"
	"that every file version the chain names is in git with its\n"
	"SHA-256, every commit covers the records it claims, and the live\n"
	"tree holds each file's last version.\n"
	"The verdict is VALID, UNSEALED (every record verifies but the\n"
	"last ones are not covered by a signed checkpoint) or INVALID, with\n"
	"the first failing seq or checkpoint and why.\n"
	"\n"
	"With --proof, verify an inclusion or consistency proof made by\n"
	"'hozen prove' offline, against the verifier key KEY alone.\n"
	"\n"
	"  -k, --key FILE          trusted verifier key (signed-note vkey or\n"
	"                          PEM); default: the store's own key\n"
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

static void print_json(const char *path, const struct hc_verify_report *r,
		       const struct case_verify_report *cr,
		       const struct fs_verify_report *fr)
{
	char root[HC_HEX_LEN + 1];
	json_t *j, *failure = json_null(), *kase = json_null();

	hc_hex(r->root, HC_HASH_LEN, root);
	if (r->verdict == HC_INVALID)
		failure = json_pack(
			"{s:o,s:o,s:s,s:s}", "seq",
			r->fail_seq >= 0 ? json_integer(r->fail_seq)
					 : json_null(),
			"checkpoint",
			r->fail_checkpoint
				? json_integer((json_int_t)r->fail_checkpoint)
				: json_null(),
			"where", r->where, "reason", r->reason);
	j = json_pack("{s:s,s:s,s:I,s:I,s:I,s:s,s:b,s:o}", "verdict",
		      verdict_name(r->verdict), "store", path, "records",
		      (json_int_t)r->records, "sealed", (json_int_t)r->sealed,
		      "checkpoints", (json_int_t)r->checkpoints, "root", root,
		      "torn", r->torn, "failure", failure);
	if (cr)
		kase = json_pack("{s:b,s:I,s:s?,s:s?}", "ok", cr->ok, "records",
				 (json_int_t)cr->records, "field",
				 cr->ok ? NULL : cr->field, "reason",
				 cr->ok ? NULL : cr->reason);
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
		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	putchar('\n');
	json_decref(j);
}

static void print_text(const char *path, const struct hc_verify_report *r,
		       const struct case_verify_report *cr,
		       const struct fs_verify_report *fr)
{
	char root[HC_HEX_LEN + 1];

	hc_hex(r->root, HC_HASH_LEN, root);
	printf("store:        %s\n", path);
	if (r->verdict == HC_INVALID)
		printf("records:      %" PRIu64 " read before the failure\n",
		       r->records);
	else
		printf("records:      %" PRIu64 "\n", r->records);
	printf("checkpoints:  %zu verified\n", r->checkpoints);
	printf("sealed:       %" PRIu64 " of %" PRIu64 " records\n", r->sealed,
	       r->records);
	if (r->verdict != HC_INVALID)
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
		printf("verdict:      INVALID");
		if (r->fail_seq >= 0)
			printf(" at seq %" PRId64, r->fail_seq);
		if (r->fail_checkpoint)
			printf("%s checkpoint %" PRIu64,
			       r->fail_seq >= 0 ? "," : " at",
			       r->fail_checkpoint);
		printf("\n  where:      %s\n  reason:     %s\n", r->where,
		       r->reason);
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

int cmd_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"key", required_argument, NULL, 'k'},
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
	case_replay *replay = NULL;
	hc_store *s = NULL;
	hc_key *key = NULL;
	int json = 0, have_case = 0, have_files = 0, c, rc;

	while ((c = getopt_long(argc, argv, "k:ujP:c:h", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'k':
			key_path = optarg;
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
		return verify_proof(proof, key_path, ckpt);
	}
	if (ckpt)
		return fail_usage("verify", "--checkpoint goes with --proof");
	if (optind + 1 != argc)
		return fail_usage("verify", "expected one STORE argument");
	if (key_path) {
		rc = hc_key_load_public(&key, key_path, NULL);
		if (rc < 0)
			return fail_hc(rc == HC_EVERIFY ? HC_EFORMAT : rc);
		opts.trusted_key = key;
	}
	rc = case_replay_new(&replay);
	if (rc == 0)
		rc = hc_store_open(&s, argv[optind]);
	opts.on_record = case_replay_on_record;
	opts.ctx = replay;
	if (rc == 0)
		rc = hc_verify_store(s, &opts, &rep);
	if (rc == 0 && rep.verdict != HC_INVALID) {
		rc = case_replay_verify(replay, hc_store_fd(s), &crep);
		have_case = rc == 0;
	}
	if (have_case && !crep.ok) {
		rep.verdict = HC_INVALID;
		rep.fail_seq = -1;
		rep.fail_checkpoint = 0;
		snprintf(rep.where, sizeof(rep.where), "case.json");
		snprintf(rep.reason, sizeof(rep.reason), "%s", crep.reason);
	}
	if (rc == 0 && rep.verdict != HC_INVALID) {
		/* The files: versions in git, commits, the live tree. */
		rc = fs_verify(argv[optind], NULL, &frep);
		have_files = rc == 0;
	}
	if (have_files && !frep.ok) {
		rep.verdict = HC_INVALID;
		rep.fail_seq = frep.fail_seq;
		rep.fail_checkpoint = 0;
		snprintf(rep.where, sizeof(rep.where), "%s", frep.where);
		snprintf(rep.reason, sizeof(rep.reason), "%s", frep.reason);
	}
	case_replay_free(replay);
	hc_store_free(s);
	hc_key_free(key);
	if (rc < 0)
		return fail_hc(rc);
	if (json)
		print_json(argv[optind], &rep, have_case ? &crep : NULL,
			   have_files ? &frep : NULL);
	else
		print_text(argv[optind], &rep, have_case ? &crep : NULL,
			   have_files ? &frep : NULL);
	return rep.verdict == HC_VALID ? EXIT_OK : EXIT_INVALID;
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
		rc = hc_atomic_write(AT_FDCWD, output, doc, n + 1, 0644);
		doc[n] = '\0';
	} else {
		printf("%s\n", doc);
	}
	free(doc);
	return rc < 0 ? fail_hc(rc) : EXIT_OK;
}
