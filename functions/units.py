"""Unit conversion for length, mass, temperature, volume, speed and data size.

Factors are exact fractions (from the unit definitions), so conversions only
round once, at the end, to 12 significant digits.
"""

import difflib
import math
from fractions import Fraction

SIGNIFICANT_DIGITS = 12

# symbol -> (kind, name, size in the kind's base unit, other accepted spellings).
# Base units: metre, kilogram, litre, metre per second, byte. Temperatures are
# affine and handled by _to_kelvin / _from_kelvin; their factor is unused (1).
UNITS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "m": ("length", "meter", "1", ("meter", "meters")),
    "km": ("length", "kilometer", "1000", ("kilometer", "kilometers")),
    "cm": ("length", "centimeter", "1/100", ("centimeter", "centimeters")),
    "mm": ("length", "millimeter", "1/1000", ("millimeter", "millimeters")),
    "um": ("length", "micrometer", "1/1000000", ("µm", "micrometer", "micrometers", "micron", "microns")),
    "nm": ("length", "nanometer", "1/1000000000", ("nanometer", "nanometers")),
    "mi": ("length", "mile", "1609.344", ("mile", "miles")),
    "yd": ("length", "yard", "0.9144", ("yard", "yards")),
    "ft": ("length", "foot", "0.3048", ("foot", "feet")),
    "in": ("length", "inch", "0.0254", ("inch", "inches")),
    "nmi": ("length", "nautical mile", "1852", ("nautical mile", "nautical miles")),
    "kg": ("mass", "kilogram", "1", ("kilogram", "kilograms", "kilo", "kilos")),
    "g": ("mass", "gram", "1/1000", ("gram", "grams")),
    "mg": ("mass", "milligram", "1/1000000", ("milligram", "milligrams")),
    "t": ("mass", "metric ton", "1000", ("tonne", "tonnes", "metric ton", "metric tons")),
    "lb": ("mass", "pound", "0.45359237", ("lbs", "pound", "pounds")),
    "oz": ("mass", "ounce", "0.028349523125", ("ounce", "ounces")),
    "st": ("mass", "stone", "6.35029318", ("stone", "stones")),
    "C": ("temperature", "degree Celsius", "1", ("°c", "celsius", "degc", "degrees celsius", "centigrade")),
    "F": ("temperature", "degree Fahrenheit", "1", ("°f", "fahrenheit", "degf", "degrees fahrenheit")),
    "K": ("temperature", "kelvin", "1", ("kelvin", "kelvins")),
    "R": ("temperature", "degree Rankine", "1", ("°r", "rankine", "degr", "degrees rankine")),
    "l": ("volume", "liter", "1", ("liter", "liters", "ltr")),
    "ml": ("volume", "milliliter", "1/1000", ("milliliter", "milliliters")),
    "cl": ("volume", "centiliter", "1/100", ("centiliter", "centiliters")),
    "dl": ("volume", "deciliter", "1/10", ("deciliter", "deciliters")),
    "m3": ("volume", "cubic meter", "1000", ("m³", "cubic meter", "cubic meters")),
    "cm3": ("volume", "cubic centimeter", "1/1000", ("cm³", "cc", "cubic centimeter", "cubic centimeters")),
    "gal": ("volume", "US gallon", "3.785411784", ("gallon", "gallons", "us gallon", "us gallons")),
    "imp_gal": ("volume", "imperial gallon", "4.54609", ("imperial gallon", "imperial gallons", "uk gallon")),
    "qt": ("volume", "US quart", "0.946352946", ("quart", "quarts")),
    "pt": ("volume", "US pint", "0.473176473", ("pint", "pints")),
    "cup": ("volume", "US cup", "0.2365882365", ("cups", "us cup")),
    "fl_oz": ("volume", "US fluid ounce", "0.0295735295625", ("fl oz", "floz", "fluid ounce", "fluid ounces")),
    "tbsp": ("volume", "US tablespoon", "0.01478676478125", ("tablespoon", "tablespoons")),
    "tsp": ("volume", "US teaspoon", "0.00492892159375", ("teaspoon", "teaspoons")),
    "m/s": ("speed", "meter per second", "1", ("mps", "meters per second")),
    "km/h": ("speed", "kilometer per hour", "5/18", ("kph", "kmh", "kmph", "kilometers per hour")),
    "mph": ("speed", "mile per hour", "0.44704", ("mi/h", "miles per hour")),
    "kn": ("speed", "knot", "463/900", ("kt", "knot", "knots")),
    "ft/s": ("speed", "foot per second", "0.3048", ("fps", "feet per second")),
    "bit": ("data", "bit", "1/8", ("bits",)),
    "B": ("data", "byte", "1", ("byte", "bytes")),
    "kB": ("data", "kilobyte (1000 bytes)", "1000", ("kilobyte", "kilobytes")),
    "MB": ("data", "megabyte (10^6 bytes)", "1000000", ("megabyte", "megabytes")),
    "GB": ("data", "gigabyte (10^9 bytes)", "1000000000", ("gigabyte", "gigabytes")),
    "TB": ("data", "terabyte (10^12 bytes)", "1000000000000", ("terabyte", "terabytes")),
    "KiB": ("data", "kibibyte (1024 bytes)", "1024", ("kibibyte", "kibibytes")),
    "MiB": ("data", "mebibyte (2^20 bytes)", "1048576", ("mebibyte", "mebibytes")),
    "GiB": ("data", "gibibyte (2^30 bytes)", "1073741824", ("gibibyte", "gibibytes")),
    "TiB": ("data", "tebibyte (2^40 bytes)", "1099511627776", ("tebibyte", "tebibytes")),
    "kbit": ("data", "kilobit", "125", ("kilobit", "kilobits")),
    "Mbit": ("data", "megabit", "125000", ("megabit", "megabits")),
    "Gbit": ("data", "gigabit", "125000000", ("gigabit", "gigabits")),
}
KINDS = ("length", "mass", "temperature", "volume", "speed", "data")
ABSOLUTE_ZERO_OFFSET = Fraction("273.15")


