"""Search: ranking by relevance then downloads, filters, sorting, paging, hostile queries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import inspect

from fnhub.core.errors import InvalidInput
from fnhub.core.signing import generate_key, public_key_to_b64
from fnhub.hub.context import Hub
from fnhub.hub.services import search
from tests.helpers import sql_statements
from tests.hub.factories import Publisher, auth
from tests.web.population import Population

if TYPE_CHECKING:
    from pathlib import Path

    from fastapi.testclient import TestClient


def _names(client: TestClient, **params: Any) -> list[str]:
    response = client.get("/api/v1/functions", params=params)
    assert response.status_code == 200, response.text
    return [f"{f['namespace']}/{f['name']}" for f in response.json()["items"]]


@pytest.fixture
def catalog(client: TestClient, alice: Publisher, bob: Publisher) -> None:
    alice.publish("train-classifier", "1.0.0", description="Fit a gradient boosting model",
                  categories=["training"], labels={"framework": "sklearn"})
    alice.publish("describe", "1.0.0", description="Summary statistics of a table",
                  categories=["data-analysis"])
    alice.publish("serve-model", "1.0.0", description="Serve a trained classifier over HTTP",
                  categories=["serving"], kind="serving")
    bob.publish("classifier-report", "0.1.0", description="Plots for a fitted model",
                categories=["data-analysis", "training"])
    bob.publish("tokenize", "2.0.0", description="Split text into tokens")
    for _ in range(3):
        client.get("/api/v1/functions/bob/tokenize/versions/2.0.0/package")
    client.get("/api/v1/functions/alice/describe/versions/1.0.0/package")


@pytest.mark.usefixtures("catalog")
def test_relevance_prefers_name_matches(client: TestClient) -> None:
    found = _names(client, q="classifier")
    assert set(found) == {"alice/train-classifier", "bob/classifier-report", "alice/serve-model"}
    assert found[-1] == "alice/serve-model"  # only its description mentions it


@pytest.mark.usefixtures("catalog")
def test_words_are_prefixes_and_all_must_match(client: TestClient) -> None:
    assert _names(client, q="classif") == _names(client, q="classifier")
    assert _names(client, q="gradient model") == ["alice/train-classifier"]
    assert _names(client, q="gradient tokens") == []
    assert _names(client, q="sklearn") == ["alice/train-classifier"]  # labels are indexed
    assert _names(client, q="TABLE") == ["alice/describe"]


HOSTILE = ['"', "AND", "a OR", "NEAR(a b)", "col:val", "*", "^x", "-x", "(((", "describe'",
           "don't", 'x" OR "y', "\\", "%", "_", "NOT describe", "ß∂ƒ", "describe*", "\x00",
           "name:describe", "{describe}"]


@pytest.mark.usefixtures("catalog")
def test_fts_syntax_in_q_never_errors(client: TestClient) -> None:
    for q in HOSTILE:
        response = client.get("/api/v1/functions", params={"q": q})
        assert response.status_code == 200, (q, response.text)
    # operators are plain words: "NOT describe" looks for both words, finds nothing
    assert _names(client, q="NOT describe") == []
    assert _names(client, q="describe*") == ["alice/describe"]
    assert _names(client, q="name:describe") == []


@pytest.mark.usefixtures("catalog")
def test_ties_break_by_downloads(client: TestClient) -> None:
    assert _names(client)[:2] == ["bob/tokenize", "alice/describe"]  # no q: by downloads
    assert _names(client, sort="downloads")[:2] == ["bob/tokenize", "alice/describe"]


@pytest.mark.usefixtures("catalog")
def test_filters(client: TestClient) -> None:
    assert _names(client, category="training", sort="name") == [
        "bob/classifier-report", "alice/train-classifier"]
    assert _names(client, kind="serving") == ["alice/serve-model"]
    assert _names(client, namespace="bob", sort="name") == ["bob/classifier-report",
                                                           "bob/tokenize"]
    assert _names(client, namespace="bob", category="training", q="plots") == [
        "bob/classifier-report"]
    assert _names(client, category="nope") == []


@pytest.mark.usefixtures("catalog")
def test_sorting_and_paging(client: TestClient) -> None:
    by_name = _names(client, sort="name")
    assert by_name == sorted(by_name, key=lambda ref: ref.split("/")[1])
    assert _names(client, sort="updated")[0] == "bob/tokenize"  # the last one published
    pages = [_names(client, sort="name", limit=2, offset=offset) for offset in (0, 2, 4)]
    assert [ref for page in pages for ref in page] == by_name
    page = client.get("/api/v1/functions", params={"limit": 2, "offset": 4}).json()
    assert (page["total"], page["limit"], page["offset"], len(page["items"])) == (5, 2, 4, 1)
    assert _names(client, offset=50) == []


@pytest.mark.usefixtures("catalog")
def test_summary_fields(client: TestClient) -> None:
    item = client.get("/api/v1/functions", params={"q": "train"}).json()["items"][0]
    assert item["latest_version"] == "1.0.0"
    assert item["labels"] == {"framework": "sklearn"}
    assert item["kind"] == "job"


@pytest.mark.parametrize("params", [
    {"limit": 0}, {"limit": 101}, {"limit": "ten"}, {"offset": -1}, {"sort": "random"},
    {"kind": "batch"}, {"q": "x" * 300},
])
def test_bad_parameters_are_400(client: TestClient, params: dict[str, Any]) -> None:
    response = client.get("/api/v1/functions", params=params)
    assert response.status_code == 400, response.text
    assert next(iter(params)) in response.json()["error"]["message"]


def test_search_service_checks_its_arguments(hub: Hub) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        search.search(hub, limit=500)
    with pytest.raises(InvalidInput, match="sort"):
        search.search(hub, sort="nope")
    assert search.search(hub, q="anything").total == 0


def test_index_follows_yank_and_new_versions(client: TestClient, alice: Publisher) -> None:
    alice.publish("fn", "1.0.0", description="old words")
    assert _names(client, q="old") == ["alice/fn"]
    alice.publish("fn", "1.1.0", description="new words")
    assert _names(client, q="old") == [] and _names(client, q="new") == ["alice/fn"]
    client.post("/api/v1/functions/alice/fn/versions/1.1.0/yank",
                headers={"Authorization": f"Bearer {alice.token}"}, json={"reason": "bad"})
    assert _names(client, q="old") == ["alice/fn"]  # the card shows latest = 1.0.0 again


def _search(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/functions", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def library(client: TestClient, admin_token: str, tmp_path: Path) -> Publisher:
    """The hub's operator publishing into the curated `library` namespace."""
    key = generate_key()
    response = client.post("/api/v1/keys", headers=auth(admin_token), json={
        "namespace": "library", "public_key": public_key_to_b64(key.public_key())})
    assert response.status_code == 201, response.text
    return Publisher("admin", "library", admin_token, key, client, tmp_path / "work" / "admin")


