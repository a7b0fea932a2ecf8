#!/usr/bin/env bash
# Installs credmint as a systemd service on the embedded default (SoftHSM2 + local redb):
#
#   bash deploy/install.sh                 # as root: build, install, init, enable
#   bash deploy/install.sh --root DIR      # the same tree under DIR (paths in the unit and
#                                          # config point into DIR; no user, no systemctl)
#
#   /opt/credmint/bin/credmint             the binary (CREDMINT_BIN, default: a release build)
#   /opt/credmint/firmware-config/         the SoftHSM2 config template
#   /etc/credmint/credmint.toml            configuration, data_dir = /var/lib/credmint
#   /etc/systemd/system/credmint.service   the unit (deploy/credmint.service)
#   /etc/systemd/system/credmint-agent.service   the workload agent's unit (not enabled:
#                                          it runs where the workloads are)
#   /var/lib/credmint                      data (the unit's StateDirectory), owner credmint, 0700
#
# An existing /etc/credmint/credmint.toml is kept. `credmint init` runs once as the service
# user; the unit only serves. Then: systemctl enable --now credmint.
set -euo pipefail
cd "$(dirname "$0")/.."

ROOT=/
if [ "${1:-}" = "--root" ]; then
    ROOT="$(realpath -m "${2:?--root needs a directory}")"
fi
prefix() { if [ "$ROOT" = / ]; then echo "$1"; else echo "$ROOT$1"; fi; }
OPT="$(prefix /opt/credmint)"
ETC="$(prefix /etc/credmint)"
UNIT_DIR="$(prefix /etc/systemd/system)"
DATA="$(prefix /var/lib/credmint)"

BIN="${CREDMINT_BIN:-}"
if [ -z "$BIN" ]; then
    . deploy/lib.sh
    ensure_deps
    cargo build --release --locked --bin credmint
    BIN=target/release/credmint
fi

install -d -m 0755 "$OPT/bin" "$OPT/firmware-config" "$UNIT_DIR"
install -d -m 0750 "$ETC"
install -m 0755 "$BIN" "$OPT/bin/credmint"
install -m 0644 firmware-config/softhsm2.conf "$OPT/firmware-config/softhsm2.conf"
install -m 0644 README.md "$OPT/README.md"

if [ ! -e "$ETC/credmint.toml" ]; then
    # The embedded default, with its paths made absolute for the installed layout.
    sed -e "s#^data_dir = .*#data_dir = \"$DATA\"#" \
        -e "s#^conf_template = .*#conf_template = \"$OPT/firmware-config/softhsm2.conf\"#" \
        firmware-config/credmint.toml >"$ETC/credmint.toml.tmp"
    chmod 0640 "$ETC/credmint.toml.tmp"
    mv "$ETC/credmint.toml.tmp" "$ETC/credmint.toml"
fi

# The unit as shipped, its paths moved under ROOT for a relocated install.
for unit in credmint.service credmint-agent.service; do
    sed -e "s#/opt/credmint#$OPT#g" -e "s#/etc/credmint#$ETC#g" \
        "deploy/$unit" >"$UNIT_DIR/$unit"
    chmod 0644 "$UNIT_DIR/$unit"
done

if [ "$ROOT" = / ]; then
    id credmint >/dev/null 2>&1 ||
        useradd --system --home-dir /var/lib/credmint --no-create-home \
            --shell /usr/sbin/nologin credmint
    chgrp credmint "$ETC" "$ETC/credmint.toml"
    install -d -m 0700 -o credmint -g credmint "$DATA"
    runuser -u credmint -- "$OPT/bin/credmint" --config "$ETC/credmint.toml" init
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        echo "installed; start with: systemctl enable --now credmint" >&2
    else
        echo "installed (systemd is not running here: no systemctl)" >&2
    fi
else
    install -d -m 0700 "$DATA"
    "$OPT/bin/credmint" --config "$ETC/credmint.toml" init
    echo "installed under $ROOT" >&2
fi