class UnknownUnit(ValueError):
    """The unit is not one this module knows (the message suggests close spellings)."""


class IncompatibleUnits(ValueError):
    """The two units measure different kinds of quantity, e.g. length and mass."""


class InvalidValue(ValueError):
    """The value is not a finite number, or is a temperature below absolute zero."""


class UnknownKind(ValueError):
    """The kind of quantity is not one of KINDS."""


def _normalize(unit: str) -> str:
    """A spelling-insensitive key: lower case, single spaces, American '-er' endings."""
    key = " ".join(unit.strip().lower().split())
    return key.replace("metre", "meter").replace("litre", "liter").replace("degree ", "degrees ")


def _resolve(unit: object) -> str:
    """The symbol of `unit`, matching symbols exactly first, then names and aliases case-insensitively."""
    if not isinstance(unit, str) or not unit.strip():
        raise UnknownUnit(f"a unit must be a non-empty text such as 'km' or 'celsius', got {unit!r}")
    if unit.strip() in UNITS:
        return unit.strip()
    key = _normalize(unit)
    for symbol, (_kind, name, _factor, aliases) in UNITS.items():
        if key == symbol.lower() or key == name.lower() or key in aliases:
            return symbol
    spellings = list(
        dict.fromkeys(s for symbol, (_k, name, _f, aliases) in UNITS.items() for s in (symbol, name, *aliases))
    )
    close = difflib.get_close_matches(key, spellings, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else "; list_units shows the known units"
    raise UnknownUnit(f"unknown unit {unit!r}{hint}")


def _number(value: object) -> Fraction:
    """The value as an exact fraction of its decimal spelling, so 0.1 means one tenth."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(f"value must be a number, got {type(value).__name__}: {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidValue(f"value must be a finite number, got {value!r}")
    return Fraction(str(value)) if isinstance(value, float) else Fraction(value)


def _to_kelvin(value: Fraction, symbol: str) -> Fraction:
    if symbol == "C":
        return value + ABSOLUTE_ZERO_OFFSET
    if symbol == "F":
        return (value - 32) * Fraction(5, 9) + ABSOLUTE_ZERO_OFFSET
    if symbol == "R":
        return value * Fraction(5, 9)
    return value


def _from_kelvin(kelvin: Fraction, symbol: str) -> Fraction:
    if symbol == "C":
        return kelvin - ABSOLUTE_ZERO_OFFSET
    if symbol == "F":
        return (kelvin - ABSOLUTE_ZERO_OFFSET) * Fraction(9, 5) + 32
    if symbol == "R":
        return kelvin * Fraction(9, 5)
    return kelvin


def _rounded(value: Fraction) -> float | int:
    """The value to 12 significant digits; whole numbers come back as integers."""
    number = float(f"{float(value):.{SIGNIFICANT_DIGITS}g}")
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def convert_units(value: float, from_unit: str, to_unit: str) -> dict:
    """Convert a quantity between two units of the same kind."""
    source, target = _resolve(from_unit), _resolve(to_unit)
    kind, target_kind = UNITS[source][0], UNITS[target][0]
    if kind != target_kind:
        raise IncompatibleUnits(
            f"cannot convert {UNITS[source][1]} ({kind}) to {UNITS[target][1]} ({target_kind}): different kinds"
        )
    amount = _number(value)
    if kind == "temperature":
        kelvin = _to_kelvin(amount, source)
        if kelvin < 0:
            raise InvalidValue(f"{value} {source} is below absolute zero (0 K)")
        converted = _from_kelvin(kelvin, target)
    else:
        converted = amount * Fraction(UNITS[source][2]) / Fraction(UNITS[target][2])
    return {"value": _rounded(converted), "unit": target, "from_value": value, "from_unit": source, "kind": kind}


def list_units(kind: str | None = None) -> dict:
    """The known units by kind, as symbol and name, so callers can pick valid spellings."""
    if kind is not None and kind not in KINDS:
        raise UnknownKind(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    chosen = KINDS if kind is None else (kind,)
    return {
        "kinds": {
            k: [{"unit": symbol, "name": entry[1]} for symbol, entry in UNITS.items() if entry[0] == k] for k in chosen
        }
    }
