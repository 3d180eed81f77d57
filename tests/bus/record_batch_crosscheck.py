#!/usr/bin/python3
"""Cross-checks ringbus's Kafka record batches v2 against python3-kafka's
(kafka.record.default_records, an encoder and decoder no one here wrote),
for every codec, both ways:
  - python3-kafka builds a batch, ringbus decodes it (record_batch_tool decode);
  - ringbus builds a batch (record_batch_tool encode), python3-kafka checks
    its CRC and reads every field.
Usage: record_batch_crosscheck.py TOOL WORKDIR"""
import json
import os
import struct
import subprocess
import sys

from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

TOOL, WORK = sys.argv[1], sys.argv[2]
CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
BASE, EPOCH = 5000, 3
HEADER = struct.Struct(">qiibIhiqqqhii")  # baseOffset .. recordCount


def expected():
    """The records record_batch_tool encodes (see its header comment)."""
    out = []
    for i in range(40):
        out.append({
            "offset": BASE + i + (2 if i >= 20 else 0),
            "timestamp": 1700000000000 + 3 * i,
            "key": None if i % 7 == 0 else "key-%d" % i,
            "value": "value-%d-" % i + "x" * 100,
            "headers": [["h", "v%d" % i], ["n", ""]] if i % 5 == 0 else [],
        })
    return out


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check_records(got, want, who):
    if len(got) != len(want):
        fail("%s: %d records, expected %d" % (who, len(got), len(want)))
    for g, w in zip(got, want):
        if g != w:
            fail("%s: record %s differs from %s" % (who, g, w))


os.makedirs(WORK, exist_ok=True)
for name, code in CODECS.items():
    # python3-kafka builds, ringbus decodes.
    b = DefaultRecordBatchBuilder(magic=2, compression_type=code, is_transactional=0, producer_id=-1,
                                  producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    for r in expected():
        b.append(r["offset"] - BASE, timestamp=r["timestamp"],
                 key=None if r["key"] is None else r["key"].encode(), value=r["value"].encode(),
                 headers=[(k, v.encode()) for k, v in r["headers"]])
    buf = b.build()
    # baseOffset and partitionLeaderEpoch lie outside the CRC: a broker stamps them.
    struct.pack_into(">q", buf, 0, BASE)
    struct.pack_into(">i", buf, 12, EPOCH)
    path = os.path.join(WORK, "python-%s.batch" % name)
    with open(path, "wb") as f:
        f.write(buf)
    run = subprocess.run([TOOL, "decode", path], capture_output=True, text=True)
    if run.returncode != 0:
        fail("ringbus could not decode python3-kafka's %s batch: %s" % (name, run.stderr.strip()))
    got = json.loads(run.stdout)
    if got["compression"] != name:
        fail("python3-kafka's %s batch read as %s" % (name, got["compression"]))
    if (got["base_offset"], got["leader_epoch"], got["size"]) != (BASE, EPOCH, len(buf)):
        fail("python3-kafka's %s batch: header %s" % (name, got))
    check_records(got["records"], expected(), "ringbus reading python3-kafka's %s batch" % name)

    # ringbus builds, python3-kafka decodes.
    path = os.path.join(WORK, "ringbus-%s.batch" % name)
    subprocess.run([TOOL, "encode", name, path], check=True)
    with open(path, "rb") as f:
        data = f.read()
    batch = DefaultRecordBatch(data)
    if not batch.validate_crc():
        fail("python3-kafka finds ringbus's %s batch's CRC wrong" % name)
    fields = HEADER.unpack_from(data)
    if fields[1] != len(data) - 12 or fields[2] != EPOCH or fields[3] != 2:
        fail("ringbus's %s batch: batchLength, epoch or magic wrong: %s" % (name, fields))
    if (batch.base_offset, batch.compression_type, batch.last_offset_delta) != (BASE, code, 43):
        fail("ringbus's %s batch: base offset, codec or last offset delta wrong: %s" % (name, fields))
    if fields[9:12] != (-1, -1, -1):
        fail("ringbus's %s batch: producer fields wrong" % name)
    got = [{"offset": r.offset, "timestamp": r.timestamp,
            "key": None if r.key is None else r.key.decode(), "value": r.value.decode(),
            "headers": [[k, v.decode()] for k, v in r.headers]} for r in batch]
    check_records(got, expected(), "python3-kafka reading ringbus's %s batch" % name)
    print("%s: both ways agree (%d bytes from python3-kafka, %d from ringbus)" % (name, len(buf), len(data)))
