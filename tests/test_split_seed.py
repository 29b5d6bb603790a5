"""The validation split has its own seed (`data.split_seed`, default 0), so runs that
differ only in `train.seed` validate on the same rows and `kemo ensemble` takes them as
they are (issue 22). A run trained when the default was -1 (train.seed) keeps -1 in its
config.toml and reloads (and resumes) on the split it was trained on.
"""

from conftest import ROOT, TINY_OVERRIDES
from kemo.config import dump_config, load_config
from kemo.data.splits import load_data, split_seed

TINY = ROOT / "configs" / "tiny.toml"


def _val_ids(cfg, data_dir):
    return list(load_data(cfg, data_dir).val.ids)


def test_runs_differing_only_in_train_seed_share_validation(data_dir):
    a = load_config(TINY, TINY_OVERRIDES)
    b = load_config(TINY, TINY_OVERRIDES + ["train.seed=7"])
    assert a.data.split_seed == b.data.split_seed == 0
    assert split_seed(b) == 0
    assert _val_ids(a, data_dir) == _val_ids(b, data_dir)
    # and the split seed still chooses the rows
    c = load_config(TINY, TINY_OVERRIDES + ["data.split_seed=7"])
    assert _val_ids(c, data_dir) != _val_ids(a, data_dir)


def test_old_run_with_split_seed_minus_one_keeps_its_split(data_dir, tmp_path):
    """config.toml as an older kemo wrote it (split_seed = -1, train.seed = 7): reloaded
    (what `--resume`, `predict`, `report` and `ensemble` do), it validates on the rows
    seed 7 chose, not on the new default's."""
    old = load_config(TINY, TINY_OVERRIDES + ["train.seed=7", "data.split_seed=-1"])
    text = dump_config(old)
    assert "split_seed = -1" in text
    (tmp_path / "config.toml").write_text(text)
    reloaded = load_config(tmp_path / "config.toml")
    assert reloaded.data.split_seed == -1 and split_seed(reloaded) == 7
    seven = load_config(TINY, TINY_OVERRIDES + ["data.split_seed=7"])
    default = load_config(TINY, TINY_OVERRIDES + ["train.seed=7"])
    assert _val_ids(reloaded, data_dir) == _val_ids(seven, data_dir)
    assert _val_ids(reloaded, data_dir) != _val_ids(default, data_dir)
