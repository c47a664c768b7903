"""``walrus-harness serve``: the store's runs and campaigns, the pages, and the HTTP side over
real TCP (the browser tests are in tests/browser/)."""

import io
import threading
import urllib.error
import urllib.request
import zipfile

import pytest

from harness.cli import main
from harness.serve.app import App, NotFound, make_server, run_files
from harness.serve.store import Store
from tests.run_support import write_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    return root, write_store(root)


def test_the_index_lists_every_run_and_campaign_with_its_verdict(store):
    root, paths = store
    runs, campaigns = Store(root).scan()
    verdicts = {r.rel: r.verdict for r in runs}
    assert verdicts[paths["valid"]] == "VALID"
    assert verdicts[paths["invalid"]] == "INVALID"
    assert verdicts[paths["incomplete"]] == "INCOMPLETE"
    assert len(runs) == 5
    invalid = next(r for r in runs if r.rel == paths["invalid"])
    assert (invalid.nemesis, invalid.seed) == ("partition", 7)
    assert invalid.anomalies.get("lost", 0) >= 1
    [campaign] = campaigns
    assert [r.verdict for r in campaign.rows] == ["VALID", "INVALID"]
    inside = [r for r in runs if r.campaign == paths["campaign"]]
    assert len(inside) == 2
    page = App(Store(root)).index()
    for rel in verdicts:
        assert f"/run/{rel}/" in page


def test_a_run_page_has_checkers_anomalies_plots_logs_and_the_zip(store):
    root, paths = store
    page = App(Store(root)).run(paths["invalid"])
    assert "id='checkers'" in page and "class='anomaly" in page
    assert "rate.png" in page and "timeline.html" in page
    assert "node 1 started" in page
    assert f"/run/{paths['invalid']}/run.zip" in page


def test_the_faults_active_over_a_witness_window_are_drawn_across_it(store):
    root, paths = store
    page = App(Store(root)).run(paths["invalid"])
    lost = page[page.index("data-kind='lost'") :]
    assert "<rect class='fault'" in lost.split("</svg>")[0]
    quiet = App(Store(root)).run(paths["valid"])
    assert "<rect class='fault'" not in quiet


def test_a_campaign_page_links_each_heat_map_cell_to_its_run(store):
    root, paths = store
    page = App(Store(root)).campaign(paths["campaign"])
    grid = page[page.index("id='heatmap'") : page.index("</table>", page.index("id='heatmap'"))]
    assert grid.count("<a href='/run/campaign-20260102T000000/") == 2


@pytest.mark.parametrize("rel", ["..", "../..", "queue/../../etc", "/etc/passwd"])
def test_paths_outside_the_store_are_refused(store, rel):
    root, _ = store
    app = App(Store(root))
    with pytest.raises(NotFound):
        app.file(rel + "/passwd")
    with pytest.raises(NotFound):
        app.run(rel)


@pytest.fixture(scope="module")
def server(store):
    root, paths = store
    httpd = make_server(root, "127.0.0.1", 0, lambda m: None)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root, paths
    httpd.shutdown()
    httpd.server_close()


def test_over_http_pages_files_and_the_zip_download(server):
    base, root, paths = server
    assert b"Runs in" in urllib.request.urlopen(base + "/").read()
    with urllib.request.urlopen(f"{base}/run/{paths['invalid']}/run.zip") as r:
        assert r.headers["Content-Type"] == "application/zip"
        names = zipfile.ZipFile(io.BytesIO(r.read())).namelist()
    expected = run_files(root / paths["invalid"])
    assert sorted(n.split("/", 1)[1] for n in names) == expected
    log = urllib.request.urlopen(f"{base}/file/{paths['invalid']}/nodes/1/node.log")
    assert log.headers["Content-Type"].startswith("text/plain")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{base}/file/{paths['invalid']}/../../../etc/passwd")
    assert err.value.code == 404


def test_serve_refuses_a_missing_store_in_one_line(tmp_path, capsys):
    assert main(["serve", "--store", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err.strip()
    assert "no such run store" in err and "\n" not in err


def test_serve_refuses_a_busy_port_in_one_line(server, capsys):
    base, root, _ = server
    port = base.rsplit(":", 1)[1]
    assert main(["serve", "--store", str(root), "--port", port]) == 1
    err = capsys.readouterr().err.strip()
    assert f"cannot listen on 127.0.0.1:{port}" in err and "\n" not in err
