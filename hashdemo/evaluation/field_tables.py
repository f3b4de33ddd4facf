"""The field's protocol in tables and words (`hashdemo.evaluation.field` computes it): every method at
every code length on relevance no method defines, who leads where and whether beyond the spreads."""

from __future__ import annotations

from hashdemo.evaluation.markdown import markdown_table

# the protocols a comparison of methods may rest on: relevance from the labels and boxes alone
FIELD_KEYS = {
    "map": "mAP over the whole gallery (shares a label)",
    "map@1000": "mAP@1000 (shares a label)",
    "map@set": "mAP at the set's own cut-off (shares a label)",
    "map@100": "map@100 (shares a label)",
    "map_exact@100": "exact label set map@100",
    "object_map@100": "largest item map@100",
    "each_map@100": "each item map@100 (every item of a multi-item query in turn)",
}
VERDICT_KEYS = ("map", "map_exact@100", "object_map@100", "each_map@100")
TWO_LEVEL = ("global", "hier_cam", "hier_cam_fused")
SEED_SPREADS = {"hier_seeds": ("global", "hier_cam", "hier_cam_fused", "local_full"), "peer_seeds": None}


def spread_of(result: dict, bits: str, method: str, key: str) -> dict:
    """A row's value at one length: the mean over tie orders, and as its spread the larger of the tie
    orders' std and, at the shipped length where three full retrains exist, the seeds' std."""
    row = result["lengths"][bits][method]
    std = row.get(f"{key}_std", 0.0)
    if int(bits) == result["bits"]["global"]:
        for seeds in (result.get("hier_seeds", {}), result.get("peer_seeds", {})):
            if method in seeds and key in seeds[method]:
                std = max(std, seeds[method][key]["std"])
    return {"mean": row[key], "std": std}


def compare(a: dict, b: dict) -> str:
    """Spread a against spread b in words: above or below only beyond both spreads."""
    if a["mean"] - a["std"] > b["mean"] + b["std"]:
        return "above"
    if b["mean"] - b["std"] > a["mean"] + a["std"]:
        return "below"
    return "within the spreads of"


def leader(result: dict, bits: str, key: str) -> tuple[str, str, bool] | None:
    """The leading row at one length and protocol, the runner-up, and whether the lead is beyond both
    spreads (mean minus spread above mean plus spread)."""
    rows = [m for m, row in result["lengths"][bits].items() if key in row]
    if len(rows) < 2:
        return None
    ranked = sorted(rows, key=lambda m: -result["lengths"][bits][m][key])
    first, second = (spread_of(result, bits, m, key) for m in ranked[:2])
    return ranked[0], ranked[1], compare(first, second) == "above"


def _value(result: dict, bits: str, method: str, key: str) -> str:
    s = spread_of(result, bits, method, key)
    return f"{s['mean']:.4f} ± {s['std']:.4f}"


HEADLINE_KEYS = ("map", "map@1000", "map_exact@100", "object_map@100", "each_map@100")


def headline_table(result: dict, bits: str) -> str:
    """One length's rows on every protocol no method defines, with what each stores and compares (the
    README's table): the values ± the larger of the tie orders' and the retrains' spreads."""
    rows = result["lengths"][bits]
    keys = [k for k in HEADLINE_KEYS if k in next(iter(rows.values()))]
    table = [
        [
            m,
            *(f"{s['mean']:.3f} ± {s['std']:.3f}" for s in (spread_of(result, bits, m, k) for k in keys)),
            row["bits_stored"],
            f"{row['bits_compared']:g}",
        ]
        for m, row in sorted(rows.items(), key=lambda item: -item[1]["map"])
    ]
    return markdown_table(["method", *keys, "bits stored", "bits compared"], table)


