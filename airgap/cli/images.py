"""Verbs over the store alone: images, inspect, tag, rmi."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Container
from datetime import datetime, UTC

from ..errors import AirgapError, NotFound, UsageError
from .context import Context, stable_read
from ..words import printable
from .format import ellipsis, human_size, since, table
from ..timeutil import rfc3339nano
from .govalues import GoDuration, GoNil, GoNilList, GoNilMap, GoStringMap, GoStruct, GoText, go_json, go_plain
from .template import Template, expand_escapes

TYPE_CHECKING = False
if TYPE_CHECKING:  # the store is imported where it is used: start-up stays fast
    from typing import Any

    from ..reference import Reference
    from ..store.query import ImageInfo
    from ..store.layout import Image

IMAGE_HEADERS = {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
                 "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                 "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE",
                 "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE"}
_FILTERS = ("dangling", "before", "since", "reference", "label")


def register(sub: argparse._SubParsersAction, verbs: Container[str]) -> None:  # type: ignore[type-arg]
    # `images` first, ahead of `image`, in airgap --help's list of verbs
    made = {"images": sub.add_parser("images", help="list stored images")} if "images" in verbs else {}
    isub = None
    if "image" in verbs:
        image = sub.add_parser("image", help="manage images (ls, rm, inspect, tag, history, prune)",
                               epilog="airgap image save|load|pull|push|import ... is airgap save|load|pull|"
                                      "push|import ..., as in Docker")
        isub = image.add_subparsers(dest="image_command", metavar="COMMAND")
        isub.required = True

    def parsers(verb: str, image_verb: str, help: str, *aliases: str) -> list[argparse.ArgumentParser]:
        """The parsers asked for of ``airgap VERB`` and of its twin ``airgap image IMAGE_VERB``."""
        out = [made.get(verb) or sub.add_parser(verb, help=help)] if verb in verbs else []
        if isub is not None:
            out.append(isub.add_parser(image_verb, aliases=list(aliases), help=help))
        return out

    for p in parsers("images", "ls", "list stored images", "list"):
        p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
        p.add_argument("-a", "--all", action="store_true",
                       help="show all images (airgap keeps no intermediate images)")
        p.add_argument("-q", "--quiet", action="store_true", help="only image IDs")
        p.add_argument("--no-trunc", action="store_true", help="full image IDs")
        p.add_argument("--digests", action="store_true", help="show digests")
        p.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                       help="dangling=true|false, before=IMAGE, since=IMAGE, reference=PATTERN, "
                            "label=KEY[=VALUE]")
        p.add_argument("--format", help="Go template, 'table TEMPLATE', or 'json'")
        p.set_defaults(func=cmd_images)

    for p in parsers("inspect", "inspect", "show stored images as JSON"):
        p.add_argument("-f", "--format", help="Go template applied to each image")
        p.add_argument("images", nargs="+", metavar="IMAGE")
        p.set_defaults(func=cmd_inspect)

    for p in parsers("tag", "tag", "give a stored image another name"):
        p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
        p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")
        p.set_defaults(func=cmd_tag)

    for p in parsers("rmi", "rm", "untag and remove images", "remove"):
        p.add_argument("-f", "--force", action="store_true",
                       help="remove an image that is named in several repositories")
        p.add_argument("images", nargs="+", metavar="IMAGE")
        p.set_defaults(func=cmd_rmi)

    for p in parsers("history", "history", "show how a stored image's layers were made"):
        p.add_argument("image", metavar="IMAGE")
        p.add_argument("-H", "--human", default="true", metavar="true|false",
                       help="sizes and dates in human-readable form (default true; -H=false)")
        p.add_argument("--no-trunc", action="store_true", help="do not truncate the output")
        p.add_argument("-q", "--quiet", action="store_true", help="only image IDs")
        p.add_argument("--format", help="Go template, 'table TEMPLATE', or 'json'")
        p.set_defaults(func=cmd_history)

    if isub is not None:
        from . import system
        system.register_image_prune(isub)


# -- images ---------------------------------------------------------------------------

def newest_first(infos: list[ImageInfo]) -> list[ImageInfo]:
    epoch = datetime.fromtimestamp(0, UTC)
    return sorted(infos, key=lambda i: (i.created_time or epoch, i.id), reverse=True)


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Go's ``path.Match``: ``*`` and ``?`` stop at ``/``; ``[^...]`` negates."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                raise UsageError(f"invalid reference filter {pattern!r}: syntax error in pattern")
            body = pattern[i + 1:end]
            if body.startswith("^"):
                body = "^" + body[1:].replace("/", "")
                out.append(f"[{body}/]")
            else:
                out.append(f"[{body}]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def _reference_match(patterns: list[re.Pattern[str]], ref: Reference) -> bool:
    """``reference.FamiliarMatch``: against ``name:tag``, else against the name alone."""
    return any(p.match(ref.familiar()) or p.match(ref.familiar_name) for p in patterns)


def _parse_filters(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in _FILTERS:
            raise UsageError(f"invalid filter '{item}'")
        if key == "dangling" and value.lower() not in ("true", "false", "1", "0"):
            raise UsageError(f"invalid filter 'dangling={value}'")
        out.setdefault(key, []).append(value)
    return out


def _labels_match(wanted: list[str], labels: dict[str, str]) -> bool:
    for w in wanted:
        key, sep, value = w.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def select_images(ctx: Context, args: argparse.Namespace) -> list[tuple[ImageInfo, list[Reference]]]:
    """The images ``images`` shows, each with the names the reference filter keeps."""
    from ..store.query import all_images, find_image
    store = ctx.store
    infos = all_images(store)
    filters = _parse_filters(args.filter)
    if args.repository:  # a reference filter, glob and all (`images 'team/*'`), as Docker's
        filters.setdefault("reference", []).append(args.repository)
    patterns = [_glob_regex(p) for p in filters.get("reference", [])]
    dangling = {v.lower() in ("true", "1") for v in filters.get("dangling", [])}
    if len(dangling) > 1:
        raise UsageError("invalid filter: dangling is both true and false")
    bounds = {k: [find_image(store, v, infos)[0].created_time for v in filters.get(k, [])]
              for k in ("before", "since")}
    out = []
    for info in newest_first(infos):
        created = info.created_time
        if any(b is not None and (created is None or created >= b) for b in bounds["before"]):
            continue
        if any(b is not None and (created is None or created <= b) for b in bounds["since"]):
            continue
        if "label" in filters and not _labels_match(filters["label"], info.labels):
            continue
        names = sorted(info.names, key=str)
        if patterns:
            names = [n for n in names if _reference_match(patterns, n)]
            if not names:
                continue
        if dangling == {True} and info.tags:
            continue
        if dangling == {False} and not info.names:
            continue
        out.append((info, names))
    return out


def image_rows(info: ImageInfo, names: list[Reference], digests: bool) -> list[tuple[str, str, str]]:
    """(repository, tag, digest) rows, grouped per repository as Docker's CLI groups them."""
    if not names:
        return [("<none>", "<none>", "<none>")]
    tags: dict[str, list[str]] = {}
    repo_digests: dict[str, list[str]] = {}
    for n in names:
        if n.digest:
            repo_digests.setdefault(n.familiar_name, []).append(n.digest)
        elif n.tag:
            tags.setdefault(n.familiar_name, []).append(n.tag)
    rows = []
    for repo, repo_tags in tags.items():
        ds = repo_digests.pop(repo, []) if digests else []
        repo_digests.pop(repo, None)
        for tag in repo_tags:
            rows += [(repo, tag, d) for d in ds] or [(repo, tag, "<none>")]
    for repo, ds in repo_digests.items():
        rows += [(repo, "<none>", d) for d in ds] if digests else [(repo, "<none>", "")]
    return rows


