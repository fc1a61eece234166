#!/bin/bash
# case.sh HOZEN [SRCDIR] - the case and its preservation order from the
# command line: set, unset, edit (with a scripted $EDITOR, valid and
# invalid), import, export, check, the issuer's CMS-signed document,
# release (refused before the end, allowed after it or on revocation),
# every change in the chain, and 'hozen verify' catching a hand-edited
# case.json by field.  docs/CASE.md must list the field table as
# 'hozen case --fields --markdown' prints it.

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
tap_setup "$1"
SRCDIR=${2:-$(dirname "$0")}
case $SRCDIR in
/*) ;;
*) SRCDIR=$PWD/$SRCDIR ;;
esac
cd "$T" || exit 2
export TMPDIR=$T/tmp
mkdir "$TMPDIR"

# grep_out NAME PATTERN FILE: ok if FILE matches the extended regex.
grep_in()
{
	if grep -qE -- "$2" "$3"; then
		ok "$1"
	else
		not_ok "$1" "no /$2/ in $3:" "$(head -c 2000 "$3")"
	fi
}

records() # STORE TYPE: how many records of TYPE
{
	"$HOZEN" log --json --type "$2" "$1" | wc -l
}

"$HOZEN" init store >/dev/null || exit 2

# ------------------------------------------------------------------ set

expect_rc "set a Japanese text" 0 case store set applicant.name \
	株式会社 ほぜん
expect_rc "set furigana" 0 case store set applicant.name_kana \
	かぶしきがいしゃ ほぜん
expect_rc "set a date with +09:00" 0 case store set incident.occurred \
	2026-11-20T10:00:00+09:00
expect_rc "set a date in UTC" 0 case store set incident.noticed \
	2026-11-20T03:00:00Z
expect_rc "a date without a zone is JST" 0 case store set order.start \
	"2026-11-21 09:00"
run case store --json
check "the JST date is written with +09:00" \
	grep -q '"order.start": "2026-11-21T09:00:00+09:00"' "$T/out"
check "Japanese text round-trips exactly" \
	grep -q '"applicant.name": "株式会社 ほぜん"' "$T/out"

cp store/case.json before.json
n_before=$(records store case)
expect_rc "noticed before it happened is refused" 2 case store set \
	incident.noticed 2026-11-20T09:00+09:00
grep_in "the error names the field and why" \
	"incident.noticed.*before.*incident.occurred" "$T/err"
expect_rc "an invalid enum is refused" 2 case store set order.source abroad
grep_in "the error lists what is expected" \
	"'order.source': expected one of: domestic, foreign" "$T/err"
expect_rc "an invalid date is refused" 2 case store set order.end tomorrow
grep_in "the error says a date is expected" "'order.end': expected an ISO 8601" \
	"$T/err"
expect_rc "an unknown field is refused" 2 case store set order.colour red
check "refused changes wrote nothing to case.json" cmp -s before.json \
	store/case.json
check "refused changes wrote no record" \
	[ "$(records store case)" -eq "$n_before" ]

expect_rc "set a confidential field" 0 case store set order.known.person \
	山田 太郎
check "the chain holds no confidential plaintext" \
	bash -c '! grep -q 山田 store/chain/*.log'
salt=$(grep -A3 '"order.known.person"' store/case.json |
	sed -n 's/.*"salt": "\([0-9a-f]*\)".*/\1/p')
want=$(printf 'hozen-case-value/1\n%s\n%s\n%s' order.known.person "$salt" \
	'"山田 太郎"' | sha256sum | cut -d' ' -f1)
check "the value hash follows FORMAT.md (sha256sum alone)" \
	grep -q "\"new_sha256\":\"$want\"" store/chain/00000000000000000000.log
run case store
grep_in "hozen case marks confidential fields" \
	"order.known.person \[confidential\] +山田 太郎" "$T/out"
grep_in "hozen case shows a draft order" "^order: +DRAFT" "$T/out"
expect_rc "mark a field confidential" 0 case store set --confidential \
	applicant.address 東京都千代田区千代田1-1
run log --json --type case store
check "the record of a confidential field carries hashes" \
	grep -q '"field":"applicant.address","confidential":true,"old":null,"new_sha256":"[0-9a-f]\{64\}"' \
	"$T/out"
expect_rc "an enforced field cannot be confidential" 2 case store set \
	--confidential order.end 2030-01-01

# ------------------------------------------------------------- verify

