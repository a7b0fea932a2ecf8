# Shared by deploy/run.sh and deploy/test.sh: installs what a fresh Debian machine lacks.
#
# ensure_deps       what running the appliance needs (run.sh): SoftHSM2, opensc, openssl,
#                   a C toolchain and Rust. Idempotent; no network when all is present.
# ensure_test_deps  ensure_deps plus what the tests check against (test.sh, CI): Go (the
#                   interop test builds a Go program), Python 3 + a venv with a pinned
#                   pkilint, openapi-spec-validator and py-spiffe, g++ (deploy/fuzz.sh builds
#                   libFuzzer), prometheus (promtool and the server, for the metrics
#                   tests), Chromium with its driver, Selenium and NSS tools (the console
#                   test), nginx (the tlog-tiles test), certbot, its RFC 2136 plugin,
#                   lego and Knot DNS (the ACME tests), and the current
#                   Debian versions of openssl/libssl, opensc, softhsm2, golang-go,
#                   certbot, lego and knot
#                   (`--only-upgrade`, so CI tests what relying parties on current
#                   Debian run).

# pkilint release the lint tests are pinned to (PyPI), and the venv it lives in.
PKILINT_VERSION=0.13.3
PKILINT_VENV="${CREDMINT_PKILINT_VENV:-/opt/credmint/pkilint-venv}"
# The independent OpenAPI 3.1 validator the API document is checked with (PyPI, same venv;
# it brings the `jsonschema` package the example test validates live answers with).
OPENAPI_VALIDATOR_VERSION=0.9.0
# py-spiffe (PyPI `spiffe`), the Python SPIFFE Workload API client the agent's Workload API is
# checked with (same venv; it brings grpcio, cryptography and PyJWT).
PY_SPIFFE_VERSION=0.3.2
# Debian packages whose current versions the tests must run against (only the installed
# ones are upgraded; libssl3t64 is the trixie name of libssl3).
UPGRADE_PACKAGES=(openssl libssl3 libssl3t64 opensc softhsm2 golang-go systemd certbot python3-certbot-dns-rfc2136 lego knot knot-dnsutils)

