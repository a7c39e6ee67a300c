"""``python -m pytest_aligngate.testing``: serve the simulated models by hand."""

from __future__ import annotations

import argparse

from pytest_aligngate.testing.server import SimulatedOpenAIServer


def main(argv: list[str] | None = None) -> None:
    """Serve the simulated models until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m pytest_aligngate.testing", description=main.__doc__)
    parser.add_argument("--port", type=int, default=8000, help="Port on 127.0.0.1 (default: 8000)")
    parser.add_argument("--corpus", action="append", help="Corpus file or folder (default: bundled)")
    parser.add_argument("--latency", type=float, default=0.0, help="Seconds of delay per completion")
    args = parser.parse_args(argv)
    server = SimulatedOpenAIServer(args.corpus, latency=args.latency, port=args.port)
    print(f"Serving simulated models at {server.url} (Ctrl-C to stop)", flush=True)
    try:
        server._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._server.server_close()


if __name__ == "__main__":
    main()
