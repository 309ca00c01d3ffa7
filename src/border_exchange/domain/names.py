"""Matching people's names as a field officer types them: ranked candidates, each with why.

A name is spelt many ways across the region: French and English transliterations
(Youssouf / Yusuf, Moukendi / Mukendi, Tchad / Chad), Arabic given names in their
common Latin spellings (Mohamed / Mohammed / Muhammad, Abdel Rahman / Abderrahmane),
apostrophes and hyphens written or not (M'Bala / Mbala, Jean-Baptiste / Jeanbaptiste),
family name first or last, one key mistyped, and names in Arabic script typed in Arabic
letters or in Latin ones.

Each token of a name is reduced to two forms:

* its **key**: transliterated to Latin letters (``anyascii``), accents and apostrophes
  removed, French and English digraphs written one way (``ou`` → ``u``, ``ch``/``sh`` →
  ``s``, ``kh`` → ``k``, ``ph`` → ``f``, ...), doubled letters collapsed, a French mute
  final ``e`` dropped and the ``abd-`` prefixes of Arabic names written one way;
* its **skeleton**: the key's consonants only, with ``w``, ``y`` and a final ``h``
  dropped and ``p``/``v`` written ``b``/``f``. Arabic script mostly writes consonants,
  so the skeleton is what a name in Arabic letters and its Latin spellings share.

Two tokens are compared by the Jaro-Winkler similarity of their keys (``rapidfuzz``),
or of their skeletons when one of them was written in a non-Latin script. A query
matches a name when every query token pairs with a distinct token of the name (order
free, two adjacent tokens may be written as one) and the mean similarity reaches
``THRESHOLD``. The store finds candidates by keys (the key with one letter deleted,
and across scripts the skeleton), so that only a few rows are scored.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from anyascii import anyascii
from rapidfuzz.distance import OSA, Indel, JaroWinkler

THRESHOLD: Final = 0.86
"""The score from which a name is a candidate (0..1); chosen on the labelled set (docs)."""

TOKEN_FLOOR: Final = 0.84
"""No single query token may pair below this, however well the others match."""

_MAX_TOKENS: Final = 8
_JOINED_FLOOR: Final = 0.95  # two tokens read as one must then agree closely
_DELETIONS_FROM: Final = 5
_TYPO_FROM: Final = 6  # shorter names differ by one letter from other names (Said, Saad)
_APOSTROPHES: Final = re.compile(r"['’ʼ`´ʻʿʾ‘]")
_SEPARATORS: Final = re.compile(r"[\s\-_.,;:/()]+")
_NOT_ALNUM: Final = re.compile(r"[^0-9a-z]")
_PARTICLES: Final = frozenset({"al", "el", "ul", "ibn", "bin", "ben", "ould", "wad", "wld"})
_ABD_ALONE: Final = frozenset({"abd", "abdel", "abdul", "abdoul", "abdal", "abdou"})
_ABD_PREFIX: Final = re.compile(r"^abd(?:e|u|ou|a|o)?l?(?=[a-z]{3})")
_DIGRAPHS: Final = (
    ("chr", "kr"),
    ("tch", "s"),
    ("tsh", "s"),
    ("sch", "s"),
    ("sh", "s"),
    ("ch", "s"),
    ("kh", "k"),
    ("gh", "g"),
    ("ph", "f"),
    ("th", "t"),
    ("dh", "d"),
    ("dj", "j"),
    ("ck", "k"),
    ("ou", "u"),
    ("oo", "u"),
    ("q", "k"),
    ("c", "k"),
    ("x", "ks"),
    ("y", "i"),
    ("o", "u"),
)
_DOUBLED: Final = re.compile(r"(.)\1+")
_VOWELS: Final = re.compile(r"[aeiouyw]")


class Kind(StrEnum):
    """Why one query token paired with one token of a name."""

    EXACT = "EXACT"
    SPELLING = "SPELLING"  # the same key: accents, doubled letters, digraphs, apostrophes
    TYPO = "TYPO"  # one letter added, dropped, changed or two swapped
    VARIANT = "VARIANT"  # close in sound and letters
    SCRIPT = "SCRIPT"  # across scripts: the consonants agree
    JOINED = "JOINED"  # two tokens written as one


@dataclass(frozen=True, slots=True)
class Token:
    """One token of a name: as written (folded), its key, its skeleton, its script."""

    text: str
    key: str
    skeleton: str
    latin: bool


@dataclass(frozen=True, slots=True)
class NameForm:
    """A name as the matcher compares it."""

    tokens: tuple[Token, ...]

    @property
    def text(self) -> str:
        """The name's tokens as written, folded, space-separated."""
        return " ".join(token.text for token in self.tokens)


