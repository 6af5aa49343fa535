"""The exchange with the departments through the real app, on both databases: proofs filed
and revoked by their competent department, and look-ups under an agreement.

Holders are made by the registry's own use cases (register, apply, issue), so every permit
has its events, outbox snapshots and a sealed citizen ID, as in production. The departments
file is the test's own (`DEPARTMENTS`); the agreements are the shipped ones.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from sqlmodel import Session, select

from hub.audit import Actor
from hub.auth.domain import ClientKind
from hub.clock import FixedClock
from hub.composition import Hub
from hub.db import INT_MAX, unit_of_work
from hub.permits import applications, domain, eligibility, service
from hub.permits.identity import parse_citizen_id
from hub.permits.store import Proof
from hub.schemas import domain as schema_domain
from hub.schemas import service as schema_service
from hub.schemas.formats import format_checker
from hub.settings import Settings
from tests.auth.helpers import access_token, bearer
from tests.card.helpers import issued_permit
from tests.conftest import RegisterClient
from tests.connectors.helpers import (
    CHIFENG,
    NINGBO,
    NOW,
    OFFICE,
    citizen_id,
    department,
    exchange_audit,
    make_holders,
    register,
    seed_agreements,
    set_agreement_status,
    with_departments,
)
from tests.factories import build
from tests.verification.helpers import personalise, tap, tap_body


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return with_departments(settings, tmp_path)


@pytest.fixture
def seeded(hub: Hub, clock: FixedClock) -> Hub:
    return seed_agreements(hub, clock)


# --- proofs ------------------------------------------------------------------------------------

HOLDER_ID = citizen_id(1)


def employment(**changes: Any) -> dict[str, Any]:
    proof: dict[str, Any] = {
        "proof_id": "HRSS-150429-2026-000123",
        "citizen_id": HOLDER_ID,
        "kind": "employment",
        "valid_from": "2026-01-01",
        "valid_to": "2026-12-31",
        "details": {"months": 14, "employer": "赤峰某建材有限公司", "contract": "labour-contract"},
    }
    proof.update(changes)
    return {"subject": "proof.employment", "proof": proof}


@pytest.fixture
def hr(app_client: TestClient, register_client: RegisterClient, seeded: Hub) -> dict[str, str]:
    return department(app_client, register_client, "hr-social-security", "exchange:proofs")


def test_a_proof_is_filed_once_repeated_idempotently_and_never_rewritten(
    app_client: TestClient, hr: dict[str, str], hub: Hub
) -> None:
    first = app_client.post("/exchange/v1/proofs", json=employment(), headers=hr)
    assert first.status_code == 201, first.text
    filed = first.json()
    assert filed["proof_id"] == "HRSS-150429-2026-000123" and filed["kind"] == "employment"
    assert (filed["valid_from"], filed["valid_to"]) == ("2026-01-01", "2026-12-31")
    assert filed["recorded_at"].startswith("2026-10-13T02:00") and filed["revoked_at"] is None
    assert first.headers["location"] == "/exchange/v1/proofs/HRSS-150429-2026-000123"
    assert HOLDER_ID not in first.text

    again = app_client.post("/exchange/v1/proofs", json=employment(), headers=hr)
    assert again.status_code == 200 and again.json() == filed

    changed = app_client.post(
        "/exchange/v1/proofs", json=employment(valid_to="2027-06-30"), headers=hr
    )
    assert changed.status_code == 409, changed.text
    assert changed.json()["type"] == "/problems/proof-conflict"
    assert changed.json()["errors"][0]["pointer"] == "/proof/proof_id"
    assert "HRSS-150429-2026-000123" not in changed.text  # a proof id may be a citizen ID

    read = app_client.get(first.headers["location"], headers=hr)
    assert read.status_code == 200 and read.json() == filed

    with Session(hub.engine) as session:
        (stored,) = session.exec(select(Proof)).all()
    number = parse_citizen_id(HOLDER_ID, today=NOW.date())
    assert stored.citizen_id_hash == hub.vault.lookup_hash(number)
    assert stored.source_department == "hr-social-security"
    assert stored.details["months"] == 14
    entries = exchange_audit(hub, "exchange.proof")
    assert [(e.outcome, e.purpose) for e in entries] == [
        ("stored:employment", "proof-on-file"),
        ("repeat:employment", "proof-on-file"),
    ]
    assert {e.subject for e in entries} == {stored.citizen_id_hash}
    assert {e.actor_department for e in entries} == {"hr-social-security"}


@pytest.mark.parametrize(
    ("name", "body", "status", "kind", "pointer"),
    [
        ("housing", employment(), 403, "proof-not-owned", "/subject"),
        (
            "hr-social-security",
            employment(kind="business-licence"),
            403,
            "proof-not-owned",
            "/proof/kind",
        ),
        # not one of the subjects the OpenAPI lists: the request is malformed
        (
            "hr-social-security",
            {**employment(), "subject": "holder-record"},
            422,
            "validation-failed",
            "/subject",
        ),
        # its own subject, but an employment document: the schema says no
        (
            "education",
            {**employment(), "subject": "proof.school-enrolment"},
            422,
            "proof-invalid",
            None,
        ),
    ],
    ids=["other-departments-subject", "kind-of-another-authority", "not-a-proof", "education"],
)
def test_only_the_competent_department_files_a_proof(
    app_client: TestClient,
    register_client: RegisterClient,
    seeded: Hub,
    name: str,
    body: dict[str, Any],
    status: int,
    kind: str,
    pointer: str | None,
) -> None:
    headers = department(app_client, register_client, name, "exchange:proofs")
    response = app_client.post("/exchange/v1/proofs", json=body, headers=headers)
    assert response.status_code == status, response.text
    problem = response.json()
    assert problem["type"] == f"/problems/{kind}"
    if pointer is not None:
        assert [e["pointer"] for e in problem["errors"]] == [pointer]


def test_a_document_against_its_schema_every_issue_pointed_at_and_no_id_echoed(
    app_client: TestClient, hr: dict[str, str], hub: Hub
) -> None:
    wrong_check = HOLDER_ID[:-1] + ("0" if HOLDER_ID[-1] != "0" else "1")
    body = employment(citizen_id=wrong_check, valid_from="2026-13-01", colour="blue")
    del body["proof"]["kind"]
    body["proof"]["details"]["months"] = -1
    response = app_client.post(
        "/exchange/v1/proofs", json=body, headers={**hr, "Accept-Language": "zh-CN"}
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "/problems/proof-invalid"
    assert (problem["subject"], problem["schema_version"]) == ("proof.employment", 1)
    assert [e["pointer"] for e in problem["errors"]] == [
        "/proof/citizen_id",
        "/proof/colour",
        "/proof/details/months",
        "/proof/kind",
        "/proof/valid_from",
    ]
    assert wrong_check not in response.text and wrong_check[:14] not in response.text
    assert "证明文件" in problem["detail"]

    reversed_dates = employment(valid_from="2026-06-01", valid_to="2026-05-31")
    response = app_client.post("/exchange/v1/proofs", json=reversed_dates, headers=hr)
    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == ["/proof/valid_to"]

    unborn = employment(citizen_id=build("210102", "20300101"))  # the format cannot know today
    response = app_client.post("/exchange/v1/proofs", json=unborn, headers=hr)
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/proof/citizen_id"
    assert build("210102", "20300101") not in response.text
    with Session(hub.engine) as session:
        assert session.exec(select(Proof)).all() == []


def test_versions_retired_or_not_in_use_are_refused(
    app_client: TestClient, hr: dict[str, str], hub: Hub
) -> None:
    unknown = app_client.post(
        "/exchange/v1/proofs", json={**employment(), "schema_version": 9}, headers=hr
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["pointer"] == "/schema_version"
    for beyond in (INT_MAX, INT_MAX + 1, 2**63):  # the last int4 is no version; past it, refused
        answer = app_client.post(
            "/exchange/v1/proofs", json={**employment(), "schema_version": beyond}, headers=hr
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["pointer"] == "/schema_version"
    with unit_of_work(hub.engine) as session:
        schema_service.set_state(
            session,
            hub.schemas,
            hub.audit,
            "proof.employment",
            1,
            schema_domain.VersionState.RETIRED,
            actor=Actor("governance", "public-security"),
            now=hub.clock.now(),
        )
    named = app_client.post(
        "/exchange/v1/proofs", json={**employment(), "schema_version": 1}, headers=hr
    )
    assert named.status_code == 409, named.text
    assert named.json()["type"] == "/problems/schema-version-retired"
    default = app_client.post("/exchange/v1/proofs", json=employment(), headers=hr)
    assert default.status_code == 409
    assert default.json()["type"] == "/problems/schema-version-not-in-use"


def test_kinds_eligibility_does_not_use_yet_are_filed_too(
    app_client: TestClient, register_client: RegisterClient, seeded: Hub
) -> None:
    health = department(app_client, register_client, "health", "exchange:proofs")
    proof: dict[str, Any] = {
        "proof_id": "WJ-150429-2026-00311",
        "citizen_id": HOLDER_ID,
        "kind": "health-service",
        "valid_from": "2026-01-15",
        "valid_to": None,
        "details": {"service": "vaccination", "provider": "宁城县中心医院"},
    }
    body = {"subject": "proof.health-service", "proof": proof}
    first = app_client.post("/exchange/v1/proofs", json=body, headers=health)
    assert first.status_code == 201, first.text
    assert first.json()["kind"] == "health-service" and first.json()["valid_to"] is None
    again = app_client.post("/exchange/v1/proofs", json=body, headers=health)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    proof["details"] = {"service": "family-planning"}
    changed = app_client.post("/exchange/v1/proofs", json=body, headers=health)
    assert changed.status_code == 409 and changed.json()["type"] == "/problems/proof-conflict"
    civil = department(app_client, register_client, "civil-affairs", "exchange:proofs")
    assert app_client.post("/exchange/v1/proofs", json=body, headers=civil).status_code == 403


def test_revoking_is_the_filing_departments_alone_and_idempotent(
    app_client: TestClient, register_client: RegisterClient, hr: dict[str, str], hub: Hub
) -> None:
    filed = app_client.post("/exchange/v1/proofs", json=employment(), headers=hr).json()
    url = "/exchange/v1/proofs/HRSS-150429-2026-000123"
    housing = department(app_client, register_client, "housing", "exchange:proofs")
    assert app_client.delete(url, headers=housing).status_code == 404
    assert app_client.get(url, headers=housing).status_code == 404
    reader = department(app_client, register_client, "hr-social-security", "exchange:lookup")
    assert app_client.delete(url, headers=reader).status_code == 403  # scope

    revoked = app_client.delete(url, headers=hr)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["id"] == filed["id"]
    assert revoked.json()["revoked_at"].startswith("2026-10-13T02:00")
    again = app_client.delete(url, headers=hr)
    assert again.status_code == 200 and again.json() == revoked.json()
    gone = app_client.get(url, headers=hr)  # withdrawn: no longer there to rely on
    assert gone.status_code == 410, gone.text
    assert gone.json()["type"] == "/problems/proof-revoked"
    assert gone.json()["revoked_at"] == revoked.json()["revoked_at"]
    missing = app_client.delete(f"/exchange/v1/proofs/{HOLDER_ID}", headers=hr)
    assert missing.status_code == 404 and missing.json()["type"] == "/problems/proof-not-found"
    assert HOLDER_ID not in missing.text  # a path holds whatever was typed there
    outcomes = [e.outcome for e in exchange_audit(hub, "exchange.proof.revoke")]
    assert outcomes == ["revoked", "already-revoked"]
    assert [e.outcome for e in exchange_audit(hub, "exchange.proof.read")] == ["found"]


def test_a_revoked_proof_no_longer_meets_a_condition(
    app_client: TestClient, register_client: RegisterClient, seeded: Hub
) -> None:
    """Ningbo accepts a housing department's rental record instead of the lease [NB] 二(二):
    accepted with it on file, incomplete once housing revokes it."""
    number = citizen_id(7)
    registration_id = register(seeded, number, NINGBO)
    housing = department(app_client, register_client, "housing", "exchange:proofs")
    rental = {
        "subject": "proof.rental-registration",
        "proof": {
            "proof_id": "甬租备2026第018844号",
            "citizen_id": number,
            "kind": "rental-registration",
            "valid_from": "2026-03-01",
            "valid_to": "2027-02-28",
            "details": {"registration_number": "甬租备2026第018844号", "region": NINGBO},
        },
    }
    filed = app_client.post("/exchange/v1/proofs", json=rental, headers=housing)
    assert filed.status_code == 201, filed.text
    assert filed.headers["location"].startswith("/exchange/v1/proofs/%E7%94%AC")

    def assess() -> eligibility.Outcome:
        with Session(seeded.engine) as session:  # assessed, then rolled back: nothing applied
            outcome, _ = applications.apply_for_permit(
                session,
                seeded.lifecycle,
                seeded.jurisdictions,
                registration_id,
                applications.Claim("residence", "rented", None, frozenset({"id-card", "photo"})),
                actor=OFFICE,
                now=NOW,
                today=NOW.date(),
            )
            session.rollback()
        return outcome

    accepted = assess()
    assert isinstance(accepted, eligibility.Accepted) and accepted.met_by == "record-on-file"
    revoked = app_client.delete(filed.headers["location"], headers=housing)
    assert revoked.status_code == 200, revoked.text
    incomplete = assess()
    assert isinstance(incomplete, eligibility.Incomplete)
    assert [m.code for m in incomplete.missing] == ["lease-contract"]
    with Session(seeded.engine) as session:
        id_hash = seeded.vault.lookup_hash(parse_citizen_id(number, today=NOW.date()))
        assert applications.proofs_on_file(session, id_hash) == []


# --- look-ups ----------------------------------------------------------------------------------


def lookup(client: TestClient, headers: dict[str, str], number: str, purpose: str) -> Any:
    return client.post(
        "/exchange/v1/lookup", json={"citizen_id": number, "purpose": purpose}, headers=headers
    )


def test_a_look_up_answers_only_the_agreed_fields_and_is_audited(
    app_client: TestClient, register_client: RegisterClient, seeded: Hub
) -> None:
    (holder,) = make_holders(seeded, 1, 1)
    education = department(app_client, register_client, "education", "exchange:lookup")
    found = lookup(app_client, education, holder.citizen_id, "入学资格审核 2026-0412")
    assert found.status_code == 200, found.text
    assert found.headers["cache-control"] == "no-store"
    record = found.json()
    assert record["$schema"] == "urn:permit-hub:schema:holder-record:1"
    assert record["schema_version"] == 1
    assert record["event"]["type"] == "lookup"
    assert record["event"]["id"].startswith("lookup-")
    assert record["event"]["permit_version"] == 2
    assert record["permit"] == {
        "id": holder.permit_id,
        "jurisdiction": "chifeng",
        "state": "valid",
        "valid_from": "2026-10-13",
        "expires_on": "2027-10-13",
        "residence_start": "2026-03-02",
    }
    assert record["holder"] == {
        "citizen_id": holder.citizen_id,
        "name": f"王芳{holder.citizen_id[-4:]}",
        "current_region": CHIFENG,
    }
    valid = app_client.post(
        "/schemas/v1/subjects/holder-record/versions/1/validate",
        json={"document": record},
        headers=department(app_client, register_client, "education", "schemas:read"),
    )
    assert valid.json()["valid"] is True

    hr = department(app_client, register_client, "hr-social-security", "exchange:lookup")
    other = lookup(app_client, hr, holder.citizen_id.lower(), "就业登记核验").json()
    assert set(other["holder"]) == {"citizen_id", "name", "workplace", "current_region"}

    entries = exchange_audit(seeded, "exchange.lookup")
    assert [(e.actor_department, e.outcome, e.purpose) for e in entries] == [
        ("education", "found", "入学资格审核 2026-0412"),
        ("hr-social-security", "found", "就业登记核验"),
    ]
    assert {e.subject for e in entries} == {holder.id_hash}


def test_without_an_agreement_in_force_nothing_is_disclosed_but_all_is_audited(
    app_client: TestClient, register_client: RegisterClient, seeded: Hub
) -> None:
    (holder,) = make_holders(seeded, 1, 1)
    stranger = citizen_id(99)  # no permit: the refusal must not differ from a holder's
    answers = []
    for name in ("civil-affairs", "health"):  # no link, no agreement
        headers = department(app_client, register_client, name, "exchange:lookup")
        for number in (holder.citizen_id, stranger):
            answers.append(lookup(app_client, headers, number, "核验"))
    set_agreement_status(seeded, "education-holders", schema_domain.AgreementStatus.SUSPENDED)
    education = department(app_client, register_client, "education", "exchange:lookup")
    answers += [lookup(app_client, education, n, "核验") for n in (holder.citizen_id, stranger)]
    for answer in answers:
        assert answer.status_code == 403, answer.text
        assert answer.json()["type"] == "/problems/no-agreement"
        assert holder.citizen_id not in answer.text and "permit" not in answer.json()
    assert "suspended" in answers[-1].json()["detail"]
    assert answers[-1].json()["detail"] == answers[-2].json()["detail"]

    entries = exchange_audit(seeded, "exchange.lookup")
    assert len(entries) == 6 and {e.outcome for e in entries} == {"refused"}
    assert {e.purpose for e in entries} == {"核验"}
    set_agreement_status(seeded, "education-holders", schema_domain.AgreementStatus.ACTIVE)
    assert lookup(app_client, education, holder.citizen_id, "核验").status_code == 200


def test_a_person_without_a_permit_and_a_bad_number(
    app_client: TestClient, register_client: RegisterClient, seeded: Hub
) -> None:
    education = department(app_client, register_client, "education", "exchange:lookup")
    stranger = citizen_id(99)
    missing = lookup(app_client, education, stranger, "核验")
    assert missing.status_code == 404, missing.text
    assert missing.json()["type"] == "/problems/holder-not-found"
    assert stranger not in missing.text
    bad = lookup(app_client, education, stranger[:-1] + "Y", "核验")
    assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/citizen_id"
    assert stranger[:10] not in bad.text
    no_purpose = app_client.post(
        "/exchange/v1/lookup", json={"citizen_id": stranger}, headers=education
    )
    assert no_purpose.status_code == 422
    (entry,) = exchange_audit(seeded, "exchange.lookup")
    assert (entry.outcome, entry.purpose) == ("not-found", "核验")
    feed_only = department(app_client, register_client, "education", "exchange:feed")
    assert lookup(app_client, feed_only, stranger, "核验").status_code == 403


def test_a_citizen_id_is_looked_up_in_its_documented_form_only(
    app_client: TestClient, register_client: RegisterClient, seeded: Hub, contract: Contract
) -> None:
    """Upper-case X and ASCII digits, as the OpenAPI pattern says and records carry them: a
    lower-case x or full-width digits are refused before anything is looked up or audited."""
    education = department(app_client, register_client, "education", "exchange:lookup")
    number = build("210102", "19900115", "019")
    assert number.endswith("X")
    full_width = number.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789X"})
    body = contract.document["components"]["schemas"]["LookupBody"]
    for text in (number.lower(), full_width, " " + number):
        assert re.fullmatch(body["properties"]["citizen_id"]["pattern"], text) is None
        refused = lookup(app_client, education, text, "核验")
        assert refused.status_code == 422, refused.text
        assert refused.json()["type"] == "/problems/validation-failed"
        assert [e["pointer"] for e in refused.json()["errors"]] == ["/citizen_id"]
        assert number[6:14] not in refused.text
    assert exchange_audit(seeded, "exchange.lookup") == []
    assert lookup(app_client, education, number, "核验").status_code == 404


def test_the_live_permit_is_preferred_to_a_cancelled_one(
    app_client: TestClient, register_client: RegisterClient, seeded: Hub
) -> None:
    (holder,) = make_holders(seeded, 1, 1)
    education = department(app_client, register_client, "education", "exchange:lookup")
    with unit_of_work(seeded.engine) as session:
        service.perform(
            session,
            seeded.lifecycle,
            holder.permit_id,
            domain.Action.CANCEL,
            expected_version=2,
            actor=OFFICE,
            now=NOW,
            today=NOW.date(),
            details={"reason": "false-materials"},
        )
    cancelled = lookup(app_client, education, holder.citizen_id, "核验").json()
    assert (cancelled["permit"]["id"], cancelled["permit"]["state"]) == (
        holder.permit_id,
        "cancelled",
    )
    (again,) = make_holders(seeded, 1, 1, issue=False)  # a new application, accepted
    live = lookup(app_client, education, holder.citizen_id, "核验").json()
    assert (live["permit"]["id"], live["permit"]["state"]) == (again.permit_id, "accepted")


# --- the OpenAPI document as the contract ------------------------------------------------------


class Contract:
    """The app's OpenAPI document, to hold real answers to what it promises for them."""

    def __init__(self, client: TestClient) -> None:
        self.document: dict[str, Any] = client.get("/openapi.json").json()

    def holds(self, method: str, path: str, answer: Any) -> Any:
        """`answer` to `method` at `path` (the document's template) has a documented status
        and media type, and a body valid against a schema that says what it holds."""
        responses = self.document["paths"][path][method]["responses"]
        assert str(answer.status_code) in responses, (method, path, answer.text)
        media_type = answer.headers["content-type"].split(";")[0]
        schema = responses[str(answer.status_code)]["content"][media_type]["schema"]
        assert self._states_a_shape(schema), (method, path, answer.status_code, schema)
        body = answer.json() if media_type.endswith("json") else answer.text
        validator = Draft202012Validator(
            {**schema, "components": self.document["components"]}, format_checker=format_checker()
        )
        assert [error.message for error in validator.iter_errors(body)] == [], (method, path)
        return body

    def follows(self, method: str, path: str, status: int, link: str) -> dict[str, Any]:
        """The operation the named link of `method path`'s `status` answer leads to."""
        answer = self.document["paths"][path][method]["responses"][str(status)]
        target = answer["links"][link]["operationId"]
        (operation,) = [
            operation
            for item in self.document["paths"].values()
            for operation in item.values()
            if operation["operationId"] == target
        ]
        return dict(operation)

    def _states_a_shape(self, schema: dict[str, Any]) -> bool:
        """More than "any object": its properties, its items' or a string's pattern."""
        while "$ref" in schema:
            schema = self.document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        if schema.get("type") == "array":
            return self._states_a_shape(schema["items"])
        return bool(schema.get("properties") or schema.get("pattern"))