@pytest.mark.usefixtures("catalog")
@pytest.mark.parametrize(("q", "meant", "found"), [
    ("clasifier", "classifier",  # a letter missing
     {"alice/train-classifier", "bob/classifier-report", "alice/serve-model"}),
    ("tokneize", "tokenize", {"bob/tokenize"}),  # two letters swapped
    ("summarry", "summary", {"alice/describe"}),  # one too many
    ("gradient modek", "gradient model", {"alice/train-classifier"}),  # one changed
])
def test_one_typo_finds_what_was_meant(client: TestClient, q: str, meant: str,
                                       found: set[str]) -> None:
    body = _search(client, q=q)
    assert {f"{f['namespace']}/{f['name']}" for f in body["items"]} == found
    assert body["suggestion"] == meant and body["total"] == len(found)


@pytest.mark.usefixtures("catalog")
def test_only_a_search_that_finds_nothing_is_corrected(client: TestClient) -> None:
    assert _search(client, q="classifier")["suggestion"] is None
    assert _search(client, q="model")["suggestion"] is None  # "modes" is one edit away too
    for q in ("clsfr", "fot", "gradient tokens", "zzzzzz"):  # too far, too short, both known
        body = _search(client, q=q)
        assert (body["items"], body["suggestion"]) == ([], None), q


def test_the_longest_unknown_query_is_answered(client: TestClient, alice: Publisher) -> None:
    """As many unknown 32-letter words as a query holds: their corrections are looked up at
    once, as bound parameters, and stay within what both databases take."""
    alice.publish("fn", "1.0.0", description="words")
    q = " ".join(f"{'zq' * 15}{i:02d}" for i in range(7))
    assert len(q) <= search.MAX_QUERY
    body = _search(client, q=q)
    assert (body["items"], body["suggestion"]) == ([], None)


def test_a_typo_finds_the_library_dataset_function(client: TestClient, library: Publisher,
                                                   alice: Publisher) -> None:
    library.publish("load-dataset", "1.0.0", description="Load a bundled table")
    alice.publish("plot", "1.0.0", description="Plot a dataset's columns")
    body = _search(client, q="datset")
    assert [f["name"] for f in body["items"]] == ["load-dataset", "plot"]
    assert body["suggestion"] == "dataset"
    page = client.get("/", params={"q": "datset"}).text
    assert "showing results for <a href=\"/?q=dataset\">dataset</a>" in page


