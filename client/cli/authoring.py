"""Making and publishing functions: init, pack, publish, yank, unyank, tag."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from fnhub import keyring, oidc
from fnhub.cli import context, images
from fnhub.core.console import console, emit_json
from fnhub.core.errors import Conflict
from fnhub.core.manifest import MANIFEST_FILE, load_manifest
from fnhub.core.packaging import pack as pack_folder
from fnhub.core.publishing import catalog_folders, publish_catalog
from fnhub.introspect import manifest_from_code, starter_manifest
from fnhub.store import write_atomic

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
DirArg = Annotated[Path, typer.Argument(help="The function folder.")]


def init(
    directory: DirArg = Path("."),
    from_code: Annotated[str | None, typer.Option(
        "--from-code", help="FILE:CALLABLE (FILE as a path from here, inside DIR) whose type "
                            "hints and docstring give the inputs and outputs.")] = None,
    name: Annotated[str | None, typer.Option(help="Function name (default: the folder's)."
                                                )] = None,
    namespace: Annotated[str, typer.Option(help="Namespace to publish into.")] = "library",
) -> None:
    """Write a function.yaml for a folder.

    Examples: `hub init my_fn --from-code my_fn/clean.py:clean --namespace alice`,
    `hub init . --from-code clean.py:clean --namespace alice`, `hub init my_fn`
    """
    target = directory / MANIFEST_FILE
    if target.exists():
        raise Conflict(f"{target} exists already; edit it instead")
    fn_name = name or directory.resolve().name.lower().replace(" ", "-")
    if from_code:
        derived = manifest_from_code(directory, from_code, fn_name, namespace)
        manifest, files = derived.manifest, derived.files
    else:
        directory.mkdir(parents=True, exist_ok=True)
        manifest, files = starter_manifest(directory, fn_name, namespace), {}
    for file_name in files:
        if (directory / file_name).exists():
            raise Conflict(f"{directory / file_name} exists already; move it away first")
    for file_name, text in files.items():
        write_atomic(directory / file_name, text.encode())
        console.print(f"wrote {directory / file_name} (reads and writes the DataFrames)")
    write_atomic(target, manifest.to_yaml().encode())
    console.print(f"wrote {target}")


def pack(
    directory: DirArg = Path("."),
    output: Annotated[Path | None, typer.Option("-o", "--output",
                                                   help="Archive path.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Build the deterministic package archive and print its sha256 digest.

    Example: `hub pack catalog/describe -o describe.tar.gz`
    """
    manifest = load_manifest(directory)
    out = output or Path(f"{manifest.metadata.name}-{manifest.metadata.version}.tar.gz")
    result = pack_folder(directory, out)
    if as_json:
        emit_json({"path": str(out), "digest": result.digest, "size": result.size})
    else:
        print(f"{result.digest}  {out}")


def publish(
    directory: DirArg = Path("."),
    key: Annotated[str | None, typer.Option(help="Signing key NAME or FILE "
                                                    "(default: your only key).")] = None,
    image: Annotated[bool, typer.Option(
        "--image/--no-image", help="Also build the container image (DOCKER_HOST), push it to "
                                   "the hub and sign its digest.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Sign and publish a function folder to the hub.

    In a CI job with an OIDC token (GitHub Actions with `id-token: write`, or GitLab's
    FNHUB_ID_TOKEN) and no FNHUB_TOKEN, a trusted publisher's token is minted first.

    Examples: `hub publish ./my_fn --key default`, `hub publish ./my_fn --image`
    """
    from fnhub.publish import publish_folder  # loads the docker SDK (for --image)

    cfg = context.config()
    signing_key = keyring.find(cfg.keys_dir, key).load()
    with tempfile.TemporaryDirectory(prefix="fnhub-publish-") as tmp:
        hub = oidc.publish_hub(context.default_hub(cfg), directory)  # CI: trusted publishing
        detail = publish_folder(directory, hub, signing_key, Path(tmp), image=image,
                                log=images.log)
    if as_json:
        emit_json(detail)
        return
    console.print(f"published {detail.namespace}/{detail.name}@{detail.version} "
                  f"({detail.package.digest})")
    if detail.image:
        console.print(f"image {detail.image.ref}@{detail.image.digest}")


def yank(
    uri: Annotated[str, typer.Argument(help="hub://NS/NAME:VERSION")],
    reason: Annotated[str, typer.Option(help="Why users should not use it.")],
) -> None:
    """Hide a version from ranges and `latest` (exact pins still install, with a warning).

    Example: `hub yank hub://alice/clean:1.1.0 --reason "drops rows with NaN labels"`
    """
    parsed = context.exact_uri(uri)
    with context.client(context.hub_for(context.config(), parsed)) as client:
        client.yank(parsed.namespace, parsed.name, parsed.version or "", reason)
    console.print(f"yanked {parsed.ref}@{parsed.version}")


def unyank(uri: Annotated[str, typer.Argument(help="hub://NS/NAME:VERSION")]) -> None:
    """Make a yanked version available again.

    Example: `hub unyank hub://alice/clean:1.1.0`
    """
    parsed = context.exact_uri(uri)
    with context.client(context.hub_for(context.config(), parsed)) as client:
        client.unyank(parsed.namespace, parsed.name, parsed.version or "")
    console.print(f"unyanked {parsed.ref}@{parsed.version}")


def tag(
    uri: Annotated[str, typer.Argument(help="hub://NS/NAME:VERSION")],
    tag_name: Annotated[str, typer.Argument(metavar="TAG", help="e.g. stable")],
) -> None:
    """Point a tag at a version.

    Example: `hub tag hub://alice/clean:1.0.0 stable`
    """
    parsed = context.exact_uri(uri)
    with context.client(context.hub_for(context.config(), parsed)) as client:
        client.tag(parsed.namespace, parsed.name, tag_name, parsed.version or "")
    console.print(f"{parsed.ref}:{tag_name} -> {parsed.version}")


catalog_app = typer.Typer(help="Publish a curated catalog of functions.\n\n"
                               "Example: `hub catalog publish catalog --key library`",
                          no_args_is_help=True)


@catalog_app.command("publish")
def catalog_publish(
    directory: Annotated[Path, typer.Argument(help="Folder of function folders.")] = Path(
        "catalog"),
    key: Annotated[str | None, typer.Option(help="Signing key NAME or FILE "
                                                    "(default: your only key).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Publish every function under DIR (signed), skipping versions already published with the
    same digest; a version published with other content is an error.

    Example: `hub catalog publish catalog --key library`
    """
    from fnhub.publish import hub_digest, upload  # loads the docker SDK

    cfg = context.config()
    signing_key = keyring.find(cfg.keys_dir, key).load()
    with context.client(context.default_hub(cfg)) as client, \
            tempfile.TemporaryDirectory(prefix="fnhub-catalog-") as tmp:
        results = publish_catalog(catalog_folders(directory), signing_key, Path(tmp),
                                  published_digest=hub_digest(client),
                                  send=lambda prepared: upload(client, prepared))
    if as_json:
        emit_json([{"ref": r.ref, "digest": r.digest, "status": r.status} for r in results])
        return
    for r in results:
        console.print(f"{r.status:>9}  {r.ref}  {r.digest[:19]}…")
