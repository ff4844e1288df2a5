#!/usr/bin/env bash
# For clusters without cert-manager: make a self-signed CA and a serving
# certificate for the webhook Service, write them to OUT_DIR (default
# ./certs), write a Secret manifest, and print the caBundle to paste into
# validatingwebhook.yaml.
#
# Usage: ./gen-certs.sh [--service portcullis] [--namespace portcullis] [--out DIR] [--days 365]
set -euo pipefail
SERVICE=portcullis
NAMESPACE=portcullis
OUT_DIR=./certs
DAYS=365
while [ $# -gt 0 ]; do
  case "$1" in
    --service) SERVICE=$2; shift 2 ;;
    --namespace) NAMESPACE=$2; shift 2 ;;
    --out) OUT_DIR=$2; shift 2 ;;
    --days) DAYS=$2; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
command -v openssl >/dev/null || { echo "gen-certs.sh needs openssl" >&2; exit 1; }
mkdir -p "$OUT_DIR"
cd "$OUT_DIR"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout ca.key -out ca.crt -days "$DAYS" -subj "/CN=${SERVICE}-ca" 2>/dev/null

cat > san.cnf <<CNF
[req]
distinguished_name = dn
req_extensions = ext
prompt = no
[dn]
CN = ${SERVICE}.${NAMESPACE}.svc
[ext]
subjectAltName = DNS:${SERVICE}.${NAMESPACE}.svc,DNS:${SERVICE}.${NAMESPACE}.svc.cluster.local
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
CNF
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout tls.key -out tls.csr -config san.cnf 2>/dev/null
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
  -out tls.crt -days "$DAYS" -extfile san.cnf -extensions ext 2>/dev/null
rm -f tls.csr ca.srl

cat > secret.yaml <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: ${SERVICE}-tls
  namespace: ${NAMESPACE}
type: kubernetes.io/tls
data:
  tls.crt: $(base64 -w0 < tls.crt)
  tls.key: $(base64 -w0 < tls.key)
YAML
echo "wrote $(pwd)/{ca.crt,tls.crt,tls.key,secret.yaml}" >&2
echo "caBundle: $(base64 -w0 < ca.crt)"
