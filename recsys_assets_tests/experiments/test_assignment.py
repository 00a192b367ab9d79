"""Assignment to arms and team-draft interleaving."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from recsys_assets.core.experiments.assignment import Experiment, ExperimentError, bucket, team_draft

BLOCK = {
    "name": "e1",
    "salt": "s1",
    "mode": "ab",
    "arms": [
        {"name": "control", "version": "v1", "share": 0.7},
        {"name": "treatment", "version": "v2", "share": 0.3},
    ],
    "shadow": "v3",
}


def test_assignment_is_sticky_uniform_and_redrawn_by_a_new_salt() -> None:
    experiment = Experiment.from_dict(BLOCK, "m.json")
    users = [f"user-{i}" for i in range(20_000)]
    arms = [experiment.assign(u).name for u in users]
    assert arms == [experiment.assign(u).name for u in users]  # sticky
    share = Counter(arms)["treatment"] / len(users)
    assert abs(share - 0.3) < 0.015  # 20k draws: standard error 0.0032
    other = Experiment.from_dict({**BLOCK, "salt": "s2"}, "m.json")
    moved = sum(a != other.assign(u).name for a, u in zip(arms, users, strict=True)) / len(users)
    assert abs(moved - 2 * 0.7 * 0.3) < 0.02  # independent draws under the new salt
    points = [bucket("s1", u) for u in users]
    assert min(points) >= 0 and max(points) < 1
    assert experiment.versions() == {"v1", "v2", "v3"} and experiment.control.version == "v1"
    assert Experiment.from_dict(experiment.to_dict(), "again") == experiment
    # A shadow alone needs only the control, which everyone gets.
    shadow_only = Experiment.from_dict(
        {**BLOCK, "arms": [{"name": "control", "version": "v1", "share": 1.0}]}, "m"
    )
    assert {shadow_only.assign(u).name for u in users[:100]} == {"control"} and shadow_only.shadow == "v3"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mode": "bandit"}, "experiment.mode must be one of ['ab', 'interleave']"),
        ({"salt": ""}, "experiment.salt must be a non-empty string"),
        (
            {"arms": [{"name": "control", "version": "v1", "share": 1.0}], "shadow": None},
            "must list a control and at least one treatment (or a shadow)",
        ),
        (
            {
                "arms": [
                    {"name": "control", "version": "v1", "share": 0.7},
                    {"name": "t", "version": "v2", "share": 0.2},
                ]
            },
            "shares sum to 0.9, not 1",
        ),
        (
            {
                "arms": [
                    {"name": "control", "version": "v1", "share": 0.5},
                    {"name": "t", "version": "v1", "share": 0.5},
                ]
            },
            "arm names and versions must be distinct",
        ),
        (
            {
                "arms": [
                    {"name": "control", "version": "v1", "share": "0.5"},
                    {"name": "t", "version": "v2", "share": 0.5},
                ]
            },
            "arms[0].share must be a number in (0, 1]",
        ),
        ({"shadow": "v2"}, "shadow 'v2' already takes traffic"),
        (
            {
                "mode": "interleave",
                "arms": [
                    {"name": "control", "version": "v1", "share": 0.4},
                    {"name": "a", "version": "v2", "share": 0.3},
                    {"name": "b", "version": "v4", "share": 0.3},
                ],
            },
            "interleaving compares exactly two arms, got 3",
        ),
    ],
)
def test_a_block_that_cannot_run_is_refused_naming_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ExperimentError, match=r"m\.json: experiment") as error:
        Experiment.from_dict({**BLOCK, **change}, "m.json")
    assert message in str(error.value)


def test_team_draft_takes_turns_and_credits_each_pick() -> None:
    first, second = [1, 2, 3, 4, 5], [3, 6, 1, 7, 8]
    merged, teams = team_draft(first, second, 6, seed="request-1")
    assert len(merged) == len(set(merged)) == 6
    # After every pair of picks both teams have the same count.
    for end in range(2, 7, 2):
        assert teams[:end].count(0) == teams[:end].count(1)
    # Each team's picks keep its own order, and each pick is that team's best remaining item.
    for team, ranking in ((0, first), (1, second)):
        picked = [m for m, t in zip(merged, teams, strict=True) if t == team]
        assert picked == sorted(picked, key=ranking.index)
    assert team_draft(first, second, 6, seed="request-1") == (merged, teams)  # seeded by request
    # Over many requests, each team leads the list about half the time.
    leads = Counter(team_draft(first, second, 4, seed=f"r{i}")[1][0] for i in range(2000))
    assert abs(leads[0] / 2000 - 0.5) < 0.05
    # One ranking running out: the other fills the list.
    merged, teams = team_draft([1], [2, 3, 4], 4, "x")
    assert sorted(merged) == [1, 2, 3, 4] and teams.count(0) == 1
