"""check and ingest from Python answer as the CLI does; stores are cached
by generation; store trouble is the right exception."""

from __future__ import annotations

import json
import subprocess

import polars as pl
import pyarrow as pa
import pytest

import optscrub
from conftest import DEMO, binary, cli_json, copy_store, load_demo_store, run, text_table


PHONES = ["+447700900001", "+447700900002", "+447700900021", "+14155550199", "07700 900020", "not a phone"]


def test_check_is_the_cli_answer(demo_store):
    store = optscrub.Store(demo_store)
    for phone in PHONES:
        for account in [None, "acme", "globex", "nope"]:
            for sender in [None, "+447860009123", "wa:acme"]:
                args = ["check", "--store", demo_store, "--json", phone]
                if account:
                    args += ["--account", account]
                if sender:
                    args += ["--sender", sender]
                want = cli_json(*args)
                assert store.check(phone, account=account, sender=sender) == want, (phone, account, sender)
    want = cli_json("check", "--store", demo_store, "--json", "--default-country", "GB", "07700 900020")
    assert store.check("07700 900020", default_country="GB") == want


def summary_of(args, tmp_path) -> dict:
    out = tmp_path / "summary.json"
    run(*args, "--summary", out)
    return json.loads(out.read_text())


def as_dict(s) -> dict:
    import dataclasses

    return dataclasses.asdict(s)


def test_ingest_replies_matches_the_cli(tmp_path):
    base = tmp_path / "base"
    run("init", "--store", base, "--config", DEMO / "config.toml")
    cli, py = copy_store(base, tmp_path / "cli"), copy_store(base, tmp_path / "py")
    want = summary_of(
        ["ingest", "replies", "--store", cli, DEMO / "replies.csv", "--outbox", tmp_path / "cli-outbox.csv",
         "--rejects", tmp_path / "cli-rejects.csv", "--review", tmp_path / "cli-review.csv"],
        tmp_path,
    )
    store = optscrub.Store(py)
    got = store.ingest_replies(
        pl.from_arrow(text_table(DEMO / "replies.csv")),
        outbox=tmp_path / "py-outbox.csv",
        rejects=tmp_path / "py-rejects.csv",
        review=tmp_path / "py-review.csv",
    )
    assert isinstance(got, optscrub.RepliesSummary)
    assert as_dict(got) == want
    for f in ["review", "rejects"]:
        assert (tmp_path / f"py-{f}.csv").read_text() == (tmp_path / f"cli-{f}.csv").read_text().replace(
            str(DEMO / "replies.csv"), "the data"
        )
    # the outbox rows are the same replies to the same contacts
    assert (tmp_path / "py-outbox.csv").read_text().count("\n") == (tmp_path / "cli-outbox.csv").read_text().count("\n")
    for phone in PHONES:
        a = store.check(phone)
        b = cli_json("check", "--store", cli, "--json", phone)
        strip = lambda d: json.loads(json.dumps(d).replace(str(DEMO / "replies.csv"), "the data"))
        assert strip(a) == strip(b), phone
    assert store.generation == optscrub.Store(cli).generation


def test_ingest_webform_and_import_match_the_cli(tmp_path):
    base = tmp_path / "base"
    run("init", "--store", base, "--config", DEMO / "config.toml")
    cli, py = copy_store(base, tmp_path / "cli"), copy_store(base, tmp_path / "py")
    want_wf = summary_of(["ingest", "webform", "--store", cli, DEMO / "webform.csv"], tmp_path)
    want_imp = summary_of(
        ["ingest", "import", "--store", cli, DEMO / "import.csv", "--account", "acme", "--senders",
         "+447860009123"],
        tmp_path,
    )
    store = optscrub.Store(py)
    assert as_dict(store.ingest_webform(text_table(DEMO / "webform.csv"))) == want_wf
    assert as_dict(store.ingest_import(text_table(DEMO / "import.csv"), "acme", senders=["+447860009123"])) == want_imp
    # the same opt-outs: every contact answers alike (events name their file)
    for phone in PHONES:
        a = store.check(phone)
        b = cli_json("check", "--store", cli, "--json", phone)
        for d in (a, b):
            for acc in d["accounts"]:
                for e in acc["events"]:
                    e.pop("via", None)
        assert a == b, phone
    with pytest.raises(optscrub.UsageError, match="--account 'nope' is not an account"):
        store.ingest_import(text_table(DEMO / "import.csv"), "nope")
    with pytest.raises(optscrub.UsageError, match="'when' is not a column"):
        store.ingest_webform(text_table(DEMO / "webform.csv"), columns={"when": "x"})


