"""Readers for public MovieLens-style data, so the same graph runs on real ratings.

Formats (detected from the file names in a folder):

* MovieLens 100k: ``u.data`` (tab: user, item, rating, unix time) + ``u.item`` (``|``:
  id, title with year, release date, video date, URL, 19 genre flags), latin-1;
* MovieLens 1M/10M: ``ratings.dat`` (``::``: user, item, rating, time) + ``movies.dat``
  (``::``: id, title with year, genres joined by ``|``), latin-1;
* RecBole atomic files: ``<name>.inter`` and ``<name>.item``, tab-separated, with typed
  headers (``user_id:token``, ``rating:float``, ``timestamp:float``, ...).

Every reader returns ``interactions`` (``user_id, item_id, rating, ts`` with ``ts`` in UTC)
and ``items`` (``item_id, title, description, brand, categories, price, image_url``), the
same columns the Amazon staging writes, so every downstream asset works unchanged. The
text of a movie is its title, year and genres.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")


@dataclass
class RatingsData:
    interactions: pd.DataFrame
    items: pd.DataFrame
    source: str


def _items(item_id: pd.Series, title: pd.Series, year: pd.Series, genres: pd.Series) -> pd.DataFrame:
    years = year.fillna("").astype(str)
    return pd.DataFrame(
        {
            "item_id": item_id.astype(str),
            "title": title.astype(str).str.strip(),
            "description": [f"{y} {' '.join(g)}".strip() or None for y, g in zip(years, genres, strict=True)],
            "brand": None,
            "categories": [["Movies", *g] for g in genres],
            "price": np.nan,
            "image_url": None,
        }
    )


def _interactions(user: pd.Series, item: pd.Series, rating: pd.Series, seconds: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": user.astype(str),
            "item_id": item.astype(str),
            "rating": rating.astype(float),
            "ts": pd.to_datetime(seconds.astype("int64"), unit="s", utc=True),
        }
    )


def _split_year(titles: pd.Series) -> tuple[pd.Series, pd.Series]:
    year = titles.str.extract(_YEAR, expand=False)
    return titles.str.replace(_YEAR, "", regex=True), year


def read_ml100k(folder: Path) -> RatingsData:
    data = pd.read_csv(folder / "u.data", sep="\t", names=["user", "item", "rating", "ts"], dtype=str)
    item = pd.read_csv(folder / "u.item", sep="|", header=None, encoding="latin-1", dtype=str)
    if item.shape[1] != 5 + len(ML100K_GENRES):
        raise ValueError(
            f"{folder / 'u.item'}: expected {5 + len(ML100K_GENRES)} fields, got {item.shape[1]}"
        )
    flags = item.iloc[:, 5:].to_numpy() == "1"
    genres = pd.Series([[g for g, on in zip(ML100K_GENRES, row, strict=True) if on] for row in flags])
    title, year = _split_year(item[1])
    return RatingsData(
        _interactions(data["user"], data["item"], data["rating"], data["ts"]),
        _items(item[0], title, year, genres),
        "movielens-100k",
    )


def read_ml1m(folder: Path) -> RatingsData:
    ratings = pd.read_csv(
        folder / "ratings.dat", sep="::", engine="python", names=["user", "item", "rating", "ts"], dtype=str
    )
    movies = pd.read_csv(
        folder / "movies.dat", sep="::", engine="python", names=["item", "title", "genres"], dtype=str,
        encoding="latin-1",
    )  # fmt: skip
    title, year = _split_year(movies["title"])
    genres = movies["genres"].fillna("").map(lambda g: [x for x in g.split("|") if x])
    return RatingsData(
        _interactions(ratings["user"], ratings["item"], ratings["rating"], ratings["ts"]),
        _items(movies["item"], title, year, genres),
        "movielens-1m",
    )


def _atomic(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, sep="\t", dtype=str)
    frame.columns = [c.split(":", 1)[0] for c in frame.columns]
    return frame


def read_recbole(folder: Path) -> RatingsData:
    found = sorted(folder.glob("*.inter"))
    if len(found) != 1:
        raise FileNotFoundError(f"{folder}: expected one RecBole .inter file, found {len(found)}")
    inter_path = found[0]
    inter = _atomic(inter_path)
    missing = [c for c in ("user_id", "item_id", "rating", "timestamp") if c not in inter.columns]
    if missing:
        raise ValueError(f"{inter_path}: missing field(s) {missing}; have {list(inter.columns)}")
    item_path = inter_path.with_suffix(".item")
    if item_path.is_file():
        item = _atomic(item_path)
        title = item.get("movie_title", item.get("title", item["item_id"]))
        year = item.get("release_year", pd.Series([None] * len(item)))
        genres = item.get("class", item.get("genre", pd.Series([""] * len(item)))).fillna("").str.split()
        items = _items(item["item_id"], title, year, genres)
    else:
        ids = pd.Series(sorted(inter["item_id"].unique()))
        items = _items(ids, ids, pd.Series([None] * len(ids)), pd.Series([[]] * len(ids)))
    return RatingsData(
        _interactions(inter["user_id"], inter["item_id"], inter["rating"], inter["timestamp"].astype(float)),
        items,
        f"recbole:{inter_path.stem}",
    )


def read_ratings(folder: str | Path) -> RatingsData:
    """Whichever of the three formats ``folder`` holds."""
    path = Path(folder)
    if (path / "u.data").is_file():
        return read_ml100k(path)
    if (path / "ratings.dat").is_file():
        return read_ml1m(path)
    if any(path.glob("*.inter")):
        return read_recbole(path)
    raise FileNotFoundError(f"{path}: no u.data, ratings.dat or *.inter file")


def write_amazon_2014(data: RatingsData, out: Path) -> dict[str, str]:
    """Write ``data`` as the two 2014-format dumps the catalogue assets stage, so that every
    asset runs unchanged on MovieLens. Returns the settings that point the graph at them."""
    import gzip

    import orjson

    out.mkdir(parents=True, exist_ok=True)
    reviews, metadata = out / "reviews.json.gz", out / "meta.json.gz"
    with gzip.open(metadata, "wb", compresslevel=1) as meta:
        for row in data.items.itertuples(index=False):
            record = {"asin": row.item_id, "title": row.title, "categories": [list(row.categories)]}
            if row.description:
                record["description"] = row.description
            # repr() of a dict is the 2014 metadata file's Python-literal syntax.
            meta.write(repr(record).encode("utf-8") + b"\n")
    ts = data.interactions["ts"]
    seconds = (ts - pd.Timestamp(0, tz="UTC")).dt.total_seconds().astype("int64")
    with gzip.open(reviews, "wb", compresslevel=1) as fh:
        for user, item, rating, second in zip(
            data.interactions["user_id"], data.interactions["item_id"], data.interactions["rating"], seconds,
            strict=True,
        ):  # fmt: skip
            line = {"reviewerID": user, "asin": item, "overall": float(rating), "unixReviewTime": int(second)}
            fh.write(orjson.dumps(line) + b"\n")
    last = ts.max()
    return {
        "RECSYS_RAW_FORMAT": "2014",
        "RECSYS_RAW_REVIEWS_URI": str(reviews),
        "RECSYS_RAW_METADATA_URI": str(metadata),
        "RECSYS_MONTHS_START": ts.min().strftime("%Y-%m"),
        "RECSYS_MONTHS_END": (last + pd.offsets.MonthBegin(1)).strftime("%Y-%m"),
    }


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(
        description="Convert a MovieLens folder (100k, 1M or RecBole atomic) into the 2014 dumps the "
        "graph stages; prints the settings to export."
    )
    parser.add_argument("source", type=Path, help="folder with u.data, ratings.dat or *.inter")
    parser.add_argument("out", type=Path, help="folder for reviews.json.gz and meta.json.gz")
    args = parser.parse_args(argv)
    data = read_ratings(args.source)
    settings = write_amazon_2014(data, args.out)
    print(
        f"# {data.source}: {len(data.interactions):,} ratings, {len(data.items):,} items -> {args.out}",
        *(f"export {key}={value}" for key, value in settings.items()),
        sep="\n",
    )


if __name__ == "__main__":
    main()
