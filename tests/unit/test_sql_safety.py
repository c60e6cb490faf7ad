"""The read-only SQL engine refuses everything but single SELECTs over allowed tables."""

from __future__ import annotations

import csv
import shutil
import sqlite3
import time
from collections import Counter
from pathlib import Path

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from assistants.data_analyst import TABLES as DATA_ANALYST_TABLES
from assistants.sales_database import SAMPLE_DATA_DIR, resolve_database
from threadline.tools import (
    QueryError,
    QueryFailed,
    QueryRejected,
    QueryTimedOut,
    ReadOnlyQueryEngine,
)

SAMPLE_SALES_ROWS = 200


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample database plus a table and an index the engine must not expose or touch."""
    path = tmp_path_factory.mktemp("sql") / "analyst.sqlite3"
    shutil.copyfile(resolve_database(None), path)
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE secrets (name TEXT, value TEXT)")
        connection.execute("INSERT INTO secrets VALUES ('api_key', 'sk-do-not-leak')")
        connection.execute("CREATE INDEX sales_by_region ON sales (region)")
    connection.close()
    return path


@pytest.fixture(scope="module")
def engine(database: Path) -> ReadOnlyQueryEngine:
    return ReadOnlyQueryEngine(database, DATA_ANALYST_TABLES)


def _sample_rows(table: str) -> list[dict[str, str]]:
    with (SAMPLE_DATA_DIR / f"{table}.csv").open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def _assert_database_intact(database: Path, before: bytes) -> None:
    assert database.read_bytes() == before
    with sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True) as connection:
        (count,) = connection.execute("SELECT count(*) FROM sales").fetchone()
    connection.close()
    assert count == SAMPLE_SALES_ROWS


ATTACKS = [
    # (id, sql, expected error, fragment of the message)
    ("insert", "INSERT INTO sales (id) VALUES (999)", QueryRejected, "read-only SELECT"),
    ("update", "UPDATE sales SET amount = 0", QueryRejected, "read-only SELECT"),
    ("delete", "DELETE FROM sales", QueryRejected, "read-only SELECT"),
    ("replace", "REPLACE INTO products VALUES (1, 'x', 'y', 1)", QueryRejected, "read-only"),
    ("cte-delete", "WITH x AS (SELECT 1) DELETE FROM sales", QueryRejected, "read-only"),
    ("drop", "DROP TABLE sales", QueryRejected, "read-only SELECT"),
    ("create", "CREATE TABLE stolen (a)", QueryRejected, "read-only SELECT"),
    ("create-as", "CREATE TABLE stolen AS SELECT * FROM sales", QueryRejected, "read-only"),
    ("alter", "ALTER TABLE sales ADD COLUMN hacked TEXT", QueryRejected, "read-only SELECT"),
    ("rename", "ALTER TABLE sales RENAME TO gone", QueryRejected, "read-only SELECT"),
    ("create-index", "CREATE INDEX i ON sales (amount)", QueryRejected, "read-only SELECT"),
    ("trigger", "CREATE TRIGGER t AFTER INSERT ON sales BEGIN DELETE FROM sales; END;",
     QueryRejected, "read-only SELECT"),
    ("view", "CREATE VIEW v AS SELECT * FROM secrets", QueryRejected, "read-only SELECT"),
    ("pragma", "PRAGMA table_info(sales)", QueryRejected, "PRAGMA"),
    ("pragma-writable-schema", "PRAGMA writable_schema = 1", QueryRejected, "PRAGMA"),
    ("pragma-lower", "pragma query_only = 0", QueryRejected, "PRAGMA"),
    ("pragma-function", "SELECT * FROM pragma_table_info('secrets')", QueryRejected, ""),
    ("attach", "ATTACH DATABASE '/tmp/threadline-evil.db' AS evil", QueryRejected, "read-only"),
    ("detach", "DETACH DATABASE main", QueryRejected, "read-only SELECT"),
    ("vacuum", "VACUUM", QueryRejected, "read-only SELECT"),
    ("reindex", "REINDEX", QueryRejected, "read-only SELECT"),
    ("analyze", "ANALYZE", QueryRejected, "read-only SELECT"),
    ("begin", "BEGIN IMMEDIATE", QueryRejected, "read-only SELECT"),
    ("savepoint", "SAVEPOINT s", QueryRejected, "read-only SELECT"),
    ("temp-table", "CREATE TEMP TABLE t AS SELECT * FROM sales", QueryRejected, "read-only"),
    ("temp-view", "CREATE TEMP VIEW t AS SELECT * FROM sales", QueryRejected, "read-only"),
    ("sqlite-master", "SELECT * FROM sqlite_master", QueryRejected, "'sqlite_master'"),
    ("sqlite-schema", "SELECT sql FROM sqlite_schema", QueryRejected, "is not available"),
    ("sqlite-temp-master", "SELECT * FROM temp.sqlite_master", QueryRejected, "not available"),
    ("case-master", "sElEcT * FrOm SqLiTe_MaStEr", QueryRejected, "is not available"),
    ("other-table", "SELECT * FROM secrets", QueryRejected, "'secrets' is not available"),
    ("other-table-qualified", "SELECT value FROM main.secrets", QueryRejected, "'secrets'"),
    ("other-table-count", "SELECT count(*) FROM secrets", QueryRejected, "'secrets'"),
    ("other-table-join", "SELECT s.* FROM sales s JOIN secrets ON 1", QueryRejected, "'secrets'"),
    ("other-table-subquery", "SELECT (SELECT value FROM secrets) FROM sales",
     QueryRejected, "'secrets'"),
    ("other-table-cte", "WITH x AS (SELECT * FROM secrets) SELECT * FROM x",
     QueryRejected, "'secrets'"),
    ("other-table-union", "SELECT name, region FROM customers UNION SELECT name, value "
     "FROM secrets", QueryRejected, "'secrets'"),
    ("json-table", "SELECT * FROM json_each('[1]')", QueryRejected, ""),
    ("two-statements", "SELECT 1; DROP TABLE sales", QueryRejected, "one SQL statement"),
    ("two-selects", "SELECT 1; SELECT 2", QueryRejected, "one SQL statement"),
    ("comment-then-statement", "SELECT 1; -- fine\nDELETE FROM sales",
     QueryRejected, "one SQL statement"),
    ("semicolon-in-comment", "SELECT 1 /* ; */; DROP TABLE sales", QueryRejected, "one SQL"),
    ("semicolon-in-string", "SELECT 'a;b'; DROP TABLE sales", QueryRejected, "one SQL"),
    ("comment-hides-keyword", "/* SELECT */ DROP TABLE sales", QueryRejected, "read-only"),
    ("comment-splits-select", "SEL/**/ECT * FROM sales", QueryFailed, "syntax error"),
    ("comment-splits-drop", "DR/**/OP TABLE sales", QueryFailed, "syntax error"),
    ("case-insert", "InSeRt InTo sales (id) VaLuEs (1000)", QueryRejected, "read-only"),
    ("case-drop", "dRoP tAbLe SaLeS", QueryRejected, "read-only SELECT"),
    ("load-extension", "SELECT load_extension('/tmp/evil.so')", QueryRejected,
     "load_extension() is not allowed"),
    ("load-extension-case", "SELECT LOAD_EXTENSION('/tmp/evil.so')", QueryRejected,
     "is not allowed"),
    ("unlisted-function", "SELECT sqlite_version()", QueryRejected, "is not allowed"),
    ("memory-bomb", "SELECT zeroblob(1000000000)", QueryRejected, "zeroblob() is not allowed"),
    ("long-string", "SELECT length(replace(printf('%.*c', 900000, 'x'), 'x', 'xx'))",
     QueryFailed, "too big"),
    ("readfile", "SELECT readfile('/etc/passwd')", QueryError, "readfile"),
    ("writefile", "SELECT writefile('/tmp/threadline-evil', 'x')", QueryError, "writefile"),
    ("empty", "", QueryRejected, "no SELECT statement"),
    ("only-comment", "-- nothing here", QueryRejected, "no SELECT statement"),
    ("nul", "SELECT 1\x00; DROP TABLE sales", QueryRejected, "NUL"),
    ("too-long", "SELECT " + "1 + " * 5000 + "1", QueryRejected, "longer than"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("sql", "expected_error", "message"),
    [pytest.param(sql, error, message, id=name) for name, sql, error, message in ATTACKS],
)
def test_attack_is_refused_and_database_is_unchanged(
    engine: ReadOnlyQueryEngine,
    database: Path,
    sql: str,
    expected_error: type[QueryError],
    message: str,
) -> None:
    before = database.read_bytes()

    with pytest.raises(expected_error) as caught:
        engine.query(sql)

    assert message in str(caught.value)
    _assert_database_intact(database, before)


def test_vacuum_into_writes_no_file(engine: ReadOnlyQueryEngine, tmp_path: Path) -> None:
    # VACUUM INTO works on read-only databases, so only the authorizer stands in the way.
    target = tmp_path / "stolen.sqlite3"

    with pytest.raises(QueryRejected):
        engine.query(f"VACUUM INTO '{target}'")

    assert not target.exists()


def test_recursive_cte_runaway_is_stopped_by_the_time_cap(database: Path) -> None:
    engine = ReadOnlyQueryEngine(database, DATA_ANALYST_TABLES, time_cap_seconds=0.2)
    started = time.monotonic()

    with pytest.raises(QueryTimedOut, match=r"longer than 0\.2 s"):
        engine.query(
            "WITH RECURSIVE counter(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM counter) "
            "SELECT max(n) FROM counter"
        )

    # Generous bound: without the cap the query never ends.
    assert time.monotonic() - started < 10


def test_cross_join_explosion_is_stopped_by_the_time_cap(database: Path) -> None:
    engine = ReadOnlyQueryEngine(database, DATA_ANALYST_TABLES, time_cap_seconds=0.2)

    with pytest.raises(QueryTimedOut):
        engine.query("SELECT count(*) FROM sales a, sales b, sales c, sales d")


def test_row_cap_truncates_and_says_so(database: Path) -> None:
    engine = ReadOnlyQueryEngine(database, DATA_ANALYST_TABLES, row_cap=5)

    capped = engine.query("SELECT id FROM sales ORDER BY id")
    exact = engine.query("SELECT id FROM sales ORDER BY id LIMIT 5")

    assert capped.rows == [[1], [2], [3], [4], [5]]
    assert capped.truncated is True
    assert capped.row_count == 5
    assert exact.rows == capped.rows
    assert exact.truncated is False


def test_default_row_cap_is_200(engine: ReadOnlyQueryEngine) -> None:
    everything = engine.query("SELECT * FROM sales")
    more_than_cap = engine.query("SELECT * FROM sales UNION ALL SELECT * FROM sales")

    assert everything.row_count == 200
    assert everything.truncated is False
    assert more_than_cap.row_count == 200
    assert more_than_cap.truncated is True


def test_aggregate_matches_the_sample_data(engine: ReadOnlyQueryEngine) -> None:
    sales = _sample_rows("sales")

    result = engine.query("SELECT count(*) AS sales, round(sum(amount), 2) AS total FROM sales")

    assert result.columns == ["sales", "total"]
    assert result.rows == [[len(sales), round(sum(float(row["amount"]) for row in sales), 2)]]


def test_join_with_group_by(engine: ReadOnlyQueryEngine) -> None:
    categories = {row["id"]: row["category"] for row in _sample_rows("products")}
    expected = Counter(categories[row["product_id"]] for row in _sample_rows("sales"))

    result = engine.query(
        "SELECT p.category, COUNT(*) FROM sales AS s JOIN products AS p ON p.id = s.product_id "
        "GROUP BY p.category ORDER BY p.category"
    )

    assert result.rows == [[category, expected[category]] for category in sorted(expected)]


def test_cte_window_function_and_subquery(engine: ReadOnlyQueryEngine) -> None:
    totals: Counter[str] = Counter()
    for row in _sample_rows("sales"):
        totals[row["region"]] += float(row["amount"])
    best_region = max(totals, key=totals.__getitem__)

    result = engine.query(
        """
        WITH regional AS (
            SELECT region, SUM(amount) AS total FROM sales GROUP BY region
        ), ranked AS (
            SELECT region, RANK() OVER (ORDER BY total DESC) AS position FROM regional
        )
        SELECT region FROM ranked
        WHERE position = 1 AND region IN (SELECT region FROM customers)
        """
    )

    assert result.rows == [[best_region]]


def test_bounded_recursive_cte_and_date_functions(engine: ReadOnlyQueryEngine) -> None:
    result = engine.query(
        "WITH RECURSIVE month(m) AS (SELECT 1 UNION ALL SELECT m + 1 FROM month WHERE m < 12) "
        "SELECT m, (SELECT count(*) FROM sales "
        "           WHERE CAST(strftime('%m', sale_date) AS INTEGER) = m) FROM month"
    )

    assert [row[0] for row in result.rows] == list(range(1, 13))
    assert sum(row[1] for row in result.rows) == SAMPLE_SALES_ROWS


def test_string_literal_mentioning_drop_table_is_allowed(engine: ReadOnlyQueryEngine) -> None:
    # Proves the engine is not a keyword blacklist.
    result = engine.query(
        "SELECT 'DROP TABLE sales; DELETE FROM sales' AS note, count(*) FROM sales "
        "WHERE region <> 'PRAGMA writable_schema'"
    )

    assert result.rows == [["DROP TABLE sales; DELETE FROM sales", SAMPLE_SALES_ROWS]]


def test_trailing_comment_cannot_smuggle_a_statement(engine: ReadOnlyQueryEngine) -> None:
    result = engine.query("SELECT count(*) FROM sales -- ; DROP TABLE sales")

    assert result.rows == [[SAMPLE_SALES_ROWS]]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM SALES;",
        "select count(*) from sales; -- that is all",
        "SELECT count(*) FROM sales; /* done */ ;",
        "  SELECT count(*) FROM main.sales  ",
    ],
)
def test_one_statement_with_trailing_noise_is_allowed(
    engine: ReadOnlyQueryEngine, sql: str
) -> None:
    assert engine.query(sql).rows == [[SAMPLE_SALES_ROWS]]


def test_sql_errors_carry_sqlite_message(engine: ReadOnlyQueryEngine) -> None:
    with pytest.raises(QueryFailed, match="no such column: nonexistent"):
        engine.query("SELECT nonexistent FROM sales")
    with pytest.raises(QueryFailed, match="syntax error"):
        engine.query("SELECT FROM WHERE")


def test_blobs_come_back_as_hex(engine: ReadOnlyQueryEngine) -> None:
    assert engine.query("SELECT x'00ff'").rows == [["00ff"]]


def test_table_schema_of_allowed_table(engine: ReadOnlyQueryEngine) -> None:
    schema = engine.table_schema("SALES")

    assert schema.table == "sales"
    assert schema.row_count == SAMPLE_SALES_ROWS
    assert [column.name for column in schema.columns] == [
        "id", "sale_date", "customer_id", "product_id", "quantity", "amount", "region"
    ]  # fmt: skip
    id_column, date_column = schema.columns[:2]
    assert (id_column.type, id_column.pk) == ("INTEGER", True)
    assert (date_column.type, date_column.notnull, date_column.pk) == ("TEXT", True, False)


@pytest.mark.parametrize("table", ["secrets", "sqlite_master", "sales; DROP TABLE sales"])
def test_table_schema_refuses_other_tables(engine: ReadOnlyQueryEngine, table: str) -> None:
    with pytest.raises(QueryRejected, match="not available"):
        engine.table_schema(table)


def test_engine_refuses_an_allow_list_naming_missing_tables(database: Path) -> None:
    with pytest.raises(ValueError, match="nowhere"):
        ReadOnlyQueryEngine(database, ["sales", "nowhere"])


SQL_WORDS = st.sampled_from(
    [
        "SELECT", "*", "FROM", "sales", "secrets", "sqlite_master", "WHERE", ";", "DROP",
        "TABLE", "INSERT", "INTO", "VALUES", "(", ")", ",", "1", "'x'", "--", "/*", "*/",
        "PRAGMA", "ATTACH", "'/tmp/x'", "AS", "WITH", "RECURSIVE", "UNION", "ALL", "DELETE",
        "UPDATE", "SET", "VACUUM", "load_extension", "count", "CREATE", "TEMP", "=",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sql=st.one_of(
        st.text(alphabet=st.characters(max_codepoint=127), max_size=200),
        st.lists(SQL_WORDS, max_size=25).map(" ".join),
    )
)
def test_any_text_either_answers_or_fails_cleanly_and_never_writes(
    database: Path, sql: str
) -> None:
    # The module-scoped fixture is shared on purpose: it must survive every example unchanged.
    engine = ReadOnlyQueryEngine(database, DATA_ANALYST_TABLES, time_cap_seconds=0.5)
    before = database.read_bytes()

    try:
        result = engine.query(sql)
    except QueryError:
        pass
    else:
        assert result.row_count <= engine.row_cap

    _assert_database_intact(database, before)


def test_embedded_sample_database_is_built_once_with_all_tables() -> None:
    first = resolve_database(None)
    engine = ReadOnlyQueryEngine(first, DATA_ANALYST_TABLES)

    assert resolve_database("") == first
    assert engine.table_schema("customers").row_count == len(_sample_rows("customers"))
    assert engine.table_schema("products").row_count == len(_sample_rows("products"))
    assert engine.table_schema("sales").row_count == SAMPLE_SALES_ROWS
    regions = engine.query("SELECT DISTINCT region FROM customers ORDER BY region").rows
    assert regions == [["East"], ["North"], ["South"], ["West"]]


def test_database_path_is_used_as_is(database: Path, tmp_path: Path) -> None:
    assert resolve_database(str(database)) == database
    with pytest.raises(FileNotFoundError):
        resolve_database(str(tmp_path / "missing.sqlite3"))


def test_s3_database_is_downloaded_once(database: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="analyst-data")
        s3.upload_file(str(database), "analyst-data", "dbs/test-download-once.sqlite3")
        source = "s3://analyst-data/dbs/test-download-once.sqlite3"

        first = resolve_database(source, s3_client=s3)
        s3.delete_object(Bucket="analyst-data", Key="dbs/test-download-once.sqlite3")
        second = resolve_database(source, s3_client=s3)

    assert first == second
    assert first.read_bytes() == database.read_bytes()


@pytest.mark.parametrize("source", ["s3://", "s3://bucket-only", "s3:///key-only"])
def test_malformed_s3_source_is_refused(source: str) -> None:
    with pytest.raises(ValueError, match="s3://bucket/key"):
        resolve_database(source, s3_client=object())  # type: ignore[arg-type]
