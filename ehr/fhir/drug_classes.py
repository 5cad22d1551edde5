"""Active ingredients and the drug classes they belong to, for the prescribing checks.

Pure data and matching, no Flask, no database. A drug is known by the words of its name (free
text "Amoxicilin 500 mg"), its catalogue ingredient ("Amoxicilin") and any ATC code it carries;
an allergy by its substance text ("Penicillin", "nhóm beta-lactam", "kháng sinh nhóm penicilin")
and its codings' displays. Matching ignores case, accents and punctuation ("Co-trimoxazol",
"cotrimoxazole") and knows the Vietnamese (Dược thư quốc gia) and the English (INN) spellings.

Classes nest: penicillins and cephalosporins are beta-lactams, so an allergy to a penicillin
warns of a cephalosporin as a possible cross-reaction, and an allergy to "beta-lactam" covers
both. The table covers at least the classes of the demo data (penicillins and beta-lactams,
sulfonamides, NSAIDs); extend it here (one line per ingredient).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class DrugClass:
    key: str
    label: str  # shown in messages; the international name works in Vietnamese and English
    names: tuple[str, ...]  # how an allergy or a drug line names the class (vi and en)
    parents: tuple[str, ...] = ()
    atc: tuple[str, ...] = ()  # ATC prefixes of the class


CLASSES: dict[str, DrugClass] = {c.key: c for c in (
    DrugClass("beta-lactam", "beta-lactam", ("beta lactam", "betalactam", "β lactam", "khang sinh beta lactam"),
              atc=("J01C", "J01D")),
    DrugClass("penicillin", "penicillin", ("penicillin", "penicilin", "penicillins", "penicilins", "penicilline"),
              parents=("beta-lactam",), atc=("J01C",)),
    DrugClass("cephalosporin", "cephalosporin", ("cephalosporin", "cefalosporin", "cephalosporins", "cephalosporine"),
              parents=("beta-lactam",), atc=("J01DB", "J01DC", "J01DD", "J01DE", "J01DI")),
    DrugClass("sulfonamide", "sulfonamide", ("sulfonamide", "sulfonamid", "sulfonamides", "sulphonamide", "sulfamid", "sulfamide",
                                            "sulfa", "sulpha"), atc=("J01E",)),
    DrugClass("nsaid", "NSAID", ("nsaid", "nsaids", "chong viem khong steroid", "khang viem khong steroid", "cvks", "nsai",
                                 "non steroidal anti inflammatory", "nonsteroidal anti inflammatory", "ains"),
              atc=("M01A", "N02BA")),
)}


@dataclass(frozen=True)
class Ingredient:
    key: str
    label: str
    names: tuple[str, ...]
    classes: tuple[str, ...]


INGREDIENTS: dict[str, Ingredient] = {i.key: i for i in (
    # penicillins (J01C)
    Ingredient("amoxicillin", "amoxicillin", ("amoxicillin", "amoxicilin", "amoxycillin", "amoxicilline", "amoxiclav"), ("penicillin",)),
    Ingredient("ampicillin", "ampicillin", ("ampicillin", "ampicilin", "ampicilline"), ("penicillin",)),
    Ingredient("penicillin-v", "penicillin V", ("penicillin v", "penicilin v", "phenoxymethylpenicillin", "phenoxymethylpenicilin",
                                                "phenoxymethyl penicillin"), ("penicillin",)),
    Ingredient("penicillin-g", "penicillin G", ("penicillin g", "penicilin g", "benzylpenicillin", "benzylpenicilin",
                                                "benzathine benzylpenicillin", "benzathin benzylpenicilin", "benzathin penicilin"),
               ("penicillin",)),
    Ingredient("cloxacillin", "cloxacillin", ("cloxacillin", "cloxacilin"), ("penicillin",)),
    Ingredient("oxacillin", "oxacillin", ("oxacillin", "oxacilin"), ("penicillin",)),
    Ingredient("piperacillin", "piperacillin", ("piperacillin", "piperacilin"), ("penicillin",)),
    # cephalosporins (J01DB-DE): beta-lactams, a possible cross-reaction with a penicillin allergy
    Ingredient("cefalexin", "cefalexin", ("cefalexin", "cephalexin"), ("cephalosporin",)),
    Ingredient("cefadroxil", "cefadroxil", ("cefadroxil",), ("cephalosporin",)),
    Ingredient("cefazolin", "cefazolin", ("cefazolin",), ("cephalosporin",)),
    Ingredient("cefaclor", "cefaclor", ("cefaclor",), ("cephalosporin",)),
    Ingredient("cefuroxime", "cefuroxime", ("cefuroxim", "cefuroxime"), ("cephalosporin",)),
    Ingredient("cefixime", "cefixime", ("cefixim", "cefixime"), ("cephalosporin",)),
    Ingredient("cefpodoxime", "cefpodoxime", ("cefpodoxim", "cefpodoxime"), ("cephalosporin",)),
    Ingredient("cefdinir", "cefdinir", ("cefdinir",), ("cephalosporin",)),
    Ingredient("cefotaxime", "cefotaxime", ("cefotaxim", "cefotaxime"), ("cephalosporin",)),
    Ingredient("ceftriaxone", "ceftriaxone", ("ceftriaxon", "ceftriaxone"), ("cephalosporin",)),
    Ingredient("ceftazidime", "ceftazidime", ("ceftazidim", "ceftazidime"), ("cephalosporin",)),
    Ingredient("cefepime", "cefepime", ("cefepim", "cefepime"), ("cephalosporin",)),
    # sulfonamides (J01E)
    Ingredient("sulfamethoxazole", "sulfamethoxazole", ("sulfamethoxazole", "sulfamethoxazol", "sulphamethoxazole", "co trimoxazole",
                                                        "co trimoxazol", "cotrimoxazole", "cotrimoxazol", "bactrim", "biseptol"),
               ("sulfonamide",)),
    Ingredient("sulfadiazine", "sulfadiazine", ("sulfadiazine", "sulfadiazin", "bac sulfadiazin", "silver sulfadiazine"), ("sulfonamide",)),
    Ingredient("sulfasalazine", "sulfasalazine", ("sulfasalazine", "sulfasalazin"), ("sulfonamide",)),
    Ingredient("sulfadoxine", "sulfadoxine", ("sulfadoxine", "sulfadoxin"), ("sulfonamide",)),
    # NSAIDs (M01A; aspirin N02BA/B01AC)
    Ingredient("ibuprofen", "ibuprofen", ("ibuprofen",), ("nsaid",)),
    Ingredient("diclofenac", "diclofenac", ("diclofenac", "diclofenac natri", "diclofenac sodium", "voltaren"), ("nsaid",)),
    Ingredient("naproxen", "naproxen", ("naproxen",), ("nsaid",)),
    Ingredient("meloxicam", "meloxicam", ("meloxicam", "mobic"), ("nsaid",)),
    Ingredient("aspirin", "aspirin", ("aspirin", "acetylsalicylic acid", "acid acetylsalicylic", "axit acetylsalicylic",
                                      "acetylsalicylic"), ("nsaid",)),
    Ingredient("ketoprofen", "ketoprofen", ("ketoprofen",), ("nsaid",)),
    Ingredient("piroxicam", "piroxicam", ("piroxicam",), ("nsaid",)),
    Ingredient("celecoxib", "celecoxib", ("celecoxib",), ("nsaid",)),
    Ingredient("etoricoxib", "etoricoxib", ("etoricoxib",), ("nsaid",)),
    Ingredient("indometacin", "indometacin", ("indometacin", "indomethacin"), ("nsaid",)),
)}

_SPECIAL = str.maketrans({"đ": "d", "Đ": "d", "β": " beta ", "ß": "ss"})
_NON_WORD = re.compile(r"[^a-z0-9]+")


def fold(text: str) -> str:
    """Lower case, no accents, words separated by one space: 'Co-trimoxazol 480mg' -> 'co trimoxazol 480mg'."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_SPECIAL))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NON_WORD.sub(" ", stripped).split())


