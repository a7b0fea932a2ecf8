#!/bin/sh
# Container entrypoint: provisions the embedded SoftHSM2 token, keys, CA and ledger on the
# first start (`credmint init` is idempotent), then becomes `credmint serve` (exec, so the
# appliance is PID 1's child signal target and SIGTERM stops it cleanly).
#
# Per-deployment values come from the environment, not from editing the config:
#   CREDMINT_NAMES       server certificate names, comma-separated (e.g. "ca.example.com")
#   CREDMINT_PUBLIC_URL  base URL put in certificates (OCSP, CRL) and as the JWT issuer
#   CREDMINT_LISTEN      listen address (the image sets 0.0.0.0:8443)
#   CREDMINT_CONFIG      config file (the image sets /opt/credmint/firmware-config/credmint.toml)
set -eu

# The token store, PIN files and ledger must belong to an unprivileged user; running the
# appliance as root would also let a compromise of it write anywhere in the container.
if [ "$(id -u)" = 0 ] && [ "${CREDMINT_ALLOW_ROOT:-}" != 1 ]; then
    echo "credmint: refusing to run as root; run the image as its default user (credmint)" \
        "or pass --user; set CREDMINT_ALLOW_ROOT=1 to override" >&2
    exit 2
fi

credmint init
exec credmint serve
