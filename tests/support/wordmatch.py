"""Helpers and fixtures of the wordmatch tests shared by more than one layer."""


LEMMAS = {
    0: ["fox", "red fox"],
    1: ["recreational vehicle", "RV", "R.V."],
    2: ["ant"],
    3: ["man-eater", "jack-o'-lantern"],
    4: ["fox"],          # a lemma shared by two classes
    5: ["a_b"],
}
