"""How gh (a Go program) prints JSON values, so the same values print the same bytes (pure).

gh decodes JSON with Go's ``encoding/json`` (every number is a float64) and prints it three
ways: ``jsonScalarToString`` for ``--jq`` scalars and template functions, ``json.Marshal`` for
``--jq`` objects and arrays (sorted keys, HTML characters escaped), and ``fmt.Sprint`` for
``{{.field}}`` in templates (floats in ``%v`` form, so an id of 1296269 prints ``1.296269e+06``).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

__all__ = ["go_json", "go_sprint", "go_value", "json_scalar"]


def _shortest(value: float) -> tuple[str, int]:
    """The shortest digits that round-trip ``abs(value)`` and the decimal point's position."""
    _, digits, exponent = Decimal(repr(abs(value))).normalize().as_tuple()
    text = "".join(str(d) for d in digits)
    assert isinstance(exponent, int)
    return text, len(text) + exponent


def _fixed(negative: bool, digits: str, point: int) -> str:
    sign = "-" if negative else ""
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _exponent(negative: bool, digits: str, exp: int, *, trim: bool) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    text = f"{'-' if negative else ''}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if trim and exp < 0 and abs(exp) < 10:
        # encoding/json writes 1e-07 as 1e-7.
        text = text[:-2] + text[-1]
    return text


def _special(value: float) -> str | None:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    return None


def go_value(value: float) -> str:
    """``fmt.Sprint(float64)``: ``strconv.FormatFloat(v, 'g', -1, 64)``."""
    special = _special(value)
    if special is not None:
        return special
    digits, point = _shortest(value)
    exp = point - 1
    if exp < -4 or exp >= 6:  # Go decides with precision 6 when printing the shortest form
        return _exponent(value < 0, digits, exp, trim=False)
    return _fixed(value < 0, digits, point)


def _json_number(value: float) -> str:
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    digits, point = _shortest(value)
    if abs(value) < 1e-6 or abs(value) >= 1e21:
        return _exponent(value < 0, digits, point - 1, trim=True)
    return _fixed(value < 0, digits, point)


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
            "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _json_string(text: str) -> str:
    out = ['"']
    for char in text:
        escaped = _ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif char < " ":
            out.append(f"\\u{ord(char):04x}")
        elif "\ud800" <= char <= "\udfff":
            out.append("\ufffd")  # Go writes invalid UTF-8 as the replacement character
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def go_json(value: Any) -> str:
    """``json.Marshal`` of a decoded JSON value (numbers as float64)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return _json_number(float(value))
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, list):
        return "[" + ",".join(go_json(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_json_string(k)}:{go_json(value[k])}"
                              for k in sorted(value)) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def json_scalar(value: Any) -> str | None:
    """go-gh's ``jsonScalarToString``; ``None`` for objects and arrays (not scalars)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        number = float(value)
        if math.isfinite(number) and math.trunc(number) == number:
            return f"{number:.0f}"
        return f"{number:.2f}" if math.isfinite(number) else go_value(number)
    return None


def go_sprint(value: Any) -> str:
    """``fmt.Sprint`` of one decoded JSON value, as a template prints ``{{.x}}``."""
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)  # a template literal (Go int), not a JSON number
    if isinstance(value, float):
        return go_value(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + " ".join(go_sprint(item) for item in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_sprint(value[k])}" for k in sorted(value)) + "]"
    return str(value)