def _index(items: Iterable[tuple[str, tuple[str, ...]]]) -> list[tuple[str, str]]:
    """(folded name, key), the longest names first (so "penicillin v" wins over "penicillin")."""
    pairs = {(fold(name), key) for key, names in items for name in names}
    return sorted(pairs, key=lambda p: -len(p[0]))


_INGREDIENT_NAMES = _index((i.key, i.names) for i in INGREDIENTS.values())
_CLASS_NAMES = _index((c.key, c.names) for c in CLASSES.values())


def _found(text: str, index: list[tuple[str, str]]) -> set[str]:
    padded = f" {fold(text)} "
    out: set[str] = set()
    for name, key in index:
        for form in (name, name + "s", name + "e"):
            at = padded.find(f" {form} ")
            if at >= 0:
                out.add(key)
                padded = padded[:at] + " " * (len(form) + 1) + padded[at + len(form) + 1:]  # a longer name consumed it
                break
    return out


def ingredients_in(*texts: str | None) -> set[str]:
    """The known ingredients the texts name."""
    return set().union(*(_found(t, _INGREDIENT_NAMES) for t in texts if t))


def classes_named(*texts: str | None) -> set[str]:
    """The classes the texts name directly ("nhóm beta-lactam", "NSAID")."""
    return set().union(*(_found(t, _CLASS_NAMES) for t in texts if t))


