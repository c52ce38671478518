"""Tar archives: ``docker save`` (legacy and Docker 25+), OCI archives, airgap bundles.

``ArchiveSource`` reads any of them from a seekable file; ``BundleSink`` writes the
airgap bundle, which is all three formats at once.
"""

from __future__ import annotations

import json
import os

from ..archive.tar import TarIndex, TarWriter
from ..bundle import (MAX_BUNDLE_JSON, MAX_NAMES, TOP_FILES, count_names, Bundle, BundleBlob, BundleImage, check_loadable,
                      BundleManifest)
from ..digest import check_bytes, copy_verified, sha256_digest, validate_digest
from ..errors import AirgapError, DigestMismatch, FormatError
from ..layers import compression, uncompressed_digest
from ..oci import (ANNOTATION_ATTACHMENT, ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, DOCUMENT,
                   ANNOTATION_SUBJECT, INDEX_TYPES, MAX_DOCUMENT, attached,
                   OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD,
                   OCI_MANIFEST, MAX_LAYERS, MANIFEST_TYPES, Descriptor, Index, Manifest, is_uncompressed_layer, load_json, parse_config,
                   need_list, need_str, parse_manifest)
from ..gotypes import check_fields, one_spelling
from ..reference import Reference, parse_reference
from ..words import plural
from .base import Outcome, ProgressFn, SourceImage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO, Callable

    from ..copy import Plan
    from .base import Source

BUNDLE_JSON = "airgap/bundle.json"
MAX_ENTRIES = 100_000  # entries of an archive's index.json or manifest.json
BUNDLE_SIG = "airgap/bundle.json.sig"


def blob_member(digest: str) -> str:
    return "blobs/sha256/" + validate_digest(digest)


