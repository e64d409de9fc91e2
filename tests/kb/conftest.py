"""A tiny document set and one KB built from it (module-shared: embedding takes seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DOCS = {
    "capacitor.md": "---\ntitle: 电容器组维护细则\neffective: 2025-01-01\n---\n\n# 电容器组维护细则\n\n"
    "## 一、投切要求\n\n1. 电容器组退出运行后，再次投入的间隔时间不得少于5分钟；\n"
    "2. 母线电压超过额定电压的1.1倍时，应将电容器组退出运行。\n\n"
    "## 二、日常巡视\n\n1. 检查电容器外壳有无鼓肚、渗漏油，外壳鼓肚的电容器应立即停运更换；\n"
    "2. 用红外测温检查各连接点，温升超过20开尔文应安排处理。\n",
    "fire_rules.txt": "变电站消防安全管理规定\n\n第一条 蓄电池室内严禁烟火，照明和通风设备应采用防爆型。\n"
    "第二条 电气设备着火时，应立即切断电源，再用干粉或二氧化碳灭火器灭火，严禁用水扑救带电设备。\n"
    "第三条 灭火器每月检查一次压力指示。\n",
    "uav_2023.md": "---\ntitle: 无人机巡检规范（2023版）\nsuperseded_by: uav_2025.md\n---\n\n# 无人机巡检规范（2023版）\n\n"
    "多旋翼无人机与带电导线的安全距离不得小于5米。作业组不少于2人。\n",
    "uav_2025.md": "---\ntitle: 无人机巡检规范（2025版）\neffective: 2025-01-01\n---\n\n# 无人机巡检规范（2025版）\n\n"
    "多旋翼无人机与带电导线的安全距离不得小于8米。作业组不少于3人。\n",
    "relay_en.txt": "Testing Distance Protection Relays\n\nZone 1 must trip within 30 ms during the routine test. "
    "Never open a live current transformer secondary circuit: the voltage across it can be lethal.\n",
}


def write_docs(folder: Path, docs: dict[str, str] = DOCS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def tiny_kb(tmp_path_factory):
    """(registry, kb artifact, docs folder) built through the same path as `watt kb build`."""
    from wattlm.kb.cli import _origins, documents_dataset
    from wattlm.kb.config import KbConfig
    from wattlm.kb.stage import build_kb
    from wattlm.registry import Registry

    root = tmp_path_factory.mktemp("kb")
    docs = write_docs(root / "docs")
    registry = Registry(root / "home")
    dataset = documents_dataset(registry, [docs], "tiny-documents", progress=False)
    kb, reused = build_kb(registry, dataset, "tiny", KbConfig(), _origins([docs]))
    assert not reused
    return registry, kb, docs


def write_rag(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path