def with_parents(classes: Iterable[str]) -> set[str]:
    out: set[str] = set()
    todo = list(classes)
    while todo:
        key = todo.pop()
        if key in out or key not in CLASSES:
            continue
        out.add(key)
        todo.extend(CLASSES[key].parents)
    return out


def classes_of_atc(code: str) -> set[str]:
    code = code.strip().upper()
    return {c.key for c in CLASSES.values() for prefix in c.atc if code.startswith(prefix)} if code else set()


@dataclass(frozen=True)
class Profile:
    """What the checks know of a drug or an allergen."""
    ingredients: frozenset[str]
    classes: frozenset[str]  # the most specific classes: of its ingredients, named in its text, from ATC
    all_classes: frozenset[str]  # with their parents

    @property
    def known(self) -> bool:
        return bool(self.ingredients or self.classes)


def profile(texts: Iterable[str | None], atc_codes: Iterable[str] = ()) -> Profile:
    words = [t for t in texts if t]
    ingredients = ingredients_in(*words)
    classes = {c for i in ingredients for c in INGREDIENTS[i].classes} | classes_named(*words)
    for code in atc_codes:
        found = classes_of_atc(code)
        # an ATC code of a class and its parent ("J01C" is both): keep the most specific
        classes |= {c for c in found if not any(c in CLASSES[o].parents for o in found)}
    specific = frozenset(c for c in classes if not any(c in CLASSES[o].parents for o in classes))
    return Profile(frozenset(ingredients), specific, frozenset(with_parents(specific)))


@dataclass(frozen=True)
class Match:
    kind: str  # "ingredient": the same substance; "class": the drug is of the class the allergy names or of the allergen's
    # class; "cross": both in a parent class (a penicillin allergy and a cephalosporin: beta-lactams)
    label: str  # the ingredient or class the match is by


def allergy_match(drug: Profile, allergen: Profile) -> Match | None:
    """Whether a drug may cause the recorded allergy, and by what."""
    same = drug.ingredients & allergen.ingredients
    if same:
        return Match("ingredient", INGREDIENTS[sorted(same)[0]].label)
    by_class = drug.all_classes & allergen.classes
    if by_class:
        return Match("class", CLASSES[_most_specific(by_class)].label)
    shared = drug.all_classes & allergen.all_classes
    if shared:
        return Match("cross", CLASSES[_most_specific(shared)].label)
    return None


def _most_specific(classes: Iterable[str]) -> str:
    found = set(classes)
    return sorted(c for c in found if not any(c in CLASSES[o].parents for o in found))[0]


def label_of(key: str) -> str:
    return INGREDIENTS[key].label if key in INGREDIENTS else CLASSES[key].label if key in CLASSES else key
