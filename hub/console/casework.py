"""A clerk registers a residence and takes an application in the console, on forms built from
the jurisdiction's rules: the registration's fields [CF §11], then the conditions, their forms
and the materials each needs, as `config/jurisdictions/*.toml` states them. The posted forms
are validated by the API's own bodies (hub.permits.bodies) and go to the same use cases; a
refusal keeps what the clerk typed and says what to change."""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from hub.audit import Actor
from hub.auth.guard import GuardedRoute, actor_of, principal_of, signed_in
from hub.auth.store import jurisdictions_of
from hub.composition import Hub
from hub.console.pages import (
    SECURITY_HEADERS,
    language_of,
    page_context,
    posted_number,
    render,
)
from hub.db import unit_of_work
from hub.deps import DbSession
from hub.permits import applications, domain, eligibility, service
from hub.permits.bodies import (
    AddressChangeBody,
    ApplicationBody,
    RegistrationBody,
    check_cancellation_reason,
    registration_input,
)
from hub.permits.jurisdictions import Jurisdiction
from hub.problems import VALIDATION_FAILED, DomainProblem, FieldError, Problem, field_errors
from hub.text import Text

router = APIRouter(route_class=GuardedRoute, include_in_schema=False)
PAGE: Final = "/console/office"
REASONS: Final = {
    "employment": Text("就业", "Employment"),
    "business": Text("经商", "Business"),
    "study": Text("就学", "Study"),
    "family": Text("投亲", "Family"),
    "other": Text("其他", "Other"),
}
NOT_YOURS: Final = Text(
    "现住址不在您受理的辖区内", "The current address is outside the jurisdictions you serve"
)


async def _posted(request: Request) -> list[tuple[str, str]]:
    return parse_qsl((await request.body()).decode("utf-8", "replace"))


def _errors(problem: Problem, language: str) -> list[dict[str, str]]:
    if problem.errors:
        return [error.render(language) for error in problem.errors]  # type: ignore[arg-type]
    return [{"detail": problem.detail.in_(language) if problem.detail else problem.kind.slug}]


# --- registration ------------------------------------------------------------------------------


@router.get(PAGE + "/register")
@signed_in("registry:write")
def registration_form(request: Request, session: DbSession) -> Response:
    return _registration_page(request, session, {}, [])


def _registration_page(
    request: Request, session: Any, values: dict[str, str], errors: list[dict[str, str]]
) -> Response:
    hub: Hub = request.app.state.hub
    principal = principal_of(request)
    served = sorted(jurisdictions_of(session, principal.client_id))
    return render(
        request,
        "register.html",
        status=422 if errors else 200,
        **page_context(request, principal),
        places=[hub.jurisdictions[code] for code in served],
        reasons=REASONS,
        values=values,
        errors=errors,
    )


@router.post(PAGE + "/register")
@signed_in("registry:write")
async def register(request: Request) -> Response:
    fields = {name: value.strip() for name, value in await _posted(request) if name != "csrf"}
    body = {name: value for name, value in fields.items() if value}
    hub: Hub = request.app.state.hub
    try:
        parsed = RegistrationBody.model_validate(body)
        registration_id = await run_in_threadpool(_register, hub, actor_of(request), parsed)
    except ValidationError as invalid:
        errors = [e.render(language_of(request)) for e in field_errors(invalid.errors(), body)]
        return await run_in_threadpool(_refused_registration, request, hub, fields, errors)
    except (Problem, DomainProblem) as refused:
        problem = refused if isinstance(refused, Problem) else refused.problem()
        errors = _errors(problem, language_of(request))
        return await run_in_threadpool(_refused_registration, request, hub, fields, errors)
    return RedirectResponse(
        f"{PAGE}/registrations/{registration_id}/apply", status_code=303, headers=SECURITY_HEADERS
    )


def _refused_registration(
    request: Request, hub: Hub, values: dict[str, str], errors: list[dict[str, str]]
) -> Response:
    with unit_of_work(hub.engine) as session:
        return _registration_page(request, session, values, errors)


