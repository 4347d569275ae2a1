#!/usr/bin/env python3
"""Independent safetensors and GGUF reader/writer, written from the format
specifications (safetensors README; ggml docs/gguf.md) with json, struct and
numpy only. Used by tests/io/test_python.c to check that files flashblock
writes are read correctly by another implementation, and that files another
implementation writes are read correctly by flashblock.

  oracle.py st-dump FILE OUT.json      oracle.py st-write IN.json FILE
  oracle.py gguf-dump FILE OUT.json    oracle.py gguf-write IN.json FILE

Dump format: {"metadata": {...}, "tensors": {name: {"dtype"|"type", "shape"|"ne", "values": [...]}}}
"""
import json
import struct
import sys

import numpy as np

# ---------------------------------------------------------------- safetensors
ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4",
             "I16": "<i2", "I8": "i1", "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "u1"}


def bf16_to_f32(u16):
    return (u16.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16(f):
    u = np.asarray(f, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def st_dump(path, out):
    raw = open(path, "rb").read()
    (n,) = struct.unpack_from("<Q", raw, 0)
    assert 8 + n <= len(raw), "header past end"
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    assert all(isinstance(v, str) for v in meta.values())
    spans, tensors = [], {}
    for name, info in header.items():
        dt = info["dtype"]
        shape = info["shape"]
        b, e = info["data_offsets"]
        count = int(np.prod(shape)) if shape else 1
        itemsize = np.dtype(ST_DTYPES[dt]).itemsize
        assert e - b == count * itemsize, f"{name}: size mismatch"
        arr = np.frombuffer(data[b:e], dtype=ST_DTYPES[dt])
        if dt == "BF16":
            arr = bf16_to_f32(arr)
        vals = [float(x) for x in arr] if arr.dtype.kind == "f" else [int(x) for x in arr]
        tensors[name] = {"dtype": dt, "shape": shape, "values": vals}
        spans.append((b, e))
    spans.sort()
    pos = 0
    for b, e in spans:  # spec: the buffer is fully indexed, no holes, no overlaps
        assert b == pos, "hole or overlap in data buffer"
        pos = e
    assert pos == len(data), "trailing bytes"
    json.dump({"metadata": meta, "tensors": tensors, "header_len": n}, open(out, "w"))


def st_write(inp, path):
    d = json.load(open(inp))
    header, blobs, off = {}, [], 0
    # a different order from flashblock's writer: reverse name order
    for name in sorted(d["tensors"], reverse=True):
        t = d["tensors"][name]
        dt = t["dtype"]
        if dt == "BF16":
            arr = f32_to_bf16(np.array(t["values"], dtype=np.float32))
        else:
            arr = np.array(t["values"], dtype=ST_DTYPES[dt])
        blob = arr.tobytes()
        header[name] = {"dtype": dt, "shape": t["shape"], "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    header["__metadata__"] = d["metadata"]
    hj = json.dumps(header).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)


# ----------------------------------------------------------------------- GGUF
GT_NAMES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array",
            "uint64", "int64", "float64"]
GT_FMT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
GGML_F32, GGML_F16, GGML_Q8_0, GGML_BF16 = 0, 1, 8, 30
Q8_0 = np.dtype([("d", "<f2"), ("qs", "i1", (32,))])


class Reader:
    def __init__(self, raw):
        self.raw, self.pos = raw, 0

    def unpack(self, fmt):
        v = struct.unpack_from(fmt, self.raw, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0]

    def string(self):
        n = self.unpack("<Q")
        s = self.raw[self.pos:self.pos + n]
        assert len(s) == n
        self.pos += n
        return s.decode("utf-8")

    def value(self, t):
        if t in GT_FMT:
            return self.unpack(GT_FMT[t])
        if t == 8:
            return self.string()
        if t == 9:
            et = self.unpack("<I")
            n = self.unpack("<Q")
            return {"elem": GT_NAMES[et], "value": [self.value(et) for _ in range(n)]}
        raise ValueError(f"bad type {t}")


def gguf_dump(path, out):
    raw = open(path, "rb").read()
    r = Reader(raw)
    assert raw[:4] == b"GGUF"
    r.pos = 4
    version = r.unpack("<I")
    assert version in (2, 3)
    n_t, n_kv = r.unpack("<Q"), r.unpack("<Q")
    meta = {}
    for _ in range(n_kv):
        k = r.string()
        t = r.unpack("<I")
        v = r.value(t)
        meta[k] = {"type": GT_NAMES[t], "value": v}
    align = meta.get("general.alignment", {"value": 32})["value"]
    infos = []
    for _ in range(n_t):
        name = r.string()
        nd = r.unpack("<I")
        ne = [r.unpack("<Q") for _ in range(nd)]
        typ = r.unpack("<I")
        off = r.unpack("<Q")
        assert off % align == 0
        infos.append((name, ne, typ, off))
    data_start = (r.pos + align - 1) // align * align
    tensors = {}
    for name, ne, typ, off in infos:
        n = int(np.prod(ne)) if ne else 1
        base = data_start + off
        if typ == GGML_F32:
            vals = np.frombuffer(raw, "<f4", n, base)
        elif typ == GGML_F16:
            vals = np.frombuffer(raw, "<f2", n, base).astype(np.float32)
        elif typ == GGML_BF16:
            vals = bf16_to_f32(np.frombuffer(raw, "<u2", n, base))
        elif typ == GGML_Q8_0:
            blocks = np.frombuffer(raw, Q8_0, n // 32, base)
            vals = (blocks["d"].astype(np.float32)[:, None] * blocks["qs"].astype(np.float32)).reshape(-1)
        else:
            raise ValueError(f"type {typ}")
        tensors[name] = {"type": typ, "ne": ne, "values": [float(x) for x in vals]}
    json.dump({"version": version, "alignment": align, "metadata": meta, "tensors": tensors}, open(out, "w"))


def enc_value(tname, v):
    t = GT_NAMES.index(tname)
    if t in GT_FMT:
        return struct.pack("<I", t), struct.pack(GT_FMT[t], v)
    if t == 8:
        b = v.encode("utf-8")
        return struct.pack("<I", t), struct.pack("<Q", len(b)) + b
    et = v["elem"]
    body = struct.pack("<I", GT_NAMES.index(et)) + struct.pack("<Q", len(v["value"]))
    for x in v["value"]:
        body += enc_value(et, x)[1]
    return struct.pack("<I", t), body


def gguf_write(inp, path, align=64):
    d = json.load(open(inp))
    meta = {k: v for k, v in d["metadata"].items() if k != "general.alignment"}
    meta["general.alignment"] = {"type": "uint32", "value": align}  # exercise a non-default alignment
    kv = b""
    for k, v in meta.items():
        kb = k.encode()
        t, body = enc_value(v["type"], v["value"])
        kv += struct.pack("<Q", len(kb)) + kb + t + body
    infos, blobs, off = b"", [], 0
    for name, t in d["tensors"].items():
        x = np.array(t["values"], dtype=np.float32)
        typ = t["type"]
        if typ == GGML_F32:
            blob = x.astype("<f4").tobytes()
        elif typ == GGML_F16:
            blob = x.astype("<f2").tobytes()
        elif typ == GGML_BF16:
            blob = f32_to_bf16(x).tobytes()
        elif typ == GGML_Q8_0:
            xb = x.reshape(-1, 32)
            dd = np.abs(xb).max(axis=1) / np.float32(127)
            inv = np.where(dd != 0, np.float32(1) / np.where(dd != 0, dd, 1), 0).astype(np.float32)
            # ggml's roundf: half away from zero (np.round is half to even)
            v = xb * inv[:, None]
            tr = np.trunc(v)
            q = (tr + np.where(np.abs(v - tr) >= 0.5, np.sign(v), 0)).astype(np.int8)
            blocks = np.zeros(len(xb), dtype=Q8_0)
            blocks["d"] = dd.astype("<f2")
            blocks["qs"] = q
            blob = blocks.tobytes()
        else:
            raise ValueError(typ)
        nb = name.encode()
        infos += struct.pack("<Q", len(nb)) + nb + struct.pack("<I", len(t["ne"]))
        infos += b"".join(struct.pack("<Q", e) for e in t["ne"]) + struct.pack("<IQ", typ, off)
        blobs.append(blob)
        off += (len(blob) + align - 1) // align * align
    head = b"GGUF" + struct.pack("<IQQ", 3, len(d["tensors"]), len(meta)) + kv + infos
    head += b"\0" * ((align - len(head) % align) % align)
    with open(path, "wb") as f:
        f.write(head)
        for b in blobs:
            f.write(b + b"\0" * ((align - len(b) % align) % align))


if __name__ == "__main__":
    cmd, a, b = sys.argv[1:4]
    {"st-dump": st_dump, "st-write": st_write, "gguf-dump": gguf_dump, "gguf-write": gguf_write}[cmd](a, b)
