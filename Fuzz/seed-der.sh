#!/usr/bin/env bash
# Writes certificate-identity fuzz seeds: DER certificates made with the
# openssl CLI that cover what IdentityExtractor reads (multi-valued and
# repeated RDNs, UTF8/BMP strings, every SAN type, SPIFFE IDs good and bad,
# big and negative serials, EC and RSA keys). The kept corpus adds the DER
# of the development and test PKIs.
# Usage: seed-der.sh OUT_DIR
set -euo pipefail
out="$1"
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/ec.key" 2>/dev/null
openssl genrsa -out "$tmp/rsa.key" 2048 2>/dev/null
n=0
cert() {  # cert KEY SUBJECT SAN [extra req args...]
    local key="$1" subject="$2" san="$3"
    shift 3
    n=$((n + 1))
    local args=(-x509 -new -key "$tmp/$key.key" -subj "$subject" -days 30 -utf8 -multivalue-rdn
                -outform DER -out "$out/seed-$n.der")
    [ -n "$san" ] && args+=(-addext "subjectAltName=$san")
    openssl req "${args[@]}" "$@" 2>/dev/null || echo "seed-der: skipped $subject ($san)" >&2
}
cert ec "/CN=alice/OU=billing/O=Relay Test" "DNS:alice.example,email:alice@example.com"
cert ec "/CN=bob/OU=orders+OU=billing/DC=example/DC=org" "IP:127.0.0.1,IP:::1,DNS:*.example"
cert ec "/" "URI:spiffe://relay.example/payments/api"
cert ec "/CN=two-ids" "URI:spiffe://relay.example/a,URI:spiffe://relay.example/b"
cert ec "/CN=bad-spiffe" "URI:spiffe://Relay.Example/../x,URI:https://example.com/a?b"
cert ec "/CN=a.b/OU=x*/O=a b/L=\x01" "DNS:a.b.c,DNS:>,email:a*b"
cert ec "/CN=caf\xc3\xa9/serialNumber=0042/UID=u1/emailAddress=a@b" ""
cert rsa "/CN=rsa/O=Example Org/C=DE/ST=Berlin" "DNS:rsa.example" -set_serial 0x00ffffffffffffffffffffffffffffffff
cert rsa "/CN=tiny-serial" "" -set_serial 0
cert ec "/CN=oid/1.2.3.4=custom/2.5.4.97=VATDE-1" "otherName:1.2.3.4;UTF8:other,RID:1.2.3.4,dirName:dir_sect" \
    -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n[dir_sect]\nCN=dir\n')
