"""The Mermaid diagram of each training model, drawn from the real nn.Module (exact text)."""

from __future__ import annotations

import torch

from reportgen.markdown import mermaid_graph
from runners.cnn_model.net import Net
from runners.gan import Discriminator, Generator
from runners.lstm import RowLSTM
from runners.training.architecture import graph_of, trace


def diagram(model: torch.nn.Module, example: torch.Tensor, input_shape: str, prefix: str = "") -> list[str]:
    nodes, edges = graph_of(trace(model, example), input_shape, prefix)
    return mermaid_graph(nodes, edges).splitlines()


def test_cnn_diagram() -> None:
    lines = diagram(Net(), torch.zeros(1, 1, 28, 28), "1×28×28")
    assert lines[:4] == ["```mermaid", "graph TD", '    n_in["输入<br>1×28×28"]', '    n_n0["conv1: Conv2d<br>1×32×26×26 · 320 参数"]']
    assert '    n_n6["conv3: Conv2d<br>1×64×3×3 · 36,928 参数"]' in lines
    assert '    n_n9["fc1: Linear<br>1×64 · 36,928 参数"]' in lines
    assert lines[-3:] == ["    n_n9 --> n_n10", "    n_n10 --> n_n11", "```"]
    labels = [line.split('["')[1].split("<br>")[0] for line in lines if '["' in line]
    assert labels == [
        "输入", "conv1: Conv2d", "pool1: MaxPool2d", "relu1: ReLU", "conv2: Conv2d", "pool2: MaxPool2d", "relu2: ReLU",
        "conv3: Conv2d", "relu3: ReLU", "flatten: Flatten", "fc1: Linear", "relu4: ReLU", "fc2: Linear",
    ]


def test_lstm_diagram() -> None:
    assert diagram(RowLSTM(), torch.zeros(1, 1, 28, 28), "28×28") == [
        "```mermaid",
        "graph TD",
        '    n_in["输入<br>28×28"]',
        '    n_n0["lstm: LSTM<br>1×28×128 · 80,896 参数"]',
        '    n_n1["head: Linear<br>1×10 · 1,290 参数"]',
        "    n_in --> n_n0",
        "    n_n0 --> n_n1",
        "```",
    ]


def test_gan_diagrams() -> None:
    assert diagram(Generator(), torch.zeros(1, 100), "噪声 100", prefix="g")[2:6] == [
        '    n_gin["输入<br>噪声 100"]',
        '    n_gn0["fc: Linear<br>1×784 · 79,184 参数"]',
        '    n_gn1["act: Sigmoid<br>1×784"]',
        "    n_gin --> n_gn0",
    ]
    assert diagram(Discriminator(), torch.zeros(1, 1, 28, 28), "1×28×28", prefix="d")[3:5] == [
        '    n_dn0["fc: Linear<br>1×1 · 785 参数"]',
        '    n_dn1["act: Sigmoid<br>1×1"]',
    ]
