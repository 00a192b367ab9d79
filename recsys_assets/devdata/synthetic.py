"""A seeded synthetic catalogue written in the real 2014 Amazon format.

It exists so that the whole pipeline runs end to end on a laptop, and so that the
benchmarks can stage a file of the reference shape. What makes it useful rather than
noise, each property mirroring the real Electronics data:

* items belong to categories, and their titles/descriptions use category words, so
  text encoders have a signal to find;
* a share of items lack a title, a description or an image (as in the real metadata);
* popularity is a power law within each category, and only part of the catalogue is
  ever reviewed (63k of 498k items in the real file);
* each user prefers one category and drifts towards a second over their active months,
  so time-ordered splits and drift monitoring have something to see;
* reviews span at least 24 months, with volume growing over time.

Run ``python -m recsys_assets.devdata.synthetic --preset small --out data/raw/small``.
"""

from __future__ import annotations

import argparse
import colorsys
import gzip
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from recsys_assets.devdata.formats import FORMATS, metadata_line, review_line, review_record
from recsys_assets.devdata.quirks import (
    QuirkCounts,
    ReviewQuirks,
    changed_rating,
    plan_review_quirks,
    plant_metadata_quirks,
    render_huge_price,
    wrong_typed_review,
)

REVIEWS_FILE = FORMATS["2014"].reviews_file
METADATA_FILE = FORMATS["2014"].metadata_file
IMAGES_DIR = "images"
N_BRANDS = 6
#: The colour of each brand's mark on its images.
BRAND_COLOURS = ((20, 20, 20), (230, 230, 230), (200, 30, 30), (30, 160, 40), (30, 60, 200), (240, 200, 0))
MANIFEST_FILE = "manifest.json"

#: The words the catalogue is written in (``vocabulary.json``): per category its path under
#: Electronics and the words that carry its signal; adjectives, review filler, brand stems.
VOCABULARY = json.loads((Path(__file__).with_name("vocabulary.json")).read_text())
CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    name: (tuple(entry["path"]), tuple(entry["words"])) for name, entry in VOCABULARY["categories"].items()
}
CATEGORY_NAMES = tuple(CATEGORIES)
ADJECTIVES: tuple[str, ...] = tuple(VOCABULARY["adjectives"])
GENERIC: tuple[str, ...] = tuple(VOCABULARY["generic_words"])
BRAND_STEMS: tuple[str, ...] = tuple(VOCABULARY["brand_stems"])


@dataclass(frozen=True)
class Preset:
    n_items: int
    n_users: int
    n_reviews: int
    #: Items eligible for reviews; the rest of the catalogue is cold.
    n_reviewed_items: int
    first_month: str
    n_months: int
    image_share: float = 0.7
    #: Share of a user's reviews drawn from their favourite brand (within the category).
    brand_loyalty: float = 0.5
    missing_title_share: float = 0.08
    missing_description_share: float = 0.25
    #: Mean number of words of a review text.
    review_words: int = 30
    #: Mean size of the ``related.also_bought`` list (read and discarded by the reader).
    related_items: int = 8
    seed: int = 7
    # The quirks of real dumps, planted as extra lines on top of the clean records (so the
    # clean counts above still hold after staging). Shares scale with the preset; the counts
    # they give (``QuirkCounts``) are in the manifest, and staging must report exactly them.
    #: review lines copied (same user, item and time), some far from their source...
    duplicate_review_share: float = 0.0
    #: ...and the share of those copies that carry a different rating (still collapsed);
    duplicate_rating_change_share: float = 0.25
    #: metadata lines repeating an item: a copy, or a copy with fewer fields...
    repeated_item_share: float = 0.0
    #: ...and the share of those that disagree with the item's first line (a longer title);
    conflicting_item_share: float = 1 / 3
    #: review copies with a wrong-typed field (an id as a list, dict or fraction, a rating
    #: as a string), at most one a month, which staging quarantines;
    wrong_type_review_share: float = 0.0
    #: metadata copies whose id is a list or a boolean (quarantined), and as many items whose
    #: price is not a finite number (stored as null and counted);
    wrong_type_item_share: float = 0.0
    #: blank lines in each file;
    blank_lines: int = 0
    #: reviews of an item by a user who reviewed it before, 1 to 180 days later (re-reviews and
    #: repeat purchases: the rating changes in half of them). Staging keeps them (they are
    #: other events); the split collapses each pair to its first event.
    re_review_share: float = 0.0


