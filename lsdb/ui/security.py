"""Who may write through the UI: `--allow-writes`, and a token on every write (also when local, against CSRF).

Bound to localhost, the pages carry the token so the buttons work. Bound beyond localhost, the
token is printed at start-up and a browser presents it once (``/?token=...``), which stores it in
an HttpOnly, SameSite=Strict cookie; pages then carry it for that browser only.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
COOKIE = "lsdb_token"
HEADER = "x-lsdb-token"


def new_token() -> str:
    """A random token (URL-safe)."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class UiConfig:
    """How the UI was started: `allow_writes`, the write `token`, and whether it is bound to localhost."""

    allow_writes: bool = False
    local: bool = True
    token: str = field(default_factory=new_token)
    page_size: int = 50

    @classmethod
    def for_host(cls, host: str, allow_writes: bool = False, token: str | None = None) -> UiConfig:
        return cls(allow_writes=allow_writes, local=host in LOCAL_HOSTS, token=token or new_token())

    def token_ok(self, given: str | None) -> bool:
        """Whether `given` is this server's token (constant-time)."""
        return bool(given) and hmac.compare_digest(str(given), self.token)

    def page_token(self, cookie: str | None) -> str | None:
        """The token a page may embed for its write buttons: when writes are allowed, and the browser is
        local or has presented the token."""
        if not self.allow_writes:
            return None
        if self.local or self.token_ok(cookie):
            return self.token
        return None
