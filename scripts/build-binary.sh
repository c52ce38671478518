#!/usr/bin/env bash
# Build dist/airgap, the one-file loader for hosts without Python, from this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv
# PyInstaller bundles the interpreter's shared library; Debian's python3 is linked
# statically and ships it in a package of its own
libpython="$("$VENV_PY" -c 'import sysconfig as s; print(s.get_config_var("LIBDIR") + "/" + s.get_config_var("INSTSONAME"))')"
if [ ! -e "$libpython" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$(basename "${libpython%.so.*}")" >/dev/null
fi
"$VENV_PY" -m pip install -q --disable-pip-version-check --require-hashes -r packaging/build-requirements.txt
drop_distutils_hook "$(dirname "$(dirname "$VENV_PY")")"  # should that install have put it back

commit="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
if [ "$commit" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    commit="$commit-dirty"
fi
printf '"""Written by scripts/build-binary.sh."""\nCOMMIT = "%s"\n' "$commit" > airgap/_buildinfo.py
trap 'rm -f airgap/_buildinfo.py' EXIT

"$VENV_PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/airgap.spec
ls -l dist/airgap
dist/airgap --version
