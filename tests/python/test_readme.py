# README.md's Python example runs as written (the block after the python-example marker).
import pathlib
import re

import pytest

pytest.importorskip("torch")


def test_readme_python_example(capsys):
    text = (pathlib.Path(__file__).parents[2] / "README.md").read_text()
    block = re.search(r"<!-- python-example[^\n]*-->\n```python\n(.*?)```", text, re.S)
    assert block is not None, "README.md lost its python-example block"
    code = block.group(1)
    assert len(code.strip().splitlines()) <= 10
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out.split("\n")
    assert out[0].endswith("(4, 16, 16)") and out[1] == "scanned"
