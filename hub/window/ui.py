"""`hub window`: watch the readers with pyscard's CardMonitor and ReaderMonitor and decide every
tapped card.

Whatever happens at the reader (no reader at all, the card pulled out mid-read, a mute or
foreign card, the hub down with nothing cached) the clerk gets one sentence and the agent
keeps watching; only SIGTERM or Ctrl-C stops it. What the clerk sees goes to a `Display`: the
terminal's lines, or the page of `hub window --web` (hub.window.screen).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, Literal, Protocol

from smartcard.CardMonitoring import CardMonitor, CardObserver
from smartcard.Exceptions import SmartcardException
from smartcard.ReaderMonitoring import ReaderMonitor, ReaderObserver

from hub.text import Text
from hub.window.agent import WindowAgent, WindowDecision
from hub.window.hubclient import HubRefused, HubUnreachable
from hub.window.reader import NO_READER, CardError, CardLink, reader_names

log = logging.getLogger(__name__)
ReaderState = Literal["no-reader", "ready", "reading", "card-present"]
READING = Text("正在读卡……", "Reading the card…")
DECIDED = Text("卡在读卡器上", "The card is on the reader")
REMOVED = Text("卡已移开", "Card removed")


class Display(Protocol):
    """Where the clerk looks."""

    def reader(self, state: ReaderState, text: Text) -> None:
        """The reader's state changed."""

    def notice(self, text: Text) -> None:
        """A sentence for the clerk: a failure at the reader, the hub's state."""

    def decision(self, decision: WindowDecision) -> None:
        """A tap was decided."""


class Lines:
    """The terminal's display: a line for each thing that happens, a decision's in full."""

    def __init__(self, language: str, say: Callable[[str], None]) -> None:
        self.language, self.say = language, say

    def reader(self, state: ReaderState, text: Text) -> None:
        self.say(text.in_(self.language))

    def notice(self, text: Text) -> None:
        self.say(text.in_(self.language))

    def decision(self, decision: WindowDecision) -> None:
        self.say(decision.render(self.language))


class TapObserver(CardObserver):  # type: ignore[misc]
    """Called by CardMonitor's thread on every insertion and removal."""

    def __init__(self, agent: WindowAgent, display: Display) -> None:
        super().__init__()
        self.agent, self.display = agent, display

    def update(self, observable: Any, handlers: tuple[list[Any], list[Any]]) -> None:
        added, removed = handlers
        for card in added:
            self.tap(card)
        for _ in removed:
            self.display.reader("ready", REMOVED)

    def tap(self, card: Any) -> None:
        self.display.reader("reading", READING)
        connection = card.createConnection()
        try:
            connection.connect()
            link = CardLink(connection)
            link.select()
            self.display.decision(self.agent.tap(link))
        except CardError as error:
            self.display.notice(Text(error.zh, error.en))
        except HubRefused as refused:
            self.display.notice(Text(f"平台拒绝：{refused}", f"The hub refused: {refused}"))
        except HubUnreachable as error:
            self.display.notice(
                Text(
                    f"无法连接平台，且没有可用的离线名单（{error}）",
                    f"The hub is unreachable and no offline lists are cached ({error})",
                )
            )
        except SmartcardException:
            self.display.notice(Text("读卡失败，请重新放卡", "Reading the card failed; tap again"))
        else:
            self.display.reader("card-present", DECIDED)
        finally:
            with contextlib.suppress(SmartcardException):  # the card may be gone already
                connection.disconnect()


class ReaderWatch(ReaderObserver):  # type: ignore[misc]
    """Called by ReaderMonitor's thread when a reader is plugged in or out."""

    def __init__(self, display: Display) -> None:
        super().__init__()
        self.display = display
        self.known = set(reader_names())  # already there at start: not news

    def update(self, observable: Any, handlers: tuple[list[Any], list[Any]]) -> None:
        added = [str(reader) for reader in handlers[0] if str(reader) not in self.known]
        self.known = set(reader_names())
        if added:
            names = "、".join(added)
            self.display.reader(
                "ready", Text(f"读卡器已连接：{names}", f"Reader connected: {names}")
            )
        elif not self.known:
            self.display.reader("no-reader", Text(NO_READER.zh, NO_READER.en))


def run_window(
    agent: WindowAgent, display: Display, stop: threading.Event, refresh_seconds: float
) -> None:
    """Watch until `stop`; refresh the offline lists and report offline decisions every
    `refresh_seconds` while the hub answers."""
    _refresh(agent, display)
    cards, readers = CardMonitor(), ReaderMonitor()
    observer, watch = TapObserver(agent, display), ReaderWatch(display)
    cards.addObserver(observer)
    readers.addObserver(watch)
    if watch.known:
        display.reader(
            "ready", Text(f"就绪：{agent.service}，请刷卡", f"Ready: {agent.service}; tap a card")
        )
    else:
        display.reader("no-reader", Text(NO_READER.zh + " …", NO_READER.en + " …"))
    try:
        while not stop.wait(refresh_seconds):
            _refresh(agent, display)
    finally:
        cards.deleteObserver(observer)
        readers.deleteObserver(watch)


def _refresh(agent: WindowAgent, display: Display) -> None:
    try:
        agent.refresh()
        reported = agent.report_pending()
    except HubUnreachable:
        display.notice(Text("平台不可达：离线核验", "Hub unreachable: deciding off line"))
        return
    except HubRefused as refused:
        log.warning("the hub refused: %s", refused)
        return
    if reported:
        display.notice(
            Text(f"已上报 {reported} 条离线核验", f"Reported {reported} offline decisions")
        )
