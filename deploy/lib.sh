# Shared by deploy/run.sh and deploy/test.sh: installs what a fresh Debian machine lacks.
# Idempotent: does nothing when everything is already present.

ensure_deps() {
    local need=()
    [ -e /usr/lib/softhsm/libsofthsm2.so ] || need+=(softhsm2)
    command -v pkcs11-tool >/dev/null || need+=(opensc)
    command -v openssl >/dev/null || need+=(openssl)
    command -v cc >/dev/null || need+=(build-essential)
    command -v perl >/dev/null || need+=(perl)
    command -v curl >/dev/null || need+=(curl ca-certificates)
    if [ "${#need[@]}" -gt 0 ]; then
        echo "credmint: installing ${need[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
    if ! command -v cargo >/dev/null; then
        if [ -x "$HOME/.cargo/bin/cargo" ]; then
            export PATH="$HOME/.cargo/bin:$PATH"
        else
            echo "credmint: installing the Rust toolchain (rustup)" >&2
            curl -sSf https://sh.rustup.rs | sh -s -- -y --profile default >/dev/null
            export PATH="$HOME/.cargo/bin:$PATH"
        fi
    fi
    # The test command checks formatting; a minimal toolchain may lack rustfmt.
    if ! cargo fmt --version >/dev/null 2>&1 && command -v rustup >/dev/null; then
        rustup component add rustfmt >/dev/null
    fi
}
