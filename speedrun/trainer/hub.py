"""Can `speedrun data fineweb` download at all? Asked once, before the first download.

Without a network the Hugging Face client retries each request five times over about 24 seconds, printing a
warning per retry, before it gives up. One quick request to the hub first turns that into one line that says
what to do. Only a failure to connect counts (refused, no route, unknown host, timed out): anything the hub
answers, or a TLS problem the client may handle better than this probe, is left to the client.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
import urllib.error
import urllib.request

from speedrun.errors import BadInput

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_TIMEOUT_S = 10.0  # the client's own default for a metadata request (HF_HUB_ETAG_TIMEOUT)
_TRUE = {"1", "ON", "YES", "TRUE"}
_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}


def endpoint() -> str:
    """The hub the client will talk to: HF_ENDPOINT (a mirror) or huggingface.co."""
    return os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or DEFAULT_ENDPOINT


def offline() -> bool:
    """HF_HUB_OFFLINE is set: the client reads its cache only and never connects."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in _TRUE


def timeout_s() -> float:
    value = os.environ.get("HF_HUB_ETAG_TIMEOUT", "").strip()
    if not value:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise BadInput(None, f"HF_HUB_ETAG_TIMEOUT={value!r} is not a positive number of seconds")
    return seconds


def connection_failure(url: str, timeout: float) -> str | None:
    """Why `url` cannot be connected to, or None when something answered (any HTTP status counts)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None
    except urllib.error.URLError as e:
        reason: object = e.reason
    except ValueError:  # not a URL at all: the client's own error says more
        return None
    except OSError as e:  # a timeout while waiting for the answer comes without URLError
        reason = e
    if not _is_connection_failure(reason):
        return None
    return str(getattr(reason, "strerror", None) or reason) or type(reason).__name__


def _is_connection_failure(reason: object) -> bool:
    if isinstance(reason, ssl.SSLError):
        return False
    if isinstance(reason, (ConnectionError, TimeoutError, socket.gaierror)):
        return True
    return isinstance(reason, OSError) and reason.errno in _UNREACHABLE


def require_hub(repo_id: str) -> None:
    """BadInput at once when the hub cannot be connected to; nothing to check in offline mode."""
    if offline():
        return
    hub = endpoint()
    problem = connection_failure(f"{hub}/api/datasets/{repo_id}", timeout_s())
    if problem is not None:
        raise BadInput(
            hub,
            f"cannot reach the Hugging Face hub ({problem}): check the network, or set HF_HUB_OFFLINE=1 to use "
            "the shards already in the Hugging Face cache, or HF_ENDPOINT to use a mirror",
        )


def require_client() -> None:
    """The Hugging Face client is installed (it comes with the train extra)."""
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        raise BadInput(
            None,
            "speedrun data fineweb needs the huggingface_hub package: pip install -e '.[train]' "
            "(or pip install huggingface_hub)",
        ) from None
