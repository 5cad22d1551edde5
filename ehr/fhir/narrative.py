"""Narrative XHTML rules (FHIR R4 narrative.html#xhtml, invariants txt-1 and txt-2).

The div must be well-formed XHTML with only basic formatting elements and attributes: no scripts,
forms, frames, objects, event-handler attributes or `javascript:` links. Narrative is shown to
clinicians and patients, so this is a stored-XSS guard as much as a conformance rule. Elements nest
at most MAX_DEPTH deep: the check walks iteratively, and nothing deeper reaches the code that reads
narrative later.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

XHTML = "{http://www.w3.org/1999/xhtml}"

ALLOWED_ELEMENTS = frozenset(
    """a abbr acronym address b bdo big blockquote br caption cite code col colgroup dd del dfn div dl
    dt em h1 h2 h3 h4 h5 h6 hr i img ins kbd li map area ol p pre q samp small span strong sub sup
    table tbody td tfoot th thead tr tt ul var""".split()
)
ALLOWED_ATTRIBUTES = frozenset(
    """abbr accesskey align alt axis bgcolor border cellhalign cellpadding cellspacing cellvalign char
    charoff charset cite class colspan compact coords datetime dir frame headers height href hreflang
    hspace id lang longdesc name nowrap rel rev rowspan rules scope shape span src start style summary
    tabindex title type valign value vspace width""".split()
)
_URL_ATTRIBUTES = frozenset({"href", "src", "cite", "longdesc"})
_BAD_SCHEMES = ("javascript:", "vbscript:", "data:text/html", "livescript:")
# Real narratives (tables in sections in a div) are a dozen levels deep; the expat parser accepts
# any depth, and a recursive walk over 1,500 levels was a RecursionError (500).
MAX_DEPTH = 64


class NarrativeError(ValueError):
    """The narrative breaks a rule; the message names the rule, not the content."""


def _local(tag: str) -> str:
    return tag[len(XHTML) :] if tag.startswith(XHTML) else tag


def _check_one(el: Element) -> None:
    if not el.tag.startswith(XHTML):
        raise NarrativeError("narrative elements must be in the XHTML namespace")
    name = _local(el.tag)
    if name not in ALLOWED_ELEMENTS:
        raise NarrativeError(f"element <{name}> is not allowed in narrative")
    for attr, value in el.attrib.items():
        local = attr.rsplit("}", 1)[-1]
        if attr == "{http://www.w3.org/XML/1998/namespace}lang":
            continue
        if local.lower().startswith("on") or local not in ALLOWED_ATTRIBUTES:
            raise NarrativeError(f"attribute '{local}' is not allowed in narrative")
        if local in _URL_ATTRIBUTES:
            squeezed = "".join(value.split()).lower()
            if squeezed.startswith(_BAD_SCHEMES):
                raise NarrativeError(f"attribute '{local}' uses a forbidden URL scheme")
        if local == "style" and ("expression(" in value.lower() or "url(" in value.lower()):
            raise NarrativeError("style attributes may not load resources or run expressions")


def _check_element(root: Element) -> None:
    """Check every element under `root` with an explicit stack (no recursion), bounding the depth."""
    stack: list[tuple[Element, int]] = [(root, 1)]
    while stack:
        el, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise NarrativeError(f"narrative elements are nested too deeply (more than {MAX_DEPTH} levels)")
        _check_one(el)
        stack.extend((child, depth + 1) for child in el)


def check_div(div: str) -> None:
    """Raise NarrativeError when `div` breaks the FHIR narrative rules."""
    if "<?" in div:
        # processing instructions (an xml-stylesheet pointing elsewhere, an XML declaration) are
        # not XHTML content; the parser drops those outside the root, so look at the text itself
        raise NarrativeError("narrative must not contain XML processing instructions")
    try:
        root = fromstring(div, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException):
        raise NarrativeError("narrative is not well-formed XHTML (undefined entities and DTDs are not allowed)") from None
    if root.tag != XHTML + "div":
        raise NarrativeError("narrative must be a single <div> in the XHTML namespace")
    if not ("".join(root.itertext()).strip() or root.find(".//" + XHTML + "img") is not None):
        raise NarrativeError("narrative must have some non-whitespace content (txt-2)")
    _check_element(root)
