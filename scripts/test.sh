#!/usr/bin/env bash
# Install what the tests need (the venv with the test extras, and the real peers from
# Debian's packages), run pytest, and stop whatever the tests left running.
# The peers' daemons (dockerd, containerd, the registry) are started by the pytest
# fixtures under $AIRGAP_TEST_RUNDIR and stopped by them; the trap below is the backstop.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh

# program -> Debian package
peers=(dockerd:docker.io skopeo:skopeo containerd:containerd ctr:containerd umoci:umoci 7zz:7zip docker-registry:docker-registry podman:podman)
missing=()
for pair in "${peers[@]}"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "installing peers: ${missing[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
    else
        echo "warning: not root, cannot install ${missing[*]}; tests that need them will skip (or fail in CI)" >&2
    fi
fi

ensure_venv test

# the linter first: a finding fails the run (mypy --strict runs as tests/test_typing.py)
"$VENV_PY" -m ruff check airgap tests

# the one-file binary for the tests in tests/binary (rebuilt when the code is newer)
if [ -z "${AIRGAP_BIN:-}" ]; then
    if [ ! -x dist/airgap ] || [ -n "$(find airgap packaging pyproject.toml -newer dist/airgap -print -quit)" ]; then
        echo "building dist/airgap ..." >&2
        scripts/build-binary.sh >&2
    fi
    AIRGAP_BIN="$PWD/dist/airgap"
fi
export AIRGAP_BIN

export AIRGAP_TEST_RUNDIR
AIRGAP_TEST_RUNDIR="$(mktemp -d /tmp/airgap-test.XXXXXX)"
cleanup() {
    pkill -TERM -f -- "$AIRGAP_TEST_RUNDIR" 2>/dev/null || true
    sleep 1
    pkill -KILL -f -- "$AIRGAP_TEST_RUNDIR" 2>/dev/null || true
    rm -rf "$AIRGAP_TEST_RUNDIR"
}
trap cleanup EXIT

status=0
"$VENV_PY" -m pytest "$@" || status=$?
if [ "$status" = 5 ]; then
    echo "no tests were collected" >&2
    status=1
fi
exit "$status"
