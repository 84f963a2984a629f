#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets: fuzz/corpus/<target>/<name> (small files).

Valid inputs and one of each known-bad class, so that the fuzzers start past the first
checks. Deterministic: running it again rewrites the same bytes. Needs only Python 3:
  python3 fuzz/corpus/make_seeds.py
Reproducers of crashes found while fuzzing are kept beside the seeds as crash-<what>
(written by libFuzzer, not by this script).
"""
import json
import math
import os
import struct

ROOT = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    os.makedirs(os.path.join(ROOT, target), exist_ok=True)
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data)


# --- safetensors ----------------------------------------------------------------------------
FMT = {"F32": "f", "F64": "d", "I64": "q", "U8": "B"}


def raw(header, data=b"", length=None):
    """A safetensors buffer from a header (dict, or text written as is) and a data buffer."""
    text = header if isinstance(header, (bytes, str)) else json.dumps(header, separators=(",", ":"))
    text = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def st(tensors, metadata=None):
    """A valid safetensors buffer: tensors is a list of (name, dtype, shape, values)."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, values in tensors:
        assert len(values) == math.prod(shape)
        blob = struct.pack("<%d%s" % (len(values), FMT[dtype]), *values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    return raw(header, data)


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def safetensors_seeds():
    t = "safetensors"
    write(t, "valid-empty", raw("{}"))
    write(t, "valid-one", st([("w", "F32", [2, 2], [1, 2, 3, 4])]))
    write(t, "valid-all-dtypes", st([("a", "F32", [3], [1, -2, 0.5]), ("b", "F64", [1, 2], [1e300, -0.0]),
                                     ("c", "I64", [2], [-(2**63), 2**63 - 1]), ("d", "U8", [4], [0, 1, 254, 255]),
                                     ("scalar", "F32", [], [7]), ("empty", "F64", [0, 3], [])],
                                    {"format": "pt", "note": "ü"}))
    write(t, "valid-padded", raw(b'{"x":' + json.dumps(entry("U8", [2], 0, 2)).encode() + b"}    ", b"\x01\x02"))
    write(t, "valid-null-metadata", raw('{"__metadata__":null,"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\x05"))
    good = st([("w", "F32", [2], [1, 2]), ("b", "F32", [1], [3])])
    write(t, "truncated-data", good[:-3])
    write(t, "truncated-header", good[:20])
    write(t, "truncated-length", good[:5])
    write(t, "header-length-overflow", raw("{}", length=2**64 - 1))
    write(t, "header-length-past-end", raw("{}", length=1000))
    write(t, "header-length-over-limit", raw("{}", length=100_000_001))
    write(t, "offsets-overflow", raw({"x": entry("U8", [1], 2**64 - 1, 2**64 - 1)}, b"\x00"))
    write(t, "offsets-past-end", raw({"x": entry("U8", [4], 0, 4)}, b"\x00\x00"))
    write(t, "offsets-reversed", raw({"x": entry("U8", [0], 2, 0)}, b"\x00\x00"))
    write(t, "offsets-gap", raw({"x": entry("U8", [1], 1, 2)}, b"\x00\x00"))
    write(t, "offsets-overlap", raw({"x": entry("U8", [2], 0, 2), "y": entry("U8", [2], 1, 3)}, b"\x00" * 3))
    write(t, "offsets-three-numbers", raw('{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1,1]}}', b"\x00"))
    write(t, "negative-dim", raw('{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}'))
    write(t, "huge-dim", raw({"x": entry("F32", [2**63 - 1], 0, 0)}))
    write(t, "dim-above-int64", raw({"x": entry("U8", [2**64 - 1], 0, 0)}))
    write(t, "dims-overflow-then-zero", raw({"x": entry("U8", [2**62, 4, 0], 0, 0)}))
    write(t, "rank-6", raw({"x": entry("U8", [1] * 6, 0, 1)}, b"\x00"))
    write(t, "missing-data", raw({"x": entry("F32", [4], 0, 16)}))
    write(t, "shape-dtype-mismatch", raw({"x": entry("F64", [2], 0, 8)}, b"\x00" * 8))
    write(t, "trailing-bytes", raw({"x": entry("U8", [1], 0, 1)}, b"\x00\x00"))
    write(t, "duplicate-names", raw('{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                                    '"x":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b"\x00\x00"))
    write(t, "duplicate-field", raw('{"x":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\x00"))
    write(t, "duplicate-metadata-key", raw('{"__metadata__":{"a":"1","a":"2"}}'))
    write(t, "missing-field", raw('{"x":{"dtype":"U8","shape":[1]}}'))
    write(t, "unknown-dtype", raw({"x": entry("Q7", [1], 0, 1)}, b"\x00"))
    write(t, "unsupported-dtype", raw({"x": entry("BF16", [1], 0, 2)}, b"\x00\x00"))
    write(t, "metadata-not-string", raw('{"__metadata__":{"a":1}}'))
    write(t, "nested-object", raw('{"x":{"dtype":{"a":{}},"shape":[1],"data_offsets":[0,1]}}', b"\x00"))
    write(t, "float-in-shape", raw('{"x":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}}', b"\x00"))
    write(t, "invalid-utf8", raw(b'{"\xff":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\x00"))
    write(t, "nul-in-header", raw(b'{}\x00junk'))
    write(t, "escaped-nul-name", raw('{"a\\u0000b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\x00"))
    write(t, "empty-name", raw('{"":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\x00"))
    write(t, "not-object", raw("[1,2]"))
    write(t, "empty-header", raw(""))


# --- state_dict: keys of Conv2d(2, 3, 3) -> BatchNorm2d(3) -> Flatten -> Linear(12, 2) --------
MODEL = [("0.weight", [3, 2, 3, 3]), ("0.bias", [3]), ("1.weight", [3]), ("1.bias", [3]),
         ("1.running_mean", [3]), ("1.running_var", [3]), ("1.num_batches_tracked", []),
         ("3.weight", [2, 12]), ("3.bias", [2])]


def model_state(dtype="F32", skip=(), change=None):
    out = []
    for name, shape in MODEL:
        if name in skip:
            continue
        n = math.prod(shape)
        dt = "I64" if name.endswith("num_batches_tracked") else dtype
        values = [0] if dt == "I64" and n == 1 and not shape else [((i * 7) % 11) / 10 for i in range(n)]
        if name == "1.running_var":
            values = [1.0] * n
        entry_ = (name, dt, shape, [int(v) for v in values] if dt in ("I64", "U8") else values)
        out.append(change(entry_) if change else entry_)
    return out


def state_dict_seeds():
    t = "state_dict"
    write(t, "valid-f32", st(model_state()))
    write(t, "valid-f64", st(model_state("F64")))
    write(t, "valid-u8", st(model_state("U8")))
    write(t, "missing-key", st(model_state(skip=("1.running_var",))))
    write(t, "unexpected-key", st(model_state() + [("2.weight", "F32", [1], [1])]))
    write(t, "shape-mismatch", st(model_state(change=lambda e: (e[0], e[1], [3, 2, 3, 1], [0.0] * 18)
                                              if e[0] == "0.weight" else e)))
    write(t, "pruned-alias", st(model_state(change=lambda e: ("0.weight_orig",) + e[1:] if e[0] == "0.weight" else e)))
    # Values a conversion to int64 cannot hold: 2^63, NaN, -inf (num_batches_tracked is int64).
    for tag, v in (("2p63", 2.0**63), ("nan", float("nan")), ("neg-inf", float("-inf"))):
        write(t, "counter-f64-" + tag,
              st(model_state(change=lambda e, v=v: (e[0], "F64", e[2], [v]) if e[0].endswith("tracked") else e)))
    write(t, "only-counter-f64", st([("1.num_batches_tracked", "F64", [], [1e300])]))
    write(t, "empty", raw("{}"))


# --- checkpoint ------------------------------------------------------------------------------
def checkpoint(meta_changes=None, tensors=None, drop=()):
    meta = {"format": "convkit.checkpoint", "format_version": "1", "epoch": "3", "rng_state": "42",
            "optimizer": "SGD", "rng.0.dropout": "7", "extra.note": "hi"}
    meta.update(meta_changes or {})
    for k in drop:
        meta.pop(k)
    if tensors is None:
        tensors = [("model.0.weight", "F32", [2], [1, 2]), ("optimizer.0.momentum", "F32", [2], [0, 0])]
    return st(tensors, meta)


def checkpoint_seeds():
    t = "checkpoint"
    write(t, "valid", checkpoint())
    write(t, "valid-no-optimizer", checkpoint({"optimizer": ""}, [("model.w", "U8", [1], [1])]))
    write(t, "valid-max-values", checkpoint({"epoch": str(2**63 - 1), "rng_state": str(2**64 - 1)}))
    write(t, "missing-format", checkpoint(drop=("format",)))
    write(t, "wrong-format", checkpoint({"format": "pt"}))
    write(t, "wrong-version", checkpoint({"format_version": "2"}))
    write(t, "negative-epoch", checkpoint({"epoch": "-1"}))
    write(t, "epoch-overflow", checkpoint({"epoch": str(2**63)}))
    write(t, "epoch-not-integer", checkpoint({"epoch": "1e3"}))
    write(t, "epoch-empty", checkpoint({"epoch": ""}))
    write(t, "rng-state-overflow", checkpoint({"rng_state": str(2**64)}))
    write(t, "rng-state-negative", checkpoint({"rng_state": "-1"}))
    write(t, "rng-entry-bad", checkpoint({"rng.x": "abc"}))
    write(t, "rng-entry-empty-name", checkpoint({"rng.": "1"}))
    write(t, "tensor-without-prefix", checkpoint(tensors=[("weight", "F32", [1], [1])]))
    write(t, "tensor-empty-name", checkpoint(tensors=[("model.", "F32", [1], [1])]))
    write(t, "optimizer-without-kind", checkpoint({"optimizer": ""}))
    write(t, "no-metadata", st([("model.w", "F32", [1], [1])]))
    write(t, "truncated", checkpoint()[:-5])


# --- datasets: selector byte 0 (CIFAR-10) or 1 (MNIST, then a u32 images length) ------------
def cifar(labels):
    out = b""
    for i, y in enumerate(labels):
        out += bytes([y]) + bytes((i * 31 + k * 7) % 256 for k in range(3072))
    return b"\x00" + out


def idx(magic, dims, body):
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + body


def mnist(images, labels):
    return b"\x01" + struct.pack("<I", len(images)) + images + labels


def datasets_seeds():
    t = "datasets"
    write(t, "cifar-valid-1", cifar([3]))
    write(t, "cifar-valid-2", cifar([0, 9]))
    write(t, "cifar-mislabelled", cifar([10]))
    write(t, "cifar-truncated", cifar([1])[:-1])
    write(t, "cifar-empty", b"\x00")
    img = idx(0x803, [2, 3, 3], bytes(range(18)))
    lab = idx(0x801, [2], b"\x07\x00")
    write(t, "mnist-valid", mnist(img, lab))
    write(t, "mnist-valid-1x1", mnist(idx(0x803, [1, 1, 1], b"\xff"), idx(0x801, [1], b"\x09")))
    write(t, "mnist-gz-magic", mnist(b"\x1f\x8b\x08\x00" + img[4:], lab))
    write(t, "mnist-labels-magic-for-images", mnist(idx(0x801, [2], b"\x00\x00"), lab))
    write(t, "mnist-truncated-images", mnist(img[:-1], lab))
    write(t, "mnist-trailing-bytes", mnist(img + b"\x00", lab))
    write(t, "mnist-short-header", mnist(img[:10], lab))
    write(t, "mnist-count-mismatch", mnist(img, idx(0x801, [3], b"\x00\x01\x02")))
    write(t, "mnist-label-10", mnist(img, idx(0x801, [2], b"\x0a\x00")))
    write(t, "mnist-zero-count", mnist(idx(0x803, [0, 3, 3], b""), idx(0x801, [0], b"")))
    write(t, "mnist-zero-rows", mnist(idx(0x803, [2, 0, 3], b""), lab))
    write(t, "mnist-huge-dims", mnist(idx(0x803, [2**32 - 1, 2**32 - 1, 2**32 - 1], b"\x00" * 8), lab))
    write(t, "mnist-huge-count", mnist(idx(0x803, [2**32 - 1, 1, 1], b"\x00" * 8), lab))
    write(t, "mnist-no-labels", mnist(img, b""))


# --- conv_args: the byte stream FuzzedDataProvider reads in conv_args_fuzz.cpp ---------------
class Enc:
    """Encodes values as libFuzzer's FuzzedDataProvider consumes them (from the end, each
    integer's most significant byte first; as many bytes as the range needs)."""

    SPECIAL = [2**63 - 1, -(2**63), 2**63 - 2, -(2**63) + 1, 2**31, 2**32, 2**31 - 1,
               2**62, 2**62 + 1, 3037000500, -(2**32), 65536]

    def __init__(self):
        self.consumed = b""

    def rng(self, lo, hi, v, bits=64):
        r, u = hi - lo, (v - lo) % 2**bits
        n = 0
        while n * 8 < bits and (r >> (n * 8)) > 0:
            n += 1
        self.consumed += u.to_bytes(n, "big") if n else b""

    def bool(self, b):
        self.rng(0, 255, int(b), bits=8)

    def size(self, v):
        if 1 <= v <= 6:
            self.rng(0, 9, 4, 32), self.rng(1, 6, v)
        elif 7 <= v <= 40:
            self.rng(0, 9, 3, 32), self.rng(7, 40, v)
        elif -3 <= v <= 0:
            self.rng(0, 9, 0, 32), self.rng(-3, 0, v)
        elif v in self.SPECIAL:
            self.rng(0, 9, 1, 32), self.rng(0, len(self.SPECIAL) - 1, self.SPECIAL.index(v))
        else:
            self.rng(0, 9, 2, 32), self.rng(-(2**63), 2**63 - 1, v)

    def sizes(self, values, ndims):
        if len(values) == 1:
            self.rng(0, 7, 0, 32)
        elif len(values) == ndims:
            self.rng(0, 7, 4, 32)
        else:
            self.rng(0, 7, 7, 32), self.rng(0, 4, len(values), 32)
        for v in values:
            self.size(v)

    def rank(self, usual, actual):
        if actual == usual:
            self.rng(0, 7, 1, 32)
        else:
            self.rng(0, 7, 0, 32), self.rng(0, 6, actual, 32)

    def data(self):
        return self.consumed[::-1]


def conv(src, wei, groups=1, stride=(1,), dilation=(1,), padding=("default",), mode=0, transposed=False,
         output_padding=None, bias=None, dtype=0, channels_last=False):
    """padding: ("default",), ("int", v), ("dims", [..]), ("asym", [..], [..]), ("same",), ("valid",)."""
    ndims = max(1, min(3, len(src) - 2))
    e = Enc()
    e.rng(1, 3, ndims, 32), e.bool(transposed)
    e.rank(ndims + 2, len(src)), e.rank(ndims + 2, len(wei))
    for v in src + wei:
        e.size(v)
    if groups == 1:
        e.rng(0, 3, 1, 32)
    else:
        e.rng(0, 3, 0, 32), e.size(groups)
    e.sizes(list(stride), ndims), e.sizes(list(dilation), ndims)
    kind = padding[0]
    e.rng(0, 5, {"int": 0, "dims": 1, "asym": 2, "same": 3, "valid": 4, "default": 5}[kind], 32)
    if kind == "int":
        e.size(padding[1])
    elif kind == "dims":
        e.sizes(padding[1], ndims)
    elif kind == "asym":
        e.sizes(padding[1], ndims), e.sizes(padding[2], ndims)
    e.rng(0, 3, mode, 32)
    e.bool(output_padding is not None)
    if output_padding is not None:
        e.sizes(list(output_padding), ndims)
    e.bool(False)  # the weight keeps the sizes given
    e.bool(bias is not None)
    if bias is not None:
        e.bool(True), e.sizes(list(bias), 1)
    e.rng(0, 3, dtype, 32), e.bool(channels_last)
    return e.data()


def conv_args_seeds():
    t = "conv_args"
    write(t, "conv2d-3x3-pad1", conv([2, 3, 5, 5], [4, 3, 3, 3], padding=("int", 1), bias=[4]))
    write(t, "conv2d-nhwc", conv([1, 4, 4, 4], [4, 1, 3, 3], groups=4, padding=("same",), channels_last=True))
    write(t, "conv2d-grouped-f64", conv([1, 4, 6, 6], [6, 2, 3, 3], groups=2, stride=(2,), dtype=1))
    write(t, "conv2d-same-stride2", conv([1, 2, 7, 7], [2, 2, 3, 3], stride=(2,), padding=("same",)))
    write(t, "conv2d-asym-reflect", conv([1, 1, 5, 5], [1, 1, 3, 3], padding=("asym", [1, 0], [2, 1]), mode=1))
    write(t, "conv2d-circular-dilated", conv([1, 1, 6, 6], [1, 1, 2, 2], dilation=(2,), padding=("int", 1), mode=3))
    write(t, "conv1d", conv([2, 2, 9], [3, 2, 4], stride=(3,), padding=("valid",)))
    write(t, "conv3d", conv([1, 1, 3, 4, 4], [2, 1, 2, 2, 2], padding=("dims", [0, 1, 1])))
    write(t, "transposed-output-padding", conv([1, 2, 3, 3], [2, 3, 3, 3], stride=(2,), transposed=True,
                                               output_padding=(1,), bias=[3]))
    write(t, "transposed-reflect", conv([1, 2, 3, 3], [2, 3, 3, 3], transposed=True, mode=1))
    write(t, "huge-input", conv([1, 1, 2**62, 2**62], [1, 1, 3, 3]))
    write(t, "huge-kernel", conv([1, 1, 5, 5], [1, 1, 2**63 - 1, 1]))
    write(t, "huge-dilation", conv([1, 1, 5, 5], [1, 1, 3, 3], dilation=(2**62,)))
    write(t, "huge-padding", conv([1, 1, 5, 5], [1, 1, 3, 3], padding=("int", 2**63 - 1)))
    write(t, "huge-stride-transposed", conv([1, 1, 5, 5], [1, 1, 3, 3], stride=(2**62,), transposed=True))
    write(t, "negative-padding", conv([1, 1, 5, 5], [1, 1, 3, 3], padding=("int", -1)))
    write(t, "zero-stride", conv([1, 1, 5, 5], [1, 1, 3, 3], stride=(0,)))
    write(t, "zero-groups", conv([1, 2, 5, 5], [2, 1, 3, 3], groups=0))
    write(t, "groups-not-dividing", conv([1, 3, 5, 5], [2, 1, 3, 3], groups=2))
    write(t, "negative-groups", conv([1, 2, 5, 5], [2, 1, 3, 3], groups=-(2**63)))
    write(t, "zero-sizes", conv([0, 0, 0, 0], [0, 0, 0, 0]))
    write(t, "kernel-larger-than-input", conv([1, 1, 2, 2], [1, 1, 3, 3]))
    write(t, "rank-mismatch", conv([1, 1, 5, 5], [1, 1, 3]))
    write(t, "bias-wrong", conv([1, 1, 5, 5], [2, 1, 3, 3], bias=[3]))
    write(t, "output-padding-too-large", conv([1, 1, 3, 3], [1, 1, 3, 3], transposed=True, output_padding=(1,)))
    write(t, "wrong-counts", conv([1, 1, 5, 5], [1, 1, 3, 3], stride=(1, 1, 1)))
    write(t, "same-huge-stride", conv([1, 1, 2**60], [1, 1, 1], stride=(2**63 - 1,), padding=("same",)))
    write(t, "int-dtype", conv([1, 1, 5, 5], [1, 1, 3, 3], dtype=2))
    write(t, "empty", b"")


if __name__ == "__main__":
    safetensors_seeds()
    state_dict_seeds()
    checkpoint_seeds()
    datasets_seeds()
    conv_args_seeds()
