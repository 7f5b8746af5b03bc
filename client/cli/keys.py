"""`hub keys`: your signing keys, their registration on the hub, and whom you trust."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fnhub import keyring
from fnhub.cli import context
from fnhub.config import normalize_url
from fnhub.core.console import console, emit_json
from fnhub.core.errors import InvalidInput
from fnhub.core.names import check_namespace
from fnhub.core.signing import key_id, load_public_key, public_key_to_b64
from fnhub.trust import TrustStore

app = typer.Typer(help="Manage signing keys and trust.\n\n"
                       "Example: `hub keys generate`, then `hub keys register --namespace alice`",
                  no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.command()
def generate(name: Annotated[str, typer.Option(help="Key name.")] = "default",
             as_json: JsonOpt = False) -> None:
    """Create an Ed25519 signing key (private key 0600 under the config dir); prints its id.

    Example: `hub keys generate --name ci`
    """
    key = keyring.generate(context.config().keys_dir, name)
    if as_json:
        emit_json({"name": key.name, "keyid": key.keyid, "path": str(key.path)})
    else:
        console.print(key.keyid)
        console.print(f"[dim]private key: {key.path}[/dim]")


@app.command("list")
def list_keys(as_json: JsonOpt = False) -> None:
    """List your signing keys and the keys you trust or untrust explicitly.

    Example: `hub keys list --json`
    """
    cfg = context.config()
    keys = [{"name": k.name, "keyid": k.keyid, "path": str(k.path)}
            for k in keyring.list_keys(cfg.keys_dir)]
    trust = TrustStore(cfg.config_dir).data
    trusted, untrusted = trust.explicit, trust.untrusted
    if as_json:
        emit_json({"keys": keys, "trusted": {ns: sorted(ks) for ns, ks in trusted.items()},
                   "untrusted": {ns: sorted(ks) for ns, ks in untrusted.items() if ks}})
        return
    table = Table("name", "key id", "path", title="your keys")
    for k in keys:
        table.add_row(k["name"], k["keyid"], k["path"])
    console.print(table)
    for ns, ks in sorted(trusted.items()):
        console.print(f"trusted for {ns}: " + ", ".join(sorted(ks)))
    for ns, ids in sorted(untrusted.items()):
        if ids:
            console.print(f"untrusted for {ns}: " + ", ".join(sorted(ids)))


@app.command()
def register(
    key: Annotated[str | None, typer.Argument(help="Key NAME or public/private key FILE "
                                                      "(default: your only key).")] = None,
    namespace: Annotated[str | None, typer.Option(
        help="Namespace whose packages this key signs (created if free).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a public key with the hub for a namespace.

    Example: `hub keys register default --namespace alice`
    """
    cfg = context.config()
    with context.client(context.default_hub(cfg)) as client:
        if namespace is None:
            owned = client.whoami().namespaces
            if len(owned) != 1:
                raise InvalidInput("say which namespace the key is for with --namespace NS")
            namespace = owned[0]
        path = Path(key).expanduser() if key else None
        if path is not None and path.is_file() and path.suffix != ".key":
            public = load_public_key(path)
            name = path.stem
        else:
            local = keyring.find(cfg.keys_dir, key)
            public, name = local.load().public_key(), local.name
        info = client.register_key(namespace, public_key_to_b64(public), name)
    if as_json:
        emit_json(info)
    else:
        console.print(f"registered {info.keyid} for namespace {info.namespace}")


@app.command()
def trust(
    namespace: Annotated[str, typer.Argument(help="Namespace.")],
    key: Annotated[str, typer.Argument(help="KEYID (64 hex) or a public key FILE.")],
) -> None:
    """Trust a key for a namespace, in addition to the keys first seen for it.

    Example: `hub keys trust library 3f2a...` (after a publisher rotated keys)
    """
    store = TrustStore(context.config().config_dir)
    path = Path(key).expanduser()
    if path.is_file():
        public = load_public_key(path)
        store.trust(check_namespace(namespace), key_id(public), public_key_to_b64(public))
        console.print(f"trusting {key_id(public)} for {namespace}")
    else:
        store.trust(check_namespace(namespace), key)
        console.print(f"trusting {key} for {namespace}")


@app.command()
def untrust(
    namespace: Annotated[str, typer.Argument(help="Namespace.")],
    keyid: Annotated[str, typer.Argument(help="KEYID (64 hex).")],
) -> None:
    """Stop trusting a key for a namespace, even one first seen for it.

    Example: `hub keys untrust alice 3f2a...` (a key its publisher lost)
    """
    TrustStore(context.config().config_dir).untrust(check_namespace(namespace), keyid)
    console.print(f"no longer trusting {keyid} for {namespace}")


@app.command("trust-hub")
def trust_hub(
    url: Annotated[str, typer.Argument(help="The hub's URL, as configured.")],
    keyid: Annotated[str, typer.Argument(help="Its index key's id (64 hex; `hub serve` prints "
                                              "it at start).")],
) -> None:
    """Pin a hub's index key by id: for a first contact you want checked, or after the hub's
    operators replaced the key outside its rotation chain.

    Example: `hub keys trust-hub https://hub.example.com 9c1e...`
    """
    TrustStore(context.config().config_dir).pin_hub_key(normalize_url(url), keyid, None)
    console.print(f"trusting index key {keyid} for {normalize_url(url)}")
