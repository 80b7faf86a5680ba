"""What PowerShell makes of a JSON value bound to a runbook parameter of a declared type (pure).

An Azure job hands each parameter to the runbook as a JSON text (see ``parameters.py``); the
sandbox reads the JSON and PowerShell binds the value to the script's parameter. A script
parameter's type constraint is applied by ``ArgumentTypeConverterAttribute.Transform``
(PowerShell/PowerShell, src/System.Management.Automation/engine/ArgumentTypeConverterAttribute.cs):
a ``[bool]`` or ``[switch]`` takes only a Boolean or a number (``CheckBoolValue``: the text
"false" is refused, not read as $true as a cast would), anything else goes through
``LanguagePrimitives.ConvertTo(value, type, CultureInfo.InvariantCulture)``. For a string to a
number that is (engine/LanguagePrimitives.cs, ``ConvertStringToInteger``/``ConvertStringToReal``):
an empty string is 0; else PowerShell's own number syntax (``Parser.ScanNumber``: trimmed,
sign, ``0x``/``0b``, exponent, type suffix, ``kb``…``pb`` multiplier), then for integers the
.NET converter (``#`` and ``&h`` hex), then ``Double.Parse`` with thousands separators; a
fraction is rounded to even (``Convert.ToInt32(double)``) and a value out of range fails. Other
types use their ``Parse(string, IFormatProvider)`` with the invariant culture (``DateTime``,
``Guid``). A list bound to a scalar parameter fails (engine/ParameterBinderBase.cs,
``CoerceTypeAsNeeded``); a scalar bound to an array becomes a one-element array, and each
element is bound by the element type's rule (``EncodeCollection``).

Approximations, each refusing rather than accepting when unsure: DateTime reads ISO 8601, US
``M/d/yyyy`` and ``yyyy/M/d`` dates, month names, and a time alone (DateTime.Parse reads more);
a JSON object for a scalar parameter and a number for a DateTime are refused (PowerShell would
bind the object's type name as text, or the number as ticks). Types not modelled here
(Hashtable, PSCredential, TimeSpan, …) and ``Object`` take any value unchecked.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

# Char.IsWhiteSpace, what String.Trim() removes.
DOTNET_WHITESPACE = ("\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
                     + "\u2028\u2029\u202f\u205f\u3000")
MAX_NUMBER_TEXT = 1000  # longer text is refused for numeric, date and GUID types (bounded work)

_INTEGERS = {  # .NET Type.Name -> (bits, signed)
    "Byte": (8, False), "SByte": (8, True), "Int16": (16, True), "UInt16": (16, False),
    "Int32": (32, True), "UInt32": (32, False), "Int64": (64, True), "UInt64": (64, False),
}
_REALS = {"Double", "Single", "Decimal"}
_DECIMAL_MAX = Decimal(79228162514264337593543950335)
BOOLEANS = {"Boolean", "SwitchParameter"}
CHECKED = BOOLEANS | set(_INTEGERS) | _REALS | {"String", "DateTime", "Guid", "BigInteger"}

_DASHES = "\\-\u2013\u2014\u2015"  # the tokenizer's minus signs
_NUMBER = re.compile(
    rf"(?P<sign>[+{_DASHES}])?(?:0x(?P<hex>[0-9a-f]+)|0b(?P<bin>[01]+)|"
    rf"(?P<dec>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[+{_DASHES}]?[0-9]+)?))"
    r"(?P<suffix>ul|uy|us|u|y|s|l|n|d)?(?P<mult>kb|mb|gb|tb|pb)?", re.IGNORECASE)
_SUFFIX_WIDTH = {"y": (8, True), "uy": (8, False), "s": (16, True), "us": (16, False),
                 "l": (64, True), "ul": (64, False)}
_MULTIPLIERS = {"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40, "pb": 1 << 50}
_DOUBLE = re.compile(r"[+-]?(?:[0-9][0-9,]*(?:\.[0-9]*)?|\.[0-9]+)(?:e[+-]?[0-9]+)?", re.IGNORECASE)
_GUID = re.compile(
    r"[0-9a-f]{32}|(?P<o>[{(]?)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"(?P<c>[})]?)", re.IGNORECASE)


class Refused(ValueError):
    """PowerShell would not bind the value; ``reason`` says why, without the value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def dotnet_trim(text: str) -> str:
    return text.strip(DOTNET_WHITESPACE)


