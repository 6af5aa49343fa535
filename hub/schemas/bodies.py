"""The schema registry's request bodies and path parameters that the API and the console
both take: the console validates a posted form with the same model, so a field is refused for
the same reason on both."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from hub.auth.domain import Department
from hub.deps import IsoDate
from hub.schemas import domain

SUBJECT_RULE: Final = (
    "Lower-case words of letters and digits joined by dots or hyphens, e.g. holder-record"
)
SubjectName = Annotated[
    str,
    Path(
        pattern=domain.SUBJECT_NAME.pattern,
        max_length=domain.SUBJECT_NAME_MAX,
        description=SUBJECT_RULE,
        examples=["holder-record"],
    ),
]
AgreementId = Annotated[str, Path(min_length=1, max_length=36, examples=["education-holders"])]
JSON_POINTER: Final = r"^(/([^/~]|~[01])*)+$"
"""An RFC 6901 pointer to a field: the whole record ("") is no field."""


def _each_once(fields: list[str]) -> list[str]:
    """`uniqueItems`, which the schema says and pydantic does not check: refused with the
    body's other faults, before If-Match is looked at."""
    if len(set(fields)) != len(fields):
        raise PydanticCustomError("unique_items", "Each field may be listed only once")
    return fields


class AgreementBody(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "department": "education",
                    "purpose": "随迁子女义务教育与升学 / schooling of children who moved with"
                    " the holder",
                    "subject": "holder-record",
                    "fields": [
                        "/permit/jurisdiction",
                        "/permit/state",
                        "/permit/valid_from",
                        "/permit/expires_on",
                        "/permit/residence_start",
                        "/holder/citizen_id",
                        "/holder/name",
                        "/holder/current_region",
                    ],
                    "legal_basis": "[CF §24] 义务教育；[CF §26] 随迁子女升学考试",
                    "valid_from": "2026-01-01",
                    "valid_to": None,
                    "status": "active",
                }
            ]
        }
    )

    department: Department
    purpose: str = Field(min_length=1, max_length=256)
    subject: str = Field(
        pattern=domain.SUBJECT_NAME.pattern,
        max_length=domain.SUBJECT_NAME_MAX,
        description="A subject with a version in use, e.g. holder-record",
    )
    fields: Annotated[
        list[Annotated[str, Field(pattern=JSON_POINTER, description="A JSON pointer (RFC 6901)")]],
        AfterValidator(_each_once),
    ] = Field(
        min_length=1,
        max_length=200,
        description="The fields the department may receive: each declared by the subject's "
        "latest version, each once",
        json_schema_extra={"uniqueItems": True},
    )
    legal_basis: str = Field(min_length=1, max_length=256, description="Cite the seed")
    valid_from: IsoDate
    valid_to: IsoDate | None = Field(
        default=None, description="null: open-ended; not before valid_from"
    )
    status: domain.AgreementStatus = domain.AgreementStatus.ACTIVE

    def terms(self) -> domain.AgreementTerms:
        return domain.AgreementTerms(
            department=self.department.value,
            purpose=self.purpose,
            subject=self.subject,
            fields=self.fields,
            legal_basis=self.legal_basis,
            valid_from=self.valid_from,
            valid_to=self.valid_to,
            status=self.status,
        )
