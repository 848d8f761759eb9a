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
           "encode_model_metrics"]

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


def _fields(buf: bytes, pos: int, end: int):
    """Yield ``(field_number, wire_type, value)``; value is int, float bytes, or (start, stop)."""
    while pos < end:
        key, pos = _varint(buf, pos, end)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise ProtoDecodeError("field number 0")
        if wt == 0:
            val, pos = _varint(buf, pos, end)
        elif wt == 1:
            if pos + 8 > end:
                raise ProtoDecodeError(f"truncated fixed64 field {num}")
            val = buf[pos:pos + 8]
            pos += 8
        elif wt == 2:
            n, pos = _varint(buf, pos, end)
            if pos + n > end:
                raise ProtoDecodeError(f"length-delimited field {num} runs past the message end")
            val = (pos, pos + n)
            pos += n
        elif wt == 5:
            if pos + 4 > end:
                raise ProtoDecodeError(f"truncated fixed32 field {num}")
            val = buf[pos:pos + 4]
            pos += 4
        else:
            raise ProtoDecodeError(f"unsupported wire type {wt} for field {num}")
        yield num, wt, val


def _expect(num: int, wt: int, want: int, name: str) -> None:
    if wt != want:
        raise ProtoDecodeError(f"field {num} ({name}) has wire type {wt}, expected {want}")


def _decode_eval(buf: bytes, start: int, stop: int) -> EvaluationData:
    ev = EvaluationData()
    for num, wt, val in _fields(buf, start, stop):
        name = _EVAL_FIELDS.get(num)
        if name is not None:
            _expect(num, wt, 1, name)
            setattr(ev, name, _F64.unpack(val)[0])
        elif num == 6:
            _expect(num, wt, 2, "checkpoint_path")
            ev.checkpoint_path = bytes(buf[val[0]:val[1]]).decode("utf-8", "replace")
    return ev


def decode_model_metrics(buf: bytes) -> ModelMetrics:
    """Parse serialized ``ModelMetrics`` bytes."""
    mm = ModelMetrics()
    for num, wt, val in _fields(buf, 0, len(buf)):
        if num == 1:
            _expect(num, wt, 2, "evaluation_data")
            mm.evaluation_data.append(_decode_eval(buf, *val))
        elif num == 2:
            _expect(num, wt, 0, "trainable_parameters")
            v = val & 0xFFFFFFFF  # int32: negative values are 10-byte two's complement varints
            mm.trainable_parameters = v - (1 << 32) if v & 0x80000000 else v
        elif num == 3:
            _expect(num, wt, 1, "total_time")
            mm.total_time = _F64.unpack(val)[0]
    return mm


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
