"""Online experiments over serving versions: who sees which version, and how two rankings
are interleaved. Pure functions; the API applies them per request, the report reads the arms
back from the logs.

The published manifest may carry an ``experiment`` block beside its (control) version::

    {"name": "gat-vs-ease", "salt": "3f1c...", "mode": "ab",
     "arms": [{"name": "control", "version": "v1", "share": 0.9},
              {"name": "treatment", "version": "v2", "share": 0.1}],
     "shadow": "v3"}

* ``ab``: each user is assigned an arm by a salted hash of their id (``assign``): sticky (the
  same arm on every request, known user or not) and uniform (shares hold over any set of
  ids); a new salt re-draws everyone.
* ``interleave``: exactly two arms; every user gets one list that team-draft interleaving
  (Radlinski, Kurup and Joachims, 2008: ``team_draft``) merges from both, each item
  credited to the arm that picked it, so a click is a vote for that arm.
* ``shadow``: a version scored for every request off the response path and logged, never
  shown (its latency and agreement with what was served, before it takes traffic).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

T = TypeVar("T", bound=Hashable)
Mode = Literal["ab", "interleave"]
MODES: tuple[Mode, ...] = ("ab", "interleave")
#: The arm name of requests answered outside any experiment, and of shadow rows.
CONTROL, TREATMENT, SHADOW, INTERLEAVED = "control", "treatment", "shadow", "interleaved"
_SHARE_TOLERANCE = 1e-6


class ExperimentError(ValueError):
    """An experiment block that cannot be run as written (a bad published state, refused like a
    bad bundle)."""


@dataclass(frozen=True)
class Arm:
    name: str
    version: str
    share: float


@dataclass(frozen=True)
class Experiment:
    name: str
    salt: str
    mode: Mode
    #: Control first.
    arms: tuple[Arm, ...]
    shadow: str | None = None

    @property
    def control(self) -> Arm:
        return self.arms[0]

    def versions(self) -> set[str]:
        """Every version the experiment serves or shadows."""
        return {arm.version for arm in self.arms} | ({self.shadow} if self.shadow else set())

    def assign(self, user_id: str) -> Arm:
        """The user's arm: their salted hash's place in [0, 1) against the cumulative shares."""
        point = bucket(self.salt, user_id)
        total = 0.0
        for arm in self.arms:
            total += arm.share
            if point < total:
                return arm
        return self.arms[-1]  # rounding at the very top of [0, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "salt": self.salt,
            "mode": self.mode,
            "arms": [{"name": a.name, "version": a.version, "share": a.share} for a in self.arms],
            "shadow": self.shadow,
        }

    @classmethod
    def from_dict(cls, block: Any, source: str) -> Experiment:
        """The experiment a manifest's ``experiment`` block describes; ``ExperimentError`` naming
        ``source`` and the field when it cannot run as written."""
        where = f"{source}: experiment"
        if not isinstance(block, dict):
            raise ExperimentError(f"{where} must be an object, got {type(block).__name__}")
        name, salt, mode = block.get("name"), block.get("salt"), block.get("mode", "ab")
        for field, value in (("name", name), ("salt", salt)):
            if not isinstance(value, str) or not value:
                raise ExperimentError(f"{where}.{field} must be a non-empty string, got {value!r}")
        if mode not in MODES:
            raise ExperimentError(f"{where}.mode must be one of {list(MODES)}, got {mode!r}")
        raw_arms, shadow = block.get("arms"), block.get("shadow")
        # A shadow alone needs only the control; anything else compares arms.
        if not isinstance(raw_arms, list) or len(raw_arms) < (1 if shadow else 2):
            raise ExperimentError(
                f"{where}.arms must list a control and at least one treatment (or a shadow)"
            )
        arms = tuple(_arm(raw, f"{where}.arms[{i}]") for i, raw in enumerate(raw_arms))
        if len({a.name for a in arms}) != len(arms) or len({a.version for a in arms}) != len(arms):
            raise ExperimentError(f"{where}.arms: arm names and versions must be distinct")
        if abs(sum(a.share for a in arms) - 1.0) > _SHARE_TOLERANCE:
            raise ExperimentError(f"{where}.arms: shares sum to {sum(a.share for a in arms):g}, not 1")
        if mode == "interleave" and len(arms) != 2:
            raise ExperimentError(f"{where}: interleaving compares exactly two arms, got {len(arms)}")
        if shadow is not None and (not isinstance(shadow, str) or not shadow):
            raise ExperimentError(f"{where}.shadow must be a version or null, got {shadow!r}")
        if shadow in {a.version for a in arms}:
            raise ExperimentError(f"{where}.shadow {shadow!r} already takes traffic in an arm")
        return cls(str(name), str(salt), mode, arms, shadow)


def _arm(raw: Any, where: str) -> Arm:
    if not isinstance(raw, dict):
        raise ExperimentError(f"{where} must be an object, got {type(raw).__name__}")
    name, version, share = raw.get("name"), raw.get("version"), raw.get("share")
    if not isinstance(name, str) or not name or name in (SHADOW, INTERLEAVED):
        raise ExperimentError(
            f"{where}.name must be a name other than {SHADOW!r} or {INTERLEAVED!r}, got {name!r}"
        )
    if not isinstance(version, str) or not version:
        raise ExperimentError(f"{where}.version must be a non-empty string, got {version!r}")
    if not isinstance(share, int | float) or isinstance(share, bool) or not 0 < share <= 1:
        raise ExperimentError(f"{where}.share must be a number in (0, 1], got {share!r}")
    return Arm(name, version, float(share))


def bucket(salt: str, user_id: str) -> float:
    """A uniform point in [0, 1) for the user under ``salt`` (BLAKE2b: stable across processes
    and machines, unlike Python's ``hash``)."""
    digest = hashlib.blake2b(f"{salt}\x00{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def team_draft(first: Sequence[T], second: Sequence[T], k: int, seed: str) -> tuple[list[T], list[int]]:
    """Team-draft interleaving of two rankings: (at most ``k`` items, and for each the team that
    picked it, 0 or 1). In each round the team with fewer picks (a coin flip on a tie, seeded by
    ``seed``, the request) adds its best item not already in the list."""
    rng = random.Random(seed)
    rankings = (first, second)
    merged: list[T] = []
    teams: list[int] = []
    taken: set[T] = set()
    picks, positions = [0, 0], [0, 0]

    def next_of(team: int) -> T | None:
        ranking = rankings[team]
        while positions[team] < len(ranking) and ranking[positions[team]] in taken:
            positions[team] += 1
        return ranking[positions[team]] if positions[team] < len(ranking) else None

    while len(merged) < k:
        team = int(picks[1] < picks[0]) if picks[0] != picks[1] else rng.randrange(2)
        item = next_of(team)
        if item is None:  # this team has run out: the other fills the rest
            team = 1 - team
            item = next_of(team)
            if item is None:
                break
        merged.append(item)
        teams.append(team)
        taken.add(item)
        picks[team] += 1
    return merged, teams


def new_salt() -> str:
    return hashlib.blake2b(random.SystemRandom().randbytes(16), digest_size=8).hexdigest()