_credmint_apt_updated=0
_apt_update() {
    if [ "$_credmint_apt_updated" = 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        _credmint_apt_updated=1
    fi
}

_apt_install() {
    if [ "$#" -gt 0 ]; then
        echo "credmint: installing $*" >&2
        _apt_update
        apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    fi
}

_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

ensure_deps() {
    local need=()
    [ -e /usr/lib/softhsm/libsofthsm2.so ] || need+=(softhsm2)
    command -v pkcs11-tool >/dev/null || need+=(opensc)
    command -v openssl >/dev/null || need+=(openssl)
    command -v cc >/dev/null || need+=(build-essential)
    command -v perl >/dev/null || need+=(perl)
    command -v curl >/dev/null || need+=(curl ca-certificates)
    _apt_install "${need[@]}"
    if ! command -v cargo >/dev/null; then
        if [ -x "$HOME/.cargo/bin/cargo" ]; then
            export PATH="$HOME/.cargo/bin:$PATH"
        else
            echo "credmint: installing the Rust toolchain (rustup)" >&2
            curl -sSf https://sh.rustup.rs | sh -s -- -y --profile default >/dev/null
            export PATH="$HOME/.cargo/bin:$PATH"
        fi
    fi
}

ensure_test_deps() {
    ensure_deps
    local need=()
    command -v go >/dev/null || need+=(golang-go)
    # The fuzz stage (deploy/fuzz.sh) builds libFuzzer, which is C++.
    command -v c++ >/dev/null || need+=(g++)
    command -v python3 >/dev/null || need+=(python3)
    python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv python3-pip)
    # The systemd unit test runs systemd-analyze verify/security on the installed unit.
    command -v systemd-analyze >/dev/null || need+=(systemd)
    # The install step creates the service user with useradd (passwd).
    command -v useradd >/dev/null || need+=(passwd)
    # The metrics tests lint /metrics with promtool and scrape it with a real Prometheus
    # server; Debian's prometheus package ships both.
    { command -v promtool && command -v prometheus; } >/dev/null || need+=(prometheus)
    # The console test drives headless Chromium through Selenium (Debian's, for
    # /usr/bin/python3, with Debian's chromedriver: nothing downloads a browser or driver)
    # and trusts the CA through an NSS database (certutil, pk12util).
    command -v chromium >/dev/null || need+=(chromium)
    command -v chromedriver >/dev/null || need+=(chromium-driver)
    /usr/bin/python3 -c 'import selenium' 2>/dev/null || need+=(python3-selenium)
    command -v certutil >/dev/null || need+=(libnss3-tools)
    [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
    # The tiles test serves the tlog-tiles directory with Debian's nginx.
    [ -x /usr/sbin/nginx ] || need+=(nginx)
    # The ACME tests run Debian's certbot and lego against the ACME server.
    command -v certbot >/dev/null || need+=(certbot)
    command -v lego >/dev/null || need+=(lego)
    # dns-01 is proved against Debian's Knot DNS (knotd, and knsupdate for hand-made
    # records) through the clients' RFC 2136 plugins (lego's built in, certbot's packaged).
    command -v knotd >/dev/null || need+=(knot)
    command -v knsupdate >/dev/null || need+=(knot-dnsutils)
    /usr/bin/python3 -c 'import certbot_dns_rfc2136' 2>/dev/null || need+=(python3-certbot-dns-rfc2136)
    _apt_install "${need[@]}"

    # Test against the current Debian versions, not whatever the image happened to ship.
    local upgrade=()
    for pkg in "${UPGRADE_PACKAGES[@]}"; do
        _installed "$pkg" && upgrade+=("$pkg")
    done
    if [ "${#upgrade[@]}" -gt 0 ]; then
        _apt_update
        apt-get install -y -qq --only-upgrade "${upgrade[@]}" >/dev/null
    fi
    echo "credmint: testing against $(openssl version | cut -d' ' -f1-2), $(go version | cut -d' ' -f3)" >&2

    if ! "$PKILINT_VENV/bin/python" -m pip show pkilint 2>/dev/null \
        | grep -qx "Version: $PKILINT_VERSION"; then
        echo "credmint: installing pkilint $PKILINT_VERSION into $PKILINT_VENV" >&2
        python3 -m venv "$PKILINT_VENV"
        "$PKILINT_VENV/bin/python" -m pip install -q --disable-pip-version-check \
            "pkilint==$PKILINT_VERSION"
    fi
    if ! "$PKILINT_VENV/bin/python" -m pip show openapi-spec-validator 2>/dev/null \
        | grep -qx "Version: $OPENAPI_VALIDATOR_VERSION"; then
        echo "credmint: installing openapi-spec-validator $OPENAPI_VALIDATOR_VERSION into $PKILINT_VENV" >&2
        "$PKILINT_VENV/bin/python" -m pip install -q --disable-pip-version-check \
            "openapi-spec-validator==$OPENAPI_VALIDATOR_VERSION"
    fi
    if ! "$PKILINT_VENV/bin/python" -m pip show spiffe 2>/dev/null \
        | grep -qx "Version: $PY_SPIFFE_VERSION"; then
        echo "credmint: installing py-spiffe $PY_SPIFFE_VERSION into $PKILINT_VENV" >&2
        "$PKILINT_VENV/bin/python" -m pip install -q --disable-pip-version-check \
            "spiffe==$PY_SPIFFE_VERSION"
    fi
    # The lint tests look the CLIs up on PATH (and fail when they are missing).
    export PATH="$PATH:$PKILINT_VENV/bin"

    # The test command checks formatting; a minimal toolchain may lack rustfmt.
    if ! cargo fmt --version >/dev/null 2>&1 && command -v rustup >/dev/null; then
        rustup component add rustfmt >/dev/null
    fi
}