def created_at(info: ImageInfo) -> str:
    """Go's ``time.Unix(created, 0).String()`` in local time."""
    t = info.created_time
    if t is None:
        return "N/A"
    if t.year <= 1:  # Go's zero time (cosign signatures carry it), as Docker prints it
        return "0001-01-01 00:00:00 +0000 UTC"
    try:
        local = datetime.fromtimestamp(int(t.timestamp())).astimezone()
    except (OverflowError, OSError, ValueError):
        return "N/A"
    return local.strftime("%Y-%m-%d %H:%M:%S %z ") + (local.tzname() or "")


def image_context(info: ImageInfo, repo: str, tag: str, digest: str, no_trunc: bool) -> dict[str, str]:
    size = human_size(info.size)
    return {"Containers": "N/A", "CreatedAt": created_at(info), "CreatedSince": since(info.created),
            "Digest": digest, "ID": info.id if no_trunc else info.id[7:19], "Repository": repo,
            "SharedSize": "N/A", "Size": size, "Tag": tag, "UniqueSize": "N/A", "VirtualSize": size}


def render(ctx: Context, fmt: str, rows: list[dict[str, str]], headers: dict[str, str]) -> None:
    """Docker's formatter: 'json', 'table TEMPLATE' (header, aligned) or a plain template."""
    if fmt == "json":
        for r in rows:
            ctx.print(go_json(r))
        return
    fmt = expand_escapes(fmt)
    is_table = fmt.startswith("table")
    tmpl = Template(fmt[5:].lstrip(" ") if is_table else fmt, frozenset(headers))
    lines = [tmpl.render(r) for r in rows]
    if not is_table:
        for line in lines:
            ctx.print(line)
        return
    header = tmpl.render({k: headers.get(k, k.upper()) for k in rows[0]} if rows else dict(headers))
    text = table([line.split("\t") for line in [header, *lines]])
    if text:
        ctx.print(text)


