"""Data sets by name, downloaded once into a cache: each file fetched from the first mirror that
serves it, written to a temporary file and renamed only once its size and SHA-256 match the
published ones, so an interrupted or corrupted download never stands under the file's name."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from jax_mlp.errors import UserError
from jax_mlp.files import fingerprint

log = logging.getLogger("jax_mlp")
TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Published:
    """A data set's files as their publishers give them: mirrors (base URLs, tried in order) and
    each file's size and SHA-256."""

    mirrors: tuple[str, ...]
    files: dict[str, tuple[int, str]]


# SHA-256 and sizes as TensorFlow Datasets records them (url_checksums/mnist.txt, fashion_mnist.txt).
PUBLISHED = {
    "mnist": Published(
        ("https://storage.googleapis.com/cvdf-datasets/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
        {"train-images-idx3-ubyte.gz": (9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
         "train-labels-idx1-ubyte.gz": (28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
         "t10k-images-idx3-ubyte.gz": (1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
         "t10k-labels-idx1-ubyte.gz": (4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6")}),
    "fashion_mnist": Published(
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        {"train-images-idx3-ubyte.gz": (26421880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
         "train-labels-idx1-ubyte.gz": (29515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
         "t10k-images-idx3-ubyte.gz": (4422102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
         "t10k-labels-idx1-ubyte.gz": (5148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5")}),
}


def cache_folder(name: str, cache_dir: str | None = None) -> Path:
    """Where data set `name` is kept: ``cache_dir/name``, or ``$XDG_CACHE_HOME/jax_mlp/data/name``
    (``~/.cache/...`` when XDG_CACHE_HOME is unset)."""
    root = Path(cache_dir).expanduser() if cache_dir else (
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jax_mlp" / "data")
    return root / name


def fetch(name: str, published: Published, folder: Path, mirrors: tuple[str, ...] | None = None) -> Path:
    """`folder` holding every file of `published`, each checked: a cached file whose checksum
    matches is used as it is, another (corrupted) is fetched again, a missing one downloaded from
    `mirrors` (default: the published ones), in order.

    Raises:
      UserError: a file no mirror served with the published checksum (no network, a server down,
        a mismatch), saying where to put the files by hand.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot make the data cache {folder} ({error.strerror}); set data.cache_dir") from None
    for file, (size, digest) in published.files.items():
        path = folder / file
        if path.is_file():
            if path.stat().st_size == size and fingerprint(path)["sha256"] == digest:
                continue
            log.warning("%s does not have its published checksum; fetching it again", path)
            path.unlink()
        problems = [_download(base + file, path, size, digest) for base in mirrors or published.mirrors]
        if not path.is_file():
            raise UserError(f"cannot download {file} of data set {name} ({'; '.join(filter(None, problems))}); "
                            f"put the four files ({', '.join(published.files)}) in {folder} by hand, or give "
                            "their folder with data.path=DIR")
    return folder


def _download(url: str, path: Path, size: int, digest: str) -> str | None:
    """Downloads `url` to `path` through a temporary file in its folder, renamed once its size and
    SHA-256 match; returns None, or what went wrong in words (the temporary file removed)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        got, hashed = 0, hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
                hashed.update(block)
                got += len(block)
        if got != size or hashed.hexdigest() != digest:
            return f"{url}: {got} bytes with SHA-256 {hashed.hexdigest()[:12]}..., not the published {size} bytes " \
                   f"with {digest[:12]}..."
        os.replace(tmp, path)
        log.info("downloaded %s (%d bytes) into %s", url, size, path.parent)
        return None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        # no network, a refused connection, one cut mid-file, a malformed URL
        return f"{url}: {getattr(error, 'reason', None) or error}"
    finally:
        Path(tmp).unlink(missing_ok=True)