def _register(hub: Hub, actor: Actor, body: RegistrationBody) -> str:
    today = hub.clock.today()
    with unit_of_work(hub.engine) as session:
        place = next((p for p in hub.jurisdictions.values() if p.covers(body.current_region)), None)
        if place is None or place.code not in jurisdictions_of(session, actor.client_id):
            raise Problem(
                VALIDATION_FAILED,
                NOT_YOURS,
                errors=[FieldError(NOT_YOURS, pointer="/current_region")],
            )
        registration = service.register(
            session,
            hub.lifecycle,
            hub.vault,
            hub.jurisdictions,
            registration_input(body, today),
            actor=actor,
            now=hub.clock.now(),
            today=today,
        )
        return registration.id


# --- application -------------------------------------------------------------------------------


def _forms(place: Jurisdiction) -> list[dict[str, Any]]:
    """Each condition's forms with every material the window needs for it (base included)."""
    application = place.application
    return [
        {
            "kind": kind,
            "name": Text(condition.name.zh, condition.name.en),
            "forms": [
                {
                    "code": form.code,
                    "name": Text(form.name.zh, form.name.en),
                    "materials": application.materials_for(kind, form.code),
                    "cite": form.cite,
                }
                for form in condition.forms
            ],
        }
        for kind, condition in application.conditions.items()
    ]


@router.get(PAGE + "/registrations/{registration_id}/apply")
@signed_in("registry:write")
def application_form(request: Request, registration_id: str, session: DbSession) -> Response:
    return _application_page(request, session, registration_id, {}, None)


def _application_page(
    request: Request,
    session: Any,
    registration_id: str,
    values: dict[str, Any],
    refusal: dict[str, Any] | None,
) -> Response:
    hub: Hub = request.app.state.hub
    registration = service.read_registration(
        session, hub.audit, registration_id, actor=actor_of(request), now=hub.clock.now()
    )
    place = hub.jurisdictions[registration.jurisdiction]
    application = place.application
    return render(
        request,
        "apply.html",
        status=422 if refusal else 200,
        **page_context(request, principal_of(request)),
        registration=service.registration_view(registration, hub.vault),
        place=place,
        conditions=_forms(place),
        materials={code: Text(m.name.zh, m.name.en) for code, m in application.materials.items()},
        base=application.base_materials.materials,
        exemptions=application.exemptions,
        values=values,
        refusal=refusal,
    )


@router.post(PAGE + "/registrations/{registration_id}/apply")
@signed_in("registry:write")
async def apply(request: Request, registration_id: str) -> Response:
    posted = await _posted(request)
    chosen = dict(posted)
    claim: dict[str, Any] = {
        "registration_id": registration_id,
        "materials": [value for name, value in posted if name == "materials"],
        **{k: chosen[k] for k in ("exemption",) if chosen.get(k)},
    }
    condition, _, form = chosen.get("form", "").partition(":")  # the radio names both
    if form:
        claim["condition"], claim["form"] = condition, form
    hub: Hub = request.app.state.hub
    language = language_of(request)
    try:
        body = ApplicationBody.model_validate(claim)
    except ValidationError as invalid:
        errors = [e.render(language) for e in field_errors(invalid.errors(), claim)]
        return await run_in_threadpool(
            _refused_application, request, hub, registration_id, claim, {"errors": errors}
        )
    try:
        outcome = await run_in_threadpool(_apply, hub, actor_of(request), body)
    except (Problem, DomainProblem) as refused:
        problem = refused if isinstance(refused, Problem) else refused.problem()
        outcome = {"errors": _errors(problem, language)}
    if isinstance(outcome, str):
        return RedirectResponse(
            f"{PAGE}/permits/{outcome}", status_code=303, headers=SECURITY_HEADERS
        )
    return await run_in_threadpool(
        _refused_application, request, hub, registration_id, claim, outcome
    )


def _refused_application(
    request: Request,
    hub: Hub,
    registration_id: str,
    values: dict[str, Any],
    refusal: dict[str, Any],
) -> Response:
    with unit_of_work(hub.engine) as session:
        return _application_page(request, session, registration_id, values, refusal)


