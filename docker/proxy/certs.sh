#!/bin/sh
# make certs: a local certificate authority and a server certificate signed by it, for the proxy's TLS in
# development (openssl). A certificate still valid for 30 days is kept; the authority is made once.
#
#   docker/proxy/certs.sh [DIR]     DIR: secrets/tls by default, what docker-compose.yml mounts into the proxy
#
# DIR/ca.crt    the authority: give it to clients (curl --cacert, tritonclient's ssl_options, a browser's store)
# DIR/ca.key    its key, readable by you only: it could sign a certificate for any name for whoever trusts ca.crt
# DIR/tls.crt   the server's certificate for localhost, 127.0.0.1, ::1 and CERT_NAMES (DNS names, space-separated)
# DIR/tls.key   its key: readable by the proxy's unprivileged user (a development key; mount a real one elsewhere)
set -eu
dir=${1:-secrets/tls}
names="DNS:localhost,IP:127.0.0.1,IP:::1"
for name in ${CERT_NAMES:-}; do names="$names,DNS:$name"; done
mkdir -p "$dir"
chmod 755 "$dir"  # the proxy's user reads tls.crt and tls.key through the mount

if [ ! -s "$dir/ca.key" ] || [ ! -s "$dir/ca.crt" ]; then
  umask 077
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca.key"
  umask 022
  cat > "$dir/ca.cnf" <<EOF
[req]
distinguished_name = subject
prompt = no
x509_extensions = authority
[subject]
CN = fashion-softmax development CA
[authority]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
  openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 1825 -config "$dir/ca.cnf" -out "$dir/ca.crt"
  rm "$dir/ca.cnf"
  echo "certs: made a certificate authority: $dir/ca.crt (trust it where you test; its key is $dir/ca.key)"
fi

if [ -s "$dir/tls.crt" ] && openssl x509 -in "$dir/tls.crt" -noout -checkend 2592000 >/dev/null \
   && openssl verify -CAfile "$dir/ca.crt" "$dir/tls.crt" >/dev/null 2>&1 \
   && [ "$(openssl x509 -in "$dir/tls.crt" -noout -ext subjectAltName | tail -n +2 | tr -d ' ')" \
        = "$(echo "$names" | sed 's/IP:::1/IPAddress:0:0:0:0:0:0:0:1/; s/IP:/IPAddress:/g')" ]; then
  echo "certs: $dir/tls.crt is valid for 30 days more, for these names: kept"
  exit 0
fi
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/tls.key"
chmod 644 "$dir/tls.key"
cat > "$dir/server.cnf" <<EOF
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $names
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
openssl req -new -key "$dir/tls.key" -subj "/CN=localhost" -out "$dir/server.csr"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -sha256 -days 365 \
  -extfile "$dir/server.cnf" -extensions server -out "$dir/tls.crt" 2>/dev/null
rm "$dir/server.csr" "$dir/server.cnf" "$dir/ca.srl"
echo "certs: made $dir/tls.crt for $names, signed by $dir/ca.crt, valid 365 days"
