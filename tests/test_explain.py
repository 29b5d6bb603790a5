"""LIME explanations (`kemo explain`) on a model trained to key on a planted word."""

import json
import time
from pathlib import Path

import numpy as np
import pytest

from kemo.errors import InputError

FILLER = ("the a cat dog runs blue green house tree river walks sings small big old new car "
          "road sky sun moon book table chair window door city field bird fish stone paper "
          "lamp cloud hill boat train phone glass shoe").split()
PLANTED = {"joy": "zorblax", "sadness": "grumbo"}  # label = 1 iff its word appears


def write_planted_data(root, n=400, seed=0):
    """Track A layout (train/eng.csv): short random-word texts with planted label words."""
    rng = np.random.default_rng(seed)
    rows = ["id,text,joy,sadness"]
    for i in range(n):
        words = list(rng.choice(FILLER, size=rng.integers(4, 9)))
        flags = []
        for word in PLANTED.values():
            present = rng.random() < 0.4
            if present:
                words.insert(int(rng.integers(0, len(words) + 1)), word)
            flags.append(int(present))
        rows.append(f"eng_{i:04d},{' '.join(words)},{flags[0]},{flags[1]}")
    (root / "train").mkdir(parents=True)
    (root / "train" / "eng.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    from kemo.config import load_config
    from kemo.run.read import load_run
    from kemo.training import train

    root = write_planted_data(tmp_path_factory.mktemp("planted"))
    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "tiny.toml", [
        "data.val_fraction=0.2", "data.sampling_strength=0", "data.length_buckets=[16]",
        "model.sequence_length=16", "model.vocabulary_size=300", "model.num_layers=1",
        "model.hidden_dim=32", "model.intermediate_dim=64", "model.dropout=0.0",
        "loss.name='bce'", "train.epochs=8", "train.learning_rate=3e-3",
        "train.early_stopping_patience=0"])
    result = train(cfg, data_dir=root, run_dir=root / "run", verbose=0)
    per_label = result["report"]["validation"]["tuned_thresholds"]["overall"]["per_label"]
    # The explanation test means something only if the model learnt the planted words.
    assert per_label["joy"]["f1"] > 0.95 and per_label["sadness"]["f1"] > 0.95, per_label
    return load_run(root / "run")


def test_planted_word_ranks_first(planted_run, tmp_path):
    from kemo.explain import explain_text, save_explanation

    start = time.time()
    ex = explain_text(planted_run, "the old cat zorblax walks by the river", num_samples=300)
    seconds = time.time() - start
    assert "joy" in ex.predicted and "sadness" not in ex.predicted
    assert ex.explained == ex.predicted
    top_word, top_weight = ex.words["joy"][0]
    assert (top_word, top_weight > 0) == ("zorblax", True), ex.words["joy"]
    assert ex.towards("joy")[0][0] == "zorblax"
    assert seconds < 30, f"one explanation took {seconds:.1f}s"
    files = save_explanation(ex, tmp_path)
    page = files["html"].read_text()
    assert "zorblax" in page and "<script>" in page  # LIME's page, its JS inlined
    assert files["png"].read_bytes()[:4] == b"\x89PNG"


def test_no_predicted_label_explains_the_top_one(planted_run):
    from kemo.explain import explain_text

    ex = explain_text(planted_run, "a blue bird sings on the hill", num_samples=100)
    assert ex.predicted == []
    assert ex.explained == [ex.label_names[int(np.argmax(ex.probs))]]
    assert "(none; explaining the top label)" in ex.summary()


def test_explain_cli_batch(planted_run, tmp_path, capsys):
    from kemo.cli import main

    csv = tmp_path / "texts.csv"
    csv.write_text("id,text\nx/1,grumbo the sky is big\nx 2,\"zorblax, the moon\"\n")
    out = tmp_path / "out"
    assert main(["explain", str(planted_run.path), "--csv", str(csv), "--out", str(out),
                 "--num-samples", "100"]) == 0
    assert "[x/1] grumbo the sky is big" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [  # the marker: kemo wrote the folder
        ".kemo-explanations", "explanations.json", "x_1.html", "x_1.png", "x_2.html",
        "x_2.png"]
    summary = json.loads((out / "explanations.json").read_text())
    assert summary[0]["predicted"] == ["sadness"]
    assert summary[0]["words"]["sadness"][0][0] == "grumbo"

    csv.write_text("id,text\n1,fine\n2,  ...  \n")
    assert main(["explain", str(planted_run.path), "--csv", str(csv)]) == 2
    assert "texts.csv, row 2 (id '2'), column 'text': no words to explain" in \
        capsys.readouterr().err
    assert main(["explain", str(planted_run.path)]) == 2
    assert "error: give either --text" in capsys.readouterr().err


def test_bad_arguments():
    from kemo.explain import explain_text

    with pytest.raises(InputError, match="num_samples"):
        explain_text(None, "some words", num_samples=5)
