"""Logging the bot in once and keeping it logged in, without ever logging in in a loop.

Bluesky allows 30 password logins per 5 minutes and 300 per day per account, and a bot that
logs in on every start (or worse, on every error) locks itself out. So the session string
(handle, DID, access and refresh tokens) is kept in the bot's 0600 state file, saved again
whenever the SDK creates or refreshes it; a start imports it, and the SDK refreshes the access
token before it expires. Only when the saved session is missing or rejected does the bot log
in with the app password, and those logins are counted in the state file across restarts:
past `max_logins` in 5 minutes it refuses and says when to try again. The password and the
tokens are never logged.

Not every refusal is final: an unreachable server or a spent login budget pass with time
(`LoginDeferred`), so a running bot keeps polling and tries again later, while a start (with
nothing yet to keep running) reports either and exits. Wrong or missing credentials do not
pass with time and stop the bot in both cases.
"""

from __future__ import annotations

import logging
import time

import httpx
from atproto import Client, Session, SessionEvent, exceptions
from atproto_client.request import Request

from klippfisk.adapters.bluesky.state import BotState
from klippfisk.adapters.bluesky.throttle import ServerThrottle
from klippfisk.adapters.settings import BotSettings

__all__ = ["LOGIN_WINDOW_SECONDS", "LoginDeferred", "LoginRefused", "connect", "login_again"]

log = logging.getLogger(__name__)

LOGIN_WINDOW_SECONDS = 300.0

# What a network blip looks like through the SDK: it wraps connect and read errors, times
# out as InvokeTimeoutError, and lets others (a connection cut mid-request) through as httpx's.
_UNREACHABLE = (exceptions.NetworkError, exceptions.InvokeTimeoutError, httpx.TransportError)


class LoginRefused(Exception):
    """The bot cannot (or must not yet) log in; the message says what to do."""


class LoginDeferred(LoginRefused):
    """The login may work later: the server was unreachable or the login budget is spent."""


def _client(settings: BotSettings, state: BotState, throttle: ServerThrottle) -> Client:
    request = Request(timeout=30.0, event_hooks={"response": [throttle.observe]})
    client = Client(base_url=settings.service, request=request)

    def save(event: SessionEvent, session: Session) -> None:
        if event in (SessionEvent.CREATE, SessionEvent.REFRESH):
            state.save_session(session.encode())
            log.info("bot session %s for %s saved", event.value, session.handle)

    client.on_session_change(save)
    return client


def _unreachable(settings: BotSettings) -> str:
    return (
        f"The bot could not reach {settings.service}; check KLIPPFISK_BOT__SERVICE and the "
        "network, then start it again."
    )


def login_again(client: Client, settings: BotSettings, state: BotState) -> None:
    """Log in with the app password, if the login budget allows; else LoginRefused."""
    if not settings.handle or settings.app_password is None:
        raise LoginRefused(
            "The bot has no usable session and no credentials; set KLIPPFISK_BOT__HANDLE and "
            "KLIPPFISK_BOT__APP_PASSWORD (an app password)."
        )
    since = time.time() - LOGIN_WINDOW_SECONDS
    if state.logins_since(since) >= settings.max_logins:
        raise LoginDeferred(
            f"The bot already logged in {settings.max_logins} times in the last 5 minutes; "
            "wait a few minutes before starting it again, and check the app password."
        )
    state.record_login()
    try:
        client.login(
            settings.handle, settings.app_password.get_secret_value(), fetch_bsky_profile=False
        )
    except _UNREACHABLE as exc:
        raise LoginDeferred(_unreachable(settings)) from exc
    except (exceptions.UnauthorizedError, exceptions.BadRequestError) as exc:
        raise LoginRefused(
            f"Bluesky refused the login of {settings.handle}; check the handle and the app "
            "password (KLIPPFISK_BOT__HANDLE, KLIPPFISK_BOT__APP_PASSWORD)."
        ) from exc
    log.info("logged in as %s", settings.handle)


def _saved_session(settings: BotSettings, state: BotState) -> str | None:
    """The stored session string, unless it is unreadable or of another account."""
    saved = state.session
    if not saved:
        return None
    try:
        handle = Session.decode(saved).handle
    except ValueError:
        return None
    return saved if not settings.handle or handle == settings.handle else None


def connect(settings: BotSettings, state: BotState, throttle: ServerThrottle) -> Client:
    """A logged-in client: the saved session if it still works, else one password login."""
    client = _client(settings, state, throttle)
    saved = _saved_session(settings, state)
    if saved:
        try:
            client.login(session_string=saved, fetch_bsky_profile=False)
            throttle.call(client.com.atproto.server.get_session)
            log.info("resumed the saved session")
            return client
        except _UNREACHABLE as exc:
            raise LoginRefused(_unreachable(settings)) from exc
        except (
            exceptions.UnauthorizedError,
            exceptions.BadRequestError,
            exceptions.LoginRequiredError,
            ValueError,
        ):
            log.info("the saved session is no longer accepted; logging in again")
    login_again(client, settings, state)
    return client
