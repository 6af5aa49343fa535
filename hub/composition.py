"""The composition root: the `Hub`, the components one hub process shares, and `build_hub`,
which makes them from settings. Commands, jobs and the app all start here; it imports no
router and no web framework, so a command pays only for what it uses.

Services do not take the Hub: each takes the bundle of components it needs (`lifecycle`,
`verification`, `offline`, `exchange`, `outbound`, `staff`), which the Hub builds once, all
but the first on first use so that a command that does not use them does not load their
code."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typing_extensions import Unpack

from hub import partitions
from hub.audit import AuditLog
from hub.auth.domain import Department
from hub.auth.keys import ensure_signing_key
from hub.auth.policy import load_access_policy
from hub.auth.server import HubAuthorizationServer
from hub.auth.service import ClientSpec, NewClient, Registrar, add_client
from hub.auth.state import AuthState
from hub.auth.tokens import TokenVerifier
from hub.card import issuing
from hub.card.issuing import IssuingKeyCache
from hub.clock import Clock, SystemClock, WorkingCalendar, load_holiday_schedules
from hub.connectors.config import DepartmentLink, load_departments
from hub.db import make_engine, unit_of_work
from hub.keycheck import check_master_key
from hub.keyring import Keyring, load_keyring
from hub.permits.identity import CitizenIdVault
from hub.permits.jurisdictions import Jurisdiction, load_jurisdictions
from hub.permits.service import Lifecycle
from hub.publishing.publisher import Publisher
from hub.schemas.agreements import Projections, seed
from hub.schemas.service import HUB_ACTOR, Incompatible, Registry, register_builtins
from hub.settings import ConfigError, Settings
from hub.verification import challenges
from hub.verification.catalogue import load_catalogue
from hub.verification.domain import Catalogue

if TYPE_CHECKING:
    from hub.auth.signin import SignInDesk
    from hub.auth.staff import Staff
    from hub.connectors.exchange import Exchange
    from hub.connectors.relay import Outbound
    from hub.connectors.reports import Desks as ReportDesks
    from hub.verification.offline import Offline
    from hub.verification.service import Verification


@dataclass(frozen=True)
class Hub:
    """The components one hub process shares between requests."""

    settings: Settings
    engine: Engine
    clock: Clock
    calendar: WorkingCalendar
    jurisdictions: Mapping[str, Jurisdiction]
    lifecycle: Lifecycle
    keyring: Keyring
    audit: AuditLog
    vault: CitizenIdVault
    auth_state: AuthState
    verifier: TokenVerifier
    authorization_server: HubAuthorizationServer
    schemas: Registry
    publisher: Publisher
    departments: Mapping[Department, DepartmentLink]
    issuing_keys: IssuingKeyCache
    catalogue: Catalogue

    @functools.cached_property
    def verification(self) -> Verification:
        """What deciding a tap needs (hub.verification.service); made on first use, so a
        command that decides no tap does not load that code."""
        from hub.verification.service import Verification

        return Verification(
            self.clock,
            self.audit,
            self.challenge_key,
            self.catalogue,
            self.issuing_keys,
            self.publisher,
            self.vault,
        )

    @functools.cached_property
    def exchange(self) -> Exchange:
        """What the exchange's use cases need (hub.connectors.exchange); made on first use."""
        from hub.connectors.exchange import Exchange

        return Exchange(self.clock, self.audit, self.schemas, self.vault, self.publisher)

    @functools.cached_property
    def report_desks(self) -> ReportDesks:
        """What filing a third party's report needs (hub.connectors.reports)."""
        from hub.connectors.reports import Desks
        from hub.permits.reports import Desk

        return Desks(self.exchange, Desk(self.audit, self.vault, self.lifecycle.calendar))

    @functools.cached_property
    def outbound(self) -> Outbound:
        """What the relay needs (hub.connectors.relay); made on first use."""
        from hub.connectors.relay import Outbound

        return Outbound(self.engine, self.clock, self.publisher)

    @functools.cached_property
    def offline(self) -> Offline:
        """What the off-line side needs (hub.verification.offline); made on first use."""
        from hub.verification.offline import Offline

        return Offline(
            self.clock,
            self.audit,
            self.schemas,
            self.catalogue,
            self.settings.issuer,
            self.card_key_password,
        )

    @functools.cached_property
    def staff(self) -> Staff:
        """What managing staff and signing them in needs (hub.auth.staff); made on first use."""
        from argon2 import PasswordHasher

        from hub.auth.staff import TOTP_KEY_PURPOSE, Staff

        return Staff(
            self.audit,
            self.keyring.derive(TOTP_KEY_PURPOSE),
            PasswordHasher(),
            frozenset(self.jurisdictions),
        )

    @functools.cached_property
    def sign_in(self) -> SignInDesk:
        """What signing staff in and out needs (hub.auth.signin); made on first use."""
        from hub.auth.signin import SignInDesk

        return SignInDesk(
            self.engine,
            self.staff,
            self.auth_state,
            self.auth_state.policy.staff_sign_in,
            self.clock,
            self.keyring.derive("staff-password-ticket"),
        )

    @property
    def key_password(self) -> bytes:
        return self.auth_state.key_password

    @functools.cached_property
    def challenge_key(self) -> bytes:
        """Makes and checks tap challenges (hub.verification.challenges); asked at every tap,
        so derived once."""
        return self.keyring.derive(challenges.KEY_PURPOSE)

    def add_client(self, **spec: Unpack[ClientSpec]) -> NewClient:
        """`hub clients add`: register a client (audited) in a unit of work of its own, within
        the access policy."""
        state = self.auth_state
        # The secret key is keyring.derive("client-secret").
        registrar = Registrar(state.secret_key, state.policy, frozenset(self.jurisdictions))
        with unit_of_work(self.engine) as session:
            return add_client(session, self.audit, registrar, self.clock.now(), **spec)

    @property
    def card_key_password(self) -> bytes:
        """Encrypts the card-issuing keys: a purpose of its own, never the token keys'."""
        return self.keyring.derive(issuing.PASSWORD_PURPOSE)

    def check_database(self) -> None:
        """Reachable and migrated: the tables this process needs exist."""
        with self.engine.connect() as connection:
            if not sa.inspect(connection).has_table("alembic_version"):
                raise ConfigError("the database has no schema yet; run `hub db upgrade`")

    def check_relay(self) -> None:
        """With the relay on, every push department's secret must be in the environment."""
        if not self.settings.relay_enabled:
            return
        for department, link in self.departments.items():
            if link.pushes:
                try:
                    link.secret()
                except ValueError as error:
                    raise ConfigError(
                        f"the relay cannot push to {department.value}: {error}"
                        " (or set relay_enabled = false)"
                    ) from None

    def check_master_key(self) -> None:
        """This process's master secret is the database's (hub.keycheck): asked before a
        command or a starting hub writes anything."""
        check_master_key(self.engine, self.keyring, self.audit, self.settings)

    def prepare(self) -> None:
        """After the master-key check, this month's partitions and the next (PostgreSQL), the
        first token-signing and card-issuing keys of a new installation, the built-in
        schemas, then this process's snapshot."""
        self.check_master_key()
        partitions.ensure(self.engine, self.clock.now(), self.settings.partition_months_ahead)
        with unit_of_work(self.engine) as session:
            self.audit.open_chains(session)
            ensure_signing_key(session, self.clock.now(), self.key_password)
            issuing.ensure_issuing_key(session, self.clock.now(), self.card_key_password)
        self.install_shipped()
        self.auth_state.refresh()

    def install_shipped(self) -> None:
        """The built-in schemas not registered yet (each its subject's next version), then the
        config/agreements/*.toml not created yet (the departments file names them), in one
        unit of work. Two processes starting together may both try: the loser's fails on a
        unique constraint and, run again, finds the winner's rows."""
        for attempt in (1, 2):
            try:
                with unit_of_work(self.engine) as session:
                    now = self.clock.now()
                    register_builtins(session, self.schemas, self.audit, now)
                    directory = self.settings.agreements_dir
                    seed(session, self.schemas, self.audit, directory, actor=HUB_ACTOR, now=now)
                return
            except sa.exc.IntegrityError:
                if attempt == 2:
                    raise
            except Incompatible as error:
                raise ConfigError(f"a built-in schema cannot be registered: {error}") from None
            except ValueError as error:  # a bad agreement file
                raise ConfigError(str(error)) from None


