"""The matching benchmark runs and reports what `make bench` prints (a small, quick configuration)."""

from __future__ import annotations

from bench.bench_matching import format_table, run


def test_benchmark_measures_real_matching() -> None:
    """run() returns rows per rule count with docs/s, MB/s and the naive comparison; the generated
    rules fire on the generated documents (a benchmark matching nothing would flatter the
    figures), the same matches with either matcher; the table prints them."""
    result = run(progress=False, rule_counts=(10, 200), documents=200)
    assert [row["rules"] for row in result["rows"]] == [10, 200]
    for row in result["rows"]:
        assert row["matches"] > 0
        assert row["python_matches"] == row["matches"]
        assert row["docs_per_s"] > 0
        assert row["mb_per_s"] > 0
        assert row["naive_docs_per_s"] > 0
        assert row["python_docs_per_s"] > 0
    assert result["time_ratio_10k_over_10"] > 0
    table = format_table(result)
    assert "docs/s" in table
    assert "speed-up over the naive loop" in table