def element_type(type_name: str) -> str | None:
    """``String`` for ``String[]``; None for a scalar (or a multi-dimensional array)."""
    if type_name.endswith("[]") and not type_name[:-2].endswith("]"):
        return type_name[:-2]
    return None


def bind(value: Any, type_name: str) -> Any:
    """The value PowerShell binds (a Python stand-in), or Refused."""
    element = element_type(type_name)
    if element is None:
        return bind_scalar(value, type_name)
    items = value if isinstance(value, list) else [value]
    if element not in CHECKED:
        return items
    bound = []
    for index, item in enumerate(items):
        try:
            bound.append(bind_scalar(item, element))
        except Refused as refused:
            raise Refused(f"item {index + 1} of the list: {refused.reason}") from None
    return bound


def bind_scalar(value: Any, type_name: str) -> Any:
    if type_name not in CHECKED:
        return value
    if isinstance(value, list):
        raise Refused(f"a list cannot be bound to a {type_name} parameter")
    if isinstance(value, dict):
        raise Refused(f"a JSON object cannot be bound to a {type_name} parameter")
    if isinstance(value, float) and not math.isfinite(value):
        raise Refused("NaN and Infinity are not JSON numbers")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        raise Refused("the number has too many digits")
    if type_name in BOOLEANS:
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return value != 0
        what = "null" if value is None else "text"
        raise Refused(f"PowerShell binds only true, false or a number to a {type_name} "
                      f"parameter, not {what}")
    if type_name == "String":
        return "" if value is None else dotnet_text(value)
    if type_name in _INTEGERS or type_name == "BigInteger":
        return _to_integer(value, type_name)
    if type_name in _REALS:
        return _to_real(value, type_name)
    if not isinstance(value, str):
        raise Refused(f"only text can be bound to a {type_name} parameter")
    if type_name == "DateTime":
        return parse_datetime(value)
    return parse_guid(value)