class ArchiveSource:
    """Images in a tar archive on a seekable file."""

    jobs = 0

    def __init__(self, f: BinaryIO, name: str) -> None:
        self.name = name
        self.f = f
        self.tar = TarIndex(f, name)
        self._members: dict[str, str] = {}     # digest -> member name
        self._synthetic: dict[str, bytes] = {}  # manifests made for legacy entries
        self._images: list[SourceImage] | None = None
        self.notes: list[str] = []  # what the loader was lenient about (an ignored name)
        self.resumed: dict[str, int] = {}  # a file source reuses through the store's transaction
        self.bundle: Bundle | None = None
        self.bundle_raw = self._optional(BUNDLE_JSON, MAX_BUNDLE_JSON)
        self.signature_raw = self._optional(BUNDLE_SIG, 1 << 20) if self.bundle_raw else None

    def _optional(self, member: str, limit: int) -> bytes | None:
        return self.tar.read(member, limit) if self.tar.lookup(member) is not None else None

    # -- Source ----------------------------------------------------------------
    def images(self) -> list[SourceImage]:
        """The images, after checking the archive's members against ``bundle.json``.

        Call after the signature check: that is what makes ``bundle.json`` worth trusting.
        """
        if self._images is None:
            if self.bundle_raw is not None:
                self.bundle = Bundle.from_bytes(self.bundle_raw, f"{self.name}: {BUNDLE_JSON}")
                self._images = self._bundle_images(self.bundle)
            else:
                self._images = self._find_images()
        return list(self._images)

    def receive(self) -> None:
        """Nothing to read ahead: a file is read where it lies."""

    def has_staged(self, digest: str) -> bool:
        return False

    def check_plan(self, plan: Plan) -> None:
        if self.bundle is not None:
            check_bundle_plan(self.bundle, self.name, plan)
        # the tar headers say every member's size: a descriptor that lies about one is damage,
        # said before the space check adds up the sizes the descriptors claim
        for digest, desc in plan.blobs.items():
            if digest in self._synthetic:  # a manifest made for a legacy entry: no member
                continue
            if self.bundle is not None and self._member_of(digest) is None:
                continue  # a bundle's members are checked against bundle.json (a delta leaves some out)
            # a foreign archive that names a blob it lacks is damaged, whatever the store
            # holds: docker load refuses it too
            member = self._need(desc, f"{self.name}: {plan.labels.get(digest, desc.media_type)} ({digest})")
            m = self.tar.lookup(member)
            if m is not None and m.size != desc.size:
                raise DigestMismatch(f"{self.where(desc)} ({plan.labels.get(digest, desc.media_type)})",
                                     digest, "?", desc.size, m.size)

    def expected_present(self, plan: Plan) -> list[Descriptor]:
        """The blobs a delta bundle leaves out, which the target store must already have."""
        return bundle_expected_present(self.bundle, plan)

    def uncompressed(self, desc: Descriptor) -> tuple[str, int]:
        return bundle_uncompressed(self, self.bundle, desc)

    def has_blob(self, digest: str) -> bool:
        return digest in self._synthetic or self._member_of(digest) is not None

    def where(self, desc: Descriptor) -> str:
        member = self._members.get(desc.digest) or blob_member(desc.digest)
        if desc.digest in self._synthetic:
            return f"{self.name}: manifest.json (manifest {desc.digest[:19]})"
        return f"{self.name}: member {member}"

    def read_document(self, desc: Descriptor, what: str) -> bytes:
        data = self._synthetic.get(desc.digest)
        if data is None:
            member = self._need(desc, what)
            if desc.size > MAX_DOCUMENT:
                raise FormatError(f"{what}: {desc.size} bytes, more than {MAX_DOCUMENT}")
            data = self.tar.read(member, MAX_DOCUMENT)
        return check_bytes(data, desc.digest, desc.size, what)

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        member = self._need(desc, self.where(desc))
        m = self.tar.lookup(member)
        assert m is not None
        if m.size != desc.size:
            raise DigestMismatch(self.where(desc), desc.digest, "?", desc.size, m.size)
        return self.tar.open(m)  # type: ignore[return-value]

    def close(self) -> None:
        self.f.close()

    # -- finding the images ----------------------------------------------------
    def _bundle_images(self, bundle: Bundle) -> list[SourceImage]:
        """Check the member list against bundle.json: nothing extra, nothing missing."""
        where = f"{self.name}: {BUNDLE_JSON}"
        allowed = {BUNDLE_JSON, BUNDLE_SIG, *bundle.files}
        for b in bundle.blobs:
            member = blob_member(b.digest)
            allowed.add(member)
            m = self.tar.files.get(member)
            if m is None:
                raise FormatError(f"{self.name}: blob {b.digest} ({b.media_type}) is listed in "
                                  f"{BUNDLE_JSON} but member {member} is missing")
            if m.size != b.size:
                raise FormatError(f"{self.name}: member {member} is {m.size} bytes, "
                                  f"{BUNDLE_JSON} says {b.size}")
        for name in self.tar.names():
            if name not in allowed:
                raise FormatError(f"{self.name}: member {name} is not listed in {BUNDLE_JSON}")
            if name not in self.tar.files:
                raise FormatError(f"{self.name}: member {name} is a link; bundles hold only files")
        for fname, (digest, size) in bundle.files.items():
            check_bytes(self.tar.read(fname, MAX_DOCUMENT), digest, size, f"{self.name}: member {fname}")
        if not bundle.images:
            raise FormatError(f"{where}: lists no images")
        return bundle_source_images(bundle)

    def _member_of(self, digest: str) -> str | None:
        name = self._members.get(digest)
        if name is None:
            name = blob_member(digest)
        return name if self.tar.lookup(name) is not None else None

    def _need(self, desc: Descriptor, what: str) -> str:
        member = self._member_of(desc.digest)
        if member is None:
            raise FormatError(f"{what}: the archive has no member "
                              f"{self._members.get(desc.digest) or blob_member(desc.digest)}")
        return member

    def _json(self, member: str) -> Any:
        return load_json(self.tar.read(member, MAX_DOCUMENT), f"{self.name}: {member}")

    def _find_images(self) -> list[SourceImage]:
        has = self.tar.lookup
        oci = self._oci_images() if has("index.json") is not None else []
        if has("manifest.json") is not None:
            docker = self._docker_images(oci)
            self._note_left_out(oci, docker)
            return docker
        if oci:
            return oci
        if has("index.json") is not None:
            raise FormatError(f"{self.name}: index.json lists no images")
        raise FormatError(f"{self.name}: not an image archive (no manifest.json or index.json)")

    def _note_left_out(self, oci: list[SourceImage], docker: list[SourceImage]) -> None:
        """``manifest.json`` is what ``docker load`` reads; an image ``index.json`` lists
        beside it (a multi-platform index, an image manifest.json lacks) is said, not
        dropped in silence."""
        taken = {img.descriptor.digest for img in docker}
        for img in oci:
            if img.descriptor.digest in taken:
                continue
            if img.descriptor.media_type in INDEX_TYPES:
                what = f"{self.name}: index {blob_member(img.descriptor.digest)}"
                try:  # not loaded either way: a damaged one is only said
                    doc = parse_manifest(self.read_document(img.descriptor, what), what,
                                         img.descriptor.media_type)
                except AirgapError:
                    doc = None
                if isinstance(doc, Index) and any(d.digest in taken for d in doc.manifests):
                    continue
            names = ", ".join(n.familiar() for n in img.names) or "no name"
            self.notes.append(f"{self.name}: index.json lists {img.descriptor.digest[:19]} ({names}), "
                              "which manifest.json does not: not loaded (as docker load, airgap "
                              "reads the images manifest.json lists when an archive has both)")

    def _oci_images(self) -> list[SourceImage]:
        doc = self._json("index.json")
        if not isinstance(doc, dict):
            raise FormatError(f"{self.name}: index.json is not a JSON object")
        check_fields(doc, DOCUMENT, f"{self.name}: index.json")
        items = need_list(doc.get("manifests"), f"{self.name}: index.json", "manifests", MAX_ENTRIES)
        out: list[SourceImage] = []
        by_digest: dict[str, SourceImage] = {}
        named: set[tuple[str, Reference]] = set()
        for raw in items:
            desc = Descriptor.from_json(raw, f"{self.name}: index.json")
            name = self._annotation_name(desc)
            img = by_digest.get(desc.digest)
            if img is None:
                img = by_digest[desc.digest] = SourceImage(
                    Descriptor(desc.media_type, desc.digest, desc.size, {}, desc.platform),
                    [], f"{desc.digest[:19]} from {self.name}")
                out.append(img)
            if name is not None and (desc.digest, name) not in named:
                named.add((desc.digest, name))
                img.names.append(name)
        return out

    def _annotation_name(self, desc: Descriptor) -> Reference | None:
        """The name an OCI index entry gives: containerd's full name, else a ref.name with a
        repository (a bare tag such as ``latest`` names nothing). An invalid name is
        ignored, and a note says which and why."""
        full = desc.annotations.get(ANNOTATION_CONTAINERD_NAME)
        ref = desc.annotations.get(ANNOTATION_REF_NAME, "")
        for text in (full, ref if ("/" in ref or ":" in ref) else None):
            if text:
                try:
                    return parse_reference(text).with_default_tag()
                except AirgapError as exc:
                    self.notes.append(f"{self.name}: ignored the name {text[:300]!r} of image "
                                      f"{desc.digest[:19]}: {exc}")
        return None

    def _docker_images(self, oci: list[SourceImage]) -> list[SourceImage]:
        entries = need_list(self._json("manifest.json"), f"{self.name}: manifest.json", "the document",
                            MAX_ENTRIES)
        by_config = self._oci_by_config(oci)
        out: list[SourceImage] = []
        named = 0
        for i, entry in enumerate(entries):
            what = f"{self.name}: manifest.json entry {i}"
            if not isinstance(entry, dict):
                raise FormatError(f"{what}: needs Config and Layers")
            one_spelling(entry, ("Config", "RepoTags", "Layers", "Parent", "LayerSources"), what)
            if not isinstance(entry.get("Config"), str) or not isinstance(entry.get("Layers"), list):
                raise FormatError(f"{what}: needs Config and Layers")
            for layer in need_list(entry["Layers"], what, "Layers", MAX_LAYERS):
                need_str(layer, what, "each of Layers")
            tags = [] if entry.get("RepoTags") is None else need_list(entry["RepoTags"], what, "RepoTags", MAX_NAMES)
            named = count_names(named, tags, f"{self.name}: manifest.json")
            names = [_parse_tag(t, what) for t in tags]
            config_member = entry["Config"]
            if self.tar.lookup(config_member) is None:
                raise FormatError(f"{what} (image {', '.join(n.familiar() for n in names) or '?'}): "
                                  f"names {config_member}, which the archive does not have")
            config_digest = self._digest_of_member(config_member, what)
            found = by_config.get((config_digest, len(entry["Layers"])))
            if found is not None:
                desc = found.descriptor
            else:
                desc = self._synthesize(entry, config_member, config_digest, names, what)
            label = ", ".join(n.familiar() for n in names) or config_digest[:19]
            out.append(SourceImage(desc, names, label))
        return out

    def _oci_by_config(self, oci: list[SourceImage]) -> dict[tuple[str, int], SourceImage]:
        """The OCI manifests of ``index.json``, by config and layer count: a ``manifest.json``
        entry that matches one keeps its bytes (and so its registry digest). A multi-platform
        index's platform manifests count too (Docker 25+ lists the one it has); one that is
        missing or damaged is passed over (it is not loaded unless an entry matches it)."""
        out = {}
        children: dict[str, Descriptor] = {}
        for img in oci:
            if img.descriptor.media_type in INDEX_TYPES:
                what = f"{self.name}: index {blob_member(img.descriptor.digest)} of image {img.display()}"
                try:
                    index = parse_manifest(self.read_document(img.descriptor, what), what)
                except AirgapError:
                    continue
                if isinstance(index, Index):
                    children.update((d.digest, d) for d in index.manifests if d.media_type in MANIFEST_TYPES)
                continue
            what = f"{self.name}: manifest {blob_member(img.descriptor.digest)} of image {img.display()}"
            doc = parse_manifest(self.read_document(img.descriptor, what), what)
            if hasattr(doc, "config"):
                out[(doc.config.digest, len(doc.layers))] = img  # type: ignore[union-attr]
        for d in children.values():  # each once, however often indexes list it
            what = f"{self.name}: manifest {blob_member(d.digest)}"
            try:
                child = parse_manifest(self.read_document(d, what), what, d.media_type)
            except AirgapError:
                continue
            if isinstance(child, Manifest):
                plain = Descriptor(d.media_type, d.digest, d.size)
                out.setdefault((child.config.digest, len(child.layers)),
                               SourceImage(plain, [], f"{d.digest[:19]} from {self.name}"))
        return out

    def _digest_of_member(self, member: str, what: str) -> str:
        """The digest a member claims by its name (blobs/sha256/x, x.json), else hashed."""
        base = os.path.basename(member)
        stem = base[:-5] if base.endswith(".json") else base
        if member.startswith("blobs/sha256/") or (base.endswith(".json") and len(stem) == 64):
            digest = "sha256:" + stem
            validate_digest(digest, what)
        else:
            data = self.tar.read(member, MAX_DOCUMENT)
            digest = sha256_digest(data)
        self._members[digest] = member
        return digest

    def _synthesize(self, entry: dict[str, Any], config_member: str, config_digest: str,
                    names: list[Reference], what: str) -> Descriptor:
        """Make the OCI manifest of a legacy ``docker save`` entry (which has none)."""
        what = f"{what} (image {', '.join(n.familiar() for n in names) or config_digest[:19]})"
        config_raw = self.tar.read(config_member, MAX_DOCUMENT)
        config, ids = parse_config(config_raw, f"{what}: {config_member}")
        if len(ids) != len(entry["Layers"]):
            raise FormatError(f"{what}: {plural(len(entry['Layers']), 'layer')}, but the config has "
                              f"{plural(len(ids), 'diff_id')}")
        layers = []
        for member, diff_id in zip(entry["Layers"], ids):
            m = self.tar.lookup(member) if isinstance(member, str) else None
            if m is None:
                raise FormatError(f"{what}: names layer {member}, which the archive does not have")
            kind = compression(self.tar.open(m).read(4))
            if kind:
                mt = OCI_LAYER_GZIP if kind == "gzip" else OCI_LAYER_ZSTD
                if member.startswith("blobs/sha256/"):
                    digest = self._digest_of_member(member, what)
                else:
                    digest, _ = copy_verified(self.tar.open(m), None, expected=None, size=m.size,
                                              what=f"{what}: {member}")
            else:
                mt, digest = OCI_LAYER, diff_id
            self._members[digest] = member
            layers.append({"mediaType": mt, "digest": digest, "size": m.size})
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "digest": config_digest,
                               "size": len(config_raw)},
                    "layers": layers}
        raw = json.dumps(manifest, separators=(",", ":")).encode()
        digest = sha256_digest(raw)
        self._synthetic[digest] = raw
        return Descriptor(OCI_MANIFEST, digest, len(raw))


