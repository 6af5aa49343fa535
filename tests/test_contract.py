"""The OpenAPI document is the contract: schemathesis runs every check against a live hub.

A hub is served on loopback on each database, with the shipped agreements, one issued permit
and a client of each kind the access policy knows (an acceptance office, a partner department,
a window terminal); each operation is called with the token of a client that may call it.
Schemathesis generates requests from the document (its examples, the coverage of each schema's
edges, random ones, then stateful sequences along its links) and checks every answer: no server
error, every status, media type, header and body as documented, schema-valid requests accepted,
schema-invalid ones refused, 405s with a complete Allow.

The seed is printed and taken from HUB_CONTRACT_SEED when set, so a failure can be replayed;
HUB_CONTRACT_EXAMPLES bounds the examples per operation (20 by default), and
HUB_CONTRACT_INCLUDE (a regular expression over paths) narrows a run while developing.
"""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from sqlalchemy.engine import Engine

from hub.app import create_app
from hub.auth.domain import ClientKind, ReporterRole
from hub.auth.service import NewClient, Organisation
from hub.db import unit_of_work
from hub.permits.store import Permit
from hub.settings import Settings
from tests.card.helpers import issued_permit
from tests.conftest import seed_shipped_agreements
from tests.servers import LoopbackServer

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")

# Which client calls an operation: the first whose scopes cover the operation's.
CLIENTS: Mapping[str, tuple[str, ClientKind, tuple[str, ...]]] = {
    "office": (
        "public-security",
        ClientKind.DEPARTMENT,
        (
            "registry:read",
            "registry:write",
            "schemas:read",
            "schemas:admin",
            "exchange:admin",
            "auth:introspect",
        ),
    ),
    "department": (
        "education",
        ClientKind.DEPARTMENT,
        ("schemas:read", "exchange:feed", "exchange:proofs", "exchange:lookup", "exchange:admin"),
    ),
    "terminal": ("education", ClientKind.WINDOW_TERMINAL, ("verification:tap",)),
    "reporter": ("public-security", ClientKind.REPORTER, ("reports:submit",)),
}
REPORTER = Organisation("91350100M000100Y43", "赤峰华达物流有限公司", ReporterRole.EMPLOYER)


