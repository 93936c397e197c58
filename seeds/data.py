"""The demo brand's fixed facts: stores, people's names, the product line and the session plan.

Stores, colours and products are CSV files next to this module (edit them to change the
demo); :mod:`seeds.demo` turns everything into rows with a seeded random generator, so every
run builds exactly the same brand.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
BRAND = "Little Lotus"
CURRENCY = "CNY"
RANDOM_SEED = 20261122
CLIENTS = 200
ASSOCIATES_PER_LIVE_STORE = 3
ASSOCIATES_PER_OTHER_STORE = 2
CHINA_UTC_OFFSET_H = 8

SURNAMES = (
    "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Lin Luo Gao".split()
)
GIVEN_NAMES = (
    "Wei Fang Na Min Jing Li Qiang Lei Yan Jun Xiu Ting Hui Mei Yun Lan Hao Yu Xin Jie Ling Chen "
    "Rui Yi Shu Ning Qing Xiaoyu Zihan Yutong"
).split()

# Children's sizes for variants; hats and beanies come in one size.
SIZES = ("2Y", "4Y", "6Y", "8Y", "10Y")
ONE_SIZE_KINDS = ("hat", "beanie")


@dataclass(frozen=True)
class StoreSpec:
    id: str
    name: str
    city: str
    live: bool
    nearby: tuple[str, ...]  # other cities its clients come from


@dataclass(frozen=True)
class ProductSpec:
    title: str
    kind: str  # silhouette drawn on the tile, see seeds.images.SHAPES
    colours: tuple[str, ...]  # keys of COLOURS; the first is the main one
    price_yuan: int
    description: str


def _read(name: str) -> list[dict[str, str]]:
    with (HERE / name).open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


STORES: tuple[StoreSpec, ...] = tuple(
    StoreSpec(
        r["id"],
        r["name"],
        r["city"],
        r["live"] == "yes",
        tuple(filter(None, r["nearby"].split(";"))),
    )
    for r in _read("stores.csv")
)
COLOURS: dict[str, tuple[int, int, int]] = {r["name"]: _rgb(r["hex"]) for r in _read("colours.csv")}
PRODUCTS: tuple[ProductSpec, ...] = tuple(
    ProductSpec(
        r["title"],
        r["kind"],
        tuple(r["colours"].split(";")),
        int(r["price_yuan"]),
        r["description"],
    )
    for r in _read("products.csv")
)


@dataclass(frozen=True)
class SessionSpec:
    id: str
    title: str
    kind: str  # public | private
    store_id: str
    host: int  # associate number in the store (1-based)
    purpose: str  # awareness | purchase
    audience: str  # clients | prospects | followers | public
    style: str  # inspirational | sales
    products: tuple[int, ...]  # indexes into PRODUCTS, in show order
    days: int = 0  # from the seed day (a Wednesday moves to Thursday: the series owns it)
    hour: int = 19  # China time
    capacity: int | None = None


# The department-store series: a live every other Wednesday at 19:00, China time.
SERIES_EPISODES = 4
SERIES = SessionSpec(
    "se_wed", "Wednesday Live at Xintiandi", "public", "st_sh01", 1,
    "purchase", "followers", "inspirational", (0, 2, 10, 12, 24, 32),
)  # fmt: skip

SESSIONS: tuple[SessionSpec, ...] = (
    SessionSpec(
        "se_launch", "Spring Collection Launch", "public", "st_bj01", 1,
        "awareness", "public", "inspirational", (2, 6, 12, 20, 35, 32, 3, 7), days=5, hour=20,
    ),
    SessionSpec(
        "se_flash", "Outerwear Flash Deals", "public", "st_sz01", 1,
        "purchase", "public", "sales", (1, 11, 19, 38, 39, 26), days=9, hour=20,
    ),
    SessionSpec(
        "se_vip_sh", "VIP Preview: Party Dresses", "private", "st_sh01", 2,
        "purchase", "clients", "sales", (2, 6, 20, 35, 16), days=3, hour=19, capacity=500,
    ),
    SessionSpec(
        "se_school", "Back to School with Your Personal Shopper", "private", "st_bj02", 1,
        "purchase", "clients", "sales", (3, 14, 15, 30, 36, 18, 21), days=12, hour=18,
    ),
    SessionSpec(
        "se_newyear", "Lunar New Year Family Fitting", "private", "st_gz01", 1,
        "purchase", "prospects", "inspirational", (6, 23, 39, 29), days=16, hour=19, capacity=200,
    ),
)  # fmt: skip
