# Sourced by the scripts: make .venv and install airgap into it when needed.
# Usage: ensure_venv [EXTRAS]   (EXTRAS like "test"; re-installs when pyproject.toml changes)
ensure_venv() {
    local extras="${1:-}" root stamp spec
    local python=python3
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    # Debian's own interpreter when it is new enough: built with PGO and LTO, it runs a short
    # command ~15% faster than a plain source build (such as pyenv's, which may come first
    # on PATH), and it is the one a fresh Debian host has
    if /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
        python=/usr/bin/python3
    fi
    if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    [ -x "$root/.venv/bin/python" ] || "$python" -m venv "$root/.venv"
    spec="$root"
    [ -n "$extras" ] && spec="$root[$extras]"
    stamp="$root/.venv/.installed-${extras:-base}"
    if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
        # compat: the checkout on sys.path by a plain .pth line; the default editable mode
        # installs an import hook whose imports cost every start of airgap ~25 ms
        "$root/.venv/bin/python" -m pip install -q --disable-pip-version-check -e "$spec" \
            --config-settings editable_mode=compat
        touch "$stamp"
    fi
    drop_distutils_hook "$root/.venv"
    VENV_PY="$root/.venv/bin/python"
    AIRGAP="$root/.venv/bin/airgap"
}

# setuptools (which PyInstaller needs) installs a .pth that puts a finder of its own in
# front of every import, so that `import distutils` finds its copy; airgap never imports
# distutils, and the finder cost every start ~0.5 ms (1% of a reload). Without the file,
# `import setuptools` still uses its own copy.
drop_distutils_hook() {
    rm -f "$1"/lib/python3*/site-packages/distutils-precedence.pth
}
