"""NB101's ``ModelMetrics`` protobuf (proto2), decoded and encoded by hand: no protobuf package.

Schema (google-research/nasbench ``model_metrics.proto``)::

    message EvaluationData { optional double current_epoch = 1; optional double training_time = 2;
                             optional double train_accuracy = 3; optional double validation_accuracy = 4;
                             optional double test_accuracy = 5; optional string checkpoint_path = 6; }
    message ModelMetrics   { repeated EvaluationData evaluation_data = 1;
                             optional int32 trainable_parameters = 2; optional double total_time = 3; }

Unknown fields are skipped (wire types 0, 1, 2 and 5); anything else is a :class:`ProtoDecodeError`.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

__all__ = ["EvaluationData", "ModelMetrics", "ProtoDecodeError", "decode_model_metrics",
           "decode_raw", "encode_model_metrics"]

_F64 = struct.Struct("<d")
_EVAL_FIELDS = {1: "current_epoch", 2: "training_time", 3: "train_accuracy",
                4: "validation_accuracy", 5: "test_accuracy"}


class ProtoDecodeError(ValueError):
    """Bytes that are not a well-formed ModelMetrics message."""


@dataclass
class EvaluationData:
    """One evaluation of a training run; unset fields are ``None``."""

    current_epoch: float | None = None
    training_time: float | None = None
    train_accuracy: float | None = None
    validation_accuracy: float | None = None
    test_accuracy: float | None = None
    checkpoint_path: str | None = None


@dataclass
class ModelMetrics:
    """One training run of a cell at one epoch budget."""

    evaluation_data: list[EvaluationData] = field(default_factory=list)
    trainable_parameters: int | None = None
    total_time: float | None = None


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise ProtoDecodeError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtoDecodeError("varint longer than 10 bytes")


def _skip(buf: bytes, pos: int, end: int, num: int, wt: int) -> int:
    """Position after an (unknown) field's value."""
    if wt == 0:
        return _varint(buf, pos, end)[1]
    if wt == 1:
        pos += 8
    elif wt == 2:
        n, pos = _varint(buf, pos, end)
        pos += n
    elif wt == 5:
        pos += 4
    else:
        raise ProtoDecodeError(f"unsupported wire type {wt} for field {num}")
    if pos > end:
        raise ProtoDecodeError(f"field {num} runs past the message end")
    return pos


_WANT = {1: (1, "current_epoch"), 2: (1, "training_time"), 3: (1, "train_accuracy"),
         4: (1, "validation_accuracy"), 5: (1, "test_accuracy"), 6: (2, "checkpoint_path")}


_CANON_TAGS = b"\x09\x11\x19\x21\x29"  # fields 1..5 as fixed64, in order: how NB101 writes them
_CANON = struct.Struct("<xdxdxdxdxd")


def _decode_eval(buf: bytes, pos: int, end: int, unpack=_F64.unpack_from) -> list:
    """``[None, current_epoch, training_time, train, validation, test, checkpoint (start, stop)]``."""
    if end - pos >= 45 and buf[pos:pos + 45:9] == _CANON_TAGS:  # fast path, same result
        vals = [None, *_CANON.unpack_from(buf, pos), None]
        pos += 45
    else:
        vals = [None] * 7
    while pos < end:
        key = buf[pos]
        if key < 0x80:
            pos += 1
        else:
            key, pos = _varint(buf, pos, end)
        num, wt = key >> 3, key & 7
        if 1 <= num <= 5:
            if wt != 1:
                raise ProtoDecodeError(f"field {num} ({_WANT[num][1]}) has wire type {wt}, expected 1")
            if pos + 8 > end:
                raise ProtoDecodeError(f"truncated fixed64 field {num}")
            vals[num] = unpack(buf, pos)[0]
            pos += 8
        elif num == 6:
            if wt != 2:
                raise ProtoDecodeError(f"field 6 (checkpoint_path) has wire type {wt}, expected 2")
            n, pos = _varint(buf, pos, end)
            if pos + n > end:
                raise ProtoDecodeError("checkpoint_path runs past the message end")
            vals[6] = (pos, pos + n)
            pos += n
        elif num == 0:
            raise ProtoDecodeError("field number 0")
        else:
            pos = _skip(buf, pos, end, num, wt)
    return vals


