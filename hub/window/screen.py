"""`hub window --web`: the clerk's screen, a page on 127.0.0.1 showing the reader's state and
each tap's decision as it happens, pushed by Server-Sent Events (FastAPI's own).

Holder data stays only as long as the clerk needs it: the decision on screen is dropped, on
the server and on the page, at the next tap or after `show_seconds`, whichever comes first; a
page opened later gets the reader's state and nothing of an earlier holder. The page is for
this machine only: the server listens on 127.0.0.1, and a request naming any other host is
refused, so a web page elsewhere cannot rebind its name to 127.0.0.1 and read the stream.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.text import Language, Text
from hub.window.agent import WindowDecision
from hub.window.ui import ReaderState

HERE: Final = Path(__file__).parent
LOOPBACK: Final = "127.0.0.1"
CHINA: Final = ZoneInfo("Asia/Shanghai")  # the clerk's clock
PHOTO_TYPES: Final = frozenset({"image/png", "image/jpeg"})
HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

# The holder record's fields as a clerk reads them, holder first; a field a later schema
# version adds is shown under its own name.
FIELD_LABELS: Final[dict[tuple[str, str], Text]] = {
    ("holder", "name"): Text("姓名", "Name"),
    ("holder", "sex"): Text("性别", "Sex"),
    ("holder", "ethnicity"): Text("民族", "Ethnicity"),
    ("holder", "birth_date"): Text("出生日期", "Date of birth"),
    ("holder", "citizen_id"): Text("公民身份号码", "Citizen ID"),
    ("holder", "household_region"): Text("户籍地区", "Household region"),
    ("holder", "household_address"): Text("户籍地址", "Household address"),
    ("holder", "current_region"): Text("居住地区", "Region of residence"),
    ("holder", "current_address"): Text("居住地址", "Address of residence"),
    ("holder", "workplace"): Text("工作单位", "Workplace"),
    ("holder", "contact"): Text("联系方式", "Contact"),
    ("permit", "state"): Text("居住证状态", "Permit state"),
    ("permit", "jurisdiction"): Text("签发地", "Jurisdiction"),
    ("permit", "card_serial"): Text("卡号", "Card serial"),
    ("permit", "valid_from"): Text("有效期起", "Valid from"),
    ("permit", "expires_on"): Text("有效期至", "Valid until"),
    ("permit", "suspended_on"): Text("暂停日期", "Suspended on"),
    ("permit", "residence_start"): Text("居住起始日期", "Resident since"),
    ("permit", "cancel_reason"): Text("注销原因", "Why cancelled"),
    ("permit", "id"): Text("居住证编号", "Permit ID"),
}
VALUE_LABELS: Final[dict[tuple[str, str], dict[str, Text]]] = {
    ("holder", "sex"): {"male": Text("男", "male"), "female": Text("女", "female")},
    ("permit", "state"): {
        "accepted": Text("已受理", "accepted"),
        "valid": Text("有效", "valid"),
        "suspended": Text("暂停", "suspended"),
        "cancelled": Text("已注销", "cancelled"),
    },
}


def both(text: Text) -> dict[str, str]:
    """A sentence as the page picks it by its language."""
    return {"zh-CN": text.zh, "en": text.en}


def decision_view(decision: WindowDecision, show_seconds: float) -> dict[str, Any]:
    """What the page shows of a decision: the verdict, the reasons, the photo from the card and
    the fields the department's agreement disclosed, nothing else."""
    photo = decision.photo
    return {
        "id": decision.decision_id,
        "grant": decision.grant,
        "offline": decision.offline,
        "service": decision.service,
        "card_serial": decision.card_serial,
        "decided_at": _china_time(decision.decided_at),
        "reasons": [{"code": code, "zh-CN": zh, "en": en} for code, zh, en in decision.reasons],
        "fields": _fields(decision.holder or {}),
        "photo": (
            f"data:{photo.media_type};base64,{base64.b64encode(photo.image).decode()}"
            if photo is not None and photo.media_type in PHOTO_TYPES
            else None
        ),
        "expires_in": show_seconds,
    }


def _china_time(moment: str) -> str:
    """The decision's time as the clerk's clock shows it."""
    try:
        return datetime.fromisoformat(moment).astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return moment


def _fields(record: dict[str, Any]) -> list[dict[str, Any]]:
    known = [key for key in FIELD_LABELS if key[1] in (record.get(key[0]) or {})]
    others = [
        (section, name)
        for section in ("holder", "permit")
        for name in sorted(record.get(section) or {})
        if (section, name) not in FIELD_LABELS
    ]
    shown = []
    for section, name in known + others:
        value = record[section][name]
        label = FIELD_LABELS.get((section, name), Text(name, name))
        wording = VALUE_LABELS.get((section, name), {}).get(str(value)) or _as_is(value)
        shown.append({"label": both(label), "value": both(wording)})
    return shown