@dataclass(frozen=True, slots=True)
class Pair:
    """A query token and the token of the name it paired with."""

    query: str
    matched: str
    kind: Kind
    similarity: float


@dataclass(frozen=True, slots=True)
class NameMatch:
    """How well a query matches a name: the score, each token's pairing, the order."""

    score: float
    pairs: tuple[Pair, ...]
    order_swapped: bool


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def _is_latin(text: str) -> bool:
    for ch in text:
        if ch.isalpha() and not unicodedata.name(ch, "").startswith("LATIN"):
            return False
    return True


def _key(ascii_word: str) -> str:
    word = _DOUBLED.sub(r"\1", ascii_word)
    if word not in _ABD_ALONE:
        word = _ABD_PREFIX.sub("abd", word)
    for written, said in _DIGRAPHS:
        word = word.replace(written, said)
    word = _DOUBLED.sub(r"\1", word)
    if len(word) > 3 and word.endswith("e") and word[-2] not in "aeiu":
        word = word[:-1]
    return word


def _skeleton(key: str) -> str:
    consonants = _VOWELS.sub("", key.replace("p", "b").replace("v", "f"))
    if len(consonants) > 1 and consonants.endswith("h"):
        consonants = consonants[:-1]
    return _DOUBLED.sub(r"\1", consonants)


@functools.lru_cache(maxsize=65536)
def _token(word: str) -> Token | None:
    latin = _is_latin(word)
    if not latin and word.startswith("ال") and len(word) > 4:
        word = word[2:]  # the Arabic article, written apart ("al-", "el ") in Latin letters
    text = _fold(word)
    ascii_word = _NOT_ALNUM.sub("", anyascii(text).lower())
    if not ascii_word:
        return None
    key = _key(ascii_word)
    return Token(text, key, _skeleton(key), latin)


@functools.lru_cache(maxsize=4096)
def name_form(text: str) -> NameForm:
    """The comparable form of a name as written (any script, any order).

    Pure, so cached: a store computes each name's form once however often it asks
    (the search keys, then the index), and each word's token once however many names
    hold it (given names repeat across a feed).
    """
    words = [w for w in _SEPARATORS.split(_APOSTROPHES.sub("", unicodedata.normalize("NFKC", text)))
             if w]  # fmt: skip
    tokens: list[Token] = []
    for word in words:
        token = _token(word)
        if token is None or token.key in _PARTICLES:
            continue
        if tokens and _is_abd(tokens[-1]) and tokens[-1].latin == token.latin:
            key = "abd" + token.key
            token = Token(tokens.pop().text + " " + token.text, key, _skeleton(key), token.latin)
        tokens.append(token)
    return NameForm(tuple(tokens[:_MAX_TOKENS]))


def _is_abd(token: Token) -> bool:
    return token.key in _ABD_ALONE or (not token.latin and token.key == "bd")


def _deletions(skeleton: str) -> set[str]:
    return {skeleton[:i] + skeleton[i + 1 :] for i in range(len(skeleton))}


def _starred(key: str) -> str:
    return "*" + key[1:] if key[0] in "aeiu" else key