def _parse_tag(text: Any, what: str) -> Reference:
    if not isinstance(text, str):
        raise FormatError(f"{what}: RepoTags holds a non-string")
    try:
        return parse_reference(text).with_default_tag()
    except AirgapError as exc:
        raise FormatError(f"{what}: bad RepoTag {text!r}: {exc}") from None


def bundle_source_images(bundle: Bundle) -> list[SourceImage]:
    """The images bundle.json lists, attachments marked with their subject."""
    out = []
    for img in bundle.images:
        desc = Descriptor(img.media_type, img.digest, img.size)
        if img.subject is not None:
            desc = attached(desc, img.subject, img.attachment or "referrer")
        out.append(SourceImage(desc, list(img.references), img.digest[:19]))
    return out


def newest_created(plan: Plan) -> str:
    """The bundle's time when none is given: the newest image's, not the clock's, so the
    same images always give the same bytes."""
    from ..timeutil import parse_time  # save only
    times = [t for img in plan.images for im in img.manifests
             if (t := parse_time(str(im.config.get("created") or ""))) is not None]
    return max(times).strftime("%Y-%m-%dT%H:%M:%SZ") if times else "1970-01-01T00:00:00Z"


def check_bundle_plan(bundle: Bundle, name: str, plan: Plan) -> None:
    """In a bundle, every blob the images use must be listed, with the same size and diff_id."""
    for digest, desc in plan.blobs.items():
        listed = bundle.blob(digest)
        if listed is None:
            raise FormatError(f"{name}: {plan.labels[digest]} ({digest}) is not listed in {BUNDLE_JSON}")
        if listed.size != desc.size:
            raise FormatError(f"{name}: {plan.labels[digest]}: {BUNDLE_JSON} says "
                              f"{listed.size} bytes, the manifest {desc.size}")
        if listed.uncompressed_size is not None:
            plan.uncompressed[digest] = listed.uncompressed_size
        want = plan.diff_ids.get(digest)
        if want and listed.diff_id and listed.diff_id != want:
            raise FormatError(f"{name}: {plan.labels[digest]}: {BUNDLE_JSON} lists diff_id "
                              f"{listed.diff_id}, the image config {want}")


