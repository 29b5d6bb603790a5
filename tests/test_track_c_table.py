"""benchmarks/track_c_table.py, the README's Track C table (reads committed files only)."""

from conftest import load_benchmark as _load


def test_track_c_table_puts_the_in_language_figure_beside_each_target(tmp_path):
    """benchmarks/track_c_table.py: per target the zero-shot figure, the full and the
    capped run's dev figures from the committed language table, the gaps, the mean row and
    the mean over the targets of the published table beside its means."""
    track_c_table = _load("track_c_table")
    full = track_c_table.in_language_dev()
    capped = track_c_table.in_language_dev(column="capped dev")
    assert len(full) == 28 and full["deu"] == 0.5468
    assert len(capped) == 28 and capped["deu"] == 0.4844 and capped["amh"] == 0.5073
    csv = tmp_path / "zero_shot.csv"
    csv.write_text("language,fold,trained_on,dev_rows,zero_shot_dev_f1,in_language_dev_f1,gap,"
                   "untrained_labels\ndeu,from-eng,eng,200,0.3210,,,disgust\n"
                   "amh,from-eng,eng,592,0.2896,,,disgust\nmean,,2 targets,792,0.3053,,,\n")
    lines = track_c_table.table(csv).splitlines()
    assert lines[3] == ("| deu | 200 | 0.3210 | 0.5468 | -0.2258 | 0.4844 | -0.1634 "
                        "| 0.425 / 0.468 |")
    assert lines[2] == "| amh | 592 | 0.2896 | 0.5728 | -0.2832 | 0.5073 | -0.2177 | - |"
    assert lines[-2] == ("| **mean (2)** | | **0.3053** | 0.5598 | -0.2545 | 0.4959 "
                         "| -0.1905 | |")
    # targets sorted; the last row: the targets the published table covers (deu, not amh)
    assert lines[-1] == "| mean over BRIGHTER's (1) | | 0.3210 | | | | | 0.425 / 0.468 |"
