"""Method 2's results in Markdown tables and words (`hashdemo.evaluation.dcoh` computes them): DCOH
against its peer, its baselines and its references, per operator and chain, and the seed spreads."""

from __future__ import annotations

from hashdemo.evaluation.field_tables import compare
from hashdemo.evaluation.markdown import markdown_table, spread_cell

# the columns of the DCOH table
DCOH_METHODS = (
    "dcoh",
    "dcoh_no_adv",
    "laso",
    "laso_bits",
    "bitwise",
    "label_route",
    "oracle",
    "majority_code",
    "best_exemplar",
)
SEED_TABLES = {  # result key: title (hashdemo.evaluation.dcoh.SPREADS)
    "seeds": "map@100 over three full retrains, both phases (mean ± std)",
    "operator_seeds": "map@100 over three operator-phase seeds on the shipped h(x) (mean ± std)",
}


def dcoh_tables(result: dict) -> str:
    first = next((row for row in result["operators"].values() if row.get("pairs")), {})
    methods = [m for m in DCOH_METHODS if m in first]  # the ablation only when it was trained
    rows = [
        [operator, row["pairs"], *(_pair(row[m]) if m in row else None for m in methods)]
        for operator, row in result["operators"].items()
    ]
    lines = [
        f"{result['bits']}-bit codes; map@100 / jaccard@10 per operator",
        "",
        markdown_table(["operator", "pairs", *methods], rows),
    ]
    for key, title in SEED_TABLES.items():
        spread = [m for m in ("dcoh", "dcoh_no_adv") if m in result.get(key, {})]
        if spread:
            rows = [
                [operator, *(spread_cell(result[key][m][operator]) for m in spread)]
                for operator in result["operators"]
            ]
            lines += ["", title, "", markdown_table(["operator", *spread], rows)]
    if result.get("laso_seeds"):
        rows = [
            [operator, spread_cell(spreads["laso"]), spread_cell(spreads["laso_bits"])]
            for operator, spreads in result["laso_seeds"].items()
        ]
        rule = result["laso_bits_rule"]["rule"]
        lines += [
            "",
            f"the LaSO-style peer over three operator-phase seeds (float features, and binarised at the val "
            f"features' per-dimension {rule}, chosen on val): map@100 mean ± std",
            "",
            markdown_table(["operator", "laso", "laso_bits"], rows),
        ]
    if "chains" in result:
        rows = [
            [chain, row["triples"], *(_pair(row[m]) if m in row else None for m in methods)]
            for chain, row in result["chains"].items()
        ]
        lines += ["", "chains (A op B) op' C: map@100 / jaccard@10", ""]
        lines.append(markdown_table(["chain", "triples", *methods], rows))
    single = result["single_image"]
    lines += ["", f"single-image mAP of h(x): {single['map']:.4f} (shares a label)"]
    if "exact_map@100" in single:
        lines[-1] += f"; exact label set map@100 {single['exact_map@100']:.4f}"
    lines += [f"\nSkipped: {note}." for note in result.get("skipped", [])]
    if "distribution" in result:
        lines += ["", distribution_table(result["distribution"])]
    return "\n".join(lines)


def distribution_table(distribution: dict[str, dict]) -> str:
    """How far operator outputs are from real codes: the trained discriminator's accuracy, the bits' gap."""
    header = ["operator outputs of", "D accuracy (real vs generated)", "per-bit mean gap"]
    rows = []
    for name, dist in distribution.items():
        accuracy = dist["discriminator_accuracy"]
        rows.append(
            [name, "(no D trained)" if accuracy is None else f"{accuracy:.3f}", dist["per_bit_mean_gap"]]
        )
    return markdown_table(header, rows)


def _pair(scores: dict) -> str:
    return f"{scores['map@100']:.3f} / {scores['jaccard@10']:.3f}"


def dcoh_takeaway(result: dict) -> str:
    """Method 2 in plain words: each operator against the peer at equal bits (over both sides' operator
    seeds where they exist), against the float peer, and as a share of the best exemplar."""
    ops = {op: row for op, row in result["operators"].items() if row.get("pairs")}

    def beside(row: dict) -> str:
        names = ("best_exemplar", "majority_code", "oracle", "laso", "laso_bits", "label_route", "bitwise")
        return ", ".join(f"{name} {row[name]['map@100']:.3f}" for name in names if name in row)

    parts = [f"{op} {row['dcoh']['map@100']:.3f} ({beside(row)})" for op, row in ops.items()]
    text = (
        "**In plain words.** Composed queries find exactly the target label set at map@100: "
        + "; ".join(parts)
        + "."
    )
    ours, peers = result.get("operator_seeds", {}).get("dcoh", {}), result.get("laso_seeds", {})
    verdicts = []
    for op in ops:
        if op in ours and op in peers:
            a, b = ours[op], peers[op]["laso_bits"]
            word = compare(a, b)
            verdicts.append(f"{op} {a['mean']:.3f} ± {a['std']:.3f} {word} {b['mean']:.3f} ± {b['std']:.3f}")
    if verdicts:
        text += (
            " *At equal bits* (the LaSO-style peer's features binarised to as many bits, three operator "
            "seeds each): DCOH " + "; ".join(verdicts) + "."
        )
    full = result.get("seeds", {})
    if "dcoh" in full and "dcoh_no_adv" in full:
        words = {"above": "above", "below": "below", "within the spreads of": "level, within the spreads"}
        ablation = [
            f"{op} {words[compare(full['dcoh_no_adv'][op], full['dcoh'][op])]}"
            for op in ops
            if op in full["dcoh"] and op in full["dcoh_no_adv"]
        ]
        text += (
            " *The adversarial term* (three full retrains each): `dcoh_no_adv`, without it, against `dcoh`: "
            + "; ".join(ablation)
            + "."
        )
    floats = [
        op for op, row in ops.items() if "laso" in row and row["laso"]["map@100"] > row["dcoh"]["map@100"]
    ]
    if floats:
        text += f" The float peer (cosine on 96 floats, not bits) stays ahead on {', '.join(floats)}."
    shares = [
        f"{op} {row['dcoh']['map@100'] / row['best_exemplar']['map@100']:.2f}x"
        for op, row in ops.items()
        if "best_exemplar" in row and row["best_exemplar"]["map@100"] > 0
    ]
    if shares:
        text += (
            " Of the best exemplar (the best single gallery code per target set, an upper reference chosen "
            "with the answer known, not a proven ceiling): " + ", ".join(shares) + "."
        )
    return text
