"""Write drugs.xlsx from drugs.csv (the same synthetic rows as a BHXH-style workbook: title lines
above the header, numbers as numeric cells). Run from the repository root:

    .venv/bin/python ehr/data/catalogues/make_samples.py

The rows are synthetic (no public machine-readable national drug list exists); the registration
numbers (VD-9xxxx, VN-9xxxx) are made up.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import openpyxl

HERE = Path(__file__).resolve().parent


def _cell(header: str, value: str) -> object:
    if header in ("Tỷ lệ thanh toán BHYT", "Đơn giá") and value:
        return int(Decimal(value.replace(".", "")))
    return value or None


def main() -> None:
    with (HERE / "drugs.csv").open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Danh mục thuốc"
    sheet.append(["DANH MỤC THUỐC TÂN DƯỢC SỬ DỤNG TẠI CƠ SỞ KHÁM, CHỮA BỆNH (mẫu tổng hợp, không phải danh mục thật)"])
    sheet.append([])
    header = rows[0]
    sheet.append(header)
    for row in rows[1:]:
        sheet.append([_cell(h, v) for h, v in zip(header, row)])
    book.properties.creator = "ehr-vn make_samples.py"
    book.save(HERE / "drugs.xlsx")


if __name__ == "__main__":
    main()
