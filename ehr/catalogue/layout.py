"""Column layouts of the catalogue importers, the .csv/.xlsx readers and row validation.

A file is a table with one header row (found among its first 20 rows, so the title lines a BHXH
spreadsheet puts above the header are skipped) and one item per row. Header names are matched
case-, accent- and punctuation-insensitively against each field's aliases ("Tỷ lệ thanh toán BHYT
(%)" is "ty le thanh toan bhyt"); unknown columns are ignored (and reported). The layouts are
documented in README.md ("Catalogues"); `LAYOUTS` is the source of truth.

Numbers take a decimal comma or point ("3,9", "3.9"); prices also take thousands grouping
("125.000", "125,000", "1.250.000,50", "125 000 đ"). Empty rows are skipped. Every other row is
either accepted or rejected with its row number (1-based, as a spreadsheet shows it) and reason.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Iterator

from ehr.crypto.blind import fold_text

HEADER_SCAN_ROWS = 20
MAX_CODE = 64
MAX_TEXT = 500


class CatalogueFileError(ValueError):
    """The file as a whole cannot be read: wrong format, no header row, a required column missing."""


@dataclass(frozen=True)
class Rejected:
    row: int
    reason: str
    code: str | None = None


@dataclass(frozen=True)
class Column:
    field: str
    aliases: tuple[str, ...]
    kind: str = "text"  # text, price, number, ratio, flag
    required: bool = False
    title: str = ""  # the Vietnamese header of the documented layout


def _col(field_: str, kind: str, required: bool, *aliases: str) -> Column:
    return Column(field_, tuple(fold_header(a) for a in (field_, *aliases)), kind, required, aliases[0] if aliases else field_)


def fold_header(name: str) -> str:
    """'Tỷ lệ thanh toán BHYT (%)' -> 'ty le thanh toan bhyt'."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", fold_text(name)).split())


PRICE = ("Đơn giá", "Giá", "Giá (VNĐ)", "Đơn giá (VNĐ)", "Mức giá", "Giá thanh toán", "Price", "Unit price")

LAYOUTS: dict[str, tuple[Column, ...]] = {
    "drugs": (
        _col("code", "text", True, "Mã thuốc", "Mã", "Drug code"),
        _col("name", "text", True, "Tên thuốc", "Tên", "Drug name", "Name"),
        _col("ingredient", "text", True, "Tên hoạt chất", "Hoạt chất", "Active ingredient"),
        _col("ingredient_code", "text", False, "Mã hoạt chất", "Ingredient code", "Active ingredient code"),
        _col("strength", "text", False, "Hàm lượng", "Nồng độ, hàm lượng", "Nồng độ hàm lượng", "Nồng độ"),
        _col("form", "text", False, "Dạng bào chế", "Dosage form"),
        _col("route", "text", False, "Đường dùng", "Route"),
        _col("unit", "text", False, "Đơn vị tính", "Đơn vị", "ĐVT", "Unit"),
        _col("registration", "text", False, "Số đăng ký", "Số đăng kí", "SĐK", "Số ĐK", "Registration number"),
        _col("bhyt", "flag", False, "Danh mục BHYT", "Thuộc danh mục BHYT", "Thuốc BHYT", "In BHYT list", "BHYT list"),
        _col("bhyt_ratio", "ratio", False, "Tỷ lệ thanh toán BHYT", "Tỉ lệ thanh toán BHYT", "Tỷ lệ thanh toán", "Tỷ lệ BHYT",
             "Tỉ lệ BHYT", "BHYT ratio", "Ratio"),
        _col("price", "price", False, *PRICE),
    ),
    "services": (
        _col("code", "text", True, "Mã dịch vụ", "Mã kỹ thuật", "Mã DVKT", "Mã tương đương", "Mã", "Service code"),
        _col("name", "text", True, "Tên dịch vụ", "Tên kỹ thuật", "Tên DVKT", "Tên", "Service name", "Name"),
        _col("tier", "text", False, "Hạng", "Tuyến", "Phân tuyến", "Phân tuyến kỹ thuật", "Hạng bệnh viện", "Tier"),
        _col("price", "price", False, *PRICE),
    ),
    "labs": (
        _col("code", "text", True, "Mã xét nghiệm", "Mã", "Test code"),
        _col("name", "text", True, "Tên xét nghiệm", "Tên", "Test name", "Name"),
        _col("unit", "text", False, "Đơn vị", "Đơn vị tính", "Unit", "UCUM unit"),
        _col("low", "number", False, "Giá trị thấp", "Cận dưới", "Giới hạn dưới", "Chỉ số bình thường thấp", "Reference low", "Low"),
        _col("high", "number", False, "Giá trị cao", "Cận trên", "Giới hạn trên", "Chỉ số bình thường cao", "Reference high", "High"),
        _col("loinc", "text", False, "Mã LOINC", "LOINC", "LOINC code"),
    ),
}
KINDS = tuple(LAYOUTS)