@pytest.fixture
def contract(app_client: TestClient) -> Contract:
    return Contract(app_client)


def test_every_exchange_answer_is_the_one_the_openapi_document_describes(
    app_client: TestClient,
    register_client: RegisterClient,
    seeded: Hub,
    contract: Contract,
) -> None:
    (holder,) = make_holders(seeded, 1, 1)
    hr = department(app_client, register_client, "hr-social-security", "exchange:proofs")
    proofs, proof = "/exchange/v1/proofs", "/exchange/v1/proofs/{proof_id}"
    filed = app_client.post(proofs, json=employment(), headers=hr)
    url = filed.headers["location"]
    contract.holds("post", proofs, filed)  # 201
    contract.holds("post", proofs, app_client.post(proofs, json=employment(), headers=hr))  # 200
    contract.holds("get", proof, app_client.get(url, headers=hr))
    contract.holds("delete", proof, app_client.delete(url, headers=hr))
    assert contract.holds("get", proof, app_client.get(url, headers=hr))["status"] == 410
    for status in (200, 201):  # a filed proof leads to reading and revoking it
        assert contract.follows("post", proofs, status, "ReadProof")["summary"].startswith(
            "A proof"
        )
        assert contract.follows("post", proofs, status, "RevokeProof")["summary"].startswith(
            "Revoke"
        )

    education = department(
        app_client, register_client, "education", "exchange:lookup", "exchange:feed"
    )
    found = lookup(app_client, education, holder.citizen_id, "核验")
    assert contract.holds("post", "/exchange/v1/lookup", found)["holder"]
    missing = lookup(app_client, education, citizen_id(99), "核验")
    assert contract.holds("post", "/exchange/v1/lookup", missing)["status"] == 404
    page = app_client.get("/exchange/v1/feed", params={"limit": 1}, headers=education)
    assert len(contract.holds("get", "/exchange/v1/feed", page)["records"]) == 1

    operator = department(app_client, register_client, "public-security", "exchange:admin")
    states = app_client.get("/exchange/v1/departments", headers=operator)
    assert len(contract.holds("get", "/exchange/v1/departments", states)) == 2  # hr, housing
    letters = app_client.get("/exchange/v1/dead-letters", headers=operator)
    contract.holds("get", "/exchange/v1/dead-letters", letters)
    replay = app_client.post("/exchange/v1/dead-letters/replay", headers=operator)
    assert contract.holds("post", "/exchange/v1/dead-letters/replay", replay) == {"replayed": 0}


