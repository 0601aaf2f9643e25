"""Every code block in README.md and docs/*.md runs, is parsed, or says it is illustrative.

A fenced block right under a line `<!-- illustrative -->` is skipped (it trains for minutes, installs packages, or
needs the reader's own files). Otherwise, by language:
- python: run in a fresh interpreter in an empty folder that holds a small embedded dataset (`datasets/shapes`,
  also `$YOLO_MASK_DATASETS`), so a block may use `shapes-seg.yaml` and the COCO jsons there;
- bash: each command is checked without running it: `yolo-mask ...` parses with the CLI's own parser (and its
  `--config-file` / `--from-detectron2` name a shipped config, `segment` keys are Ultralytics' or `mask`), `make T`
  names a Makefile target, `python benchmarks/X.py` names a script there;
- yaml: parses;
- a block without a language (a drawing, a file tree) is text and not checked.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ILLUSTRATIVE = "<!-- illustrative -->"
PYTHON_TIMEOUT_S = 300  # a runnable block takes seconds; this only stops a hung one


@dataclass(frozen=True)
class CodeBlock:
    doc: str
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    illustrative: bool

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def code_blocks(text: str, doc: str) -> list[CodeBlock]:
    """The fenced blocks of a markdown text, each marked illustrative when the line above its fence says so."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        assert end is not None, f"{doc}:{i + 1}: code block never closed"
        above = lines[i - 1].strip() if i else ""
        blocks.append(CodeBlock(doc, i + 1, fence.group(1), "\n".join(lines[i + 1:end]) + "\n",
                                above == ILLUSTRATIVE))
        i = end + 1
    return blocks


def all_blocks() -> list[CodeBlock]:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [b for doc in docs for b in code_blocks(doc.read_text(), doc.relative_to(ROOT).as_posix())]


def shell_commands(code: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", code)
    return [c for line in joined.splitlines() if (c := line.split(" #")[0].strip()) and not c.startswith("#")]


def check_yolo_mask_command(argv: list[str]) -> None:
    from ultralytics.cfg import DEFAULT_CFG_DICT

    from yolo_mask_plugin.apps.cli import build_parser
    from yolo_mask_plugin.d2.config import get_config_file

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:
        raise AssertionError(f"`yolo-mask {shlex.join(argv)}` does not parse (exit {stop.code})") from None
    if "--help" in argv or "-h" in argv:
        return
    for config in (getattr(args, "config_file", None), getattr(args, "from_detectron2", None)):
        if config:
            get_config_file(config)  # raises naming the config when it is not shipped
    if args.command == "segment":
        keys = {arg.split("=", 1)[0] for arg in args.args}
        assert keys <= set(DEFAULT_CFG_DICT) | {"model", "mask"}, f"unknown segment keys {keys - set(DEFAULT_CFG_DICT)}"


def check_shell_block(code: str) -> None:
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    commands = shell_commands(code)
    assert commands, "empty shell block"
    for command in commands:
        argv = shlex.split(command)
        if argv[0] == "yolo-mask":
            check_yolo_mask_command(argv[1:])
        elif argv[0] == "make":
            assert set(argv[1:]) <= targets, f"`{command}`: no such Makefile target"
        elif argv[0] == "python" and len(argv) > 1 and argv[1].startswith("benchmarks/"):
            assert (ROOT / argv[1]).is_file(), f"`{command}`: no such script"
        else:
            raise AssertionError(f"`{command}` is neither run nor parsed here: mark the block {ILLUSTRATIVE}")


def small_dataset_folder(tmp_path: Path) -> Path:
    from yolo_mask_plugin.data import generate_shapes_dataset

    generate_shapes_dataset(tmp_path / "datasets" / "shapes", num_train=4, num_val=2, image_size=64)
    return tmp_path


def run_python_block(code: str, cwd: Path) -> None:
    env = {**os.environ, "YOLO_MASK_DATASETS": str(cwd / "datasets"), "YOLO_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=PYTHON_TIMEOUT_S)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stderr[-4000:]}"


BLOCKS = all_blocks()


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_code_block_runs_or_parses(block, tmp_path):
    if block.illustrative:
        pytest.skip("marked illustrative")
    if block.language == "python":
        run_python_block(block.code, small_dataset_folder(tmp_path))
    elif block.language in ("bash", "sh", "shell"):
        check_shell_block(block.code)
    elif block.language == "yaml":
        yaml.safe_load(block.code)
    else:
        assert block.language in ("", "text"), f"{block.id}: no check for ```{block.language} blocks"


def test_blocks_are_found_and_marked_blocks_are_few():
    runnable = [b for b in BLOCKS if not b.illustrative and b.language == "python"]
    assert runnable, "no runnable python block found: is the fence pattern still right?"
    readme_illustrative = [b for b in BLOCKS if b.doc == "README.md" and b.illustrative]
    assert len(readme_illustrative) <= 2, "README.md says which two of its blocks are illustrative: update it"


def test_a_broken_block_fails():
    """The checks above can fail: a command that does not parse, an unknown target, a python error."""
    with pytest.raises(AssertionError, match="does not parse"):
        check_shell_block("yolo-mask compare --no-such-flag 1\n")
    with pytest.raises(AssertionError, match="no such Makefile target"):
        check_shell_block("make nothing-here\n")
    with pytest.raises(AssertionError, match="neither run nor parsed"):
        check_shell_block("rm -rf /tmp/x\n")
    with pytest.raises(AssertionError, match="NameError"):
        run_python_block("undefined_name\n", Path.cwd())
    assert [b.illustrative for b in code_blocks(f"{ILLUSTRATIVE}\n```python\nx\n```\n```bash\nmake\n```\n", "t")] == [
        True, False]


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_docs_reach_a_file_and_heading():
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for doc in docs:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]+))?\)", doc.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            path = (doc.parent / target).resolve() if target else doc
            if not path.exists():
                broken.append(f"{doc.name}: {target} does not exist")
            elif anchor and anchor not in {github_anchor(h) for h in re.findall(r"^#+ (.*)$", path.read_text(), re.M)}:
                broken.append(f"{doc.name}: {target}#{anchor} names no heading there")
    assert not broken, broken