PRESETS: dict[str, Preset] = {
    # The local default: the whole pipeline must run in minutes on 2 cores.
    "small": Preset(
        n_items=3_000,
        n_users=1_500,
        n_reviews=50_000,
        n_reviewed_items=2_000,
        first_month="2012-08",
        n_months=24,
        # A few of each (40 duplicate reviews, 30 repeated metadata lines, 4 wrong-typed
        # reviews, 2 wrong-typed metadata lines, 3 blank lines, 100 re-reviews), so `make run`
        # shows them handled.
        duplicate_review_share=0.0008,
        repeated_item_share=0.01,
        wrong_type_review_share=0.00008,
        wrong_type_item_share=0.0007,
        blank_lines=3,
        re_review_share=0.002,
    ),
    # Sparse like a real 5-core file: most users have 5 to 9 reviews, so a share held out per
    # user must agree with the split exactly (benchmarks/leakage.py).
    "sparse": Preset(
        n_items=3_000,
        n_users=5_000,
        n_reviews=40_000,
        n_reviewed_items=2_000,
        first_month="2012-08",
        n_months=24,
        duplicate_review_share=0.001,
        re_review_share=0.002,
        blank_lines=3,
    ),
    # The shape of the real 2014 Electronics files (reviews 5-core, full metadata).
    "amazon-electronics": Preset(
        n_items=498_196,
        n_users=192_403,
        n_reviews=1_689_116,
        n_reviewed_items=63_001,
        first_month="2007-08",
        n_months=84,
        image_share=0.3,
        review_words=90,
        related_items=25,
        # Real 2018 5-core files repeat from 0.2% to most of their review lines.
        duplicate_review_share=0.01,
        repeated_item_share=0.01,
        wrong_type_review_share=0.00001,
        wrong_type_item_share=0.00004,
        blank_lines=10,
        # The real 2018 Gift Cards 5-core file: 4 re-reviewed pairs in 2,972 reviews.
        re_review_share=0.0015,
    ),
    # The shape of a public 1M-rating set (MovieLens-1M: 6,040 users, 3,706 rated items, ~165
    # ratings a user): dense, so it is the models' cost benchmark (benchmarks/cost.py).
    "ratings-1m": Preset(
        n_items=3_900,
        n_users=6_040,
        n_reviews=1_000_000,
        n_reviewed_items=3_700,
        first_month="2012-08",
        n_months=36,
        review_words=10,
        related_items=0,
    ),
    # Ten million reviews: with the 1.7M preset, it shows staging's memory flat in dump size.
    # (The 2023 Electronics release has ~43.9M reviews and ~1.6M items.)
    "reviews-10m": Preset(
        n_items=600_000,
        n_users=1_000_000,
        n_reviews=10_000_000,
        n_reviewed_items=200_000,
        first_month="2013-01",
        n_months=120,
        image_share=0.3,
        review_words=40,
        related_items=0,
        duplicate_review_share=0.01,
        repeated_item_share=0.01,
        wrong_type_review_share=0.00001,
        wrong_type_item_share=0.00004,
        blank_lines=10,
    ),
}


def item_ids(n: int) -> np.ndarray:
    return np.array([f"B{index:09d}" for index in range(n)], dtype=object)


def user_ids(n: int) -> np.ndarray:
    # A bijective scramble of the index into 13 base-36 digits looks like real reviewer
    # ids ("A2SUAM1J3GNN3B") and stays unique.
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    modulus = 36**13
    multiplier = int(modulus * 0.6180339887) | 1  # odd and (checked below) not 3k: coprime to 36
    while multiplier % 3 == 0:
        multiplier += 2
    out = []
    for index in range(n):
        value = (index + 1) * multiplier % modulus
        chars = []
        for _ in range(13):
            value, rest = divmod(value, 36)
            chars.append(digits[rest])
        out.append("A" + "".join(chars))
    return np.array(out, dtype=object)


