"""Data sets by name (issue 23): downloads from a local HTTP server the tests start on 127.0.0.1,
serving small IDX files the tests make, with their checksums."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import threading

import numpy as np
import pytest

from jax_mlp import config
from jax_mlp.data import downloads, load_dataset
from jax_mlp.data.readers import MNIST_FILES
from jax_mlp.errors import UserError
from jax_mlp.files import fingerprint


def _idx(array: np.ndarray) -> bytes:
    """`array` (uint8) as a gzipped IDX file."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


@pytest.fixture
def served(tmp_path):
    """A folder of four small MNIST-like files served over HTTP on 127.0.0.1; yields (base URL,
    their `Published` record, the server's settings: ``cut`` serves half of each file)."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "served"
    folder.mkdir()
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 256, (60, 28, 28)),
              "train-labels-idx1-ubyte.gz": np.arange(60) % 10,
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (20, 28, 28)),
              "t10k-labels-idx1-ubyte.gz": np.arange(20) % 10}
    files = {}
    for name, array in arrays.items():
        data = _idx(array)
        (folder / name).write_bytes(data)
        files[name] = (len(data), hashlib.sha256(data).hexdigest())
    settings = {"cut": False, "requests": 0}

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            settings["requests"] += 1
            if not settings["cut"]:
                return super().do_GET()
            data = (folder / self.path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])  # then the connection closes mid-file

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", downloads.Published(("http://unused/",), files), \
            settings, server
    finally:
        server.shutdown()
        server.server_close()


def test_first_fetch_then_the_cache_without_the_server(served, tmp_path, monkeypatch):
    base, published, settings, server = served
    cache = tmp_path / "cache"
    monkeypatch.setitem(downloads.PUBLISHED, "mnist", published)  # the test's small files and their checksums
    overrides = ["data=mnist", f"data.cache_dir={cache}", f"data.mirrors=[{base}]"]
    data = load_dataset(config.load(config.compose(overrides)).data, 0)
    assert len(data.train) + len(data.val) == 60 and len(data.test) == 20 and data.num_classes == 10
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == sorted(published.files)  # no temporary left
    assert settings["requests"] == 4
    server.shutdown()  # the server gone: the second load reads the cache
    again = load_dataset(config.load(config.compose(overrides)).data, 0)
    np.testing.assert_array_equal(again.train.x, data.train.x)
    assert settings["requests"] == 4


def test_a_corrupted_download_is_refused_and_a_cut_one_leaves_nothing(served, tmp_path):
    base, published, settings, _ = served
    folder = tmp_path / "cache" / "mnist"
    wrong = downloads.Published(published.mirrors, {**published.files, "t10k-labels-idx1-ubyte.gz": (
        published.files["t10k-labels-idx1-ubyte.gz"][0], "0" * 64)})
    with pytest.raises(UserError) as raised:
        downloads.fetch("mnist", wrong, folder, (base,))
    message = str(raised.value)
    assert message.startswith(f"cannot download t10k-labels-idx1-ubyte.gz of data set mnist ({base}"
                              "t10k-labels-idx1-ubyte.gz: ")
    assert "not the published" in message and f"in {folder} by hand" in message and "\n" not in message
    assert not (folder / "t10k-labels-idx1-ubyte.gz").exists()
    # A cached file that was corrupted is fetched again.
    downloads.fetch("mnist", published, folder, (base,))
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    downloads.fetch("mnist", published, folder, (base,))
    assert fingerprint(folder / "train-labels-idx1-ubyte.gz")["sha256"] == published.files["train-labels-idx1-ubyte.gz"][1]
    # The connection cut mid-file: no file under its name, no temporary; the next run succeeds.
    other = tmp_path / "other"
    settings["cut"] = True
    with pytest.raises(UserError):
        downloads.fetch("mnist", published, other, (base,))
    assert list(other.iterdir()) == []
    settings["cut"] = False
    downloads.fetch("mnist", published, other, (base,))
    assert sorted(p.name for p in other.iterdir()) == sorted(published.files)


def test_a_server_that_is_down_gives_one_line(served, tmp_path):
    base, published, _, server = served
    server.shutdown()
    server.server_close()
    with pytest.raises(UserError) as raised:
        downloads.fetch("mnist", published, tmp_path / "c", (base, base))
    assert "\n" not in str(raised.value) and "Connection refused" in str(raised.value)
    assert str(raised.value).endswith(f"in {tmp_path / 'c'} by hand, or give their folder with data.path=DIR")


def test_the_default_cache_folder_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert downloads.cache_folder("mnist") == tmp_path / "jax_mlp" / "data" / "mnist"
    assert downloads.cache_folder("mnist", str(tmp_path / "x")) == tmp_path / "x" / "mnist"
    for published in downloads.PUBLISHED.values():  # the four files, each with a SHA-256 of 64 hex digits
        assert sorted(published.files) == sorted(f"{stem}.gz" for stem in MNIST_FILES.values())
        assert all(len(digest) == 64 and int(digest, 16) >= 0 for _, digest in published.files.values())
