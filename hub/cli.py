"""The `hub` command. A bad command line or configuration prints one sentence and exits 2."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import click
import sqlalchemy.exc

from hub.settings import ConfigError, Settings, load_settings

EXIT_USAGE = 2


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"hub: {message.rstrip('.')}.", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Permit hub: residence-permit registry and inter-departmental exchange."""


def _settings(**overrides: Any) -> Settings:
    return load_settings(**{key: value for key, value in overrides.items() if value is not None})


@cli.command()
@click.option("--host", help="Address to listen on (default from settings: 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default 8000).")
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes (default 1).")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the hub over HTTP (OpenAPI at /docs)."""
    import uvicorn

    from hub.app import build_hub

    settings = _settings(host=host, port=port, workers=workers)
    build_hub(settings).check_database()  # fail here, in one sentence, not in every worker
    uvicorn.run(
        "hub.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="info",
        access_log=False,
    )


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations and create the first token-signing key."""
    from hub.app import build_hub
    from hub.migrate import upgrade

    settings = _settings()
    hub = build_hub(settings, create_secret=True)
    upgrade(settings.database_url)
    hub.prepare()
    click.echo(f"database at head: {hub.engine.url.render_as_string(hide_password=True)}")


@cli.group()
def clients() -> None:
    """OAuth 2.0 clients of the departments."""


def _scope_list(values: tuple[str, ...]) -> list[str]:
    return [scope for value in values for scope in value.replace(",", " ").split()]


@clients.command("add")
@click.option("--department", required=True, help="Owning department, e.g. housing.")
@click.option("--scopes", required=True, multiple=True, help="Scopes, space- or comma-separated.")
@click.option(
    "--jwks-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Public JWKS for private_key_jwt authentication.",
)
@click.option("--secret", is_flag=True, help="Authenticate with a client secret (default).")
@click.option("--terminal", is_flag=True, help="A service-window terminal of the department.")
@click.option("--client-id", help="Choose the client id (default: generated).")
def clients_add(
    department: str,
    scopes: tuple[str, ...],
    jwks_file: Path | None,
    secret: bool,
    terminal: bool,
    client_id: str | None,
) -> None:
    """Register a client; a secret is printed once and stored only hashed."""
    from hub.app import build_hub
    from hub.auth.domain import ClientKind
    from hub.auth.service import ClientSpecError, add_client, parse_jwks
    from hub.db import unit_of_work

    if secret and jwks_file:
        _fail("give either --secret or --jwks-file, not both")
    hub = build_hub(_settings())
    try:
        jwks = parse_jwks(jwks_file.read_text()) if jwks_file else None
        with unit_of_work(hub.engine) as session:
            created = add_client(
                session,
                hub.audit,
                hub.keyring.derive("client-secret"),
                hub.clock.now(),
                department=department,
                scopes=_scope_list(scopes),
                kind=ClientKind.WINDOW_TERMINAL if terminal else ClientKind.DEPARTMENT,
                jwks=jwks,
                client_id=client_id,
            )
    except ClientSpecError as exc:
        _fail(str(exc))
    click.echo(f"client_id: {created.client_id}")
    if created.secret:
        click.echo(f"client_secret: {created.secret}")


@cli.group()
def keys() -> None:
    """Token-signing keys."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Sign new tokens with a new key; the old one stays published until its tokens expire."""
    from hub.app import build_hub
    from hub.auth.service import rotate_signing_key
    from hub.db import unit_of_work

    hub = build_hub(_settings())
    with unit_of_work(hub.engine) as session:
        kid = rotate_signing_key(session, hub.audit, hub.key_password, hub.clock.now())
    click.echo(f"signing key: {kid}")


@cli.command()
@click.option("--holders", type=click.IntRange(1, 1_000_000), default=10_000, show_default=True)
@click.option("--seed", type=int, default=2026, show_default=True)
def demo(holders: int, seed: int) -> None:
    """Load a generated, realistic data set into an empty database (through the services)."""
    from hub.app import build_hub
    from hub.demo import load_demo

    hub = build_hub(_settings())
    hub.check_database()
    hub.prepare()
    try:
        summary = load_demo(
            hub,
            holders,
            seed,
            progress=lambda done: click.echo(f"  {done:,} of {holders:,} holders", err=True),
        )
    except ValueError as exc:
        _fail(str(exc))
    for line in summary.lines():
        click.echo(line)


@cli.group()
def jobs() -> None:
    """The daily jobs."""


@jobs.command("run")
def jobs_run() -> None:
    """Run the expiry sweep, endorsement reminders and overdue flags once, now."""
    from hub.app import build_hub
    from hub.jobs import run_daily_jobs

    counts = run_daily_jobs(build_hub(_settings()))
    click.echo(", ".join(f"{name}: {count}" for name, count in counts.items()))


@cli.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
def audit_verify() -> None:
    """Check the whole chain; exit 1 naming the first altered, deleted or inserted row."""
    from hub.app import build_hub
    from hub.db import unit_of_work

    hub = build_hub(_settings())
    with unit_of_work(hub.engine) as session:
        report = hub.audit.verify(session)
    if report.finding is None:
        click.echo(f"audit log intact: {report.rows_checked} rows")
        return
    finding = report.finding
    _fail(f"audit log broken at row {finding.seq}: {finding.kind.value} ({finding.explanation})", 1)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.UsageError as exc:
        _fail(exc.format_message())
    except click.ClickException as exc:
        _fail(exc.format_message())
    except click.Abort:
        _fail("aborted", 1)
    except ConfigError as exc:
        _fail(str(exc))
    except sqlalchemy.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "unreachable"
        _fail(
            f"cannot use the database ({reason}); check HUB_DATABASE_URL and run `hub db upgrade`"
        )
