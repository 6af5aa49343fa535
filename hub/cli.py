"""The `hub` command. A bad command line or configuration prints one sentence and exits 2."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlmodel import Session

    from hub.audit import Actor
    from hub.auth.staff import Credentials
    from hub.composition import Hub
    from hub.settings import Settings
    from hub.text import Language

# Each command imports what it uses when it runs: `hub --help` loads click and this module only,
# and no command loads the web application.

EXIT_USAGE = 2
_Done = TypeVar("_Done")


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"hub: {message.rstrip('.')}.", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Permit hub: residence-permit registry and inter-departmental exchange."""


def _cli_actor() -> Actor:
    """The operator at the console, as auth's admin commands name it."""
    from hub.audit import Actor

    return Actor("hub-admin", "hub")


def _settings(**overrides: Any) -> Settings:
    from hub.settings import load_settings

    return load_settings(**{key: value for key, value in overrides.items() if value is not None})


def _hub(settings: Settings | None = None) -> Hub:
    """The hub of a command that uses the database: migrated, and keyed by this host's master
    secret, both checked before the command reads or writes anything else."""
    from hub.composition import build_hub

    hub = build_hub(settings or _settings())
    hub.check_database()
    hub.check_master_key()
    return hub


@cli.command()
@click.option("--host", help="Address to listen on (default from settings: 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default 8000).")
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes (default 1).")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the hub over HTTP (OpenAPI at /docs)."""
    _metrics_directory()  # before anything imports prometheus-client
    import uvicorn

    from hub.ops.logs import logging_config

    settings = _settings(host=host, port=port, workers=workers)
    hub = _hub(settings)  # fail here, in one sentence, not in every worker
    hub.check_relay()
    uvicorn.run(
        "hub.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=logging_config(),
        access_log=False,  # the hub's own access line has the route and the request id
    )