@stable_read
def cmd_images(ctx: Context, args: argparse.Namespace) -> int:
    selected = select_images(ctx, args)
    if args.quiet:
        ids: list[str] = []
        for info, _ in selected:
            i = info.id if args.no_trunc else info.id[7:19]
            if i not in ids:
                ids.append(i)
        for i in ids:
            ctx.print(i)
        return 0
    rows = [image_context(info, repo, tag, digest, args.no_trunc)
            for info, names in selected
            for repo, tag, digest in image_rows(info, names, args.digests)]
    fmt = args.format or ("table {{.Repository}}\\t{{.Tag}}\\t" + ("{{.Digest}}\\t" if args.digests else "")
                          + "{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}")
    render(ctx, fmt, rows, IMAGE_HEADERS)
    return 0


# -- history --------------------------------------------------------------------------

HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                   "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}


def history_rows(info: ImageInfo, human: bool, trunc: bool, escape: bool = False) -> list[dict[str, str]]:
    """``docker history``: the config's history, newest first, each step that made a layer
    with that layer's size (the stored blob's, as ``images`` counts it); the image ID on the
    newest row, ``<missing>`` on the others (a loaded image has no parent chain). ``escape``:
    for the table, a terminal's: commands and comments from an archive are written escaped
    (``--format`` output is data, as Docker's, and keeps them)."""
    from ..timeutil import parse_time
    history = info.config.get("history")
    steps = [h for h in history if isinstance(h, dict)] if isinstance(history, list) else []
    layers = [d.size for d in info.manifest.layers]
    rows: list[dict[str, str]] = []
    made = 0
    for h in steps:
        size = 0
        if h.get("empty_layer") is not True:
            if made >= len(layers):  # the daemon's own words
                raise AirgapError(f"image {info.id}: too many non-empty layers in History section")
            size, made = layers[made], made + 1
        created = str(h.get("created") or "")
        when = parse_time(created)
        by = str(h.get("created_by") or "").replace("\t", " ")
        comment = str(h.get("comment") or "")
        if escape:
            by, comment = printable(by), printable(comment)
        at = _rfc3339(when) if when else ""
        rows.append({"ID": "<missing>",
                     "CreatedSince": since(created) if human else at,
                     "CreatedAt": at,
                     "CreatedBy": ellipsis(by, 45) if trunc else by,
                     "Size": human_size(size) if human else str(size),
                     "Comment": comment})
    rows.reverse()
    if rows:
        rows[0]["ID"] = info.id if not trunc else info.id[7:19]
    return rows


def _rfc3339(when: datetime) -> str:
    """Go's ``time.Unix(t, 0).Format(time.RFC3339)``: local time, whole seconds, ``Z`` for UTC."""
    text = when.astimezone().replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _bool_flag(text: str, flag: str) -> bool:
    value = text.lstrip("=").lower()  # -H=false reaches argparse as "=false"
    if value not in ("true", "false", "1", "0", "t", "f"):
        raise UsageError(f"invalid argument {text!r} for {flag}: expected true or false")
    return value in ("true", "1", "t")