@dataclass
class Catalogue:
    item_id: np.ndarray
    category: np.ndarray
    brand: np.ndarray
    quality: np.ndarray
    #: Sampling weight of each item among its category's reviewed items (0 if cold).
    weight: np.ndarray


def make_catalogue(preset: Preset, rng: np.random.Generator) -> Catalogue:
    n = preset.n_items
    category_share = rng.dirichlet(np.full(len(CATEGORIES), 4.0))
    category = rng.choice(len(CATEGORIES), size=n, p=category_share)
    brand = rng.integers(0, N_BRANDS, size=n)
    reviewed = np.zeros(n, dtype=bool)
    reviewed[rng.choice(n, size=min(preset.n_reviewed_items, n), replace=False)] = True
    weight = np.zeros(n)
    for cat in range(len(CATEGORIES)):
        members = np.flatnonzero((category == cat) & reviewed)
        ranks = rng.permutation(len(members)) + 1
        # Zipf-like popularity plus a floor, so most reviewed items get a few reviews.
        weight[members] = ranks**-1.0 + 0.3 / max(len(members), 1)
    return Catalogue(item_ids(n), category, brand, rng.normal(0.0, 0.5, n), weight)


def _brand_name(category: int, brand: int) -> str:
    return f"{BRAND_STEMS[(category * 5 + brand) % len(BRAND_STEMS)]}{'XYZQRT'[brand]}"


def _words(rng: np.random.Generator, vocab: tuple[str, ...], k: int) -> list[str]:
    return [vocab[i] for i in rng.integers(0, len(vocab), size=k)]


def metadata_records(
    preset: Preset, cat: Catalogue, rng: np.random.Generator, image_base_uri: str
) -> tuple[list[dict[str, object]], np.ndarray]:
    """Metadata dicts in the 2014 shape, and a mask of the items that have an image."""
    n = preset.n_items
    has_title = rng.random(n) >= preset.missing_title_share
    has_description = rng.random(n) >= preset.missing_description_share
    has_image = rng.random(n) < preset.image_share
    price = np.round(np.exp(rng.normal(3.3, 1.0, n)), 2)
    has_price = rng.random(n) < 0.8
    records = []
    for i in range(n):
        c = int(cat.category[i])
        name = CATEGORY_NAMES[c]
        path, vocab = CATEGORIES[name]
        brand = _brand_name(c, int(cat.brand[i]))
        record: dict[str, object] = {"asin": cat.item_id[i]}
        if preset.related_items:
            k = int(rng.poisson(preset.related_items))
            related = cat.item_id[rng.integers(0, n, size=k)].tolist()
            record["related"] = {"also_bought": related}
        if has_title[i]:
            nouns = " ".join(_words(rng, vocab, 2)).title()
            adjective = ADJECTIVES[int(rng.integers(len(ADJECTIVES)))].title()
            record["title"] = f"{brand} {adjective} {nouns} {name[:2].upper()}-{i % 997}"
        if has_price[i]:
            record["price"] = float(price[i])
        record["salesRank"] = {"Electronics": int(rng.integers(1, 500_000))}
        if has_image[i]:
            record["imUrl"] = f"{image_base_uri}/{cat.item_id[i]}.jpg"
        record["brand"] = brand
        record["categories"] = [["Electronics", *path]]
        if has_description[i]:
            words = _words(rng, vocab, 6) + _words(rng, GENERIC, 4)
            # A little real-world markup: entities the reader must unescape.
            record["description"] = (
                f"The {brand} {' '.join(words[:3])} &amp; {' '.join(words[3:6])}. "
                f"{' '.join(words[6:]).capitalize()} &#8211; built for everyday use."
            )
        records.append(record)
    return records, has_image


