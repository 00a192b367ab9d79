"""MovieLens readers (three formats) and the popularity baseline's tie-break."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys_assets.core.models.popularity import popularity_scores
from recsys_assets.devdata.movielens import ML100K_GENRES, read_ratings


def _ml100k(folder: Path) -> Path:
    folder.mkdir()
    (folder / "u.data").write_text("1\t10\t4\t881250949\n2\t10\t5\t881250950\n1\t20\t3\t881250951\n")
    flags = ["0"] * len(ML100K_GENRES)
    comedy = flags.copy()
    comedy[ML100K_GENRES.index("Comedy")] = "1"
    lines = [
        "|".join(["10", "Toy Story (1995)", "01-Jan-1995", "", "http://x", *comedy]),
        "|".join(["20", "Amélie (2001)", "01-Jan-2001", "", "http://y", *flags]),
    ]
    (folder / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return folder


def test_ml100k(tmp_path: Path) -> None:
    data = read_ratings(_ml100k(tmp_path / "ml"))
    assert data.source == "movielens-100k"
    assert data.interactions["user_id"].tolist() == ["1", "2", "1"]
    assert data.interactions["ts"].iloc[0].isoformat() == "1997-12-04T15:55:49+00:00"
    toy = data.items.iloc[0]
    assert (toy["item_id"], toy["title"], toy["description"]) == ("10", "Toy Story", "1995 Comedy")
    assert toy["categories"] == ["Movies", "Comedy"]
    assert data.items.iloc[1]["title"] == "Amélie"
    assert list(data.items.columns) == [
        "item_id", "title", "description", "brand", "categories", "price", "image_url",
    ]  # fmt: skip


def test_ml1m(tmp_path: Path) -> None:
    (tmp_path / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n")
    movies = [
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama",
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical",
    ]
    (tmp_path / "movies.dat").write_bytes(("\n".join(movies) + "\n").encode("latin-1"))
    data = read_ratings(tmp_path)
    assert data.source == "movielens-1m"
    assert data.interactions["rating"].tolist() == [5.0, 3.0]
    peach = data.items.set_index("item_id").loc["661"]
    assert peach["title"] == "James and the Giant Peach"
    assert peach["categories"] == ["Movies", "Animation", "Children's", "Musical"]


def test_recbole_atomic_files(tmp_path: Path) -> None:
    (tmp_path / "tiny.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n7\t3\t4\t881250949\n"
    )
    (tmp_path / "tiny.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "3\tHeat\t1995\tAction Crime\n"
    )
    data = read_ratings(tmp_path)
    assert data.source == "recbole:tiny"
    assert data.items.iloc[0]["description"] == "1995 Action Crime"
    (tmp_path / "tiny.inter").write_text("user_id:token\titem_id:token\n7\t3\n")
    with pytest.raises(ValueError, match=r"tiny.inter: missing field\(s\) \['rating', 'timestamp'\]"):
        read_ratings(tmp_path)


def test_unknown_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no u\.data, ratings\.dat or \*\.inter file"):
        read_ratings(tmp_path)


def test_popularity_breaks_ties_towards_the_lower_index() -> None:
    scores = popularity_scores(np.array([2, 2, 0, 0, 3, 1]), 4)
    # Counts: item 0: 2, 1: 1, 2: 2, 3: 1 -> order 0, 2, 1, 3.
    assert np.argsort(-scores, kind="stable").tolist() == [0, 2, 1, 3]
    assert np.allclose(np.round(scores), [2, 1, 2, 1])


def test_conversion_to_the_2014_dumps_stages_back_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from recsys_assets.core.catalogue.staging import stage_interactions, stage_items
    from recsys_assets.devdata.movielens import main

    main([str(_ml100k(tmp_path / "ml")), str(tmp_path / "raw")])
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"# movielens-100k: 3 ratings, 2 items -> {tmp_path / 'raw'}"
    settings = dict(line.removeprefix("export ").split("=", 1) for line in printed[1:])
    assert settings["RECSYS_MONTHS_START"] == "1997-12" and settings["RECSYS_MONTHS_END"] == "1998-01"
    items = stage_items(settings["RECSYS_RAW_METADATA_URI"], "2014", tmp_path / "out", workers=1)
    assert items.load_quarantine().empty
    toy = items.load_items().set_index("item_id").loc["10"]
    assert (toy["title"], toy["description"], list(toy["categories"])) == (
        "Toy Story",
        "1995 Comedy",
        ["Movies", "Comedy"],
    )
    staged = stage_interactions(
        settings["RECSYS_RAW_REVIEWS_URI"], "2014", ["1997-12"], ("1997-12", "1998-01"), tmp_path, workers=1
    )
    frame = staged.load("1997-12")
    assert frame[["user_id", "item_id", "rating"]].values.tolist() == [
        ["1", "10", 4.0],
        ["2", "10", 5.0],
        ["1", "20", 3.0],
    ]
    assert frame["ts"].iloc[0].isoformat() == "1997-12-04T15:55:49+00:00"
