"""Each method's name in words and its colour, one definition for the tables, the figures and the app;
the glossary of the tables' terms."""

from __future__ import annotations

# One colour per method in every figure (matplotlib's tab10 and tab20 colours), and a name a reader knows
METHODS = {
    "hier_cam": ("#d62728", "two-level, CAM-selected bits (the method)"),
    "hier_cam_all_components": ("#ff9896", "two-level, CAM bits from every component"),
    "hier_random": ("#7f7f7f", "two-level, random bits"),
    "hier_activation": ("#bcbd22", "two-level, most active maps"),
    "hier_box": ("#e377c2", "two-level, the item's own box as the region"),
    "hier_box_any_item": ("#f7b6d2", "two-level, any item's box"),
    "global": ("#1f77b4", "global code only (H bits)"),
    "local_full": ("#2ca02c", "full local code (C bits)"),
    "single_level": ("#9467bd", "one-level code, H bits"),
    "single_level_local": ("#8c564b", "one-level code, C bits"),
    "float_cosine": ("#17becf", "cosine on pooled Conv7 features"),
    "hashnet": ("#ff7f0e", "HashNet (Cao et al. 2017), one-level, H bits"),
    "csq": ("#98df8a", "CSQ (Yuan et al. 2020), one-level, H bits"),
    "greedyhash": ("#c5b0d5", "GreedyHash (Su et al. 2018), one-level, H bits"),
    "dsh": ("#c49c94", "DSH (Liu et al. 2016), one-level, H bits"),
    "dcoh": ("#d62728", "DCOH (learned operators)"),
    "dcoh_no_adv": ("#ff9896", "DCOH without the adversarial term"),
    "bitwise": ("#7f7f7f", "bitwise OR / AND / AND-NOT of the codes"),
    "label_route": ("#1f77b4", "predicted labels, set operation, label search"),
    "oracle": ("#2ca02c", "exemplar oracle: one random gallery code with the target set"),
    "laso": ("#ff7f0e", "LaSO-style peer (Alfassy et al. 2019): MLP operators on float features, cosine"),
    "laso_bits": ("#ffbb78", "LaSO-style peer at equal bits: its features binarised (rule chosen on val)"),
    "majority_code": ("#98df8a", "majority code (a reference): the bitwise majority of the codes with T"),
    "best_exemplar": ("#2f4f2f", "best exemplar (an upper reference): the best single gallery code with T"),
    "hier_cam_fused": ("#9e0142", "two-level, CAM bits, fused distance d_L + w d_g (w chosen on val)"),
}
GLOSSARY = {
    "map / map@100": "mean average precision over the whole gallery / the top 100; relevant = shares a label",
    "map_exact": "the same, relevant = exactly the query's label set",
    "jaccard_ndcg@100": "nDCG@100 with gain = Jaccard of the label sets (partial matches count partly)",
    "map@1000": "mAP over each query's top 1,000 (shares a label; ImageNet-100's cut-off, beside the "
    "whole-gallery mAP that CIFAR-10 reports)",
    "each_map@100": "each item: queries with 2-3 items, every item in turn the target (relevant = holds "
    "its class), averaged over items",
    "attended_map@100": "attended object, a check within method 1 only: queries with 2-3 items; relevant = "
    "holds the class of the item the CAM region overlaps most (the object the method picked, so no other "
    "method is scored on it)",
    "± (field tables)": "the std over five seeded random orders of equal distances, or over three full "
    "retrains where that is larger",
    "P within radius 2": "precision of every code within Hamming distance 2, an empty answer counting 0",
    "object_map@100": "largest item: queries with 2-3 items; relevant = holds the class of the query's "
    "largest item, wherever the attention looks",
    "bits/image": "bits compared per gallery image: H everywhere, plus L on the K candidates only",
    "ms/query": "one query's top 100 on this 2-core machine, bit selection included",
    "label_route": "predict each input's labels, apply the set operation, rank by predicted labels",
    "oracle": "exemplar oracle: query with one random gallery code whose label set is T",
    "majority_code": "query with the bitwise majority of all gallery codes whose set is T (a reference, "
    "not a ceiling: single real codes beat it)",
    "best_exemplar": "per target set, the one gallery code of that set whose own results (itself left out) "
    "score best: an empirical upper reference for one-code search, not a proven ceiling",
    "laso_bits": "the LaSO-style peer at DCOH's bits: composed and gallery features binarised at "
    "val-chosen thresholds, Hamming ranking",
    "laso": "LaSO-style peer: one MLP per operator on pooled float features, retrieval by cosine",
    "bitwise": "OR / AND / AND-NOT of the two codes",
}


def colour(method: str) -> str:
    return METHODS.get(method, ("#000000", method))[0]


def in_words(method: str) -> str:
    return METHODS.get(method, ("#000000", method))[1]


def method_names() -> str:
    """The table's method identifiers in words, for the top of the Benchmarks tab."""
    return "\n".join(f"- `{method}`: {name}" for method, (_, name) in METHODS.items())


def glossary() -> str:
    return "\n".join(f"- **{term}**: {meaning}" for term, meaning in GLOSSARY.items())
