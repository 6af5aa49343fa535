"""Typed settings: `config/hub.toml` for defaults, `HUB_*` environment variables over it.

Everything is validated when the process starts, so a typo in a deployment fails at once with
one sentence instead of surfacing as a 500 on the first request that needs the value.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_ENV = "HUB_CONFIG"
# The checkout's config/ (the package is installed editable from it), so `hub` reads the same
# configuration from whatever directory it is run in.
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "hub.toml"


class ConfigError(Exception):
    """Bad configuration, phrased as one sentence a person can act on."""


RoleName = Literal[
    "governance", "auditor", "exchange-operator", "window-clerk", "acceptance-office", "admin"
]
"""hub.auth.domain.Role's values, named here so reading the configuration loads no more."""


class DelegationConfig(BaseModel):
    """`[staff_oidc]` in hub.toml: staff sign in through this OpenID Connect provider (besides
    local accounts); the client secret is read from the environment variable named."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str = Field(pattern=r"^https?://[^\s?#]+$")
    client_id: str = Field(min_length=1, max_length=256)
    client_secret_env: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    name_zh: str = Field(default="统一身份认证平台", min_length=1, max_length=64)
    name_en: str = Field(default="the identity platform", min_length=1, max_length=64)
    scope: str = "openid profile"
    username_claim: str = "preferred_username"
    department_claim: str = "department"
    roles_claim: str = "roles"
    roles: dict[str, RoleName] = Field(
        default_factory=dict,
        description="claim value -> hub role; empty: the claim carries hub role names",
    )


class Settings(BaseSettings):
    """The hub's configuration; see config/hub.toml for the documented defaults."""

    model_config = SettingsConfigDict(env_prefix="HUB_", extra="forbid", frozen=True)

    database_url: str = "sqlite:///var/hub.db"
    database_pool_size: int = Field(default=10, ge=1, le=500)
    """On PostgreSQL, the connections each process keeps open; a unit of work beyond them
    waits for one (hub.db.make_engine)."""
    issuer: str = Field(default="http://127.0.0.1:8000", pattern=r"^https?://[^/?#\s]+[^?#\s]*$")
    audience: str = Field(default="urn:permit-hub:api", min_length=1)
    access_token_ttl_seconds: int = Field(default=600, ge=60, le=86_400)
    staff_session_seconds: int = Field(default=28_800, ge=600, le=86_400)
    staff_idle_seconds: int = Field(default=900, ge=60, le=28_800)
    client_assertion_max_age_seconds: int = Field(default=300, ge=30, le=3_600)
    secret_key: str | None = Field(default=None, min_length=32)
    secret_key_file: Path = Path("var/hub.key")
    max_body_bytes: int = Field(default=1_048_576, ge=1_024, le=64 * 1_048_576)
    default_language: Literal["zh-CN", "en"] = "zh-CN"
    revocation_refresh_seconds: float = Field(default=1.0, gt=0, le=60)
    scheduler_enabled: bool = True
    holiday_schedules_dir: Path = Path("holidays")
    jurisdictions_dir: Path = Path("jurisdictions")
    agreements_dir: Path = Path("agreements")
    departments_file: Path = Path("departments.toml")
    catalogue_file: Path = Path("catalogue.toml")
    access_file: Path = Path("access.toml")
    relay_enabled: bool = True
    audit_chains: int = Field(default=16, ge=1, le=1_024)
    """How many audit chains this process appends to (hub.audit); raising it opens more."""
    audit_checkpoint_minutes: int = Field(default=5, ge=1, le=1_440)
    """How often the scheduler signs a checkpoint of the audit chains for the departments."""
    partition_months_ahead: int = Field(default=2, ge=1, le=24)
    """On PostgreSQL, how many months after this one have their partitions ready (created
    at start-up and daily; hub.partitions)."""
    ready_relay_lag_seconds: int = Field(default=900, ge=1, le=7 * 86_400)
    """/readyz fails while a delivery has waited longer than this (the relay is stuck)."""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65_535)
    workers: int = Field(default=1, ge=1, le=64)
    staff_oidc: DelegationConfig | None = None

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, url: str) -> str:
        """Only the two databases the suite runs on are accepted; psycopg 3 is the driver."""
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            return "postgresql+psycopg://" + url.split("://", 1)[1]
        if url.startswith(("sqlite://", "postgresql+psycopg://")):
            return url
        raise ValueError("must be a sqlite:/// or postgresql:// URL")

    @field_validator("issuer")
    @classmethod
    def _secure_issuer(cls, issuer: str) -> str:
        """OAuth 2.0 needs TLS; plain http is accepted only on the loopback interface."""
        host = urlsplit(issuer).hostname or ""
        if issuer.startswith("http://") and host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("must be an https:// URL (http:// only for 127.0.0.1 or localhost)")
        return issuer.rstrip("/")

    @field_validator(
        "holiday_schedules_dir",
        "jurisdictions_dir",
        "agreements_dir",
        "departments_file",
        "catalogue_file",
        "access_file",
    )
    @classmethod
    def _beside_the_config(cls, directory: Path) -> Path:
        """Configuration data lives beside the configuration file that names it."""
        return directory if directory.is_absolute() else config_path().parent / directory

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=config_path()),
        )


def config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV, DEFAULT_CONFIG))


def load_settings(**overrides: object) -> Settings:
    """Read and validate the configuration, turning any failure into one `ConfigError` sentence."""
    path = config_path()
    if CONFIG_ENV in os.environ and not path.is_file():
        raise ConfigError(f"configuration file {path} (from {CONFIG_ENV}) does not exist")
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "configuration"
        env = f"HUB_{field.upper()}"
        raise ConfigError(
            f"invalid setting {field} (config {path} or {env}): {error['msg']}"
        ) from None
    except ValueError as exc:  # a malformed TOML file
        raise ConfigError(f"cannot read configuration file {path}: {exc}") from None


Model = TypeVar("Model", bound=BaseModel)


def read_config_file(path: Path, model: type[Model]) -> Model:
    """A TOML file of configuration data read into `model`; ValueError with one sentence
    naming the file and the first fault, which start-up turns into a ConfigError."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return model.model_validate(data)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML ({exc})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"{path}: {where}: {first['msg']}") from None
