"""Readable labels, units and places on the page of the metrics that the training runners share.

One table, so the cnn, lstm, gan and deployment pages name the same quantity the same way.
"""

from __future__ import annotations

from typing import Any

from reportgen.api import Result, Role

# name → (label, unit, role): "main" leads the page, "detail" goes into its collapsed run details
LABELS: dict[str, tuple[str, str, Role]] = {
    "test_accuracy": ("测试准确率", "", "main"),
    "test_loss": ("测试损失", "", "main"),
    "epochs": ("训练轮数", "", "main"),
    "train_images": ("训练图片数", "张", "main"),
    "test_images": ("测试图片数", "张", "body"),
    "profile": ("训练档位（quick 为 CPU 上的小预算，full 为文章的设置）", "", "body"),
    "data_official": ("使用官方的训练/测试划分", "", "body"),
    "lr": ("学习率", "", "body"),
    "batch_size": ("批大小", "", "body"),
    "hidden": ("隐藏单元数", "", "body"),
    "params_total": ("参数总数", "", "body"),
    "train_seconds": ("训练耗时", "秒", "detail"),
    "images_per_second": ("训练速度", "张/秒", "detail"),
    "device": ("设备", "", "detail"),
    "optimizer": ("优化器", "", "detail"),
}


def metric(result: Result, name: str, value: Any) -> Any:
    """`result.metric` with the shared label, unit and role of `name` (a name not in the table: plain)."""
    label, unit, role = LABELS.get(name, ("", "", "body"))
    return result.metric(name, value, label=label, unit=unit, role=role)