def test_a_store_is_reopened_only_when_its_generation_moves(fresh_store, spring_sale):
    a = optscrub.Store(fresh_store)
    g = a.generation
    before = a.scrub(spring_sale).stats
    assert before.store_generation == g
    # another process opts a kept contact out
    kept = a.scrub(spring_sale).kept
    phone = kept.column("phone")[0].as_py()
    csv = fresh_store.parent / "extra.csv"
    csv.write_text(f"phone\n{phone}\n")
    run("ingest", "import", "--store", fresh_store, csv, "--account", "acme", "--account-wide")
    after = a.scrub(spring_sale).stats
    assert after.store_generation == g + 1
    assert after.kept == before.kept - 1


def test_store_trouble_is_the_right_exception(tmp_path, demo_store, monkeypatch):
    monkeypatch.setenv("OPTSCRUB_LOCK_WAIT", "0")
    with pytest.raises(optscrub.OptscrubError):
        optscrub.Store(tmp_path / "missing")
    damaged = copy_store(demo_store, tmp_path / "damaged")
    probe = sorted((damaged / "probe").glob("*.probe"))[-1]
    probe.write_bytes(probe.read_bytes()[:-1])
    with pytest.raises(optscrub.StoreDamagedError, match="rebuild"):
        optscrub.Store(damaged)
    locked = copy_store(demo_store, tmp_path / "locked")
    # a writer holds the lock: a long ingest from stdin that waits for input
    p = subprocess.Popen(
        [binary(), "ingest", "import", "--store", str(locked), "-", "--account", "acme", "--account-wide"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        import time

        time.sleep(0.5)
        with pytest.raises(optscrub.StoreLockedError):
            optscrub.Store(locked).ingest_webform(text_table(DEMO / "webform.csv"))
    finally:
        p.communicate(b"phone\n")


def test_ingest_signals_matches_the_cli(tmp_path):
    base = tmp_path / "base"
    run("init", "--store", base, "--config", DEMO / "config.toml")
    cli, py = copy_store(base, tmp_path / "cli"), copy_store(base, tmp_path / "py")
    log = tmp_path / "sends.csv"
    log.write_text(
        "message_id,provider,error_code,from,to,sent_at\n"
        "SM1,twilio,21610,+14155550100,+14155551001,2026-11-01T10:00:00Z\n"
        "SM2,twilio,30003,+14155550100,+14155551002,2026-11-01T10:00:01Z\n"
        "SM3,vonage,9,+447860009123,+447700900119,2026-11-01T10:00:08Z\n"
        "SM4,sinch,1,+447860009123,+447700900120,2026-11-01T10:00:09Z\n"
    )
    want = summary_of(["ingest", "signals", "--store", cli, log], tmp_path)
    got = as_dict(optscrub.Store(py).ingest_signals(text_table(log)))
    assert got == want and got["new_events"] == 2 and got["not_signals"] == 1 and got["rejected"] == 1
    for phone in ["+14155551001", "+447700900119", "+14155551002"]:
        a = optscrub.Store(py).check(phone)
        b = cli_json("check", "--store", cli, "--json", phone)
        for d in (a, b):
            for acc in d["accounts"]:
                for e in acc["events"]:
                    e.pop("via", None)
        assert a == b, phone
    with pytest.raises(optscrub.UsageError, match="kind 'sms' is not known"):
        optscrub.Store(py).ingest_signals(text_table(log), kind="sms")