def _apply(hub: Hub, actor: Actor, body: ApplicationBody) -> str | dict[str, Any]:
    """The permit's id when accepted; else what the page says (the refusal is audited and
    committed like the API's)."""
    with unit_of_work(hub.engine) as session:
        outcome, permit = applications.apply_for_permit(
            session,
            hub.lifecycle,
            hub.jurisdictions,
            body.registration_id,
            applications.Claim(
                body.condition, body.form, body.exemption, frozenset(body.materials)
            ),
            actor=actor,
            now=hub.clock.now(),
            today=hub.clock.today(),
        )
    if isinstance(outcome, eligibility.Incomplete):
        return {"missing": [Text(m.zh, m.en) for m in outcome.missing]}
    if isinstance(outcome, eligibility.Ineligible):
        return {"ineligible": Text(outcome.zh, outcome.en), "cite": outcome.cite}
    assert permit is not None
    return permit.id


# --- cancellation and address change from the holder's page -------------------------------------


def _version(fields: dict[str, str]) -> int:
    return posted_number(fields.get("version", ""), Text("版本号无效", "Not a version"))


@router.post(PAGE + "/permits/{permit_id}/cancel")
@signed_in("registry:write")
async def cancel(request: Request, permit_id: str) -> Response:
    """Cancel for one of the jurisdiction's reasons [CF §23], with the version the clerk saw."""
    fields = dict(await _posted(request))
    version = _version(fields)
    hub: Hub = request.app.state.hub
    await run_in_threadpool(
        _cancel, hub, actor_of(request), permit_id, fields.get("reason") or None, version
    )
    return RedirectResponse(
        f"{PAGE}/permits/{permit_id}?done=cancel", status_code=303, headers=SECURITY_HEADERS
    )


def _cancel(hub: Hub, actor: Actor, permit_id: str, reason: str | None, version: int) -> None:
    with unit_of_work(hub.engine) as session:
        permit = service.permit_of(session, permit_id)
        check_cancellation_reason(hub.jurisdictions[permit.jurisdiction], reason)
        service.perform(
            session,
            hub.lifecycle,
            permit_id,
            domain.Action.CANCEL,
            expected_version=version,
            actor=actor,
            now=hub.clock.now(),
            today=hub.clock.today(),
            details={"reason": reason} if reason else None,
        )


@router.post(PAGE + "/permits/{permit_id}/address-change")
@signed_in("registry:write")
async def change_address(request: Request, permit_id: str) -> Response:
    """A move within the permit's area, as the API takes it (the same body and checks)."""
    fields = {name: value.strip() for name, value in await _posted(request)}
    version = _version(fields)
    given = {k: fields[k] for k in ("new_address", "new_region", "moved_on") if fields.get(k)}
    try:
        body = AddressChangeBody.model_validate(given)
    except ValidationError as invalid:
        raise Problem(VALIDATION_FAILED, errors=field_errors(invalid.errors(), given)) from None
    hub: Hub = request.app.state.hub
    await run_in_threadpool(_move, hub, actor_of(request), permit_id, body, version)
    return RedirectResponse(
        f"{PAGE}/permits/{permit_id}?done=change-address",
        status_code=303,
        headers=SECURITY_HEADERS,
    )


def _move(hub: Hub, actor: Actor, permit_id: str, body: AddressChangeBody, version: int) -> None:
    today = hub.clock.today()
    if body.moved_on > today:
        raise Problem(VALIDATION_FAILED, Text("迁入日期晚于今天", "The move is in the future"))
    with unit_of_work(hub.engine) as session:
        permit = service.permit_of(session, permit_id)
        service.change_address(
            session,
            hub.lifecycle,
            hub.jurisdictions[permit.jurisdiction],
            permit_id,
            expected_version=version,
            moved_on=body.moved_on,
            new_address=body.new_address,
            new_region=body.new_region,
            actor=actor,
            now=hub.clock.now(),
            today=today,
        )