_ONE_METHOD = (
    "one client authentication method per request (RFC 6749 §2.3): Basic credentials and a"
    " client_assertion together are refused, a rule across the header and the body"
)
_A_CURSOR_IT_GAVE = "after is a cursor the list gave in its Link header, opaque to the client"
BEYOND_THE_SCHEMA: Mapping[str, tuple[tuple[int, ...], str]] = {
    # the authorization server
    "POST /oauth/token": ((400,), _ONE_METHOD),
    "POST /oauth/introspect": ((400,), _ONE_METHOD),
    "POST /oauth/revoke": ((400,), _ONE_METHOD),
    # the registry
    "POST /registry/v1/registrations": (
        (422,),
        "a citizen ID's GB 11643 region, birth date and check character; a current_region the"
        " hub serves; dates after the birth the ID states and not after today; who may declare"
        " for another is each jurisdiction's rule",
    ),
    "POST /registry/v1/applications": (
        (422,),
        "eligibility: the forms, materials and exemptions of the registration's jurisdiction,"
        " the months of residence, the records on file",
    ),
    "POST /registry/v1/search": (
        (422,),
        "a citizen ID's GB 11643 region, birth date and check character",
    ),
    "POST /registry/v1/access-reports": (
        (422,),
        "a citizen ID's GB 11643 region, birth date and check character; the period runs"
        " forward and spans at most three years",
    ),
    "GET /registry/v1/permits-overdue": ((422,), _A_CURSOR_IT_GAVE),
    "GET /registry/v1/worklist": ((422,), _A_CURSOR_IT_GAVE),
    "POST /exchange/v1/reports": (
        (422,),
        "a citizen ID's GB 11643 region, birth date and check character; the region within"
        " the jurisdiction the reporter reports to",
    ),
    "GET /registry/v1/statistics": ((422,), "the period runs forward and spans at most 36 months"),
    "GET /exchange/v1/dead-letters": ((422,), _A_CURSOR_IT_GAVE),
    "POST /registry/v1/proofs": (
        (422,),
        "a citizen ID's GB 11643 region, birth date and check character; valid_to not before"
        " valid_from",
    ),
    **{
        f"POST /registry/v1/permits/{{permit_id}}/{action}": (
            (412,),
            "If-Match must name the permit's current version, which the run changes",
        )
        for action in ("issue", "endorse", "replace", "renew", "settle")
    },
    "POST /registry/v1/permits/{permit_id}/cancel": (
        (412, 422),
        "If-Match must name the permit's current version; the reason must be one of the"
        " permit's jurisdiction's (Chifeng lists four)",
    ),
    "POST /registry/v1/permits/{permit_id}/address-change": (
        (412, 422),
        "If-Match must name the permit's current version; the move not after today and within"
        " the permit's area (its jurisdiction's divisions)",
    ),
    "POST /registry/v1/permits/{permit_id}/card/personalisation": (
        (422,),
        "the card key must be a point on P-256 and the photo a PNG or JPEG",
    ),
    # the schema registry
    "POST /schemas/v1/subjects/{subject}/versions": (
        (422,),
        "the schema must be valid under the JSON Schema 2020-12 meta-schema, each pattern one"
        " the linear-time engine runs within its limits and each $ref a registered version:"
        " a language of its own",
    ),
    "POST /schemas/v1/compatibility/subjects/{subject}": (
        (422,),
        "the candidate is checked as a registration is: the 2020-12 meta-schema,"
        " linear-time patterns, $refs to registered versions",
    ),
    "POST /schemas/v1/agreements": (
        (422,),
        "the subject must have a version in use and every field must be declared by its latest"
        " version (the registry's state at run time); valid_to must not be before valid_from",
    ),
    "PUT /schemas/v1/agreements/{agreement_id}": (
        (412, 422),
        "If-Match must be the agreement's current version, its ETag, which every amendment"
        " moves on; the terms are checked as POST /schemas/v1/agreements checks them",
    ),
    # the exchange and verification
    "POST /exchange/v1/proofs": (
        (422,),
        "the document is validated against its subject's version in the schema registry (the"
        " OpenAPI names the subjects; their schemas are registered, versioned and changed at run"
        " time), then by rules no JSON Schema states: the GB 11643 check character and a birth"
        " date not in the future of its citizen_id, valid_to not before valid_from",
    ),
    "GET /exchange/v1/proofs/{proof_id}": (
        (410,),
        "a proof its department revoked (DELETE) is gone: a state of the resource, as a 404 is",
    ),
    "POST /exchange/v1/lookup": (
        (422,),
        "a citizen ID has the GB 11643 check character, a real birth date (not in the future)"
        " and a province-level region code; the pattern states only its shape",
    ),
    "GET /exchange/v1/feed": (
        (400,),
        "the cursor is opaque: only a `next` the hub issued is one; the pattern states only its"
        " alphabet and length",
    ),
    "POST /verification/v1/taps": (
        (422,),
        "the service must be one of this hub's catalogue (config/catalogue.toml, served at GET"
        " /verification/v1/catalogue): deployment data, not part of the document",
    ),
    "POST /verification/v1/offline-decisions": (
        (422,),
        "each decision is validated against the tap-decision version in use in the schema"
        " registry (changed at run time), its service against this hub's catalogue and its"
        " department against the reporting window's",
    ),
}
"""Operations whose rules go beyond what JSON Schema can state, with the statuses a
schema-valid request may still get and why. Everything else must accept schema-valid input."""

ACCEPTED: Final = ("2xx", "3xx", "401", "403", "404", "409", "429")
"""schemathesis's default answers to a schema-valid request."""


@dataclass(frozen=True)
class LiveHub:
    url: str
    tokens: Mapping[str, str]
    basic: str  # the office client's own credentials, for the OAuth endpoints
    parameters: Mapping[str, str]