def _metrics_directory() -> None:
    """Where the workers' metrics meet (hub.ops.metrics): PROMETHEUS_MULTIPROC_DIR when the
    operator set it (emptied of an earlier run's files, which would be counted again), else a
    new temporary directory, removed at exit."""
    import atexit
    import os
    import shutil
    import tempfile

    from_operator = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if from_operator:
        directory = Path(from_operator)
        if not directory.is_dir():
            _fail(f"PROMETHEUS_MULTIPROC_DIR {directory} is not a directory")
        for stale in directory.glob("*.db"):
            stale.unlink()
        return
    created = tempfile.mkdtemp(prefix="hub-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = created
    atexit.register(shutil.rmtree, created, ignore_errors=True)


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations and create the first token-signing key (and the master secret of a
    new database, when neither HUB_SECRET_KEY nor the key file is there)."""
    from hub.composition import build_hub
    from hub.db import make_engine
    from hub.keycheck import foreign_database, owned
    from hub.keyring import NoMasterSecret
    from hub.migrate import upgrade

    settings = _settings()
    engine = make_engine(settings.database_url)
    claimed = owned(engine)
    try:  # a database keyed already is never given a new secret
        hub = build_hub(settings, engine=engine, create_secret=not claimed)
    except NoMasterSecret:
        raise foreign_database(engine, settings, have_secret=False) from None
    hub.check_master_key()  # before migrating: another secret's database is left untouched
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
@click.option(
    "--jurisdiction",
    "jurisdictions",
    multiple=True,
    help="A jurisdiction it serves as an acceptance office (repeat for more), e.g. chifeng.",
)
@click.option(
    "--reporter",
    type=click.Choice(["employer", "property-manager", "agency", "landlord"]),
    help="A reporter of hires or tenants [CF §6-9] for one organisation (of public-security,"
    " with one --jurisdiction and the scope reports:submit).",
)
@click.option("--organisation-code", help="A reporter's unified social credit code (GB 32100).")
@click.option("--organisation-name", help="A reporter's organisation, as the office reads it.")
def clients_add(
    department: str,
    scopes: tuple[str, ...],
    jwks_file: Path | None,
    secret: bool,
    terminal: bool,
    client_id: str | None,
    jurisdictions: tuple[str, ...],
    reporter: str | None,
    organisation_code: str | None,
    organisation_name: str | None,
) -> None:
    """Register a client; a secret is printed once and stored only hashed."""
    from hub.auth.domain import ClientKind, ReporterRole
    from hub.auth.service import ClientSpecError, Organisation, parse_jwks

    if secret and jwks_file:
        _fail("give either --secret or --jwks-file, not both")
    if terminal and reporter:
        _fail("give either --terminal or --reporter, not both")
    organisation = None
    if reporter:
        if not organisation_code or not organisation_name:
            _fail("a reporter needs --organisation-code and --organisation-name")
        organisation = Organisation(organisation_code, organisation_name, ReporterRole(reporter))
    elif organisation_code or organisation_name:
        _fail("only a --reporter reports for an organisation")
    kind = ClientKind.DEPARTMENT
    if terminal:
        kind = ClientKind.WINDOW_TERMINAL
    elif reporter:
        kind = ClientKind.REPORTER
    hub = _hub()
    try:
        jwks = parse_jwks(jwks_file.read_text()) if jwks_file else None
        created = hub.add_client(
            department=department,
            scopes=_scope_list(scopes),
            kind=kind,
            jwks=jwks,
            client_id=client_id,
            jurisdictions=_scope_list(jurisdictions),
            organisation=organisation,
        )
    except ClientSpecError as exc:
        _fail(str(exc))
    click.echo(f"client_id: {created.client_id}")
    if created.secret:
        click.echo(f"client_secret: {created.secret}")


@cli.group()
def staff() -> None:
    """Staff accounts: the people who sign in to the console."""


def _show(credentials: Credentials) -> None:
    click.echo(f"account: {credentials.name}")
    click.echo(f"one-time password: {credentials.password}")
    if credentials.otpauth_uri:
        click.echo(f"authenticator (TOTP): {credentials.otpauth_uri}")
    click.echo("shown once: hand it over in person; the password is changed at first sign-in")


def _staff_change(change: Callable[[Session, Hub], _Done]) -> _Done:
    """`change` in a unit of work of its own, a refusal told in one sentence."""
    from hub.auth.staff import StaffRefused
    from hub.db import unit_of_work

    hub = _hub()
    try:
        with unit_of_work(hub.engine) as session:
            return change(session, hub)
    except StaffRefused as exc:
        _fail(str(exc))


@staff.command("add")
@click.argument("name")
@click.option("--display-name", required=True, help="The person's name as the console shows it.")
@click.option("--department", required=True, help="Their department, e.g. public-security.")
@click.option("--roles", required=True, multiple=True, help="Roles, space- or comma-separated.")
@click.option(
    "--jurisdiction",
    "jurisdictions",
    multiple=True,
    help="A jurisdiction they serve as an acceptance office (repeat for more), e.g. chifeng.",
)
def staff_add(
    name: str,
    display_name: str,
    department: str,
    roles: tuple[str, ...],
    jurisdictions: tuple[str, ...],
) -> None:
    """Add a local account; its one-time password (and TOTP secret) are printed once."""
    from hub.auth.staff import add_staff

    _show(
        _staff_change(
            lambda session, hub: add_staff(
                session,
                hub.staff,
                name=name,
                display_name=display_name,
                department=department,
                roles=_scope_list(roles),
                actor=_cli_actor(),
                now=hub.clock.now(),
                jurisdictions=_scope_list(jurisdictions),
            )
        )
    )


@staff.command("reset")
@click.argument("name")
def staff_reset(name: str) -> None:
    """A new one-time password (and TOTP secret) for NAME; the old ones stop working."""
    from hub.auth.staff import reset_staff

    _show(
        _staff_change(
            lambda session, hub: reset_staff(
                session, hub.staff, name, actor=_cli_actor(), now=hub.clock.now()
            )
        )
    )


@staff.command("disable")
@click.argument("name")
def staff_disable(name: str) -> None:
    """No more sign-ins for NAME (the account and its history are kept)."""
    from hub.auth.staff import disable_staff

    changed = _staff_change(
        lambda session, hub: disable_staff(
            session, hub.staff, name, actor=_cli_actor(), now=hub.clock.now()
        )
    )
    click.echo(f"{name}: disabled" if changed else f"{name}: was disabled already")


@staff.command("list")
def staff_list() -> None:
    """Every account: name, department, roles, second factor, state, jurisdictions served
    (nothing secret)."""
    from hub.auth.staff import list_staff
    from hub.db import unit_of_work

    hub = _hub()
    with unit_of_work(hub.engine) as session:
        members = list_staff(session)
    for member in members:
        roles = ",".join(role.value for role in member.roles)
        factor = "totp" if member.second_factor else "password"
        state = "disabled" if member.disabled else "active"
        served = ",".join(member.jurisdictions) or "-"
        click.echo(
            f"{member.name}\t{member.display_name}\t{member.department.value}\t{roles}"
            f"\t{factor}\t{state}\t{served}"
        )


@cli.group()
def keys() -> None:
    """Token-signing keys."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Sign new tokens with a new key; the old one stays published until its tokens expire."""
    from hub.auth.service import rotate_signing_key
    from hub.db import unit_of_work

    hub = _hub()
    with unit_of_work(hub.engine) as session:
        kid = rotate_signing_key(session, hub.audit, hub.key_password, hub.clock.now())
    click.echo(f"signing key: {kid}")


@cli.command()
@click.option("--holders", type=click.IntRange(1, 1_000_000), default=10_000, show_default=True)
@click.option("--seed", type=int, default=2026, show_default=True)
@click.option(
    "--if-empty",
    is_flag=True,
    help="Load only into an empty database; otherwise say so and succeed (`make run`).",
)
def demo(holders: int, seed: int, if_empty: bool) -> None:
    """Load a generated, realistic data set into an empty database (through the services)."""
    from hub.demo import DatabaseNotEmpty, load_demo

    hub = _hub()
    hub.prepare()
    try:
        summary = load_demo(
            hub,
            holders,
            seed,
            progress=lambda done: click.echo(f"  {done:,} of {holders:,} holders", err=True),
        )
    except DatabaseNotEmpty as exc:
        if if_empty:
            click.echo(
                f"hub: the database has {exc.registrations:,} registrations: no demo set loaded",
                err=True,
            )
            return
        _fail(
            f"the database already has {exc.registrations:,} registrations and the demo loads "
            "only into an empty one: `make reset` starts over (it deletes var/, where `make run` "
            "keeps the database), or name an empty database with HUB_DATABASE_URL"
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
    from hub.jobs import run_daily_jobs
    from hub.ops.logs import configure

    configure()  # each job's start, end and count, as JSON lines on standard error
    counts = run_daily_jobs(_hub())
    click.echo(", ".join(f"{name}: {count}" for name, count in counts.items()))


@cli.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Processes walking chains at once (default: one per CPU).",
)
@click.option(
    "--witness",
    "witnesses",
    multiple=True,
    metavar="URL|FILE",
    help="A department's kept checkpoints (its receiver's /checkpoints, or a JSON file of"
    " them): a chain cut short or rewritten since is named. Repeatable.",
)
@click.option(
    "--since-checkpoint",
    is_flag=True,
    help="Walk only the rows appended since the hub's last signed checkpoint, after checking"
    " the log still runs through it (a full walk is the default).",
)
def audit_verify(workers: int | None, witnesses: tuple[str, ...], since_checkpoint: bool) -> None:
    """Check every chain; exit 1 listing every altered, deleted or inserted row, and with
    --witness every chain truncated or forked since a department's checkpoints."""
    import dataclasses
    import os

    from sqlmodel import Session

    from hub import checkpoints
    from hub.audit_verify import expected_rows, verify_all

    settings = _settings()
    hub = _hub(settings)
    kept = [token for witness in witnesses for token in _witness_tokens(witness)]
    starts, since = {}, ""
    if since_checkpoint:
        with Session(hub.engine) as session:
            own = checkpoints.latest(session)
            if own is None:
                _fail("no checkpoint is signed yet: run `hub audit checkpoint`, or walk in full")
            try:
                starts = checkpoints.starts_of(session, own.token)
            except ValueError as forged:
                _fail(f"the hub's last checkpoint is not the hub's ({forged}): walk in full", 1)
        kept.append(own.token)  # the log must still run through it
        since = f", since checkpoint {own.id}"
    progress = _Progress("audit verify", "rows", expected_rows(hub.engine, starts))
    report = verify_all(
        hub.engine,
        settings.database_url,
        hub.audit.key,
        workers or os.cpu_count() or 1,
        progress,
        starts,
    )
    chains = f" in {report.chains} chains" if report.chains > 1 else ""
    if kept:
        with Session(hub.engine) as session:
            witnessed = checkpoints.compare(session, hub.audit.key, kept)
        for reason in witnessed.set_aside:
            click.echo(f"hub: a checkpoint set aside, not the hub's: {reason}", err=True)
        findings = report.findings + witnessed.findings
        report = dataclasses.replace(report, findings=findings)
        if witnesses:
            chains += f", against {witnessed.compared - since_checkpoint} checkpoints"
    chains += since
    if report.intact:
        click.echo(f"audit log intact: {report.rows_checked} rows{chains}")
        return
    places = f"{len(report.findings)} place{'s' if len(report.findings) > 1 else ''}"
    click.echo(
        f"hub: audit log broken in {places} ({report.rows_checked} rows read{chains}):", err=True
    )
    for finding in report.findings:
        where = f"chain {finding.chain}, " if report.chains > 1 else ""
        click.echo(f"  {where}{finding}", err=True)
    sys.exit(1)


def _witness_tokens(witness: str) -> list[str]:
    """The checkpoints a witness kept: fetched from a URL, or read from a JSON file."""
    import json

    import httpx

    from hub.checkpoints import tokens_of

    try:
        if witness.startswith(("http://", "https://")):
            answer = httpx.get(witness, timeout=30)
            answer.raise_for_status()
            document = answer.json()
        else:
            document = json.loads(Path(witness).read_text(encoding="utf-8"))
        return tokens_of(document)
    except (httpx.HTTPError, OSError, ValueError) as error:
        _fail(f"cannot read the checkpoints of {witness}: {error}")


@audit.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign a checkpoint of the audit chains now and send the departments theirs (the
    scheduler does this every audit_checkpoint_minutes)."""
    from hub.jobs import run_checkpoint

    signed = run_checkpoint(_hub())
    click.echo("checkpoint signed" if signed else "nothing appended since the last checkpoint")


@cli.group()
def retention() -> None:
    """Closed months of deliveries and window decisions, archived to files."""


@retention.command("archive")
@click.option(
    "--before",
    required=True,
    metavar="YYYY-MM",
    help="Archive every month before this one (this month at the latest).",
)
@click.option(
    "--to",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the archives and their manifests.",
)
def retention_archive(before: str, directory: Path) -> None:
    """Write each closed month of deliveries and decisions to a file with its manifest,
    count it into the statistics, then drop it from the database. A month of deliveries
    still pending is kept (exit 1)."""
    from hub.partitions import Month
    from hub.retention import Archived, Held, NotClosed, archive

    try:
        month = Month.parse(before)
    except ValueError as error:
        _fail(str(error))
    hub = _hub()

    def report(outcome: Archived | Held) -> None:
        if isinstance(outcome, Held):
            click.echo(
                f"{outcome.table} {outcome.month}: kept, {outcome.pending} still pending", err=True
            )
        else:
            where = outcome.file.name if outcome.file else "no rows"
            click.echo(f"{outcome.table} {outcome.month}: {outcome.rows} rows archived ({where})")

    try:
        done = archive(hub.engine, hub.audit, month, directory, hub.clock.now(), report)
    except NotClosed as error:
        _fail(str(error))
    if not done:
        click.echo(f"nothing before {month} to archive")
    if any(isinstance(outcome, Held) for outcome in done):
        sys.exit(1)


class _Progress:
    """A long command's progress on standard error, at most once a second: how much it has
    done of how much it expects."""

    def __init__(self, doing: str, unit: str, expected: int, every_seconds: float = 1.0) -> None:
        import time

        self.doing, self.unit, self.expected, self.every = doing, unit, expected, every_seconds
        self.done = 0
        self.started = self.shown = time.monotonic()

    def __call__(self, more: int) -> None:
        import time

        self.done += more
        now = time.monotonic()
        if now - self.shown < self.every:
            return
        self.shown = now
        rate = self.done / max(now - self.started, 1e-9)
        click.echo(
            f"{self.doing}: {self.done:,} of {self.expected:,} {self.unit} ({rate:,.0f}/s)",
            err=True,
        )


@cli.group()
def schemas() -> None:
    """The exchange schema registry (JSON Schema 2020-12)."""


def _schema_file(path: Path) -> Any:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        _fail(f"{path} is not a readable JSON file ({exc})")


def _show_violations(violations: Any) -> None:
    for v in violations:
        change = v.change
        click.echo(
            f"  {v.direction} against version {v.against_version}: {change.kind}"
            f" at {change.pointer or '/'}: {change.en}"
        )


@schemas.command("list")
def schemas_list() -> None:
    """Every subject with its compatibility mode and versions."""
    from hub.db import unit_of_work
    from hub.schemas import service

    hub = _hub()
    with unit_of_work(hub.engine) as session:
        for subject in service.subjects(session):
            mode = service.compatibility_of(session, subject)
            versions = ", ".join(
                f"{row.version} {row.state}" for row in service.versions_of(session, subject.name)
            )
            click.echo(f"{subject.name}  [{mode}]  {versions}")


@schemas.command("register")
@click.argument("subject")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--active", is_flag=True, help="Register as ACTIVE (default: DRAFT).")
def schemas_register(subject: str, file: Path, active: bool) -> None:
    """Register FILE as SUBJECT's next version; exit 1 if it breaks the subject's mode."""
    from hub.db import unit_of_work
    from hub.schemas import domain, service

    hub = _hub()
    definition = _schema_file(file)
    state = domain.VersionState.ACTIVE if active else domain.VersionState.DRAFT
    try:
        with unit_of_work(hub.engine) as session:
            done = service.register(
                session,
                hub.schemas,
                hub.audit,
                subject,
                definition,
                state=state,
                actor=_cli_actor(),
                now=hub.clock.now(),
            )
            row = done.version
            click.echo(
                f"{row.subject} version {row.version} (id {row.id}), {row.state}"
                + ("" if done.created else ": this schema was already registered")
            )
    except service.SubjectNameInvalid:
        _fail(f"{subject!r} is not a subject name (lower-case words joined by . or -)")
    except service.SchemaInvalid as exc:
        for issue in exc.issues:
            click.echo(f"  {issue.pointer or '/'}: {issue.en}", err=True)
        _fail(f"{file} is not a valid schema")
    except service.Incompatible as exc:
        _show_violations(exc.violations)
        _fail(f"{file} breaks {subject}'s {exc.mode} compatibility", 1)
    except domain.AgreementTooNarrow as exc:
        for shortfall in exc.shortfalls:
            click.echo(f"  {shortfall.describe()[0]}", err=True)
        _fail(f"amend the agreements on {subject} before {file} is ACTIVE", 1)


@schemas.command("check")
@click.argument("subject")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def schemas_check(subject: str, file: Path) -> None:
    """Would FILE be accepted as SUBJECT's next version? Exit 1 listing what breaks."""
    from hub.db import unit_of_work
    from hub.schemas import service

    hub = _hub()
    definition = _schema_file(file)
    with unit_of_work(hub.engine) as session:
        try:
            service.checked_schema(session, hub.schemas, definition)
        except service.SchemaInvalid as exc:
            for issue in exc.issues:
                click.echo(f"  {issue.pointer or '/'}: {issue.en}", err=True)
            _fail(f"{file} is not a valid schema")
        try:
            existing = service.subject_row(session, subject)
        except service.SubjectNotFound:
            existing = None
        mode, violations = service.violations_for(session, existing, definition)
    if violations:
        _show_violations(violations)
        _fail(f"{file} breaks {subject}'s {mode} compatibility", 1)
    click.echo(f"compatible with {subject} under {mode}")


@schemas.command("diff")
@click.argument("subject")
@click.argument("older")
@click.argument("newer")
def schemas_diff(subject: str, older: str, newer: str) -> None:
    """What changed from version OLDER to NEWER (numbers or `latest`)."""
    from hub.db import unit_of_work
    from hub.schemas import service

    def ref(text: str) -> int | str:
        if text != "latest" and not text.isdigit():
            _fail(f"{text!r} is not a version number or `latest`")
        return text if text == "latest" else int(text)

    hub = _hub()
    with unit_of_work(hub.engine) as session:
        try:
            first, second, changes = service.difference(session, subject, ref(older), ref(newer))
        except LookupError as exc:
            _fail(f"not found: {exc.args[0] if exc.args else exc}")
    click.echo(f"{subject} {first.version} -> {second.version}")
    for direction, title in (
        ("backward", "breaks readers of the new version"),
        ("forward", "breaks readers of the old version"),
    ):
        click.echo(f"{title}: {len(changes[direction])}")
        for change in changes[direction]:
            click.echo(f"  {change.kind} at {change.pointer or '/'}: {change.en}")


@cli.group()
def department() -> None:
    """The departments' side of the exchange."""


@department.command("serve")
@click.option("--department", "name", required=True, help="e.g. education")
@click.option("--port", type=click.IntRange(1, 65535), required=True)
@click.option(
    "--store",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file of what was received (default: var/received-<department>.db).",
)
def department_serve(name: str, port: int, store: Path | None) -> None:
    """Run the reference receiver of a department: verifies the hub's signatures, refuses
    stale timestamps, de-duplicates by webhook-id and keeps what it got."""
    from hub.auth.domain import Department
    from hub.connectors.receiver import serve

    hub_settings = _settings()
    links = _departments(hub_settings)
    try:
        link = links[Department(name)]
        secret = link.secret()
    except (KeyError, ValueError) as exc:
        _fail(f"department {name!r} cannot be served: {exc}")
    path = store or Path("var") / f"received-{name}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    serve(name, port, secret, path)


@department.command("secrets")
def department_secrets() -> None:
    """Print a fresh webhook secret for each department as shell assignments (for a
    development environment; production secrets come from the secret store)."""
    from hub.connectors.signing import new_secret

    for link in _departments(_settings()).values():
        click.echo(f"{link.secret_env}={new_secret()}")


def _departments(settings: Settings) -> Any:
    from hub.connectors.config import load_departments

    try:
        return load_departments(settings.departments_file)
    except ValueError as exc:
        _fail(str(exc))


@cli.command()
def relay() -> None:
    """Run the outbox relay in this process until interrupted (when the hub's own relay is
    switched off, or to add delivery capacity: relays share the work safely)."""
    import signal
    import threading

    from hub.connectors.relay import Relay

    hub = _hub()
    try:
        worker = Relay(hub.outbound)
    except ValueError as exc:
        _fail(f"the relay cannot start: {exc}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo(f"relay {worker.worker} delivering to {', '.join(worker.links)}", err=True)
    try:
        worker.run(stop)
    finally:
        worker.close()


@cli.group()
def card() -> None:
    """Permit cards: the virtual card and the card tools."""


@card.command("emulate")
@click.option(
    "--card",
    "card_file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The card's memory (JSON, holds its private key); created blank if missing.",
)
@click.option(
    "--issuer-keys",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JWK Set of the issuing public keys a new card accepts writes from.",
)
@click.option("--reader-host", default="127.0.0.1", show_default=True)
@click.option("--reader-port", type=click.IntRange(1, 65535), default=35963, show_default=True)
def card_emulate(
    card_file: Path, issuer_keys: Path | None, reader_host: str, reader_port: int
) -> None:
    """Put a virtual card in pcscd's vsmartcard-vpcd reader until SIGTERM or Ctrl-C takes it
    out. Every write the card accepts is saved to the card file at once."""
    import signal

    from hub.window.applet import Applet, save_card
    from hub.window.emulator import ReaderUnavailable, VirtualCard

    state = _card_state(card_file, issuer_keys)
    virtual = VirtualCard(
        Applet(state, lambda new: save_card(card_file, new)), reader_host, reader_port
    )
    try:
        virtual.insert()
    except ReaderUnavailable as exc:
        _fail(str(exc))
    signal.signal(signal.SIGTERM, lambda *_: virtual.remove())
    signal.signal(signal.SIGINT, lambda *_: virtual.remove())
    click.echo(f"card {card_file} in the reader at {reader_host}:{reader_port}", err=True)
    virtual.serve()
    if not virtual.removed:
        _fail(f"the reader at {reader_host}:{reader_port} closed the connection", 1)


@card.command("issuing-keys")
def card_issuing_keys() -> None:
    """Print the hub's card-issuing public keys (a JWK Set): what a blank card is made to
    trust (`hub card emulate --issuer-keys`)."""
    import json

    from hub.card.issuing import issuing_jwks
    from hub.db import unit_of_work

    hub = _hub()
    hub.prepare()
    with unit_of_work(hub.engine) as session:
        click.echo(json.dumps(issuing_jwks(session), indent=2))


@card.command("rotate-key")
def card_rotate_key() -> None:
    """Sign new card records with a new issuing key; the old ones stay published, and cards
    learn the new key with their next write."""
    from hub.audit import Actor
    from hub.card.issuing import rotate_issuing_key
    from hub.db import unit_of_work

    hub = _hub()
    with unit_of_work(hub.engine) as session:
        key = rotate_issuing_key(session, hub.clock.now(), hub.card_key_password)
        event = Actor("hub", "public-security").did(
            "card.issuing-key.rotate", key.kid, None, "key-management"
        )
        hub.audit.record(session, event, hub.clock.now())
    click.echo(f"card-issuing key: {key.kid}")


def _card_writer_options(command: Any) -> Any:
    """The hub and the OAuth client (scope registry:write) a card writer calls."""
    for option in reversed(
        [
            click.option("--permit", "permit_id", required=True, help="The issued permit's id."),
            click.option("--hub", "hub_url", default="http://127.0.0.1:8000", show_default=True),
            click.option("--client-id", required=True, envvar="HUB_CLIENT_ID"),
            click.option(
                "--client-secret", required=True, envvar="HUB_CLIENT_SECRET", show_envvar=True
            ),
            click.option("--reader", help="Reader name (default: the first one)."),
        ]
    ):
        command = option(command)
    return command


def _write_card(
    hub_url: str, client_id: str, client_secret: str, reader: str | None, write: Any
) -> str:
    """Run `write(client, link)` against the card in the reader; one sentence on failure."""
    from hub.window.hubclient import HubClient, HubRefused, HubUnreachable
    from hub.window.reader import CardError, connect
    from hub.window.writer import SCOPE

    client = HubClient(hub_url, client_id, client_secret, SCOPE)
    try:
        return str(write(client, connect(reader)))
    except CardError as error:
        _fail(f"{error.en} / {error.zh}", 1)
    except HubRefused as refused:
        _fail(f"the hub refused: {refused}", 1)
    except HubUnreachable as error:
        _fail(f"the hub at {hub_url} cannot be reached ({error})", 1)
    finally:
        client.close()


@card.command("personalise")
@_card_writer_options
@click.option(
    "--photo",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The holder's photo (PNG or JPEG, at most 16 KiB).",
)
def card_personalise(
    permit_id: str,
    hub_url: str,
    client_id: str,
    client_secret: str,
    reader: str | None,
    photo: Path,
) -> None:
    """Write the blank card in the reader for an issued permit."""
    from hub.window.writer import personalise_card

    image = photo.read_bytes()
    serial = _write_card(
        hub_url,
        client_id,
        client_secret,
        reader,
        lambda client, link: personalise_card(client, link, permit_id, image),
    )
    click.echo(f"card {serial} written for permit {permit_id}")


@card.command("refresh")
@_card_writer_options
def card_refresh(
    permit_id: str, hub_url: str, client_id: str, client_secret: str, reader: str | None
) -> None:
    """Rewrite the permit's card in the reader with the registry's current facts (a new
    validity after endorsement, a new address)."""
    from hub.window.writer import refresh_card

    serial = _write_card(
        hub_url,
        client_id,
        client_secret,
        reader,
        lambda client, link: refresh_card(client, link, permit_id),
    )
    click.echo(f"card {serial} rewritten for permit {permit_id}")


@cli.command()
@click.option("--service", required=True, help="The service code asked for at this window.")
@click.option("--hub", "hub_url", default="http://127.0.0.1:8000", show_default=True)
@click.option("--client-id", required=True, envvar="HUB_CLIENT_ID", show_envvar=True)
@click.option("--client-secret", required=True, envvar="HUB_CLIENT_SECRET", show_envvar=True)
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var/window"),
    show_default=True,
    help="Where the offline lists and unreported offline decisions are kept.",
)
@click.option("--language", type=click.Choice(["zh-CN", "en"]), default="zh-CN")
@click.option("--refresh-seconds", type=click.FloatRange(1, 86_400), default=300.0)
@click.option("--web", is_flag=True, help="Show the clerk's screen as a page on 127.0.0.1.")
@click.option("--port", type=click.IntRange(1, 65_535), default=8780, show_default=True)
@click.option(
    "--show-seconds",
    type=click.FloatRange(1, 3_600),
    default=60.0,
    show_default=True,
    help="How long a decision stays on the page (the next tap ends it sooner).",
)
def window(
    service: str,
    hub_url: str,
    client_id: str,
    client_secret: str,
    cache: Path,
    language: Language,
    refresh_seconds: float,
    web: bool,
    port: int,
    show_seconds: float,
) -> None:
    """The service-window agent: every card tapped on a reader is verified against the hub
    (or, with the hub unreachable, off line) and the decision shown, in the terminal or, with
    --web, on a page for the clerk's browser."""
    import signal
    import threading

    from hub.window.agent import SCOPE, Cache, WindowAgent
    from hub.window.hubclient import HubClient
    from hub.window.screen import Screen, ScreenUnavailable, served
    from hub.window.ui import Lines, run_window

    client = HubClient(hub_url, client_id, client_secret, SCOPE, language=language)
    agent = WindowAgent(client, service, Cache(cache))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        if not web:
            run_window(agent, Lines(language, click.echo), stop, refresh_seconds)
            return
        screen = Screen(service, show_seconds)
        with served(screen, language, port) as address:
            click.echo(f"window screen: {address}")
            run_window(agent, screen, stop, refresh_seconds)
    except ScreenUnavailable as unavailable:
        _fail(str(unavailable))
    finally:
        client.close()


def _card_state(card_file: Path, issuer_keys: Path | None) -> Any:
    """The card saved in `card_file`, or a new blank one trusting `issuer_keys`, saved there."""
    import json

    from hub.window.applet import CardFileError, blank_card, issuing_keys, load_card, save_card

    try:
        if card_file.exists():
            if issuer_keys:
                click.echo(f"hub: {card_file} exists; --issuer-keys only makes new cards", err=True)
            return load_card(card_file)
        if issuer_keys is None:
            _fail(f"{card_file} does not exist; give --issuer-keys to make a new card")
        try:
            jwks = json.loads(issuer_keys.read_text())
        except ValueError as exc:
            _fail(f"{issuer_keys} is not a JSON JWK Set ({exc})")
        state = blank_card(issuing_keys(jwks))
        card_file.parent.mkdir(parents=True, exist_ok=True)
        save_card(card_file, state)
    except (CardFileError, OSError) as exc:
        _fail(str(exc))
    return state


def main(args: Sequence[str] | None = None) -> None:
    """The console script (`args`: the command line after `hub`, sys.argv's by default)."""
    try:
        cli.main(args=args, prog_name="hub", standalone_mode=False)
    except click.UsageError as exc:
        _fail(exc.format_message())
    except click.ClickException as exc:
        _fail(exc.format_message())
    except click.Abort:
        _fail("aborted", 1)
    except Exception as exc:
        _fail_for(exc)


def _fail_for(exc: Exception) -> NoReturn:
    """One sentence for a bad configuration or an unreachable database; anything else is a
    defect and keeps its traceback. Imported here: the command that raised has loaded both."""
    import sqlalchemy.exc

    from hub.settings import ConfigError

    if isinstance(exc, ConfigError):
        _fail(str(exc))
    if isinstance(exc, sqlalchemy.exc.OperationalError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "unreachable"
        _fail(
            f"cannot use the database ({reason}); check HUB_DATABASE_URL and run `hub db upgrade`"
        )
    raise exc