@dataclass
class Reviews:
    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    ts: np.ndarray


def _month_starts(preset: Preset) -> np.ndarray:
    first = np.datetime64(preset.first_month, "M")
    months = first + np.arange(preset.n_months + 1)
    return months.astype("datetime64[s]").astype(np.int64)


def make_reviews(preset: Preset, cat: Catalogue, rng: np.random.Generator) -> Reviews:
    n_users, n_reviews, n_cat = preset.n_users, preset.n_reviews, len(CATEGORIES)
    # Activity: every user has at least 5 reviews (the dump is 5-core), the rest heavy-tailed.
    extra = rng.pareto(1.5, n_users) + 0.05
    counts = 5 + rng.multinomial(n_reviews - 5 * n_users, extra / extra.sum())
    # Nobody reviews more than a tenth of the reviewable catalogue (or twice the mean, for
    # dense presets); the excess goes to users with room left, so the total stays exact.
    cap = max(preset.n_reviewed_items // 10, 2 * -(-n_reviews // n_users))
    if cap > preset.n_reviewed_items // 2 or n_users * 5 > n_reviews:
        raise ValueError(
            f"{n_reviews} reviews by {n_users} users over {preset.n_reviewed_items} items is too dense"
            " (or too sparse for 5 reviews a user)"
        )
    while (counts > cap).any():
        excess = int((counts - cap).clip(min=0).sum())
        counts = counts.clip(max=cap)
        room = (cap - counts).astype(float)
        counts += rng.multinomial(excess, room / room.sum())
    user_of = np.repeat(np.arange(n_users), counts)

    # Monthly volume grows smoothly (x1.6 over the span); a user's reviews are spread over
    # the span and taken in time order, so "position" runs from 0 (first) to 1 (last).
    bounds = _month_starts(preset)
    growth = np.linspace(1.0, 1.6, preset.n_months)
    month = rng.choice(preset.n_months, size=len(user_of), p=growth / growth.sum())
    ts = bounds[month] + (rng.random(len(user_of)) * (bounds[month + 1] - bounds[month])).astype(np.int64)
    order = np.lexsort((ts, user_of))
    ts = ts[order]  # user_of is already grouped by user, so only ts needs reordering
    first_of_user = np.repeat(np.cumsum(counts) - counts, counts)
    position = (np.arange(len(user_of)) - first_of_user) / np.maximum(counts[user_of] - 1, 1)

    # Preferences drift from the first to the second category over a user's timeline.
    popularity = np.bincount(cat.category[cat.weight > 0], minlength=n_cat).astype(float)
    popularity /= popularity.sum()
    first_pref = rng.choice(n_cat, size=n_users, p=popularity)
    second_pref = (first_pref + rng.integers(1, n_cat, size=n_users)) % n_cat
    drifted = rng.random(len(user_of)) < position * 0.8
    category = np.where(drifted, second_pref[user_of], first_pref[user_of])
    noise = rng.random(len(user_of)) < 0.15
    category[noise] = rng.choice(n_cat, size=int(noise.sum()), p=popularity)

    # Brand loyalty: part of each user's reviews stay with one brand (shown in the title,
    # the brand field and a mark on the image), so content predicts co-review beyond category.
    favourite = rng.integers(0, N_BRANDS, size=n_users)[user_of]
    loyal = rng.random(len(user_of)) < preset.brand_loyalty
    item = _draw_items(category, cat, rng, np.where(loyal, favourite, -1))
    # A user reviews an item once: redraw repeats until none is left.
    for _ in range(50):
        pair = user_of.astype(np.int64) * cat.item_id.size + item
        _, first_index = np.unique(pair, return_index=True)
        repeat = np.ones(len(pair), dtype=bool)
        repeat[first_index] = False
        if not repeat.any():
            break
        redraw_cat = np.where(
            rng.random(int(repeat.sum())) < 0.5,
            category[repeat],
            rng.choice(n_cat, size=int(repeat.sum()), p=popularity),
        )
        item[repeat] = _draw_items(redraw_cat, cat, rng)
    else:
        raise RuntimeError("could not draw distinct items per user; preset too dense")

    noise_r = rng.normal(0.0, 1.1, len(item))
    rating = np.clip(np.rint(4.3 + cat.quality[item] + noise_r), 1, 5)
    return Reviews(user_of, item, rating, ts)


def _draw_items(
    category: np.ndarray, cat: Catalogue, rng: np.random.Generator, brand: np.ndarray | None = None
) -> np.ndarray:
    """An item per event from its category, popularity-weighted; of ``brand`` where >= 0."""
    brand = np.full(len(category), -1) if brand is None else brand
    item = np.empty(len(category), dtype=np.int64)
    for c, b in {(int(c), int(b)) for c, b in zip(category, brand, strict=True)}:
        rows = np.flatnonzero((category == c) & (brand == b))
        members = np.flatnonzero((cat.category == c) & (cat.weight > 0) & ((cat.brand == b) | (b < 0)))
        if len(members) == 0:  # no reviewed item of that brand in the category
            members = np.flatnonzero((cat.category == c) & (cat.weight > 0))
        p = cat.weight[members] / cat.weight[members].sum()
        item[rows] = members[rng.choice(len(members), size=len(rows), p=p)]
    return item


def write_image(path: Path, category: int, seed: int, brand: int = 0) -> None:
    """A 64x64 JPEG: colour and shape show the category, a bar pattern at the bottom the brand."""
    from PIL import Image, ImageDraw  # deferred: only the generator draws images

    rng = np.random.default_rng(seed)
    hue = category / len(CATEGORIES)
    base = tuple(int(255 * v) for v in colorsys.hsv_to_rgb(hue, 0.55, 0.9))
    image = Image.new("RGB", (64, 64), base)
    draw = ImageDraw.Draw(image)
    x0, y0 = (int(v) for v in rng.integers(4, 24, size=2))
    x1, y1 = x0 + 24 + category * 2, y0 + 24 + (category % 4) * 4
    shape = draw.ellipse if category % 2 else draw.rectangle
    shape((x0, y0, x1, y1), fill=(255 - base[0], 255 - base[1], 255 - base[2]))
    for bar in range(brand + 1):
        draw.rectangle((4 + bar * 10, 54, 10 + bar * 10, 62), fill=BRAND_COLOURS[brand])
    image.save(path, format="JPEG", quality=85)


def write_reviews(
    path: Path,
    fmt: str,
    preset: Preset,
    cat: Catalogue,
    reviews: Reviews,
    quirks: ReviewQuirks,
    rng: np.random.Generator,
) -> None:
    """The reviews file: each review's line, then the quirks planned after it."""
    rating_key = FORMATS[fmt].rating
    pending: dict[int, list[bytes]] = {}
    users = user_ids(preset.n_users)
    words_per_review = rng.poisson(preset.review_words, len(reviews.item)) + 3
    with gzip.open(path, "wb", compresslevel=1) as fh:
        for k in range(len(reviews.item)):
            item = int(reviews.item[k])
            vocab = CATEGORIES[CATEGORY_NAMES[int(cat.category[item])]][1]
            n_words = int(words_per_review[k])
            words = _words(rng, vocab, max(1, n_words // 3)) + _words(rng, GENERIC, n_words)
            rating = float(reviews.rating[k])
            text, summary = " ".join(words).capitalize() + ".", " ".join(words[:4]).title()
            record = review_record(
                fmt, users[reviews.user[k]], cat.item_id[item], rating, int(reviews.ts[k]), text, summary
            )
            fh.write(review_line(record) + b"\n")
            for target, copy_rating in quirks.copies.get(k, []):
                copy = record if copy_rating is None else {**record, rating_key: changed_rating(rating)}
                pending.setdefault(target, []).append(review_line(copy))
            if k in quirks.re_reviews:
                when, changed = quirks.re_reviews[k]
                again_rating = changed_rating(rating) if changed else rating
                again = review_record(
                    fmt, users[reviews.user[k]], cat.item_id[item], again_rating, when, text, summary
                )
                fh.write(review_line(again) + b"\n")
            if k in quirks.wrong_typed:
                fh.write(review_line(wrong_typed_review(record, fmt, quirks.wrong_typed[k])) + b"\n")
            for line in pending.pop(k, []):
                fh.write(line + b"\n")
            if k in quirks.blank_after:
                fh.write(b"   \n" if k % 2 else b"\n")


def generate(
    preset_name: str,
    out: Path,
    *,
    fmt: str = "2014",
    image_files: bool = True,
    image_base_uri: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, object]:
    """Write the reviews file, the metadata file (in the ``fmt`` release's format), images and
    a manifest into ``out``.

    Returns the manifest: preset, file names, counts, the month range the reviews cover, and
    the counts staging must report for the planted quirks.
    """
    if preset_name not in PRESETS:
        raise ValueError(f"unknown preset {preset_name!r}; expected one of {', '.join(PRESETS)}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    files = FORMATS[fmt]
    preset = replace(PRESETS[preset_name], **(overrides or {}))
    rng = np.random.default_rng(preset.seed)
    quirk_rng = np.random.default_rng([preset.seed, 1])
    out.mkdir(parents=True, exist_ok=True)
    images_dir = out / IMAGES_DIR
    base_uri = image_base_uri or images_dir.resolve().as_uri()
    started = time.perf_counter()

    cat = make_catalogue(preset, rng)
    records, has_image = metadata_records(preset, cat, rng, base_uri)
    counts = QuirkCounts.of(preset)
    with gzip.open(out / files.metadata_file, "wb", compresslevel=1) as meta:
        for record in plant_metadata_quirks(records, fmt, counts, quirk_rng):
            line = b"" if record is None else render_huge_price(metadata_line(record, fmt))
            meta.write(line + b"\n")
    del records

    reviews = make_reviews(preset, cat, rng)
    months = np.searchsorted(_month_starts(preset), reviews.ts, side="right") - 1
    end = int(_month_starts(preset)[-1])
    quirks = plan_review_quirks(len(reviews.item), months, counts, quirk_rng, reviews.ts, end)
    write_reviews(out / files.reviews_file, fmt, preset, cat, reviews, quirks, rng)

    n_images = 0
    if image_files:
        images_dir.mkdir(exist_ok=True)
        for i in np.flatnonzero(has_image):
            write_image(
                images_dir / f"{cat.item_id[i]}.jpg",
                int(cat.category[i]),
                preset.seed + int(i),
                int(cat.brand[i]),
            )
            n_images += 1

    last_month = np.datetime64(preset.first_month, "M") + preset.n_months - 1
    manifest: dict[str, object] = {
        "preset": preset_name,
        "format": fmt,
        "files": {"reviews": files.reviews_file, "metadata": files.metadata_file},
        "settings": asdict(preset),
        "items": preset.n_items,
        "users": preset.n_users,
        "reviews": len(reviews.item),
        "items_with_reviews": int(np.unique(reviews.item).size),
        "items_with_image_url": int(has_image.sum()),
        "image_files": n_images,
        "months": [preset.first_month, str(last_month)],
        "expected_staging": counts.expected_staging(preset.n_items, len(reviews.item)),
        # Each re-review is one later event of a pair: the split folds exactly these.
        "expected_split": {"pairs": len(reviews.item), "repeated_user_item_pairs": counts.re_reviews},
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS))
    parser.add_argument("--format", default="2014", choices=sorted(FORMATS), help="Amazon release to imitate")
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument(
        "--no-image-files",
        action="store_true",
        help="keep image URLs in the metadata but draw no image files",
    )
    parser.add_argument(
        "--image-base-uri", default=None, help="prefix of imUrl (default: the file:// URI of OUT/images)"
    )
    args = parser.parse_args(argv)
    manifest = generate(
        args.preset,
        args.out,
        fmt=args.format,
        image_files=not args.no_image_files,
        image_base_uri=args.image_base_uri,
    )
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