# --- reading ---------------------------------------------------------------------------------------


def read_table(path: Path) -> Iterator[tuple[int, list[Any]]]:
    """(row number, cell values) of every row of a .csv or .xlsx file (first worksheet)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _read_csv(path)
    elif suffix in (".xlsx", ".xlsm"):
        yield from _read_xlsx(path)
    else:
        raise CatalogueFileError(f"{path.name}: only .csv and .xlsx files are read")


def count_rows(path: Path) -> int:
    """A cheap estimate of the rows of the file (for a progress bar); 0 when it cannot tell."""
    try:
        if path.suffix.lower() == ".csv":
            with path.open("rb") as f:
                return sum(1 for _ in f)
        import openpyxl

        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            return book.worksheets[0].max_row or 0
        finally:
            book.close()
    except Exception:  # noqa: BLE001  (the import itself reports what is wrong with the file)
        return 0


def _read_csv(path: Path) -> Iterator[tuple[int, list[Any]]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatalogueFileError(f"{path.name}: not UTF-8 text (save the sheet as 'CSV UTF-8'): {exc.reason} at byte {exc.start}") from None
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    for cells in reader:
        yield start, cells
        start = reader.line_num + 1


def _read_xlsx(path: Path) -> Iterator[tuple[int, list[Any]]]:
    import openpyxl
    from zipfile import BadZipFile

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (BadZipFile, KeyError, OSError, ValueError) as exc:
        raise CatalogueFileError(f"{path.name}: not a readable .xlsx workbook ({exc})") from None
    try:
        for number, cells in enumerate(book.worksheets[0].iter_rows(values_only=True), start=1):
            yield number, list(cells)
    finally:
        book.close()


# --- headers ---------------------------------------------------------------------------------------


@dataclass
class Header:
    row: int
    positions: dict[str, int]  # field -> column index
    names: dict[str, str] = field(default_factory=dict)  # field -> the header as the file spells it
    ignored: list[str] = field(default_factory=list)


def match_header(kind: str, row: int, cells: list[Any]) -> Header | None:
    """The header of `kind` if this row is one (every required column named), else None."""
    by_alias = {alias: col.field for col in LAYOUTS[kind] for alias in col.aliases}
    positions: dict[str, int] = {}
    names: dict[str, str] = {}
    ignored: list[str] = []
    for index, cell in enumerate(cells):
        name = _text(cell)
        if not name:
            continue
        wanted = by_alias.get(fold_header(name))
        if wanted is None or wanted in positions:
            ignored.append(name)
            continue
        positions[wanted] = index
        names[wanted] = name
    if all(col.field in positions for col in LAYOUTS[kind] if col.required):
        return Header(row, positions, names, ignored)
    return None


def required_names(kind: str) -> str:
    return ", ".join(f'"{col.title}"' for col in LAYOUTS[kind] if col.required)


# --- values ----------------------------------------------------------------------------------------


class BadValue(ValueError):
    pass


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())


_GROUPED = re.compile(r"\d{1,3}([.,])\d{3}(\1\d{3})*")


def parse_decimal(value: Any, grouping: bool = False) -> Decimal:
    """'3,9' / '3.9' / 3.9 -> Decimal('3.9'); with grouping '125.000' -> 125000."""
    if isinstance(value, bool):
        raise BadValue("not a number")
    if isinstance(value, (int, float, Decimal)):
        number = Decimal(str(value))
    else:
        s = "".join(str(value).split()).replace("\u00a0", "")
        if grouping:
            s = re.sub(r"(?i)(vnđ|vnd|đồng|đ)$", "", s)
        if "," in s and "." in s:
            decimal_mark = "," if s.rfind(",") > s.rfind(".") else "."
            s = s.replace("." if decimal_mark == "," else ",", "").replace(",", ".")
        elif grouping and _GROUPED.fullmatch(s):
            s = s.replace(",", "").replace(".", "")
        elif s.count(",") == 1:
            s = s.replace(",", ".")
        if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", s):
            raise BadValue("not a number")
        number = Decimal(s)
    if not number.is_finite():
        raise BadValue("not a number")
    return normal(number)


def normal(number: Decimal) -> Decimal:
    """125000.00 -> 125000, 3.90 -> 3.9 (the same value always hashes the same)."""
    if number == number.to_integral_value():
        return Decimal(int(number))
    return number.normalize()


_YES = {"x", "1", "co", "yes", "y", "true", "bhyt", "c"}
_NO = {"0", "khong", "no", "n", "false", "k", "-"}


def _flag(value: Any) -> bool:
    folded = fold_header(_text(value)) if not isinstance(value, bool) else ("1" if value else "0")
    if folded in _YES:
        return True
    if folded in _NO:
        return False
    raise BadValue('use "x", "có" or "1" for yes, "không" or "0" for no')


def _ratio(value: Any) -> int:
    raw = value.strip().rstrip("%").strip() if isinstance(value, str) else value
    number = parse_decimal(raw)
    if number != number.to_integral_value():
        raise BadValue("must be a whole percentage (0-100)")
    if not 0 <= number <= 100:
        raise BadValue("must be between 0 and 100")
    return int(number)


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "price": lambda v: parse_decimal(v, grouping=True),
    "number": parse_decimal,
    "ratio": _ratio,
    "flag": _flag,
}

def parse_row(kind: str, header: Header, cells: list[Any]) -> dict[str, Any]:
    """The fields of one data row (None for empty optional ones). Raises BadValue with the reason."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for col in LAYOUTS[kind]:
        index = header.positions.get(col.field)
        raw = cells[index] if index is not None and index < len(cells) else None
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            values[col.field] = None
            if col.required:
                problems.append(f"{header.names.get(col.field, col.field)}: required")
            continue
        try:
            if col.kind == "text":
                text = _text(raw)
                limit = MAX_CODE if col.field == "code" else MAX_TEXT
                if len(text) > limit:
                    raise BadValue(f"longer than {limit} characters")
                values[col.field] = text
            else:
                values[col.field] = _PARSERS[col.kind](raw)
        except (BadValue, InvalidOperation) as exc:
            problems.append(f"{header.names.get(col.field, col.field)}: {exc if isinstance(exc, BadValue) else 'not a number'} ({_text(raw)!r})")
    if not problems:
        problems += _rules(kind, values, lambda f: header.names.get(f, f))
    if problems:
        raise BadValue("; ".join(problems))
    return values