"$HOZEN" checkpoint store >/dev/null
expect_rc "the store verifies with its case" 0 verify store
grep_in "verify reports the case" "^case: +case.json matches" "$T/out"
cp store/case.json good.json
sed -i 's/株式会社 ほぜん/株式会社 ほぜ/' store/case.json
expect_rc "a hand-edited case.json fails verify" 1 verify store
grep_in "verify names the field" "'applicant.name'" "$T/out"
expect_rc "verify --json too" 1 verify --json store
grep_in "the JSON report names the field" '"field": "applicant.name"' \
	"$T/out"
cp good.json store/case.json
sed -i 's/山田 太郎/山田 一郎/' store/case.json
expect_rc "a hand-edited confidential value fails verify" 1 verify store
grep_in "verify names the confidential field" "'order.known.person'" \
	"$T/out"
cp good.json store/case.json
expect_rc "restored, it verifies" 0 verify store

# --------------------------------------------------------------- edit

cat >ed-valid.sh <<'EOF'
#!/bin/sh
sed -i -e 's/^incident.reason:.*/incident.reason: 不審なログイン/' \
	-e 's/^incident.severity:.*/incident.severity: 3/' "$1"
EOF
cat >ed-invalid.sh <<'EOF'
#!/bin/sh
sed -i -e 's/^incident.reason:.*/incident.reason: 見失ってはいけない文章/' \
	-e 's/^incident.severity:.*/incident.severity: 9/' "$1"
EOF
cat >ed-fix.sh <<'EOF'
#!/bin/sh
sed -i -e 's/^incident.severity:.*/incident.severity: 4/' "$1"
EOF
chmod +x ed-*.sh
EDITOR=$T/ed-valid.sh expect_rc "edit with a valid change" 0 case store edit
run case store --json
check "the edit was applied" grep -q '"incident.reason": "不審なログイン"' \
	"$T/out"
cp store/case.json before.json
EDITOR=$T/ed-invalid.sh expect_rc "edit with an invalid value is refused" 2 \
	case store edit
grep_in "the error names the field and line" \
	"line [0-9]+: 'incident.severity': expected an integer" "$T/err"
kept=$(sed -n 's/.*your text is kept in \([^ ]*\)$/\1/p' "$T/err")
check "the error names where the text is kept" [ -n "$kept" ]
check "the kept text holds what was typed" \
	grep -q '^incident.reason: 見失ってはいけない文章' "$kept"
check "the refused edit changed nothing" cmp -s before.json store/case.json
EDITOR=$T/ed-fix.sh expect_rc "edit --from the kept text" 0 case store edit \
	--from "$kept"
run case store --json
check "the fixed edit keeps what was typed" \
	grep -q '"incident.reason": "見失ってはいけない文章"' "$T/out"
check "and the fix" grep -q '"incident.severity": 4' "$T/out"
EDITOR=true expect_rc "an unchanged edit is fine" 0 case store edit
grep_in "and records nothing" "nothing changed" "$T/out"

# ------------------------------------------------------ import/export

expect_rc "export" 0 case store export -o exp.json
check "export holds the confidential value" grep -q 山田 exp.json
expect_rc "export --redact" 0 case store export --redact
check "a redacted export leaves it out" bash -c "! grep -q 山田 '$T/out'"
grep_in "and lists it" '"redacted"' "$T/out"
"$HOZEN" init store2 >/dev/null
expect_rc "import into another store" 0 case store2 import exp.json
"$HOZEN" case store2 export -o exp2.json
check "the import reproduces the case" cmp -s exp.json exp2.json
printf '{"fields": {"incident.severity": 11}}\n' >bad.json
expect_rc "an invalid import is refused" 2 case store2 import bad.json
grep_in "naming the field" "incident.severity" "$T/err"
"$HOZEN" case store2 export -o exp3.json
check "and changes nothing" cmp -s exp.json exp3.json

# -------------------------------------------------------------- check

expect_rc "check lists what is missing" 1 case store check
grep_in "a missing form field" "form +申出人 住所|form +申出に関する連絡先" \
	"$T/out"
grep_in "a missing G8 item" "G8 +checklist 9" "$T/out"
check "a filled field is not listed" bash -c "! grep -q 'applicant.name ' '$T/out'"
expect_rc "check --json" 1 case store check --json
grep_in "check --json names fields" '"field": "order.service"' "$T/out"

# -------------------------------------------- the issuer's CMS document

