"""kemo's own page for one explained text (`kemo explain`): small, static, offline.

The page shows the text and its id; every label of the run with its probability
against its threshold (a bar with the threshold marked, the predicted labels marked);
and, for each explained label, the text as the model saw it, word by word, each word
coloured by its LIME weight (green towards the label, red away), with the word weights
as a table. The words are the tokenizer's pieces put back together where the tokenizer
marks word starts or continuations (WordPiece `##`, SentencePiece `▁`, byte-level BPE
`Ġ`); a word of several pieces shows them under it. Pieces past the model's
`sequence_length` are shown struck through: the model never saw them. No script, no
external file: a few kilobytes.

Example:
    words = token_words(["i", "smil", "##ing"], seen=3)   # [TokenWord("i"), TokenWord("smiling")]
    html = explanation_page(ex, source="runs/tiny")       # ex: kemo.explain.Explanation
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

# Tokenizer piece markers: (prefix, whether it starts a word (else: continues one)).
_MARKERS = (("##", False), ("\u2581", True), ("\u0120", True))
_WORD_SPLIT = re.compile(r"\W+", re.UNICODE)  # LIME's default split of a text into words


@dataclass
class TokenWord:
    """A word as the model's tokenizer saw it: its pieces, and how many of them fell
    within the model's sequence length (`seen`)."""

    pieces: list[str] = field(default_factory=list)
    seen: int = 0

    @property
    def text(self) -> str:
        joined = "".join(_strip_marker(p) for p in self.pieces)
        return joined or "".join(self.pieces)

    @property
    def cut(self) -> bool:
        return self.seen < len(self.pieces)


def _strip_marker(piece: str) -> str:
    for prefix, _ in _MARKERS:
        if piece.startswith(prefix):
            return piece[len(prefix):]
    return piece


def token_words(pieces: list[str], seen: int) -> list[TokenWord]:
    """The tokenizer's `pieces` grouped into whole words where its markers allow (one
    word per piece when it has none); the first `seen` pieces were within the model's
    input."""
    marker = next(((prefix, starts) for prefix, starts in _MARKERS
                   if any(p.startswith(prefix) and len(p) > len(prefix) for p in pieces)),
                  None)
    words: list[TokenWord] = []
    for i, piece in enumerate(pieces):
        if marker is None or not words:
            new = True
        else:
            prefix, starts = marker
            new = piece.startswith(prefix) == starts
        if new:
            words.append(TokenWord())
        words[-1].pieces.append(piece)
        words[-1].seen += i < seen
    return words


def word_weight(word: str, weights: dict[str, float]) -> float | None:
    """LIME's weight for a token word: the sum over the words LIME split it into
    (lower-cased; LIME splits on non-word characters), None if LIME weighed none."""
    parts = [w.lower() for w in _WORD_SPLIT.split(word) if w]
    found = [weights[p] for p in parts if p in weights]
    return sum(found) if found else None


def _e(x) -> str:
    return html.escape(str(x))


def _color(weight: float | None, scale: float) -> str:
    if weight is None or scale <= 0:
        return ""
    alpha = 0.12 + 0.68 * min(abs(weight) / scale, 1.0)
    rgb = "46,160,67" if weight > 0 else "220,50,47"
    return f' style="background:rgba({rgb},{alpha:.2f})"'


def _labels_table(ex) -> str:
    rows = []
    for j, name in enumerate(ex.label_names):
        p, t = float(ex.probs[j]), float(ex.thresholds[j])
        on = name in ex.predicted
        mark = "&#10003; predicted" if on else ("explained (top label)"
                                                 if name in ex.explained else "")
        rows.append(
            f'<tr{" class=on" if on else ""}><td>{_e(name)}</td><td class=bar>'
            f'<div class=p style="width:{100 * p:.1f}%"></div>'
            f'<div class=t style="left:{100 * t:.1f}%" title="threshold {t:.3f}"></div></td>'
            f"<td>{p:.3f}</td><td>{t:.3f}</td><td>{mark}</td></tr>")
    return ("<table class=labels><tr><th>label</th><th>probability, | threshold</th>"
            "<th>p</th><th>threshold</th><th>decision</th></tr>" + "".join(rows) + "</table>")


MAX_CUT_WORDS = 20  # struck-through words shown past the model's input; the rest counted


