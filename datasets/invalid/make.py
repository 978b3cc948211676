"""Writes the hostile-input fixtures of datasets/invalid/: every input kind
(recipients, replies, webform, import) x every case. Run from the repo root
with pyarrow installed: python3 datasets/invalid/make.py
tests/hostile.rs asserts what optscrub does with each file."""
import io
import pyarrow as pa
import pyarrow.parquet as pq

OUT = "datasets/invalid/"

KINDS = {
    # kind: (header, good row, the required column the missing case drops,
    #        the time column or None, the phone column)
    "recipients": (["customer_id", "phone", "account_id", "sender"],
                   ["1", "+447700900010", "acme", "+447860009123"], "phone", None, "phone"),
    "replies": (["message_id", "received_at", "from", "to", "body"],
                ["m-1", "2026-11-20T08:00:00Z", "+447700900020", "+447860009123", "STOP"], "from",
                "received_at", "from"),
    "webform": (["account_id", "phone", "submitted_at"],
                ["acme", "+447700900001", "2026-11-01T10:00:00Z"], "submitted_at", "submitted_at", "phone"),
    "import": (["phone", "sender", "occurred_at"],
               ["+447700900002", "", "2026-10-01T09:00:00Z"], "phone", "occurred_at", "phone"),
}


def csv_line(cells):
    out = []
    for c in cells:
        if any(ch in c for ch in ',"\n\r'):
            c = '"' + c.replace('"', '""') + '"'
        out.append(c)
    return ",".join(out)


def write(name, data):
    with open(OUT + name, "wb") as f:
        f.write(data)


for kind, (header, row, missing, time_col, phone_col) in KINDS.items():
    h = csv_line(header) + "\n"
    good = csv_line(row) + "\n"
    second = list(row)
    second[0] = second[0].replace("1", "2") if kind != "import" else "+447700900003"
    if kind == "replies":
        second[0] = "m-2"
    good2 = csv_line(second) + "\n"
    write(f"{kind}_empty.csv", b"")
    write(f"{kind}_header_only.csv", h.encode())
    dropped = [i for i, c in enumerate(header) if c != missing]
    write(f"{kind}_missing_column.csv",
          (csv_line([header[i] for i in dropped]) + "\n" + csv_line([row[i] for i in dropped]) + "\n").encode())
    write(f"{kind}_extra_columns.csv",
          (csv_line(header + ["note", "x"]) + "\n" + csv_line(row + ["hello", "1"]) + "\n").encode())
    write(f"{kind}_invalid_utf8.csv", (h + good).encode() + good2.encode().replace(b"+44", b"+\xff\xfe44", 1))
    nul = list(second)
    nul[header.index(phone_col)] = "+4477009\x0000099"
    write(f"{kind}_nul_bytes.csv", (h + good + csv_line(nul) + "\n").encode())
    # a lone carriage return inside a two-byte character (found by the csv fuzzer)
    # split so that both halves have as many fields as the header
    half1 = (csv_line(second[:-1]) + "," + second[-1]).encode() + b"\xd5"
    half2 = b"\x8d" + csv_line(second).encode()
    write(f"{kind}_cr_in_character.csv", (h + good).encode() + half1 + b"\r" + half2 + b"\n")
    write(f"{kind}_ragged.csv", (h + good + good2.rstrip("\n") + ",extra\n").encode())
    ql = list(second)
    if kind == "replies":
        ql[4] = "STOP\nplease, no more"
        write(f"{kind}_quoted_newline.csv", (h + good + csv_line(ql) + "\n").encode())
    else:
        write(f"{kind}_quoted_newline.csv",
              (csv_line(header + ["note"]) + "\n" + csv_line(row + ["line one\nline two"]) + "\n"
               + csv_line(second + ["x"]) + "\n").encode())
    write(f"{kind}_unclosed_quote.csv", (h + good + good2.rstrip("\n") + ',"never closed\n').encode())
    write(f"{kind}_bom_crlf.csv", ("\ufeff" + (h + good + good2).replace("\n", "\r\n")).encode())
    write(f"{kind}_duplicate_header.csv",
          (csv_line(header + [header[-1]]) + "\n" + csv_line(row + [row[-1]]) + "\n").encode())
    write(f"{kind}_fake.parquet", b"this is text, not Parquet\n")
    # a real Parquet file, then cut in half
    cols = {c: [row[i], second[i]] for i, c in enumerate(header)}
    buf = io.BytesIO()
    pq.write_table(pa.table(cols), buf)
    whole = buf.getvalue()
    write(f"{kind}_truncated.parquet", whole[: len(whole) // 2])
    # an integer phone column (works)
    icols = dict(cols)
    icols[phone_col] = pa.array([int(row[header.index(phone_col)].lstrip("+")),
                                 int(second[header.index(phone_col)].lstrip("+"))], pa.int64())
    pq.write_table(pa.table(icols), OUT + f"{kind}_int_phone.parquet")
    if time_col:
        tcols = dict(cols)
        tcols[time_col] = pa.array([1763625600, 1763625601], pa.int64())
        pq.write_table(pa.table(tcols), OUT + f"{kind}_int_time.parquet")
