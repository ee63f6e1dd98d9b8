"""A personal expense tracker kept in one JSON file under ~/data.

Calls may run at the same time: changes hold a lock file while they read and
rewrite the book, and every write is atomic.

Amounts are stored as cents-rounded decimals (half up) so that totals add up
exactly; dates are ISO `YYYY-MM-DD` strings, which sort chronologically.
"""

import contextlib
import datetime
import fcntl
import json
import os
import re
import tempfile
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1000000000")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
FILE_NAME = "expenses.json"
LOCK_NAME = ".expenses.lock"
TEMP_SUFFIX = ".funcsmith-tmp"  # funcsmith removes temp files of this name that a crash left behind


class InvalidAmount(ValueError):
    """The amount is not a positive number of at most a billion."""


class InvalidCategory(ValueError):
    """The category is empty or not text."""


class InvalidDate(ValueError):
    """A date is not a real calendar date written as YYYY-MM-DD."""


class InvalidDateRange(ValueError):
    """The start of a date range lies after its end."""


class ExpenseNotFound(LookupError):
    """No stored expense has the given id."""


class ExpenseFileCorrupt(RuntimeError):
    """The expense file exists but is not a file this module wrote."""


def _data_file() -> str:
    """The expense file; resolved per call because ~ is only meaningful when the call runs."""
    return os.path.join(os.path.expanduser("~/data"), FILE_NAME)


@contextlib.contextmanager
def _locked():
    """Hold the book's lock from reading it to saving it, so that concurrent calls never undo each other."""
    folder = os.path.dirname(_data_file())
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, LOCK_NAME), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, even if the call is killed
        yield


def _load() -> dict:
    """The stored book: {"next_id": int, "expenses": [record, ...]}; empty when nothing is stored yet."""
    path = _data_file()
    if not os.path.exists(path):
        return {"next_id": 1, "expenses": []}
    try:
        with open(path, encoding="utf-8") as handle:
            book = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ExpenseFileCorrupt(f"cannot read the expense file {path}: {exc}") from exc
    if (
        not isinstance(book, dict)
        or not isinstance(book.get("expenses"), list)
        or not isinstance(book.get("next_id"), int)
    ):
        raise ExpenseFileCorrupt(f"the expense file {path} does not hold an expense book")
    return book


def _save(book: dict) -> None:
    """Write the book to a temp file, flush it to disk and rename it over the old one: never half a file."""
    path = _data_file()
    handle, temp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=f".{FILE_NAME}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(book, out, indent=2, ensure_ascii=False)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


def _cents(amount: object) -> Decimal:
    """The amount rounded half up to cents; numbers and numeric strings are accepted."""
    if isinstance(amount, bool) or not isinstance(amount, int | float | str | Decimal):
        raise InvalidAmount(f"amount must be a number, got {type(amount).__name__}: {amount!r}")
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation as exc:
        raise InvalidAmount(f"amount must be a number, got {amount!r}") from exc
    if not value.is_finite():
        raise InvalidAmount(f"amount must be a finite number, got {amount!r}")
    value = value.quantize(CENT, rounding=ROUND_HALF_UP)
    if value <= 0:
        raise InvalidAmount(f"amount must be greater than zero after rounding to cents, got {amount!r}")
    if value > MAX_AMOUNT:
        raise InvalidAmount(f"amount must be at most {MAX_AMOUNT}, got {amount!r}")
    return value


def _money(value: Decimal) -> float | int:
    """A cents value as a JSON number: whole amounts as integers, the rest as two-decimal floats."""
    value = value.quantize(CENT, rounding=ROUND_HALF_UP)
    return int(value) if value == value.to_integral_value() else float(value)


def _date(value: object, field: str) -> str:
    """A validated ISO date string; `field` names the argument in the error message."""
    if not isinstance(value, str) or not ISO_DATE.fullmatch(value.strip()):
        raise InvalidDate(f"{field} must be a date written as YYYY-MM-DD, got {value!r}")
    try:
        return datetime.date.fromisoformat(value.strip()).isoformat()
    except ValueError as exc:
        raise InvalidDate(f"{field} is not a real calendar date: {value!r} ({exc})") from exc


def _range(start: str | None, end: str | None) -> tuple[str | None, str | None]:
    """Validated, inclusive range bounds; either may be open (None)."""
    first = None if start is None else _date(start, "start")
    last = None if end is None else _date(end, "end")
    if first is not None and last is not None and first > last:
        raise InvalidDateRange(f"start {first} is after end {last}")
    return first, last


def _in_range(record: dict, first: str | None, last: str | None) -> bool:
    return (first is None or record["date"] >= first) and (last is None or record["date"] <= last)


def _category(value: object) -> str:
    """Categories compare case-insensitively, so 'Food' and 'food ' are the same one."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidCategory(f"category must be a non-empty text such as 'food', got {value!r}")
    return " ".join(value.split()).lower()


def add_expense(amount: float, category: str, description: str = "", date: str | None = None) -> dict:
    """Record one expense and return it with its new id."""
    value = _cents(amount)
    name = _category(category)
    day = datetime.date.today().isoformat() if date is None else _date(date, "date")
    with _locked():
        book = _load()
        record = {
            "id": book["next_id"],
            "amount": _money(value),
            "category": name,
            "description": "" if description is None else str(description).strip(),
            "date": day,
        }
        book["expenses"].append(record)
        book["next_id"] += 1
        _save(book)
    return record


def list_expenses(category: str | None = None, start: str | None = None, end: str | None = None) -> dict:
    """The stored expenses, oldest first, optionally of one category and within an inclusive date range."""
    first, last = _range(start, end)
    name = None if category is None else _category(category)
    records = [r for r in _load()["expenses"] if _in_range(r, first, last) and (name is None or r["category"] == name)]
    records.sort(key=lambda r: (r["date"], r["id"]))
    total = sum((Decimal(str(r["amount"])) for r in records), Decimal(0))
    return {"expenses": records, "count": len(records), "total": _money(total)}


def expense_summary(start: str | None = None, end: str | None = None) -> dict:
    """Totals per category and overall within an inclusive date range, largest category first."""
    first, last = _range(start, end)
    totals: dict[str, Decimal] = {}
    counts: dict[str, int] = {}
    for record in _load()["expenses"]:
        if _in_range(record, first, last):
            name = record["category"]
            totals[name] = totals.get(name, Decimal(0)) + Decimal(str(record["amount"]))
            counts[name] = counts.get(name, 0) + 1
    order = sorted(totals, key=lambda n: (-totals[n], n))
    return {
        "start": first,
        "end": last,
        "categories": [{"category": n, "total": _money(totals[n]), "count": counts[n]} for n in order],
        "total": _money(sum(totals.values(), Decimal(0))),
        "count": sum(counts.values()),
    }


def delete_expense(expense_id: int) -> dict:
    """Remove one expense by id and return the removed record."""
    if isinstance(expense_id, bool) or not isinstance(expense_id, int):
        raise ExpenseNotFound(f"expense ids are whole numbers, got {expense_id!r}")
    with _locked():
        book = _load()
        for index, record in enumerate(book["expenses"]):
            if record["id"] == expense_id:
                del book["expenses"][index]
                _save(book)
                return record
    raise ExpenseNotFound(f"no expense with id {expense_id}; list_expenses shows the stored ids")