def test_every_window_answer_is_the_one_the_openapi_document_describes(
    app_client: TestClient,
    register_client: RegisterClient,
    seeded: Hub,
    contract: Contract,
) -> None:
    office = department(app_client, register_client, "public-security", "registry:write")
    card = personalise(seeded, issued_permit(seeded, app_client, office))
    new = register_client("education", ("verification:tap",), kind=ClientKind.WINDOW_TERMINAL)
    window = bearer(access_token(app_client, new))
    challenges = app_client.post("/verification/v1/challenges", headers=window)
    contract.holds("post", "/verification/v1/challenges", challenges)
    taps = contract.follows("post", "/verification/v1/challenges", 201, "Tap")
    assert taps["summary"].startswith("Decide a tap")
    granted = tap(app_client, window, card)
    assert contract.holds("post", "/verification/v1/taps", granted)["holder"]["holder"]
    body = tap_body(challenges.json()["challenge_id"], "compulsory-education", b"no record", "")
    denied = app_client.post("/verification/v1/taps", json=body, headers=window)
    assert contract.holds("post", "/verification/v1/taps", denied)["decision"] == "deny"
    for path in ("/status-list", "/issuing-keys", "/catalogue"):
        contract.holds(
            "get",
            f"/verification/v1{path}",
            app_client.get(f"/verification/v1{path}", headers=window),
        )
    report = {
        "decisions": [
            {
                "decision_id": "0d57cf97-3cbe-4a03-a208-a764075f9d2c",
                "card_serial": card.serial,
                "service_code": "compulsory-education",
                "department": "education",
                "decision": "grant",
                "reasons": [],
                "offline": True,
                "decided_at": "2026-10-13T10:02:45+08:00",
            }
        ]
    }
    reported = app_client.post("/verification/v1/offline-decisions", json=report, headers=window)
    assert contract.holds("post", "/verification/v1/offline-decisions", reported) == {
        "decisions": [{"decision_id": "0d57cf97-3cbe-4a03-a208-a764075f9d2c", "status": "stored"}]
    }


