"""``uniql tokens``: create, list and revoke API tokens (needs an admin token)."""

from __future__ import annotations

import click

from services.admin_cli.client import EXIT_USAGE, ApiClient, CliError, with_client
from services.admin_cli.output import echo_json, echo_table, json_option, short_time

SCOPES = ("admin", "submit", "pull")


@click.group(name="tokens")
def tokens() -> None:
    """Create, list and revoke API tokens.

    Exit codes: 0 ok, 1 API error, 2 usage, 3 server unreachable, 4 authentication failed, 5 not found.
    """


@tokens.command(name="create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(SCOPES),
              help="Scope to grant; repeat for several. admin implies submit, submit implies pull.")
@click.option("--namespace", help="Namespace of the token [default: the caller's namespace].")
@click.option("--create-namespace", is_flag=True,
              help="Create --namespace first when it does not exist (needs an admin token without a namespace).")
@click.option("--expires-in-days", type=click.IntRange(1, 3650), help="Days until the token expires [default: never].")
@json_option
@with_client
def create_token(client: ApiClient, name: str, scopes: tuple[str, ...], namespace: str | None,
                 create_namespace: bool, expires_in_days: int | None, as_json: bool) -> None:
    """Create a token NAME and print its secret, which the server does not show again."""
    if create_namespace:
        if namespace is None:
            raise CliError("--create-namespace needs --namespace NAME", EXIT_USAGE)
        known = {item["name"] for item in client.get_json("/v1/namespaces")}
        if namespace not in known:
            client.request("POST", "/v1/namespaces", json={"name": namespace})
            click.echo(f"namespace {namespace} created", err=True)
    body = {"name": name, "scopes": sorted(set(scopes)), "namespace": namespace, "expires_in_days": expires_in_days}
    token = client.request("POST", "/v1/tokens", json=body).json()
    if as_json:
        echo_json(token)
        return
    click.echo(f"token {token['id']} ({token['name']}, {' '.join(token['scopes'])}, "
               f"namespace {token['namespace'] or 'all'}) created; store the secret now, it is not shown again:",
               err=True)
    click.echo(token["secret"])


@tokens.command(name="list")
@json_option
@with_client
def list_tokens(client: ApiClient, as_json: bool) -> None:
    """List live tokens (without their secrets)."""
    items = client.get_json("/v1/tokens")
    if as_json:
        echo_json(items)
        return
    echo_table(["ID", "NAME", "PREFIX", "NAMESPACE", "SCOPES", "EXPIRES", "LAST USED"],
               [[token["id"], token["name"], token["prefix"], token["namespace"] or "(all)", " ".join(token["scopes"]),
                 short_time(token["expires_at"]), short_time(token["last_used_at"])] for token in items])


@tokens.command(name="revoke")
@click.argument("token_id", type=click.IntRange(1))
@with_client
def revoke_token(client: ApiClient, token_id: int) -> None:
    """Revoke the token TOKEN_ID; requests with it fail from now on."""
    client.request("DELETE", f"/v1/tokens/{token_id}")
    click.echo(f"token {token_id} revoked")
