# A seconds-long smoke run of experiments/examples/mqar.py: it trains through
# spattn.torch.sparse_attention (forward and backward) and prints its table.
import pathlib
import sys

import pytest

pytest.importorskip("torch")
sys.path.insert(0, str(pathlib.Path(__file__).parents[2] / "experiments" / "examples"))
import mqar  # noqa: E402


def test_mqar_smoke(capsys):
    specs = ["dense", "sliding(64) | sink(4)"]
    table = mqar.main(["--lengths", "128", "192", "--specs", *specs, "--steps", "3",
                       "--tokens", "384", "--eval", "4", "--pairs", "4", "--dim", "32"])
    assert list(table) == specs
    assert all(len(row) == 2 and all(0.0 <= a <= 1.0 for a in row) for row in table.values())
    out = capsys.readouterr().out
    assert "| sliding(64) | sink(4) |" in out and "N=192" in out


def test_mqar_batches_follow_the_recipe():
    import torch
    x, y = mqar.make_batch(torch.Generator().manual_seed(3), 2, 64, 32, 4)
    for b in range(2):
        keys, vals = x[b, 0:8:2], x[b, 1:8:2]
        assert (keys < 16).all() and (keys >= 1).all() and (vals >= 16).all()
        asked = (y[b] != -100).nonzero().flatten()
        noise = torch.ones(64, dtype=torch.bool)
        noise[0:8] = False
        noise[asked] = False
        assert (x[b, noise] >= 16).all()  # keys occur only in their pair and their query
        assert len(asked) == 4 and (asked >= 8).all()
        for p in asked:  # each query is a key of the context, its target that key's value
            i = (keys == x[b, p]).nonzero().item()
            assert y[b, p] == vals[i]
