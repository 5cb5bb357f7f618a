"""``soc2ai gateway [--explain]``: serve the OpenAI-compatible gateway, or print its fallback behaviour."""

from __future__ import annotations

import gc
from pathlib import Path

import typer

from soc2ai.cli._common import ConfigOption, JsonOption, console, get_config, handle_errors, print_json


def register(app: typer.Typer) -> None:
    """Add the top-level ``gateway`` command."""
    app.command("gateway")(gateway)


@handle_errors
def gateway(
    host: str | None = typer.Option(None, "--host", help="Listen address (default: gateway.host)."),
    port: int | None = typer.Option(None, "--port", help="Listen port (default: gateway.port)."),
    explain: bool = typer.Option(False, "--explain", help="Print the fallback behaviour and exit."),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Serve the gateway (uvicorn), with auth, rate limits, screening, fallback and an audit record per call."""
    from soc2ai.gateway.routing import explain as explain_text
    from soc2ai.gateway.routing import explain_order

    cfg = get_config(config)
    if explain:
        if json_out:
            s = cfg.gateway
            print_json({"models": {a: explain_order(s, a) for a in s.models},
                        "retry_on": ["connection-error", "timeout", "5xx", "429"],
                        "breaker": s.breaker.model_dump()})
        else:
            console.print(explain_text(cfg.gateway), highlight=False, soft_wrap=True)
        return
    import uvicorn

    from soc2ai.gateway.app import create_app

    app = create_app(cfg)
    h, p = host or cfg.gateway.host, port or cfg.gateway.port
    if not json_out:
        console.print(f"soc2ai gateway on http://{h}:{p}  (OpenAI base_url: http://{h}:{p}/v1)")
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:  # pragma: no cover
        loop = "asyncio"
    # Everything loaded so far lives as long as the process: keep it out of the cyclic GC's full scans,
    # which otherwise show up as latency spikes at p99.
    gc.freeze()
    # Keep-alive longer than uvicorn's 5 s default: clients and load balancers pool connections.
    uvicorn.run(app, host=h, port=p, loop=loop, http="httptools", log_level="warning", access_log=False,
                lifespan="on", timeout_keep_alive=75, server_header=False, date_header=False)
