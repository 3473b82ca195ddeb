"""Independent rough re-read of eval/eml against eval/manifest.toml (regex extractor, not guard)."""
import email, email.policy, html, re, sys, tomllib, urllib.parse, os
D = os.path.dirname(os.path.abspath(__file__))
man = tomllib.load(open(os.path.join(D, "manifest.toml"), "rb"))
RECEIPTS = {"disposition-notification-to", "return-receipt-to", "x-confirm-reading-to", "x-pmrqc", "read-receipt-to", "return-receipt-requested", "generate-delivery-report"}
bad = 0
for e in man["message"]:
    raw = open(os.path.join(D, e["source"]), "rb").read()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    loads, hrefs, texturls = set(), set(), set()
    for p in msg.walk():
        if p.get_content_maintype() == "multipart" or p.get_filename():
            continue
        if p.get_content_type() == "text/html":
            h = p.get_content()
            h = h.replace("<!--[if !mso]><!-->", "").replace("<!--<![endif]-->", "")
            # Outlook renders <!--[if mso]> blocks: their VML images load there
            for block in re.findall(r"<!--\[if [^\]]*mso[^\]]*\]>(.*?)<!\[endif\]-->", h, flags=re.S):
                for v in re.findall(r'<v:(?:fill|image)\b[^>]*\bsrc="([^"]*)"', block, flags=re.I):
                    loads.add(html.unescape(v))
            h = re.sub(r"<!--.*?-->", "", h, flags=re.S)
            # <style> is raw text: its url()s are requested as written, entities and all
            for css in re.findall(r"<style[^>]*>(.*?)</style>", h, flags=re.S | re.I):
                loads.update(re.findall(r"url\(\s*'?\"?([^'\")]+)", css))
            h = re.sub(r"<style[^>]*>.*?</style>", "", h, flags=re.S | re.I)
            for a, v in re.findall(r'\b(src|background|srcset|href)\s*=\s*"([^"]*)"', h, flags=re.I):
                v = html.unescape(v)
                if a.lower() == "srcset":
                    for c in v.split(","):
                        loads.add(c.strip().split()[0])
                elif a.lower() == "href":
                    hrefs.add(v)
                else:
                    loads.add(v)
            for v in re.findall(r"url\(\s*'?\"?([^'\")]+)", h):
                loads.add(html.unescape(v))
            for v in re.findall(r'<link[^>]+href="([^"]+)"', h):
                loads.add(html.unescape(v)); hrefs.discard(html.unescape(v))
        elif p.get_content_type() == "text/plain":
            texturls |= set(re.findall(r"https?://[^\s>)\]]+", p.get_content()))
    loads = {u for u in loads if u.startswith("http")}
    hrefs = {u for u in hrefs if u.startswith("http")}
    F = e.get("finding", [])
    declared_loads = {f["url"] for f in F if f["kind"] in ("pixel", "remote")}
    declared_links = {f["url"] for f in F if f["kind"] == "link"}
    allurls = hrefs | texturls
    probs = []
    if loads != declared_loads:
        probs.append(f"loads: extra={loads - declared_loads} missing={declared_loads - loads}")
    if not declared_links <= allurls:
        probs.append(f"links not present: {declared_links - allurls}")
    rh = {k.lower() for k in msg.keys() if k.lower() in RECEIPTS}
    dr = {f["header"].lower() for f in F if f["kind"] == "receipt"}
    if rh != dr:
        probs.append(f"receipts {rh} vs {dr}")
    # destinations re-decoded where the scheme is generic
    for f in F:
        if f["kind"] == "link" and "destination" in f:
            u = urllib.parse.urlsplit(f["url"]); qs = dict(urllib.parse.parse_qsl(u.query))
            for key in (("url", "q", "a", "ytl") if "/v2/url" in f["url"] else ("url", "u", "q", "a", "ytl")):
                if key in qs and qs[key].startswith("http") and qs[key] != f["destination"]:
                    probs.append(f"dest mismatch {key}: {qs[key]} != {f['destination']}")
    # params: every plain href / destination with a tracking family must be declared
    params = {f["url"] for f in F if f["kind"] == "param"}
    cand = {u for u in allurls if u not in declared_links} | {f["destination"] for f in F if f.get("destination")}
    for u in cand:
        ks = [k for k, _ in urllib.parse.parse_qsl(urllib.parse.urlsplit(u).query)]
        if any(k.startswith("utm_") or k in ("mc_cid", "mc_eid", "_hsenc", "_hsmi", "mkt_tok") for k in ks) and u not in params:
            probs.append(f"undeclared param url {u}")
    t = any(f["kind"] in ("pixel", "link", "param", "receipt") for f in F)
    if t != e["tracking"]:
        probs.append("tracking flag")
    if len(raw) >= 100_000:
        probs.append("too big")
    if probs:
        bad += 1
        print(e["source"], *probs, sep="\n   ")
n = len(man["message"]); tr = sum(m["tracking"] for m in man["message"])
print(f"{n} messages, {tr} tracking, {n-tr} tracking-free, problems in {bad}")
