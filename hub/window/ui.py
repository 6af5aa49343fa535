"""`hub window`: watch the readers with pyscard's CardMonitor and decide every tapped card.

Whatever happens at the reader (no reader at all, the card pulled out mid-read, a mute or
foreign card, the hub down with nothing cached) the clerk gets one sentence and the agent
keeps watching; only SIGTERM or Ctrl-C stops it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from smartcard.CardMonitoring import CardMonitor, CardObserver
from smartcard.Exceptions import SmartcardException

from hub.window.agent import WindowAgent
from hub.window.hubclient import HubRefused, HubUnreachable
from hub.window.reader import NO_READER, CardError, CardLink, reader_names

log = logging.getLogger(__name__)
Say = Callable[[str], None]


def _both(zh: str, en: str, language: str) -> str:
    return zh if language == "zh-CN" else en


class TapObserver(CardObserver):  # type: ignore[misc]
    """Called by CardMonitor's thread on every insertion and removal."""

    def __init__(self, agent: WindowAgent, language: str, say: Say) -> None:
        super().__init__()
        self.agent, self.language, self.say = agent, language, say

    def update(self, observable: Any, handlers: tuple[list[Any], list[Any]]) -> None:
        added, removed = handlers
        for card in added:
            self.tap(card)
        for _ in removed:
            self.say(_both("卡已移开", "Card removed", self.language))

    def tap(self, card: Any) -> None:
        connection = card.createConnection()
        try:
            connection.connect()
            link = CardLink(connection)
            link.select()
            self.say(self.agent.tap(link).render(self.language))
        except CardError as error:
            self.say(_both(error.zh, error.en, self.language))
        except HubRefused as refused:
            self.say(_both(f"平台拒绝：{refused}", f"The hub refused: {refused}", self.language))
        except HubUnreachable as error:
            self.say(
                _both(
                    f"无法连接平台，且没有可用的离线名单（{error}）",
                    f"The hub is unreachable and no offline lists are cached ({error})",
                    self.language,
                )
            )
        except SmartcardException:
            self.say(
                _both("读卡失败，请重新放卡", "Reading the card failed; tap again", self.language)
            )
        finally:
            with contextlib.suppress(SmartcardException):  # the card may be gone already
                connection.disconnect()


def run_window(
    agent: WindowAgent, language: str, stop: threading.Event, say: Say, refresh_seconds: float
) -> None:
    """Watch until `stop`; refresh the offline lists and report offline decisions every
    `refresh_seconds` while the hub answers."""
    if not reader_names():
        say(_both(NO_READER.zh, NO_READER.en, language) + " …")
    _refresh(agent, language, say)
    monitor = CardMonitor()
    observer = TapObserver(agent, language, say)
    monitor.addObserver(observer)
    say(_both(f"就绪：{agent.service}，请刷卡", f"Ready: {agent.service}; tap a card", language))
    try:
        while not stop.wait(refresh_seconds):
            _refresh(agent, language, say)
    finally:
        monitor.deleteObserver(observer)


def _refresh(agent: WindowAgent, language: str, say: Say) -> None:
    try:
        agent.refresh()
        reported = agent.report_pending()
    except HubUnreachable:
        say(_both("平台不可达：离线核验", "Hub unreachable: deciding off line", language))
        return
    except HubRefused as refused:
        log.warning("the hub refused: %s", refused)
        return
    if reported:
        say(
            _both(
                f"已上报 {reported} 条离线核验", f"Reported {reported} offline decisions", language
            )
        )
