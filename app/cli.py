"""The ``lossd`` command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from app.settings import get_settings


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lossd`` console script."""
    parser = argparse.ArgumentParser(prog="lossd", description="The loss-evaluation service.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the HTTP server (settings from LOSSD_* variables)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        import uvicorn

        settings = get_settings()
        uvicorn.run(
            "app.main:app",
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