def dotnet_text(value: Any) -> str:
    """``ToString()`` of the bound value, invariant culture (what ValidateSet compares)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value).replace("e", "E")
    if value is None:
        return ""
    return str(value)


# --------------------------------------------------------------------------- numbers


def _range(type_name: str) -> tuple[int, int] | None:
    if type_name == "BigInteger":
        return None
    bits, signed = _INTEGERS[type_name]
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def _integral(number: int | float | Decimal, type_name: str) -> int:
    if isinstance(number, float) or isinstance(number, Decimal):
        if isinstance(number, float) and not math.isfinite(number):
            raise Refused(f"the number is out of the {type_name} range")
        number = int(Decimal(number).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    bounds = _range(type_name)
    if bounds is not None and not bounds[0] <= number <= bounds[1]:
        raise Refused(f"the number is out of the {type_name} range ({bounds[0]} to {bounds[1]})")
    return number


def _to_integer(value: Any, type_name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, (bool, int, float)):
        return _integral(int(value) if isinstance(value, bool) else value, type_name)
    text = dotnet_trim(value)
    if not text:
        return 0
    if len(text) > MAX_NUMBER_TEXT:
        raise Refused("the text is too long to be a number")
    scanned = scan_number(text)
    if scanned is not None:
        return _integral(scanned, type_name)
    if type_name != "BigInteger":
        hex_digits = _converter_hex(text)
        if hex_digits is not None:
            bits, signed = _INTEGERS[type_name]
            raw = int(hex_digits, 16)
            if raw >> bits:
                raise Refused(f"the number is out of the {type_name} range")
            return raw - (1 << bits) if signed and raw >> (bits - 1) else raw
    through_double = _parse_double(text)
    if through_double is None:
        raise Refused(f"the text is not a number PowerShell can convert to {type_name}")
    return _integral(through_double, type_name)


def _to_real(value: Any, type_name: str) -> float | Decimal:
    if value is None:
        return 0.0
    if isinstance(value, str):
        text = dotnet_trim(value)
        if not text:
            return 0.0
        if len(text) > MAX_NUMBER_TEXT:
            raise Refused("the text is too long to be a number")
        number = scan_number(text)
        if number is None:
            number = _parse_double(text)
        if number is None and text.lower().lstrip("+-") in ("infinity", "nan", "\u221e"):
            number = float("nan")
        if number is None:
            raise Refused(f"the text is not a number PowerShell can convert to {type_name}")
    else:
        number = float(value) if isinstance(value, bool) else value
    if type_name == "Decimal":
        try:
            result = Decimal(number)
        except (InvalidOperation, ValueError):
            raise Refused("the number is out of the Decimal range") from None
        if not result.is_finite() or abs(result) > _DECIMAL_MAX:
            raise Refused("the number is out of the Decimal range")
        return result
    try:
        return float(number)
    except OverflowError:
        raise Refused(f"the number is out of the {type_name} range") from None


def scan_number(text: str) -> int | float | Decimal | None:
    """PowerShell's number syntax (``Parser.ScanNumber``), on trimmed text; None if not one."""
    match = _NUMBER.fullmatch(text)
    if match is None:
        return None
    suffix = (match["suffix"] or "").lower()
    multiplier = _MULTIPLIERS[match["mult"].lower()] if match["mult"] else 1
    negative = match["sign"] not in (None, "+")
    number: int | float | Decimal
    if match["hex"] or match["bin"]:
        raw = int(match["hex"], 16) if match["hex"] else int(match["bin"], 2)
        if suffix in ("", "l"):
            # A hex literal that fits 32 (or 64) bits is read as signed: 0xFFFFFFFF is -1.
            widths = (32, 64) if suffix == "" else (64,)
            bits = next((b for b in widths if not raw >> b), None)
            if bits is None:
                if suffix == "l":
                    return None
                number = raw
            else:
                number = raw - (1 << bits) if raw >> (bits - 1) else raw
        elif suffix in ("u",):
            if raw >> 64:
                return None
            number = raw
        elif suffix in _SUFFIX_WIDTH:
            bits, signed = _SUFFIX_WIDTH[suffix]
            if raw >> bits:
                return None
            number = raw - (1 << bits) if signed and raw >> (bits - 1) else raw
        else:  # n: BigInteger
            number = raw
    else:
        digits = match["dec"].replace("\u2013", "-").replace("\u2014", "-").replace("\u2015", "-")
        real = any(c in digits for c in ".eE")
        if suffix == "d":
            number = Decimal(digits)
        elif real:
            number = float(digits)
            if suffix:
                if not number.is_integer():
                    return None
                number = int(number)
        else:
            number = int(digits)
    if negative:
        number = -number
    if multiplier != 1:
        number = number * multiplier
    if suffix in _SUFFIX_WIDTH or suffix == "u":
        bits, signed = _SUFFIX_WIDTH.get(suffix, (64, False))
        low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        if not low <= number <= high:
            return None
    return number


def _converter_hex(text: str) -> str | None:
    """The hex digits .NET's integer TypeConverter reads after ``0x``, ``&h`` or ``#``."""
    lowered = text.lower()
    for prefix in ("0x", "&h", "#"):
        if lowered.startswith(prefix):
            digits = text[len(prefix):]
            return digits if re.fullmatch(r"[0-9a-fA-F]+", digits) else None
    return None


def _parse_double(text: str) -> float | None:
    """``Double.Parse`` with the invariant culture (NumberStyles.Float | AllowThousands)."""
    if _DOUBLE.fullmatch(text) is None:
        return None
    return float(text.replace(",", ""))


# --------------------------------------------------------------------------- dates and GUIDs

_TIME = (r"(?P<h>[0-9]{1,2}):(?P<mi>[0-9]{2})(?::(?P<s>[0-9]{2})(?:\.(?P<f>[0-9]{1,7}))?)?"
         r"(?:\s*(?P<ampm>[ap])\.?m\.?)?")