def _typo_keys(token: Token) -> set[str]:
    """Keys two tokens of the same script share when close: ``e:`` the key and the key
    with one letter deleted (one letter added, dropped, changed, or two swapped: Ngakola
    / Ngakloa, Mohamed / Muhammad once both are keys) after the first letter, which is
    seldom the one mistyped (a first vowel counts as any vowel: Ibrahim / Ebrahim).
    Keys shorter than ``_DELETIONS_FROM`` letters get no deletions: their neighbourhood
    would gather every short name (a typo in a four-letter name is found when the other
    tokens of the query find the person)."""
    key = _starred(token.key)
    keys = {"e:" + key}
    if len(key) >= _DELETIONS_FROM:
        keys.update("e:" + key[0] + d for d in _deletions(key[1:]))
    return keys


@functools.lru_cache(maxsize=65536)
def token_index_keys(token: Token) -> frozenset[str]:
    """The keys a stored token is found by.

    In the same script, the keys of ``_typo_keys``; two adjacent tokens read as one are
    found by their key alone, which they share with the single token they stand for
    (Jean Baptiste / Jeanbaptiste). Across scripts: its bare skeleton, under ``s:`` when
    written in Latin letters and ``a:`` otherwise, so that a Latin query only meets the
    (few) names written in other scripts there.
    """
    cross = ("s:" if token.latin else "a:") + token.skeleton
    if _is_joined_token(token):
        return frozenset({"e:" + _starred(token.key), cross})
    return frozenset({*_typo_keys(token), cross})


def query_keys(token: Token) -> frozenset[str]:
    """The keys to look a query token up by (those of ``token_index_keys`` it can share)."""
    cross = ("a:" if token.latin else "s:") + token.skeleton
    if _is_joined_token(token):
        return frozenset({"e:" + _starred(token.key), cross})
    return frozenset({*_typo_keys(token), cross})


def _is_joined_token(token: Token) -> bool:
    return " " in token.text and not token.key.startswith("abd")


def index_keys(form: NameForm) -> frozenset[str]:
    """Every key of every token of ``form`` (what the store indexes a name by)."""
    return frozenset().union(*(keys for _, keys in token_keys(form)))


def token_keys(form: NameForm) -> list[tuple[int, frozenset[str]]]:
    """Each token's number and keys; two adjacent tokens read as one are numbered from 100."""
    tokens = form.tokens
    keyed = [(number, token_index_keys(token)) for number, token in enumerate(tokens)]
    keyed += [(100 + i, token_index_keys(join(tokens[i], tokens[i + 1])))
              for i in range(len(tokens) - 1)]  # fmt: skip
    return keyed


@functools.lru_cache(maxsize=65536)
def join(first: Token, second: Token) -> Token:
    """Two adjacent tokens read as one (Abdel Rahman as Abdelrahman)."""
    key = _key(first.key + second.key)
    text = first.text + " " + second.text
    return Token(text, key, _skeleton(key), first.latin and second.latin)


@functools.lru_cache(maxsize=65536)
def _similarity(query: Token, name: Token) -> tuple[float, Kind]:
    if query.text == name.text:
        return 1.0, Kind.EXACT
    if query.latin and name.latin:
        if query.key == name.key:
            return 1.0, Kind.SPELLING
        similarity = _closeness(query.key, name.key)
        if len(query.skeleton) >= 3 and query.skeleton == name.skeleton:
            # Only the vowels differ (Ahmed / Ahmad, Karim / Kareem): Arabic names written
            # in Latin letters vary most in their vowels, which Arabic script leaves out.
            similarity = max(similarity, (similarity + 1.0) / 2)
        if OSA.distance(query.text, name.text) == 1 and len(query.text) >= _TYPO_FROM:
            return max(similarity, 0.9), Kind.TYPO
        return similarity, Kind.VARIANT
    if not query.latin and not name.latin:
        return _closeness(query.key, name.key), Kind.VARIANT
    if not query.skeleton and not name.skeleton:
        return _closeness(query.key, name.key), Kind.SCRIPT
    if query.skeleton == name.skeleton:
        return 0.95, Kind.SCRIPT
    return _closeness(query.skeleton, name.skeleton) * 0.95, Kind.SCRIPT


def _closeness(first: str, second: str) -> float:
    """Jaro-Winkler (kind to shared beginnings) averaged with the Indel ratio (strict on short
    words, where one letter makes another name: Said / Saad)."""
    return (
        JaroWinkler.normalized_similarity(first, second)
        + Indel.normalized_similarity(first, second)
    ) / 2


