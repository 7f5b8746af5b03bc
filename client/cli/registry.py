"""Finding and installing functions: search, show, install, list, uninstall, verify."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from fnhub.api_client import search_hubs
from fnhub.cli import context
from fnhub.core.api_models import SortOrder
from fnhub.core.console import console, emit_json, warn
from fnhub.core.errors import HubAnswerMismatch, NotFound
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
    sort: Annotated[SortOrder, typer.Option(
        help="Order of the results.")] = "relevance",
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Search the configured hubs, in order; each result names its hub.

    A query that matches nothing on a hub is retried there with its typos corrected.

    Examples: `hub search describe`, `hub search --category data-analysis --sort downloads`
    """
    cfg = context.config()
    context.default_hub(cfg)  # refuses offline mode
    results = search_hubs(cfg.hubs, query, category=category, kind=kind, sort=sort, limit=limit)
    if as_json:
        emit_json(results)
        return
    for status in results.hubs:
        if status.error:
            warn(f"skipped {status.url}: {status.error}")
        elif status.suggestion:
            console.print(f"nothing matches {query!r} on {status.url}: showing results for "
                          f"{status.suggestion!r}")
    if not results.items:
        console.print(f"no functions match {query!r}")
        return
    from rich.table import Table  # only where a table is drawn: `hub install` never needs it

    table = Table("function", "latest", "kind", "downloads", "hub", "description")
    for item in results.items:
        table.add_row(f"{item.namespace}/{item.name}", item.latest_version or "-", item.kind,
                      str(item.downloads), urlsplit(item.hub).netloc, item.description)
    console.print(table)
    if results.total > len(results.items):
        more = "+" if results.total_capped else ""
        console.print(f"[dim]{len(results.items)} of {results.total}{more} shown[/dim]")


def show(uri: Annotated[str, typer.Argument(help="hub://[NS/]NAME[:VERSION]")],
         as_json: JsonOpt = False) -> None:
    """Show a function's card: versions, inputs and outputs, and how to use it.

    Example: `hub show hub://describe:^1`
    """
    cfg = context.config()
    parsed = parse_uri(uri)
    target = context.installer(cfg).resolve_online(parsed)
    with context.client(target.hub) as client:
        detail = client.function(parsed.namespace, parsed.name)
        version = client.version(parsed.namespace, parsed.name, target.version)
    if ((detail.namespace, detail.name) != (parsed.namespace, parsed.name)
            or (version.namespace, version.name, version.version) != (
                parsed.namespace, parsed.name, target.version)):
        raise HubAnswerMismatch(f"asked for the card of {target.subject}, the hub answered with "
                                f"{version.namespace}/{version.name}@{version.version}"[:300])
    if as_json:
        emit_json({"function": detail.model_dump(mode="json"),
                   "version": version.model_dump(mode="json")})
        return
    from rich.table import Table

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
    ctx: typer.Context,
    uris: Annotated[list[str] | None, typer.Argument(
        help="hub://[NS/]NAME[:VERSION][@sha256:HEX] (with --locked and none: every function "
             f"./{LOCK_FILE} pins)")] = None,
    locked: Annotated[bool, typer.Option(help=f"Install exactly what ./{LOCK_FILE} pins.")] = False,
    no_lock: Annotated[bool, typer.Option("--no-lock", help=f"Do not record the installs in "
                                                            f"./{LOCK_FILE}.")] = False,
    insecure_skip_verify: Annotated[bool, typer.Option(
        "--insecure-skip-verify", help="Do not check signatures (dangerous).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Install functions after verifying their signatures and digests.

    Examples: `hub install hub://describe:^1`, `hub install hub://alice/clean@sha256:...`,
    `hub install --locked` (everything ./fnhub.lock pins, exactly).
    Each install is recorded in ./fnhub.lock unless --no-lock is given.
    """
    lock_path = Path(LOCK_FILE)
    lock = LockFile.read(lock_path)
    if not uris and not locked:
        raise context.usage_error(ctx, "name at least one URI, or give --locked to install "
                                       f"everything ./{LOCK_FILE} pins")
    if locked and not uris and not lock.functions:
        raise NotFound(f"./{LOCK_FILE} pins nothing", hint="run `hub install URI...` first")
    cfg = context.config()
    inst = context.installer(cfg, insecure_skip_verify)
    records = []
    with inst.session():  # one connection per hub for all of them
        for uri in uris or list(lock.functions):
            target = lock.pinned(uri, lock_path) if locked else uri
            record = inst.ensure(parse_uri(target))
            records.append(record)
            lock.functions[uri] = record.uri
            if not as_json:
                signer = (f"signed by {record.keyid[:16]}" if record.keyid
                          else "[red]UNVERIFIED[/red]")
                console.print(f"installed {record.ref}@{record.version} "
                              f"({record.digest[:19]}…, {signer})")
    if not locked and not no_lock and not cfg.offline:
        lock.write(lock_path)
        if not as_json:
            console.print(f"recorded in ./{LOCK_FILE} (`hub install --locked` reinstalls "
                          "exactly these; --no-lock skips this)", highlight=False)
    if as_json:
        emit_json(records)


def list_installed(as_json: JsonOpt = False) -> None:
    """List installed functions.

    Example: `hub list --json` (each install's folder included)
    """
    records = Store(context.config().home).records()
    if as_json:
        emit_json(records)
        return
    from rich.table import Table

    table = Table("function", "version", "hub", "digest", "verified")
    for r in records:
        table.add_row(r.ref, r.version + (" (yanked)" if r.yanked else ""), r.hub,
                      r.digest[:19] + "…", "yes" if r.keyid else "NO")
    console.print(table if records else "nothing installed")


def uninstall(uri: Annotated[str, typer.Argument(help="hub://[NS/]NAME[:VERSION]")]) -> None:
    """Remove installed versions of a function (all of them unless a version is given).

    Example: `hub uninstall hub://describe:1.0.0`
    """
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
    """Check a published version (signature, key trust, package digest) and, when it is
    installed, the installed files against the digest recorded at install.

    Example: `hub verify hub://describe:1.0.0`
    """
    cfg = context.config()
    result = context.installer(cfg).verify(parse_uri(uri))
    if as_json:
        emit_json(result)
        return
    console.print(f"[green]verified[/green] {result['function']}@{result['version']}: "
                  f"signed by {result['keyid']}, digest {result['digest']}")
    if "installed" in result:
        console.print(f"[green]installed copy intact[/green]: {result['installed']}")