def field_lines(result: dict) -> list[str]:
    """Every protocol's table over the lengths, the budgets, the curves' single numbers, the two-level
    seeds and the verdicts."""
    if "lengths" not in result:
        return []
    lengths = result["lengths"]
    columns = sorted(lengths, key=int)
    methods = list(dict.fromkeys(m for bits in columns for m in lengths[bits]))
    present = next(iter(lengths[columns[0]].values()))
    field = result["field"]
    lines = [
        "",
        f"The field's protocol: every method at {', '.join(map(str, field['lengths']))} bits (two-level: "
        f"H; {columns[-1]}: the full local code and a one-level code as long, for equal storage), each value "
        f"the mean ± std over {field['tie_orders']} seeded random orders of equal distances; at "
        f"{result['bits']['global']} bits the std is the larger of that and the three full retrains'. "
        "Relevance from labels and boxes alone.",
    ]
    for bits in (str(result["bits"]["global"]), columns[-1]):
        if bits in lengths:
            lines += [
                "",
                f"{bits} bits, every protocol (sorted by full mAP)",
                "",
                headline_table(result, bits),
            ]
    for key, title in FIELD_KEYS.items():
        if key not in present:
            continue
        rows = [
            [m, *(_value(result, b, m, key) if m in lengths[b] else None for b in columns)] for m in methods
        ]
        lines += ["", title, "", markdown_table(["method", *(f"{b} bits" for b in columns)], rows)]
    budget = [
        [
            m,
            *(
                f"{lengths[b][m]['bits_stored']} / {lengths[b][m]['bits_compared']:g}"
                if m in lengths[b]
                else None
                for b in columns
            ),
        ]
        for m in methods
    ]
    lines += [
        "",
        "bits stored / bits compared per gallery image",
        "",
        markdown_table(["method", *columns], budget),
    ]
    lines += curve_lines(result)
    if result.get("hier_seeds"):
        seeds = result["hier_seeds"]
        keys = [k for k in FIELD_KEYS if k in next(iter(seeds.values()))]
        rows = [
            [name, *(f"{m[k]['mean']:.4f} ± {m[k]['std']:.4f}" for k in keys)] for name, m in seeds.items()
        ]
        lines += [
            "",
            "the two-level model over three full retrains (seeds 0, 1, 2; each tuned on its own val)",
            "",
        ]
        lines.append(markdown_table(["row", *keys], rows))
    lines += ["", "who leads (beyond: the lead exceeds both rows' spreads)", "", verdict_table(result)]
    return lines


def curve_lines(result: dict) -> list[str]:
    """Precision within Hamming radius 2 (an empty answer counts 0) with the share of queries that get
    nothing within it, and precision@100 and @1000, per length."""
    lines = []
    for bits, rows in sorted(result["curves"].items(), key=lambda item: int(item[0])):
        table = [
            [
                method,
                curve.get("precision_hamming2"),
                curve.get("hamming2_empty_share"),
                curve["precision_at_n"]["100"],
                curve["precision_at_n"]["1000"],
            ]
            for method, curve in rows.items()
        ]
        header = ["method", "P within radius 2", "share with none within 2", "P@100", "P@1000"]
        lines += ["", f"{bits} bits: the field's single-number curves (first tie order)", ""]
        lines.append(markdown_table(header, table))
    return lines


def verdict_table(result: dict) -> str:
    columns = [str(b) for b in result["field"]["lengths"] if str(b) in result["lengths"]]
    if not columns:
        return ""
    rows = []
    for key in VERDICT_KEYS:
        if key not in next(iter(result["lengths"][columns[0]].values())):
            continue
        cells = []
        for bits in columns:
            found = leader(result, bits, key)
            if found is None:
                cells.append(None)
                continue
            first, second, beyond = found
            word = "beyond" if beyond else "within the spreads of"
            cells.append(f"{first} ({word} {second})")
        rows.append([FIELD_KEYS[key], *cells])
    return markdown_table(["protocol", *(f"{b} bits" for b in columns)], rows)


def field_takeaway(result: dict) -> str:
    """Where the seed's two-level search stands among the field's methods, from the field's protocol."""
    if "lengths" not in result:
        return ""
    parts = []
    for bits in (str(b) for b in result["field"]["lengths"]):
        rows = result["lengths"].get(bits, {})
        if "hier_cam" not in rows:
            continue
        one_level = [m for m in rows if m not in TWO_LEVEL]
        for key, words in (("map", "full mAP"), ("map_exact@100", "exact-set map@100")):
            best = max(one_level, key=lambda m: rows[m][key]) if one_level else None
            ranked = sorted(rows, key=lambda m: -rows[m][key])
            place = ranked.index("hier_cam") + 1
            if best is None:
                continue
            cam, peer = spread_of(result, bits, "hier_cam", key), spread_of(result, bits, best, key)
            verdict = compare(cam, peer)
            parts.append(
                f"at {bits} bits on {words} hier_cam ({cam['mean']:.3f}) is {verdict} the best one-level "
                f"code, {best} ({peer['mean']:.3f} ± {peer['std']:.3f}), {place} of {len(rows)}"
            )
    shipped = result["bits"]["global"]
    return (
        "*The field's protocol* (every length, relevance from labels and boxes; beside the shipped "
        f"{shipped} bits each model is one run, so its spread is the tie orders' alone): "
        + "; ".join(parts)
        + "."
    )