@pytest.fixture
def live_hub(settings: Settings, engine: Engine) -> Iterator[LiveHub]:
    app = create_app(settings, engine=engine)  # the system clock, as a served hub has
    server = LoopbackServer(app)
    try:
        hub = seed_shipped_agreements(app.state.hub)
        tokens, secrets = {}, {}
        with httpx.Client(base_url=server.url) as client:
            for name, (department, kind, scopes) in CLIENTS.items():
                new = hub.add_client(
                    department=department,
                    scopes=list(scopes),
                    kind=kind,
                    jurisdictions=_served(name, list(hub.jurisdictions)),
                    organisation=REPORTER if kind is ClientKind.REPORTER else None,
                )
                tokens[name] = _token(client, new)
                secrets[name] = f"{new.client_id}:{new.secret}"
            office = {"Authorization": f"Bearer {tokens['office']}"}
            permit_id = issued_permit(hub, client, office)  # type: ignore[arg-type]
        yield LiveHub(
            server.url,
            tokens,
            base64.b64encode(secrets["office"].encode()).decode(),
            {
                "path.permit_id": permit_id,
                "path.registration_id": _registration_of(hub.engine, permit_id),
                "path.agreement_id": "education-holders",
            },
        )
    finally:
        server.stop()


def _served(name: str, every: list[str]) -> list[str]:
    """The office serves every jurisdiction; the reporter reports to Chifeng's office."""
    return {"office": every, "reporter": ["chifeng"]}.get(name, [])


def _registration_of(engine: Engine, permit_id: str) -> str:
    with unit_of_work(engine) as session:
        permit = session.get(Permit, permit_id)
        assert permit is not None
        return permit.registration_id


def _token(client: httpx.Client, new: NewClient) -> str:
    assert new.secret is not None
    answer = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(new.client_id, new.secret),
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _config(hub: LiveHub, document: Mapping[str, Any]) -> str:
    """schemathesis.toml: strings the databases store (no U+0000, UTF-8 only, which the edge
    refuses with a 422 that a schema-valid request must not get), and per operation the
    token of a client that may call it."""
    lines = [
        "[generation]",
        "allow-x00 = false",
        'codec = "utf-8"',
        "",
        "[checks.missing_required_header]",  # RFC 6585 §3: a missing If-Match is a 428
        'expected-statuses = ["400", "401", "403", "406", "415", "422", "428"]',
        "",
        "[parameters]",
        *(f'"{name}" = "{value}"' for name, value in hub.parameters.items()),
        "",
    ]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            security = operation.get("security")
            if not security:
                continue
            if "oauth2" in security[0]:
                needed = set(security[0]["oauth2"])
                caller = next(n for n, (*_, scopes) in CLIENTS.items() if needed <= set(scopes))
                authorization = f"Bearer {hub.tokens[caller]}"
            else:  # the OAuth endpoints: the client's own credentials
                authorization = f"Basic {hub.basic}"
            name = f"{method.upper()} {path}"
            lines += [
                "[[operations]]",
                f'include-name = "{name}"',
                f'headers = {{ Authorization = "{authorization}" }}',
            ]
            if name in BEYOND_THE_SCHEMA:
                statuses = [*ACCEPTED, *map(str, BEYOND_THE_SCHEMA[name][0])]
                lines += [
                    "[operations.checks.positive_data_acceptance]",
                    f"expected-statuses = {json.dumps(statuses)}",
                ]
            lines.append("")
    return "\n".join(lines)


def test_the_openapi_document_holds_against_a_live_hub(live_hub: LiveHub, tmp_path: Path) -> None:
    seed = int(os.environ.get("HUB_CONTRACT_SEED") or random.randrange(2**31))
    examples = os.environ.get("HUB_CONTRACT_EXAMPLES", "20")
    print(f"schemathesis seed {seed} (replay with HUB_CONTRACT_SEED={seed})")
    document = httpx.get(f"{live_hub.url}/openapi.json").json()
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(live_hub, document))
    (tmp_path / "openapi.json").write_text(json.dumps(document))
    run = subprocess.run(
        [
            str(SCHEMATHESIS),
            "--config-file",
            str(config),
            "run",
            f"{live_hub.url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            examples,
            "--seed",
            str(seed),
            "--workers",
            "1",
            "--max-failures",
            "100",
            *(
                ["--include-path-regex", os.environ["HUB_CONTRACT_INCLUDE"]]
                if os.environ.get("HUB_CONTRACT_INCLUDE")
                else []
            ),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=1800,
    )
    assert run.returncode == 0, (
        f"schemathesis found failures (seed {seed}; replay with HUB_CONTRACT_SEED={seed}):\n"
        + run.stdout[-20000:]
        + run.stderr[-2000:]
    )
