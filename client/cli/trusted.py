"""`hub trusted-publisher`: let a CI workflow publish into a namespace without a stored token."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from fnhub.cli import context
from fnhub.core.api_models import TrustedPublisherCreate
from fnhub.core.console import console, emit_json

app = typer.Typer(help="Trusted publishing: CI workflows that publish with their OIDC token.\n\n"
                       "Example: `hub trusted-publisher add alice --repository alice/tools`",
                  no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
NamespaceArg = Annotated[str, typer.Argument(help="The namespace.")]


@app.command()
def add(
    namespace: NamespaceArg,
    repository: Annotated[str, typer.Option(help="OWNER/REPO (GitLab: GROUP/PROJECT).")],
    issuer: Annotated[str, typer.Option(help="github, gitlab, or an issuer URL the hub "
                                             "trusts.")] = "github",
    workflow: Annotated[str, typer.Option(help="Only this workflow file, e.g. release.yml "
                                               "(GitLab: .gitlab-ci.yml).")] = "",
    ref: Annotated[str, typer.Option(help="Only this ref (glob), e.g. refs/tags/v*.")] = "",
    environment: Annotated[str, typer.Option(help="Only jobs in this deployment "
                                                  "environment.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Trust a CI workflow to publish into NAMESPACE (you must own it).

    Example: `hub trusted-publisher add alice --repository alice/tools --workflow release.yml
    --ref 'refs/tags/v*'`
    """
    request = TrustedPublisherCreate(issuer=issuer, repository=repository, workflow=workflow,
                                     ref=ref, environment=environment)
    with context.client(context.default_hub(context.config())) as client:
        info = client.add_trusted_publisher(namespace, request)
    if as_json:
        emit_json(info)
    else:
        console.print(f"trusted publisher {info.id} added to {info.namespace}: "
                      f"{info.repository} at {info.issuer}")


@app.command("list")
def list_publishers(namespace: NamespaceArg, as_json: JsonOpt = False) -> None:
    """List the CI workflows trusted to publish into NAMESPACE.

    Example: `hub trusted-publisher list alice`
    """
    with context.client(context.default_hub(context.config())) as client:
        rules = client.trusted_publishers(namespace)
    if as_json:
        emit_json(rules)
        return
    table = Table("id", "issuer", "repository", "workflow", "ref", "environment",
                  title=f"trusted publishers of {namespace}")
    for rule in rules:
        table.add_row(str(rule.id), rule.issuer, rule.repository, rule.workflow or "any",
                      rule.ref or "any", rule.environment or "any")
    console.print(table)


@app.command()
def remove(namespace: NamespaceArg,
           publisher_id: Annotated[int, typer.Argument(metavar="ID", help="From `list`.")]
           ) -> None:
    """Stop trusting a CI workflow (tokens it minted expire within minutes).

    Example: `hub trusted-publisher remove alice 3`
    """
    with context.client(context.default_hub(context.config())) as client:
        client.remove_trusted_publisher(namespace, publisher_id)
    console.print(f"removed trusted publisher {publisher_id} from {namespace}")