def _rules(kind: str, v: dict[str, Any], name: Callable[[str], str]) -> list[str]:
    problems = []
    if v.get("price") is not None and v["price"] < 0:
        problems.append(f"{name('price')}: must not be negative")
    if kind == "drugs":
        if v["bhyt"] is None:
            v["bhyt"] = v["bhyt_ratio"] is not None and v["bhyt_ratio"] > 0
        elif v["bhyt"] is False and v["bhyt_ratio"]:
            problems.append(f"{name('bhyt_ratio')}: given for a drug outside the BHYT list")
    if kind == "labs" and v["low"] is not None and v["high"] is not None and v["low"] > v["high"]:
        problems.append(f"{name('low')}/{name('high')}: low {v['low']} is above high {v['high']}")
    return problems


def rows_of(kind: str, path: Path, progress: Callable[[int], None] | None = None
            ) -> tuple[Header, list[tuple[int, dict[str, Any]]], list[Rejected]]:
    """Read and check a whole file: (header, accepted (row, fields), rejected). A code seen on an
    earlier row rejects the later row. Raises CatalogueFileError when no header row is found."""
    if kind not in LAYOUTS:
        raise CatalogueFileError(f"unknown catalogue kind {kind!r} (one of: {', '.join(KINDS)})")
    header: Header | None = None
    accepted: list[tuple[int, dict[str, Any]]] = []
    rejected: list[Rejected] = []
    seen: dict[str, int] = {}
    for number, cells in read_table(path):
        if progress:
            progress(1)
        if header is None:
            header = match_header(kind, number, cells)
            if header is None and number >= HEADER_SCAN_ROWS:
                break
            continue
        if all(_text(c) == "" for c in cells):
            continue
        code_index = header.positions["code"]
        code = _text(cells[code_index]) if code_index < len(cells) else ""
        try:
            values = parse_row(kind, header, cells)
        except BadValue as exc:
            rejected.append(Rejected(number, str(exc), code or None))
            continue
        key = values["code"].casefold()
        if key in seen:
            rejected.append(Rejected(number, f"code: {values['code']} is already on row {seen[key]}", values["code"]))
            continue
        seen[key] = number
        accepted.append((number, values))
    if header is None:
        raise CatalogueFileError(f"{path.name}: no header row with the columns {required_names(kind)} "
                                 f"in the first {HEADER_SCAN_ROWS} rows (see README, Catalogues)")
    return header, accepted, rejected