def _as_is(value: Any) -> Text:
    plain = "—" if value is None else value if isinstance(value, str) else json.dumps(value)
    return Text(plain, plain)


@dataclass
class Listener:
    """One open page: the event loop serving it and its queue (None ends the stream)."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = field(default_factory=asyncio.Queue)


class Screen:
    """What the page shows now, told by the agent's threads and pushed to every open page.
    It is the window's display (see hub.window.ui.Display)."""

    def __init__(self, service: str, show_seconds: float) -> None:
        self.service, self.show_seconds = service, show_seconds
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._reader: dict[str, Any] = {"state": "ready", "text": both(Text("", ""))}
        self._decision: dict[str, Any] | None = None
        self._timer: threading.Timer | None = None

    # --- told by the agent ----------------------------------------------------------------

    def reader(self, state: ReaderState, text: Text) -> None:
        if state == "reading":
            self._forget()  # the next tap: the last holder leaves the screen
        self._reader = {"state": state, "text": both(text)}
        self._publish("reader", self._reader)

    def notice(self, text: Text) -> None:
        self._publish("notice", {"text": both(text)})

    def decision(self, decision: WindowDecision) -> None:
        view = decision_view(decision, self.show_seconds)
        with self._lock:
            self._decision = view
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.show_seconds, self._expire, (view["id"],))
            self._timer.daemon = True
            self._timer.start()
        self._publish("decision", view)

    def close(self) -> None:
        """End every page's stream (the agent is stopping) and forget the holder."""
        self._forget()
        with self._lock:
            listeners, self._listeners = self._listeners, []
        for listener in listeners:
            with contextlib.suppress(RuntimeError):  # that page's loop is already closed
                listener.loop.call_soon_threadsafe(listener.queue.put_nowait, None)

    # --- for the pages --------------------------------------------------------------------

    def subscribe(self) -> Listener:
        """A new page's listener, holding what the screen shows now (called in its loop)."""
        listener = Listener(asyncio.get_running_loop())
        with self._lock:
            listener.queue.put_nowait(("reader", self._reader))
            if self._decision is not None:
                listener.queue.put_nowait(("decision", self._decision))
            self._listeners.append(listener)
        return listener

    def unsubscribe(self, listener: Listener) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    # --- inside ---------------------------------------------------------------------------

    def _expire(self, decision_id: str) -> None:
        with self._lock:
            if self._decision is None or self._decision["id"] != decision_id:
                return
            self._decision = None
        self._publish("clear", {})

    def _forget(self) -> None:
        with self._lock:
            had, self._decision = self._decision is not None, None
            if self._timer is not None:
                self._timer.cancel()
        if had:
            self._publish("clear", {})

    def _publish(self, kind: str, data: dict[str, Any]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            with contextlib.suppress(RuntimeError):
                listener.loop.call_soon_threadsafe(listener.queue.put_nowait, (kind, data))


_templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
)


class _Headers:
    """The screen's security headers on every answer, static files and refusals included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    *((k.lower().encode(), v.encode()) for k, v in HEADERS.items()),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


def screen_app(screen: Screen, language: Language) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request) -> HTMLResponse:
        chosen = request.query_params.get("lang")
        shown: Language = chosen if chosen in ("zh-CN", "en") else language  # type: ignore[assignment]

        def t(zh: str, en: str) -> str:
            return Text(zh, en).in_(shown)

        html = _templates.get_template("screen.html").render(
            language=shown, t=t, service=screen.service
        )
        return HTMLResponse(html, headers={"Content-Language": shown})

    @app.get("/events", response_class=EventSourceResponse)
    async def events() -> AsyncIterable[ServerSentEvent]:
        listener = screen.subscribe()
        try:
            while (item := await listener.queue.get()) is not None:
                kind, data = item
                yield ServerSentEvent(event=kind, data=data)
        finally:
            screen.unsubscribe(listener)

    app.add_middleware(TrustedHostMiddleware, allowed_hosts=[LOOPBACK, "localhost"])
    app.add_middleware(_Headers)
    return app


class ScreenUnavailable(Exception):
    """The screen could not be served (the port is taken, most likely)."""


@contextlib.contextmanager
def served(screen: Screen, language: Language, port: int) -> Iterator[str]:
    """Serve the screen on 127.0.0.1:`port` in a thread; yields its address."""
    config = uvicorn.Config(
        screen_app(screen, language),
        host=LOOPBACK,
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="window-screen", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise ScreenUnavailable(f"cannot serve the screen on {LOOPBACK}:{port}")
        time.sleep(0.05)
    try:
        yield f"http://{LOOPBACK}:{port}/"
    finally:
        screen.close()
        server.should_exit = True
        thread.join(5)
