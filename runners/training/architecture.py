"""Read an architecture off a real `nn.Module`: layers in call order, output shapes, parameters.

The result is data (`Result.graph`, `Result.table`); reportgen draws the Mermaid diagram from it,
so the diagram on the page can never disagree with the model that was trained.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def _shape(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return "×".join(str(d) for d in value.shape)
    if isinstance(value, (tuple, list)) and value:
        return _shape(value[0])
    return "?"


def trace(model: nn.Module, example: torch.Tensor) -> list[dict[str, Any]]:
    """Run `example` through the model and record each leaf module it calls, in order."""
    calls: list[dict[str, Any]] = []
    hooks = []
    for name, module in model.named_modules():
        if list(module.children()):
            continue  # containers: their leaves are recorded

        def hook(mod: nn.Module, inputs: Any, output: Any, name: str = name) -> None:
            calls.append(
                {
                    "name": name,
                    "type": type(mod).__name__,
                    "input": _shape(inputs),
                    "output": _shape(output),
                    "params": sum(p.numel() for p in mod.parameters(recurse=False)),
                    "weights": {k: "×".join(map(str, p.shape)) for k, p in mod.named_parameters(recurse=False)},
                }
            )

        hooks.append(module.register_forward_hook(hook))
    try:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(example)
        model.train(was_training)
    finally:
        for handle in hooks:
            handle.remove()
    return calls


def graph_of(calls: list[dict[str, Any]], input_shape: str, prefix: str = "") -> tuple[list[dict[str, Any]], list[list[str]]]:
    """Nodes and edges of a chain of layer calls (input → layer → … → output)."""
    nodes = [{"id": f"{prefix}in", "label": "输入", "detail": input_shape}]
    for index, call in enumerate(calls):
        detail = call["output"] + (f" · {call['params']:,} 参数" if call["params"] else "")
        nodes.append({"id": f"{prefix}n{index}", "label": f"{call['name']}: {call['type']}", "detail": detail})
    edges = [[nodes[i]["id"], nodes[i + 1]["id"]] for i in range(len(nodes) - 1)]
    return nodes, edges


def layer_rows(calls: list[dict[str, Any]]) -> list[list[Any]]:
    """Rows for a table: layer, type, input shape, output shape, weight shapes, parameters."""
    rows = []
    for call in calls:
        weights = ", ".join(f"{k} {v}" for k, v in call["weights"].items()) or "—"
        rows.append([call["name"], call["type"], call["input"], call["output"], weights, call["params"]])
    unique = {c["name"]: c["params"] for c in calls}  # a module called twice counts once
    rows.append(["合计", "", "", "", "", sum(unique.values())])
    return rows


LAYER_COLUMNS = ["层", "类型", "输入形状", "输出形状", "权重形状", "参数量"]
