#!/usr/bin/env bash
# An example release pipeline: take the images listed in a file (pulling those the store
# lacks), write one signed bundle (split for removable media when asked), SHA256SUMS, and
# a human (markdown) and a machine (JSON) summary. Stops at the first failure.
#
#   scripts/release-export.sh -i images.txt -k release.key -o out/ [-n NAME] [--split SIZE]
#                             [--all-platforms]
#
# images.txt: one reference per line; '#' starts a comment; blank lines are ignored.
# Uses $AIRGAP (default: airgap on PATH, else this checkout's .venv/bin/airgap), and the
# store of $AIRGAP_STORE or the default one. The key's passphrase, if any, comes from
# $AIRGAP_KEY_PASSPHRASE.
set -euo pipefail

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
list="" key="" out="" name="images" split="" platforms=()
while [ $# -gt 0 ]; do
    case "$1" in
        -i) list="$2"; shift 2 ;;
        -k) key="$2"; shift 2 ;;
        -o) out="$2"; shift 2 ;;
        -n) name="$2"; shift 2 ;;
        --split) split="$2"; shift 2 ;;
        --all-platforms) platforms=(--all-platforms); shift ;;
        -h|--help) usage ;;
        *) echo "release-export: unknown argument $1" >&2; usage ;;
    esac
done
[ -n "$list" ] && [ -n "$key" ] && [ -n "$out" ] || usage
[ -f "$list" ] || { echo "release-export: $list: no such file" >&2; exit 2; }

here="$(cd "$(dirname "$0")/.." && pwd)"
airgap="${AIRGAP:-$(command -v airgap || echo "$here/.venv/bin/airgap")}"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

refs=()
while IFS= read -r line || [ -n "$line" ]; do
    line="${line%%#*}"
    line="$(echo "$line" | xargs)"
    [ -n "$line" ] && refs+=("$line")
done < "$list"
[ ${#refs[@]} -gt 0 ] || { echo "release-export: $list lists no images" >&2; exit 2; }

echo "[" > "$work/sources.json"
sep=""
for ref in "${refs[@]}"; do
    if [ -n "$("$airgap" images -q "$ref" 2>/dev/null)" ]; then
        echo "take  $ref (in the store)" >&2
        origin="store"
    else
        echo "pull  $ref" >&2
        "$airgap" --progress none pull --format json "${platforms[@]}" "$ref" > "$work/pull.json"
        origin="pulled"
    fi
    printf '%s{"reference": "%s", "origin": "%s"}\n' "$sep" "$ref" "$origin" >> "$work/sources.json"
    sep=","
done
echo "]" >> "$work/sources.json"

split_args=()
if [ -n "$split" ]; then
    if "$airgap" save --help | grep -q -- "--split"; then
        split_args=(--split "$split")
    else
        echo "release-export: this airgap has no save --split; writing one file" >&2
    fi
fi
bundle="$out/$name.tar"
"$airgap" --progress none save --format json --sign "$key" "${split_args[@]}" -o "$bundle" "${refs[@]}" > "$work/save.json"

(cd "$out" && sha256sum "$name".tar* > SHA256SUMS)

python_bin="$(dirname "$airgap")/python"
[ -x "$python_bin" ] || python_bin="$(command -v python3)"
"$python_bin" - "$work/save.json" "$work/sources.json" "$out" "$name" <<'PY'
import json, os, sys
save = json.load(open(sys.argv[1]))
sources = json.load(open(sys.argv[2]))
out, name = sys.argv[3], sys.argv[4]
files = sorted(f for f in os.listdir(out) if f.startswith(name + ".tar"))
# what each name points at (an index digest for a multi-platform image): pins made from
# these resolve at the site, where push keeps every manifest byte for byte
pins = {ref: img["digest"] for img in save["images"] for ref in img["references"]}
summary = {"bundle": files, "bundleDigest": save["bundleDigest"], "signer": save["signer"],
           "size": save["size"], "images": save["images"], "sources": sources, "pins": pins}
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2, sort_keys=True)
    f.write("\n")
lines = [f"# Release bundle {name}", "",
         f"- Bundle: {', '.join(files)} ({save['size']:,} bytes)",
         f"- Bundle digest (sha256 of airgap/bundle.json): `{save['bundleDigest']}`",
         f"- Signed by key: `{save['signer']}`", "",
         "| image | digest | image ID | platforms |", "| --- | --- | --- | --- |"]
for img in save["images"]:
    refs = ", ".join(img["references"]) or "(untagged)"
    lines.append(f"| {refs} | `{img['digest']}` | `{img['id'][7:19]}` | {', '.join(img['platforms'])} |")
lines += ["", "On the disconnected host:", "", "```sh", "sha256sum -c SHA256SUMS",
          f"airgap verify --trust release.pub {files[0]}",
          f"airgap load --trust release.pub -i {files[0]}", "```", ""]
with open(os.path.join(out, "summary.md"), "w") as f:
    f.write("\n".join(lines))
PY
echo "wrote $out: $(cd "$out" && ls | tr '\n' ' ')" >&2
