"""Where to get the real datasets (most sit behind a login or a licence), and a download that verifies sha256."""

from __future__ import annotations

import hashlib
import logging
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from sessrec_course.paths import write_file_atomically

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetSource:
    """One public dataset: the file its loader reads and where to get it."""

    filename: str
    loader: str
    page: str
    note: str
    url: str | None = None  # a direct download without a login


DATASETS: dict[str, DatasetSource] = {
    "yoochoose": DatasetSource("yoochoose-clicks.dat", "load_yoochoose_clicks", "https://recsys.acm.org/recsys15/"
                               "challenge/ (RecSys Challenge 2015; on Kaggle: 'chadgostopp/recsys-challenge-2015')",
                               "the historical 7z archive (~270 MB, may be offline); extract yoochoose-clicks.dat",
                               url="https://s3-eu-west-1.amazonaws.com/yc-rdata/yoochoose-data.7z"),
    "diginetica": DatasetSource("train-item-views.csv", "load_diginetica", "https://competitions.codalab.org/"
                                "competitions/11161 (CIKM Cup 2016 Track 2, DIGINETICA)", "download 'dataset-train-"
                                "diginetica.zip' after accepting the terms (train-item-views, product-categories)"),
    "booking": DatasetSource("train_set.csv", "load_booking_trips", "https://github.com/bookingcom/ml-dataset-mdt "
                             "(Booking.com WSDM WebTour 2021)", "request/accept the dataset licence there"),
    "rees46": DatasetSource("2019-Oct.csv", "load_rees46", "https://www.kaggle.com/datasets/mkechinov/ecommerce-"
                            "behavior-data-from-multi-category-store", "needs a Kaggle account (kaggle datasets "
                            "download -d mkechinov/ecommerce-behavior-data-from-multi-category-store); any month"),
}


def instructions(name: str) -> str:
    """Return human instructions for obtaining dataset ``name``."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    src = DATASETS[name]
    lines = [f"To use the {name} data: get {src.filename!r} from {src.page}.", f"Note: {src.note}."]
    if src.url:
        lines.append(f"Direct link: {src.url} (sessrec_course.data.download.download_file(url, target)).")
    lines.append(f"Then: sessrec_course.data.loaders.{src.loader}('<folder>/{src.filename}').")
    return "\n".join(lines)


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download_file(url: str, target: str | Path, sha256: str | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``target`` atomically; with ``sha256`` the file is kept only if it matches."""
    target = Path(target)
    if target.exists() and sha256 and sha256_of(target) == sha256:
        log.info("%s already present and verified", target)
        return target

    def write(tmp: Path) -> None:
        from tqdm.auto import tqdm

        with (tmp.open("wb") as out, urllib.request.urlopen(url, timeout=timeout) as response,
              tqdm(total=int(response.headers.get("Content-Length") or 0) or None, unit="B", unit_scale=True,
                   desc=target.name) as bar):
            while block := response.read(1 << 20):
                out.write(block)
                bar.update(len(block))
        digest = sha256_of(tmp)
        if sha256 and digest != sha256:
            raise OSError(f"sha256 mismatch for {url}: got {digest}, expected {sha256}; nothing was kept")
        if not sha256:
            log.warning("downloaded %s without a pinned hash; its sha256 is %s (pin it to verify next time)",
                        url, digest)

    return write_file_atomically(target, write)
