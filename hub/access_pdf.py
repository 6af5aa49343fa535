"""The access report as a printable PDF the acceptance office hands to the holder (reportlab).

Chinese is set in Adobe's STSong-Light CID font, which every PDF reader carries for GB 18030
text, so the hub ships no font file and the document stays small; reportlab writes it
without any system library. `invariant` makes the same report the same bytes.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Final
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from hub.access_report import AccessReport
from hub.auth.domain import DEPARTMENT_NAMES, Department
from hub.clock import CHINA
from hub.text import Text

FONT: Final = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))

CHANNELS: Final = {
    "push": Text("推送", "push"),
    "feed": Text("变更订阅", "changes feed"),
    "look-up": Text("按需查询", "look-up"),
    "tap": Text("窗口刷卡", "card tap"),
    "registry": Text("受理机关查阅", "registry read"),
    "audit": Text("审计检索", "audit search"),
    "access-report": Text("查询记录报告", "access report"),
}

_BODY = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12, wordWrap="CJK")
_TITLE = ParagraphStyle("title", parent=_BODY, fontSize=16, leading=22)


def _department(code: str | None) -> str:
    try:
        name = DEPARTMENT_NAMES[Department(code or "")]
    except ValueError:
        return code or ""
    return f"{name.zh} / {name.en}"


def _cell(text: str) -> Paragraph:
    return Paragraph(escape(text), _BODY)


def render(
    report: AccessReport, *, masked_id: str, office: str, purpose: str, issued_at: datetime
) -> bytes:
    """The report as PDF bytes: who the holder is (masked), the period, then one row per
    disclosure in China time: when, who, how, why and which fields (never values)."""
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title="个人信息查询记录 Access report",
        author=office,
        invariant=True,
    )
    issued = issued_at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")
    heading = [
        Paragraph("居住证持证人个人信息查询记录 / Access report", _TITLE),
        _cell(f"公民身份号码 Citizen ID: {masked_id}"),
        _cell(f"期间 Period: {report.since.isoformat()} — {report.until.isoformat()}"),
        _cell(f"出具机关 Issued by: {office}；事由 Purpose: {purpose}；时间 At: {issued}"),
        _cell(
            f"共 {len(report.disclosures)} 次 / {len(report.disclosures)} disclosures."
            " 所列为提供的字段名称，不含字段内容 / Fields are named, never their values."
        ),
        Spacer(1, 4 * mm),
    ]
    rows: list[list[Paragraph]] = [
        [
            _cell(header)
            for header in (
                "时间 When (China)",
                "部门 Department",
                "方式 How",
                "事由 Purpose",
                "字段 Fields",
            )
        ]
    ]
    for item in report.disclosures:
        channel = CHANNELS.get(item.channel, Text(item.channel, item.channel))
        fields = "、".join(item.fields) if item.fields is not None else "登记全部信息 whole record"
        rows.append(
            [
                _cell(item.at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")),
                _cell(_department(item.department)),
                _cell(f"{channel.zh} / {channel.en}"),
                _cell(item.purpose or ""),
                _cell(fields),
            ]
        )
    table = Table(rows, colWidths=[36 * mm, 58 * mm, 36 * mm, 60 * mm, 83 * mm], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    document.build([*heading, table])
    return buffer.getvalue()
