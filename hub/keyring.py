"""The master secret and the purpose-bound keys derived from it.

One secret is configured; each use (audit chain, subject hashes, key encryption) gets its own
key by HKDF, so a key leaked from one purpose cannot forge another. One of those purposes is a
check value that the database keeps (hub.keycheck), so a process with another secret stops
before it misreads or writes anything.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hub.settings import ConfigError, Settings

CHECK_PURPOSE = "master-key-check"
_CHECK_MESSAGE = b"permit hub master secret"


class NoMasterSecret(ConfigError):
    """Neither HUB_SECRET_KEY nor the key file is there (and this command may not create it)."""


@dataclass(frozen=True)
class Keyring:
    """Derives 32-byte keys for named purposes from the master secret."""

    master: bytes

    def derive(self, purpose: str) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
            self.master
        )

    def subject_hasher(self) -> SubjectHasher:
        return SubjectHasher(self.derive("subject-hash"))

    def check_value(self) -> str:
        """An HMAC under a key of its own purpose: it tells two secrets apart and gives away
        nothing of this one or of the keys of the other purposes."""
        return hmac.new(self.derive(CHECK_PURPOSE), _CHECK_MESSAGE, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SubjectHasher:
    """Keyed hash of a citizen ID: the only form in which an ID may appear in logs or look-ups."""

    key: bytes

    def __call__(self, value: str) -> str:
        return hmac.new(self.key, value.strip().upper().encode(), hashlib.sha256).hexdigest()


def load_keyring(settings: Settings, *, create: bool = False) -> Keyring:
    """Use HUB_SECRET_KEY if given, else the key file.

    Only `hub db upgrade` may create the file (0600): any other command that made a fresh key
    (run from the wrong directory, say) would misread every keyed record instead of failing.
    """
    if settings.secret_key is not None:
        return Keyring(settings.secret_key.encode())
    path = Path(settings.secret_key_file)
    if not create and not path.exists():
        raise NoMasterSecret(
            f"no master secret: set HUB_SECRET_KEY, or run `hub db upgrade` to create {path}"
        )
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        master = path.read_text().strip()
    except FileExistsError:  # another process created it between exists() and open()
        master = path.read_text().strip()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot read or create the secret key file {path}: {reason}") from None
    if len(master) < 32:
        raise ConfigError(f"the secret key in {path} is shorter than 32 characters")
    return Keyring(master.encode())


def secret_source(settings: Settings) -> str:
    """Where this process's master secret comes from, for a sentence an operator acts on."""
    return "HUB_SECRET_KEY" if settings.secret_key is not None else str(settings.secret_key_file)
