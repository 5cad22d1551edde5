"""The facility admin's staff pages and the password change page pass axe-core (no serious or
critical violation), in Vietnamese and English, as the other clinic pages do."""

from __future__ import annotations

from test_accessibility import _signed_in_receptionist_and_ids, axe, sign_in  # noqa: F401  (axe: a fixture)

PAGES = ("/clinic/staff", "/clinic/staff/new", "/auth/password", "/")


def test_staff_pages_pass_axe(page, store, axe) -> None:  # noqa: F811
    _signed_in_receptionist_and_ids(page, store)
    page.context.clear_cookies()
    sign_in(page, "qt.minh")
    for path in PAGES:
        for lang in ("vi", "en"):
            response = page.goto(f"{path}?lang={lang}")
            assert response.status == 200 and "/auth/login" not in page.url, path
            page.evaluate(axe.read_text("utf-8"))
            result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
            serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
                       if v["impact"] in ("serious", "critical")]
            assert not serious, f"{path} ({lang}): {serious}"
