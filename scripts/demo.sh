#!/usr/bin/env bash
# The main job on built-in example images: build two images that share a base layer,
# save them into a bundle, load it into an empty store, and show what was deduplicated.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv

work="$(mktemp -d /tmp/airgap-demo.XXXXXX)"
trap 'rm -rf "$work"' EXIT
packager=(--progress none --store "$work/packager-store")
site=(--progress none --store "$work/site-store")

echo "== packager: build example/base:1 and two apps on top of it"
mkdir -p "$work/base/usr/lib" "$work/one" "$work/two"
"$VENV_PY" - "$work/base/usr/lib/runtime.bin" <<'PY'
import random, sys
random.seed(42)  # the same bytes every run
with open(sys.argv[1], "wb") as f:
    f.write(random.randbytes(4 << 20))
PY
echo "ID=airgap-demo" > "$work/base/os-release"
echo "print('one')" > "$work/one/app.py"
echo "print('two')" > "$work/two/app.py"
"$AIRGAP" "${packager[@]}" import "$work/base" example/base:1 >/dev/null
"$AIRGAP" "${packager[@]}" import "$work/one" example/app-one:1 --base example/base:1 >/dev/null
"$AIRGAP" "${packager[@]}" import "$work/two" example/app-two:1 --base example/base:1 >/dev/null
"$AIRGAP" "${packager[@]}" images example/app-one
"$AIRGAP" "${packager[@]}" images example/app-two

echo
echo "== packager: make a signing key, save both images into one signed bundle"
(cd "$work" && AIRGAP_KEY_PASSPHRASE= "$AIRGAP" key generate packager >/dev/null)
"$AIRGAP" "${packager[@]}" save --sign "$work/packager.key" -o "$work/bundle.tar" example/app-one:1 example/app-two:1

echo
echo "== site: verify the bundle against the packager's public key, then load it into an empty store"
"$AIRGAP" "${site[@]}" verify --trust "$work/packager.pub" "$work/bundle.tar"
echo
"$AIRGAP" "${site[@]}" load -q --trust "$work/packager.pub" -i "$work/bundle.tar"
"$AIRGAP" "${site[@]}" images

echo
"$VENV_PY" - "$work" <<'PY'
import json, os, subprocess, sys
work = sys.argv[1]
store = os.path.join(work, "site-store")
cmd = [os.path.join(os.path.dirname(sys.executable), "airgap"), "--store", store, "inspect",
       "example/app-one:1", "example/app-two:1"]
images = json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout)
logical = sum(i["Size"] for i in images)
blobs = os.path.join(store, "blobs", "sha256")
layers = {l for i in images for l in i["RootFS"]["Layers"]}
stored = sum(os.path.getsize(os.path.join(blobs, d[7:])) for d in layers)
bundle = os.path.getsize(os.path.join(work, "bundle.tar"))
print(f"bundle: {bundle:,} bytes for {len(images)} images")
print(f"layers: {logical:,} bytes if each image kept its own, {stored:,} bytes stored")
print(f"deduplication saved {logical - stored:,} bytes (the shared base layer is stored once)")
PY
