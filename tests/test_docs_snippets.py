"""The snippets users copy: one ref style everywhere, and every workflow step that uses the
fleet survives the action being off or degraded (no daemon, no endpoint, no CLI on PATH).

The README's workflow itself runs under act in tests/e2e/test_readme_snippet.py; these checks
cover every other snippet in README.md, docs/ and workflows/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLES = sorted((ROOT / "workflows").glob("*.yml"))
OWN = re.compile(r"uses:\s*(\S*github-p2p\S*)")
#: The one style: this repository (or a folder of it) at the major tag.
REF = re.compile(r"^github-p2p/github-p2p(/stop)?@v1$")


def yaml_blocks(doc: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)


def snippets() -> list[tuple[str, str]]:
    """(where, YAML) of every documentation block and example workflow."""
    out = [(f"{doc.name}#{n}", block) for doc in DOCS for n, block in enumerate(yaml_blocks(doc))]
    out += [(path.name, path.read_text(encoding="utf-8")) for path in EXAMPLES]
    return out


@pytest.mark.parametrize(("where", "text"), snippets())
def test_one_ref_style(where: str, text: str) -> None:
    for ref in OWN.findall(text):
        assert REF.match(ref), f"{where}: uses {ref}; write github-p2p/github-p2p@v1"
    assert not re.search(r"uses:\s*\./", text), f"{where}: `uses: ./` cannot be copied"
    assert "your-org/github-p2p" not in text and "OWNER/" not in text, where


@pytest.mark.parametrize(("where", "text"), snippets())
def test_steps_survive_without_a_daemon(where: str, text: str) -> None:
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    # The endpoint only with a fallback: `${GITHUB_P2P_ENDPOINT:-$GITHUB_API_URL}`.
    for use in re.findall(r"\$\{?GITHUB_P2P_ENDPOINT[^}\s\"/]*\}?", text):
        assert use.startswith("${GITHUB_P2P_ENDPOINT:-"), f"{where}: unguarded {use}"
    # The CLI is on PATH only while a daemon runs: guarded by `command -v github-p2p`.
    for line in text.splitlines():
        if re.search(r"(^|[\s;|&(])github-p2p (api|stats|stop|gh)\b", line):
            assert "command -v github-p2p" in text, f"{where}: unguarded `{line.strip()}`"


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_code_block_falls_back_when_no_daemon_runs(doc: Path) -> None:
    for block in re.findall(r"```\w*\n(.*?)```", doc.read_text(encoding="utf-8"), re.S):
        for use in re.findall(r"\$\{?GITHUB_P2P_ENDPOINT[^}\s\"/]*\}?", block):
            assert use.startswith("${GITHUB_P2P_ENDPOINT:-"), f"{doc.name}: unguarded {use}"


def test_docs_use_the_real_secret_names() -> None:
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        assert not re.search(r"secrets\.GITHUB_P2P", text), doc.name
        assert not re.search(r"gh secret set GITHUB_", text), doc.name


def test_the_action_names_its_nested_step_as_the_docs_do() -> None:
    action = (ROOT / "action.yml").read_text(encoding="utf-8")
    (nested,) = re.findall(r"uses: (github-p2p/github-p2p/job-end@v\d+)", action)
    assert nested == "github-p2p/github-p2p/job-end@v1"
    from tests_e2e_harness import OWN_REPOSITORY

    assert nested.startswith(OWN_REPOSITORY + "/")


@pytest.fixture(autouse=True, scope="module")
def _harness_importable() -> None:
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("tests_e2e_harness",
                                                  ROOT / "tests" / "e2e" / "harness.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["tests_e2e_harness"] = module
    spec.loader.exec_module(module)
