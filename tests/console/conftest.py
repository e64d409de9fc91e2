"""Fixtures of the console tests: the tiny workspace (built once), and apps serving it."""

from __future__ import annotations

import re
import shutil

import pytest
from fastapi.testclient import TestClient

from .workspace import EchoEngine, build_workspace


@pytest.fixture(scope="session")
def workspace_template(tmp_path_factory):
    return build_workspace(tmp_path_factory.mktemp("console-ws"))


@pytest.fixture
def console_home(workspace_template, tmp_path):
    """A private copy of the workspace: a test may create keys or KB versions in it."""
    copy = tmp_path / "home"
    shutil.copytree(workspace_template, copy)
    # The foundation model is registered by path (outside the workspace): its file stays shared, read-only.
    return copy


def console_app(console_home):
    from wattlm.console import mount
    from wattlm.serve import create_app
    from wattlm.serve.auth import KeyAuth
    from wattlm.serve.grounding import KnowledgeBases
    from wattlm.serve.keys import KeyStore

    app = create_app({"echo": EchoEngine()}, auth=KeyAuth(KeyStore.of_home(console_home), cache_seconds=0.0),
                     knowledge=KnowledgeBases(console_home))
    mount(app, console_home)
    return app


@pytest.fixture
def client(console_home):
    with TestClient(console_app(console_home)) as test_client:
        yield test_client


def csrf_of(page_html: str) -> str:
    """The CSRF token a page hands its forms."""
    match = re.search(r'name="csrf" value="([^"]+)"', page_html)
    assert match, "page has no CSRF field"
    return match.group(1)
