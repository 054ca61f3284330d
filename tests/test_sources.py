"""Collections in an object store: listed and read through pyarrow's filesystems (``file://`` here, the same code
path as ``s3://`` and ``gs://``), the catalog on a local disk."""

from __future__ import annotations

import pytest

from artspace.catalog import Catalog, index
from artspace.catalog.sources import RemoteSource, public_uri
from artspace.errors import ArtspaceError, InvalidOption
from artspace.features import FeatureSpec

TINY_SPEC = FeatureSpec(size=64)  # the spec of the demo_catalog fixture


def test_credentials_in_a_uri_are_used_but_never_kept():
    uri = "s3://bucket/paintings?region=eu-west-1&access_key=AKIA123&secret_key=s3cr3t&session_token=tok"
    assert public_uri(uri) == "s3://bucket/paintings?region=eu-west-1"
    assert public_uri("gs://bucket/prefix") == "gs://bucket/prefix"
    kept = "s3://b/p?endpoint_override=127.0.0.1:9000&scheme=http"
    assert public_uri(kept) == kept


def test_a_collection_at_a_uri_gives_the_catalog_of_its_folder(demo_copy, tmp_path):
    uri = demo_copy.as_uri()  # file:///…/demo
    rep = index(uri, catalog=tmp_path / "remote", spec=TINY_SPEC, quiet=True)
    local = index(demo_copy, catalog=tmp_path / "local", spec=TINY_SPEC, quiet=True)
    assert rep.works == local.works == 18 and rep.skipped == local.skipped
    remote, folder = Catalog.open(tmp_path / "remote"), Catalog.open(tmp_path / "local")
    cols = ["id", "path", "size", "mtime_ns", "checksum", "width", "height"]
    assert remote.works[cols].equals(folder.works[cols])
    assert remote.manifest["root"] == uri and remote.source_uri == uri
    assert remote.location("dots/star_0.png") == f"{uri}/dots/star_0.png"
    for by in ("style", "content"):
        assert list(remote.similar(3, by=by, k=5)["id"]) == list(folder.similar(3, by=by, k=5)["id"])
    # a work's image is fetched into the catalog's cache the first time a command needs it
    fetched = remote.image_path("dots/star_0.png")
    assert fetched.is_relative_to(tmp_path / "remote" / "cache")
    assert fetched.read_bytes() == (demo_copy / "dots/star_0.png").read_bytes()
    again = index(uri, catalog=tmp_path / "remote", quiet=True)  # the resume rules of a folder
    assert not again.published and again.extracted == 0
    (demo_copy / "dots/star_1.png").unlink()
    assert index(uri, catalog=tmp_path / "remote", quiet=True).removed == 1


def test_a_uri_needs_a_local_catalog_and_a_reachable_prefix(tmp_path):
    with pytest.raises(InvalidOption, match="--catalog"):
        index((tmp_path / "x").as_uri())
    with pytest.raises(ArtspaceError, match="cannot list the collection"):
        RemoteSource((tmp_path / "missing").as_uri()).list()


@pytest.fixture
def s3_bucket(demo_copy, monkeypatch):
    """A local S3 server (moto) holding the demo collection under s3://art/demo; yields the endpoint."""
    server_mod = pytest.importorskip("moto.server")
    import pyarrow.fs as pafs

    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                       ("AWS_EC2_METADATA_DISABLED", "true")):
        monkeypatch.setenv(key, value)  # credentials come from the environment, as on a cluster
    fs = pafs.S3FileSystem(endpoint_override=f"{host}:{port}", scheme="http", access_key="test", secret_key="test",
                           region="us-east-1", allow_bucket_creation=True)
    fs.create_dir("art")
    for p in sorted(demo_copy.rglob("*.png")):
        with fs.open_output_stream(f"art/demo/{p.relative_to(demo_copy).as_posix()}") as f:
            f.write(p.read_bytes())
    yield f"{host}:{port}"
    server.stop()


def test_a_collection_in_an_s3_bucket(s3_bucket, demo_copy, tmp_path):
    uri = f"s3://art/demo?endpoint_override={s3_bucket}&region=us-east-1&scheme=http"
    rep = index(uri, catalog=tmp_path / "s3", spec=TINY_SPEC, quiet=True)
    local = index(demo_copy, catalog=tmp_path / "local", spec=TINY_SPEC, quiet=True)
    assert rep.works == local.works == 18
    cat = Catalog.open(tmp_path / "s3")
    assert cat.manifest["root"] == uri
    assert cat.works["checksum"].tolist() == Catalog.open(tmp_path / "local").works["checksum"].tolist()
    assert cat.image_path("dots/star_0.png").read_bytes() == (demo_copy / "dots/star_0.png").read_bytes()
    assert not index(uri, catalog=tmp_path / "s3", quiet=True).published  # nothing changed in the bucket
    # a secret pasted into the URI is refused by pyarrow, and the message does not repeat it
    with pytest.raises(ArtspaceError) as e:
        index(f"{uri}&secret_key=s3cr3t", catalog=tmp_path / "s3", quiet=True)
    assert "s3cr3t" not in str(e.value)


def test_index_command_takes_a_uri(demo_copy, tmp_path):
    from typer.testing import CliRunner

    from artspace.cli import app

    runner = CliRunner()
    uri = demo_copy.as_uri()
    r = runner.invoke(app, ["index", uri, "--catalog", str(tmp_path / "cat"), "--size", "64", "-q"])
    assert r.exit_code == 0 and "18 works" in r.output, r.output
    r = runner.invoke(app, ["index", uri, "--size", "64", "-q"])
    assert r.exit_code == 1 and "give --catalog DIR" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["similar", "dots/star_0.png", "--catalog", str(tmp_path / "cat"), "-k", "3",
                            "--format", "csv"])
    assert r.exit_code == 0 and len(r.stdout.strip().splitlines()) == 4, r.output
