"""The peers' versions of one scrub job, for benches/peers/run.sh.

Each job reads the campaign (Parquet), drops the rows whose contact is opted
out account-wide or for the row's sender -- two anti-joins against the
suppression list that `optscrub export` wrote -- and writes the kept rows as
zstd Parquet. `copy` only reads and rewrites the campaign (the floor).

usage: jobs.py {duckdb|polars|copy} CAMPAIGN OPTOUTS OUT
"""
import sys


def duckdb_job(campaign, optouts, out):
    import duckdb

    con = duckdb.connect()
    con.execute(f"""
        COPY (
          WITH o AS (SELECT account_id, scope, phone FROM read_parquet('{optouts}'))
          SELECT r.* FROM read_parquet('{campaign}') r
          ANTI JOIN (SELECT account_id, phone FROM o WHERE scope = 'account') a
            ON r.account_id = a.account_id AND r.phone = a.phone
          ANTI JOIN (SELECT account_id, scope, phone FROM o WHERE scope <> 'account') s
            ON r.account_id = s.account_id AND r.sender = s.scope AND r.phone = s.phone
        ) TO '{out}' (FORMAT parquet, COMPRESSION zstd)
    """)


def polars_job(campaign, optouts, out):
    import polars as pl

    o = pl.scan_parquet(optouts).select("account_id", "scope", "phone")
    wide = o.filter(pl.col("scope") == "account").select("account_id", "phone")
    per_sender = o.filter(pl.col("scope") != "account")
    (
        pl.scan_parquet(campaign)
        .join(wide, on=["account_id", "phone"], how="anti")
        .join(per_sender, left_on=["account_id", "sender", "phone"],
              right_on=["account_id", "scope", "phone"], how="anti")
        .sink_parquet(out, compression="zstd")
    )


def copy_job(campaign, _optouts, out):
    import polars as pl

    pl.scan_parquet(campaign).sink_parquet(out, compression="zstd")


if __name__ == "__main__":
    job, campaign, optouts, out = sys.argv[1:5]
    {"duckdb": duckdb_job, "polars": polars_job, "copy": copy_job}[job](campaign, optouts, out)