def bundle_uncompressed(source: Source, bundle: Bundle | None, desc: Descriptor) -> tuple[str, int]:
    """A layer's diff_id and tar size: its own, what bundle.json records (checked against
    the image config when planned), or decompressed."""
    if is_uncompressed_layer(desc.media_type):
        return desc.digest, desc.size
    listed = bundle.blob(desc.digest) if bundle else None
    if listed is not None and listed.diff_id and listed.uncompressed_size is not None:
        return listed.diff_id, listed.uncompressed_size
    with source.open_blob(desc) as f:
        return uncompressed_digest(f, desc, source.where(desc))


def bundle_expected_present(bundle: Bundle | None, plan: Plan) -> list[Descriptor]:
    if bundle is None:
        return []
    listed = {b.digest for b in bundle.expected_present}
    return [d for k, d in sorted(plan.blobs.items()) if k in listed]


class BundleSink:
    """Writes the airgap bundle: a docker-save archive that is also an OCI layout.

    ``airgap/bundle.json`` (and its signature) come first, so everything about the bundle
    has to be known at ``begin``: the top-level files are made from the plan there.
    """

    jobs = 1  # a tar is written in order

    def __init__(self, out: BinaryIO, created: str | None = None,
                 signer: Callable[[bytes], bytes] | None = None,
                 exclude: set[str] | None = None) -> None:
        self.tar = TarWriter(out)
        self.created = created
        self.signer = signer
        self.exclude = exclude or set()  # layers the far side has: a delta bundle
        self.bundle_raw = b""
        self.signature_raw = b""
        self._written: set[str] = set()
        self._files: dict[str, bytes] = {}

    def has_blob(self, digest: str) -> bool:
        return digest in self._written or digest in self.exclude

    def prepare(self, plan: Plan) -> None:
        """Make ``bundle.json`` and its signature (Ed25519's are deterministic): the same
        images give the same bytes, which a resumed split save relies on."""
        if self.created is None:
            self.created = newest_created(plan)
        self._files = top_files(plan)
        self.exclude = {d for d in self.exclude if d in plan.diff_ids}  # layers only
        bundle = make_bundle(plan, self.created, self._files, self.exclude)
        self.bundle_raw = bundle.to_bytes()
        check_loadable(self.bundle_raw, self._files)
        self.signature_raw = self.signer(self.bundle_raw) if self.signer is not None else b""

    def begin(self, plan: Plan) -> None:
        if not self.bundle_raw:
            self.prepare(plan)
        self.tar.add_dir("airgap")
        self.tar.add_bytes(BUNDLE_JSON, self.bundle_raw)
        if self.signature_raw:
            self.tar.add_bytes(BUNDLE_SIG, self.signature_raw)
        self.tar.add_dir("blobs")
        self.tar.add_dir("blobs/sha256")

    def put_blob(self, stream: BinaryIO, desc: Descriptor, what: str,
                 progress: ProgressFn | None = None) -> Outcome:
        self.tar.begin_file(blob_member(desc.digest), desc.size)
        copy_verified(stream, self.tar, expected=desc.digest, size=desc.size, what=what,
                      progress=progress)
        self.tar.end_file(desc.size)
        self._written.add(desc.digest)
        return Outcome.ADDED

    def put_bytes(self, data: bytes, desc: Descriptor, what: str) -> Outcome:
        check_bytes(data, desc.digest, None, what)
        self.tar.add_bytes(blob_member(desc.digest), data)
        self._written.add(desc.digest)
        return Outcome.ADDED

    def put_image(self, desc: Descriptor, names: list[Reference]) -> None:
        pass  # the names are in the top-level files made at begin()

    def commit(self) -> None:
        for name in sorted(self._files):
            self.tar.add_bytes(name, self._files[name])
        self.tar.close()


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def top_files(plan: Plan) -> dict[str, bytes]:
    """index.json (OCI), manifest.json and repositories (docker load), oci-layout."""
    index: list[dict[str, Any]] = []
    docker: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    for pimg in plan.images:
        desc, names = pimg.descriptor, pimg.names
        base: dict[str, Any] = {"mediaType": desc.media_type, "digest": desc.digest, "size": desc.size}
        extra = {k: v for k, v in desc.annotations.items() if k in (ANNOTATION_SUBJECT, ANNOTATION_ATTACHMENT)}
        candidates: list[Reference | None] = list(names) or [None]
        for name in candidates:
            entry = dict(base)
            ann = dict(extra)
            if name is not None:
                ann.update({ANNOTATION_CONTAINERD_NAME: str(name), ANNOTATION_REF_NAME: str(name)})
            if ann:
                entry["annotations"] = ann
            index.append(entry)
        if pimg.subject is not None:
            continue  # an attachment is no image for docker load
        im = pimg.host_manifest
        layers = [blob_member(d.digest) for d in im.manifest.layers]
        # RepoTags in full (docker.io/library/nginx:1.25): docker load shows them familiar as
        # ever, and podman, which reads a bundle of several images as a docker archive, takes a
        # familiar name there for localhost/ (as it does Docker's own saves)
        docker.append({"Config": blob_member(im.manifest.config.digest),
                       "RepoTags": [str(n) for n in names if not n.digest] or None,
                       "Layers": layers})
        for n in names:
            if layers and n.tag:
                repositories.setdefault(n.familiar_name, {})[n.tag] = \
                    validate_digest(im.manifest.layers[-1].digest)
    return {"index.json": _dump({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index}),
            "manifest.json": _dump(docker),
            "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
            "repositories": _dump(repositories)}


