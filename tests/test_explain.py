"""LIME explanations (`kemo explain`) on a model trained to key on a planted word."""

import json
import re
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
    from kemo.prediction.trained_run import load_run
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
    # kemo's own page: small, no script, the text, its id, the run's labels each against
    # its threshold, the predicted one marked, the planted word coloured towards joy.
    assert len(page.encode()) < 50_000 and "<script" not in page
    assert "<h1>Explanation: text</h1>" in page
    assert "<blockquote>the old cat zorblax walks by the river</blockquote>" in page
    for j, name in enumerate(ex.label_names):
        assert (f"<td>{name}</td>" in page and f"<td>{ex.probs[j]:.3f}</td>"
                f"<td>{ex.thresholds[j]:.3f}</td>" in page)
    assert re.search(r"<tr class=on><td>joy</td>.*?&#10003; predicted", page)
    assert "<tr><td>sadness</td>" in page
    zorblax = re.search(r'<span class="w" style="background:rgba\(46,160,67,([0-9.]+)\)" '
                        r'title="weight \+[0-9.]+[^"]*">zorblax', page)
    assert zorblax and float(zorblax[1]) == pytest.approx(0.80), page[:3000]  # the top weight
    assert ex.tokens and "".join(ex.tokens).replace("##", "").startswith("theoldcatzorblax")
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


def test_token_words_put_pieces_back_into_words():
    """WordPiece continues with `##`, SentencePiece and byte-level BPE start words with
    `▁` / `Ġ`; without markers each piece is a word; pieces past `seen` are cut."""
    from kemo.explain_page import token_words, word_weight

    def texts(words):
        return [(w.text, len(w.pieces), w.cut) for w in words]

    assert texts(token_words(["i", "smil", "##ing", "!", "to", "##day"], seen=4)) == [
        ("i", 1, False), ("smiling", 2, False), ("!", 1, False), ("today", 2, True)]
    assert texts(token_words(["\u2581I", "\u2581can", "'", "t", "\u2581smile"], seen=5)) == [
        ("I", 1, False), ("can't", 3, False), ("smile", 1, False)]
    assert texts(token_words(["I", "\u0120sm", "iling"], seen=3)) == [
        ("I", 1, False), ("smiling", 2, False)]
    assert texts(token_words(["a", "b"], seen=1)) == [("a", 1, False), ("b", 1, True)]
    weights = {"can": 0.2, "t": -0.05, "smile": 0.1}
    assert word_weight("can't", weights) == pytest.approx(0.15)
    assert word_weight("Smile", weights) == 0.1 and word_weight("sky", weights) is None


def test_page_of_an_ensemble_shows_lime_words_without_tokens():
    """An ensemble has no one tokenizer: the page says so and keeps the labels and the
    word table (built here from an `Explanation`, no model)."""
    from kemo.explain import Explanation
    from kemo.explain_page import explanation_page

    ex = Explanation("dev_7", "so <b>happy</b> today", ["anger", "joy"], np.array([0.1, 0.8]),
                     [0.4, 0.35], ["joy"], ["joy"], {"joy": [("happy", 0.3), ("today", -0.1)]})
    page = explanation_page(ex, "runs/ens", 300)
    assert "run runs/ens · LIME, 300 perturbations · 2 labels" in page
    assert "<blockquote>so &lt;b&gt;happy&lt;/b&gt; today</blockquote>" in page
    assert "An ensemble" in page and 'class="words"' not in page
    assert "<td>happy</td><td>+0.3000</td>" in page and "<td>today</td><td>-0.1000</td>" in page
    assert "<tr class=on><td>joy</td>" in page and "<tr><td>anger</td>" in page
