"""Redaction: secrets taken out of records on a sink's worker, before the sink encodes them.

Two rules, both applied to every record a sink exports (see ``process``):

- ``keys``: a value in a record's extras whose key contains one of these words (compared
  lowercased, so ``DB_Password`` and ``x-api_key`` match) becomes ``"[REDACTED]"``, also in
  nested dicts and lists.
- ``patterns``: regular expressions; every match in a record's message, exception message,
  traceback and the strings in its extras becomes ``"[REDACTED]"``.

The work is made cheap for the common record that holds no secret: the patterns are one
compiled regex, and a batch's messages are joined and searched once; only when that search finds
something are the records searched one by one. Extras are walked only when a record has some.
A record is never changed in place (every sink shares it): a redacted record is a new tuple.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import accumulate
from operator import itemgetter
from typing import Any

from workflow_traces.core.record import (
    F_EXC_MESSAGE,
    F_EXC_TRACEBACK,
    F_EXTRAS,
    F_MESSAGE,
    RecordValues,
)
from workflow_traces.errors import ConfigError

__all__ = [
    "DEFAULT_REDACT_KEYS",
    "DEFAULT_REDACT_PATTERNS",
    "REDACTED",
    "Redactor",
    "check_patterns",
    "redactor",
]

#: What a redacted value or match becomes.
REDACTED = "[REDACTED]"

#: Extras keys whose values are redacted by default (matched as lowercase substrings).
DEFAULT_REDACT_KEYS: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
)

#: The default patterns, each with the lowercase strings one of which any text it matches holds
#: (lowercased): the cheap pre-check that lets most records skip the regex.
_DEFAULTS: dict[str, tuple[str, ...]] = {
    # An HTTP bearer credential (RFC 6750's b64token), as in an Authorization header.
    r"(?i:bearer)\s+[A-Za-z0-9\-._~+/]+=*": ("bearer",),
    # AWS access key ids: long-term (AKIA) and temporary (ASIA).
    r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b": ("akia", "asia"),
    # The user:password of a URL (https://user:password@host): the credentials only.
    r"(?<=://)[^\s/?#@:]+:[^\s/?#@]+(?=@)": ("://",),
    # GitHub: personal (ghp_), OAuth (gho_), user-to-server (ghu_), server-to-server (ghs_),
    # refresh (ghr_) and fine-grained personal (github_pat_) tokens.
    r"\b(?:gh[pousr]_[A-Za-z0-9]{30,251}|github_pat_[A-Za-z0-9_]{22,255})": (
        "ghp_",
        "gho_",
        "ghu_",
        "ghs_",
        "ghr_",
        "github_pat_",
    ),
    # Slack: bot, user, app-level, refresh and configuration tokens (xoxb-, xoxp-, xapp-, ...).
    r"\b(?:xox[abeoprs]|xapp)-[A-Za-z0-9-]{10,}": ("xox", "xapp-"),
    # Stripe: secret and restricted keys, live and test, and webhook signing secrets.
    r"\b(?:[sr]k_(?:live|test)_[A-Za-z0-9]{10,247}|whsec_[A-Za-z0-9]{20,})": (
        "k_live_",
        "k_test_",
        "whsec_",
    ),
}

#: Patterns redacted by default in messages, exception messages, tracebacks and extras' text.
DEFAULT_REDACT_PATTERNS: tuple[str, ...] = tuple(_DEFAULTS)

_message = itemgetter(F_MESSAGE)
_extras = itemgetter(F_EXTRAS)
_exc_message = itemgetter(F_EXC_MESSAGE)
_exc_traceback = itemgetter(F_EXC_TRACEBACK)
#: Extras nested deeper than this are redacted whole; a container that holds itself is cut at the
#: cycle, as the encoders write it.
_MAX_DEPTH = 32
_CYCLE = "<cycle>"
#: From this many characters on, the pre-check looks for a marker's characters before the
#: marker (see ``Redactor._found``).
_FILTER_FROM = 1024
#: What makes a pattern one to look for record by record: ^ (outside a class's [^), $, \A,
#: \Z and negative look-arounds, which may match one message but not the messages joined.
_PER_RECORD = re.compile(r"(?<!\[)\^|\$|\\[AZ]|\(\?<?!")


def check_patterns(patterns: Iterable[object], field: str = "redact_patterns") -> list[str]:
    """``patterns`` as a list of strings, each a valid regex; else ConfigError naming it."""
    checked: list[str] = []
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise ConfigError(f"{field}: expected regex strings, got {pattern!r}")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"{field}: invalid regex {pattern!r} ({exc})") from None
        checked.append(pattern)
    return checked


class Redactor:
    """Redacts records by extras key and by pattern. Stateless once made: one may serve any
    number of sinks' workers at once."""

    def __init__(self, keys: Sequence[str], patterns: Sequence[str]) -> None:
        self.keys = tuple(dict.fromkeys(k.lower() for k in keys if k))
        self.patterns = tuple(check_patterns(patterns))
        self._sub: Any = None
        self._search: Any = None
        self._many: tuple[re.Pattern[str], ...] = ()
        if self.patterns:
            try:
                one = re.compile("|".join(f"(?:{p})" for p in self.patterns))
            except re.error:
                # Patterns that cannot share one regex (global inline flags, a repeated group
                # name): searched one after another.
                self._many = tuple(re.compile(p) for p in self.patterns)
            else:
                self._sub, self._search = one.sub, one.search
        #: Patterns that may match one message but not the batch's messages joined (anchors,
        #: negative look-arounds) turn the batch-wide pre-check off.
        self._per_record = any(_PER_RECORD.search(p) for p in self.patterns)
        #: The pre-check's strings when every pattern is a default one, else None (then the
        #: batch's joined messages are searched with the regex itself).
        self._markers: tuple[str, ...] | None = None
        #: Each marker without "_" and its distinct characters (see ``_found``).
        self._plain: tuple[tuple[str, str], ...] = ()
        self._underscored: tuple[tuple[str, tuple[str, ...]], ...] = ()
        if all(p in _DEFAULTS for p in self.patterns):
            markers = tuple(dict.fromkeys(m for p in self.patterns for m in _DEFAULTS[p]))
            # Most markers hold "_": one scan for it spares theirs in text without any. Text
            # with "_" (snake_case names are common) is scanned once per group of markers that
            # share their first two characters (the GitHub tokens' "gh", Stripe's "k_"), and
            # for the group's markers only where that pair occurs: each scan reads the whole
            # batch's text.
            self._markers = tuple(m for m in markers if "_" not in m)
            self._plain = tuple((m, "".join(dict.fromkeys(m))) for m in self._markers)
            groups: dict[str, list[str]] = {}
            for m in markers:
                if "_" in m:
                    groups.setdefault(m[:2], []).append(m)
            self._underscored = tuple(
                (head if len(group) > 1 else group[0], tuple(group))
                for head, group in groups.items()
            )
        #: Keys seen and whether they are sensitive; keys repeat, so each is judged once.
        self._judged: dict[str, bool] = {}

    # -- text ----------------------------------------------------------------------------------
    def text(self, value: str) -> str:
        """``value`` with every match of the patterns replaced."""
        if not self._may_match(value):  # the cheap pre-check first, then the regex
            return value
        if self._sub is not None:
            return self._sub(REDACTED, value)  # type: ignore[no-any-return]
        for regex in self._many:
            value = regex.sub(REDACTED, value)
        return value

    def _may_match(self, value: str) -> bool:
        if self._markers is not None and not self._found(value.lower()):
            return False
        if self._search is not None:
            return self._search(value) is not None
        return any(regex.search(value) for regex in self._many)

    def _found(self, low: str) -> list[str]:
        """The markers in ``low`` (lowercased text).

        A marker is looked for only when each of its characters is in the text: a search for
        one character runs at ``memchr``'s speed, a search for a string at a tenth of it, and
        most log text lacks one of each marker's (``k``, ``x``, ``:``, ``b``). Text shorter than
        ``_FILTER_FROM`` (a single message or extras value) is searched for each marker at once:
        there the filter's own steps cost more than the searches they spare."""
        if len(low) < _FILTER_FROM:
            found = [m for m, _ in self._plain if m in low]
        else:
            found = [m for m, chars in self._plain if all(c in low for c in chars) and m in low]
        if "_" in low:
            for head, group in self._underscored:
                if head in low:
                    found.extend(m for m in group if m in low)
        return found

    # -- extras --------------------------------------------------------------------------------
    def sensitive(self, key: object) -> bool:
        """Whether values under ``key`` are redacted."""
        if not isinstance(key, str):
            return False
        judged = self._judged.get(key)
        if judged is None:
            low = key.lower()
            judged = any(word in low for word in self.keys)
            if len(self._judged) < 4096:
                self._judged[key] = judged
        return judged

    def value(self, value: Any, _path: tuple[int, ...] = ()) -> Any:
        """``value`` (an extras value) redacted; the same object when nothing changed. A
        container that holds itself becomes ``"<cycle>"`` there (as the encoders write it);
        one nested deeper than ``_MAX_DEPTH`` is redacted whole."""
        if isinstance(value, str):
            return self.text(value) if self.patterns else value
        if not isinstance(value, dict | list | tuple):
            return value
        if id(value) in _path:
            return _CYCLE
        if len(_path) >= _MAX_DEPTH:
            return REDACTED
        if isinstance(value, dict):
            return self.mapping(value, _path)
        inner = (*_path, id(value))
        items = [self.value(v, inner) for v in value]
        if any(new is not old for new, old in zip(items, value, strict=True)):
            return type(value)(items) if isinstance(value, tuple) else items
        return value

    def mapping(self, extras: dict[Any, Any], _path: tuple[int, ...] = ()) -> dict[Any, Any]:
        """``extras`` redacted; the same dict when nothing changed (never changed in place)."""
        out: dict[Any, Any] | None = None
        inner = (*_path, id(extras))
        for key, value in extras.items():
            new = REDACTED if self.sensitive(key) else self.value(value, inner)
            if new is not value:
                if out is None:
                    out = dict(extras)
                out[key] = new
        return extras if out is None else out

    # -- records -------------------------------------------------------------------------------
    def record(self, rec: RecordValues) -> RecordValues:
        """``rec`` redacted: ``rec`` itself when nothing changed."""
        return self.batch([rec])[0]

    def batch(self, batch: list[RecordValues]) -> list[RecordValues]:
        """``batch`` with each record redacted (a new list only when some record changed).

        The per-record work runs in C where it can (map, filter, set, count): the worker holds
        the GIL for its Python work. Only the records that may change are visited: those a
        pattern may match, those with an exception, and those whose extras change (each
        distinct extras dict is looked at once; a trace's records share theirs)."""
        if not self.patterns and not self.keys:
            return batch
        work = set(self._candidates(batch) if self.patterns else _NONE)  # None: every record
        redacted: dict[int, Any] = {}
        if any(map(_extras, batch)):  # most batches have none: one pass, stopped at the first
            extras_col = list(map(_extras, batch))
            present = list(filter(None, extras_col))
            for key, extras in dict(zip(map(id, present), present, strict=True)).items():
                done = self.mapping(extras) if isinstance(extras, dict) else extras
                if done is not extras:
                    redacted[key] = done
            if redacted:
                work.update(i for i, e in enumerate(extras_col) if id(e) in redacted)
        # Exception text (none in most batches; empty text holds nothing to redact).
        if self.patterns and (any(map(_exc_message, batch)) or any(map(_exc_traceback, batch))):
            texts = zip(map(_exc_message, batch), map(_exc_traceback, batch), strict=True)
            work.update(i for i, (message, tb) in enumerate(texts) if message or tb)
        if not work:
            return batch
        out = list(batch)
        for i in sorted(work):
            rec = batch[i]
            extras = rec[F_EXTRAS]
            out[i] = self._changed(rec, redacted.get(id(extras), extras))
        return out

    def _changed(self, rec: RecordValues, extras: Any) -> RecordValues:
        changed: dict[int, Any] = {}
        if extras is not rec[F_EXTRAS]:
            changed[F_EXTRAS] = extras
        if self.patterns:
            for field in (F_MESSAGE, F_EXC_MESSAGE, F_EXC_TRACEBACK):
                text = rec[field]
                if isinstance(text, str):
                    new = self.text(text)
                    if new != text:
                        changed[field] = new
        if not changed:
            return rec
        values = list(rec)
        for field, value in changed.items():
            values[field] = value
        if type(rec) is tuple:
            return tuple(values)
        return type(rec)._make(values)  # type: ignore[attr-defined, no-any-return]

    def _candidates(self, batch: list[RecordValues]) -> Iterable[int]:
        """The indexes of the records whose message may match."""
        try:
            joined = "\n".join(map(_message, batch))
        except TypeError:  # a message that is not text
            return range(len(batch))
        markers = self._markers
        if markers is None:
            # The joined messages match whenever one message does (patterns with anchors or
            # negative look-arounds excepted: those are looked for in each message).
            if self._per_record or self._may_match(joined):
                return range(len(batch))
            return _NONE
        low = joined.lower()
        found = self._found(low)
        if not found:
            return _NONE
        if len(low) != len(joined):  # lowercasing changed the length: positions are off
            return range(len(batch))
        ends = list(accumulate(len(m) + 1 for m in map(_message, batch)))
        hits: set[int] = set()
        for marker in found:
            pos = low.find(marker)
            while pos >= 0:
                hits.add(bisect_right(ends, pos))
                pos = low.find(marker, pos + 1)
        return hits


_NONE: frozenset[int] = frozenset()


@lru_cache(maxsize=64)
def redactor(keys: tuple[str, ...], patterns: tuple[str, ...]) -> Redactor:
    """The Redactor for ``keys`` and ``patterns``, made once per distinct pair."""
    return Redactor(keys, patterns)
