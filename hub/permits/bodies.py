"""The bodies a person fills in at an acceptance office: a residence registration and an
application, as the registry API takes them and the console's forms post them (both validate
with these models, so a form and an API call are refused for the same reasons)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from hub.deps import IsoDate
from hub.permits import service
from hub.permits.identity import CitizenId, InvalidCitizenId, citizen_id_problem, parse_citizen_id
from hub.permits.jurisdictions import Code, ConditionKind, Jurisdiction
from hub.permits.problems import CANCEL_REASON
from hub.permits.views import CitizenIdText, Reason, Relation
from hub.problems import FieldError, Problem, Text

REGION = r"^[0-9]{6}$"


class DeclarantBody(BaseModel):
    relation: Relation
    citizen_id: CitizenIdText = Field(description="The declarant's own ID number")
    because: Literal["minor", "elderly-limited-mobility", "disabled"]


class RegistrationBody(BaseModel):
    """Residence registration with the fields of [CF §11]."""

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "citizen_id": "11010519491231002X",
                    "name": "王芳",
                    "ethnicity": "汉族",
                    "household_address": "北京市朝阳区某街道1号",
                    "household_region": "110105",
                    "current_address": "赤峰市红山区长青路12号3栋2单元501室",
                    "current_region": "150402",
                    "reason": "employment",
                    "workplace": "赤峰华达物流有限公司",
                    "contact": "13800000000",
                    "arrived_on": "2025-06-02",
                    "temporary_permit_since": "2025-06-02",
                }
            ]
        }
    }

    citizen_id: CitizenIdText
    name: str = Field(min_length=1, max_length=64)
    ethnicity: str = Field(min_length=1, max_length=32)
    household_address: str = Field(min_length=1, max_length=256)
    household_region: str = Field(pattern=REGION)
    current_address: str = Field(min_length=1, max_length=256)
    current_region: str = Field(pattern=REGION)
    reason: Reason
    workplace: str | None = Field(default=None, max_length=256)
    contact: str = Field(pattern=r"^\+?[0-9\- ]{5,20}$")
    arrived_on: IsoDate
    temporary_permit_since: IsoDate | None = Field(
        default=None, description="Start of an old temporary-residence permit (暂住证) to import"
    )
    declarant: DeclarantBody | None = None


def citizen_id_at(text: str, today: date, pointer: str) -> CitizenId:
    """The number typed, or a 422 pointing at `pointer` that does not repeat it."""
    try:
        return parse_citizen_id(text, today=today)
    except InvalidCitizenId as error:
        raise citizen_id_problem(error, pointer) from None


def registration_input(body: RegistrationBody, today: date) -> service.RegistrationInput:
    """What the registration use case takes, from a body the API or a console form gave."""
    declarant = body.declarant
    return service.RegistrationInput(
        citizen_id=citizen_id_at(body.citizen_id, today, "/citizen_id"),
        name=body.name,
        ethnicity=body.ethnicity,
        household_address=body.household_address,
        household_region=body.household_region,
        current_address=body.current_address,
        current_region=body.current_region,
        reason=body.reason,
        workplace=body.workplace,
        contact=body.contact,
        arrived_on=body.arrived_on,
        temporary_permit_since=body.temporary_permit_since,
        declarant=service.Declarant(
            declarant.relation,
            citizen_id_at(declarant.citizen_id, today, "/declarant/citizen_id"),
            declarant.because,
        )
        if declarant
        else None,
    )


class ApplicationBody(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "registration_id": "7f0c2d4e-5d7b-4d8a-9a53-3c1f1f6f2b11",
                    "condition": "residence",
                    "form": "rented",
                    "materials": ["id-card", "photo", "lease-contract"],
                }
            ]
        }
    }

    registration_id: str = Field(
        min_length=1, max_length=36, description="The `id` of `POST /registrations`"
    )
    condition: ConditionKind | None = None
    form: Code | None = Field(
        default=None,
        max_length=64,
        description="A form of the condition in the registration's jurisdiction, e.g. Chifeng's"
        " owned, purchased, rented or dormitory for residence; else a 422 listing them",
    )
    exemption: Code | None = Field(default=None, max_length=64)
    materials: list[Annotated[Code, Field(max_length=64)]] = Field(
        default_factory=list, max_length=50
    )


class AddressChangeBody(BaseModel):
    new_address: str = Field(min_length=1, max_length=256, examples=["赤峰市松山区某小区5号楼"])
    new_region: str = Field(pattern=REGION, examples=["150404"])
    moved_on: IsoDate


def check_cancellation_reason(place: Jurisdiction, reason: str | None) -> None:
    """A cancellation names one of the jurisdiction's reasons [CF §23] where it lists them."""
    codes = [entry.code for entry in place.cancellation]
    if codes and reason not in codes:
        raise Problem(
            CANCEL_REASON,
            Text(
                f"注销原因须为：{'、'.join(codes)}",
                f"The reason must be one of: {', '.join(codes)}",
            ),
            errors=[FieldError(Text("注销原因无效", "invalid reason"), pointer="/reason")],
            extensions={"cite": place.cancellation[0].cite},
        )