def build_hub(
    settings: Settings,
    *,
    engine: Engine | None = None,
    clock: Clock | None = None,
    create_secret: bool = False,
) -> Hub:
    engine = engine or make_engine(settings.database_url, settings.database_pool_size)
    clock = clock or SystemClock()
    try:
        calendar = WorkingCalendar(load_holiday_schedules(settings.holiday_schedules_dir))
    except ValueError as exc:
        raise ConfigError(f"bad holiday schedule {exc}") from None
    jurisdictions = load_jurisdictions(settings.jurisdictions_dir)
    catalogue = load_catalogue(settings.catalogue_file, jurisdictions)
    try:
        departments = load_departments(settings.departments_file)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        policy = load_access_policy(settings.access_file)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    keyring = load_keyring(settings, create=create_secret)
    audit = AuditLog(keyring.derive("audit-chain"), chains=settings.audit_chains)
    state = AuthState(
        engine,
        clock,
        policy,
        key_password=keyring.derive("signing-key-encryption"),
        secret_key=keyring.derive("client-secret"),
        token_ttl=settings.access_token_ttl_seconds,
    )
    verifier = TokenVerifier(state, settings.issuer.rstrip("/"), settings.audience, clock)
    server = HubAuthorizationServer(
        state=state,
        verifier=verifier,
        engine=engine,
        audit=audit,
        clock=clock,
        issuer=settings.issuer,
        audience=settings.audience,
        token_ttl=settings.access_token_ttl_seconds,
        staff_token_ttl=settings.staff_session_seconds,
        assertion_max_age=settings.client_assertion_max_age_seconds,
    )
    # Derived once per process: requests and jobs ask for these on every call.
    rules = {code: place.lifecycle_rules() for code, place in jurisdictions.items()}
    vault, schemas = CitizenIdVault.from_keyring(keyring), Registry()
    return Hub(
        settings=settings,
        engine=engine,
        clock=clock,
        calendar=calendar,
        jurisdictions=jurisdictions,
        lifecycle=Lifecycle(audit, rules.__getitem__, calendar),
        keyring=keyring,
        audit=audit,
        vault=vault,
        auth_state=state,
        verifier=verifier,
        authorization_server=server,
        schemas=schemas,
        publisher=Publisher(schemas, Projections(), vault, departments),
        departments=departments,
        issuing_keys=IssuingKeyCache(),
        catalogue=catalogue,
    )
