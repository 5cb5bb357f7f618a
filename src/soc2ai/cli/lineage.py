"""``soc2ai lineage show|trace``: where an item came from and where it went (C1.1, PI1 lineage)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from soc2ai.cli._common import (
    EXIT_FINDING,
    ConfigOption,
    JsonOption,
    console,
    get_config,
    handle_errors,
    print_json,
)
from soc2ai.data.connectors.dataset import DatasetConnector
from soc2ai.data.lineage import LineageStore, Node
from soc2ai.data.runtime import open_lineage
from soc2ai.data.settings import ConnectorSettings
from soc2ai.errors import Soc2AIError

app = typer.Typer(help="Lineage: source record -> document -> chunks -> embeddings; examples; completions.",
                  no_args_is_help=True)


def _graph(store: LineageStore, node: Node) -> dict[str, Any]:
    up = store.ancestors(node.id)
    down = store.descendants(node.id)
    ids = [node.id, *(n.id for n in up), *(n.id for n in down)]
    return {"node": node.as_dict(), "came_from": [n.as_dict() for n in up],
            "went_to": [n.as_dict() for n in down], "edges": store.edges(ids)}


def _table(title: str, nodes: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    for col in ("id", "kind", "store", "collection", "locator", "label", "deleted"):
        table.add_column(col)
    for n in nodes:
        table.add_row(str(n["id"]), str(n["kind"]), str(n["store"]), str(n["collection"]), str(n["locator"]),
                      str(n["label"]), "yes" if n["deleted_us"] else "")
    return table


def _render(graph: dict[str, Any]) -> None:
    console.print(_table("item", [graph["node"]]))
    for key, title in (("came_from", "came from"), ("went_to", "went to")):
        nodes = graph[key]
        if nodes:
            console.print(_table(title, nodes))
        else:
            console.print(f"{title}: nothing recorded")


@app.command("show")
@handle_errors
def show(
    node_id: str = typer.Argument(..., help="A lineage id (as returned by ingest)."),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Show an item, everything it came from, and everything derived from it."""
    with open_lineage(get_config(config)) as store:
        node = store.get(node_id)
        if node is None:
            if json_out:
                print_json({"found": False, "id": node_id})
            else:
                console.print(f"no lineage node {node_id!r}")
            raise typer.Exit(EXIT_FINDING)
        graph = _graph(store, node)
    if json_out:
        print_json({"found": True, **graph})
    else:
        _render(graph)


@app.command("trace")
@handle_errors
def trace(
    dataset: Path = typer.Option(..., "--dataset", help="A JSONL/CSV/Parquet dataset file."),
    row: int = typer.Option(..., "--row", min=1, help="Line number (JSONL/CSV) or 1-based row (Parquet)."),
    config: Path | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Where did this training example come from? (matched by the row's id, else its content hash)."""
    path = dataset.resolve()
    if not path.is_file():
        raise Soc2AIError(f"{dataset}: no such file")
    reader = DatasetConnector(ConnectorSettings(name="trace", type="dataset", path=str(path)), root=Path("/"))
    target = next((r for r in reader.rows(path) if r.line == row), None)
    if target is None:
        raise Soc2AIError(f"{dataset}: no row {row}")
    key = target.key()
    with open_lineage(get_config(config)) as store:
        nodes = store.by_locator(None, str(path), key) or store.by_locator(None, str(path), str(row))
        graphs = [_graph(store, n) for n in nodes]
    if json_out:
        print_json({"dataset": str(path), "row": row, "row_key": key, "found": bool(graphs), "traces": graphs})
    elif not graphs:
        console.print(f"no lineage recorded for {dataset} row {row} (row key {key})")
    else:
        for g in graphs:
            _render(g)
    if not graphs:
        raise typer.Exit(EXIT_FINDING)