@stable_read
def cmd_history(ctx: Context, args: argparse.Namespace) -> int:
    from ..store.query import find_image
    info = find_image(ctx.store, args.image)[0]
    rows = history_rows(info, _bool_flag(args.human, "--human"), not args.no_trunc, escape=args.format is None)
    if args.quiet:
        for r in rows:
            ctx.print(r["ID"])
        return 0
    render(ctx, args.format or "table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}",
           rows, HISTORY_HEADERS)
    return 0


# -- inspect, tag, rmi ------------------------------------------------------------------

def inspect_doc(info: ImageInfo, attached: list[Image]) -> GoStruct:
    """What ``docker inspect`` shows of an image, typed as Docker's Go structs are (for
    ``-f`` templates; ``go_plain`` gives its JSON), less the engine's own fields (Container,
    ContainerConfig, GraphDriver), plus the stored manifest's descriptor and ``attached``,
    what is attached to it."""
    cfg = info.config
    rootfs = cfg.get("rootfs") or {}
    container = cfg.get("config")
    from ..oci import ANNOTATION_ATTACHMENT
    return GoStruct({
        "Id": info.id,
        "RepoTags": [n.familiar() for n in info.tags],
        "RepoDigests": [n.familiar() for n in info.digest_refs],
        "Parent": "",
        "Comment": _comment(cfg),
        "Created": rfc3339nano(str(cfg.get("created", ""))),
        "DockerVersion": cfg.get("docker_version") or "",
        "Author": cfg.get("author") or "",
        "Config": _container_config(container) if isinstance(container, dict) else GoNil("*container.Config"),
        "Architecture": cfg.get("architecture") or "",
        "Variant": cfg.get("variant") or "",
        "Os": cfg.get("os") or "",
        "OsVersion": cfg.get("os.version") or "",
        "Size": info.size,
        "VirtualSize": info.size,
        "RootFS": GoStruct({"Type": rootfs.get("type", "layers"), "Layers": info.diff_ids, "BaseLayer": ""},
                           frozenset({"Layers", "BaseLayer"})),
        "Metadata": GoStruct({"LastTagTime": GoText("0001-01-01T00:00:00Z", "0001-01-01 00:00:00 +0000 UTC")}),
        "Descriptor": info.image.descriptor.to_json(),
        # signatures, SBOMs, attestations (not a Docker key)
        "Attachments": [{"Kind": a.descriptor.annotations.get(ANNOTATION_ATTACHMENT, ""),
                         "Digest": a.digest, "Names": [n.familiar() for n in a.names]} for a in attached],
    }, frozenset({"Variant", "OsVersion", "Attachments"}))


_LIST, _SET, _LABELS, _HEALTH = "[]string", "map[string]struct{}", "map[string]string", "*container.HealthConfig"
# Docker's container.Config as `docker inspect` shows an image's: (field, Go type or zero
# value, omitempty). A field of the image config's `config` that it lacks is not shown.
_CONTAINER_CONFIG: tuple[tuple[str, Any, bool], ...] = (
    ("Hostname", "", False), ("Domainname", "", False), ("User", "", False), ("AttachStdin", False, False),
    ("AttachStdout", False, False), ("AttachStderr", False, False), ("ExposedPorts", _SET, True),
    ("Tty", False, False), ("OpenStdin", False, False), ("StdinOnce", False, False), ("Env", _LIST, False),
    ("Cmd", _LIST, False), ("Healthcheck", _HEALTH, True), ("ArgsEscaped", False, True), ("Image", "", False),
    ("Volumes", _SET, False), ("WorkingDir", "", False), ("Entrypoint", _LIST, False),
    ("NetworkDisabled", False, True), ("MacAddress", "", True), ("OnBuild", _LIST, False),
    ("Labels", _LABELS, False), ("StopSignal", "", True), ("StopTimeout", "*int", True), ("Shell", _LIST, True))


