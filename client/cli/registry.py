"""Finding and installing functions: search, show, install, list, uninstall, verify."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fnhub.cli import context
from fnhub.core.console import console, emit_json
from fnhub.core.errors import NotFound
from fnhub.core.uri import parse_uri
from fnhub.core.versions import Candidate, resolve
from fnhub.lockfile import LOCK_FILE, LockFile
from fnhub.store import Store

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def search(
    query: Annotated[str, typer.Argument(help="Words to look for in names, descriptions, "
                                              "categories and labels.")] = "",
    category: Annotated[str | None, typer.Option(help="Only this category.")] = None,
    kind: Annotated[str | None, typer.Option(
        help="job, serving, function (either) or feature-set.")] = None,
    sort: Annotated[str, typer.Option(help="relevance, downloads, updated or name.")] = "relevance",
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Search the hub.

    Examples: `hub search describe`, `hub search --category data-analysis --sort downloads`
    """
    cfg = context.config()
    with context.client(context.default_hub(cfg)) as hub:
        results = hub.search(query, category=category, kind=kind, sort=sort, limit=limit)
    if as_json:
        emit_json(results)
        return
    if not results.items:
        console.print(f"no functions match {query!r}")
        return
    table = Table("function", "latest", "kind", "downloads", "description")
    for item in results.items:
        table.add_row(f"{item.namespace}/{item.name}", item.latest_version or "-", item.kind,
                      str(item.downloads), item.description)
    console.print(table)
    if results.total > len(results.items):
        console.print(f"[dim]{len(results.items)} of {results.total} shown[/dim]")


def show(uri: Annotated[str, typer.Argument(help="hub://[NS/]NAME[:VERSION]")],
         as_json: JsonOpt = False) -> None:
    """Show a function's card: versions, inputs and outputs, and how to use it.

    Example: `hub show hub://describe:^1`
    """
    cfg = context.config()
    parsed = parse_uri(uri)
    hub, resolution = context.installer(cfg).resolve_online(parsed)
    with context.client(hub) as client:
        detail = client.function(parsed.namespace, parsed.name)
        version = client.version(parsed.namespace, parsed.name, resolution.version)
    if as_json:
        emit_json({"function": detail.model_dump(mode="json"),
                   "version": version.model_dump(mode="json")})
        return
    meta, spec = version.manifest["metadata"], version.manifest["spec"]
    console.print(f"[bold]{detail.namespace}/{detail.name}[/bold] {version.version}"
                  f"{'  [red](yanked)[/red]' if version.yanked else ''}")
    console.print(meta.get("description", ""))
    console.print(f"kind: {detail.kind}   digest: {version.package.digest}   "
                  f"size: {version.package.size} B   downloads: {detail.downloads}")
    if version.signatures:
        console.print("signed by: " + ", ".join(s.keyid[:16] for s in version.signatures))
    if detail.kind == "feature-set":
        console.print(f"timestamp: {spec['timestamp']}   ttl: {spec.get('ttl') or 'no limit'}"
                      f"   transform: {(spec.get('transform') or {}).get('uses', 'none')}")
        schema = Table("role", "column", "type", title="schema")
        for role, key in (("entity", "entities"), ("feature", "features")):
            for column in spec[key]:
                schema.add_row(role, column["name"], column["type"])
        console.print(schema)
    else:
        ports = Table("", "name", "type", "default", "description", title="inputs and outputs")
        for direction, key in (("in", "inputs"), ("out", "outputs")):
            for port in spec.get(key, []):
                default = repr(port["default"]) if "default" in port and direction == "in" else ""
                ports.add_row(direction, port["name"], port["type"], default,
                              port.get("description", ""))
        console.print(ports)
    versions = Table("version", "published", "status")
    for v in reversed(detail.versions):
        status = f"yanked: {v.yank_reason}" if v.yanked else ""
        versions.add_row(v.version, v.published_at.strftime("%Y-%m-%d"), status)
    console.print(versions)
    if detail.tags:
        console.print("tags: " + ", ".join(f"{t}={v}" for t, v in sorted(detail.tags.items())))
    ref = f"{detail.namespace}/{detail.name}"
    console.print(f"\n  hub install hub://{ref}:{version.version}\n"
                  f"  fnhub.import_function(\"hub://{ref}:^{version.version.split('.')[0]}\")")


def install(
    uris: Annotated[list[str], typer.Argument(help="hub://[NS/]NAME[:VERSION][@sha256:HEX]")],
    locked: Annotated[bool, typer.Option(help=f"Install exactly what ./{LOCK_FILE} pins.")] = False,
    insecure_skip_verify: Annotated[bool, typer.Option(
        "--insecure-skip-verify", help="Do not check signatures (dangerous).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Install functions after verifying their signatures and digests.

    Examples: `hub install hub://describe:^1`, `hub install hub://alice/clean@sha256:...`
    Each install is recorded in ./fnhub.lock; `--locked` installs exactly what it pins.
    """
    cfg = context.config()
    inst = context.installer(cfg, insecure_skip_verify)
    lock_path = Path(LOCK_FILE)
    lock = LockFile.read(lock_path)
    records = []
    for uri in uris:
        target = lock.pinned(uri, lock_path) if locked else uri
        record = inst.ensure(parse_uri(target))
        records.append(record)
        lock.functions[uri] = record.uri
        if not as_json:
            signer = f"signed by {record.keyid[:16]}" if record.keyid else "[red]UNVERIFIED[/red]"
            console.print(f"installed {record.ref}@{record.version} ({record.digest[:19]}…, "
                          f"{signer})")
    if not locked and not cfg.offline:
        lock.write(lock_path)
    if as_json:
        emit_json(records)


def list_installed(as_json: JsonOpt = False) -> None:
    """List installed functions."""
    records = Store(context.config().home).records()
    if as_json:
        emit_json(records)
        return
    table = Table("function", "version", "hub", "digest", "verified")
    for r in records:
        table.add_row(r.ref, r.version + (" (yanked)" if r.yanked else ""), r.hub,
                      r.digest[:19] + "…", "yes" if r.keyid else "NO")
    console.print(table if records else "nothing installed")


def uninstall(uri: Annotated[str, typer.Argument(help="hub://[NS/]NAME[:VERSION]")]) -> None:
    """Remove installed versions of a function (all of them unless a version is given)."""
    parsed = parse_uri(uri)
    store = Store(context.config().home)
    records = store.records(parsed.namespace, parsed.name)
    if parsed.version:
        chosen = resolve(parsed.version, [Candidate(r.version, False) for r in records],
                         {}, ref=parsed.ref) if records else None
        records = [r for r in records if r.version == chosen]
    if not records:
        raise NotFound(f"{parsed.ref} is not installed", hint="`hub list` shows what is")
    for record in records:
        store.remove(record)
        console.print(f"removed {record.ref}@{record.version}")


def verify(uri: Annotated[str, typer.Argument(help="hub://[NS/]NAME[:VERSION]")],
           as_json: JsonOpt = False) -> None:
    """Check a published version: signature, key trust and package digest.

    Example: `hub verify hub://describe:1.0.0`
    """
    cfg = context.config()
    result = context.installer(cfg).verify_remote(parse_uri(uri))
    if as_json:
        emit_json(result)
        return
    console.print(f"[green]verified[/green] {result['function']}@{result['version']}: "
                  f"signed by {result['keyid']}, digest {result['digest']}")
