"""wattlm.console: the web console served at `/` by `watt serve` (and `watt console`).

Server-rendered Jinja2 pages over the registry, a small script of our own per page, English and
Chinese labels. See docs/console.md.
"""

from importlib import import_module


def __getattr__(name: str):
    # Lazy (PEP 562): importing wattlm.console does not pull in FastAPI until the console is mounted.
    if name in ("mount", "create_console", "PAGE_ROUTERS"):
        return getattr(import_module("wattlm.console.app"), name)
    raise AttributeError(f"module 'wattlm.console' has no attribute {name!r}")


__all__ = ["PAGE_ROUTERS", "create_console", "mount"]
