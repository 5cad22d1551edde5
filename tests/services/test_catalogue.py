"""Catalogues as data: versioned, idempotent imports of the drug, service and lab-test lists."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import func, select

from ehr.services import catalogue
from ehr.store.access import INTERNAL
from ehr.store.schema import catalogue_rows, catalogue_versions

SAMPLES = Path(catalogue.__file__).resolve().parents[1] / "data" / "catalogues"


def _counts(store: Any) -> tuple[int, int]:
    with store.reading(INTERNAL) as uow:
        return (uow.execute(select(func.count()).select_from(catalogue_versions)).scalar_one(),
                uow.execute(select(func.count()).select_from(catalogue_rows)).scalar_one())


def _write(tmp_path: Path, name: str, text: str, bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


@pytest.mark.parametrize(("kind", "name", "rows"), [("drugs", "drugs.csv", 25), ("drugs", "drugs.xlsx", 25),
                                                    ("services", "services.csv", 25), ("labs", "labs.csv", 17)])
def test_each_sample_imports_once(store: Any, kind: str, name: str, rows: int) -> None:
    seen: list[int] = []
    first = catalogue.import_file(store, kind, SAMPLES / name, seen.append)
    assert first.ok and first.created and first.accepted == rows, first.summary()
    assert sum(seen) >= rows + 1  # header and every row reported to the progress bar
    assert _counts(store) == (1, rows)
    label = catalogue.active_version(store, kind)
    assert label == first.version
    again = catalogue.import_file(store, kind, SAMPLES / name)
    assert again.ok and not again.created and not again.activated and again.version == label
    assert _counts(store) == (1, rows)
    assert "unchanged" in again.summary()


def test_csv_and_xlsx_of_the_same_list_are_one_version(store: Any) -> None:
    csv_report = catalogue.import_file(store, "drugs", SAMPLES / "drugs.csv")
    xlsx_report = catalogue.import_file(store, "drugs", SAMPLES / "drugs.xlsx")
    assert xlsx_report.version == csv_report.version and not xlsx_report.created
    assert xlsx_report.header_row == 3  # the title lines above the header are skipped
    drug = catalogue.get(store, "drugs", "TH0001")
    assert drug == catalogue.Drug(code="TH0001", name="Amoxicilin 500mg", ingredient="Amoxicilin", ingredient_code="40.158",
                                  strength="500mg", form="Viên nang cứng", route="Uống", registration="VD-90001-21",
                                  bhyt=True, bhyt_ratio=100, price=Decimal(1050), unit="Viên")
    assert catalogue.get(store, "drugs", "th0025").bhyt is False  # "không", no ratio
    assert catalogue.get(store, "drugs", "TH0008").bhyt_ratio == 50
    assert catalogue.get(store, "drugs", "TH0017").price == Decimal(79500)  # "79.500": thousands grouping


def test_a_changed_list_is_a_new_active_version_and_the_old_stays(store: Any, tmp_path: Path) -> None:
    old = catalogue.import_file(store, "labs", SAMPLES / "labs.csv", label="XN 2025")
    changed = tmp_path / "labs-2026.csv"
    text = (SAMPLES / "labs.csv").read_text(encoding="utf-8-sig").replace("GLU,Glucose máu (lúc đói),mmol/L,3.9,6.4",
                                                                         "GLU,Glucose máu (lúc đói),mmol/L,3.9,5.6")
    changed.write_text(text, encoding="utf-8")
    new = catalogue.import_file(store, "labs", changed, label="XN 2026")
    assert new.created and new.version == "XN 2026" and catalogue.active_version(store, "labs") == "XN 2026"
    assert catalogue.get(store, "labs", "GLU").high == Decimal("5.6")
    # A coding made with the old list keeps its version and still finds what it was coded with.
    assert catalogue.get(store, "labs", "GLU", version="XN 2025").high == Decimal("6.4")
    listed = catalogue.versions(store, "labs")
    assert [(v.label, v.active, v.row_count) for v in listed] == [("XN 2026", True, 17), ("XN 2025", False, 17)]
    assert _counts(store) == (2, 34)
    # The old list imported again is made active again; nothing is copied.
    back = catalogue.import_file(store, "labs", SAMPLES / "labs.csv")
    assert back.version == old.version and back.activated and not back.created
    assert catalogue.active_version(store, "labs") == "XN 2025" and _counts(store) == (2, 34)
    coding = catalogue.coding(store, "labs", "glu")
    assert coding == {"system": catalogue.SYSTEMS["labs"], "version": "XN 2025", "code": "GLU", "display": "Glucose máu (lúc đói)"}


def test_english_headers_semicolons_and_decimal_commas(store: Any, tmp_path: Path) -> None:
    path = _write(tmp_path, "labs.csv", "Code;Name;Unit;Reference low;Reference high;LOINC code;Comment\n"
                                        'K;Kali;mmol/L;3,5;5,0;2823-3;x\n\n', bom=True)
    report = catalogue.import_file(store, "labs", path)
    assert report.ok and report.ignored_columns == ["Comment"]
    assert catalogue.get(store, "labs", "K") == catalogue.LabTest("K", "Kali", "mmol/L", Decimal("3.5"), Decimal(5), "2823-3")


def test_vietnamese_headers_of_a_bhxh_sheet_in_xlsx(store: Any, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["BẢO HIỂM XÃ HỘI VIỆT NAM"])
    sheet.append(["STT", "MÃ HOẠT CHẤT", "TÊN HOẠT CHẤT", "Mã thuốc", "TÊN THUỐC", "Nồng độ, hàm lượng", "Dạng bào chế",
                  "Đường dùng", "SỐ ĐĂNG KÝ", "Tỷ lệ thanh toán BHYT (%)", "Đơn giá (VNĐ)"])
    sheet.append([1, "40.27", "Diclofenac", "D50", "Diclofenac 50mg", "50mg", "Viên nén", "Uống", "VD-1-11", 50, 350.0])
    sheet.append([2, "40.35", "Ibuprofen", "I400", "Ibuprofen 400mg", "400mg", "Viên nén", "Uống", "VD-2-11", "100%", "1.234,5"])
    path = tmp_path / "bhxh.xlsx"
    book.save(path)
    report = catalogue.import_file(store, "drugs", path)
    assert report.ok and report.accepted == 2 and report.ignored_columns == ["STT"], report.summary()
    diclo = catalogue.get(store, "drugs", "D50")
    assert (diclo.ingredient_code, diclo.bhyt, diclo.bhyt_ratio, diclo.price) == ("40.27", True, 50, Decimal(350))
    assert catalogue.get(store, "drugs", "I400").price == Decimal("1234.5")


def test_rejected_rows_are_reported_and_the_rest_imported(store: Any, tmp_path: Path) -> None:
    path = _write(tmp_path, "drugs.csv", "\n".join([
        "Mã thuốc,Tên thuốc,Tên hoạt chất,Tỷ lệ thanh toán BHYT,Đơn giá,Danh mục BHYT",
        "A1,Amoxicilin 500mg,Amoxicilin,100,1050,x",
        ",Không mã,Paracetamol,100,10,x",
        "A2,Quá tỷ lệ,Ibuprofen,150,10,x",
        "A3,Giá âm,Ibuprofen,100,-5,x",
        "A4,Giá chữ,Ibuprofen,100,mười nghìn,x",
        "A1,Trùng mã,Amoxicilin,100,1050,x",
        "A5,Ngoài danh mục có tỷ lệ,Vitamin C,50,100,không",
        "A6,Tỷ lệ lẻ,Vitamin C,\"50,5\",100,x",
        "A7,Cờ lạ,Vitamin C,,100,có lẽ",
        "",
    ]) + "\n")
    report = catalogue.import_file(store, "drugs", path)
    assert not report.ok and report.accepted == 1 and report.version is not None
    reasons = {r.row: r.reason for r in report.rejected}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert reasons[3] == "Mã thuốc: required"
    assert reasons[4] == "Tỷ lệ thanh toán BHYT: must be between 0 and 100 ('150')"
    assert reasons[5] == "Đơn giá: must not be negative"
    assert reasons[6].startswith("Đơn giá: not a number")
    assert reasons[7] == "code: A1 is already on row 2"
    assert reasons[8] == "Tỷ lệ thanh toán BHYT: given for a drug outside the BHYT list"
    assert reasons[9].startswith("Tỷ lệ thanh toán BHYT: must be a whole percentage")
    assert reasons[10].startswith("Danh mục BHYT:")
    assert "row 4 (A2): Tỷ lệ thanh toán BHYT: must be between 0 and 100 ('150')" in report.summary()
    assert [i.code for i in catalogue.search(store, "drugs", "a")] == ["A1"]


def test_lab_range_low_above_high_is_rejected(store: Any, tmp_path: Path) -> None:
    path = _write(tmp_path, "labs.csv", "Mã xét nghiệm,Tên xét nghiệm,Đơn vị,Giá trị thấp,Giá trị cao\nX,Ngược,mmol/L,7,3\n")
    report = catalogue.import_file(store, "labs", path)
    assert report.version is None and report.accepted == 0 and _counts(store) == (0, 0)
    assert report.rejected[0].row == 2 and "low 7 is above high 3" in report.rejected[0].reason


def test_a_file_without_the_required_columns_is_refused(store: Any, tmp_path: Path) -> None:
    path = _write(tmp_path, "x.csv", "Tên thuốc,Đơn giá\nParacetamol,100\n")
    with pytest.raises(catalogue.CatalogueError, match="no header row"):
        catalogue.import_file(store, "drugs", path)
    with pytest.raises(catalogue.CatalogueError, match="only .csv and .xlsx"):
        catalogue.import_file(store, "drugs", shutil.copy(path, tmp_path / "x.txt"))
    bad = tmp_path / "latin.csv"
    bad.write_bytes("Mã thuốc,Tên thuốc,Tên hoạt chất\nA,Bé,C\n".encode("cp1258", errors="replace").replace(b"?", b"\xe0"))
    with pytest.raises(catalogue.CatalogueError, match="UTF-8"):
        catalogue.import_file(store, "drugs", bad)


@pytest.mark.parametrize("query", ["amoxicilin", "Amoxicilin", "amox", "AMOXICILIN 500", "TH0001", "40.158"])
def test_search_is_accent_insensitive_by_code_or_words(store: Any, query: str) -> None:
    catalogue.import_file(store, "drugs", SAMPLES / "drugs.csv")
    found = catalogue.search(store, "drugs", query)
    assert found and found[0].code == "TH0001"


def test_search_words_and_ranking(store: Any) -> None:
    for kind in catalogue.KINDS:
        catalogue.import_file(store, kind, SAMPLES / f"{kind}.csv")
    assert [d.code for d in catalogue.search(store, "drugs", "sulfamethoxazol trimethoprim")] == ["TH0006"]
    assert [d.code for d in catalogue.search(store, "drugs", "co-trimoxazol")] == ["TH0006"]
    assert {d.code for d in catalogue.search(store, "drugs", "paracetamol")} == {"TH0003", "TH0004"}
    assert catalogue.search(store, "drugs", "salbutamol", limit=1)[0].code in {"TH0016", "TH0017"}
    assert [s.code for s in catalogue.search(store, "services", "sieu am o bung")] == ["SA.001"]
    assert {s.code for s in catalogue.search(store, "services", "x-quang")} == {"XQ.001", "XQ.002"}
    assert [t.code for t in catalogue.search(store, "labs", "hong cau")] == ["RBC"]
    assert len(catalogue.search(store, "labs", "công thức máu")) == 5
    assert catalogue.search(store, "labs", "14749-6")[0].code == "GLU"
    assert catalogue.search(store, "labs", "") == [] and catalogue.search(store, "labs", "zzzz") == []
    assert catalogue.get(store, "labs", "HBA1C").unit == "%"


def test_nothing_imported_means_no_version(store: Any) -> None:
    assert catalogue.active_version(store, "drugs") is None
    assert catalogue.search(store, "drugs", "amox") == [] and catalogue.get(store, "drugs", "TH0001") is None
    with pytest.raises(catalogue.CatalogueError, match="unknown catalogue kind"):
        catalogue.search(store, "icd10", "x")


def test_another_process_import_is_seen(store: Any, tmp_path: Path) -> None:
    """The in-memory copy is checked against the active version on every call."""
    catalogue.import_file(store, "services", SAMPLES / "services.csv")
    assert catalogue.get(store, "services", "KB.001").price == Decimal(34500)
    path = _write(tmp_path, "services.csv", "Mã dịch vụ,Tên dịch vụ,Hạng,Giá\nKB.001,Khám bệnh,III,\"39.000\"\n")
    catalogue.import_file(store, "services", path)
    catalogue._cache.clear()  # noqa: SLF001  (a fresh process)
    assert catalogue.get(store, "services", "KB.001") == catalogue.Service("KB.001", "Khám bệnh", "III", Decimal(39000))
    with store.writing(INTERNAL) as uow:  # an import made by another process flips the active version
        from sqlalchemy import update

        uow.execute(update(catalogue_versions).values(active=~catalogue_versions.c.active))
    assert catalogue.get(store, "services", "KB.001").price == Decimal(34500)


def test_cli_import_and_list(app: Any, store: Any, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["ehr", "catalogue", "import", "drugs", str(SAMPLES / "drugs.xlsx"), "--label", "BHXH 2026-01"])
    assert result.exit_code == 0, result.output
    assert "25 rows accepted, 0 rejected" in result.output and "new version BHXH 2026-01, now active" in result.output
    again = runner.invoke(args=["ehr", "catalogue", "import", "drugs", str(SAMPLES / "drugs.csv")])
    assert again.exit_code == 0 and "unchanged: version BHXH 2026-01" in again.output
    bad = _write(tmp_path, "bad.csv", "Mã xét nghiệm,Tên xét nghiệm,Giá trị thấp\nA,Một,1\nB,Hai,abc\n")
    partial = runner.invoke(args=["ehr", "catalogue", "import", "labs", str(bad)])
    assert partial.exit_code == 1 and "row 3 (B): Giá trị thấp: not a number ('abc')" in partial.output
    refused = runner.invoke(args=["ehr", "catalogue", "import", "labs", str(SAMPLES / "drugs.csv")])
    assert refused.exit_code == 1 and "no header row" in refused.output
    listed = runner.invoke(args=["ehr", "catalogue", "list"])
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert len(lines) == 2 and lines[0].startswith("* drugs    BHXH 2026-01") and lines[1].startswith("* labs")


def test_the_demo_samples_load_once(store: Any) -> None:
    first = catalogue.load_samples(store)
    assert [r.created for r in first] == [True, True, True] and all(r.ok for r in first)
    assert [r.created or r.activated for r in catalogue.load_samples(store)] == [False, False, False]
    assert {v.kind for v in catalogue.versions(store) if v.active} == set(catalogue.KINDS)
