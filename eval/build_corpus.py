"""Writes the evaluation corpus, eval/eml/*.eml and eval/manifest.toml, from the message builders:

    python3 eval/build_corpus.py [--out DIR]     # DIR/eml/ and DIR/manifest.toml (default: eval/)

esp_messages.py (tracking mail sent through ESPs, marketing clouds and newsletter platforms),
non_esp_messages.py (sales trackers, platforms, security wrappers, heuristic pixels, read
receipts) and negative_messages.py (tracking-free hard negatives) build the messages in that
order, drawing every token from one seeded generator (lib.R), so the order is part of the output.
Labels come from how each message is built (lib.Msg records a finding as it emits a URL)."""
import argparse
import json
import os

import esp_messages
import lib
import negative_messages
import non_esp_messages

HERE = os.path.dirname(os.path.abspath(__file__))
BUILDERS = (esp_messages, non_esp_messages, negative_messages)


def build_all():
    """Every message, in build order (a fresh build each call)."""
    lib.reset()
    for builder in BUILDERS:
        builder.build()
    return list(lib.MSGS)


def toml_str(s): return json.dumps(s, ensure_ascii=False)


def write(msgs, out_dir):
    out = os.path.join(out_dir, "eml")
    os.makedirs(out, exist_ok=True)
    for fn in os.listdir(out):
        os.remove(os.path.join(out, fn))
    lines = ["# guard evaluation corpus manifest: expected findings per message, written from how each message was built.",
             "# Same format and semantics as samples/manifest.toml; every message also carries `evidence` (where the URL shape was seen).", ""]
    names = set()
    for m in msgs:
        assert m.name not in names, m.name; names.add(m.name)
        data = m.mime.as_bytes()
        assert len(data) < 100_000, (m.name, len(data))
        with open(os.path.join(out, m.name), "wb") as f:
            f.write(data)
        lines += ["[[message]]", f"source = {toml_str('eml/' + m.name)}", f"description = {toml_str(m.desc)}", f"evidence = {toml_str(m.evidence)}",
                  f"tracking = {'true' if m.tracking else 'false'}", "error = false", ""]
        for f in m.findings:
            if f.get("comment"):
                lines += f["comment"]
            lines.append("[[message.finding]]")
            for k in ("kind", "tracker", "url", "destination", "params", "header"):
                if k in f:
                    v = f[k]
                    lines.append(f"{k} = " + ("[" + ", ".join(toml_str(x) for x in v) + "]" if isinstance(v, list) else toml_str(v)))
                    if k == "url" and f.get("note"):
                        lines[-1] += "  # " + f["note"]
            lines.append("")
    with open(os.path.join(out_dir, "manifest.toml"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def main(argv=None):
    ap = argparse.ArgumentParser(description="write eml/ and manifest.toml of the evaluation corpus")
    ap.add_argument("--out", default=HERE, help="where to write eml/ and manifest.toml (default: eval/)")
    ns = ap.parse_args(argv)
    msgs = build_all()
    write(msgs, ns.out)
    print(len(msgs), "messages;", sum(m.tracking for m in msgs), "tracking")


if __name__ == "__main__":
    main()