def _health_config(given: dict[str, Any]) -> GoStruct:
    """Docker's container.HealthConfig (every field omitempty): durations print as Go's."""
    test = given.get("Test")
    fields = {"Test": GoNilList() if test is None else test,
              **{k: GoDuration(given.get(k) or 0) for k in ("Interval", "Timeout", "StartPeriod")},
              "Retries": given.get("Retries") or 0}
    return GoStruct(fields, frozenset(fields))


class _NilLabels(GoNilMap, GoStringMap):
    """A nil ``map[string]string``: ``map[]``, and ``index`` of any key is ``""``."""

    __slots__ = ()


def _container_config(given: dict[str, Any]) -> GoStruct:
    fields: dict[str, Any] = {}
    for name, kind, _ in _CONTAINER_CONFIG:
        v = given.get(name)
        if kind == _LIST:
            v = GoNilList() if v is None else v
        elif kind == _SET:  # map[string]struct{}: each value an empty struct
            v = GoNilMap() if v is None else {k: GoStruct({}) for k in v} if isinstance(v, dict) else v
        elif kind == _LABELS:
            v = _NilLabels() if v is None else GoStringMap(v) if isinstance(v, dict) else v
        elif kind == _HEALTH and isinstance(v, dict):
            v = _health_config(v)
        elif isinstance(kind, str) and kind.startswith("*"):  # a pointer
            v = GoNil(kind) if v is None else v
        elif v is None:
            v = kind  # the zero value: "" or False
        fields[name] = v
    return GoStruct(fields, frozenset(name for name, _, omit in _CONTAINER_CONFIG if omit))


def _comment(cfg: dict[str, Any]) -> str:
    history = cfg.get("history")
    last = history[-1] if isinstance(history, list) and history else None
    return str(last.get("comment") or "") if isinstance(last, dict) else ""


@stable_read
def cmd_inspect(ctx: Context, args: argparse.Namespace) -> int:
    from ..store.layout import Attachments
    from ..store.query import ImageInfo, by_name, find_image
    store = ctx.store
    images = store.images()  # one reading of the index for every argument
    infos = [ImageInfo(store, img) for img in images if img.subject is None]
    named, attachments = by_name(infos), Attachments(images)
    docs, missing = [], []
    for text in args.images:
        try:
            info = find_image(store, text, infos, named)[0]
        except NotFound:
            missing.append(text)
            continue
        subjects = {info.digest, *(n.digest for n in info.names if n.digest)}
        docs.append(inspect_doc(info, attachments.of(subjects)))
    for text in missing:  # said once everything is read (stable_read may read it all again)
        ctx.info(f"Error: No such object: {text}")
    if args.format:
        tmpl = Template(expand_escapes(args.format))
        for d in docs:
            ctx.print(tmpl.render(d))
    else:
        ctx.print(json.dumps(go_plain(docs), indent=4))
    return 1 if missing else 0


def cmd_tag(ctx: Context, args: argparse.Namespace) -> int:
    from ..reference import parse_reference
    from ..store.query import find_image
    store = ctx.store
    target = parse_reference(args.target)
    if target.digest:
        raise UsageError(f"refusing to create a tag with a digest reference: {args.target}")
    target = target.with_default_tag()
    with store.begin() as txn:
        info = find_image(store, args.source)[0]
        txn.add_name(info.image.descriptor, target)
        txn.commit()
    return 0


def cmd_rmi(ctx: Context, args: argparse.Namespace) -> int:
    from ..errors import Conflict
    from ..store.gc import Removal, collect_garbage
    store = ctx.store
    status = 0
    sweep = True
    said: list[tuple[bool, str]] = []  # (an error?, the line): said once the index is written
    with store.lock():
        removal = Removal(store)
        for text in args.images:
            try:
                said += [(False, f"{kind}: {value}") for kind, value in removal.remove(text, args.force)]
            except NotFound as exc:
                said.append((True, f"Error: {exc}"))
                status = 1
            except UsageError:
                raise
            except Conflict as exc:
                said.append((True, f"Error: {exc}"))
                status = exc.exit_code
            except AirgapError as exc:  # the store is not what it should be: sweep nothing
                said.append((True, f"Error: {exc}"))
                status = exc.exit_code
                sweep = False
        removal.write()
        for error, line in said:
            (ctx.info if error else ctx.print)(line)
        if sweep:
            collect_garbage(store)
    return status