def make_bundle(plan: Plan, created: str, files: dict[str, bytes], exclude: set[str]) -> Bundle:
    images = [BundleImage(list(p.names), p.descriptor.digest, p.descriptor.media_type,
                          p.descriptor.size,
                          [BundleManifest(im.descriptor.digest, im.manifest.config.digest,
                                          str(im.platform)) for im in p.manifests],
                          p.subject, p.descriptor.annotations.get(ANNOTATION_ATTACHMENT) if p.subject else None)
              for p in plan.images]
    blobs: list[BundleBlob] = []
    present: list[BundleBlob] = []
    for digest in sorted(plan.blobs):
        d = plan.blobs[digest]
        diff_id = plan.diff_ids.get(digest)
        usize = None
        if diff_id:
            got, usize = plan.source.uncompressed(d)
            if got != diff_id:  # as docker load would find on the far side: say it here
                raise DigestMismatch(f"{plan.labels[digest]} ({plan.source.where(d)}): uncompressed "
                                     "content (diff_id, as the image config lists it)", diff_id, got)
        (present if digest in exclude else blobs).append(BundleBlob(digest, d.size, d.media_type, diff_id, usize))
    return Bundle(created, images, blobs,
                  {k: (sha256_digest(v), len(v)) for k, v in files.items() if k in TOP_FILES}, present)