_ZONE = r"(?:\s*(?P<z>z|gmt|utc|[+-][0-9]{2}(?::?[0-9]{2})?))?"
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAY = r"(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?"
_DATES = [re.compile(p + _ZONE, re.IGNORECASE) for p in (
    rf"(?P<y>[0-9]{{4}})-(?P<mo>[0-9]{{1,2}})-(?P<d>[0-9]{{1,2}})(?:(?:t|\s+){_TIME})?",
    rf"(?P<mo>[0-9]{{1,2}})/(?P<d>[0-9]{{1,2}})/(?P<y>[0-9]{{4}})(?:\s+{_TIME})?",
    rf"(?P<y>[0-9]{{4}})/(?P<mo>[0-9]{{1,2}})/(?P<d>[0-9]{{1,2}})(?:\s+{_TIME})?",
    rf"{_WEEKDAY}(?P<d>[0-9]{{1,2}})\s+(?P<mon>[a-z]{{3,9}})\.?,?\s+(?P<y>[0-9]{{4}})"
    rf"(?:\s+{_TIME})?",
    rf"{_WEEKDAY}(?P<mon>[a-z]{{3,9}})\.?\s+(?P<d>[0-9]{{1,2}}),?\s+(?P<y>[0-9]{{4}})"
    rf"(?:\s+{_TIME})?",
    _TIME,
)]
_DATE_HINT = "use ISO 8601, e.g. 2024-05-31T14:00:00Z"


def parse_datetime(text: str) -> _dt.datetime:
    """``DateTime.Parse(text, CultureInfo.InvariantCulture)``, for the formats listed above."""
    text = dotnet_trim(text)
    if len(text) > MAX_NUMBER_TEXT:
        raise Refused(f"the text is too long to be a date; {_DATE_HINT}")
    for pattern in _DATES:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        parts = match.groupdict()
        try:
            return _datetime(parts)
        except (ValueError, OverflowError):
            break
    raise Refused(f"the text is not a date PowerShell can read; {_DATE_HINT}")


def _datetime(parts: dict[str, str | None]) -> _dt.datetime:
    today = _dt.date(2000, 1, 1)  # a time alone is today's date; any valid day will do
    year = int(parts["y"]) if parts.get("y") else today.year
    if parts.get("mon"):
        name = parts["mon"].lower()
        month = next((i + 1 for i, m in enumerate(_MONTHS) if name.startswith(m)), 0)
        full = _dt.date(2000, month or 1, 1).strftime("%B").lower()
        if not month or not full.startswith(name):
            raise ValueError("not a month name")
    else:
        month = int(parts["mo"]) if parts.get("mo") else today.month
    day = int(parts["d"]) if parts.get("d") else today.day
    hour = int(parts["h"] or 0)
    if parts.get("ampm"):
        if not 1 <= hour <= 12:
            raise ValueError("hour out of range")
        hour = hour % 12 + (12 if parts["ampm"].lower() == "p" else 0)
    fraction = int((parts.get("f") or "0").ljust(6, "0")[:6])
    value = _dt.datetime(year, month, day, hour, int(parts["mi"] or 0), int(parts["s"] or 0),
                         fraction)
    zone = (parts.get("z") or "").lower()
    if zone and zone[0] in "+-":
        hours, minutes = int(zone[1:3]), int(zone[-2:]) if len(zone) > 3 else 0
        if hours > 14 or minutes > 59:
            raise ValueError("offset out of range")
    return value


def parse_guid(text: str) -> str:
    """``Guid.Parse``: 32 hex digits, or 8-4-4-4-12 bare, in braces or in parentheses."""
    text = dotnet_trim(text)
    match = _GUID.fullmatch(text) if len(text) <= 40 else None
    if match is None or (match["o"] or "") + (match["c"] or "") not in ("", "{}", "()"):
        raise Refused("the text is not a GUID (8-4-4-4-12 hexadecimal digits)")
    return re.sub(r"[^0-9a-f]", "", text.lower())