def _align(query: Sequence[Token], name: Sequence[Token]) -> tuple[float, list[Pair], bool]:
    """Pair each query token with a distinct name token, best pairs first (greedy)."""
    options = []
    for qi, q in enumerate(query):
        for ni, n in enumerate(name):
            similarity, kind = _similarity(q, n)
            options.append((similarity, qi, ni, kind))
    if len({qi for similarity, qi, _, _ in options if similarity >= TOKEN_FLOOR}) < len(query):
        return 0.0, [], False
    options.sort(key=lambda option: -option[0])
    taken_q: dict[int, tuple[int, float, Kind]] = {}
    taken_n: set[int] = set()
    for similarity, qi, ni, kind in options:
        if qi in taken_q or ni in taken_n:
            continue
        taken_q[qi] = (ni, similarity, kind)
        taken_n.add(ni)
    if len(taken_q) < len(query):
        return 0.0, [], False
    pairs = [
        Pair(q.text, name[taken_q[qi][0]].text, taken_q[qi][2], taken_q[qi][1])
        for qi, q in enumerate(query)
    ]
    if min(p.similarity for p in pairs) < TOKEN_FLOOR:
        return 0.0, [], False
    order = [taken_q[qi][0] for qi in range(len(query))]
    return sum(p.similarity for p in pairs) / len(pairs), pairs, order != sorted(order)


def _joins_worth_trying(tokens: Sequence[Token], other: Sequence[Token]) -> list[list[Token]]:
    """``tokens`` with two adjacent ones read as one, where that one is close to an ``other``."""
    variants = []
    for i in range(len(tokens) - 1):
        joined = join(tokens[i], tokens[i + 1])
        if any(_similarity(joined, token)[0] >= _JOINED_FLOOR for token in other):
            variants.append([*tokens[:i], joined, *tokens[i + 2 :]])
    return variants


def match(query: NameForm, name: NameForm) -> NameMatch | None:
    """How ``query`` matches ``name``, or None below ``THRESHOLD``.

    Every query token must pair with its own token of the name; the name may hold more
    tokens than the query (a family name alone finds the person). Two adjacent tokens
    on either side may stand for one on the other (Abdel Rahman / Abdelrahman); such a
    reading ranks just after a plain one.
    """
    q_tokens, n_tokens = list(query.tokens), list(name.tokens)
    if not q_tokens or not n_tokens:
        return None
    best: NameMatch | None = None
    score, pairs, swapped = _align(q_tokens, n_tokens)
    if score >= THRESHOLD:
        best = NameMatch(round(score, 3), tuple(pairs), swapped)
        if best.score >= 0.99:
            return best
    readings = [(q, n_tokens) for q in _joins_worth_trying(q_tokens, n_tokens)]
    readings += [(q_tokens, n) for n in _joins_worth_trying(n_tokens, q_tokens)]
    for q_reading, n_reading in readings:
        if len(q_reading) > len(n_reading):
            continue
        score, pairs, swapped = _align(q_reading, n_reading)
        if any(_is_joined(p) and p.similarity < _JOINED_FLOOR for p in pairs):
            continue
        score -= 0.01
        if score >= THRESHOLD and (best is None or score > best.score):
            best = NameMatch(round(score, 3), tuple(_joined_pair(p) for p in pairs), swapped)
    return best


def _is_joined(pair: Pair) -> bool:
    return (" " in pair.query) != (" " in pair.matched)


def _joined_pair(pair: Pair) -> Pair:
    if pair.kind is Kind.SPELLING and _is_joined(pair):
        return Pair(pair.query, pair.matched, Kind.JOINED, pair.similarity)
    return pair


def best_match(query: NameForm, names: Iterable[NameForm]) -> tuple[int, NameMatch] | None:
    """The index and match of the name of ``names`` that ``query`` matches best, if any."""
    found: tuple[int, NameMatch] | None = None
    for number, name in enumerate(names):
        result = match(query, name)
        if result is not None and (found is None or result.score > found[1].score):
            found = (number, result)
    return found