if command -v openssl >/dev/null; then
	openssl req -x509 -newkey rsa:2048 -nodes -keyout issuer.key \
		-out issuer.pem -days 30 -subj "/CN=Issuer Test" 2>/dev/null
	openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key \
		-out other.pem -days 30 -subj "/CN=Other" 2>/dev/null
	printf '保全命令書\n' >order.txt
	openssl cms -sign -in order.txt -signer issuer.pem -inkey issuer.key \
		-nodetach -outform DER -out order.p7m 2>/dev/null
	expect_rc "a signed document without --trust is refused" 2 case store \
		set issuer.document order.p7m
	grep_in "saying --trust is needed" "--trust" "$T/err"
	expect_rc "a signature by an untrusted key is refused" 2 case store \
		set --trust other.pem issuer.document order.p7m
	grep_in "saying it does not verify" "signature does not verify" \
		"$T/err"
	expect_rc "a signature by the trusted key is accepted" 0 case store \
		set --trust issuer.pem issuer.document order.p7m
	run case store
	grep_in "the signer is shown" "signature verified, signer .*Issuer Test" \
		"$T/out"
	sha=$(sha256sum order.p7m | cut -d' ' -f1)
	check "the document is kept in the store by its SHA-256" \
		cmp -s order.p7m "store/case-documents/$sha"
	expect_rc "a plain document is hashed" 0 case store set \
		issuer.document order.txt
else
	skip "CMS document" "openssl not found"
fi

# ------------------------------------------------------------ release

"$HOZEN" init rel >/dev/null
expect_rc "release of a draft is refused" 2 release rel
grep_in "saying it is a draft" "draft" "$T/err"
"$HOZEN" case rel set order.end 2099-01-01T00:00+09:00 >/dev/null
"$HOZEN" case rel set issuer.authority 警察庁 >/dev/null
expect_rc "release before the end is refused" 2 release rel
grep_in "naming --revoked-by" "revoked-by" "$T/err"
expect_rc "shortening the order is refused" 2 case rel set order.end \
	2098-01-01
expect_rc "extending the order is allowed" 0 case rel set order.end \
	2100-01-01
expect_rc "a revocation releases before the end" 0 release rel \
	--revoked-by "東京地方裁判所" --reason "命令の取消し"
run log --json --type release rel
check "the release is recorded with the revoking authority" \
	grep -q '"reason":"revoked".*"revoked_by":"東京地方裁判所"' "$T/out"
run case rel
grep_in "the case shows it revoked" "^order: +revoked" "$T/out"
expect_rc "a second release is refused" 2 release rel

"$HOZEN" init ended >/dev/null
"$HOZEN" case ended set issuer.authority 警察庁 >/dev/null
"$HOZEN" case ended set order.end 2020-01-01T00:00Z >/dev/null
run case ended
grep_in "an ended order stays in force" "IN FORCE: the preservation period ended" \
	"$T/out"
expect_rc "release after the end is allowed" 0 release ended
check "and recorded" [ "$(records ended release)" -eq 1 ]
"$HOZEN" checkpoint ended >/dev/null
"$HOZEN" checkpoint rel >/dev/null
expect_rc "released stores verify" 0 verify ended
expect_rc "revoked stores verify" 0 verify rel

# ---------------------------------------------------- the writer lock

if command -v flock >/dev/null; then
	flock -n rel/chain "$HOZEN" case rel set order.law 刑法 >/dev/null \
		2>"$T/err"
	rc=$?
	check "a locked store is refused (exit 2)" [ "$rc" -eq 2 ]
	grep_in "saying the store is mounted" "the store is mounted" "$T/err"
else
	skip "writer lock" "flock not found"
fi

# ----------------------------------------------------------- the docs

DOC=$SRCDIR/../../docs/CASE.md
if [ -f "$DOC" ]; then
	sed -n '/<!-- fields:begin -->/,/<!-- fields:end -->/p' "$DOC" |
		sed '1d;$d' >doc-table.md
	"$HOZEN" case --fields --markdown >cmd-table.md
	if diff -u cmd-table.md doc-table.md >table.diff; then
		ok "docs/CASE.md has the field table 'hozen case --fields' prints"
	else
		not_ok "docs/CASE.md has the field table 'hozen case --fields' prints" \
			"$(head -n 40 table.diff)"
	fi
else
	not_ok "docs/CASE.md exists" "no $DOC"
fi

tap_finish