def test_library_ranks_first_among_equals(client: TestClient, library: Publisher,
                                          alice: Publisher, bob: Publisher) -> None:
    """The curated function outranks a test copy with the same name, even one whose shorter
    text scores higher, in the API, the web catalog's "Best match" and every other sort."""
    alice.publish("describe", "1.0.0", description="describe, a test of describe")
    library.publish("describe", "1.0.0", description="Summary statistics of a table")
    bob.publish("describe-plots", "1.0.0", description="describe with plots")
    library.publish("describe-plots", "1.0.0", description="Plots")
    assert _names(client, q="describe") == ["library/describe", "alice/describe",
                                            "library/describe-plots", "bob/describe-plots"]
    html = client.get("/", params={"q": "describe"}).text
    assert html.index(">library/describe<") < html.index(">alice/describe<")
    for sort in ("downloads", "updated", "name"):
        names = _names(client, sort=sort)
        assert names.index("library/describe") < names.index("alice/describe"), sort


@pytest.mark.usefixtures("catalog")
def test_total_is_counted_up_to_a_bound(client: TestClient, hub: Hub,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Guard: the count stops at TOTAL_CAP + 1 rows; past the bound `total` is the bound and
    `total_capped` says more match. Under it the total is exact."""
    monkeypatch.setattr(search, "TOTAL_CAP", 3)
    page = client.get("/api/v1/functions", params={"limit": 2}).json()
    assert (page["total"], page["total_capped"], len(page["items"])) == (3, True, 2)
    assert _names(client, sort="name", offset=4)  # paging goes on past the bound
    exact = client.get("/api/v1/functions", params={"q": "classifier"}).json()
    assert (exact["total"], exact["total_capped"]) == (3, False)  # exactly the bound
    home = client.get("/")
    assert "3+ functions" in home.text


def test_every_sort_has_an_index(hub: Hub) -> None:
    """Guard: each sort's column leads an index, with `live_versions` next to it, so a page
    is read in index order and an unlisted function is skipped without reading its row."""
    indexed = {tuple(ix["column_names"]) for ix in inspect(hub.db.engine).get_indexes("functions")}
    assert {(column, "live_versions") for column in ("downloads", "updated_at", "name")} <= indexed


def _search_sql(hub: Hub, **params: Any) -> list[tuple[str, Any]]:
    with sql_statements(hub.db.engine) as recorded:
        assert search.search(hub, **params).items
    return recorded


@pytest.mark.usefixtures("catalog")
@pytest.mark.parametrize("params", [{"q": "classifier", "kind": "job"},
                                    {"q": "model", "sort": "name"},
                                    {"category": "training", "sort": "updated"},
                                    {"namespace": "alice"}])
def test_a_search_is_a_bounded_count_and_one_narrow_page(hub: Hub, params: dict[str, Any]) -> None:
    """Guard (search is a hot path): two statements, neither joining the namespaces nor
    scoring a match. The count reads function ids up to TOTAL_CAP + 1 of each set it
    counts (relevance's two tiers, or the matches), driven by the text or category index;
    the page reads the summary's columns only, as plain rows."""
    statements = [sql for sql, _ in _search_sql(hub, **params)]
    assert len(statements) == 2, statements
    count, page = statements
    tiers = 2 if "q" in params and "sort" not in params else 1
    assert count.lstrip().upper().startswith("SELECT (SELECT COUNT(")
    assert count.upper().count("COUNT(") == count.count("LIMIT") == tiers, count
    assert "functions.description" not in count
    assert "LIMIT" in page and "index_serial" not in page and "live_versions," not in page
    assert not any("JOIN namespaces" in sql for sql in statements), statements
    assert not any(score in sql for sql in statements for score in ("bm25", "ts_rank"))
    if "category" in params:
        assert "JOIN function_categories" in count


def _plan(hub: Hub, sql: str, parameters: Any) -> str:
    connection = hub.db.engine.raw_connection()
    try:
        rows = connection.cursor().execute("EXPLAIN QUERY PLAN " + sql, parameters).fetchall()
    finally:
        connection.close()
    return " | ".join(row[3] for row in rows)


@pytest.mark.usefixtures("catalog")
@pytest.mark.parametrize("sort,column", [("downloads", "downloads"), ("updated", "updated_at"),
                                         ("name", "name"), ("relevance", "downloads")])
@pytest.mark.parametrize("params", [{"q": "classifier"}, {"category": "training"},
                                    {"q": "classifier", "kind": "job"}])
def test_dense_matches_are_read_by_walking_the_sorts_index(
        hub: Hub, sort: str, column: str, params: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Guard: past TOTAL_CAP matches (here 0) a page walks its sort's index and stops at the
    page's end: the matches are a membership test, never what drives the query. Relevance
    walks the downloads index once per tier. SQLite keeps no statistics, so the plan is
    what the hub asks for."""
    monkeypatch.setattr(search, "TOTAL_CAP", 0)
    _, (page, parameters) = _search_sql(hub, sort=sort, **params)
    plan = _plan(hub, page, parameters)
    walks = plan.count(f"SCAN functions USING INDEX ix_functions_by_{column}")
    # relevance reads its second tier only when it has matches: no job mentions
    # "classifier" outside its name
    tiers = 2 if sort == "relevance" and params == {"q": "classifier"} else 1
    assert walks == tiers, plan
    assert "VIRTUAL TABLE INDEX" not in plan.split("LIST SUBQUERY")[0], plan


@pytest.mark.usefixtures("catalog")
@pytest.mark.parametrize("sort", ["downloads", "updated", "name", "relevance"])
@pytest.mark.parametrize("params", [{"q": "classifier"}, {"category": "training"}])
def test_sparse_matches_drive_the_page_and_are_sorted(hub: Hub, sort: str,
                                                      params: dict[str, Any]) -> None:
    """Guard: up to TOTAL_CAP matches are read from the text or category index and sorted
    (at most TOTAL_CAP rows), never found by walking a sort's index over the catalog."""
    _, (page, parameters) = _search_sql(hub, sort=sort, **params)
    plan = _plan(hub, page, parameters)
    assert "SCAN functions USING INDEX" not in plan, plan
    driver = ("SCAN functions_fts VIRTUAL TABLE" if "q" in params
              else "function_categories USING")
    assert driver in plan and "USE TEMP B-TREE FOR ORDER BY" in plan, plan


def _ranked(items: list[dict[str, Any]], q: str) -> list[dict[str, Any]]:
    """The relevance order the module's docstring promises, computed here: whole name
    (library's first), every word starting a word of the name, then downloads, name,
    library, namespace."""
    words = search.terms(q)
    joined = {sep.join(search._alnum(q)) for sep in "-_."}

    def key(item: dict[str, Any]) -> tuple[Any, ...]:
        name_words = search._alnum(item["name"])
        library = item["namespace"] != "library"
        tier = (int(library) if item["name"] in joined
                else 2 if all(any(n.startswith(w) for n in name_words) for w in words) else 3)
        return tier, -item["downloads"], item["name"], library, item["namespace"]

    return sorted(items, key=key)


def _refs(items: list[dict[str, Any]]) -> list[str]:
    return [f"{item['namespace']}/{item['name']}" for item in items]


def _all_pages(hub: Hub, limit: int, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while page := search.search(hub, limit=limit, offset=len(found), **params).items:
        found += [item.model_dump(mode="json") for item in page]
    return found


@pytest.mark.parametrize("read", ["sparse", "dense", "chosen"])
def test_pages_follow_the_promised_order_however_they_are_read(
        hub: Hub, read: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 7 over 120 generated functions, every set of matches read from its index
    and sorted ("sparse"), by walking the sort's index ("dense"), or as `_dense` chooses
    by size, are the same pages: no overlap, no gap, and relevance in exactly the order
    `_ranked` computes (tiers by downloads, not a text score), whatever the filters."""
    if read != "chosen":
        monkeypatch.setattr(search, "_dense", lambda *_: read == "dense")
    Population(hub, tmp_path).add(functions=120, namespaces=3)
    for q in ("table", "table-00032", "model table", "tab", "plot split", "zzz"):
        for params in ({}, {"kind": "job"}, {"category": "model-training"}):
            everything = _all_pages(hub, 100, q=q, **params)
            assert _all_pages(hub, 7, q=q, **params) == everything, (q, params)
            assert everything == _ranked(everything, q), (q, params)
            for sort, field in (("downloads", "downloads"), ("name", "name")):
                ordered = _all_pages(hub, 7, q=q, sort=sort, **params)
                assert sorted(_refs(ordered)) == sorted(_refs(everything)), (q, params, sort)
                values = [item[field] for item in ordered]
                assert values == sorted(values, reverse=field == "downloads"), (q, sort)




def test_a_set_of_matches_is_walked_when_it_is_many_for_its_catalog() -> None:
    """Walking finds `reach` matches after about reach * catalog / count index entries;
    sorting reads all `count`: walk when that is the cheaper, and always past TOTAL_CAP
    (the count stops there)."""
    assert not search._dense(100, 100_000, 20)  # 20,000 entries walked for 100 rows
    assert search._dense(900, 100_000, 20)  # about 2,200 entries for 900 rows
    assert search._dense(300, 10_000, 20) and not search._dense(300, 10_000, 1_000)
    assert search._dense(search.TOTAL_CAP + 1, 10**9, 20)
