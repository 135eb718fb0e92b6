#!/bin/sh
# Make the keys compose.yaml mounts, and the .env file it reads its variables from.
#
#   deploy/make-secrets.sh                    # with `ledger` on PATH (pip install .)
#   LEDGER="docker run --rm -u $(id -u) -v $PWD/deploy/secrets:/out -w /out open-policy-ledger:0.1.0" \
#     OUT_PREFIX=/out deploy/make-secrets.sh  # with only the image
#
# Refuses to overwrite an existing key. Writes, next to this script unless told otherwise:
#   secrets/signing.key   the log's Ed25519 signing key       (ledger keys init)
#   secrets/master.key    the personal-data master key        (ledger keys init-master)
#   secrets/witness.key   the witness's key                   (ledger witness --init)
#   .env                  POSTGRES_PASSWORD, LEDGER_LOG_NAME, LOG_VKEY, WITNESS_VKEY
# Then give the keys to the containers' user (UID 10001), readable by it alone:
#   sudo chown 10001:10001 deploy/secrets/*.key && sudo chmod 0400 deploy/secrets/*.key
set -eu

here=$(cd "$(dirname "$0")" && pwd)
SECRETS_DIR=${SECRETS_DIR:-$here/secrets}
ENV_FILE=${ENV_FILE:-$here/.env}
LEDGER=${LEDGER:-ledger}
OUT_PREFIX=${OUT_PREFIX:-$SECRETS_DIR}   # where SECRETS_DIR is, as $LEDGER sees it
LEDGER_LOG_NAME=${LEDGER_LOG_NAME:-ledger.example.org/open-policy}
WITNESS_NAME=${WITNESS_NAME:-witness.example.org}

for f in signing.key master.key witness.key; do
  if [ -e "$SECRETS_DIR/$f" ]; then
    echo "make-secrets: $SECRETS_DIR/$f exists; refusing to overwrite a key" >&2
    exit 1
  fi
done
if [ -e "$ENV_FILE" ]; then
  echo "make-secrets: $ENV_FILE exists; refusing to overwrite it" >&2
  exit 1
fi

umask 077
mkdir -p "$SECRETS_DIR"
log_vkey=$($LEDGER keys init --out "$OUT_PREFIX/signing.key" --name "$LEDGER_LOG_NAME")
$LEDGER keys init-master --out "$OUT_PREFIX/master.key" >/dev/null
witness_vkey=$($LEDGER witness --init --key "$OUT_PREFIX/witness.key" --name "$WITNESS_NAME")
password=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')

cat >"$ENV_FILE" <<ENV
# Read by docker compose for deploy/compose.yaml. Keep it out of version control.
POSTGRES_PASSWORD=$password
LEDGER_LOG_NAME=$LEDGER_LOG_NAME
LOG_VKEY=$log_vkey
WITNESS_VKEY=$witness_vkey
ENV
echo "make-secrets: keys in $SECRETS_DIR, variables in $ENV_FILE"
echo "  log verifier key:     $log_vkey"
echo "  witness verifier key: $witness_vkey"