@pytest.mark.parametrize(
    "text", ["", "YQ==", "YWI=", "YWJj", "YQ", "YQ=", "Y===", "YW Jj", "YWJj\n", "-_-_", "YQ==YQ=="]
)
def test_a_taps_base64_is_exactly_what_its_documented_pattern_says(
    app_client: TestClient,
    register_client: RegisterClient,
    seeded: Hub,
    contract: Contract,
    text: str,
) -> None:
    schema = contract.document["components"]["schemas"]["TapBody"]["properties"]["record"]
    new = register_client("education", ("verification:tap",), kind=ClientKind.WINDOW_TERMINAL)
    window = bearer(access_token(app_client, new))
    body = tap_body(str(uuid.uuid4()), "compulsory-education", b"", "")
    answer = app_client.post("/verification/v1/taps", json={**body, "record": text}, headers=window)
    refused = [e["pointer"] for e in answer.json().get("errors", [])] == ["/record"]
    assert refused == (re.fullmatch(schema["pattern"], text) is None), answer.text
    assert answer.status_code == (422 if refused else 200)


def test_a_relaxed_version_in_use_cannot_make_the_hub_fail_on_what_it_reads(
    app_client: TestClient, hr: dict[str, str], register_client: RegisterClient
) -> None:
    """Governance may put in use a version requiring less than the hub reads of a proof (found
    by the contract's stateful run: a 500 on a proof without `kind`); such a proof is a 422
    naming each member the hub reads, as what it reads it."""
    governance = department(
        app_client, register_client, "public-security", "schemas:read", "schemas:admin"
    )
    subject = "/schemas/v1/subjects/proof.employment"
    config = app_client.put(
        "/schemas/v1/config/proof.employment", json={"compatibility": "NONE"}, headers=governance
    )
    assert config.status_code == 200, config.text
    relaxed = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}
    assert app_client.post(
        f"{subject}/versions", json={"schema": relaxed}, headers=governance
    ).is_success
    active = app_client.put(
        f"{subject}/versions/2/state", json={"state": "ACTIVE"}, headers=governance
    )
    assert active.status_code == 200, active.text

    empty = app_client.post(
        "/exchange/v1/proofs", json={"subject": "proof.employment", "proof": {}}, headers=hr
    )
    assert empty.status_code == 422, empty.text
    assert [error["pointer"] for error in empty.json()["errors"]] == [
        "/proof/kind",
        "/proof/proof_id",
        "/proof/citizen_id",
        "/proof/valid_from",
        "/proof/details",
    ]
    dates = employment(valid_from="2026-13-45", valid_to=20261231, details=[])
    wrong = app_client.post("/exchange/v1/proofs", json=dates, headers=hr)
    assert wrong.status_code == 422, wrong.text
    assert {error["pointer"] for error in wrong.json()["errors"]} == {
        "/proof/valid_from",
        "/proof/details",
        "/proof/valid_to",
    }
    assert app_client.post("/exchange/v1/proofs", json=employment(), headers=hr).status_code == 201