def _words_view(words: list[TokenWord], weights: dict[str, float], scale: float) -> str:
    spans = []
    cut = [w for w in words if w.cut]
    if len(cut) > MAX_CUT_WORDS:
        words = words[:len(words) - len(cut) + MAX_CUT_WORDS]
    for w in words:
        weight = word_weight(w.text, weights) if not w.cut else None
        title = (f"weight {weight:+.3f}" if weight is not None else "no weight") + (
            f"; pieces: {' '.join(w.pieces)}" if len(w.pieces) > 1 else "")
        pieces = (f"<small>{_e(' '.join(w.pieces))}</small>" if len(w.pieces) > 1 else "")
        cls = ' class="w cut"' if w.cut else ' class="w"'
        spans.append(f'<span{cls}{_color(weight, scale)} title="{_e(title)}">'
                     f"{_e(w.text)}{pieces}</span>")
    if len(cut) > MAX_CUT_WORDS:
        spans.append(f'<span class="more">... {len(cut) - MAX_CUT_WORDS} more words cut</span>')
    return '<p class="words">' + " ".join(spans) + "</p>"


def _label_section(ex, label: str, words: list[TokenWord] | None) -> str:
    j = ex.label_names.index(label)
    pairs = ex.words[label]
    weights: dict[str, float] = {}
    for w, v in pairs:
        weights[w.lower()] = weights.get(w.lower(), 0.0) + float(v)
    scale = max((abs(v) for _, v in pairs), default=0.0)
    state = "predicted" if label in ex.predicted else "not predicted: the most probable label"
    parts = [f"<h2>{_e(label)} <small>p {float(ex.probs[j]):.3f}, threshold "
             f"{float(ex.thresholds[j]):.3f}, {state}</small></h2>"]
    if words is not None:
        parts.append(_words_view(words, weights, scale))
    rows = "".join(f"<tr><td>{_e(w)}</td><td>{float(v):+.4f}</td><td class=bar>"
                   f'<div class="{"up" if v > 0 else "down"}" style="width:'
                   f'{100 * abs(float(v)) / scale if scale else 0:.1f}%"></div></td></tr>'
                   for w, v in pairs)
    parts.append("<table><tr><th>word</th><th>LIME weight</th><th>towards (green) / away "
                 f"(red)</th></tr>{rows}</table>")
    return "\n".join(parts)


CSS = """
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:980px;color:#222}
h1{margin-bottom:2px}h2{margin-top:28px;border-bottom:1px solid #ddd}
h2 small,.meta{color:#666;font-weight:normal;font-size:14px}
blockquote{font-size:18px;border-left:4px solid #bbb;margin:12px 0;padding:6px 12px;
background:#fafafa;white-space:pre-wrap}
table{border-collapse:collapse;margin:8px 0;font-size:14px}
th,td{border:1px solid #ddd;padding:3px 9px;text-align:left}
tr.on td{font-weight:700;background:#f2fbf3}
td.bar{width:300px;position:relative;padding:0 0 0 1px;background:#f3f3f3}
td.bar div{height:14px;margin:4px 0}
.p{background:#4a7fd4}.up{background:#2ea043}.down{background:#dc322f}
.t{position:absolute;top:0;bottom:0;width:2px;background:#111;
margin:0!important;height:auto!important}
.words{line-height:2.6;font-size:17px}
.w{display:inline-block;padding:0 3px;border-radius:3px;line-height:1.3;text-align:center}
.w small{display:block;font-size:10px;color:#555}
.cut{color:#999;text-decoration:line-through}.more{color:#999}
.note{background:#f6f6f0;border-left:4px solid #bba;padding:6px 10px}
"""


def explanation_page(ex, source: str = "", num_samples: int | None = None) -> str:
    """The HTML page of `ex` (a `kemo.explain.Explanation`); `source`: the run it
    explains; `num_samples`: LIME's perturbations (said in the header)."""
    words = token_words(ex.tokens, ex.seen_tokens) if ex.tokens is not None else None
    meta = [f"run {source}" if source else "", "LIME" + (
        f", {num_samples} perturbations" if num_samples else ""),
        f"{len(ex.label_names)} labels"]
    body = [f"<h1>Explanation: {_e(ex.id)}</h1>",
            f'<p class="meta">{_e(" · ".join(m for m in meta if m))}</p>',
            f"<blockquote>{_e(ex.text)}</blockquote>",
            "<h2>Labels <small>bar: probability; black line: the run's threshold</small></h2>",
            _labels_table(ex)]
    if words is None:
        body.append('<p class="note">An ensemble: its members tokenise on their own; the '
                    "words below are LIME's.</p>")
    else:
        note = ("Words as the model's tokenizer saw them (several pieces: shown under the "
                "word), coloured by LIME weight: green towards the label, red away; hover "
                "for the weight.")
        cut = sum(w.cut for w in words)
        if cut:
            note += (f" The model saw the first {ex.seen_tokens} of {len(ex.tokens)} pieces "
                     f"(sequence_length): {cut} word{'s' if cut != 1 else ''} struck through "
                     "were cut.")
        body.append(f'<p class="note">{_e(note)}</p>')
    body += [_label_section(ex, label, words) for label in ex.explained]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>kemo explanation {_e(ex.id)}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")