def decode_raw(buf: bytes) -> tuple[list[list], int | None, float | None]:
    """Fast path for the importer: ``(evaluations, trainable_parameters, total_time)``, each
    evaluation a list indexed by EvaluationData field number (1..5 doubles or None)."""
    evals, params, total = [], None, None
    pos, end = 0, len(buf)
    while pos < end:
        # the field key is read inline here and in _decode_eval, as in every hot loop of this
        # module: no function call per field (it runs for every field of 1.27M records)
        key = buf[pos]
        if key < 0x80:
            pos += 1
        else:
            key, pos = _varint(buf, pos, end)
        num, wt = key >> 3, key & 7
        if num == 1:
            if wt != 2:
                raise ProtoDecodeError(f"field 1 (evaluation_data) has wire type {wt}, expected 2")
            n = buf[pos] if pos < end else 0x80
            if n < 0x80:
                pos += 1
            else:
                n, pos = _varint(buf, pos, end)
            if pos + n > end:
                raise ProtoDecodeError("evaluation_data runs past the message end")
            evals.append(_decode_eval(buf, pos, pos + n))
            pos += n
        elif num == 2:
            if wt != 0:
                raise ProtoDecodeError(f"field 2 (trainable_parameters) has wire type {wt}, expected 0")
            v, pos = _varint(buf, pos, end)
            v &= 0xFFFFFFFF  # int32: negative values are 10-byte two's complement varints
            params = v - (1 << 32) if v & 0x80000000 else v
        elif num == 3:
            if wt != 1:
                raise ProtoDecodeError(f"field 3 (total_time) has wire type {wt}, expected 1")
            if pos + 8 > end:
                raise ProtoDecodeError("truncated fixed64 field 3")
            total = _F64.unpack_from(buf, pos)[0]
            pos += 8
        elif num == 0:
            raise ProtoDecodeError("field number 0")
        else:
            pos = _skip(buf, pos, end, num, wt)
    return evals, params, total


def decode_model_metrics(buf: bytes) -> ModelMetrics:
    """Parse serialized ``ModelMetrics`` bytes."""
    evals, params, total = decode_raw(buf)
    out = []
    for v in evals:
        ck = None if v[6] is None else bytes(buf[v[6][0]:v[6][1]]).decode("utf-8", "replace")
        out.append(EvaluationData(v[1], v[2], v[3], v[4], v[5], ck))
    return ModelMetrics(evaluation_data=out, trainable_parameters=params, total_time=total)


def _enc_varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _enc_len(num: int, payload: bytes) -> bytes:
    return _enc_varint(num << 3 | 2) + _enc_varint(len(payload)) + payload


def encode_model_metrics(mm: ModelMetrics) -> bytes:
    """Serialize ``mm`` (fields that are ``None`` are left out, as proto2 does)."""
    out = bytearray()
    for ev in mm.evaluation_data:
        sub = bytearray()
        for num, name in _EVAL_FIELDS.items():
            v = getattr(ev, name)
            if v is not None:
                sub += _enc_varint(num << 3 | 1) + _F64.pack(float(v))
        if ev.checkpoint_path is not None:
            sub += _enc_len(6, ev.checkpoint_path.encode("utf-8"))
        out += _enc_len(1, bytes(sub))
    if mm.trainable_parameters is not None:
        out += _enc_varint(2 << 3) + _enc_varint(int(mm.trainable_parameters))
    if mm.total_time is not None:
        out += _enc_varint(3 << 3 | 1) + _F64.pack(float(mm.total_time))
    return bytes(out)
